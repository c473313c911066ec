"""NAME.eml.parts: one read-only file per leaf MIME part of a message,
named "SECTION NAME" (the IMAP section number, the part's decoded file name
or TYPE.EXT), holding the part's body with its transfer encoding undone; an
attached message is "SECTION NAME.eml" (its raw section) with a .parts
directory of its own.  The directories resolve by name but are not listed.
The xattr user.imap.parts of a message lists the entry names.

The messages are built by parts_fixtures.py; the expectation comes from
Python's email package (parts_fixtures.entries()), and test_oracle_matches_server
checks that oracle against the server (BODYSTRUCTURE sections and types,
BODY.PEEK[SECTION] with the transfer encoding undone) without a mount."""

import base64
import datetime as dt
import errno
import os
import re
import stat
import time

import pytest

import helpers
import parts_fixtures as pf
import write_helpers as wh

GOOD_KEYS = ["mixed", "names", "forward", "single", "single_pdf"]
BAD_KEYS = ["unclosed", "bad_base64", "deep"]
WRITE_ERRNOS = (errno.EROFS, errno.EPERM, errno.EACCES)


@pytest.fixture(scope="module")
def seeded(scratch_dovecot):
    """{key: record (uid, folder set)} of every sample, APPENDed into one
    fresh folder of the module's private server."""
    folder = wh.unique_folder("Parts")
    token = wh.unique("pt")
    recs = [b(token) for b in pf.GOOD + pf.MALFORMED]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, recs)
    finally:
        m.logout()
    for r in recs:
        assert r["uid"], "APPEND gave no UID (UIDPLUS) for %s" % r["key"]
    return {r["key"]: r for r in recs}


@pytest.fixture
def mnt(scratch_dovecot, scratch_mounter):
    return scratch_mounter(scratch_dovecot)


def folder_dir(mnt, rec):
    return helpers.folder_path(mnt.path, rec["folder"])


def msg_path(mnt, rec):
    return os.path.join(folder_dir(mnt, rec), wh.canonical(rec, rec["uid"]))


def parts_path(mnt, rec):
    return msg_path(mnt, rec) + ".parts"


def sections_rel(rel):
    """"2 message.eml/2.3 message.eml" -> "2/2.3" (server_dirs' keys)."""
    return "/".join(c.split(" ", 1)[0] for c in rel.split("/")) if rel else ""


def server_sections(server, rec):
    """{sections path: {section: bytes of BODY.PEEK[section]}} for every
    entry of every parts directory of a message (per the oracle)."""
    m = server.connect()
    try:
        m.select(wh.mailgen.qmbox(rec["folder"]), readonly=True)
        out = {}
        for rel, es in pf.all_dirs(rec["raw"]).items():
            for e in es:
                out[e["section"]] = pf.fetch_section(m, rec["uid"], e["section"])
        return out
    finally:
        m.logout()


def expected_content(e, raw_sections):
    return raw_sections[e["section"]] if e["message"] else e["content"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


# -- the oracle, against the server (no mount) -----------------------------------------

def test_oracle_matches_server(scratch_dovecot, seeded):
    """The expectations are right: for every well-formed sample the
    oracle's sections and types are the server's (BODYSTRUCTURE), each leaf's
    BODY.PEEK[SECTION] with its transfer encoding undone is the oracle's
    content, an attached message's section is exactly the message built
    into it, and the oracle's names are the ones the builder declares."""
    m = scratch_dovecot.connect()
    problems = []
    try:
        folder = next(iter(seeded.values()))["folder"]
        m.select(wh.mailgen.qmbox(folder), readonly=True)
        for key, rec in seeded.items():
            dirs = pf.all_dirs(rec["raw"])
            assert [e["name"] for e in dirs[""]] == rec["expect"], key
            for rel, names in rec["nested"].items():
                assert [e["name"] for e in dirs[rel]] == names, (key, rel)
            assert set(dirs) == {""} | set(rec["nested"]), (key, sorted(dirs))
            if key in BAD_KEYS:
                continue
            sdirs = pf.server_dirs(pf.bodystructure(m, rec["uid"]))
            assert {sections_rel(r) for r in dirs} == set(sdirs), (key, sorted(sdirs))
            for rel, es in dirs.items():
                mine = [(e["section"], e["ctype"]) for e in es]
                if mine != sdirs[sections_rel(rel)]:
                    problems.append("%s %r: oracle %r, BODYSTRUCTURE %r" % (
                        key, rel, mine, sdirs[sections_rel(rel)]))
                for e in es:
                    data = pf.fetch_section(m, rec["uid"], e["section"])
                    if e["message"]:
                        if data != rec["sections_raw"][e["section"]]:
                            problems.append("%s %s: BODY[%s] is not the attached message"
                                            % (key, e["name"], e["section"]))
                    elif pf.decode_cte(data, e["cte"]) != e["content"]:
                        problems.append("%s %s: BODY[%s] decoded (%s) != email's payload"
                                        % (key, e["name"], e["section"], e["cte"]))
    finally:
        m.logout()
    assert problems == [], "\n".join(problems)
    # the ISO-8859-1 quoted-printable part stays in its charset
    names = pf.all_dirs(seeded["names"]["raw"])[""]
    assert names[0]["content"] == pf.LATIN.encode("iso-8859-1")
    assert b"\0" in pf.all_dirs(seeded["mixed"]["raw"])[""][2]["content"]


# -- through the mount -------------------------------------------------------------------

def test_parts_dirs_resolve_but_are_not_listed(seeded, mnt):
    """Every NAME.eml.parts (and UID.eml.parts) is a directory; ls -la of the
    folder and find over the mount show only the messages."""
    recs = list(seeded.values())
    d = folder_dir(mnt, recs[0])
    want = sorted(wh.canonical(r, r["uid"]) for r in recs)
    assert sorted(os.listdir(d)) == want
    r = wh.run(["ls", "-la", d], timeout=60)
    assert r.returncode == 0, r.stderr
    assert ".parts" not in r.stdout.decode(), r.stdout.decode()
    assert len(r.stdout.decode().splitlines()) == len(want) + 3, r.stdout.decode()
    r = wh.run(["find", mnt.path, "-type", "f"], timeout=60)
    assert r.returncode == 0, r.stderr
    files = r.stdout.decode().splitlines()
    assert not [f for f in files if ".parts" in f], files
    assert sorted(os.path.basename(f) for f in files if os.path.dirname(f) == d) == want
    r = wh.run(["find", d, "-mindepth", "1"], timeout=60)
    assert sorted(os.path.basename(f) for f in r.stdout.decode().splitlines()) == want
    for rec in recs:
        if rec["key"] in BAD_KEYS:
            continue
        p = parts_path(mnt, rec)
        st = os.stat(p)
        assert stat.S_ISDIR(st.st_mode), p
        alias = os.path.join(d, "%d.eml.parts" % rec["uid"])
        assert stat.S_ISDIR(os.stat(alias).st_mode), alias
        assert sorted(os.listdir(alias)) == sorted(os.listdir(p)) == sorted(rec["expect"]), \
            rec["key"]
    # the alias's part files are the same files
    rec = seeded["mixed"]
    alias = os.path.join(d, "%d.eml.parts" % rec["uid"])
    assert read(os.path.join(alias, "2 report.pdf")) == \
        pf.all_dirs(rec["raw"])[""][2]["content"]
    # the folder listing did not change by looking at the parts
    assert sorted(os.listdir(d)) == want


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_part_names(seeded, mnt, key):
    """The entries of NAME.eml.parts and of every attached message's
    .parts directory are exactly the oracle's names (no .parts directories
    among them)."""
    rec = seeded[key]
    base = parts_path(mnt, rec)
    for rel, es in pf.all_dirs(rec["raw"]).items():
        p = pf.dir_path(base, rel)
        got = os.listdir(p)
        assert sorted(got) == sorted(e["name"] for e in es), (rel, got)
        assert all(len(n.encode()) <= 255 for n in got), got
        assert stat.S_ISDIR(os.stat(p).st_mode), p


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_part_contents(seeded, mnt, scratch_dovecot, key):
    """Each part file: a read-only regular file, size = len(content),
    content = the decoded body (an attached message: BODY.PEEK[SECTION]),
    mtime = the message's."""
    rec = seeded[key]
    raw_sections = server_sections(scratch_dovecot, rec)
    mst = os.stat(msg_path(mnt, rec))
    assert int(mst.st_mtime) == int(rec["when"].timestamp())
    base = parts_path(mnt, rec)
    problems = []
    for rel, es in pf.all_dirs(rec["raw"]).items():
        for e in es:
            p = os.path.join(pf.dir_path(base, rel), e["name"])
            want = expected_content(e, raw_sections)
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode):
                problems.append("%s: mode %o, not a regular file" % (e["name"], st.st_mode))
            if st.st_mode & 0o222:
                problems.append("%s: writable mode %o" % (e["name"], st.st_mode))
            if st.st_size != len(want):
                problems.append("%s: st_size %d, content %d" % (e["name"], st.st_size,
                                                                len(want)))
            if int(st.st_mtime) != int(mst.st_mtime):
                problems.append("%s: mtime %s, message's %s" % (e["name"], st.st_mtime,
                                                                mst.st_mtime))
            got = read(p)
            if got != want:
                problems.append("%s: %d bytes read, %d expected%s" % (
                    e["name"], len(got), len(want), " (same length)" if len(got) == len(want)
                    else ""))
    assert problems == [], "\n".join(problems)


def test_part_read_at_offsets(seeded, mnt):
    """pread inside a base64 part (not only whole-file reads)."""
    rec = seeded["mixed"]
    want = pf.all_dirs(rec["raw"])[""][2]["content"]
    fd = os.open(os.path.join(parts_path(mnt, rec), "2 report.pdf"), os.O_RDONLY)
    try:
        for off, n in ((0, 10), (4093, 100), (len(want) - 7, 100), (len(want), 10), (1, 1)):
            assert os.pread(fd, n, off) == want[off:off + n], (off, n)
    finally:
        os.close(fd)


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_parts_xattr(seeded, mnt, key):
    """user.imap.parts of NAME.eml: the entry names, each + "\\n", in
    section order (getfattr sees it too)."""
    rec = seeded[key]
    p = msg_path(mnt, rec)
    want = "".join(n + "\n" for n in rec["expect"]).encode("utf-8")
    assert os.getxattr(p, "user.imap.parts") == want
    r = wh.run(["getfattr", "--only-values", "-n", "user.imap.parts", p], timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want


def test_attached_message_entries(seeded, mnt, scratch_dovecot):
    """2 message.eml is BODY.PEEK[2]; its .parts directory (and that of the
    message attached inside it, 2.3) have the full section numbers; a
    single-part attached message has 3.1; names: message.eml, fwd.eml (not
    fwd.eml.eml), notes.eml."""
    rec = seeded["forward"]
    base = parts_path(mnt, rec)
    raw = server_sections(scratch_dovecot, rec)
    assert read(os.path.join(base, "2 message.eml")) == raw["2"] == rec["sections_raw"]["2"]
    assert sorted(os.listdir(os.path.join(base, "2 message.eml.parts"))) == \
        ["2.1 text.txt", "2.2 x.pdf", "2.3 message.eml"]
    assert sorted(os.listdir(os.path.join(base, "2 message.eml.parts",
                                          "2.3 message.eml.parts"))) == ["2.3.1 text.txt"]
    assert read(os.path.join(base, "2 message.eml.parts", "2.3 message.eml.parts",
                             "2.3.1 text.txt")) == b"innermost\r\n"
    assert read(os.path.join(base, "2 message.eml.parts", "2.1 text.txt")) == b"inner text\r\n"
    assert os.listdir(os.path.join(base, "3 fwd.eml.parts")) == ["3.1 text.txt"]
    assert read(os.path.join(base, "3 fwd.eml")) == rec["sections_raw"]["3"]
    assert os.listdir(os.path.join(base, "4 notes.eml.parts")) == ["4.1 text.html"]
    for bad in ("3 fwd.eml.eml", "2 message.eml.parts/2.2 x.pdf.parts",
                "1 text.txt.parts", "2 message.eml.parts/2.9 text.txt", "5 message.eml.parts"):
        with pytest.raises(OSError) as ei:
            os.stat(os.path.join(base, bad))
        assert ei.value.errno == errno.ENOENT, (bad, ei.value)


def test_single_part_message(seeded, mnt):
    rec = seeded["single"]
    base = parts_path(mnt, rec)
    assert os.listdir(base) == ["1 text.txt"]
    assert read(os.path.join(base, "1 text.txt")) == b"only text, nothing attached\r\n"
    assert os.getxattr(msg_path(mnt, rec), "user.imap.parts") == b"1 text.txt\n"


def test_missing_message_enoent(seeded, mnt):
    rec = seeded["single"]
    d = folder_dir(mnt, rec)
    other = wh.canonical(rec, rec["uid"] + 1000)
    for name in ("%d.eml.parts" % (rec["uid"] + 1000), other + ".parts",
                 "2026-11-05 Nope.%d.eml.parts" % (rec["uid"] + 1000),
                 wh.canonical(rec, rec["uid"]) + ".parts/2 text.txt",
                 wh.canonical(rec, rec["uid"]) + ".parts/1 other.txt",
                 wh.canonical(rec, rec["uid"]) + ".part"):
        p = os.path.join(d, name)
        with pytest.raises(OSError) as ei:
            os.stat(p)
        assert ei.value.errno == errno.ENOENT, (name, ei.value)
        with pytest.raises(OSError) as ei:
            os.listdir(p)
        assert ei.value.errno in (errno.ENOENT, errno.ENOTDIR), (name, ei.value)
    with pytest.raises(OSError) as ei:
        os.listdir(os.path.join(d, "%d.eml.parts" % (rec["uid"] + 1000)))
    assert ei.value.errno == errno.ENOENT


def test_parts_are_read_only(seeded, mnt, scratch_dovecot):
    """Writes into a .parts directory fail (EROFS/EPERM/EACCES) and change
    nothing on the server; rmdir of it does not delete the message."""
    rec = seeded["mixed"]
    base = parts_path(mnt, rec)
    f = os.path.join(base, "2 report.pdf")
    m = scratch_dovecot.connect()
    try:
        before_folders = wh.all_folders(m)
    finally:
        m.logout()
    attempts = [
        ("open r+", lambda: os.close(os.open(f, os.O_RDWR))),
        ("open w", lambda: os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))),
        ("create", lambda: os.close(os.open(os.path.join(base, "new.txt"),
                                            os.O_WRONLY | os.O_CREAT, 0o600))),
        ("mkdir", lambda: os.mkdir(os.path.join(base, "sub"))),
        ("unlink", lambda: os.unlink(f)),
        ("rename", lambda: os.rename(f, os.path.join(base, "2 other.pdf"))),
        ("truncate", lambda: os.truncate(os.path.join(base, "1.1 text.txt"), 0)),
        ("chmod", lambda: os.chmod(f, 0o644)),
        ("setxattr", lambda: os.setxattr(f, "user.imap.flags", b"\\Seen")),
    ]
    problems = []
    for what, fn in attempts:
        try:
            fn()
            problems.append("%s succeeded" % what)
        except OSError as e:
            if e.errno not in WRITE_ERRNOS:
                problems.append("%s: %s" % (what, e))
    r = wh.run(["cp", "/etc/hostname", os.path.join(base, "3 photo.jpg")], timeout=30)
    if r.returncode == 0:
        problems.append("cp over a part file succeeded")
    try:
        os.rmdir(base)
        problems.append("rmdir of the .parts directory succeeded")
    except OSError:
        pass
    assert problems == [], problems
    m = scratch_dovecot.connect()
    try:
        contents = wh.folder_contents(m, rec["folder"])
        assert sorted((c["uid"], c["sha"]) for c in contents) == \
            sorted((r["uid"], r["sha"]) for r in seeded.values())
        assert wh.all_folders(m) == before_folders
    finally:
        m.logout()
    assert sorted(os.listdir(base)) == sorted(rec["expect"])
    assert read(f) == pf.all_dirs(rec["raw"])[""][2]["content"]


MIME_MAX_DEPTH = 20  # util/mime_tree.h: multiparts nested deeper are not split


@pytest.mark.parametrize("key", BAD_KEYS)
def test_malformed_structure(seeded, mnt, scratch_dovecot, key):
    """A multipart without its closing boundary, broken base64, multiparts
    nested 60 deep: the parts the server reports (those nested deeper than
    MIME_MAX_DEPTH left out), or EIO for the part or the directory -- and
    the mount serves the rest afterwards."""
    rec = seeded[key]
    m = scratch_dovecot.connect()
    try:
        m.select(wh.mailgen.qmbox(rec["folder"]), readonly=True)
        server = [s for s, t in pf.server_dirs(pf.bodystructure(m, rec["uid"]))[""]
                  if s.count(".") < MIME_MAX_DEPTH]
    finally:
        m.logout()
    base = parts_path(mnt, rec)
    try:
        names = os.listdir(base)
    except OSError as e:
        assert e.errno == errno.EIO, e
        names = None
    if names is not None:
        assert sorted(n.split(" ", 1)[0] for n in names) == sorted(server), (names, server)
        good, good_bytes = rec["good"]
        for n in names:
            try:
                data = read(os.path.join(base, n))
            except OSError as e:
                assert e.errno == errno.EIO, (n, e)
                assert n != good, "the intact part %r fails: %s" % (n, e)
                continue
            if n == good:
                assert data == good_bytes, n
        if good.split(" ", 1)[0] in server:
            assert good in names, (good, names)
    try:
        os.getxattr(msg_path(mnt, rec), "user.imap.parts")
    except OSError as e:
        assert e.errno == errno.EIO, e
    # still mounted, still serving
    assert helpers.is_mounted(mnt.path)
    assert mnt.proc.poll() is None, mnt.stderr()[-3000:]
    d = folder_dir(mnt, rec)
    assert sorted(os.listdir(d)) == sorted(wh.canonical(r, r["uid"]) for r in seeded.values())
    single = seeded["single"]
    assert read(msg_path(mnt, single)) == single["raw"]
    assert read(os.path.join(parts_path(mnt, single), "1 text.txt")) == \
        b"only text, nothing attached\r\n"


# -- a small part of a large message ---------------------------------------------------

def _proxy_mount(server, fault_proxy, scratch_mounter, tmp_path):
    port, log = fault_proxy(server.env["IMAP_PORT"])
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=10",
            "compress=no", "cache_dir=" + str(tmp_path / "cache-parts")]
    return scratch_mounter(server, url=url, opts=opts), log


def _settle(log, quiet=0.5, timeout=15):
    deadline = time.monotonic() + timeout
    last, since = len(helpers.read_text(log)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(helpers.read_text(log))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return last
    raise AssertionError("the mount never went quiet")


def server_bytes_after(log, mark):
    """Bytes the server sent after the log grew past `mark`: literals
    ({N bytes}) plus the response lines as logged."""
    total = 0
    for line in helpers.read_text(log)[mark:].splitlines():
        mm = re.match(r"\s*[\d.]+ #\d+ S: (.*)$", line)
        if not mm:
            continue
        lit = re.match(r"\{(\d+) bytes\}$", mm.group(1))
        total += int(lit.group(1)) if lit else len(mm.group(1).encode()) + 2
    return total


@pytest.mark.deadline(240)
def test_small_part_of_large_message_transfers_little(scratch_dovecot, fault_proxy,
                                                      scratch_mounter, tmp_path):
    """Reading the 2 KB text part of a 10 MB message moves a few KB from the
    server, not the message (counted through scripts/fault-proxy.py)."""
    rec = pf.build_big(wh.unique("ptbig"))
    folder = wh.unique_folder("PartsBig")
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [rec])
    finally:
        m.logout()
    assert len(rec["raw"]) > 10 * 1024 * 1024
    mnt, log = _proxy_mount(scratch_dovecot, fault_proxy, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    name = wh.canonical(rec, rec["uid"])
    assert os.listdir(d) == [name]
    mark = _settle(log)
    base = os.path.join(d, name + ".parts")
    want = pf.all_dirs(rec["raw"])[""][0]["content"]
    assert len(want) == 2048
    # by its path, as `cat NAME.eml.parts/1\ text.txt` does (no listing)
    p = os.path.join(base, "1 text.txt")
    assert os.stat(p).st_size == 2048
    assert read(p) == want
    sent = server_bytes_after(log, mark)
    text = helpers.read_text(log)[mark:]
    fetches = re.findall(r"C: \S+ (UID FETCH .*)", text)
    assert sent < 200 * 1024, "reading a 2 KB part of a 10 MB message took %d bytes " \
        "from the server: %s" % (sent, fetches)
    assert sent > 2048, "no part bytes went through the proxy? (%d)" % sent
    # the directory is right (its listing is not part of the count)
    assert sorted(os.listdir(base)) == ["1 text.txt", "2 big.bin"]


def _b64_lines(data, width=76):
    enc = base64.b64encode(data)
    return [enc[i:i + width] for i in range(0, len(enc), width)]


def _raw_with_body_lines(token, lines, name):
    head = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n--BB\r\n"
            "Content-Type: text/plain\r\n\r\nsee attached\r\n--BB\r\n"
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n" % (token, token, name))
    return head.encode() + b"\r\n".join(lines) + b"\r\n--BB--\r\n"


def test_irregular_base64_never_misreports(scratch_dovecot, scratch_mounter):
    """A large base64 part is sized from its first and last lines; one whose
    lines in between differ (same bytes, other line lengths: 3 bytes fewer
    decoded) must not read as a file whose length is not its size: its
    reads fail with EIO, while a regular one reads exactly."""
    data = bytes((i * 7) % 256 for i in range(30000))
    lines = _b64_lines(data)
    odd = lines[:200] + [b"A" * 50] * 6 + lines[204:]  # 4 x 78 bytes -> 6 x 52
    token = wh.unique("b64")
    folder = wh.unique_folder("PartsB64")
    msgs = [{"raw": _raw_with_body_lines(token + "r", lines, "regular.bin"),
             "when": dt.datetime(2026, 11, 1, tzinfo=wh.UTC)},
            {"raw": _raw_with_body_lines(token + "o", odd, "odd.bin"),
             "when": dt.datetime(2026, 11, 2, tzinfo=wh.UTC)}]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, msgs)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    regular = os.path.join(d, "%d.eml.parts" % msgs[0]["uid"], "2 regular.bin")
    assert os.stat(regular).st_size == len(data)
    assert read(regular) == data
    odd_path = os.path.join(d, "%d.eml.parts" % msgs[1]["uid"], "2 odd.bin")
    size = os.stat(odd_path).st_size
    try:
        got = read(odd_path)
    except OSError as e:
        assert e.errno == errno.EIO, e
    else:
        assert len(got) == size, (len(got), size)  # if read at all, exactly its size
    assert mnt.proc.poll() is None


def test_parts_xattr_only_on_messages(seeded, mnt):
    """user.imap.parts is a message's: a folder, the root, a part file and a
    `.parts` directory have none (ENODATA), and nothing is fetched for them."""
    rec = seeded["mixed"]
    for path in (folder_dir(mnt, rec), mnt.path, parts_path(mnt, rec),
                 os.path.join(parts_path(mnt, rec), sorted(os.listdir(parts_path(mnt, rec)))[0])):
        with pytest.raises(OSError) as e:
            os.getxattr(path, "user.imap.parts")
        assert e.value.errno == errno.ENODATA, (path, e.value)


@pytest.mark.deadline(240)
def test_deep_section_decoded_once(scratch_dovecot, fault_proxy, scratch_mounter, tmp_path):
    """A quoted-printable part five multiparts down (section 1.1.1.1.1: more
    than the block cache's key can name) is decoded here: reading it
    128 KiB at a time fetches it once, not once a read."""
    import quopri
    text = b"".join(b"line %05d of a long quoted-printable text: caf\xe9 = na\xefve\r\n" % i
                    for i in range(12000))
    qp = quopri.encodestring(text.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    body = (b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp)
    for depth in range(5):
        b = b"D%d" % depth
        body = (b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n--" + b + b"\r\n" +
                body + b"\r\n--" + b + b"--\r\n")
    token = wh.unique("deep5")
    raw = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: deep five\r\n"
           b"Message-ID: <" + token.encode() + b"@example.org>\r\nMIME-Version: 1.0\r\n" + body)
    rec = {"raw": raw, "when": dt.datetime(2026, 11, 5, tzinfo=wh.UTC)}
    folder = wh.unique_folder("PartsDeep")
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [rec])
    finally:
        m.logout()
    mnt, log = _proxy_mount(scratch_dovecot, fault_proxy, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    base = os.path.join(d, "%d.eml.parts" % rec["uid"])
    assert os.listdir(base) == ["1.1.1.1.1 text.txt"]
    p = os.path.join(base, "1.1.1.1.1 text.txt")
    assert os.stat(p).st_size == len(text)
    mark = _settle(log)
    with open(p, "rb", buffering=0) as f:
        got = b"".join(iter(lambda: f.read(128 * 1024), b""))
    assert got == text
    sent = server_bytes_after(log, mark)
    assert len(text) > 4 * 128 * 1024
    assert sent < 2 * len(qp), "%d bytes for a %d-byte part read in %d pieces" % (
        sent, len(qp), len(text) // (128 * 1024) + 1)
