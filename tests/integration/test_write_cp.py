"""cp FILE Folder/ appends the message (APPEND); existing messages cannot be
written, truncated or appended to (EPERM)."""

import datetime as dt
import errno
import os
import random

import pytest

import helpers
import write_helpers as wh


def target(server, n=1):
    """A folder with `n` messages already in it."""
    folder = wh.unique_folder("CpDst")
    m = server.connect()
    try:
        pre = wh.seed(m, folder, [wh.make_msg(wh.unique("cppre"), i) for i in range(n)])
    finally:
        m.logout()
    return folder, pre


def contents(server, folder):
    m = server.connect()
    try:
        return wh.folder_contents(m, folder)
    finally:
        m.logout()


def new_records(server, folder, pre):
    old = {p["uid"] for p in pre}
    return [r for r in contents(server, folder) if r["uid"] not in old]


def write_file(tmp_path, name, data, mtime=None):
    p = tmp_path / name
    p.write_bytes(data)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return str(p)


def cp_in(server, mount, tmp_path, folder, pre, raw, stored, name="msg.eml",
          cp_args=()):
    """cp a file holding `raw` into the folder; check that `stored` is on the
    server once and shows through the mount.  Returns the server record."""
    src = write_file(tmp_path, name, raw)
    d = helpers.folder_path(mount.path, folder)
    r = wh.run(["cp"] + list(cp_args) + [src, d + "/"], timeout=300)
    assert r.returncode == 0, r.stderr
    new = new_records(server, folder, pre)
    assert len(new) == 1, "expected one new message, got %d" % len(new)
    rec = new[0]
    assert rec["size"] == len(stored)
    assert rec["sha"] == helpers.sha256(stored), "stored bytes differ"
    # the name cp used resolves; the canonical name shows the stored message
    assert os.path.exists(os.path.join(d, name))
    listing = os.listdir(d)
    assert len(listing) == len(pre) + 1, listing
    canon = [n for n in listing if helpers.uid_of(n) == rec["uid"]]
    assert len(canon) == 1, listing
    p = os.path.join(d, canon[0])
    assert os.stat(p).st_size == len(stored)
    assert helpers.sha256_file(p) == helpers.sha256(stored)
    rec["name"], rec["dir"] = canon[0], d
    return rec


def test_cp_crlf_exact(scratch_dovecot, scratch_mounter, tmp_path):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    msg = wh.make_msg(wh.unique("cp"), 0, body="attach", size=5000)
    rec = cp_in(scratch_dovecot, mnt, tmp_path, folder, pre, msg["raw"], msg["raw"])
    assert rec["msgid"] == msg["msgid"]
    assert os.stat(os.path.join(rec["dir"], "msg.eml")).st_size == len(msg["raw"])
    assert rec["name"] == helpers.expected_name(msg["subject"], rec["internaldate"],
                                                rec["uid"])


def test_cp_bare_lf_stored_as_crlf(scratch_dovecot, scratch_mounter, tmp_path):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    msg = wh.make_msg(wh.unique("cplf"), 0, body="utf8", size=3000)
    lf = msg["raw"].replace(b"\r\n", b"\n")
    rec = cp_in(scratch_dovecot, mnt, tmp_path, folder, pre, lf, msg["raw"],
                name="lf.eml")
    # the name cp used: the stored size after close (if the kernel still has
    # the written size cached, the canonical name checked above is decisive)
    st = os.stat(os.path.join(rec["dir"], "lf.eml"))
    if st.st_size != len(msg["raw"]):
        print("note: %r still shows %d bytes (stored: %d)" % ("lf.eml", st.st_size,
                                                             len(msg["raw"])))


FOLDED = (
    "Return-Path: <jürgen@example.de>\r\n"
    "From: Jürgen Müller <juergen@example.de>\r\n"
    "To: 山田 太郎 <yamada@example.jp>,\r\n"
    "\t=?utf-8?q?Zo=C3=AB?= <zoe@example.org>\r\n"
    "Subject: Grüße aus München — eine sehr lange Betreffzeile, die gefaltet\r\n"
    " wird, über  mehrere\r\n"
    "\tZeilen 日本語\r\n"
    "Date: Tue, 02 Jan 2024 03:04:05 +0100\r\n"
    "Message-ID:\r\n"
    " <%s@imapfs-test.localhost>\r\n"
    "X-Weird:   trailing spaces   \r\n"
    "X-Empty:\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße — ünïcödé body\r\n"
    "\r\n"
    "  indented line\r\n")


def test_cp_non_ascii_folded_headers(scratch_dovecot, scratch_mounter, tmp_path):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    raw = (FOLDED % wh.unique("folded")).encode()
    rec = cp_in(scratch_dovecot, mnt, tmp_path, folder, pre, raw, raw,
                name="folded.eml")
    assert rec["body"] == raw


@pytest.mark.slow
@pytest.mark.deadline(300)
def test_cp_30mb(scratch_dovecot, scratch_mounter, tmp_path):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    rnd = random.Random(30)
    tok = wh.unique("big")
    head = ("From: Bob <bob@example.org>\r\nTo: alice@localhost\r\n"
            "Subject: 30 MB %s\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            "Message-ID: <%s@imapfs-test.localhost>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" % (tok, tok)).encode()
    raw = head + wh.mailgen.b64_lines(rnd.randbytes(30 * 1024 * 1024 * 3 // 4))
    assert len(raw) > 30_000_000
    cp_in(scratch_dovecot, mnt, tmp_path, folder, pre, raw, raw, name="big.eml")


NOT_MESSAGES = {
    "empty": b"",
    "blank-first-line": b"\r\nSubject: no\r\n\r\nbody\r\n",
    "binary": bytes(random.Random(7).randrange(256) for _ in range(4096))
    .replace(b":", b"").replace(b"\n", b""),
    "no-header-lines": b"just some text\r\nwithout any header\r\n\r\nbody\r\n",
}


@pytest.mark.parametrize("kind", sorted(NOT_MESSAGES))
def test_cp_not_a_message_einval(scratch_dovecot, scratch_mounter, tmp_path, kind):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    before = os.listdir(d)
    src = write_file(tmp_path, "bad.eml", NOT_MESSAGES[kind])
    r = wh.run(["cp", src, d + "/"], timeout=60)
    assert r.returncode != 0, "cp of a non-message succeeded"
    assert b"Invalid argument" in r.stderr, r.stderr
    assert new_records(scratch_dovecot, folder, pre) == []
    assert sorted(os.listdir(d)) == sorted(before)


@pytest.mark.parametrize("kind", ["empty", "blank-first-line"])
def test_write_not_a_message_errno(scratch_dovecot, scratch_mounter, kind):
    """The same through open/write/close: EINVAL (at close at the latest)."""
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    with pytest.raises(OSError) as ei:
        fd = os.open(os.path.join(d, "x.eml"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o644)
        try:
            if NOT_MESSAGES[kind]:
                os.write(fd, NOT_MESSAGES[kind])
        finally:
            os.close(fd)
    assert ei.value.errno == errno.EINVAL, ei.value
    assert new_records(scratch_dovecot, folder, pre) == []
    assert len(os.listdir(d)) == len(pre)


def test_touch_new_file_fails(scratch_dovecot, scratch_mounter):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    r = wh.run(["touch", os.path.join(d, "newfile")], timeout=60)
    assert r.returncode != 0, "touch of a new file succeeded"
    assert new_records(scratch_dovecot, folder, pre) == []
    assert "newfile" not in os.listdir(d)
    assert len(os.listdir(d)) == len(pre)


def test_cp_p_sets_internaldate(scratch_dovecot, scratch_mounter, tmp_path):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    msg = wh.make_msg(wh.unique("cpp"), 0)
    when = int(dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=wh.UTC).timestamp())
    src = write_file(tmp_path, "dated.eml", msg["raw"], mtime=when)
    d = helpers.folder_path(mnt.path, folder)
    r = wh.run(["cp", "-p", src, d + "/"], timeout=60)
    assert r.returncode == 0, r.stderr
    new = new_records(scratch_dovecot, folder, pre)
    assert len(new) == 1
    assert new[0]["sha"] == msg["sha"]
    assert new[0]["internaldate"] == when, "INTERNALDATE %s, file mtime %s" % (
        wh.rfc3339(new[0]["internaldate"]), wh.rfc3339(when))
    canon = helpers.expected_name(msg["subject"], when, new[0]["uid"])
    assert canon in os.listdir(d)
    assert canon.startswith("2021-03-04 ")


# -- existing messages are read-only ---------------------------------------------

@pytest.mark.parametrize("how", ["O_WRONLY", "O_RDWR", "O_APPEND", "O_TRUNC",
                                 "truncate"])
def test_existing_message_not_writable(scratch_dovecot, scratch_mounter, how):
    folder, pre = target(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    p = os.path.join(helpers.folder_path(mnt.path, folder),
                     wh.canonical(pre[0], pre[0]["uid"]))
    flags = {"O_WRONLY": os.O_WRONLY, "O_RDWR": os.O_RDWR,
             "O_APPEND": os.O_WRONLY | os.O_APPEND,
             "O_TRUNC": os.O_WRONLY | os.O_TRUNC}
    with pytest.raises(OSError) as ei:
        if how == "truncate":
            os.truncate(p, 10)
        else:
            fd = os.open(p, flags[how])
            try:
                os.write(fd, b"X")
            finally:
                os.close(fd)
    assert ei.value.errno == errno.EPERM, ei.value
    with open(p, "rb") as f:
        assert f.read() == pre[0]["raw"]
    m = scratch_dovecot.connect()
    try:
        assert wh.check_once(m, pre, [folder]) == []
    finally:
        m.logout()
