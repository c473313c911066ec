"""Hardening of the model (folder tree, names, folder and message changes):

- a server that names INBOX "Inbox" and "INBOX" by turns in LIST
  (scripts/fake-imap-server.py --mode inbox-case) while readers go through
  the mount: no use of a freed name (the ASan build reports it), the mount
  lives;
- rmdir while another client appends to the folder destroys nothing, and a
  subfolder imapfs does not show still makes rmdir fail with ENOTEMPTY;
- mv onto a name a listed message has is EEXIST, and both messages stay;
- a message another client put in a folder just below the UID our own mv
  got there is found by its name at once;
- a Subject with bidi overrides or zero-width characters gives a file name
  without them."""

import errno
import hashlib
import imaplib
import os
import threading
import time

import pytest

import helpers
import live_helpers as lh
import write_helpers as wh
from relay_helpers import command_relay  # noqa: F401  (fixture)
from live_helpers import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.deadline(180)

FAKE = lh.load_fake_server()
HONEST = FAKE.account_messages(FAKE.HONEST)


# -- a folder's server name replaced under readers -------------------------------

def _fake_mount(live, fake_server, tmp_path, mode, *args):
    port, log = fake_server(mode, *args, lifetime=150)
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    opts = ["plaintext", "password_file=%s" % pw, "cache_dir=%s" % (tmp_path / "fcache"),
            "timeout=5", "dir_cache=0"]
    return live.mount(None, url="imap://alice@127.0.0.1:%d" % port, opts=opts), log


def test_inbox_renamed_by_list_under_readers(live, fake_server, tmp_path):
    """LIST says "Inbox", then "INBOX", then "Inbox" ...: both are the mount's
    INBOX, so the folder's server name is replaced at every LIST, while
    readers list and read INBOX (each ls syncs: dir_cache=0) and the watcher
    keeps it selected.  Nothing may use a replaced name after it was freed;
    every read gives the right bytes; the mount lives."""
    mnt, log = _fake_mount(live, fake_server, tmp_path, "inbox-case")
    inbox = os.path.join(mnt.path, "INBOX")
    truth = {uid: m["body"] for uid, m in HONEST["INBOX"].items()}
    stop = threading.Event()
    problems, reads = [], [0]

    def reader():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                for name in os.listdir(inbox):
                    with open(os.path.join(inbox, name), "rb") as f:
                        data = f.read()
                    if data != truth.get(helpers.uid_of(name)):
                        problems.append("wrong bytes for %s" % name)
                    reads[0] += 1
            except OSError as e:
                # a sync that lost the race with a LIST may fail; the mount
                # must not
                if mnt.proc.poll() is not None:
                    problems.append("mount died: %s" % e)
                    return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        for _ in range(300):
            if time.monotonic() > deadline or mnt.proc.poll() is not None:
                break
            try:
                os.utime(mnt.path)        # touch MOUNT: LIST again
            except OSError as e:
                problems.append("touch MOUNT: %s" % e)
                break
    finally:
        stop.set()
        for t in threads:
            t.join(70)
    assert mnt.proc.poll() is None, mnt.stderr()[-5000:]
    assert not problems, problems[:5]
    assert reads[0] > 0
    lists = helpers.read_text(log).count('"/" Inbox')
    assert lists >= 10, "the server was asked for LIST only %d times" % lists
    assert sorted(os.listdir(inbox)) and os.path.isdir(inbox)
    assert helpers.sanitizer_lines(mnt.stderr()) == []


# -- names: bidi controls and invisible characters ------------------------------

def _b_word(text):
    import base64
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


def test_bidi_subject_gives_plain_name(scratch_dovecot, scratch_mounter):
    """A Subject "Invoice <RLO>fdp.exe" (shown as "Invoice exe.pdf") and one
    full of zero-width and isolate characters: the file names have none of
    them; the messages open by those names with their bytes."""
    import unicodedata
    folder = wh.unique_folder("Bidi")
    subjects = {"Invoice \u202efdp.exe": "Invoice fdp.exe",
                "zero\u200bwidth\u2066iso\u2069late\ufeff\u00ad": "zerowidthisolate",
                "c1\u0085control": "c1 control"}
    msgs = [wh.make_msg(wh.unique("bidi"), i, subject=s) for i, s in enumerate(subjects)]
    for msg, s in zip(msgs, subjects):
        msg["raw"] = msg["raw"].replace(b"Subject: " + s.encode(), b"Subject: " + _b_word(s))
        msg["sha"] = helpers.sha256(msg["raw"])
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, msgs)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    names = sorted(os.listdir(d))
    want = sorted(helpers.utc_date(msg["when"].timestamp()) + " " + shown + ".%d.eml" % msg["uid"]
                  for msg, shown in zip(msgs, subjects.values()))
    assert names == want
    for name in names:
        assert not any(unicodedata.category(c) in ("Cf", "Cc") for c in name), ascii(name)
    for msg, shown in zip(msgs, subjects.values()):
        path = os.path.join(d, helpers.utc_date(msg["when"].timestamp()) + " " + shown +
                            ".%d.eml" % msg["uid"])
        assert helpers.sha256_file(path) == msg["sha"]


# -- mv onto a name that is taken ----------------------------------------------------

AT_FDCWD = -100
RENAME_NOREPLACE = 1


def _renameat2(old, new, flags):
    """renameat2(2) through libc; returns 0 or the errno."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                       ctypes.c_uint(flags))
    return ctypes.get_errno() if r != 0 else 0


def _rename_errno(old, new):
    try:
        os.rename(old, new)
    except OSError as e:
        return e.errno
    return 0


def test_mv_onto_listed_name_is_eexist(scratch_dovecot, scratch_mounter):
    """mv A/a B/<b's name> -- by rename(2) with or without RENAME_NOREPLACE,
    and by coreutils mv -- fails with EEXIST, as does mv onto B/<b's
    UID>.eml and onto a name an earlier mv gave another message; every
    message stays where it was, readable by its name with its own bytes."""
    fa, fb = wh.unique_folder("MvA"), wh.unique_folder("MvB")
    tok = wh.unique("mvx")
    a = [wh.make_msg(tok, i, subject="from A %d" % i) for i in range(3)]
    b = [wh.make_msg(tok, 10, subject="in B")]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, fa, a)
        wh.seed(m, fb, b)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    da, db = (helpers.folder_path(mnt.path, f) for f in (fa, fb))
    a_path = [os.path.join(da, wh.canonical(x, x["uid"])) for x in a]
    b_name = wh.canonical(b[0], b[0]["uid"])
    b_path = os.path.join(db, b_name)
    assert sorted(os.listdir(db)) == [b_name]

    assert _rename_errno(a_path[0], b_path) == errno.EEXIST
    assert _renameat2(a_path[0], b_path, 0) == errno.EEXIST
    assert _renameat2(a_path[0], b_path, RENAME_NOREPLACE) == errno.EEXIST
    assert _rename_errno(a_path[0], os.path.join(db, "%d.eml" % b[0]["uid"])) == errno.EEXIST
    r = wh.run(["mv", a_path[0], b_path], timeout=60)
    assert r.returncode != 0, "mv replaced a message"
    # a name an earlier mv gave: taken too
    custom = os.path.join(db, "kept-name.eml")
    os.rename(a_path[1], custom)
    assert helpers.sha256_file(custom) == a[1]["sha"]
    assert _rename_errno(a_path[2], custom) == errno.EEXIST

    assert helpers.sha256_file(b_path) == b[0]["sha"]
    assert helpers.sha256_file(custom) == a[1]["sha"]
    for x, p in ((a[0], a_path[0]), (a[2], a_path[2])):
        assert helpers.sha256_file(p) == x["sha"]
    problems = wh.wait_once(scratch_dovecot, [a[0], a[2]], [fa, fb], allowed=[fa])
    problems += wh.wait_once(scratch_dovecot, b + [a[1]], [fa, fb], allowed=[fb])
    assert problems == [], problems
    # rm of the taken name removes the message that has it, not the other
    os.unlink(b_path)
    problems = wh.wait_once(scratch_dovecot, [a[1]], [fa, fb], allowed=[fb])
    assert problems == [], problems


def test_alias_never_hides_a_listed_message(scratch_dovecot, scratch_mounter):
    """names=uid: A/5.eml is moved to the empty folder B, where it gets UID 1
    and its old name 5.eml opens it.  Then another client appends to B
    until B has its own UID 5: from then on B/5.eml is that message, not the
    moved one (which stays 1.eml)."""
    fa, fb = wh.unique_folder("AlA"), wh.unique_folder("AlB")
    tok = wh.unique("alias")
    a = [wh.make_msg(tok, i) for i in range(5)]
    c = [wh.make_msg(tok, 10 + i) for i in range(5)]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, fa, a)
        wh.create_folder(m, fb)
    finally:
        m.logout()
    assert a[4]["uid"] == 5
    mnt = scratch_mounter(scratch_dovecot, extra_opts=["names=uid", "dir_cache=0"])
    da, db = (helpers.folder_path(mnt.path, f) for f in (fa, fb))
    os.rename(os.path.join(da, "5.eml"), os.path.join(db, "5.eml"))
    assert helpers.sha256_file(os.path.join(db, "5.eml")) == a[4]["sha"]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, fb, c, create=False)
    finally:
        m.logout()
    assert [x["uid"] for x in c] == [2, 3, 4, 5, 6]
    os.utime(db)                    # touch B: sync now
    assert helpers.sha256_file(os.path.join(db, "5.eml")) == c[3]["sha"]
    assert helpers.sha256_file(os.path.join(db, "1.eml")) == a[4]["sha"]
    assert wh.listing_uids(db) == [1, 2, 3, 4, 5, 6]


def test_arrival_in_a_gap_below_ours_is_found(scratch_dovecot, scratch_mounter):
    """names=uid: the mount has listed B (UID 1; next UID 2).  Another client
    appends UID 2 to B, then mv brings A's message into B as UID 3.  B/2.eml
    is found (the lookup asks the server again) instead of ENOENT for
    dir_cache: our own arrival at 3 must not move the next UID known past
    the gap at 2."""
    fa, fb = wh.unique_folder("GapA"), wh.unique_folder("GapB")
    tok = wh.unique("gap")
    a, b, other = [wh.make_msg(tok, 0)], [wh.make_msg(tok, 1)], wh.make_msg(tok, 2)
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, fa, a)
        wh.seed(m, fb, b)
    finally:
        m.logout()
    assert a[0]["uid"] == 1 and b[0]["uid"] == 1
    mnt = scratch_mounter(scratch_dovecot, extra_opts=["names=uid"])
    da, db = (helpers.folder_path(mnt.path, f) for f in (fa, fb))
    assert wh.listing_uids(da) == [1]
    assert wh.listing_uids(db) == [1]      # B synced: its next UID is 2
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, fb, [other], create=False)
    finally:
        m.logout()
    assert other["uid"] == 2
    os.rename(os.path.join(da, "1.eml"), os.path.join(db, "moved.eml"))
    m = scratch_dovecot.connect()
    try:
        assert wh.check_once(m, a, allowed=[fb]) == []
        assert [r["uid"] for r in wh.folder_contents(m, fb)] == [1, 2, 3]
    finally:
        m.logout()
    # a name missing from the listing is looked for again at most once a
    # second (MB_MISS_REFRESH): wait that out, well within dir_cache (10 s)
    time.sleep(1.5)
    assert helpers.sha256_file(os.path.join(db, "2.eml")) == other["sha"]
    assert helpers.sha256_file(os.path.join(db, "moved.eml")) == a[0]["sha"]


# -- rmdir never destroys mail ------------------------------------------------------

def _append(server, folder, msg):
    """APPEND by another client; True when the server took it."""
    m = server.connect()
    try:
        typ, _ = m.append(wh.mailgen.qmbox(folder), None,
                          imaplib.Time2Internaldate(msg["when"]), msg["raw"])
        return typ == "OK"
    finally:
        m.logout()


def _proxied_mount(server, proxy, scratch_mounter, tmp_path):
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], proxy.port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=10",
            "cache_dir=" + str(tmp_path / "cache-hook")]
    return scratch_mounter(server, url=url, opts=opts)


def _rmdir_errno(path):
    try:
        os.rmdir(path)
    except OSError as e:
        return e.errno
    return 0


def _check_nothing_lost(server, folder, appended, err, failure=errno.ENOTEMPTY):
    """Every message another client stored is on the server once; if rmdir
    failed, it failed with `failure` and the folder has them all."""
    assert err in (0, failure), os.strerror(err)
    problems = wh.wait_once(server, appended, allowed=[folder] if err else None, timeout=2)
    assert problems == [], problems
    m = server.connect()
    try:
        exists = folder in wh.all_folders(m)
    finally:
        m.logout()
    assert exists == (err != 0)


@pytest.mark.parametrize("between", ["RENAME", "STATUS|SELECT", "DELETE"])
def test_rmdir_with_mail_arriving_in_between(scratch_dovecot, command_relay, scratch_mounter,
                                             tmp_path, between):
    """rmdir of an empty folder, while another client APPENDs to it right
    before imapfs's command `between` reaches the server (before the fix,
    STATUS said 0 -- even after the APPEND, from the session's view of the
    folder it had selected -- and DELETE took the new message along): whatever the
    server accepted is afterwards on the server."""
    folder = wh.unique_folder("RmRace")
    m = scratch_dovecot.connect()
    try:
        wh.create_folder(m, folder)
    finally:
        m.logout()
    proxy = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = _proxied_mount(scratch_dovecot, proxy, scratch_mounter, tmp_path)
    path = helpers.folder_path(mnt.path, folder)
    assert os.listdir(path) == []
    msg = wh.make_msg(wh.unique("rmrace"), 0)
    appended = []

    def hook():
        if _append(scratch_dovecot, folder, msg):
            appended.append(msg)

    proxy.arm(between, hook)
    err = _rmdir_errno(path)
    assert proxy.fired, "imapfs never sent %s" % between
    print("rmdir:", os.strerror(err), "after", proxy.fired, "appended", len(appended))
    _check_nothing_lost(scratch_dovecot, folder, appended, err)
    assert mnt.proc.poll() is None


def test_rmdir_while_another_client_appends(scratch_dovecot, scratch_mounter):
    """Rounds of: an empty folder, another client APPENDing to it in a tight
    loop (until the folder is gone, at most 40 messages), and rmdir at the
    same moment.  Every message the server accepted is on the server
    afterwards; a failed rmdir is ENOTEMPTY with the folder intact."""
    mnt = scratch_mounter(scratch_dovecot)
    outcomes = []
    for rnd in range(5):
        folder = wh.unique_folder("RmLoop")
        m = scratch_dovecot.connect()
        try:
            wh.create_folder(m, folder)
        finally:
            m.logout()
        path = helpers.folder_path(mnt.path, folder)
        assert os.listdir(path) == []
        tok = wh.unique("rmloop")
        appended, go = [], threading.Event()

        def appender():
            m = scratch_dovecot.connect()
            try:
                go.wait(10)
                deadline = time.monotonic() + 15
                for i in range(40):
                    if time.monotonic() > deadline:
                        break
                    msg = wh.make_msg(tok, i, size=300)
                    typ, _ = m.append(wh.mailgen.qmbox(folder), None,
                                      imaplib.Time2Internaldate(msg["when"]), msg["raw"])
                    if typ != "OK":
                        break
                    appended.append(msg)
            finally:
                m.logout()

        t = threading.Thread(target=appender)
        t.start()
        go.set()
        time.sleep(0.002 * rnd)     # the first APPEND before, during, after rmdir
        err = _rmdir_errno(path)
        t.join(30)
        assert not t.is_alive()
        outcomes.append((err, len(appended)))
        _check_nothing_lost(scratch_dovecot, folder, appended, err)
    print("rmdir outcomes (errno, appended):", outcomes)


def test_rmdir_counts_subfolders_imapfs_hides(scratch_dovecot, scratch_mounter):
    """A folder whose only subfolder has a name imapfs does not show (a
    component longer than 255 bytes of UTF-8; a bidi override) looks empty
    in the mount; rmdir fails with ENOTEMPTY and the server keeps both."""
    long_child = "\u65e5" * 90           # 270 bytes of UTF-8, 242 of mUTF-7
    cases = [(wh.unique_folder("RmHid"), long_child),
             (wh.unique_folder("RmBidi"), "x\u202egpj-exe")]
    m = scratch_dovecot.connect()
    try:
        for parent, child in cases:
            wh.create_folder(m, parent)
            wh.create_folder(m, parent + "/" + child)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    for parent, child in cases:
        path = helpers.folder_path(mnt.path, parent)
        assert os.listdir(path) == []
        assert _rmdir_errno(path) == errno.ENOTEMPTY
        assert os.path.isdir(path)
    m = scratch_dovecot.connect()
    try:
        names = wh.all_folders(m)
    finally:
        m.logout()
    for parent, child in cases:
        assert parent in names and parent + "/" + child in names, names
    assert not [n for n in names if "imapfs-rmdir-" in n], names


def test_rmdir_where_rename_is_refused(scratch_dovecot, command_relay, scratch_mounter,
                                      tmp_path):
    """A server that refuses RENAME (here: the proxy answers NO for it): rmdir
    checks the folder in place.  An empty folder goes; one that got a message
    after imapfs had selected it (STATUS would answer from the session's old
    view) stays, with ENOTEMPTY."""
    empty, late = wh.unique_folder("RmNoRen"), wh.unique_folder("RmNoRenLate")
    m = scratch_dovecot.connect()
    try:
        wh.create_folder(m, empty)
        wh.create_folder(m, late)
    finally:
        m.logout()
    proxy = command_relay(scratch_dovecot.env["IMAP_PORT"])
    proxy.refuse.add(b"RENAME")
    mnt = _proxied_mount(scratch_dovecot, proxy, scratch_mounter, tmp_path)
    late_path = helpers.folder_path(mnt.path, late)
    assert os.listdir(late_path) == []
    msg = wh.make_msg(wh.unique("norename"), 0)
    assert _append(scratch_dovecot, late, msg)
    assert _rmdir_errno(late_path) == errno.ENOTEMPTY
    _check_nothing_lost(scratch_dovecot, late, [msg], errno.ENOTEMPTY)
    assert _rmdir_errno(helpers.folder_path(mnt.path, empty)) == 0
    _check_nothing_lost(scratch_dovecot, empty, [], 0)
    assert "cannot be renamed" in mnt.stderr()


@pytest.mark.parametrize("cut_on", ["RENAME", "DELETE"])
def test_rmdir_connection_lost(scratch_dovecot, fault_proxy, scratch_mounter, tmp_path, cut_on):
    """The connection is cut right after the server did the RENAME to the
    private name (or the DELETE), before imapfs heard: on a new connection
    imapfs renames the folder back (rmdir fails, the folder and its mail
    are intact), or finds it deleted (rmdir succeeds)."""
    folder = wh.unique_folder("RmCut")
    msgs = [wh.make_msg(wh.unique("rmcut"), 0)] if cut_on == "RENAME" else []
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, msgs) if msgs else wh.create_folder(m, folder)
    finally:
        m.logout()
    port, log = fault_proxy(scratch_dovecot.env["IMAP_PORT"], cut_on=cut_on, cut_when="response")
    url = "imap://%s@127.0.0.1:%d" % (scratch_dovecot.env["USER"], port)
    opts = ["password_file=" + scratch_dovecot.env["PASSWORD_FILE"], "plaintext", "timeout=5",
            "cache_dir=" + str(tmp_path / "cache-cut")]
    mnt = scratch_mounter(scratch_dovecot, url=url, opts=opts)
    path = helpers.folder_path(mnt.path, folder)
    err = _rmdir_errno(path)
    assert "CUT response" in helpers.read_text(log)
    m = scratch_dovecot.connect()
    try:
        names = wh.all_folders(m)
    finally:
        m.logout()
    assert not [n for n in names if "imapfs-rmdir-" in n], names
    if cut_on == "RENAME":
        assert err == errno.EIO, os.strerror(err)
        _check_nothing_lost(scratch_dovecot, folder, msgs, err, failure=errno.EIO)
        assert "renaming it back" in mnt.stderr()
        assert os.listdir(path) == [wh.canonical(msgs[0], msgs[0]["uid"])]
    else:
        assert err == 0, os.strerror(err)
        assert folder not in names


def test_rmdir_leftover_renamed_back(scratch_dovecot, scratch_mounter):
    """A folder an interrupted rmdir (of an earlier mount) left under its
    private name gets its name back at the next LIST; one whose name was
    taken meanwhile is left alone."""
    kept, taken = wh.unique_folder("Kept"), wh.unique_folder("Taken")
    hidden_kept = "imapfs-rmdir-0badc0de-" + kept
    hidden_taken = "imapfs-rmdir-0badc0df-" + taken
    msgs = [wh.make_msg(wh.unique("leftover"), i) for i in range(2)]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, hidden_kept, msgs[:1])
        wh.seed(m, hidden_taken, msgs[1:])
        wh.create_folder(m, taken)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    root = os.listdir(mnt.path)
    assert kept in root and hidden_kept not in root
    assert taken in root and hidden_taken in root
    problems = wh.wait_once(scratch_dovecot, msgs[:1], allowed=[kept], timeout=2)
    problems += wh.wait_once(scratch_dovecot, msgs[1:], allowed=[hidden_taken], timeout=2)
    assert problems == [], problems
    assert "interrupted rmdir" in mnt.stderr()
