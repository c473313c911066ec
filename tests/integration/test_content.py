"""Read-only content checks, over imaps:// and imap://+STARTTLS (the
`shared_mount` fixture is parametrized), compared with what imaplib sees."""

import errno
import os
import random
import stat

import pytest

import helpers
from helpers import mailgen


def list_dirs(root):
    """Relative paths of all directories below root (bounded depth)."""
    out = []
    todo = [("", 0)]
    while todo:
        rel, depth = todo.pop()
        assert depth < 10, "directory tree deeper than expected at %r" % rel
        with os.scandir(os.path.join(root, rel)) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    p = os.path.join(rel, e.name) if rel else e.name
                    out.append(p)
                    todo.append((p, depth + 1))
    return sorted(out)


def test_folder_tree(shared_mount, dovecot, imap):
    folders = mailgen.list_folders(imap)
    assert "日本語" in folders and "Archive/2024/Q1" in folders   # sanity
    assert list_dirs(shared_mount.path) == sorted(folders)
    for f in folders:
        st = os.stat(helpers.folder_path(shared_mount.path, f))
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700, (f, oct(st.st_mode))
        assert st.st_uid == os.getuid(), f
    st = os.stat(shared_mount.path)
    assert stat.S_ISDIR(st.st_mode)


def test_nonascii_folder_names(shared_mount):
    top = set(os.listdir(shared_mount.path))
    for name in ("INBOX", "Entwürfe", "日本語", "A & B", "Name With Spaces", "Archive"):
        assert name in top, (name, sorted(top))
    assert os.listdir(os.path.join(shared_mount.path, "Archive", "2024")) \
        .count("Q1") == 1


SMALL = ["INBOX", "Entwürfe", "日本語", "A & B", "Name With Spaces", "Archive",
         "Archive/2024", "Archive/2024/Q1", "Empty"]


@pytest.mark.parametrize("folder", SMALL)
def test_small_folder_every_message(shared_mount, small_truth, folder):
    truth = small_truth[folder]
    d = helpers.folder_path(shared_mount.path, folder)
    files = [e for e in os.listdir(d)
             if not os.path.isdir(os.path.join(d, e))]
    seen = {}
    for name in files:
        m = helpers.NAME_RE.match(name)
        assert m, "bad file name %r" % name
        assert len(name.encode()) <= 255, name
        uid = int(m.group(5))
        assert uid not in seen, "UID %d listed twice: %r %r" % (uid, seen[uid], name)
        seen[uid] = name
    assert sorted(seen) == sorted(truth), "UIDs listed != UIDs on the server"
    for uid, name in seen.items():
        t = truth[uid]
        p = os.path.join(d, name)
        st = os.stat(p)
        assert stat.S_ISREG(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == 0o600, (name, oct(st.st_mode))
        assert st.st_uid == os.getuid(), name
        assert st.st_size == t["size"], (name, st.st_size, t["size"])
        assert int(st.st_mtime) == t["internaldate"], (name, st.st_mtime, t["internaldate"])
        assert name.startswith(helpers.utc_date(t["internaldate"]) + " "), name
        assert helpers.sha256_file(p) == t["sha256"], "content differs: %s" % name


KNOWN_EXACT = ["ascii", "utf8_b", "utf8_q", "latin1", "koi8r", "iso2022jp", "sjis",
               "slash", "tabs", "empty", "nosubject", "folded", "mixed", "adjacent",
               "padded", "control", "attach_1m"]


@pytest.mark.parametrize("key", KNOWN_EXACT)
def test_known_file_names(shared_mount, manifest, key):
    k = manifest["known"][key]
    want = helpers.expected_name(k["subject_text"], k["internaldate"], k["uid"])
    d = helpers.folder_path(shared_mount.path, k["folder"])
    names = os.listdir(d)
    mine = [n for n in names if helpers.uid_of(n) == k["uid"]]
    assert mine == [want], "expected %r, listing has %r" % (want, mine)
    assert os.path.isfile(os.path.join(d, want))


def test_known_special_cases(shared_mount, manifest):
    # the date is the UTC date of INTERNALDATE (local date was 2023-12-31)
    k = manifest["known"]["ascii"]
    n = helpers.expected_name(k["subject_text"], k["internaldate"], k["uid"])
    assert n.startswith("2024-01-01 ")
    assert n in os.listdir(os.path.join(shared_mount.path, "INBOX"))
    # '/' shows as U+2215
    k = manifest["known"]["slash"]
    names = [x for x in os.listdir(os.path.join(shared_mount.path, "INBOX"))
             if helpers.uid_of(x) == k["uid"]]
    assert names and "\u2215" in names[0] and "/" not in names[0]


def test_long_subject_is_shortened(shared_mount, manifest):
    k = manifest["known"]["long_cjk"]
    names = [x for x in os.listdir(os.path.join(shared_mount.path, "INBOX"))
             if helpers.uid_of(x) == k["uid"]]
    assert len(names) == 1, names
    name = names[0]
    raw = name.encode()
    assert len(raw) <= 255, len(raw)
    assert len(raw) >= 255 - 3 - 10, "shortened more than needed: %d bytes" % len(raw)
    raw.decode("utf-8")                      # cut on a character boundary
    m = helpers.NAME_RE.match(name)
    assert m and int(m.group(5)) == k["uid"], name
    shown = m.group(4).rstrip()
    assert shown and k["subject_text"].startswith(shown), shown
    with open(os.path.join(shared_mount.path, "INBOX", name), "rb") as f:
        assert len(f.read()) > 0


def test_uid_lookup_in_readable_mode(shared_mount, small_truth):
    for folder in ("INBOX", "日本語", "A & B", "Archive/2024/Q1"):
        d = helpers.folder_path(shared_mount.path, folder)
        for uid in sorted(small_truth[folder])[:3]:
            p = os.path.join(d, "%d.eml" % uid)
            st = os.stat(p)
            assert stat.S_ISREG(st.st_mode)
            assert st.st_size == small_truth[folder][uid]["size"]
            assert helpers.sha256_file(p) == small_truth[folder][uid]["sha256"]
        missing = max(small_truth[folder] or [0]) + 1000
        with pytest.raises(FileNotFoundError):
            os.stat(os.path.join(d, "%d.eml" % missing))
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(shared_mount.path, "No Such Folder"))


def test_partial_reads(shared_mount, small_truth, dovecot):
    """pread at odd offsets on a 1 MB message."""
    k = dovecot["manifest"]["known"]["attach_1m"]
    p = os.path.join(shared_mount.path, "INBOX", "%d.eml" % k["uid"])
    with open(p, "rb") as f:
        whole = f.read()
    assert helpers.sha256(whole) == k["sha256"]
    rnd = random.Random(7)
    fd = os.open(p, os.O_RDONLY)
    try:
        for _ in range(30):
            off = rnd.randrange(0, len(whole) + 100)
            n = rnd.choice([1, 17, 4096, 65536, 200000])
            assert os.pread(fd, n, off) == whole[off:off + n], (off, n)
    finally:
        os.close(fd)


def test_messages_are_immutable(shared_mount, small_truth):
    """Changing a message's bytes, name or mode is refused with EPERM (IMAP
    messages never change) and nothing happens on the server.  Only refusals
    are tried here: this mount is shared by the read-only tests."""
    root = shared_mount.path
    inbox = os.path.join(root, "INBOX")
    name = sorted(os.listdir(inbox))[0]
    f = os.path.join(inbox, name)
    ops = {
        "open-write": lambda: os.close(os.open(f, os.O_WRONLY)),
        "open-rdwr": lambda: os.close(os.open(f, os.O_RDWR)),
        "open-append": lambda: os.close(os.open(f, os.O_RDWR | os.O_APPEND)),
        "open-trunc": lambda: os.close(os.open(f, os.O_WRONLY | os.O_TRUNC)),
        "rename-in-folder": lambda: os.rename(f, os.path.join(inbox, "renamed.eml")),
        "rename-to-root": lambda: os.rename(f, os.path.join(root, "renamed.eml")),
        "truncate": lambda: os.truncate(f, 0),
        "chmod": lambda: os.chmod(f, 0o644),
        "utime": lambda: os.utime(f, (0, 0)),
        "symlink": lambda: os.symlink("/etc/passwd", os.path.join(inbox, "link")),
        "hardlink": lambda: os.link(f, os.path.join(inbox, "hard.eml")),
    }
    wrong = {}
    for what, op in ops.items():
        try:
            op()
            wrong[what] = "succeeded"
        except OSError as e:
            if e.errno != errno.EPERM:
                wrong[what] = "%s (%s)" % (errno.errorcode.get(e.errno), e)
    assert not wrong, "expected EPERM: %r" % wrong
    # nothing changed
    assert os.path.isfile(f)
    assert not os.path.exists(os.path.join(inbox, "renamed.eml"))
    assert helpers.sha256_file(f) == small_truth["INBOX"][helpers.uid_of(name)]["sha256"]
