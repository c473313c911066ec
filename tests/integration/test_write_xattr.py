"""Extended attributes of message files: user.imap.flags (read-write),
user.imap.uid / user.imap.internaldate / user.imap.message_id (read-only)."""

import datetime as dt
import errno
import os
import shutil

import pytest

import helpers
import write_helpers as wh
from relay_helpers import command_relay  # noqa: F401  (fixture)

ALL = {"user.imap.flags", "user.imap.uid", "user.imap.internaldate",
       "user.imap.message_id"}


@pytest.fixture
def one(scratch_dovecot, scratch_mounter):
    """(server, mount, folder, msg, path) for one message with flags."""
    folder = wh.unique_folder("Xa")
    msg = wh.make_msg(wh.unique("xa"), 0, when=dt.datetime(2024, 1, 1, 10, 0, 0,
                                                           tzinfo=wh.UTC))
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [msg], flags=["\\Seen", "\\Flagged", "$Forwarded"])
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    path = os.path.join(helpers.folder_path(mnt.path, folder),
                        wh.canonical(msg, msg["uid"]))
    assert os.path.exists(path)
    return scratch_dovecot, mnt, folder, msg, path


def server_flags(server, folder, uid):
    m = server.connect()
    try:
        m.select(wh.mailgen.qmbox(folder), readonly=True)
        return set(wh.mailgen.fetch_meta_uid(m, uid)["flags"])
    finally:
        m.logout()


def xflags(path):
    return set(os.getxattr(path, "user.imap.flags").decode().split()) - {"\\Recent"}


def test_get_flags(one):
    server, mnt, folder, msg, path = one
    assert xflags(path) == {"\\Seen", "\\Flagged", "$Forwarded"}
    assert xflags(path) == server_flags(server, folder, msg["uid"])


def test_set_flags(one):
    server, mnt, folder, msg, path = one
    os.setxattr(path, "user.imap.flags", b"\\Seen $Label1")
    assert server_flags(server, folder, msg["uid"]) == {"\\Seen", "$Label1"}
    assert xflags(path) == {"\\Seen", "$Label1"}       # at once
    os.setxattr(path, "user.imap.flags", b"\\Answered \\Draft $a_b-c.d")
    assert server_flags(server, folder, msg["uid"]) == {"\\Answered", "\\Draft",
                                                        "$a_b-c.d"}


def test_remove_flags(one):
    server, mnt, folder, msg, path = one
    os.removexattr(path, "user.imap.flags")
    assert server_flags(server, folder, msg["uid"]) == set()
    assert xflags(path) == set()


def test_deleted_ignored(one):
    server, mnt, folder, msg, path = one
    os.setxattr(path, "user.imap.flags", b"\\Seen \\Deleted")
    assert server_flags(server, folder, msg["uid"]) == {"\\Seen"}
    m = server.connect()
    try:
        assert wh.check_once(m, [msg], allowed=[folder]) == []
    finally:
        m.logout()
    assert os.path.exists(path)


@pytest.mark.parametrize("value", [b"\\Bogus", b"(", b"\\Seen (", b'$Key"word',
                                   b"\\Seen \\Bogus"])
def test_invalid_flags_einval(one, value):
    server, mnt, folder, msg, path = one
    with pytest.raises(OSError) as ei:
        os.setxattr(path, "user.imap.flags", value)
    assert ei.value.errno == errno.EINVAL, ei.value
    assert server_flags(server, folder, msg["uid"]) == {"\\Seen", "\\Flagged",
                                                        "$Forwarded"}


def test_readonly_attributes(one):
    server, mnt, folder, msg, path = one
    m = server.connect()
    try:
        m.select(wh.mailgen.qmbox(folder), readonly=True)
        meta = wh.mailgen.fetch_meta_uid(m, msg["uid"])
    finally:
        m.logout()
    assert os.getxattr(path, "user.imap.uid") == str(msg["uid"]).encode()
    assert os.getxattr(path, "user.imap.internaldate") == \
        wh.rfc3339(meta["internaldate"]).encode() == b"2024-01-01T10:00:00Z"
    assert os.getxattr(path, "user.imap.message_id") == msg["msgid"].encode()
    for name, value in (("user.imap.uid", b"99"),
                        ("user.imap.internaldate", b"2020-01-01T00:00:00Z"),
                        ("user.imap.message_id", b"<other@example.org>")):
        with pytest.raises(OSError) as ei:
            os.setxattr(path, name, value)
        assert ei.value.errno == errno.EPERM, (name, ei.value)
    assert os.getxattr(path, "user.imap.uid") == str(msg["uid"]).encode()


def test_listxattr(one):
    server, mnt, folder, msg, path = one
    names = set(os.listxattr(path))
    assert {n for n in names if n.startswith("user.imap.")} == ALL, names


def test_unknown_attribute_enodata(one):
    server, mnt, folder, msg, path = one
    with pytest.raises(OSError) as ei:
        os.getxattr(path, "user.imap.foo")
    assert ei.value.errno == errno.ENODATA, ei.value


def test_getfattr(one):
    server, mnt, folder, msg, path = one
    assert shutil.which("getfattr"), "getfattr missing: scripts/install-deps installs attr"
    r = wh.run(["getfattr", "-d", "-m", "-", path], timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for n in ALL:
        assert n + "=" in out, out
    assert 'user.imap.uid="%d"' % msg["uid"] in out, out


def test_cp_a_keeps_flags_and_date(one, tmp_path):
    server, mnt, folder, msg, path = one
    os.setxattr(path, "user.imap.flags", b"\\Seen \\Answered $Label2")
    dst = wh.unique_folder("XaDst")
    m = server.connect()
    try:
        wh.create_folder(m, dst)
    finally:
        m.logout()
    ddir = helpers.folder_path(mnt.path, dst)
    r = wh.run(["cp", "-a", path, ddir + "/"], timeout=60)
    m = server.connect()
    try:
        recs = wh.folder_contents(m, dst)
    finally:
        m.logout()
    assert len(recs) == 1, (len(recs), r.stderr)
    assert recs[0]["sha"] == msg["sha"]
    assert set(recs[0]["flags"]) == {"\\Seen", "\\Answered", "$Label2"}
    assert recs[0]["internaldate"] == int(msg["when"].timestamp())
    assert r.returncode == 0, r.stderr
    copy = os.path.join(ddir, wh.canonical(msg, recs[0]["uid"]))
    assert xflags(copy) == {"\\Seen", "\\Answered", "$Label2"}
    assert server_flags(server, folder, msg["uid"]) == {"\\Seen", "\\Answered",
                                                        "$Label2"}


def test_set_flags_keeps_a_change_made_meanwhile(scratch_dovecot, command_relay, scratch_mounter,
                                                 tmp_path):
    """Another client sets \\Answered right before imapfs's STORE reaches the
    server (after imapfs read the flags): the STORE adds and removes only
    what the user changed, so \\Answered stays (a STORE FLAGS replacing them
    all dropped it, and the \\Deleted of an rm in flight the same way)."""
    folder = wh.unique_folder("Xr")
    msg = wh.make_msg(wh.unique("xr"), 0)
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [msg], flags=["\\Seen", "$Old"])
    finally:
        m.logout()
    relay = command_relay(scratch_dovecot.env["IMAP_PORT"])
    url = "imap://%s@127.0.0.1:%d" % (scratch_dovecot.env["USER"], relay.port)
    opts = ["password_file=" + scratch_dovecot.env["PASSWORD_FILE"], "plaintext",
            "cache_dir=" + str(tmp_path / "cache-flags-relay")]
    mnt = scratch_mounter(scratch_dovecot, url=url, opts=opts)
    path = os.path.join(helpers.folder_path(mnt.path, folder), wh.canonical(msg, msg["uid"]))

    def other_client():
        c = scratch_dovecot.connect()
        try:
            c.select(wh.mailgen.qmbox(folder))
            c.uid("STORE", str(msg["uid"]), "+FLAGS", "(\\Answered)")
        finally:
            c.logout()

    relay.arm("STORE", other_client)
    os.setxattr(path, "user.imap.flags", b"\\Seen \\Flagged")
    assert relay.fired, "no STORE went through the relay"
    assert server_flags(scratch_dovecot, folder, msg["uid"]) == {
        "\\Seen", "\\Flagged", "\\Answered"}


def test_other_namespaces_not_supported(one):
    """Only user.* exists: any other namespace is ENOTSUP on every kind of
    file, as on a disk filesystem without it, so that `ls -l` (which asks
    for security.selinux and system.posix_acl_access) gives up after the
    first file instead of asking twice per file; user.* names that do not
    exist stay ENODATA."""
    server, mnt, folder, msg, path = one
    paths = (path, os.path.dirname(path), mnt.path, os.path.join(mnt.path, ".receive-folders"))
    for p in paths:
        for name in ("security.selinux", "system.posix_acl_access", "system.posix_acl_default",
                     "trusted.imap.flags", "security.capability"):
            with pytest.raises(OSError) as ei:
                os.getxattr(p, name)
            assert ei.value.errno == errno.ENOTSUP, (p, name, ei.value)
        with pytest.raises(OSError) as ei:
            os.setxattr(p, "trusted.imap.flags", b"\\Seen")
        assert ei.value.errno == errno.ENOTSUP, (p, ei.value)
        with pytest.raises(OSError) as ei:
            os.removexattr(p, "security.selinux")
        assert ei.value.errno == errno.ENOTSUP, (p, ei.value)
        with pytest.raises(OSError) as ei:
            os.getxattr(p, "user.no.such.attribute")
        assert ei.value.errno == errno.ENODATA, (p, ei.value)
    assert xflags(path) == {"\\Seen", "\\Flagged", "$Forwarded"}   # flags untouched
    assert server_flags(server, folder, msg["uid"]) == {"\\Seen", "\\Flagged", "$Forwarded"}
    # what ls does with that answer: one attempt for the whole listing
    r = wh.run(["ls", "-l", os.path.dirname(path)], timeout=30)
    assert r.returncode == 0, r.stderr
    assert wh.canonical(msg, msg["uid"]) in r.stdout.decode()
