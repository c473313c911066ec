"""FOLDER/.search/QUERY and MOUNT/.search/QUERY: an IMAP SEARCH key list
(RFC 9051) as a directory name.  In a folder it holds the matching messages
under their usual names and inode numbers; at the top of the mount it
holds the folder tree of every folder with matches.  Neither .search nor
the queries are listed.  An invalid query is EINVAL.  rm and mv of an entry
act on the message; results follow changes on the server (touch of the
query directory, or dir_cache).

The expected UIDs are known from the seeded data (parts_fixtures.SEARCH_ROWS
and SEARCH_QUERIES) and test_search_oracle_matches_server checks them
against imaplib's UID SEARCH (CHARSET UTF-8 and a literal for non-ASCII)."""

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

QUERIES = sorted(pf.SEARCH_QUERIES)
INVALID = ["FROMM alice", 'SUBJECT "abc', "FROM", "OR SUBJECT x", "(SUBJECT x",
           "SINCE notadate"]
NOTHING = 'SUBJECT "no such words anywhere"'


def server_search(server, folder, query):
    """UIDs imaplib's UID SEARCH finds (non-ASCII strings: CHARSET UTF-8 and
    the last quoted string sent as a literal)."""
    m = server.connect()
    try:
        typ, data = m.select(wh.mailgen.qmbox(folder), readonly=True)
        assert typ == "OK", data
        if query.isascii():
            data = wh.mailgen.check(m.uid("SEARCH", query), "SEARCH " + query)
        else:
            mm = re.match(r'^(.*?)"([^"]*)"$', query)
            assert mm, "only KEY... \"NON-ASCII\" queries are handled here: %r" % query
            m.literal = mm.group(2).encode("utf-8")
            args = ["CHARSET", "UTF-8"] + mm.group(1).split()
            data = wh.mailgen.check(m.uid("SEARCH", *args), "SEARCH " + query)
        return {int(x) for x in (data[0] or b"").split()}
    finally:
        m.logout()


def server_refuses(server, folder, query):
    """True when the server answers the query with NO/BAD."""
    import imaplib
    m = server.connect()
    try:
        m.select(wh.mailgen.qmbox(folder), readonly=True)
        try:
            typ, data = m.uid("SEARCH", query)
        except imaplib.IMAP4.error:
            return True
        return typ != "OK"
    finally:
        m.logout()


@pytest.fixture(scope="module")
def rows(scratch_dovecot):
    """The SEARCH_ROWS messages (with their flags) in a fresh folder."""
    folder = wh.unique_folder("Srch")
    msgs, flags = pf.search_rows(wh.unique("sr"))
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, msgs, flags=lambda i: flags[i])
    finally:
        m.logout()
    return folder, msgs


def expected_uids(msgs, query):
    return {msgs[i]["uid"] for i in pf.SEARCH_QUERIES[query]}


def by_uid(d):
    """{uid: name} of a folder listing through the mount."""
    out = {}
    for n in os.listdir(d):
        out[helpers.uid_of(n)] = n
    return out


def read(path):
    with open(path, "rb") as f:
        return f.read()


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


# -- the oracle, against the server (no mount) --------------------------------------------

def test_search_oracle_matches_server(scratch_dovecot, rows):
    folder, msgs = rows
    problems = []
    for q in QUERIES:
        got = server_search(scratch_dovecot, folder, q)
        if got != expected_uids(msgs, q):
            problems.append("%s: server %s, expected %s" % (q, sorted(got),
                                                             sorted(expected_uids(msgs, q))))
    assert server_search(scratch_dovecot, folder, NOTHING) == set()
    for q in INVALID:
        if not server_refuses(scratch_dovecot, folder, q):
            problems.append("server accepts the invalid query %r" % q)
    assert problems == [], "\n".join(problems)


# -- FOLDER/.search/QUERY ---------------------------------------------------------------------

def test_search_dir_is_hidden_and_empty(scratch_dovecot, scratch_mounter, rows):
    folder, msgs = rows
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    listing = sorted(os.listdir(d))
    assert sorted(helpers.uid_of(n) for n in listing) == sorted(x["uid"] for x in msgs)
    assert ".search" not in listing
    assert stat.S_ISDIR(os.stat(os.path.join(d, ".search")).st_mode)
    assert os.listdir(os.path.join(d, ".search")) == []
    assert ".search" not in os.listdir(mnt.path)
    assert stat.S_ISDIR(os.stat(os.path.join(mnt.path, ".search")).st_mode)
    assert os.listdir(os.path.join(mnt.path, ".search")) == []
    q = os.path.join(d, ".search", "SUBJECT invoice")
    assert stat.S_ISDIR(os.stat(q).st_mode)
    assert os.listdir(os.path.join(d, ".search")) == []      # still not listed
    r = wh.run(["find", mnt.path], timeout=60)
    assert r.returncode == 0, r.stderr
    assert ".search" not in r.stdout.decode(), r.stdout.decode()[-2000:]
    assert sorted(os.listdir(d)) == listing


@pytest.mark.parametrize("query", QUERIES)
def test_folder_search(scratch_dovecot, scratch_mounter, rows, query):
    """The entries are the matching messages' names in the folder, with the
    same st_ino and the same bytes; the UIDs are imaplib's UID SEARCH."""
    folder, msgs = rows
    want_uids = expected_uids(msgs, query)
    assert server_search(scratch_dovecot, folder, query) == want_uids
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    names = by_uid(d)
    s = os.path.join(d, ".search", query)
    got = os.listdir(s)
    assert sorted(got) == sorted(names[u] for u in want_uids), (query, got)
    raw = {x["uid"]: x["raw"] for x in msgs}
    for u in want_uids:
        a, b = os.stat(os.path.join(s, names[u])), os.stat(os.path.join(d, names[u]))
        assert stat.S_ISREG(a.st_mode), names[u]
        assert a.st_ino == b.st_ino, (names[u], a.st_ino, b.st_ino)
        assert a.st_size == b.st_size == len(raw[u])
        assert read(os.path.join(s, names[u])) == raw[u]
    # a non-match does not resolve there
    other = sorted(set(names) - want_uids)
    if other:
        assert errno_of(lambda: os.stat(os.path.join(s, names[other[0]]))) == errno.ENOENT


def test_search_without_matches_is_empty(scratch_dovecot, scratch_mounter, rows):
    folder, msgs = rows
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    assert os.listdir(os.path.join(d, ".search", NOTHING)) == []
    assert os.listdir(os.path.join(mnt.path, ".search", NOTHING)) == []


@pytest.mark.parametrize("query", INVALID)
def test_invalid_query_einval(scratch_dovecot, scratch_mounter, rows, query):
    folder, msgs = rows
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    for base in (os.path.join(d, ".search"), os.path.join(mnt.path, ".search")):
        with pytest.raises(OSError) as ei:
            os.listdir(os.path.join(base, query))
        assert ei.value.errno == errno.EINVAL, (base, query, ei.value)
    # the mount goes on
    assert sorted(by_uid(d)) == sorted(x["uid"] for x in msgs)
    assert sorted(os.listdir(os.path.join(d, ".search", "SUBJECT invoice"))) == \
        sorted(by_uid(d)[u] for u in expected_uids(msgs, "SUBJECT invoice"))
    assert helpers.is_mounted(mnt.path) and mnt.proc.poll() is None


# -- MOUNT/.search/QUERY ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(scratch_dovecot):
    """Folders INBOX, P, P/Child, R, R/S, Q with messages whose subject
    has (or has not) a unique word: matches in INBOX (1), P/Child (2), R (1)."""
    word = "zqx" + re.sub(r"[^0-9]", "", wh.unique("t"))
    P, R, Q = (wh.unique_folder(x) for x in ("SrchP", "SrchR", "SrchQ"))
    plan = {"INBOX": [True, False], P: [False], P + "/Child": [True, False, True],
            R: [True], R + "/S": [False], Q: [False]}
    token = wh.unique("tr")
    out = {}
    m = scratch_dovecot.connect()
    try:
        n = 0
        for folder, matches in plan.items():
            msgs = []
            for hit in matches:
                subj = ("Tree %s %d" % (word, n)) if hit else ("Tree other %d" % n)
                msgs.append(pf.search_msg(token, n, "tree@example.org", subj,
                                          dt.datetime(2026, 11, 1 + n, 9, 0, tzinfo=wh.UTC),
                                          "tree body"))
                msgs[-1]["hit"] = hit
                n += 1
            wh.seed(m, folder, msgs, create=(folder != "INBOX"))
            out[folder] = msgs
    finally:
        m.logout()
    return word, P, R, Q, out


def test_mount_search_tree(scratch_dovecot, scratch_mounter, tree):
    word, P, R, Q, seeded = tree
    query = "SUBJECT " + word
    for folder, msgs in seeded.items():
        assert server_search(scratch_dovecot, folder, query) == \
            {x["uid"] for x in msgs if x["hit"]}, folder
    mnt = scratch_mounter(scratch_dovecot)
    top = os.path.join(mnt.path, ".search", query)
    assert sorted(os.listdir(top)) == sorted(["INBOX", P, R])
    assert os.listdir(os.path.join(top, P)) == ["Child"]
    assert stat.S_ISDIR(os.stat(os.path.join(top, P)).st_mode)
    for folder in ("INBOX", P + "/Child", R):
        d = helpers.folder_path(mnt.path, folder)
        names = by_uid(d)
        want = sorted(names[x["uid"]] for x in seeded[folder] if x["hit"])
        sd = helpers.folder_path(top, folder)
        got = os.listdir(sd)
        if folder == R:
            assert "S" not in got, got          # R/S has no matches
        assert sorted(got) == want, (folder, got)
        for n in want:
            assert os.stat(os.path.join(sd, n)).st_ino == os.stat(os.path.join(d, n)).st_ino
            assert read(os.path.join(sd, n)) == read(os.path.join(d, n))
    for missing in (Q, R + "/S", P + "/Nope", "Trash/" + word):
        assert errno_of(lambda: os.listdir(helpers.folder_path(top, missing))) == \
            errno.ENOENT, missing
    # the folder's own search agrees
    child = helpers.folder_path(mnt.path, P + "/Child")
    assert sorted(os.listdir(os.path.join(child, ".search", query))) == \
        sorted(os.listdir(helpers.folder_path(top, P + "/Child")))
    # a search's folders are not the folders: mv and rmdir of one is refused,
    # and the folder stays where it is
    for op in (lambda: os.rename(os.path.join(top, P, "Child"), os.path.join(mnt.path, "Moved")),
               lambda: os.rename(os.path.join(top, P), os.path.join(top, "Moved")),
               lambda: os.rmdir(os.path.join(top, R))):
        assert errno_of(op) == errno.EROFS
    m = scratch_dovecot.connect()
    try:
        names = wh.all_folders(m)
    finally:
        m.logout()
    assert P + "/Child" in names and "Moved" not in names, names


def test_open_message_survives_its_search(scratch_dovecot, scratch_mounter):
    """A message open in its folder and listed in a search is one kernel
    inode (same number, same generation): listing the search while the file
    is open and read must not turn the open file stale (EIO)."""
    folder, msgs = _erin_folder(scratch_dovecot, "SrchOpen", n_erin=1)
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    name = wh.canonical(msgs[0], msgs[0]["uid"])
    s = os.path.join(d, ".search", 'FROM "erin"')
    with open(os.path.join(d, name), "rb") as f:
        first = f.read(10)
        for _ in range(3):
            assert os.listdir(s) == [name]
            os.stat(os.path.join(s, name))
            os.stat(os.path.join(d, name))
        rest = f.read()
    assert first + rest == msgs[0]["raw"]
    assert os.stat(os.path.join(s, name)).st_ino == os.stat(os.path.join(d, name)).st_ino


# -- rm, mv, changes ----------------------------------------------------------------------------

def _erin_folder(server, prefix, n_erin=3, extra_folders=()):
    folder = wh.unique_folder(prefix)
    token = wh.unique(prefix.lower())
    msgs = [pf.search_msg(token, i, "Erin <erin@example.org>" if i < n_erin
                          else "frank@example.org", "Erin says %d" % i,
                          dt.datetime(2026, 11, 3 + i, 9, 0, tzinfo=wh.UTC), "body %d" % i)
            for i in range(n_erin + 1)]
    m = server.connect()
    try:
        wh.seed(m, folder, msgs)
        for f in extra_folders:
            wh.create_folder(m, f)
    finally:
        m.logout()
    return folder, msgs


def where(server, msgs):
    m = server.connect()
    try:
        return {k: [f for f, _ in v] for k, v in wh.locate(m, msgs).items()}
    finally:
        m.logout()


def test_rm_of_an_entry_moves_to_trash(scratch_dovecot, scratch_mounter):
    folder, msgs = _erin_folder(scratch_dovecot, "SrchRm")
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    s = os.path.join(d, ".search", 'FROM "erin"')
    name = wh.canonical(msgs[0], msgs[0]["uid"])
    assert sorted(os.listdir(s)) == sorted(wh.canonical(x, x["uid"]) for x in msgs[:3])
    os.unlink(os.path.join(s, name))
    assert where(scratch_dovecot, msgs) == dict(
        [(msgs[0]["msgid"], ["Trash"])] + [(x["msgid"], [folder]) for x in msgs[1:]])
    assert name not in os.listdir(d)
    assert sorted(os.listdir(s)) == sorted(wh.canonical(x, x["uid"]) for x in msgs[1:3])
    assert errno_of(lambda: os.stat(os.path.join(s, name))) == errno.ENOENT


def test_mv_of_an_entry_moves_the_message(scratch_dovecot, scratch_mounter):
    dst = wh.unique_folder("SrchMvDst")
    folder, msgs = _erin_folder(scratch_dovecot, "SrchMv", extra_folders=[dst])
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    dd = helpers.folder_path(mnt.path, dst)
    assert os.listdir(dd) == []
    s = os.path.join(d, ".search", 'FROM "erin"')
    name = wh.canonical(msgs[1], msgs[1]["uid"])
    assert name in os.listdir(s)
    os.rename(os.path.join(s, name), os.path.join(dd, name))
    m = scratch_dovecot.connect()
    try:
        assert wh.check_once(m, [msgs[1]], allowed=[dst]) == []
        assert wh.check_once(m, msgs[:1] + msgs[2:], allowed=[folder]) == []
        (f, rec), = wh.locate(m, [msgs[1]], [dst])[msgs[1]["msgid"]]
    finally:
        m.logout()
    assert os.listdir(dd) == [wh.canonical(msgs[1], rec["uid"])]
    assert name not in os.listdir(d)
    assert name not in os.listdir(s)


@pytest.mark.deadline(90)
def test_results_follow_changes(scratch_dovecot, scratch_mounter):
    """A new matching message: shown after `touch QUERYDIR` at once, and
    after dir_cache (1 s here) without it; an expunged one goes."""
    folder, msgs = _erin_folder(scratch_dovecot, "SrchLive", n_erin=1)
    mnt = scratch_mounter(scratch_dovecot, extra_opts=["dir_cache=1"])
    d = helpers.folder_path(mnt.path, folder)
    s = os.path.join(d, ".search", 'FROM "erin"')
    top = os.path.join(mnt.path, ".search", 'FROM "erin"')
    assert os.listdir(s) == [wh.canonical(msgs[0], msgs[0]["uid"])]
    token = wh.unique("live")
    new = [pf.search_msg(token, i, "erin@example.org", "Erin again %d" % i,
                         dt.datetime(2026, 12, 1 + i, 9, 0, tzinfo=wh.UTC), "new")
           for i in range(2)]
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, new[:1], create=False)
    finally:
        m.logout()
    r = wh.run(["touch", s], timeout=30)
    assert r.returncode == 0, r.stderr
    want = sorted(wh.canonical(x, x["uid"]) for x in msgs[:1] + new[:1])
    assert sorted(os.listdir(s)) == want

    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, new[1:], create=False)
    finally:
        m.logout()
    want2 = sorted(want + [wh.canonical(new[1], new[1]["uid"])])
    t0 = time.monotonic()
    got = helpers.wait_for(lambda: sorted(os.listdir(s)) == want2, timeout=12, interval=0.3)
    assert got, "after %.1fs %s, expected %s" % (time.monotonic() - t0, os.listdir(s), want2)
    # and so does the search over the whole mount
    tf = helpers.folder_path(top, folder)
    assert helpers.wait_for(lambda: sorted(os.listdir(tf)) == want2, timeout=12,
                            interval=0.3), (os.listdir(tf), want2)

    # expunged on the server: gone from the results
    m = scratch_dovecot.connect()
    try:
        m.select(wh.mailgen.qmbox(folder))
        m.uid("STORE", str(new[0]["uid"]), "+FLAGS.SILENT", "(\\Deleted)")
        m.expunge()
    finally:
        m.logout()
    gone = wh.canonical(new[0], new[0]["uid"])
    assert helpers.wait_for(lambda: gone not in os.listdir(s), timeout=12, interval=0.3), \
        os.listdir(s)


def test_results_follow_idle(scratch_dovecot, scratch_mounter):
    """In a watched folder (IDLE), a new match shows without a touch and long
    before dir_cache (600 s here): the watcher's sync makes a new listing,
    and results taken before it are asked again."""
    folder, msgs = _erin_folder(scratch_dovecot, "SrchIdle", n_erin=1)
    mnt = scratch_mounter(scratch_dovecot,
                          extra_opts=["dir_cache=600", "watch=" + folder])
    s = os.path.join(helpers.folder_path(mnt.path, folder), ".search", 'FROM "erin"')
    assert os.listdir(s) == [wh.canonical(msgs[0], msgs[0]["uid"])]
    new = pf.search_msg(wh.unique("idle"), 0, "erin@example.org", "Erin idles",
                        dt.datetime(2026, 12, 2, 9, 0, tzinfo=wh.UTC), "new")
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [new], create=False)
    finally:
        m.logout()
    want = sorted(wh.canonical(x, x["uid"]) for x in (msgs[0], new))
    assert helpers.wait_for(lambda: sorted(os.listdir(s)) == want, timeout=15, interval=0.3), \
        (os.listdir(s), want)
