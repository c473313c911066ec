"""Reading through imapfs never changes flags (\\Seen in particular)."""

import os

import pytest

import helpers
from helpers import mailgen


@pytest.mark.slow
@pytest.mark.deadline(240)
def test_seen_unchanged(shared_mount, dovecot, imap):
    baseline = dovecot["baseline"]      # FLAGS right after generation
    # some messages are unread, some read: make sure the test means something
    inbox_flags = [r["flags"] for r in baseline["INBOX"].values()]
    assert any("\\Seen" in f for f in inbox_flags)
    assert any("\\Seen" not in f for f in inbox_flags)

    # read every message of the small folders and the huge one, plus 50 of Big
    for folder in list(baseline):
        if folder == "Scratch":
            continue                    # modified by test_live
        d = helpers.folder_path(shared_mount.path, folder)
        names = sorted(n for n in os.listdir(d) if n.endswith(".eml"))
        if folder == dovecot["manifest"]["big_folder"]:
            names = names[::max(1, len(names) // 50)]
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                while f.read(1 << 20):
                    pass
        # and by UID name
        for uid in sorted(baseline[folder])[:2]:
            with open(os.path.join(d, "%d.eml" % uid), "rb") as f:
                f.read()

    for folder, before in baseline.items():
        if folder == "Scratch":
            continue
        after = mailgen.fetch_meta(imap, folder)
        changed = {u: (before[u]["flags"], after.get(u, {}).get("flags"))
                   for u in before if after.get(u, {}).get("flags") != before[u]["flags"]}
        assert not changed, "%s: flags changed by reading: %r" % (folder, dict(
            list(changed.items())[:10]))
