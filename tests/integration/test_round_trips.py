"""Round trips (README: Performance, "Real networks"): on a distant server
each command imapfs sends beyond what the work needs costs a round trip.
These tests count the commands on the wire (plain IMAP through
scripts/fault-proxy.py, which logs every command line) for work whose
ideal is known:
  - mv of several messages into a listed folder: one UID MOVE each, and no
    SELECT, STATUS or LIST between them;
  - cat of every message of a listed folder: the first pass asks for the
    first messages in one UID FETCH, the first one included;
  - a fresh mount opens its spare sessions by itself (a first parallel read
    does not pay for TCP, TLS and LOGIN);
  - cat of a large message: a few FETCHes of long runs, not one per block;
  - the small bodies a pass fetched ahead are in the kernel's page cache
    before the reader opens them (its reads never reach the daemon);
  - the inodes a first listing gives the kernel while it streams in are
    kept by the next listing (their pages too)."""

import os
import re
import subprocess
import time

import helpers
import live_helpers as lh
import write_helpers as wh


def proxied(server, fault_proxy, scratch_mounter, tmp_path, extra=()):
    port, log = fault_proxy(server.env["IMAP_PORT"])
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=10",
            "cache_dir=" + str(tmp_path / "cache-rt")] + list(extra)
    return scratch_mounter(server, url=url, opts=opts), log


def commands_after(log, mark):
    """Command words ("UID MOVE", "SELECT", ...) the client sent after the
    log grew past mark, in order."""
    text = helpers.read_text(log)[mark:]
    out = []
    for m in re.finditer(r"#\d+ C: \S+ ((?:UID )?[A-Z]+)", text):
        out.append(m.group(1))
    return out


def log_size(log):
    return len(helpers.read_text(log))


def settle(mnt, log, quiet=0.5, timeout=15):
    """Waits until the mount sent nothing for `quiet` seconds (spare
    sessions opened, IDLE started)."""
    deadline = time.monotonic() + timeout
    last, since = log_size(log), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = log_size(log)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the mount never went quiet")


def listed_folder(server, fault_proxy, scratch_mounter, tmp_path, folder, msgs):
    """folder seeded with msgs, and a mount through the proxy that has
    listed it and gone quiet: (mount, log, folder path, names, log mark)."""
    m = server.connect()
    try:
        wh.seed(m, folder, msgs)
    finally:
        m.logout()
    mnt, log = proxied(server, fault_proxy, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    names = sorted(os.listdir(d))
    settle(mnt, log)
    return mnt, log, d, names, log_size(log)


def test_mv_burst_is_one_move_each(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    server = scratch_server()
    token = wh.unique("rt1")
    msgs = [wh.make_msg(token, i) for i in range(8)]
    m = server.connect()
    try:
        wh.seed(m, token + "-A", msgs)
        wh.create_folder(m, token + "-B")
    finally:
        m.logout()
    mnt, log = proxied(server, fault_proxy, scratch_mounter, tmp_path)
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    os.listdir(b)
    settle(mnt, log)
    mark = log_size(log)
    r = subprocess.run(["mv"] + [os.path.join(a, n) for n in names] + [b + "/"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    sent = [c for c in commands_after(log, mark) if c not in ("IDLE", "DONE", "NOOP")]
    assert sent == ["UID MOVE"] * len(names), sent
    assert wh.wait_once(server, msgs, [token + "-A", token + "-B"], allowed=[token + "-B"]) == []


def test_cat_of_a_folder_starts_with_one_fetch(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    server = scratch_server()
    token = wh.unique("rt2")
    msgs = [wh.make_msg(token, i, size=3000) for i in range(6)]
    mnt, log, d, names, mark = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                             token + "-C", msgs)
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            f.read()
    fetches = [c for c in commands_after(log, mark) if c == "UID FETCH"]
    assert fetches == ["UID FETCH"], "cat of 6 small messages sent %s" % fetches
    text = helpers.read_text(log)[mark:]
    assert re.search(r"UID FETCH 1,2,3,4,5,6 ", text), text[-2000:]


def stored_count(mnt):
    st = lh.read_status(mnt.path)
    m = re.search(r"^notify .*\bstored=(\d+)", st["text"], re.M)
    assert m, st["text"]
    return int(m.group(1))


def resident_bytes(path):
    """Bytes of path in the page cache (util-linux fincore: mmap and
    mincore, no read)."""
    r = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[0])


def test_pass_puts_small_bodies_in_the_page_cache(scratch_server, fault_proxy, scratch_mounter,
                                                  tmp_path):
    """Each read of a small message once cost a round trip into the
    daemon, after its open: the bodies a pass fetches ahead go into the
    kernel's page cache as they arrive, at the size the kernel was told, so
    `cat *` pays the open alone.  A message the reader has not opened yet is
    resident, byte-exact, and stays so."""
    server = scratch_server()
    token = wh.unique("rt9")
    msgs = [wh.make_msg(token, i, size=2000 + 3000 * i) for i in range(6)]
    mnt, log, d, names, mark = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                             token + "-P", msgs)
    assert stored_count(mnt) == 0
    with open(os.path.join(d, names[0]), "rb") as f:
        f.read()
    assert helpers.wait_for(lambda: stored_count(mnt) >= len(names) - 1, 15), lh.read_status(mnt.path)["text"]
    want = {m["sha"] for m in msgs}
    for n in names[1:]:
        p = os.path.join(d, n)
        size = os.stat(p).st_size
        assert resident_bytes(p) == (size + 4095) // 4096 * 4096, "%s not in the page cache" % n
        with open(p, "rb") as f:
            body = f.read()
        assert len(body) == size and helpers.sha256(body) in want, n
    fetches = [c for c in commands_after(log, mark) if c == "UID FETCH"]
    assert fetches == ["UID FETCH"], fetches


def test_first_listing_keeps_its_inodes(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    """A folder's first listing reaches the kernel while it still streams
    in; the inodes it makes must be the ones later listings name (the same
    generation), or the kernel drops them, and their pages, at the next
    `ls`: a message read after the first listing stays in the page cache
    across a second `ls -l`."""
    server = scratch_server()
    token = wh.unique("rt10")
    msgs = [wh.make_msg(token, i, size=3000 + 1000 * i) for i in range(4)]
    mnt, log, d, names, mark = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                             token + "-G", msgs)
    p = os.path.join(d, names[1])
    with open(p, "rb") as f:
        body = f.read()
    want = (len(body) + 4095) // 4096 * 4096
    assert resident_bytes(p) == want, "a read message is not in the page cache"
    r = subprocess.run(["ls", "-l", d], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and names[1] in r.stdout, r.stderr
    assert resident_bytes(p) == want, "the second listing dropped the first listing's inode"


def test_spare_sessions_opened_after_mount(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    server = scratch_server()
    mnt, log = proxied(server, fault_proxy, scratch_mounter, tmp_path, extra=["connections=3"])
    settle(mnt, log)
    st = lh.read_status(mnt.path)
    idle = [c for c in st["text"].splitlines() if c.startswith("connection ") and " idle" in c]
    assert len(idle) == 3, st["text"]


def test_mount_selects_inbox_once_per_role(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    """The mount lists INBOX on a pool session and its watcher selects it
    for IDLE; when the listing already shows what the watcher's SELECT
    reported (HIGHESTMODSEQ), the watcher does not sync INBOX once more
    (that SELECT took the pool session another folder was selected on:
    a round trip on the mount and one more on the next use of that folder)."""
    server = scratch_server()
    m = server.connect()
    try:
        wh.seed(m, "INBOX", [wh.make_msg(wh.unique("rt4"), i) for i in range(3)])
    finally:
        m.logout()
    mnt, log = proxied(server, fault_proxy, scratch_mounter, tmp_path)
    assert len(os.listdir(os.path.join(mnt.path, "INBOX"))) == 3
    settle(mnt, log)
    text = helpers.read_text(log)
    sessions = re.findall(r"#(\d+) C: \S+ SELECT INBOX\b", text)
    idle = set(re.findall(r"#(\d+) C: \S+ IDLE\b", text))
    assert len(idle) == 1, text[-3000:]
    assert sorted(s in idle for s in sessions) == [False, True], text[-3000:]


def test_cat_of_a_large_message_reads_ahead_in_runs(scratch_server, fault_proxy, scratch_mounter,
                                                     tmp_path):
    """The kernel reads 256 KiB (two blocks) at a time: read-ahead must see
    such reads as sequential and keep its window going to the end.  It once
    took a read at block 2 after one at block 0 for a jump: after the first
    8 MiB run every further block (some 14 of a 10 MB message) cost a
    FETCH and a round trip of its own."""
    server = scratch_server()
    token = wh.unique("rt5")
    msg = wh.make_msg(token, 0, size=10 * 1024 * 1024)
    mnt, log, d, names, mark = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                             token + "-L", [msg])
    # cat's own reads (128 KiB), not one read of the whole file
    r = subprocess.run(["cat", os.path.join(d, names[0])], capture_output=True, timeout=60)
    assert r.returncode == 0 and helpers.sha256(r.stdout) == msg["sha"], r.stderr
    fetches = [c for c in commands_after(log, mark) if c == "UID FETCH"]
    # the first read's blocks, then runs of up to 64 blocks, the size
    # check reading the last one: 80 blocks need a few, never one per block
    assert 2 <= len(fetches) <= 8, "cat of a 10 MB message sent %d UID FETCHes" % len(fetches)


def test_folder_batch_needs_no_select_beside_a_large_message(scratch_server, fault_proxy,
                                                              scratch_mounter, tmp_path):
    """A pass over a listed folder with a large message in it: the batch
    of first blocks (what the reader waits for first) goes out on the
    session that has the folder selected.  When the large message's last
    block (its size check, at open then) was queued first it took that
    session, and the batch paid a SELECT first -- a round trip before the
    first byte of the pass; a pass of head now asks for no last block at
    all."""
    server = scratch_server()
    token = wh.unique("rt6")
    msgs = [wh.make_msg(token, i, size=3000) for i in range(6)]
    msgs.insert(3, wh.make_msg(token, 6, size=400 * 1024))
    mnt, log, d, names, mark = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                             token + "-M", msgs)
    r = subprocess.run(["sh", "-c", 'cd "$1" && exec head -q -c 4096 -- * > /dev/null', "sh", d],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = helpers.read_text(log)[mark:]
    batch = re.search(r"#(\d+) C: \S+ UID FETCH \d+,\d+", text)
    assert batch, text[-3000:]
    selects = re.findall(r"#(\d+) C: \S+ SELECT ", text[:batch.start()])
    assert batch.group(1) not in selects, "the batch's session selected first:\n" + text[-3000:]
    assert len(names) == 7


def test_pass_reading_whole_bodies_fetches_each_large_one_once(scratch_server, fault_proxy,
                                                                scratch_mounter, tmp_path):
    """Dovecot reads a Maildir message from its start to answer a FETCH at
    an offset: a pass of cat that got a large message's last block first
    (its size check) and then the rest had the server read it twice.  A
    large message's size is checked when a read gets to its end: a pass of
    python's read() (one read of the whole file) asks for the rest of each
    large body in one command, once; a pass of head asks for nothing past
    the first blocks (no size check, no rest)."""
    server = scratch_server()
    token = wh.unique("rt7")
    large = (1, 6, 8)
    m = server.connect()
    try:
        sets = {}
        for part in ("-cat", "-head"):
            sets[part] = [wh.make_msg(token + part, i, size=400 * 1024 if i in large else 3000)
                          for i in range(10)]
            wh.seed(m, token + part, sets[part])
    finally:
        m.logout()
    # a shallow read-ahead, so that the pass asks for several batches
    mnt, log = proxied(server, fault_proxy, scratch_mounter, tmp_path, extra=["prefetch=4"])
    dirs = {p: helpers.folder_path(mnt.path, token + p) for p in sets}
    names = {p: sorted(os.listdir(d)) for p, d in dirs.items()}
    settle(mnt, log)
    for part in ("-head", "-cat"):
        mark = log_size(log)
        if part == "-cat":
            for n, msg in zip(names[part], sets[part]):
                with open(os.path.join(dirs[part], n), "rb") as f:
                    assert helpers.sha256(f.read()) == msg["sha"], n
        else:
            r = subprocess.run(["sh", "-c", 'cd "$1" && exec head -q -c 4096 -- * > /dev/null', "sh",
                                dirs[part]], capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
        settle(mnt, log)
        text = helpers.read_text(log)[mark:]
        for i in large:
            uid = sets[part][i]["uid"]
            asked = re.findall(r"C: \S+ UID FETCH %d \(UID BODY\.PEEK\[\]<(\d+)\.(\d+)>\)" % uid, text)
            if part == "-head":
                assert asked == [], (i, asked, text[-3000:])
            else:
                assert asked == [("131072", "393216")], (i, asked, text[-3000:])


def test_cat_of_a_partly_cached_large_message_reads_ahead_in_runs(scratch_server, fault_proxy,
                                                                   scratch_mounter, tmp_path):
    """A large message of which a few blocks are cached already (a reader
    looked inside it first): cat must still get the rest in long runs.
    Read-ahead once stopped its run at the first cached block and moved
    its window past the gap, so every block of the gap cost a FETCH (and a
    round trip) of its own."""
    server = scratch_server()
    token = wh.unique("rt8")
    msg = wh.make_msg(token, 0, size=10 * 1024 * 1024)
    mnt, log, d, names, _ = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                          token + "-P", [msg])
    p = os.path.join(d, names[0])
    fd = os.open(p, os.O_RDONLY)
    try:
        for mib in (1, 3, 5, 7):
            assert len(os.pread(fd, 4096, mib * 1024 * 1024)) == 4096
    finally:
        os.close(fd)
    settle(mnt, log)
    mark = log_size(log)
    r = subprocess.run(["cat", p], capture_output=True, timeout=60)
    assert r.returncode == 0 and helpers.sha256(r.stdout) == msg["sha"], r.stderr
    fetches = [c for c in commands_after(log, mark) if c == "UID FETCH"]
    # the gaps between the cached blocks, a run or two each: never one
    # FETCH per block (76 blocks are missing)
    assert 2 <= len(fetches) <= 16, "cat sent %d UID FETCHes" % len(fetches)


def test_a_read_across_uncached_blocks_is_one_fetch(scratch_server, fault_proxy, scratch_mounter,
                                                    tmp_path):
    """One read() of 128 KiB from the middle of a large message none of
    whose blocks are cached (half of block 4, half of block 5: one FUSE
    read on any kernel) goes to the server as one FETCH of both: the
    reader's first block once went out alone, a round trip before the
    rest of its span."""
    server = scratch_server()
    token = wh.unique("rt9")
    msg = wh.make_msg(token, 0, size=10 * 1024 * 1024)
    mnt, log, d, names, _ = listed_folder(server, fault_proxy, scratch_mounter, tmp_path,
                                          token + "-S", [msg])
    p = os.path.join(d, names[0])
    block = 128 * 1024
    start, size = 4 * block + block // 2, block
    fd = os.open(p, os.O_RDONLY)
    try:
        settle(mnt, log)  # what opening fetches (the first and last blocks)
        mark = log_size(log)
        got = os.pread(fd, size, start)
    finally:
        os.close(fd)
    assert got == msg["raw"][start:start + size]
    text = helpers.read_text(log)[mark:]
    ranges = [(int(a), int(b)) for a, b in
              re.findall(r"#\d+ C: \S+ UID FETCH \d+ \((?:UID )?BODY\.PEEK\[\]<(\d+)\.(\d+)>", text)]
    covering = [(a, n) for a, n in ranges if a <= start < a + n]
    assert covering, "no FETCH of offset %d: %r" % (start, ranges)
    a, n = covering[0]
    assert a + n >= start + size, (
        "the read's first block went out alone: FETCHes %r" % ranges)
