"""rm of a message: moved to the trash folder (-o trash=NAME; default the
SPECIAL-USE \\Trash folder, else `Trash`, created if missing); inside the
trash folder, or with -o rm=expunge, deleted for good."""

import os

import helpers
import write_helpers as wh


def seeded(server, n=2, prefix="RmSrc"):
    folder = wh.unique_folder(prefix)
    m = server.connect()
    try:
        msgs = wh.seed(m, folder, [wh.make_msg(wh.unique("rm"), i) for i in range(n)],
                       flags=lambda i: ["\\Seen"] if i % 2 else [])
        return folder, msgs
    finally:
        m.logout()


def where(server, msgs):
    """{msgid: [folder, ...]} over all folders."""
    m = server.connect()
    try:
        return {k: [f for f, _ in v] for k, v in wh.locate(m, msgs).items()}
    finally:
        m.logout()


def trash_uid(server, msg, trash="Trash"):
    m = server.connect()
    try:
        (f, rec), = wh.locate(m, [msg], [trash])[msg["msgid"]]
        assert rec["sha"] == msg["sha"]
        return rec["uid"]
    finally:
        m.logout()


def test_rm_moves_to_trash(scratch_dovecot, scratch_mounter):
    folder, msgs = seeded(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    name = wh.canonical(msgs[0], msgs[0]["uid"])
    os.unlink(os.path.join(d, name))
    assert where(scratch_dovecot, msgs) == {msgs[0]["msgid"]: ["Trash"],
                                            msgs[1]["msgid"]: [folder]}
    # visible at once
    assert os.listdir(d) == [wh.canonical(msgs[1], msgs[1]["uid"])]
    assert not os.path.exists(os.path.join(d, name))
    uid = trash_uid(scratch_dovecot, msgs[0])
    assert wh.canonical(msgs[0], uid) in os.listdir(os.path.join(mnt.path, "Trash"))


def test_rm_command(scratch_dovecot, scratch_mounter):
    folder, msgs = seeded(scratch_dovecot, n=3)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    r = wh.run(["rm", "-f"] + [os.path.join(d, n) for n in os.listdir(d)], timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.listdir(d) == []
    assert where(scratch_dovecot, msgs) == {x["msgid"]: ["Trash"] for x in msgs}


def test_rm_in_trash_deletes_for_good(scratch_dovecot, scratch_mounter):
    folder, msgs = seeded(scratch_dovecot, n=1)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    os.unlink(os.path.join(d, wh.canonical(msgs[0], msgs[0]["uid"])))
    uid = trash_uid(scratch_dovecot, msgs[0])
    tdir = os.path.join(mnt.path, "Trash")
    tname = wh.canonical(msgs[0], uid)
    os.unlink(os.path.join(tdir, tname))
    assert where(scratch_dovecot, msgs) == {msgs[0]["msgid"]: []}
    assert tname not in os.listdir(tdir)
    m = scratch_dovecot.connect()
    try:
        assert uid not in [r["uid"] for r in wh.folder_contents(m, "Trash")]
    finally:
        m.logout()


def test_rm_expunge_option(scratch_dovecot, scratch_mounter):
    folder, msgs = seeded(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot, extra_opts=["rm=expunge"])
    d = helpers.folder_path(mnt.path, folder)
    os.unlink(os.path.join(d, wh.canonical(msgs[0], msgs[0]["uid"])))
    assert where(scratch_dovecot, msgs) == {msgs[0]["msgid"]: [],
                                            msgs[1]["msgid"]: [folder]}
    assert os.listdir(d) == [wh.canonical(msgs[1], msgs[1]["uid"])]


def test_rm_trash_option(scratch_dovecot, scratch_mounter):
    bin_ = "Bin"
    m = scratch_dovecot.connect()
    try:
        if bin_ in wh.all_folders(m):
            m.delete(bin_)
        assert bin_ not in wh.all_folders(m)
    finally:
        m.logout()
    folder, msgs = seeded(scratch_dovecot)
    mnt = scratch_mounter(scratch_dovecot, extra_opts=["trash=" + bin_])
    d = helpers.folder_path(mnt.path, folder)
    os.unlink(os.path.join(d, wh.canonical(msgs[0], msgs[0]["uid"])))
    assert where(scratch_dovecot, msgs) == {msgs[0]["msgid"]: [bin_],
                                            msgs[1]["msgid"]: [folder]}
    assert bin_ in os.listdir(mnt.path)
    uid = trash_uid(scratch_dovecot, msgs[0], bin_)
    assert os.listdir(os.path.join(mnt.path, bin_)) == [wh.canonical(msgs[0], uid)]
    # rm inside the configured trash folder deletes for good
    os.unlink(os.path.join(mnt.path, bin_, wh.canonical(msgs[0], uid)))
    assert where(scratch_dovecot, msgs)[msgs[0]["msgid"]] == []


def test_rm_creates_trash(scratch_server, scratch_mounter):
    server = scratch_server()            # a fresh account: no Trash yet
    folder, msgs = seeded(server, n=1)
    m = server.connect()
    try:
        assert "Trash" not in wh.all_folders(m)
    finally:
        m.logout()
    mnt = scratch_mounter(server)
    d = helpers.folder_path(mnt.path, folder)
    os.unlink(os.path.join(d, wh.canonical(msgs[0], msgs[0]["uid"])))
    m = server.connect()
    try:
        assert "Trash" in wh.all_folders(m)
    finally:
        m.logout()
    assert where(server, msgs) == {msgs[0]["msgid"]: ["Trash"]}
    assert "Trash" in os.listdir(mnt.path)
    assert os.listdir(d) == []


SPECIAL_USE_TRASH = """\
  mailbox Papierkorb {
    special_use = \\\\Trash
    auto = create
  }
"""


def test_rm_uses_special_use_trash(scratch_server, scratch_mounter):
    """A folder flagged \\Trash (RFC 6154) is used, whatever its name.
    Dovecot: the flag comes from dovecot.conf (special_use, auto = create);
    Cyrus: the folder is made with CREATE Papierkorb (USE (\\Trash)) (RFC
    6154 CREATE-SPECIAL-USE)."""
    server = scratch_server()
    if wh.is_cyrus():
        m = server.connect()
        try:
            typ, data = m._simple_command("CREATE", "Papierkorb", "(USE (\\Trash))")
            assert typ == "OK", data
        finally:
            m.logout()
    else:
        server.stop()
        conf = server.env["CONF"]
        with open(conf) as f:
            text = f.read()
        anchor = "namespace inbox {\n"
        assert anchor in text
        with open(conf, "w") as f:
            f.write(text.replace(anchor, anchor + SPECIAL_USE_TRASH.replace("\\\\", "\\")))
        server.restart()
    folder, msgs = seeded(server, n=1)
    m = server.connect()
    try:
        typ, data = m.list('""', "Papierkorb")
        assert typ == "OK" and b"\\Trash" in data[0], data
        assert "Trash" not in wh.all_folders(m)
    finally:
        m.logout()
    mnt = scratch_mounter(server)
    d = helpers.folder_path(mnt.path, folder)
    os.unlink(os.path.join(d, wh.canonical(msgs[0], msgs[0]["uid"])))
    assert where(server, msgs) == {msgs[0]["msgid"]: ["Papierkorb"]}
    m = server.connect()
    try:
        assert "Trash" not in wh.all_folders(m)
    finally:
        m.logout()
