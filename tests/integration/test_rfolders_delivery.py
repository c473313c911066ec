"""Delivery (spec receive-folders.md section 4): a message written as a new
file directly at the mount root is APPENDed, at close, to the receive folder
of its derived class.  Errors come from flush/close (cp reports them) and
nothing is stored then.  Checked on the server with imaplib (Message-ID and
the SHA-256 of BODY[])."""

import errno
import os

import pytest

import mime_fixtures as mf
import write_helpers as wh

FOLDERS = ["Samples", "Archive", "Docs", "Calendar"]


@pytest.fixture(scope="module")
def server(scratch_dovecot):
    m = scratch_dovecot.connect()
    try:
        for f in FOLDERS:
            wh.create_folder(m, f)
    finally:
        m.logout()
    return scratch_dovecot


@pytest.fixture
def mnt(server, rf_mounter):
    """Setup A (defaults + IPM.Note.Sample -> Samples) on a fresh table."""
    mount = rf_mounter(server)
    wh.rf_set(mount.path, "IPM.Note.Sample Samples")
    return mount


def cp_root(mount, tmp_path, msg, name="msg.eml"):
    src = tmp_path / name
    src.write_bytes(msg["raw"])
    return wh.run(["cp", str(src), mount.path + "/"], timeout=60)


def where(server, msgs):
    m = server.connect()
    try:
        return wh.locate(m, msgs)
    finally:
        m.logout()


def assert_delivered(server, msg, folder):
    m = server.connect()
    try:
        problems = wh.check_once(m, [msg], allowed=[folder])
    finally:
        m.logout()
    assert problems == [], problems


def counts(server):
    m = server.connect()
    try:
        return wh.folder_counts(m)
    finally:
        m.logout()


def test_plain_to_inbox(server, mnt, tmp_path):
    msg = mf.plain(wh.unique("dlv"))
    r = cp_root(mnt, tmp_path, msg)
    assert r.returncode == 0, r.stderr
    assert_delivered(server, msg, "INBOX")


def test_tnef_to_samples(server, mnt, tmp_path):
    msg = mf.tnef(wh.unique("dlv"), "IPM.Note.Sample.Simple")
    assert msg["cls"] == "IPM.Note.Sample.Simple"
    r = cp_root(mnt, tmp_path, msg, "winmail-msg.eml")
    assert r.returncode == 0, r.stderr
    assert_delivered(server, msg, "Samples")


def test_tnef_without_correlator_to_inbox(server, mnt, tmp_path):
    msg = mf.tnef(wh.unique("dlv"), "IPM.Note.Sample.Simple", correlator=False)
    assert msg["cls"] == "IPM.Note"
    r = cp_root(mnt, tmp_path, msg)
    assert r.returncode == 0, r.stderr
    assert_delivered(server, msg, "INBOX")


def test_meetings_to_calendar(server, mnt, tmp_path):
    wh.rf_set(mnt.path, "IPM.Schedule.Meeting Calendar")
    tok = wh.unique("dlv")
    req = mf.calendar(tok, "REQUEST")
    resp = mf.calendar(tok, "REPLY", "ACCEPTED")
    appt = mf.calendar(tok, "PUBLISH")                 # IPM.Appointment -> IPM
    for i, msg in enumerate((req, resp, appt)):
        r = cp_root(mnt, tmp_path, msg, "cal%d.eml" % i)
        assert r.returncode == 0, (msg["kind"], r.stderr)
    assert_delivered(server, req, "Calendar")
    assert_delivered(server, resp, "Calendar")
    assert_delivered(server, appt, "INBOX")


def test_default_row_target(server, mnt, tmp_path):
    """A class below no row but "" goes where "" points."""
    wh.rf_set(mnt.path, '"" Archive')
    msg = mf.tnef(wh.unique("dlv"), "Custom.Class.Thing")
    plain = mf.plain(wh.unique("dlv"))
    for i, x in enumerate((msg, plain)):
        r = cp_root(mnt, tmp_path, x, "d%d.eml" % i)
        assert r.returncode == 0, r.stderr
    assert_delivered(server, msg, "Archive")
    assert_delivered(server, plain, "INBOX")            # IPM row


def test_open_write_close(server, mnt):
    msg = mf.tnef(wh.unique("dlv"), "IPM.Note.Sample.Simple")
    fd = os.open(os.path.join(mnt.path, "direct.eml"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        half = len(msg["raw"]) // 2
        assert os.write(fd, msg["raw"][:half]) == half
        assert os.write(fd, msg["raw"][half:]) == len(msg["raw"]) - half
    finally:
        os.close(fd)
    assert_delivered(server, msg, "Samples")


def test_several_in_one_cp(server, mnt, tmp_path):
    wh.rf_set(mnt.path, "IPM.Schedule.Meeting Calendar")
    tok = wh.unique("dlv")
    msgs = [(mf.plain(tok), "INBOX"), (mf.tnef(tok), "Samples"),
            (mf.calendar(tok, "CANCEL"), "Calendar")]
    srcs = []
    for i, (msg, _) in enumerate(msgs):
        p = tmp_path / ("m%d.eml" % i)
        p.write_bytes(msg["raw"])
        srcs.append(str(p))
    r = wh.run(["cp"] + srcs + [mnt.path + "/"], timeout=60)
    assert r.returncode == 0, r.stderr
    for msg, folder in msgs:
        assert_delivered(server, msg, folder)


def test_receive_folder_root_eopnotsupp(server, mnt, tmp_path):
    """A class below IPC (default row -> "/", the store root) cannot be
    stored by IMAP: EOPNOTSUPP from close, nothing stored anywhere."""
    msg = mf.tnef(wh.unique("dlv"), "IPC.Test.Thing")
    assert wh.rf_get(mnt.path, "IPC.Test.Thing") == ("/", "IPC")
    before = counts(server)
    r = cp_root(mnt, tmp_path, msg)
    assert r.returncode != 0, "delivery to / succeeded"
    assert b"Operation not supported" in r.stderr, r.stderr
    fd = os.open(os.path.join(mnt.path, "ipc.eml"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o644)
    closed = False
    try:
        os.write(fd, msg["raw"])
        with pytest.raises(OSError) as ei:
            closed = True
            os.close(fd)
    finally:
        if not closed:
            os.close(fd)
    assert ei.value.errno == errno.EOPNOTSUPP, ei.value
    assert where(server, [msg])[msg["msgid"]] == []
    assert counts(server) == before


NOT_MESSAGES = {
    "empty": b"",
    "no-header-lines": b"just some text\r\nwithout any header\r\n\r\nbody\r\n",
    "blank-first-line": b"\r\nSubject: no\r\n\r\nbody\r\n",
}


@pytest.mark.parametrize("kind", sorted(NOT_MESSAGES))
def test_not_a_message_einval(server, mnt, tmp_path, kind):
    before = counts(server)
    src = tmp_path / "bad.eml"
    src.write_bytes(NOT_MESSAGES[kind])
    r = wh.run(["cp", str(src), mnt.path + "/"], timeout=60)
    assert r.returncode != 0, "cp of a non-message to the root succeeded"
    assert b"Invalid argument" in r.stderr, r.stderr
    fd = os.open(os.path.join(mnt.path, "bad2.eml"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    closed = False
    try:
        if NOT_MESSAGES[kind]:
            os.write(fd, NOT_MESSAGES[kind])
        with pytest.raises(OSError) as ei:
            closed = True
            os.close(fd)
    finally:
        if not closed:
            os.close(fd)
    assert ei.value.errno == errno.EINVAL, ei.value
    assert counts(server) == before


def test_control_file_still_a_table(mnt, tmp_path):
    """A delivery does not touch the table; the control file is not a
    delivery target."""
    before = wh.rf_rows(mnt.path)
    msg = mf.plain(wh.unique("dlv"))
    assert cp_root(mnt, tmp_path, msg).returncode == 0
    assert wh.rf_rows(mnt.path) == before
