"""Where the IMAP servers differ, imapfs adapts.  The suite runs against
Dovecot (`make check`) and Cyrus (`make check-servers`,
IMAPFS_TEST_SERVER=cyrus); the tests here are about the differences, and each
says what it checked on the server it ran against:

  * the hierarchy delimiter ("/" on Dovecot, "." on Cyrus): the mount always
    shows "/", the server gets its own delimiter, and a name containing the
    delimiter character cannot be made;
  * what the server announces (MOVE, UIDPLUS, CONDSTORE, QRESYNC, IDLE,
    METADATA, SPECIAL-USE, QUOTA), as README's "Servers tested" says;
  * a shared namespace (Cyrus: "Shared Folders", not listed by itself);
  * a personal namespace with a prefix (Cyrus with altnamespace: no, the
    classic layout: INBOX.Archive; Courier's too);
  * METADATA that refuses entries the server does not define (Cyrus's
    default).

Tests that need a Cyrus-only setting are skipped on Dovecot, saying why."""

import errno
import os

import pytest

import helpers
import write_helpers as wh



def cyrus_only(reason):
    return pytest.mark.skipif(not wh.is_cyrus(), reason=reason + " (runs with "
                              "IMAPFS_TEST_SERVER=cyrus, make check-servers)")


def delimiter(m):
    """The hierarchy delimiter the server reports (LIST "" "")."""
    typ, data = m.list('""', '""')
    assert typ == "OK", data
    flags, delim, name = wh.mailgen.parse_list(data)[0]
    return delim


def raw_names(server):
    m = server.connect()
    try:
        return wh.raw_list_names(m)
    finally:
        m.logout()


# -- what the server offers ------------------------------------------------------------

# README, "Servers tested": what each server of the suite announces after login
EXPECTED = {
    "dovecot": {"delimiter": "/", "has": ["MOVE", "UIDPLUS", "CONDSTORE", "QRESYNC", "IDLE"],
                "lacks": ["METADATA", "SPECIAL-USE", "QUOTA"]},
    "cyrus": {"delimiter": ".", "has": ["MOVE", "UIDPLUS", "CONDSTORE", "QRESYNC", "IDLE",
                                        "SPECIAL-USE", "CREATE-SPECIAL-USE", "QUOTA"],
              "lacks": ["METADATA"]},    # announced only with cyrus-env --metadata
}


def test_server_offers_what_readme_says(scratch_server):
    """The default scratch server's delimiter and capabilities are those
    README lists for it (so the list stays true when the packages change)."""
    server = scratch_server()
    m = server.connect()
    try:
        caps = wh.capabilities(m)
        delim = delimiter(m)
    finally:
        m.logout()
    want = EXPECTED[helpers.SERVER]
    print("%s: delimiter %r, capabilities %s" % (helpers.SERVER, delim, " ".join(sorted(caps))))
    assert delim == want["delimiter"]
    assert [c for c in want["has"] if c not in caps] == [], caps
    assert [c for c in want["lacks"] if c in caps] == [], caps


# -- the hierarchy delimiter ---------------------------------------------------------

def test_hierarchy_uses_the_servers_delimiter(scratch_server, scratch_mounter):
    """A two-level folder made on the server with the server's delimiter is
    Lists/dev in the mount; mkdir Lists/fresh and mv Lists Listen through the
    mount reach the server with its delimiter, the children going along
    (Cyrus announces NO_ATOMIC_RENAME: it renames them one by one)."""
    server = scratch_server()
    m = server.connect()
    try:
        d = delimiter(m)
        msg = wh.make_msg(wh.unique("delim"))
        wh.create_folder(m, "Lists")
        wh.seed(m, "Lists/dev", [msg])           # mailgen sends Lists<d>dev
    finally:
        m.logout()
    assert "Lists%sdev" % d in raw_names(server)
    mnt = scratch_mounter(server)
    lists = os.path.join(mnt.path, "Lists")
    assert sorted(os.listdir(lists)) == ["dev"]
    assert os.listdir(os.path.join(lists, "dev")) == [wh.canonical(msg, msg["uid"])]
    os.mkdir(os.path.join(lists, "fresh"))   # not "new": Maildir reserves it
    assert "Lists%sfresh" % d in raw_names(server)
    os.rename(lists, os.path.join(mnt.path, "Listen"))
    names = raw_names(server)
    assert {"Listen", "Listen%sdev" % d, "Listen%sfresh" % d} <= set(names), names
    assert not [n for n in names if n.startswith("Lists")], names
    got = os.path.join(mnt.path, "Listen", "dev", wh.canonical(msg, msg["uid"]))
    with open(got, "rb") as f:
        assert f.read() == msg["raw"]
    print("delimiter %r: Lists%sdev shown as Lists/dev; mkdir and rename sent with %r"
          % (d, d, d))


def test_name_with_the_delimiter_character(scratch_server, scratch_mounter):
    """mkdir v1.2: where "." is the delimiter (Cyrus) the name cannot be one
    folder, so it fails with EINVAL and nothing is created (README: names
    the delimiter cannot represent); where it is "/" (Dovecot) it is an
    ordinary one-level folder."""
    server = scratch_server()
    mnt = scratch_mounter(server)
    m = server.connect()
    try:
        d = delimiter(m)
    finally:
        m.logout()
    path = os.path.join(mnt.path, "v1.2")
    if d == ".":
        with pytest.raises(OSError) as ei:
            os.mkdir(path)
        assert ei.value.errno == errno.EINVAL, ei.value
        names = raw_names(server)
        assert not [n for n in names if n.startswith("v1")], names
        assert "v1.2" not in os.listdir(mnt.path)
        print("delimiter '.': mkdir v1.2 refused with EINVAL, nothing created")
    else:
        os.mkdir(path)
        assert "v1.2" in raw_names(server)
        print("delimiter %r: v1.2 is a one-level folder" % d)


# -- a shared namespace ------------------------------------------------------------------

@cyrus_only("dovecot-env configures no shared namespace; Cyrus always has one")
def test_shared_folder_under_shared_namespace(scratch_server, scratch_mounter):
    """Cyrus: a folder the administrator shares with alice (Public, one
    message, ACL lrs) is "Shared Folders.Public" for her; LIST does not
    return "Shared Folders" itself.  The mount shows the directory
    Shared Folders (no messages) holding Public, whose message reads as the
    server's bytes."""
    server = scratch_server()
    msg = wh.make_msg(wh.unique("shared"))
    a = server.admin()
    try:
        wh.mailgen.check(a.create("Public"), "CREATE Public")
        wh.mailgen.check(a.setacl("Public", server.env["ADMIN"], "lrswipkxtecda"),
                         "SETACL (admin)")
        wh.mailgen.check(a.setacl("Public", server.env["USER"], "lrs"), "SETACL")
        msg["uid"] = wh.mailgen.append(a, "Public", msg["raw"], [], msg["when"])
    finally:
        a.logout()
    names = raw_names(server)
    assert "Shared Folders.Public" in names and "Shared Folders" not in names, names
    mnt = scratch_mounter(server)
    top = os.path.join(mnt.path, "Shared Folders")
    assert os.path.isdir(top)
    assert os.listdir(top) == ["Public"]
    files = os.listdir(os.path.join(top, "Public"))
    assert files == [wh.canonical(msg, msg["uid"])], files
    with open(os.path.join(top, "Public", files[0]), "rb") as f:
        assert f.read() == msg["raw"]


# -- a personal namespace with a prefix ---------------------------------------------------

@cyrus_only("dovecot-env's personal namespace has no prefix; Cyrus's has one with "
            "cyrus-env --altnamespace=no")
def test_inbox_prefixed_namespace(scratch_server, scratch_mounter):
    """Cyrus with altnamespace: no (NAMESPACE (("INBOX." "."))): alice's
    folders are INBOX.Archive, shown as INBOX/Archive; mkdir INBOX/New makes
    INBOX.New; and rm of a message must still work: the trash cannot be a
    top-level Trash there (CREATE Trash: NO Permission denied), so the
    message has to end up, once, in a trash folder inside the personal
    namespace (e.g. INBOX.Trash), not be refused with EIO."""
    server = scratch_server(extra_args=["--altnamespace=no"])
    assert server.env["NAMESPACE"].startswith('(("INBOX." "."))'), server.env["NAMESPACE"]
    folder = "INBOX/" + wh.unique_folder("Ns")
    msgs = [wh.make_msg(wh.unique("ns"), i) for i in range(2)]
    m = server.connect()
    try:
        wh.seed(m, folder, msgs)
        typ, data = m.create("Trash")
        assert typ == "NO", "a top-level folder could be created: %r" % data
    finally:
        m.logout()
    mnt = scratch_mounter(server)
    assert sorted(os.listdir(mnt.path)) == [".receive-folders", ".status", "INBOX"]
    d = helpers.folder_path(mnt.path, folder)
    assert sorted(os.listdir(d)) == sorted(wh.canonical(x, x["uid"]) for x in msgs)
    os.mkdir(os.path.join(mnt.path, "INBOX", "New"))
    assert "INBOX.New" in raw_names(server)
    os.unlink(os.path.join(d, wh.canonical(msgs[0], msgs[0]["uid"])))
    m = server.connect()
    try:
        found = wh.locate(m, msgs[:1])[msgs[0]["msgid"]]
    finally:
        m.logout()
    where = [f for f, rec in found]
    assert len(where) == 1 and where[0] != folder and where[0].endswith("Trash"), where


# -- METADATA that refuses undefined entries ------------------------------------------------

@cyrus_only("Dovecot's METADATA stores any entry; Cyrus refuses entries it does not "
            "define (cyrus-env --metadata-strict)")
def test_metadata_refusing_undefined_entries(scratch_server, rf_mounter, tmp_path):
    """Cyrus's default METADATA (cyrus-env --metadata-strict): METADATA is
    announced, but SETMETADATA of an entry Cyrus does not define, such as
    /private/vendor/imapfs/receive-folders, is refused (NO Permission
    denied).  The receive-folder table must still work: a row written to
    .receive-folders is accepted and read back, also after a remount with
    the same state home (kept locally, as on a server without METADATA)."""
    server = scratch_server(extra_args=["--metadata-strict"])
    m = server.connect()
    try:
        assert "METADATA" in wh.capabilities(m)
        wh._imaplib_metadata_commands()
        typ, data = m._simple_command(
            "SETMETADATA", '""', '(/private/vendor/imapfs/receive-folders "x")')
        assert typ == "NO", "Cyrus accepted an undefined entry: %r" % (data,)
        wh.create_folder(m, "Samples")
    finally:
        m.logout()
    state = str(tmp_path / "state")
    a = rf_mounter(server, state=state, cache=str(tmp_path / "cA"))
    wh.rf_set(a.path, "IPM.Note.Sample Samples")
    assert wh.rf_map(a.path)["ipm.note.sample"] == ("Samples", [])
    a.stop()
    b = rf_mounter(server, state=state, cache=str(tmp_path / "cB"))
    assert wh.rf_map(b.path)["ipm.note.sample"] == ("Samples", [])
