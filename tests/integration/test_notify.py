"""Live updates (issue 6): watched folders, MOUNT/.status, touch to resync,
UIDVALIDITY changes -- against private Dovecots (ScratchServer), changed
by another client (imaplib) while mounted.

- Watched folders (INBOX always; more with -o watch=A,B) follow the server
  over IMAP IDLE: `inotifywait -m MOUNT/FOLDER` reports CREATE for a message
  another client appended, DELETE for one expunged or moved away, ATTRIB for
  a flag change, each within 2 s, and listings / user.imap.flags show the
  new state at once although dir_cache is 3600.
- MOUNT/.status: a read-only (0400) text file, generated at each open:
  server, state, one line per pool connection, one per watched folder, the
  cache counters.
- `touch MOUNT/FOLDER` resyncs an unwatched folder at once.
- A watched folder deleted and re-created under the same name (new
  UIDVALIDITY, same UIDs, names and sizes, other bytes) never serves the old
  bytes for the new messages.

Directories are always listed and their entries stat'ed (`ls -l`) before the
change, as a user's file manager would: the kernel then knows the entries
whose removal it is told about.
"""

import errno
import os
import random
import re
import stat
import time

import pytest

import helpers
import live_helpers as lh
import write_helpers as wh
from helpers import mailgen
from live_helpers import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.deadline(90)

BIG_DIR_CACHE = "dir_cache=3600"
BLOCK = 128 * 1024


def msg(token, i=0, **kw):
    return wh.make_msg(wh.unique(token), i, **kw)


def seeded_server(scratch_server, folders):
    """A fresh Dovecot; folders = {name: n messages} (INBOX included if
    given).  Returns (server, {folder: [msg dicts]})."""
    server = scratch_server()
    out = {}
    for folder, n in folders.items():
        out[folder] = lh.seed(server, folder, [msg("nt", i) for i in range(n)],
                              create=folder != lh.INBOX)
    return server, out


def name_of(d, uid):
    names = [n for n in os.listdir(d) if helpers.uid_of(n) == uid]
    return names[0] if len(names) == 1 else None


# -- 2. watched folders: inotify events and listings ----------------------------------

def test_append_in_inbox_gives_create(scratch_server, live):
    """A message APPENDed to INBOX by another client (INBOX is watched without
    any option): CREATE <its name> within 2 s; ls -l shows it with its size
    at once (dir_cache=3600) and it reads as the server's bytes."""
    server, _ = seeded_server(scratch_server, {lh.INBOX: 2})
    mnt = live.mount(server, [BIG_DIR_CACHE])
    d = helpers.folder_path(mnt.path, lh.INBOX)
    before = lh.ls_l(d)
    assert len(before) == 2, sorted(before)
    ino = live.inotify(d)

    new = msg("create")
    uid = lh.append(server, lh.INBOX, new)
    t_change = time.monotonic()
    ev = lh.expect_event(ino, "CREATE", None, t_change, "APPEND to INBOX",
                         pred=lh.uid_suffix(uid))
    name = ev.name
    listing = lh.ls_l(d)
    assert name in listing, "CREATE reported, but ls does not show %r: %r" % (
        name, sorted(listing))
    assert listing[name].st_size == len(new["raw"])
    assert set(listing) == set(before) | {name}
    assert lh.read_file(os.path.join(d, name)) == new["raw"]
    assert os.getxattr(os.path.join(d, name), "user.imap.uid").decode() == str(uid)


def test_expunge_gives_delete(scratch_server, live):
    """A message expunged by another client: DELETE <its name> within 2 s;
    it is gone from ls at once and its names (listed and UID.eml) give
    ENOENT; the other messages stay."""
    server, seeded = seeded_server(scratch_server, {lh.INBOX: 3})
    mnt = live.mount(server, [BIG_DIR_CACHE])
    d = helpers.folder_path(mnt.path, lh.INBOX)
    before = lh.ls_l(d)
    victim = seeded[lh.INBOX][1]
    name = name_of(d, victim["uid"])
    assert name in before, sorted(before)
    ino = live.inotify(d)

    lh.imap_expunge(server, lh.INBOX, victim["uid"])
    t_change = time.monotonic()
    lh.expect_event(ino, "DELETE", name, t_change, "EXPUNGE in INBOX")
    assert set(os.listdir(d)) == set(before) - {name}
    for n in (name, "%d.eml" % victim["uid"]):
        with pytest.raises(FileNotFoundError):
            os.stat(os.path.join(d, n))


def test_flag_change_gives_attrib(scratch_server, live):
    """Flags changed by another client (STORE +FLAGS, then -FLAGS): ATTRIB
    <name> within 2 s each time, and user.imap.flags shows the new flags at
    once (dir_cache=3600)."""
    server, seeded = seeded_server(scratch_server, {lh.INBOX: 2})
    mnt = live.mount(server, [BIG_DIR_CACHE])
    d = helpers.folder_path(mnt.path, lh.INBOX)
    lh.ls_l(d)
    target = seeded[lh.INBOX][0]
    name = name_of(d, target["uid"])
    path = os.path.join(d, name)
    assert lh.flags_xattr(path) == []
    ino = live.inotify(d)

    lh.imap_store(server, lh.INBOX, target["uid"], "+FLAGS", r"\Flagged $Work")
    t1 = time.monotonic()
    lh.expect_event(ino, "ATTRIB", name, t1, "STORE +FLAGS")
    assert lh.flags_xattr(path) == sorted([r"\Flagged", "$Work"])

    t_mark = time.monotonic()
    lh.imap_store(server, lh.INBOX, target["uid"], "-FLAGS", r"\Flagged")
    t2 = time.monotonic()
    ev = ino.wait("ATTRIB", name, timeout=10.0, since=t_mark)
    assert ev is not None, "STORE -FLAGS: no second ATTRIB %r; events: %r" % (
        name, ino.seen())
    assert ev.t - t2 <= lh.NOTIFY_WITHIN, "STORE -FLAGS: ATTRIB after %.2f s" % (
        ev.t - t2)
    assert lh.flags_xattr(path) == ["$Work"]
    # the other message was not touched
    other = seeded[lh.INBOX][1]
    assert not ino.wait("ATTRIB", name_of(d, other["uid"]), timeout=0), \
        "ATTRIB for a message whose flags did not change"


def test_move_away_gives_delete(scratch_server, live):
    """A message another client MOVEs from INBOX to an unwatched folder:
    DELETE in INBOX within 2 s, gone from ls at once; the target folder,
    listed afterwards, has it with the server's bytes."""
    server, seeded = seeded_server(scratch_server, {lh.INBOX: 2, "Elsewhere": 1})
    mnt = live.mount(server, [BIG_DIR_CACHE])
    d = helpers.folder_path(mnt.path, lh.INBOX)
    before = lh.ls_l(d)
    mover = seeded[lh.INBOX][0]
    name = name_of(d, mover["uid"])
    ino = live.inotify(d)

    new_uid = lh.imap_move(server, lh.INBOX, mover["uid"], "Elsewhere", mover["msgid"])
    t_change = time.monotonic()
    lh.expect_event(ino, "DELETE", name, t_change, "MOVE INBOX -> Elsewhere")
    assert set(os.listdir(d)) == set(before) - {name}
    e = helpers.folder_path(mnt.path, "Elsewhere")
    other = lh.files_by_uid(e)
    assert new_uid in other, "moved message (UID %s) not in Elsewhere: %r" % (
        new_uid, sorted(other))
    assert lh.read_file(other[new_uid]) == mover["raw"]


def test_move_between_watched_folders(scratch_server, live):
    """-o watch=Archive: a message moved by another client from INBOX to
    Archive gives DELETE in INBOX and CREATE (its new name, new UID) in
    Archive, both within 2 s; both listings are right at once."""
    server, seeded = seeded_server(scratch_server, {lh.INBOX: 2, "Archive": 1})
    mnt = live.mount(server, [BIG_DIR_CACHE], watch=["Archive"])
    di = helpers.folder_path(mnt.path, lh.INBOX)
    da = helpers.folder_path(mnt.path, "Archive")
    before_i, before_a = lh.ls_l(di), lh.ls_l(da)
    ino_i, ino_a = live.inotify(di), live.inotify(da)
    mover = seeded[lh.INBOX][1]
    old_name = name_of(di, mover["uid"])

    new_uid = lh.imap_move(server, lh.INBOX, mover["uid"], "Archive", mover["msgid"])
    t_change = time.monotonic()
    assert new_uid, "no UID for the moved message in Archive"
    lh.expect_event(ino_i, "DELETE", old_name, t_change, "MOVE: source INBOX")
    new_name = lh.expect_event(ino_a, "CREATE", None, t_change, "MOVE: target Archive",
                               pred=lh.uid_suffix(new_uid)).name
    assert set(os.listdir(di)) == set(before_i) - {old_name}
    assert set(os.listdir(da)) == set(before_a) | {new_name}
    assert lh.read_file(os.path.join(da, new_name)) == mover["raw"]


def test_watch_several_nested_and_non_ascii_folders(scratch_server, live):
    """-o watch=Projects/2024,Entwürfe (two folders, one nested, one whose
    server name is modified UTF-7): an APPEND to each gives CREATE in its
    directory within 2 s, and INBOX is still watched too."""
    folders = ["Projects/2024", "Entwürfe"]
    server = scratch_server()
    m = server.connect()
    try:
        wh.create_folder(m, "Projects")
        for f in folders:
            wh.create_folder(m, f)
    finally:
        m.logout()
    mnt = live.mount(server, [BIG_DIR_CACHE], watch=folders)
    inos = {}
    for f in folders + [lh.INBOX]:
        d = helpers.folder_path(mnt.path, f)
        assert lh.ls_l(d) == {}
        inos[f] = live.inotify(d)
    for i, f in enumerate(folders + [lh.INBOX]):
        new = msg("multi", i)
        uid = lh.append(server, f, new)
        t_change = time.monotonic()
        ev = lh.expect_event(inos[f], "CREATE", None, t_change, "APPEND to %s" % f,
                             pred=lh.uid_suffix(uid))
        assert os.listdir(helpers.folder_path(mnt.path, f)) == [ev.name]


# -- 3. MOUNT/.status ---------------------------------------------------------------

def test_status_listed_readonly(scratch_server, live):
    """.status is listed at the mount root, is a regular file of mode 0400,
    reads with cat, and every way of writing it (open for writing, O_TRUNC,
    O_APPEND, truncate) fails with EACCES or EPERM (imapfs must refuse it
    itself: the tests run as root, whom the mode does not stop)."""
    server = scratch_server()
    mnt = live.mount(server)
    assert lh.STATUS in os.listdir(mnt.path), sorted(os.listdir(mnt.path))
    path = os.path.join(mnt.path, lh.STATUS)
    st = os.stat(path)
    assert stat.S_ISREG(st.st_mode), oct(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o400, oct(st.st_mode)
    r = lh.run(["cat", path])
    assert r.returncode == 0, r.stderr
    assert re.search(rb"(?m)^server ", r.stdout), r.stdout

    refused = (errno.EACCES, errno.EPERM)
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC,
                  os.O_WRONLY | os.O_APPEND):
        err = None
        try:
            fd = os.open(path, flags)
            try:
                os.write(fd, b"state down\n")
            finally:
                os.close(fd)
        except OSError as e:
            err = e.errno
        assert err in refused, "open(.status, %#o) + write: %s, want EACCES/EPERM" % (
            flags, "success" if err is None else lh.errno_name(err))
    with pytest.raises(OSError) as ei:
        os.truncate(path, 0)
    assert ei.value.errno in refused, lh.errno_name(ei.value.errno)
    r = lh.run(["sh", "-c", 'echo hello > "$1"', "sh", path])
    assert r.returncode != 0, "echo > .status succeeded"
    with pytest.raises(OSError) as ei:
        os.unlink(path)
    # still there and still the status
    st = lh.read_status(mnt.path)
    assert st["server"] and st["state"], st["text"]


def test_status_content(scratch_server, live):
    """The lines of .status: `server imaps://USER@HOST:PORT`, `state up`, one
    `connection <n> <idle|busy|closed> <folder or ->` per pool connection
    (-o connections=2: one or two; after ls of an unwatched folder one of
    them has it selected), `watch <FOLDER> <idle|syncing|down>
    last_sync=<ISO> age=<N>s` for INBOX and the -o watch folder (idle once
    synced), and `cache memory_bytes=N memory_limit=N disk_bytes=N
    disk_limit=N hits=N misses=N hit_rate=P%` with the configured limits."""
    server, _ = seeded_server(scratch_server, {lh.INBOX: 1, "Archive": 1, "Notes": 2})
    mnt = live.mount(server, ["connections=2", "memory_cache=8M", "cache_size=16M"],
                     watch=["Archive"])
    st = lh.wait_status(mnt.path, lambda s: all(
        w["state"] == "idle" and w["last_sync"] not in (None, "never")
        for w in s["watches"].values()) and len(s["watches"]) >= 2, timeout=10)
    # ls Notes once the watchers' first syncs are done: those use pool
    # connections too, and with two connections they could displace Notes
    # (seen on Cyrus, where the watchers came up after the ls)
    os.listdir(helpers.folder_path(mnt.path, "Notes"))
    st = lh.read_status(mnt.path)
    text = st["text"]
    assert st["server"] == server.url(), text
    assert st["state"] == "up", text

    conns = st["connections"]
    assert 1 <= len(conns) <= 2, "connections=2, %d connection lines:\n%s" % (
        len(conns), text)
    assert len({c["n"] for c in conns}) == len(conns), text
    for c in conns:
        assert re.match(r"^\d+$", c["n"]), text
        assert c["state"] in ("idle", "busy", "closed"), text
        assert c["folder"], text
    assert "Notes" in [c["folder"] for c in conns], \
        "after ls Notes, no pool connection has Notes selected:\n" + text

    assert set(st["watches"]) == {"INBOX", "Archive"}, text
    for f, w in st["watches"].items():
        assert w["state"] == "idle", "watch %s not idle after 10 s:\n%s" % (f, text)
        assert lh.ISO_RE.match(w["last_sync"] or ""), "watch %s last_sync:\n%s" % (f, text)
        age = lh.seconds(w["age"])
        assert age is not None and age < 60, "watch %s age:\n%s" % (f, text)

    c = st["cache"]
    assert c is not None, "no cache line:\n" + text
    for k in ("memory_bytes", "memory_limit", "disk_bytes", "disk_limit", "hits",
              "misses", "hit_rate"):
        assert k in c, "cache line lacks %s:\n%s" % (k, text)
    assert int(c["memory_limit"]) == 8 << 20, text
    assert int(c["disk_limit"]) == 16 << 20, text
    assert re.match(r"^\d+(\.\d+)?%$", c["hit_rate"]), text
    assert 0 <= int(c["memory_bytes"]) <= int(c["memory_limit"]), text
    assert 0 <= int(c["disk_bytes"]) <= int(c["disk_limit"]), text


def test_status_cache_counters_fresh_at_each_open(scratch_server, live):
    """.status is generated at each open: reading an uncached message raises
    `misses` in the next open's content, reading it again (page cache dropped,
    so imapfs serves it) raises `hits`; memory_bytes grows; hit_rate is
    hits/(hits+misses).  A handle opened before keeps its own snapshot."""
    server, seeded = seeded_server(scratch_server, {"Notes": 2})
    mnt = live.mount(server, ["prefetch=0"])
    d = helpers.folder_path(mnt.path, "Notes")
    files = lh.files_by_uid(d)
    uid = seeded["Notes"][0]["uid"]

    early = open(os.path.join(mnt.path, lh.STATUS), "rb")
    try:
        c0 = lh.read_status(mnt.path)["cache"]
        assert c0 is not None
        assert lh.read_file(files[uid]) == seeded["Notes"][0]["raw"]
        c1 = lh.read_status(mnt.path)["cache"]
        assert int(c1["misses"]) > int(c0["misses"]), (c0, c1)
        assert int(c1["memory_bytes"]) > int(c0["memory_bytes"]), (c0, c1)
        assert lh.read_file(files[uid], drop=True) == seeded["Notes"][0]["raw"]
        c2 = lh.read_status(mnt.path)["cache"]
        assert int(c2["hits"]) > int(c1["hits"]), (c1, c2)
        assert int(c2["misses"]) == int(c1["misses"]), (c1, c2)
        hits, misses = int(c2["hits"]), int(c2["misses"])
        rate = float(c2["hit_rate"].rstrip("%"))
        assert abs(rate - 100.0 * hits / (hits + misses)) <= 1.0, c2
        snap = lh.parse_status(early.read().decode())["cache"]
        assert snap == c0, "a handle opened before the reads: %r, want the snapshot " \
            "of its open %r" % (snap, c0)
    finally:
        early.close()


def test_status_down_then_up(scratch_server, live):
    """Dovecot stopped: .status says `state down since=<ISO> next_attempt_in=<N>s`
    (N <= 60) and the INBOX watch is `down`; started again on the same port:
    `state up` and the watch `idle` within 75 s, without remounting."""
    server = scratch_server()
    mnt = live.mount(server, ["timeout=3"])
    st = lh.wait_status(mnt.path, lambda s: s["state"] == "up", timeout=5)
    assert st["state"] == "up", st["text"]
    server.stop()
    # something that needs the server, so the failure is noticed
    lh.run(["ls", helpers.folder_path(mnt.path, lh.INBOX)], timeout=20)
    st = lh.wait_status(mnt.path, lambda s: s["state"] == "down", timeout=6)
    text = st["text"]
    assert st["state"] == "down", "server stopped, .status:\n" + text
    assert lh.ISO_RE.match(st["state_kv"].get("since", "")), text
    nxt = lh.seconds(st["state_kv"].get("next_attempt_in"))
    assert nxt is not None and 0 <= nxt <= 60, text
    assert st["watches"].get("INBOX", {}).get("state") == "down", text

    server.restart()
    st = lh.wait_status(mnt.path, lambda s: s["state"] == "up" and
                        s["watches"].get("INBOX", {}).get("state") == "idle",
                        timeout=75, interval=1)
    assert st["state"] == "up", "75 s after the restart:\n" + st["text"]
    assert st["watches"]["INBOX"]["state"] == "idle", st["text"]
    assert mnt.proc.poll() is None


# -- 4. touch FOLDER: resync now ---------------------------------------------------

@pytest.mark.parametrize("folder", ["Notes", "Projects/Old"])
def test_touch_folder_resyncs(scratch_server, live, folder):
    """An unwatched folder with dir_cache=3600: a message another client
    APPENDs is listed (and reads right) right after `touch MOUNT/FOLDER`; an
    expunged one is gone right after the next touch."""
    server = scratch_server()
    m = server.connect()
    try:
        if "/" in folder:
            wh.create_folder(m, folder.split("/")[0])
        msgs = wh.seed(m, folder, [msg("touch", i) for i in range(2)])
    finally:
        m.logout()
    mnt = live.mount(server, [BIG_DIR_CACHE])
    d = helpers.folder_path(mnt.path, folder)
    assert sorted(lh.files_by_uid(d)) == sorted(x["uid"] for x in msgs)

    new = msg("touched")
    uid = lh.append(server, folder, new)
    r = lh.run(["touch", d])
    assert r.returncode == 0, "touch %s: %s" % (d, r.stderr.decode(errors="replace"))
    files = lh.files_by_uid(d)
    assert uid in files, "after touch, APPENDed UID %d not listed: %r" % (uid, sorted(files))
    assert lh.read_file(files[uid]) == new["raw"]

    lh.imap_expunge(server, folder, msgs[0]["uid"])
    r = lh.run(["touch", d])
    assert r.returncode == 0, r.stderr
    assert sorted(lh.files_by_uid(d)) == sorted([msgs[1]["uid"], uid])


# -- 8. UIDVALIDITY change on a watched folder ---------------------------------------

def same_size_variant(raw, old, new):
    assert len(old) == len(new)
    out = raw.replace(old.encode(), new.encode())
    assert len(out) == len(raw) and out != raw
    return out


@pytest.mark.deadline(120)
def test_uidvalidity_change_on_watched_folder(scratch_server, live):
    """-o watch=Recycled, dir_cache=3600: every message read (so cached);
    then another client deletes the folder and creates it again with other
    messages of the same sizes, dates and subjects (same UIDs and names, new
    UIDVALIDITY); the folder is gone for over a second in between, long
    enough for the watch to see it go.  No read through the mount ever
    returns the old bytes (reads may fail while the change is being
    noticed), and within 10 s every message reads as the new bytes
    (compared with imaplib)."""
    folder = "Recycled"
    server = scratch_server()
    sizes = [1500, 3 * BLOCK + 99, 9000]
    tok_old = wh.unique("uvold")
    tok_new = tok_old.replace("uvold", "uvNEW")
    olds = [wh.make_msg(tok_old, i, size=s, body="plain" if s < 4000 else "attach",
                        subject="recycled %d" % i, rnd=random.Random("old/%d" % i))
            for i, s in enumerate(sizes)]
    news = []
    for o in olds:
        body = o["raw"]
        cut = body.index(b"\r\n\r\n") + 4
        tail = bytearray(body[cut:])
        for j in range(0, len(tail), 1000):
            if tail[j] not in b"\r\n-=":
                tail[j] = ord("Q") if tail[j] != ord("Q") else ord("Z")
        raw = same_size_variant(body[:cut], tok_old, tok_new) + bytes(tail)
        news.append(dict(o, raw=raw, sha=helpers.sha256(raw)))
    lh.seed(server, folder, olds)
    old_truth = lh.truth(server, folder)

    mnt = live.mount(server, [BIG_DIR_CACHE], watch=[folder])
    d = helpers.folder_path(mnt.path, folder)
    files = lh.files_by_uid(d)
    assert sorted(files) == sorted(old_truth)
    for uid, p in files.items():
        assert helpers.sha256(lh.read_file(p, drop=False)) == old_truth[uid]["sha"]
    names_before = sorted(os.listdir(d))

    m = server.connect()
    try:
        mailgen.check(m.delete(mailgen.qmbox(folder)), "DELETE")
        time.sleep(1.1)        # a new UIDVALIDITY even if it is time-based
        wh.seed(m, folder, news)
    finally:
        m.logout()
    t_new = time.monotonic()
    new_truth = lh.truth(server, folder)
    assert sorted(new_truth) == sorted(old_truth), "UIDs differ: cannot test"
    old_sha = {u: r["sha"] for u, r in old_truth.items()}
    new_sha = {u: r["sha"] for u, r in new_truth.items()}

    problems, deadline = [], time.monotonic() + 10
    while True:
        good = 0
        try:
            listed = lh.files_by_uid(d)
        except OSError as e:
            listed = {}
            problems.append("listing: %s (allowed while changing)" % e.strerror)
        for uid, p in sorted(listed.items()):
            try:
                got = helpers.sha256(lh.read_file(p, drop=False))
            except OSError:
                continue
            if got == new_sha.get(uid):
                good += 1
                continue
            what = "the OLD message's bytes" if got == old_sha.get(uid) else \
                "bytes that are neither the old nor the new message"
            # diagnosis: the kernel's page cache, or imapfs itself?
            try:
                again = helpers.sha256(lh.read_file(p, drop=True))
                again = ("the new bytes" if again == new_sha.get(uid) else
                         "the old bytes" if again == old_sha.get(uid) else "other bytes")
            except OSError as e:
                again = "an error (%s)" % lh.errno_name(e.errno)
            pytest.fail("UID %d: %.1f s after the folder was re-created, a read "
                        "returned %s; with the page cache dropped: %s" % (
                            uid, time.monotonic() - t_new, what, again))
        if good == len(new_sha) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert good == len(new_sha), "after 10 s only %d of %d messages read as the new " \
        "bytes; %s" % (good, len(new_sha), problems[-3:])
    assert sorted(os.listdir(d)) == names_before
