"""names=uid mode."""

import os
import stat

import helpers


def test_names_uid(mounter, small_truth):
    m = mounter(extra_opts=["names=uid"])
    for folder in ("INBOX", "Entwürfe", "日本語", "A & B", "Archive/2024/Q1", "Empty"):
        d = helpers.folder_path(m.path, folder)
        files = sorted(n for n in os.listdir(d) if not os.path.isdir(os.path.join(d, n)))
        assert files == sorted("%d.eml" % u for u in small_truth[folder]), folder
        for n in files[:5]:
            p = os.path.join(d, n)
            st = os.stat(p)
            t = small_truth[folder][int(n[:-4])]
            assert stat.S_IMODE(st.st_mode) == 0o600
            assert st.st_size == t["size"]
            assert int(st.st_mtime) == t["internaldate"]
            assert helpers.sha256_file(p) == t["sha256"]
    # folders are unchanged by names=uid
    assert "Archive" in os.listdir(m.path)
    assert "2024" in os.listdir(os.path.join(m.path, "Archive"))
