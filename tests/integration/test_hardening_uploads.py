"""Hardening of files being written (uploads) and what the mount lists.

- An upload of 4 GiB or more must never reach the server: libetpan 1.9.4
  announces an APPEND literal as a 32-bit number but sends every byte, so
  the bytes past the announced size would run as commands in the session.
  write() and truncate() past the limit fail with EFBIG (the server's
  APPENDLIMIT, else imapfs's own 2 GiB), and close() then stores nothing.
- A file created read-write and read back (Python "w+b", SQLite, editors)
  reads its bytes so far, and the daemon lives.
- A delivery name at the mount root can be used again at once.
- Every extended attribute listxattr names exists (rsync -aX, getfattr -d).
"""

import errno
import imaplib
import os
import subprocess

import pytest

import helpers
import write_helpers as wh
from helpers import mailgen

LIMIT = 2 << 30             # imapfs's own cap on one message (README, imapfs.1)
FOUR_GIB = 1 << 32


def _contents(server, folder):
    m = server.connect()
    try:
        return wh.folder_contents(m, folder)
    finally:
        m.logout()


def _folders(server):
    m = server.connect()
    try:
        return wh.all_folders(m)
    finally:
        m.logout()


def _new_folder(server, prefix):
    folder = wh.unique_folder(prefix)
    m = server.connect()
    try:
        wh.create_folder(m, folder)
    finally:
        m.logout()
    return folder


def _header_line(total):
    """A header field line of exactly `total` bytes (CRLF included)."""
    head = b"Subject: injection test\r\nX-Pad: "
    return head + b"a" * (total - len(head) - 2) + b"\r\n"


def test_sparse_4gib_cp_refused_nothing_sent(scratch_dovecot, scratch_mounter, tmp_path):
    """A sparse file of 2^32+60 bytes starting with a header block and with
    an IMAP command at byte 60 (what a 32-bit literal count would announce:
    {60}) is refused with EFBIG; no message and no folder appear."""
    folder = _new_folder(scratch_dovecot, "Big4G")
    injected = wh.unique_folder("Injected")
    src = tmp_path / "sparse.eml"
    with open(src, "wb") as f:
        f.write(_header_line(60))
        f.write(b"\r\nA901 CREATE %s\r\n" % injected.encode())
        f.truncate(FOUR_GIB + 60)
    mnt = scratch_mounter(scratch_dovecot)
    before = _folders(scratch_dovecot)
    r = wh.run(["cp", str(src), helpers.folder_path(mnt.path, folder) + "/"], timeout=120)
    assert r.returncode != 0, "cp of a 4 GiB file succeeded"
    assert b"File too large" in r.stderr, r.stderr
    assert _contents(scratch_dovecot, folder) == []
    after = _folders(scratch_dovecot)
    assert injected not in after
    assert after == before
    assert os.listdir(helpers.folder_path(mnt.path, folder)) == []


def test_write_past_limit_efbig_and_close_stores_nothing(scratch_dovecot, scratch_mounter):
    """pwrite() past the limit fails with EFBIG; close() reports it and
    stores nothing (not the part written before)."""
    folder = _new_folder(scratch_dovecot, "BigW")
    mnt = scratch_mounter(scratch_dovecot)
    msg = wh.make_msg(wh.unique("bigw"), 0)
    p = os.path.join(helpers.folder_path(mnt.path, folder), "big.eml")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        assert os.write(fd, msg["raw"]) == len(msg["raw"])
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"0123456789", LIMIT - 5)
        assert e.value.errno == errno.EFBIG
        # the limit itself is fine to reach, not to pass
        assert os.pwrite(fd, b"x", LIMIT - 1) == 1
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"y", LIMIT)
        assert e.value.errno == errno.EFBIG
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)
    assert e.value.errno == errno.EFBIG
    assert _contents(scratch_dovecot, folder) == []
    assert os.listdir(helpers.folder_path(mnt.path, folder)) == []


def test_truncate_past_limit_efbig(scratch_dovecot, scratch_mounter):
    """ftruncate() and truncate() of a file being written past the limit
    fail with EFBIG, and the file then stores nothing."""
    folder = _new_folder(scratch_dovecot, "BigT")
    mnt = scratch_mounter(scratch_dovecot)
    msg = wh.make_msg(wh.unique("bigt"), 0)
    p = os.path.join(helpers.folder_path(mnt.path, folder), "trunc.eml")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, msg["raw"])
        for how in (lambda: os.ftruncate(fd, LIMIT + 1),
                    lambda: os.truncate(p, FOUR_GIB + 60)):
            with pytest.raises(OSError) as e:
                how()
            assert e.value.errno == errno.EFBIG
        assert os.fstat(fd).st_size == len(msg["raw"])
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)
    assert e.value.errno == errno.EFBIG
    assert _contents(scratch_dovecot, folder) == []


def _fake_mount(imapfs_bin, fake_server, tmp_path, limit, *args):
    port, log = fake_server("appendlimit", "--append-limit", str(limit), *args,
                            lifetime=90)
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    mnt = helpers.Mount(imapfs_bin, "imap://alice@127.0.0.1:%d" % port,
                        str(tmp_path / "fmnt"),
                        ["plaintext", "password_file=%s" % pw,
                         "cache_dir=%s" % (tmp_path / "fcache"), "prefetch=0"],
                        logdir=str(tmp_path), name="imapfs-fake")
    return mnt, log


def _appends(log):
    with open(log, "rb") as f:
        return [l for l in f.read().splitlines()
                if l.startswith(b"C: ") and b" APPEND " in l.upper()]


def test_server_appendlimit_refused_before_sending(imapfs_bin, fake_server, tmp_path):
    """A server announcing APPENDLIMIT=4000: a 5000-byte cp fails with EFBIG
    and no APPEND is sent; a 600-byte one is APPENDed."""
    mnt, log = _fake_mount(imapfs_bin, fake_server, tmp_path, 4000)
    mnt.start()
    try:
        big = wh.make_msg(wh.unique("al"), 0, size=5000)["raw"]
        small = wh.make_msg(wh.unique("al"), 1, size=600)["raw"]
        (tmp_path / "big.eml").write_bytes(big)
        (tmp_path / "small.eml").write_bytes(small)
        dest = os.path.join(mnt.path, "Other") + "/"
        r = wh.run(["cp", str(tmp_path / "big.eml"), dest], timeout=60)
        assert r.returncode != 0
        assert b"File too large" in r.stderr, r.stderr
        assert _appends(log) == []
        r = wh.run(["cp", str(tmp_path / "small.eml"), dest], timeout=60)
        assert r.returncode == 0, r.stderr
        sent = _appends(log)
        assert len(sent) == 1 and sent[0].endswith(b"{%d}" % len(small)), sent
    finally:
        mnt.stop()


def test_server_refusing_too_big_is_efbig(imapfs_bin, fake_server, tmp_path):
    """A server whose folder has a smaller limit than the one it announces
    answers the APPEND with NO [TOOBIG] (before any byte of the message):
    close() fails with EFBIG, not EIO."""
    mnt, log = _fake_mount(imapfs_bin, fake_server, tmp_path, 100000,
                           "--enforce-limit", "4000")
    mnt.start()
    try:
        big = wh.make_msg(wh.unique("tb"), 0, size=5000)["raw"]
        (tmp_path / "big.eml").write_bytes(big)
        r = wh.run(["cp", str(tmp_path / "big.eml"), os.path.join(mnt.path, "Other") + "/"],
                   timeout=60)
        assert r.returncode != 0
        assert b"File too large" in r.stderr, r.stderr
        assert len(_appends(log)) == 1
    finally:
        mnt.stop()


def _big_sizes(imapfs_bin, fake_server, tmp_path, name, *opts):
    """The fake server in big-sizes mode and a plain mount of it (names=uid,
    a cache of its own, opts added), not started: (port, log, mount)."""
    port, log = fake_server("big-sizes", lifetime=90)
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    mnt = helpers.Mount(imapfs_bin, "imap://alice@127.0.0.1:%d" % port,
                        str(tmp_path / (name + "-mnt")),
                        ["plaintext", "password_file=%s" % pw, "names=uid",
                         "cache_dir=%s" % (tmp_path / (name + "-cache"))] + list(opts),
                        logdir=str(tmp_path), name="imapfs-" + name)
    return port, log, mnt


def _whole_body(port, folder):
    """UID 1 of folder, BODY[] as an independent client (imaplib) reads it."""
    m = imaplib.IMAP4("127.0.0.1", port)
    try:
        m.login("alice", "any-password")
        m.select(folder)
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
    finally:
        m.logout()
    assert typ == "OK", data
    return data[0][1]


def test_sizes_near_4gib_stay_64_bit(imapfs_bin, fake_server, tmp_path):
    """RFC822.SIZE 4294967000: st_blocks is computed without wrapping (it
    was 0); a body that goes on past 4 GiB (more than IMAP can address) is
    refused at open with EFBIG instead of showing as an empty file."""
    _, _, mnt = _big_sizes(imapfs_bin, fake_server, tmp_path, "big", "prefetch=0")
    mnt.start()
    try:
        huge = os.path.join(mnt.path, "Huge")
        st = os.stat(os.path.join(huge, "1.eml"))
        assert st.st_size == 4294967000
        assert st.st_blocks == (4294967000 + 511) // 512
        with pytest.raises(OSError) as e:
            open(os.path.join(huge, "2.eml"), "rb").close()
        assert e.value.errno == errno.EFBIG
        assert os.stat(os.path.join(huge, "2.eml")).st_size == 4294967000
    finally:
        mnt.stop()


def test_read_ahead_run_longer_than_asked(imapfs_bin, fake_server, tmp_path):
    """A server that answers a read-ahead run (a partial FETCH of many
    blocks) with 100 bytes more than the body has there: either more than
    asked for (the session is given up, the blocks fetched one by one
    instead), or, the run reaching the end, a body longer than RFC822.SIZE
    says (its end is fetched again alone, which agrees with the claim).
    cat reads the exact bytes (an independent imaplib BODY[]); the daemon
    goes on."""
    port, log, mnt = _big_sizes(imapfs_bin, fake_server, tmp_path, "spill")
    want = _whole_body(port, "Spill")
    assert len(want) == 1000000
    mnt.start()
    try:
        p = os.path.join(mnt.path, "Spill", "1.eml")
        r = subprocess.run(["cat", p], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == want
        assert "sent more than" in helpers.read_text(mnt.stderr_path)
        assert os.listdir(os.path.join(mnt.path, "INBOX")) == ["1.eml"]
    finally:
        mnt.stop()


def test_read_ahead_run_cut_before_its_ok(imapfs_bin, fake_server, tmp_path):
    """The connection is closed after a read-ahead run's bytes all came but
    before its tagged OK: cat reads the exact bytes (an independent imaplib
    BODY[]), and the retry on a new connection asks for nothing more -- it
    asked for a range of 0 bytes, which libetpan sends as the whole message
    (BODY.PEEK[]), refused as soon as it came."""
    port, log, mnt = _big_sizes(imapfs_bin, fake_server, tmp_path, "cut")
    want = _whole_body(port, "Cut")
    assert len(want) == 8 * 131072
    mnt.start()
    try:
        r = subprocess.run(["cat", os.path.join(mnt.path, "Cut", "1.eml")], capture_output=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == want
        assert os.listdir(os.path.join(mnt.path, "INBOX")) == ["1.eml"]
    finally:
        mnt.stop()
    with open(log, "rb") as f:
        conv = f.read()
    assert b"<Cut: the whole run" in conv
    whole = [l for l in conv.splitlines() if l.startswith(b"C: ") and b"(UID BODY.PEEK[])" in l]
    assert not whole, whole
    assert "server sent" not in helpers.read_text(mnt.stderr_path)


def test_bytes_of_another_range_are_refused(imapfs_bin, fake_server, tmp_path):
    """A server that answers a partial FETCH BODY[]<o.n> (o > 0) with the
    bytes of another range, labelled BODY[]<o+1>: imapfs never places them
    where it asked.  Opening the message (whose last block is fetched to
    check its size) or reading it fails with EIO, again on a second try
    (nothing wrong was cached), and the daemon goes on."""
    _, _, mnt = _big_sizes(imapfs_bin, fake_server, tmp_path, "shifted")
    mnt.start()
    try:
        p = os.path.join(mnt.path, "Shifted", "1.eml")
        assert os.stat(p).st_size == 400000
        for _ in range(2):
            with pytest.raises(OSError) as e:
                with open(p, "rb") as f:
                    f.seek(300000)
                    f.read(1000)
            assert e.value.errno == errno.EIO
        assert "server sent the bytes of UID 1 from offset" in helpers.read_text(mnt.stderr_path)
        assert os.listdir(os.path.join(mnt.path, "INBOX")) == ["1.eml"]
        with open(os.path.join(mnt.path, "INBOX", "1.eml"), "rb") as f:
            assert len(f.read()) == 800
    finally:
        mnt.stop()


def _body_fetches(log):
    with open(log, "rb") as f:
        return sum(1 for l in f.read().splitlines()
                   if l.startswith(b"C: ") and b"BODY.PEEK[]<" in l.upper())


@pytest.mark.parametrize("uid,want", [(1, 900), (3, None)])
def test_lying_size_found_in_few_fetches(imapfs_bin, fake_server, tmp_path, uid, want):
    """A claimed size near 4 GiB for 900 bytes, or a body without end under a
    claim of 1000 bytes: the real size (or EFBIG: past 4 GiB) is found in a
    few dozen FETCHes, not one per 128 KiB block (32,768 of them)."""
    _, log, mnt = _big_sizes(imapfs_bin, fake_server, tmp_path, "lie", "prefetch=0",
                             "cache_size=0")
    mnt.start()
    try:
        p = os.path.join(mnt.path, "Huge", "%d.eml" % uid)
        if want is None:
            with pytest.raises(OSError) as e:
                open(p, "rb").close()
            assert e.value.errno == errno.EFBIG
        else:
            with open(p, "rb") as f:
                assert len(f.read()) == want
            assert os.stat(p).st_size == want
        assert _body_fetches(log) <= 40
    finally:
        mnt.stop()


def test_read_back_upload_in_progress(scratch_dovecot, scratch_mounter):
    """open(p, "w+b"), write, seek 0, read: the bytes written so far (as a
    local file would give), and the daemon lives; the message is stored once
    when closed."""
    folder = _new_folder(scratch_dovecot, "RW")
    mnt = scratch_mounter(scratch_dovecot)
    msg = wh.make_msg(wh.unique("rw"), 0, size=3000)
    d = helpers.folder_path(mnt.path, folder)
    with open(os.path.join(d, "rw.eml"), "w+b") as f:
        f.write(msg["raw"])
        f.flush()
        f.seek(0)
        assert f.read() == msg["raw"]
        f.seek(100)
        assert f.read(50) == msg["raw"][100:150]
    assert os.path.isdir(d)
    assert wh.wait_once(scratch_dovecot, [msg], [folder]) == []
    listing = os.listdir(d)
    assert len(listing) == 1, listing
    with open(os.path.join(d, listing[0]), "rb") as f:
        assert f.read() == msg["raw"]


def test_read_write_open_of_stored_message_refused(scratch_dovecot, scratch_mounter):
    """Opening a stored message read-write is refused (EPERM): messages are
    immutable; the mount stays up."""
    folder = _new_folder(scratch_dovecot, "RW2")
    msg = wh.make_msg(wh.unique("rw2"), 0)
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [msg], create=False)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    name = os.listdir(d)[0]
    with pytest.raises(OSError) as e:
        open(os.path.join(d, name), "r+b")
    assert e.value.errno == errno.EPERM
    with open(os.path.join(d, name), "rb") as f:
        assert f.read() == msg["raw"]


def test_delivery_name_reused_at_once(scratch_dovecot, rf_mounter, tmp_path):
    """cp a.eml MOUNT/new.eml, then cp b.eml MOUNT/new.eml (within
    dir_cache): both are delivered (to INBOX, the default receive folder)."""
    mnt = rf_mounter(scratch_dovecot, extra_opts=["dir_cache=60"])
    msgs = [wh.make_msg(wh.unique("deliv"), i) for i in range(3)]
    for i, msg in enumerate(msgs):
        src = tmp_path / ("m%d.eml" % i)
        src.write_bytes(msg["raw"])
        r = wh.run(["cp", str(src), os.path.join(mnt.path, "new.eml")], timeout=60)
        assert r.returncode == 0, "cp #%d: %r" % (i + 1, r.stderr)
    assert wh.wait_once(scratch_dovecot, msgs, ["INBOX"]) == []


def test_xattrs_listed_exist_rsync_getfattr(scratch_dovecot, scratch_mounter, tmp_path):
    """A message without Message-ID: listxattr does not name
    user.imap.message_id; rsync -aX of the whole mount exits 0 and
    getfattr -R -d -m - reports no error (messages, folders, the root, the
    control files)."""
    folder = _new_folder(scratch_dovecot, "Xa")
    raw = (b"From: a@example.org\r\nSubject: no message id\r\n"
           b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n")
    m = scratch_dovecot.connect()
    try:
        mailgen.append(m, folder, raw, [], wh.make_msg("x", 0)["when"])
        wh.seed(m, folder, [wh.make_msg(wh.unique("xa"), 0)], create=False)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    names = sorted(os.listdir(d))
    assert len(names) == 2, names
    for n in names:
        p = os.path.join(d, n)
        listed = os.listxattr(p)
        for a in listed:
            os.getxattr(p, a)          # every attribute listed exists
        with open(p, "rb") as f:
            has_id = b"Message-ID:" in f.read()
        assert ("user.imap.message_id" in listed) == has_id, (n, listed)
    for p in (mnt.path, d, os.path.join(mnt.path, ".receive-folders"),
              os.path.join(mnt.path, ".status")):
        for a in os.listxattr(p):
            os.getxattr(p, a)
    backup = tmp_path / "backup"
    r = wh.run(["rsync", "-aX", mnt.path + "/", str(backup) + "/"], timeout=120)
    assert r.returncode == 0, r.stderr
    assert (backup / helpers.folder_path("", folder).lstrip("/")).is_dir()
    r = subprocess.run(["getfattr", "-R", "-d", "-m", "-", os.path.basename(mnt.path)],
                       cwd=os.path.dirname(mnt.path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert b"user.imap.uid" in r.stdout
