"""mkdir = CREATE (+ SUBSCRIBE), rmdir = DELETE (+ UNSUBSCRIBE) of an empty
folder, mv of a directory = RENAME; folder names in modified UTF-7 on the
wire."""

import errno
import os

import pytest

import helpers
import write_helpers as wh

NAMES = ["Plain", "Größe", "日本"]


def server_state(server):
    m = server.connect()
    try:
        return {"list": wh.all_folders(m), "raw": wh.raw_list_names(m),
                "lsub": wh.subscribed(m)}
    finally:
        m.logout()


@pytest.mark.parametrize("base", NAMES)
def test_mkdir(scratch_dovecot, scratch_mounter, base):
    name = wh.unique(base)
    mnt = scratch_mounter(scratch_dovecot)
    os.mkdir(os.path.join(mnt.path, name))
    assert name in os.listdir(mnt.path)
    assert os.path.isdir(os.path.join(mnt.path, name))
    assert os.listdir(os.path.join(mnt.path, name)) == []
    st = server_state(scratch_dovecot)
    assert name in st["list"]
    assert wh.mailgen.mutf7_encode(name) in st["raw"], "not modified UTF-7: %r" % st["raw"]
    assert name in st["lsub"], "new folder not subscribed"


@pytest.mark.parametrize("base", NAMES)
def test_mkdir_nested(scratch_dovecot, scratch_mounter, base):
    parent, child = wh.unique("Parent"), wh.unique(base)
    mnt = scratch_mounter(scratch_dovecot)
    os.mkdir(os.path.join(mnt.path, parent))
    os.mkdir(os.path.join(mnt.path, parent, child))
    assert os.listdir(os.path.join(mnt.path, parent)) == [child]
    st = server_state(scratch_dovecot)
    full = parent + "/" + child
    assert full in st["list"]
    # on the server with its own delimiter ("." on Cyrus), in modified UTF-7
    assert wh.mailgen.server_name(full) in st["raw"], st["raw"]
    assert full in st["lsub"]


@pytest.mark.parametrize("base", NAMES)
def test_rmdir_empty(scratch_dovecot, scratch_mounter, base):
    made, pre = wh.unique(base), wh.unique(base)
    m = scratch_dovecot.connect()
    try:
        wh.create_folder(m, pre)
        m.subscribe(wh.mailgen.qmbox(pre))
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    os.mkdir(os.path.join(mnt.path, made))
    for name in (pre, made):
        os.rmdir(os.path.join(mnt.path, name))
        assert name not in os.listdir(mnt.path)
        assert not os.path.exists(os.path.join(mnt.path, name))
        st = server_state(scratch_dovecot)
        assert name not in st["list"]
        assert name not in st["lsub"], "deleted folder still subscribed"


@pytest.mark.parametrize("base", NAMES)
def test_rmdir_with_messages_enotempty(scratch_dovecot, scratch_mounter, base):
    name = wh.unique(base)
    m = scratch_dovecot.connect()
    try:
        msgs = wh.seed(m, name, [wh.make_msg(wh.unique("rmdir"), i) for i in range(2)],
                       flags=["\\Seen"])
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    with pytest.raises(OSError) as ei:
        os.rmdir(os.path.join(mnt.path, name))
    assert ei.value.errno == errno.ENOTEMPTY, ei.value
    assert name in os.listdir(mnt.path)
    assert len(os.listdir(os.path.join(mnt.path, name))) == 2
    m = scratch_dovecot.connect()
    try:
        assert name in wh.all_folders(m)
        assert wh.check_once(m, msgs, allowed=[name]) == []
        assert all(r["flags"] == ["\\Seen"] for r in wh.folder_contents(m, name))
    finally:
        m.logout()


@pytest.mark.parametrize("base", NAMES)
def test_rmdir_with_subfolder_enotempty(scratch_dovecot, scratch_mounter, base):
    name = wh.unique(base)
    child = name + "/" + wh.unique("Kind")
    m = scratch_dovecot.connect()
    try:
        wh.create_folder(m, name)
        wh.create_folder(m, child)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    with pytest.raises(OSError) as ei:
        os.rmdir(os.path.join(mnt.path, name))
    assert ei.value.errno == errno.ENOTEMPTY, ei.value
    st = server_state(scratch_dovecot)
    assert name in st["list"] and child in st["list"]
    assert name in os.listdir(mnt.path)


@pytest.mark.parametrize("old_base,new_base", [("Plain", "Größe"), ("Größe", "日本"),
                                               ("日本", "Plain")])
def test_mv_directory_renames(scratch_dovecot, scratch_mounter, old_base, new_base):
    old, new = wh.unique(old_base), wh.unique(new_base)
    sub = wh.unique("Sub")
    m = scratch_dovecot.connect()
    try:
        msgs = wh.seed(m, old, [wh.make_msg(wh.unique("ren"), i) for i in range(3)])
        sub_msgs = wh.seed(m, old + "/" + sub, [wh.make_msg(wh.unique("rensub"), 0)])
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    os.rename(os.path.join(mnt.path, old), os.path.join(mnt.path, new))
    top = os.listdir(mnt.path)
    assert new in top and old not in top
    st = server_state(scratch_dovecot)
    assert old not in st["list"] and old + "/" + sub not in st["list"]
    assert new in st["list"] and new + "/" + sub in st["list"]
    assert wh.mailgen.mutf7_encode(new) in st["raw"]
    m = scratch_dovecot.connect()
    try:
        assert wh.check_once(m, msgs, allowed=[new]) == []
        assert wh.check_once(m, sub_msgs, allowed=[new + "/" + sub]) == []
    finally:
        m.logout()
    # readable through the new path
    d = os.path.join(mnt.path, new)
    files = [n for n in os.listdir(d) if n.endswith(".eml")]
    assert len(files) == 3
    got = sorted(helpers.sha256_file(os.path.join(d, n)) for n in files)
    assert got == sorted(x["sha"] for x in msgs)
    assert os.listdir(os.path.join(d, sub)) != []
    assert not os.path.exists(os.path.join(mnt.path, old))


def test_mv_directory_into_other(scratch_dovecot, scratch_mounter):
    """rename(2) across directories: Parent/Child on the server."""
    parent, name = wh.unique("Größe"), wh.unique("日本")
    m = scratch_dovecot.connect()
    try:
        wh.create_folder(m, parent)
        msgs = wh.seed(m, name, [wh.make_msg(wh.unique("into"), 0)])
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    os.rename(os.path.join(mnt.path, name), os.path.join(mnt.path, parent, name))
    assert name not in os.listdir(mnt.path)
    assert os.listdir(os.path.join(mnt.path, parent)) == [name]
    st = server_state(scratch_dovecot)
    assert parent + "/" + name in st["list"] and name not in st["list"]
    m = scratch_dovecot.connect()
    try:
        assert wh.check_once(m, msgs, allowed=[parent + "/" + name]) == []
    finally:
        m.logout()


def test_mv_directory_onto_a_deleted_name(scratch_dovecot, scratch_mounter, tmp_path):
    """mkdir B, rmdir B, mkdir A, mv A B: B is A's directory (the same inode)
    at once and after the next LIST (touch MOUNT), lists, and takes a cp --
    the B deleted before, which imapfs keeps (not present) with its name,
    has no claim to the name any more.  dir_cache=0: every lookup reaches
    imapfs, none is answered from the kernel's cache."""
    a, b = wh.unique("Erst"), wh.unique("Ziel")
    mnt = scratch_mounter(scratch_dovecot, extra_opts=["dir_cache=0"])
    pa, pb = os.path.join(mnt.path, a), os.path.join(mnt.path, b)
    os.mkdir(pb)
    os.rmdir(pb)
    assert b not in os.listdir(mnt.path)
    os.mkdir(pa)
    ino = os.stat(pa).st_ino
    os.rename(pa, pb)
    top = os.listdir(mnt.path)
    assert b in top and a not in top, top
    assert os.stat(pb).st_ino == ino
    assert os.listdir(pb) == []
    st = server_state(scratch_dovecot)
    assert b in st["list"] and a not in st["list"]

    msg = wh.make_msg(wh.unique("ontodeleted"), 0)
    src = tmp_path / "msg.eml"
    src.write_bytes(msg["raw"])
    r = wh.run(["cp", str(src), pb + "/"])
    assert r.returncode == 0, r.stderr
    m = scratch_dovecot.connect()
    try:
        assert wh.check_once(m, [msg], allowed=[b]) == []
    finally:
        m.logout()
    assert os.path.exists(os.path.join(pb, "msg.eml"))
    listed = os.listdir(pb)
    assert len(listed) == 1, listed
    assert helpers.sha256_file(os.path.join(pb, listed[0])) == msg["sha"]

    os.utime(mnt.path)                  # touch MOUNT: LIST again
    top = os.listdir(mnt.path)
    assert b in top and a not in top, top
    assert os.stat(pb).st_ino == ino
    assert os.listdir(pb) == listed
    assert helpers.sha256_file(os.path.join(pb, listed[0])) == msg["sha"]


def test_rename_inbox_eperm(scratch_dovecot, scratch_mounter):
    mnt = scratch_mounter(scratch_dovecot)
    with pytest.raises(OSError) as ei:
        os.rename(os.path.join(mnt.path, "INBOX"), os.path.join(mnt.path,
                                                               wh.unique("NotInbox")))
    assert ei.value.errno == errno.EPERM, ei.value
    assert "INBOX" in os.listdir(mnt.path)
    assert "INBOX" in server_state(scratch_dovecot)["list"]
