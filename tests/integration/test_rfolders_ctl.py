"""The receive-folder control file MOUNT/.receive-folders (spec
receive-folders.md, sections 1, 4 and the table in section 5): its listing
and attributes, the table format, writing commands, errors, and the lookup
xattr user.receive_folder.CLASS.

Every test gets a fresh table: the server has no METADATA, so the table is
local, under $XDG_STATE_HOME/imapfs/, and rf_mounter gives each test its own
XDG_STATE_HOME."""

import calendar
import errno
import os
import stat
import time

import pytest

import write_helpers as wh
from write_helpers import RF_CTL, RF_DEFAULTS

FOLDERS = ["Samples", "Archive", "Docs", "Calendar", "My Samples", "Parent/Child"]

# A folder that cannot hold mail.  Dovecot: Parent, \\Noselect (CREATE
# Parent/Child on maildir LAYOUT=fs).  Cyrus makes Parent a real folder when
# Parent.Child is created and refuses DELETE of a folder with children, so a
# user cannot make a \\Noselect folder; the root of its shared namespace is
# one: once the administrator shares a folder (Public) with alice, LIST shows
# "Shared Folders.Public" and the mount shows the directory "Shared Folders",
# which holds no mail (Cyrus does not even list it by itself).
NOSELECT = "Shared Folders" if wh.is_cyrus() else "Parent"


@pytest.fixture(scope="module")
def server(scratch_dovecot):
    """The module's server with the folders the tests point rows at, and
    NOSELECT (see above)."""
    m = scratch_dovecot.connect()
    try:
        for f in FOLDERS:
            wh.create_folder(m, f)
        if wh.is_cyrus():
            a = scratch_dovecot.admin()
            try:
                wh.mailgen.check(a.create("Public"), "CREATE Public (admin)")
                wh.mailgen.check(a.setacl("Public", scratch_dovecot.env["USER"], "lrs"),
                                 "SETACL Public")
            finally:
                a.logout()
            names = [n for fl, d, n in wh.mailgen.parse_list(
                wh.mailgen.check(m.list('""', "*"), "LIST"))]
            assert NOSELECT + "/Public" in names, names
        else:
            data = wh.mailgen.check(m.list('""', "Parent"), "LIST")
            flags = wh.mailgen.parse_list(data)[0][0]
            assert "\\Noselect" in flags, flags
    finally:
        m.logout()
    return scratch_dovecot


@pytest.fixture
def mnt(server, rf_mounter):
    """A mount with a fresh (default) table."""
    return rf_mounter(server)


@pytest.fixture
def mnt_a(mnt):
    """Setup A: the defaults plus IPM.Note.Sample -> Samples."""
    wh.rf_set(mnt.path, "IPM.Note.Sample Samples")
    return mnt


def ctl(m):
    return os.path.join(m.path, RF_CTL)


def triples(rows):
    return [(r["cls"], r["folder"], r["flags"]) for r in rows]


def ts_epoch(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


def expect_errno(mnt, data, want):
    """One write of `data` must fail with `want` (in write(), or in close()
    for a trailing partial line)."""
    werr, cerr = wh.rf_write(mnt.path, data)
    got = werr or cerr
    assert got == want, "writing %r: got %s (write %s, close %s), expected %s" % (
        data, wh.errno_name(got) if got else "success", werr, cerr,
        wh.errno_name(want))


# -- the file itself ----------------------------------------------------------------

def test_defaults_exact(mnt):
    rows = wh.rf_rows(mnt.path)
    assert triples(rows) == RF_DEFAULTS, [r["line"] for r in rows]
    text = wh.rf_read(mnt.path)
    lines = text.split("\n")
    assert lines[1].startswith('""\tINBOX\t') and lines[1].endswith("\tnodelete")
    assert lines[2].startswith("IPC\t/\t") and lines[2].count("\t") == 2, lines[2]
    now = time.time()
    for r in rows:
        assert ts_epoch(r["ts"]) <= now + 2, r["line"]


def test_cat_and_stat_size(mnt_a):
    r = wh.run(["cat", ctl(mnt_a)], timeout=30)
    assert r.returncode == 0, r.stderr
    with open(ctl(mnt_a), "rb") as f:
        assert f.read() == r.stdout
    st = os.stat(ctl(mnt_a))
    assert st.st_size == len(r.stdout), (st.st_size, len(r.stdout))
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert ("IPM.Note.Sample", "Samples", []) in triples(wh.rf_parse(r.stdout.decode()))


def test_listed_as_regular_file(mnt):
    assert RF_CTL in os.listdir(mnt.path)
    assert "INBOX" in os.listdir(mnt.path)
    assert os.path.isfile(ctl(mnt)) and not os.path.isdir(ctl(mnt))
    r = wh.run(["ls", "-la", mnt.path], timeout=30)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.decode().splitlines() if l.endswith(" " + RF_CTL)]
    assert len(line) == 1, r.stdout
    assert line[0].startswith("-rw------- "), line[0]
    with pytest.raises(NotADirectoryError):
        os.listdir(ctl(mnt))
    with pytest.raises(FileExistsError):
        os.mkdir(ctl(mnt))


def test_not_a_folder_on_server(server, mnt):
    m = server.connect()
    try:
        assert RF_CTL not in wh.all_folders(m)
    finally:
        m.logout()


def test_rm_eperm(mnt):
    with pytest.raises(OSError) as ei:
        os.unlink(ctl(mnt))
    assert ei.value.errno == errno.EPERM, ei.value
    r = wh.run(["rm", "-f", ctl(mnt)], timeout=30)
    assert r.returncode != 0
    assert triples(wh.rf_rows(mnt.path)) == RF_DEFAULTS


def test_mv_eperm(mnt):
    with pytest.raises(OSError) as ei:
        os.rename(ctl(mnt), os.path.join(mnt.path, "renamed-table"))
    assert ei.value.errno == errno.EPERM, ei.value
    assert RF_CTL in os.listdir(mnt.path)
    assert "renamed-table" not in os.listdir(mnt.path)


# -- writing --------------------------------------------------------------------------

def test_echo_sets_row(mnt):
    t0 = time.time()
    r = wh.rf_echo(mnt.path, "IPM.Schedule.Meeting Calendar")
    assert r.returncode == 0, r.stderr
    t1 = time.time()
    rows = wh.rf_rows(mnt.path)
    # O_TRUNC of the redirection is a no-op: the defaults are still there
    assert triples(rows) == sorted(RF_DEFAULTS + [("IPM.Schedule.Meeting", "Calendar",
                                                   [])], key=lambda t: t[0].lower())
    row = [x for x in rows if x["cls"] == "IPM.Schedule.Meeting"][0]
    assert int(t0) - 1 <= ts_epoch(row["ts"]) <= t1 + 1, (row["ts"], t0, t1)
    assert wh.rf_get(mnt.path, "IPM.Schedule.Meeting.Request") == (
        "Calendar", "IPM.Schedule.Meeting")


def test_echo_deletes_row(mnt):
    assert wh.rf_echo(mnt.path, "IPM.Schedule.Meeting Calendar").returncode == 0
    r = wh.rf_echo(mnt.path, "IPM.Schedule.Meeting")
    assert r.returncode == 0, r.stderr
    assert triples(wh.rf_rows(mnt.path)) == RF_DEFAULTS


def test_stat_size_follows_changes(mnt):
    before = os.stat(ctl(mnt)).st_size
    wh.rf_set(mnt.path, *["IPM.Grow.C%03d Archive" % i for i in range(40)])
    r = wh.run(["cat", ctl(mnt)], timeout=30)
    assert r.returncode == 0, r.stderr
    rows = wh.rf_parse(r.stdout.decode())
    assert len(rows) == 44, "cat shows %d rows of 44" % len(rows)
    assert os.stat(ctl(mnt)).st_size == len(r.stdout) > before


def test_several_lines_in_order(mnt):
    wh.rf_set(mnt.path, "A.B Samples", "A.B Archive", "A.C Samples", "A.C",
              "a.d Docs", "A.D Samples")
    got = wh.rf_map(mnt.path)
    assert got["a.b"] == ("Archive", [])
    assert "a.c" not in got
    assert got["a.d"] == ("Samples", [])
    assert len([r for r in wh.rf_rows(mnt.path) if r["cls"].lower() == "a.d"]) == 1


def test_comments_blank_lines_crlf(mnt):
    werr, cerr = wh.rf_write(mnt.path, b"# a comment\n\n   \nA.E Samples\r\n"
                                       b"# A.F Docs\n")
    assert (werr, cerr) == (0, 0)
    got = wh.rf_map(mnt.path)
    assert got["a.e"] == ("Samples", [])
    assert "a.f" not in got


def test_unquoted_folder_with_space_and_quoted_class(mnt):
    r = wh.rf_echo(mnt.path, "IPM.Note.Sample My Samples")
    assert r.returncode == 0, r.stderr
    wh.rf_set(mnt.path, '"IPM.Document.Microsoft Internet Mail Message" Docs')
    rows = wh.rf_rows(mnt.path)
    got = {r["cls"]: r for r in rows}
    assert got["IPM.Note.Sample"]["folder"] == "My Samples"
    assert got["IPM.Note.Sample"]["line"].split("\t")[1] == '"My Samples"'
    doc = got["IPM.Document.Microsoft Internet Mail Message"]
    assert doc["folder"] == "Docs"
    assert doc["line"].split("\t")[0] == '"IPM.Document.Microsoft Internet Mail Message"'
    assert wh.rf_get(mnt.path, "IPM.Document.Microsoft Internet Mail Message.X") == (
        "Docs", "IPM.Document.Microsoft Internet Mail Message")


def test_trailing_line_applied_at_close(mnt):
    fd = os.open(ctl(mnt), os.O_WRONLY)
    try:
        assert os.write(fd, b"A.Tail Samples") == 14
    finally:
        os.close(fd)
    assert wh.rf_map(mnt.path)["a.tail"] == ("Samples", [])


def test_trailing_bad_line_fails_close(mnt):
    fd = os.open(ctl(mnt), os.O_WRONLY)
    closed = False
    try:
        assert os.write(fd, b"A.Ok Samples\n.Bad.Tail Samples") == 30
        with pytest.raises(OSError) as ei:
            closed = True
            os.close(fd)
        assert ei.value.errno == errno.EINVAL, ei.value
    finally:
        if not closed:
            os.close(fd)
    got = wh.rf_map(mnt.path)
    assert got["a.ok"] == ("Samples", [])
    assert ".bad.tail" not in got


def test_write_back_cat_output(mnt_a):
    wh.rf_set(mnt_a.path, '"IPM.Document.Microsoft Internet Mail Message" Docs',
              "IPM.Note.Spaced My Samples")
    before = wh.rf_read(mnt_a.path)
    rows0 = wh.rf_parse(before)
    time.sleep(1.1)                         # a rewritten time would differ
    werr, cerr = wh.rf_write(mnt_a.path, before, flags=os.O_WRONLY | os.O_TRUNC)
    assert (werr, cerr) == (0, 0), (wh.errno_name(werr or cerr))
    rows1 = wh.rf_rows(mnt_a.path)
    assert triples(rows1) == triples(rows0)
    fixed0 = {r["cls"]: r["ts"] for r in rows0 if "fixed" in r["flags"]}
    fixed1 = {r["cls"]: r["ts"] for r in rows1 if "fixed" in r["flags"]}
    assert fixed0 == fixed1, "fixed rows written back unchanged must be a no-op"
    # the same through cp (O_TRUNC, several writes possible)
    src = os.path.join(os.path.dirname(mnt_a.path), "saved-table")
    with open(src, "w") as f:
        f.write(before)
    r = wh.run(["cp", src, ctl(mnt_a)], timeout=30)
    assert r.returncode == 0, r.stderr
    assert triples(wh.rf_rows(mnt_a.path)) == triples(rows0)


def test_case_insensitive_replace(mnt_a):
    wh.rf_set(mnt_a.path, "ipm.NOTE.sample Archive")
    rows = [r for r in wh.rf_rows(mnt_a.path) if r["cls"].lower() == "ipm.note.sample"]
    assert len(rows) == 1, rows
    assert rows[0]["folder"] == "Archive"


def test_inbox_case_insensitive_target(mnt):
    wh.rf_set(mnt.path, "A.Inbox inbox")
    assert wh.rf_get(mnt.path, "A.Inbox.X")[0] == "INBOX"


def test_nested_folder_target(mnt):
    wh.rf_set(mnt.path, "A.Nested Parent/Child")
    assert wh.rf_map(mnt.path)["a.nested"] == ("Parent/Child", [])
    assert wh.rf_get(mnt.path, "A.Nested") == ("Parent/Child", "A.Nested")


# -- errors (section 4; section 5 rows 16-20) ----------------------------------------

def test_fixed_rows_eacces(mnt_a):                            # row 16
    before = wh.rf_rows(mnt_a.path)
    for line in ("IPM Archive", "report.ipm Archive", "IPM", "REPORT.IPM",
                 "Report.IPM Samples", "ipm Samples"):
        expect_errno(mnt_a, line + "\n", errno.EACCES)
    assert wh.rf_rows(mnt_a.path) == before


def test_fixed_row_unchanged_accepted(mnt_a):                 # row 16b
    before = wh.rf_rows(mnt_a.path)
    time.sleep(1.1)
    wh.rf_set(mnt_a.path, "report.ipm INBOX", "IPM INBOX", "IPM\tinbox")
    assert wh.rf_rows(mnt_a.path) == before, "must be a no-op (times unchanged)"


def test_delete_default_eperm(mnt_a):                         # row 17
    before = wh.rf_rows(mnt_a.path)
    expect_errno(mnt_a, '""\n', errno.EPERM)
    assert wh.rf_rows(mnt_a.path) == before


def test_default_row_repoint(mnt):                            # row 15 (set part)
    wh.rf_set(mnt.path, '"" Archive')
    row = wh.rf_rows(mnt.path)[0]
    assert (row["cls"], row["folder"], row["flags"]) == ("", "Archive", ["nodelete"])


BAD_CLASSES = {
    "leading-dot": ".My.Class",
    "double-dot": "IPM..Note",
    "trailing-dot": "IPM.Note.",
    "255-chars": "IPM." + "A" * 251,
    "non-ascii": "IPM.Noté",
    "tab-in-quoted": '"IPM.A\\tB"',
    "control-char": '"IPM.A\\x01B"',
    "del-char": '"IPM.A\\x7fB"',
}


@pytest.mark.parametrize("kind", sorted(BAD_CLASSES))
def test_bad_class_einval(mnt_a, kind):                       # row 18
    assert len("IPM." + "A" * 251) == 255
    before = wh.rf_rows(mnt_a.path)
    expect_errno(mnt_a, BAD_CLASSES[kind] + " Samples\n", errno.EINVAL)
    assert wh.rf_rows(mnt_a.path) == before


@pytest.mark.parametrize("data", [b'"IPM.Note Samples\n',          # unterminated
                                  b'"IPM.Note\\q" Samples\n',      # bad escape
                                  b"IPM.Bad.Utf8 Sampl\xff\xfes\n",  # bad UTF-8
                                  b"IPM.Empty.Folder\t\n"],           # empty folder
                         ids=["unterminated-quote", "bad-escape", "bad-utf8",
                              "empty-folder"])
def test_bad_syntax_einval(mnt_a, data):
    before = wh.rf_rows(mnt_a.path)
    expect_errno(mnt_a, data, errno.EINVAL)
    assert wh.rf_rows(mnt_a.path) == before


def test_254_char_class_ok(mnt):                               # row 19
    cls = "IPM." + "B" * 250
    assert len(cls) == 254
    wh.rf_set(mnt.path, cls + " Archive")
    assert wh.rf_map(mnt.path)[cls.lower()] == ("Archive", [])
    # Linux caps attribute names at 255 bytes (XATTR_NAME_MAX): a class that
    # long cannot be looked up by attribute name, so look up a shorter
    # subclass name that the kernel lets through and check the row exists.
    short = "IPM." + "B" * 200
    assert wh.rf_get(mnt.path, short) == ("INBOX", "IPM")


def test_missing_folder_enoent(server, mnt):                   # row 20
    before = wh.rf_rows(mnt.path)
    expect_errno(mnt, "X NoSuchFolder\n", errno.ENOENT)
    expect_errno(mnt, "X Samples/NoSuchChild\n", errno.ENOENT)
    assert wh.rf_rows(mnt.path) == before
    m = server.connect()
    try:
        names = wh.all_folders(m)
    finally:
        m.logout()
    assert "NoSuchFolder" not in names and "Samples/NoSuchChild" not in names, names
    assert "NoSuchFolder" not in os.listdir(mnt.path)


def test_noselect_folder_eopnotsupp(mnt):
    before = wh.rf_rows(mnt.path)
    expect_errno(mnt, "X.Y %s\n" % NOSELECT, errno.EOPNOTSUPP)
    assert wh.rf_rows(mnt.path) == before


@pytest.mark.parametrize("bad,want", [
    (".Bad.Class Samples", errno.EINVAL),
    ("IPM Archive", errno.EACCES),
    ('""', errno.EPERM),
    ("A.Nf NoSuchFolder", errno.ENOENT),
    ("A.Ns " + NOSELECT, errno.EOPNOTSUPP),
], ids=["EINVAL", "EACCES", "EPERM", "ENOENT", "EOPNOTSUPP"])
def test_lines_before_error_applied_after_not(mnt, bad, want):
    expect_errno(mnt, "A.One Samples\nA.Two Archive\n%s\nA.Three Docs\n" % bad, want)
    got = wh.rf_map(mnt.path)
    assert got.get("a.one") == ("Samples", []) and got.get("a.two") == ("Archive", [])
    assert "a.three" not in got, "a line after the failing one was applied"
    # the file stays usable
    wh.rf_set(mnt.path, "A.Four Docs")
    assert wh.rf_map(mnt.path)["a.four"] == ("Docs", [])


def test_echo_error_reported_by_shell(mnt):
    r = wh.rf_echo(mnt.path, "IPM Archive")
    assert r.returncode != 0
    assert b"Permission denied" in r.stderr, r.stderr


@pytest.mark.slow
@pytest.mark.deadline(240)
def test_row_limit_enospc(mnt):
    """2000 rows at most: with the 4 defaults, a write of 1997 new classes
    fails on its last line (row 2001) after applying the 1996 before it."""
    lines = "".join("L.C%04d Archive\n" % i for i in range(1997))
    expect_errno(mnt, lines, errno.ENOSPC)
    rows = wh.rf_rows(mnt.path)
    assert len(rows) == 2000, len(rows)
    names = {r["cls"] for r in rows}
    assert "L.C1995" in names and "L.C1996" not in names
    expect_errno(mnt, "L.More Archive\n", errno.ENOSPC)
    assert len(wh.rf_rows(mnt.path)) == 2000
    # deleting still works at the limit, and frees a row
    wh.rf_set(mnt.path, "L.C0000", "L.New Docs")
    got = wh.rf_map(mnt.path)
    assert "l.c0000" not in got and got["l.new"] == ("Docs", [])
    assert os.stat(ctl(mnt)).st_size == len(wh.rf_read(mnt.path).encode())


# -- lookup (section 5 rows 1-15) --------------------------------------------------

def explicit_ok(got, want):
    """The explicit class "" may come back empty or as the quoted `""` (the
    spec does not say how the xattr writes it); everything else exactly."""
    if want == "":
        return got in ("", '""')
    return got == want


LOOKUP_A = [
    ("IPM.Note.Sample.Simple", "Samples", "IPM.Note.Sample"),          # 1
    ("IPM.Note", "INBOX", "IPM"),                                      # 2
    ("IPM.Timecard", "INBOX", "IPM"),                                  # 3
    ("IPM.Card", "INBOX", "IPM"),                                      # 3
    ("IPM.Note.Sample.Simple.Totally", "Samples", "IPM.Note.Sample"),  # 4
    ("ipm.NOTE.sample.x", "Samples", "IPM.Note.Sample"),               # 5
    ("IPM.Note.Samples", "INBOX", "IPM"),                              # 6
    ("", "INBOX", ""),                                                 # 7
    ("MY.Class", "INBOX", ""),                                         # 7
    ("IPM.MY.Class", "INBOX", "IPM"),                                  # 8
    ("IPC.Foo", "/", "IPC"),                                           # 9
    ("IPC", "/", "IPC"),
    ("Report.IPM.Note.NDR", "INBOX", "REPORT.IPM"),                    # 10
    ("Report.IPC.Paper.Order", "INBOX", ""),                           # 11
    ("IPM.Note.Sample", "Samples", "IPM.Note.Sample"),
    ("IPMX.Note", "INBOX", ""),                                        # segment rule
]


@pytest.mark.parametrize("cls,folder,explicit", LOOKUP_A,
                         ids=[c or '""' for c, _, _ in LOOKUP_A])
def test_lookup_setup_a(mnt_a, cls, folder, explicit):
    got_folder, got_explicit = wh.rf_get(mnt_a.path, cls)
    assert got_folder == folder, (cls, got_folder, got_explicit)
    assert explicit_ok(got_explicit, explicit), (cls, got_folder, got_explicit)


def test_lookup_set_then_get(mnt_a):                              # row 12
    wh.rf_set(mnt_a.path, "MY.Class Archive")
    assert wh.rf_get(mnt_a.path, "MY.Class.SOMETHING") == ("Archive", "MY.Class")
    assert wh.rf_get(mnt_a.path, "MY.Classic")[0] == "INBOX"


def test_lookup_after_delete(mnt_a):                              # rows 13, 14
    wh.rf_set(mnt_a.path, "IPM.Note.Sample")
    assert wh.rf_get(mnt_a.path, "IPM.Note.Sample.Simple") == ("INBOX", "IPM")
    before = wh.rf_rows(mnt_a.path)
    wh.rf_set(mnt_a.path, "Not.There")                            # success
    assert wh.rf_rows(mnt_a.path) == before


def test_lookup_default_repointed(mnt_a):                         # row 15
    wh.rf_set(mnt_a.path, '"" Archive')
    f, e = wh.rf_get(mnt_a.path, "MY.Class")
    assert f == "Archive" and explicit_ok(e, "")
    assert wh.rf_get(mnt_a.path, "IPM.Note") == ("INBOX", "IPM")


@pytest.mark.parametrize("cls", [".My.Class", "IPM..Note", "IPM.Note.",
                                 "IPM." + "A" * 251, "IPM.Noté", "IPM.A\tB"],
                         ids=["leading-dot", "double-dot", "trailing-dot",
                              "255-chars", "non-ascii", "tab"])
def test_lookup_invalid_class_einval(mnt_a, cls):
    with pytest.raises(OSError) as ei:
        os.getxattr(ctl(mnt_a), "user.receive_folder." + cls)
    if len("user.receive_folder." + cls) > 255:
        # the kernel refuses names over XATTR_NAME_MAX before imapfs sees them
        assert ei.value.errno == errno.ERANGE, ei.value
    else:
        assert ei.value.errno == errno.EINVAL, ei.value
