"""mv of messages between folders: UID MOVE, or UID COPY + STORE \\Deleted +
UID EXPUNGE when the server has no MOVE.  Checked with imaplib (Message-ID +
SHA-256 of BODY[], flags, INTERNALDATE) and through the mount at once (no
waiting for dir_cache)."""

import errno
import os

import pytest

import helpers
import write_helpers as wh


@pytest.fixture(params=["move", "no-move"])
def server(request):
    """The module's private Dovecot, with or without the MOVE capability."""
    s = request.getfixturevalue("scratch_dovecot" if request.param == "move"
                                else "scratch_dovecot_nomove")
    m = s.connect()
    try:
        assert ("MOVE" in wh.capabilities(m)) == (request.param == "move")
    finally:
        m.logout()
    return s


FLAGS = [["\\Seen", "$Label1"], ["\\Flagged", "\\Answered"], []]


def setup_folders(server, nsrc=3, npre=2):
    """Source folder with `nsrc` messages (various flags), target folder with
    `npre` messages (so UIDs in the target differ from those in the source)."""
    src, dst = wh.unique_folder("MvSrc"), wh.unique_folder("MvDst")
    tok = wh.unique("mv")
    m = server.connect()
    try:
        msgs = wh.seed(m, src, [wh.make_msg(tok, i) for i in range(nsrc)],
                       flags=lambda i: FLAGS[i % len(FLAGS)])
        pre = wh.seed(m, dst, [wh.make_msg(tok + "-pre", i) for i in range(npre)])
    finally:
        m.logout()
    return src, dst, msgs, pre


def test_mv_message(server, scratch_mounter):
    src, dst, msgs, pre = setup_folders(server)
    mnt = scratch_mounter(server)
    sdir, ddir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    msg = msgs[0]
    name = wh.canonical(msg, msg["uid"])
    assert name in os.listdir(sdir)

    os.rename(os.path.join(sdir, name), os.path.join(ddir, name))

    m = server.connect()
    try:
        found = wh.locate(m, msgs + pre, [src, dst])
        assert wh.check_once(m, msgs + pre, [src, dst]) == []
    finally:
        m.logout()
    (folder, rec), = found[msg["msgid"]]
    assert folder == dst
    assert rec["flags"] == msg["flags"], "flags not kept"
    assert rec["internaldate"] == int(msg["when"].timestamp()), "INTERNALDATE not kept"
    for other in msgs[1:]:
        assert [f for f, _ in found[other["msgid"]]] == [src]
    new_uid = rec["uid"]
    assert new_uid != msg["uid"]          # the target had messages already

    # the name mv used resolves in the target, and so does the canonical name
    for n in (name, wh.canonical(msg, new_uid)):
        p = os.path.join(ddir, n)
        assert os.stat(p).st_size == len(msg["raw"]), n
        with open(p, "rb") as f:
            assert f.read() == msg["raw"], n
    # listings are right at once: only the canonical name, once
    listing = os.listdir(ddir)
    canon = wh.canonical(msg, new_uid)
    assert listing.count(canon) == 1, listing
    assert name not in listing, listing
    assert sorted(helpers.uid_of(n) for n in listing) == sorted(
        [p_["uid"] for p_ in pre] + [new_uid])
    assert name not in os.listdir(sdir)
    assert not os.path.exists(os.path.join(sdir, name))


def test_mv_command_several(server, scratch_mounter):
    """coreutils mv with several sources and a directory target."""
    src, dst, msgs, pre = setup_folders(server, nsrc=5)
    mnt = scratch_mounter(server)
    sdir, ddir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    files = [os.path.join(sdir, wh.canonical(x, x["uid"])) for x in msgs[:4]]
    r = wh.run(["mv"] + files + [ddir + "/"], timeout=60)
    assert r.returncode == 0, r.stderr
    m = server.connect()
    try:
        assert wh.check_once(m, msgs[:4] + pre, allowed=[dst]) == []
        assert wh.check_once(m, msgs[4:], allowed=[src]) == []
        assert len(wh.folder_contents(m, dst)) == 4 + len(pre)
    finally:
        m.logout()
    assert len(os.listdir(ddir)) == 4 + len(pre)
    assert os.listdir(sdir) == [wh.canonical(msgs[4], msgs[4]["uid"])]


def test_rename_within_folder_eperm(server, scratch_mounter):
    src, dst, msgs, pre = setup_folders(server, nsrc=1, npre=0)
    mnt = scratch_mounter(server)
    sdir = helpers.folder_path(mnt.path, src)
    name = wh.canonical(msgs[0], msgs[0]["uid"])
    with pytest.raises(OSError) as ei:
        os.rename(os.path.join(sdir, name), os.path.join(sdir, "renamed.eml"))
    assert ei.value.errno == errno.EPERM, ei.value
    assert os.listdir(sdir) == [name]
    m = server.connect()
    try:
        assert wh.check_once(m, msgs, allowed=[src]) == []
        assert [r["uid"] for r in wh.folder_contents(m, src)] == [msgs[0]["uid"]]
    finally:
        m.logout()


def test_mv_to_root_eperm(server, scratch_mounter):
    src, dst, msgs, pre = setup_folders(server, nsrc=1, npre=0)
    mnt = scratch_mounter(server)
    sdir = helpers.folder_path(mnt.path, src)
    name = wh.canonical(msgs[0], msgs[0]["uid"])
    with pytest.raises(OSError) as ei:
        os.rename(os.path.join(sdir, name), os.path.join(mnt.path, name))
    assert ei.value.errno == errno.EPERM, ei.value
    assert name not in os.listdir(mnt.path)
    assert os.listdir(sdir) == [name]
    m = server.connect()
    try:
        assert wh.check_once(m, msgs, allowed=[src]) == []
    finally:
        m.logout()


def test_mv_onto_existing_name(server, scratch_mounter):
    """rename(2) onto an existing message name: EEXIST, nothing moves,
    nothing is overwritten, and the name still opens its own message (see
    also test_hardening_model.py)."""
    src, dst, msgs, pre = setup_folders(server, nsrc=1, npre=2)
    mnt = scratch_mounter(server)
    sdir, ddir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    victim = wh.canonical(pre[0], pre[0]["uid"])
    with pytest.raises(OSError) as ei:
        os.rename(os.path.join(sdir, wh.canonical(msgs[0], msgs[0]["uid"])),
                  os.path.join(ddir, victim))
    assert ei.value.errno == errno.EEXIST, ei.value
    m = server.connect()
    try:
        assert wh.check_once(m, msgs, allowed=[src]) == []
        assert wh.check_once(m, pre, allowed=[dst]) == []
    finally:
        m.logout()
    assert sorted(os.listdir(ddir)) == sorted(wh.canonical(p_, p_["uid"]) for p_ in pre)
    assert os.listdir(sdir) == [wh.canonical(msgs[0], msgs[0]["uid"])]
    with open(os.path.join(ddir, victim), "rb") as f:
        assert f.read() == pre[0]["raw"]


@pytest.mark.slow
@pytest.mark.deadline(400)
def test_mv_1000_messages(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    src, dst = wh.unique_folder("Mv1000Src"), wh.unique_folder("Mv1000Dst")
    tok = wh.unique("mv1000")
    msgs = [wh.make_msg(tok, i, size=300) for i in range(1000)]
    m = server.connect()
    try:
        wh.seed(m, src, msgs, flags=lambda i: ["\\Seen"] if i % 2 else [])
        wh.create_folder(m, dst)
    finally:
        m.logout()
    mnt = scratch_mounter(server)
    sdir, ddir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    names = os.listdir(sdir)
    assert len(names) == 1000
    r = wh.run(["mv"] + [os.path.join(sdir, n) for n in names] + [ddir + "/"],
               timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = server.connect()
    try:
        assert wh.folder_contents(m, src) == []
        problems = wh.check_once(m, msgs, [src, dst], allowed=[dst])
        assert problems == [], problems[:20]
    finally:
        m.logout()
    assert len(os.listdir(ddir)) == 1000
    assert os.listdir(sdir) == []
