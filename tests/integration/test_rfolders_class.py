"""The derived message class (spec receive-folders.md section 2): every
message file has the read-only xattr user.mapi.message_class.  Inputs: the
spec's "MIME inputs" table (section 5), built by mime_fixtures.py and
APPENDed through imaplib; one mount for the whole module."""

import errno
import os

import pytest

import helpers
import mime_fixtures as mf
import write_helpers as wh

XATTR = "user.mapi.message_class"
TOKEN = wh.unique("cls")
TABLE = mf.class_table(TOKEN)
EXTRA = [
    mf.tnef(TOKEN, "IPM.Note.Sample.Simple", where="props"),   # PR_MESSAGE_CLASS
    mf.tnef(TOKEN, "IPC.Test.Thing"),
    mf.calendar(TOKEN, "REPLY", "TENTATIVE"),
    mf.calendar(TOKEN, "REPLY", "DECLINED"),
    mf.mdn(TOKEN, "processed"),
    mf.dsn(TOKEN, ("delivered",)),
    mf.dsn(TOKEN, ("relayed", "delivered")),
]
ALT = [mf.calendar_alternative(TOKEN, "REQUEST")]


def test_fixtures_wellformed():
    """The builders' output parses (MIME) and the TNEF decodes strictly."""
    assert mf._selftest() > 0
    for msg in TABLE + EXTRA + ALT:
        mf.check_wellformed(msg)


@pytest.fixture(scope="module")
def files(scratch_dovecot, imapfs_bin, tmp_path_factory):
    """{msgid: path of the message file} for all inputs, in one folder of a
    module-wide mount."""
    folder = wh.unique_folder("Cls")
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, TABLE + EXTRA + ALT)
    finally:
        m.logout()
    d = str(tmp_path_factory.mktemp("rfclass"))
    os.makedirs(os.path.join(d, "state"))
    mount = helpers.Mount(imapfs_bin, scratch_dovecot.url(), os.path.join(d, "mnt"),
                          scratch_dovecot.opts(os.path.join(d, "cache")),
                          env=dict(os.environ, XDG_STATE_HOME=os.path.join(d, "state")),
                          logdir=d, name="imapfs-rfclass")
    mount.start()
    try:
        fdir = helpers.folder_path(mount.path, folder)
        by_uid = {helpers.uid_of(n): os.path.join(fdir, n) for n in os.listdir(fdir)}
        out = {}
        for msg in TABLE + EXTRA + ALT:
            assert msg["uid"] in by_uid, (msg["kind"], sorted(by_uid))
            out[msg["msgid"]] = by_uid[msg["uid"]]
        yield out
    finally:
        mount.stop()


def check_class(files, msg):
    path = files[msg["msgid"]]
    got = os.getxattr(path, XATTR)
    assert got.decode("ascii", "replace").rstrip("\0") == msg["cls"], (
        msg["kind"], got)
    assert got == msg["cls"].encode(), "value must be the bare class: %r" % got
    with open(path, "rb") as f:
        assert f.read() == msg["raw"], "file bytes are not BODY[]"


@pytest.mark.parametrize("msg", TABLE, ids=[m["kind"] for m in TABLE])
def test_message_class_table(files, msg):
    check_class(files, msg)


@pytest.mark.parametrize("msg", EXTRA, ids=[m["kind"] + "-" + m["cls"] for m in EXTRA])
def test_message_class_more(files, msg):
    """Further rows of section 2: PR_MESSAGE_CLASS in attMsgProps, an IPC
    class from TNEF, REPLY TENTATIVE/DECLINED, MDN processed, DSN severity."""
    check_class(files, msg)


@pytest.mark.parametrize("msg", ALT, ids=[m["kind"] for m in ALT])
def test_message_class_calendar_in_alternative(files, msg):
    """Outlook's shape for a meeting request: multipart/alternative with a
    text/calendar part (section 2 step 6 does not restrict where the
    text/calendar part is; gromox finds it there)."""
    check_class(files, msg)


def test_listed(files):
    path = files[TABLE[0]["msgid"]]
    assert XATTR in os.listxattr(path)


def test_read_only(files):
    path = files[TABLE[0]["msgid"]]
    with pytest.raises(OSError) as ei:
        os.setxattr(path, XATTR, b"IPM.Note.Other")
    assert ei.value.errno == errno.EPERM, ei.value
    assert os.getxattr(path, XATTR) == b"IPM.Note"
    with pytest.raises(OSError) as ei:
        os.setxattr(path, XATTR, b"IPM.Note")          # even the same value
    assert ei.value.errno == errno.EPERM, ei.value
