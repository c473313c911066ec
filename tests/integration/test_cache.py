"""The block cache (src/cache.c, src/cache_disk.c) and the saved listings
(src/listing.c) seen from outside, against private Dovecots (ScratchServer):

- a second mount with the same cache_dir reads every message from disk: the
  IMAP conversation (scripts/fault-proxy.py --log) has no body FETCH and no
  full re-sync of the folder's metadata;
- cache_dir is private (0700 directories, 0600 files) even under umask 000;
- damaged or torn blocks in the segment files are refetched, never served;
  an older imapfs's file per block is removed quietly;
- concurrent random-range reads return exactly the server's bytes;
- memory (VmRSS) and disk (blocks/) stay within -o memory_cache/cache_size
  while 1 GB of mail is read;
- a UIDVALIDITY change drops the cached blocks.

Bytes are always compared with what imaplib fetches (BODY.PEEK[])."""

import os
import random
import re
import shutil
import signal
import stat
import struct
import subprocess
import threading
import time

import pytest

import helpers
import write_helpers as wh
from helpers import mailgen

pytestmark = pytest.mark.deadline(240)

BLOCK = 128 * 1024
LOG_LINE = re.compile(r"^\s*[\d.]+ #(\d+) (C|S): (.*)$")
# a FETCH of message bytes (whole or partial): BODY[], BODY.PEEK[]<o.n>,
# BINARY[], BINARY.PEEK[], RFC822 (not RFC822.SIZE/.HEADER)
BODY_FETCH = re.compile(r"BODY(?:\.PEEK)?\[\]|BINARY(?:\.PEEK)?\[\]|\bRFC822(?![.\w])", re.I)
# the name, then maybe "(CONDSTORE)"
SELECT = re.compile(r'^\S+ (?:SELECT|EXAMINE) ("(?:[^"\\]|\\.)*"|\S+)', re.I)


# -- helpers --------------------------------------------------------------------

def msg_sizes(rnd, n, lo, hi):
    """n sizes spread log-uniformly over [lo, hi], always including lo and hi."""
    out = [lo, hi]
    while len(out) < n:
        out.append(int(lo * (hi / lo) ** rnd.random()))
    rnd.shuffle(out)
    return out


def seed_folder(server, folder, sizes, token=None, create=True):
    """APPEND one message per size; returns {uid: raw bytes as stored}
    (re-fetched with imaplib, so exactly BODY[])."""
    token = token or wh.unique("cache")
    msgs = [wh.make_msg(token, i, size=s, body="plain" if s < 4000 else "attach",
                        subject="cache test %d" % i)
            for i, s in enumerate(sizes)]
    m = server.connect()
    try:
        wh.seed(m, folder, msgs, create=create)
        return server_bodies(m, folder)
    finally:
        m.logout()


def server_bodies(m, folder):
    """{uid: BODY[]} of every message of the folder, via imaplib."""
    return {r["uid"]: r["body"] for r in wh.folder_contents(m, folder)}


def uidvalidity(m, folder):
    typ, data = m.status(mailgen.qmbox(folder), "(UIDVALIDITY)")
    assert typ == "OK", data
    return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))


def files_by_uid(mount, folder):
    d = helpers.folder_path(mount.path, folder)
    out = {}
    for name in os.listdir(d):
        uid = helpers.uid_of(name)
        assert uid is not None and uid not in out, name
        out[uid] = os.path.join(d, name)
    return out


def read_all_and_compare(mount, folder, bodies):
    """Read every message fully through the mount; each must equal BODY[]."""
    paths = files_by_uid(mount, folder)
    assert sorted(paths) == sorted(bodies), "listed UIDs %s, server has %s" % (
        sorted(paths), sorted(bodies))
    for uid, p in sorted(paths.items()):
        assert os.stat(p).st_size == len(bodies[uid]), "size of UID %d" % uid
        with open(p, "rb") as f:
            got = f.read()
        assert len(got) == len(bodies[uid]), "UID %d: read %d bytes, server has %d" % (
            uid, len(got), len(bodies[uid]))
        assert helpers.sha256(got) == helpers.sha256(bodies[uid]), \
            "UID %d: bytes differ from the server's BODY[]" % uid


def pread_and_compare(mount, folder, bodies):
    """4 KiB preads every half block of every message (past the page
    cache's read-ahead of a whole-file read); each must be BODY[]'s."""
    for uid, p in files_by_uid(mount, folder).items():
        fd = os.open(p, os.O_RDONLY)
        try:
            for off in range(0, len(bodies[uid]), BLOCK // 2):
                assert os.pread(fd, 4096, off) == bodies[uid][off:off + 4096], (uid, off)
        finally:
            os.close(fd)


class Proxied:
    """Mounts over imap:// + -o plaintext through ONE (never cutting) fault
    proxy, so that every mount has the same account (user@host:port: the
    cache keys include it).  mount() returns (mount, LogPart): the part of
    the proxy log written from that mount on."""

    def __init__(self, server, fault_proxy, scratch_mounter):
        self.server, self.scratch_mounter = server, scratch_mounter
        self.port, self.log = fault_proxy(server.env["IMAP_PORT"], lifetime=600)

    def mount(self, cache_dir, extra_opts=()):
        url = "imap://%s@127.0.0.1:%d" % (self.server.env["USER"], self.port)
        opts = ["password_file=" + self.server.env["PASSWORD_FILE"], "plaintext",
                "cache_dir=" + cache_dir] + list(extra_opts)
        part = LogPart(self.log)
        return self.scratch_mounter(self.server, url=url, opts=opts), part


class LogPart:
    """The proxy log from now on (connection ids grow: an earlier mount's
    connections are closed when it is unmounted)."""

    def __init__(self, path):
        self.path = path
        self.start = len(helpers.read_text(path))

    def text(self):
        return helpers.read_text(self.path)[self.start:]


def client_commands(log):
    """[(selected folder or None, client command line)] of a LogPart, the
    selected folder tracked per connection."""
    selected = {}
    out = []
    for line in log.text().splitlines():
        mm = LOG_LINE.match(line)
        if not mm or mm.group(2) != "C":
            continue
        cid, text = mm.group(1), mm.group(3)
        sel = SELECT.match(text)
        if sel:
            name = sel.group(1).strip()
            if name.startswith('"'):
                name = re.sub(r"\\(.)", r"\1", name[1:-1])
            selected[cid] = mailgen.mutf7_decode(name)
        out.append((selected.get(cid), text))
    return out


def body_fetches(log):
    return [(f, c) for f, c in client_commands(log)
            if re.search(r"\bFETCH\b", c, re.I) and BODY_FETCH.search(c)]


def walk_modes(top):
    """[(path, is_dir, mode & 0o777)] for top and everything under it."""
    out = []
    st = os.lstat(top)
    out.append((top, stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode)))
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            out.append((p, stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode)))
    return out


def apparent_bytes(top):
    """Sum of st_size of the regular files under top (du -sb)."""
    total = 0
    for root, dirs, files in os.walk(top):
        for n in files:
            try:
                st = os.lstat(os.path.join(root, n))
            except FileNotFoundError:       # evicted meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


RECORD = struct.Struct("<QQIIIIIIQ")  # magic folder uidvalidity uid block section len 0 sum
RECORD_MAGIC = 0x4b4c4246534d4933    # "3IMSFBLK"


def block_records(cache_dir):
    """{(uidvalidity, uid, block): (segment path, offset of the record,
    length of its bytes)} of the messages' blocks on disk, read from the
    segment files (blocks/FOLDER-SERIAL, 16 hex digits each) as the format
    says, independently of imapfs: records one after the other, a header
    and the bytes; a later serial's record of a block wins."""
    out = {}
    top = os.path.join(cache_dir, "blocks")
    segs = []
    for n in os.listdir(top) if os.path.isdir(top) else ():
        mm = re.match(r"^([0-9a-f]{16})-([0-9a-f]{16})$", n)
        if mm and os.path.isfile(os.path.join(top, n)):
            segs.append((int(mm.group(2), 16), int(mm.group(1), 16), os.path.join(top, n)))
    for serial, folder, path in sorted(segs):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:       # evicted meanwhile
            continue
        at = 0
        while at + RECORD.size <= len(data):
            magic, fkey, v, u, b, sec, n, zero, _ = RECORD.unpack_from(data, at)
            if magic != RECORD_MAGIC or fkey != folder or at + RECORD.size + n > len(data):
                break
            if sec == 0:
                out[(v, u, b)] = (path, at, n)
            at += RECORD.size + n
    return out


def block_files(cache_dir):
    """{(uidvalidity, uid, block): path of the segment file holding it}."""
    return {k: v[0] for k, v in block_records(cache_dir).items()}


def proc_status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# -- 1. a second mount reads from disk --------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("prefetch=0",)], ids=["default", "no-prefetch"])
def test_second_mount_reads_from_disk(scratch_dovecot, fault_proxy, scratch_mounter,
                                      tmp_path, extra):
    server = scratch_dovecot
    folder = wh.unique_folder("CacheRemount")
    rnd = random.Random(1)
    bodies = seed_folder(server, folder, msg_sizes(rnd, 30, 1024, 600 * 1024))
    assert len(bodies) == 30
    cache = str(tmp_path / "cache")

    proxy = Proxied(server, fault_proxy, scratch_mounter)
    mnt, log1 = proxy.mount(cache, extra)
    read_all_and_compare(mnt, folder, bodies)
    mnt.stop()
    # the first mount did fetch bodies (so the log check below means something)
    assert body_fetches(log1), "first mount: no body FETCH in the proxy log?"
    assert os.path.isdir(os.path.join(cache, "blocks"))

    mnt, log2 = proxy.mount(cache, extra)
    read_all_and_compare(mnt, folder, bodies)
    # and once more, from memory this time
    read_all_and_compare(mnt, folder, bodies)
    mnt.stop()

    fetches = body_fetches(log2)
    assert not fetches, "second mount fetched bodies again (%d FETCHes), e.g.:\n%s" % (
        len(fetches), "\n".join(c for f, c in fetches[:10]))
    cmds = client_commands(log2)
    assert any(f == folder for f, c in cmds), \
        "second mount never selected %s?\n%s" % (folder, "\n".join(c for f, c in cmds))
    full = [c for f, c in cmds if f == folder and re.search(r"\bFETCH 1:", c, re.I)]
    assert not full, "second mount re-synced the whole folder instead of " \
        "incrementally:\n" + "\n".join(full)


# -- 2. private modes ---------------------------------------------------------------

def test_cache_dir_private_under_umask_000(scratch_dovecot, imapfs_bin, tmp_path):
    server = scratch_dovecot
    folder = wh.unique_folder("CacheModes")
    bodies = seed_folder(server, folder, [2000, 300 * 1024, 50])
    cache = str(tmp_path / "private-cache")
    wrapper = str(tmp_path / "imapfs-umask000")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\numask 000\nexec "%s" "$@"\n' % imapfs_bin)
    os.chmod(wrapper, 0o755)
    m = helpers.Mount(wrapper, server.url(), str(tmp_path / "mnt-umask"),
                      server.opts(cache), logdir=str(tmp_path), name="imapfs-umask")
    m.start()
    try:
        pid = m.proc.pid
        with open("/proc/%d/status" % pid) as f:
            umask = re.search(r"^Umask:\s*(\d+)", f.read(), re.M)
        if umask:   # the wrapper exec'd imapfs with umask 000
            assert int(umask.group(1), 8) == 0, "imapfs runs with umask %s" % umask.group(1)
        read_all_and_compare(m, folder, bodies)
    finally:
        m.stop()
    entries = walk_modes(cache)
    assert any(p.endswith("/blocks") for p, d, mode in entries), entries
    assert any(not d and re.search(r"/blocks/[0-9a-f]{16}-[0-9a-f]{16}$", p)
               for p, d, mode in entries), "no segment file was written: %s" % entries
    bad = ["%s %s %03o" % ("dir " if d else "file", os.path.relpath(p, tmp_path), mode)
           for p, d, mode in entries if mode != (0o700 if d else 0o600)]
    assert not bad, "not private (want dirs 0700, files 0600):\n" + "\n".join(bad)


# -- 3. damaged block files ---------------------------------------------------------

def read_once(server, fault_proxy, scratch_mounter, tmp_path, name, sizes):
    """A new folder of messages of `sizes`, each read whole (and checked)
    through a mount with a cache_dir of its own, unmounted again, so every
    block is on disk: (proxy, folder, bodies, cache_dir)."""
    folder = wh.unique_folder(name)
    bodies = seed_folder(server, folder, sizes)
    cache = str(tmp_path / "cache")
    proxy = Proxied(server, fault_proxy, scratch_mounter)
    mnt, _ = proxy.mount(cache)
    read_all_and_compare(mnt, folder, bodies)
    mnt.stop()
    return proxy, folder, bodies, cache


def test_damaged_block_files_refetched(scratch_dovecot, fault_proxy, scratch_mounter,
                                       tmp_path):
    proxy, folder, bodies, cache = read_once(
        scratch_dovecot, fault_proxy, scratch_mounter, tmp_path, "CacheDamage",
        [5 * BLOCK + 1000, 3 * BLOCK + 17, 2 * BLOCK, 700 * 1024])

    records = block_records(cache)
    uids = sorted(bodies)
    for uid in uids:
        n = (len(bodies[uid]) + BLOCK - 1) // BLOCK
        assert all(any(k[1] == uid and k[2] == b for k in records) for b in range(n)), \
            "UID %d: not every block is on disk: %s" % (uid, sorted(records))

    def record(uid, block):
        return next(r for k, r in records.items() if k[1] == uid and k[2] == block)

    def data_at(uid, block):
        """(segment path, offset of the block's bytes, their length)"""
        path, at, n = record(uid, block)
        return path, at + RECORD.size, n

    damaged = []
    # flip bytes in the middle of a block's bytes
    p, at, n = data_at(uids[0], 2)
    with open(p, "r+b") as f:
        for off in (at + n // 2, at + n // 2 + 1, at + n - 5000):
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
    damaged.append(uids[0])
    # a valid record of another block in a block's place
    src, dst = record(uids[2], 0), record(uids[2], 1)
    assert src[2] == dst[2] == BLOCK
    with open(src[0], "rb") as f:
        f.seek(src[1])
        data = f.read(RECORD.size + BLOCK)
    with open(dst[0], "r+b") as f:
        f.seek(dst[1])
        f.write(data)
    damaged.append(uids[2])
    # torn: the last (short) block of another cut by one byte, and another
    # cut in its middle (with whatever follows it in its segment)
    for uid, block, keep in ((uids[3], (len(bodies[uids[3]]) - 1) // BLOCK, -1),
                             (uids[1], 1, -BLOCK // 2)):
        p, at, n = data_at(uid, block)
        if os.path.getsize(p) > at + n + keep:
            os.truncate(p, at + n + keep)
        damaged.append(uid)

    mnt, log = proxy.mount(cache)
    read_all_and_compare(mnt, folder, bodies)
    # read the damaged ones again with a cold page cache path: pread
    pread_and_compare(mnt, folder, bodies)
    mnt.stop()
    fetched = {int(mm.group(1)) for f, c in body_fetches(log)
               for mm in [re.search(r"UID FETCH (\d+)", c, re.I)] if mm}
    assert set(damaged) <= fetched, "damaged UIDs %s, refetched %s" % (damaged, fetched)
    assert "damaged cache file" in mnt.stderr(), "the damage was not reported"


def test_block_files_of_an_older_imapfs_removed_quietly(scratch_dovecot, fault_proxy,
                                                        scratch_mounter, tmp_path):
    """An older imapfs kept a file per block, in a directory per folder
    (blocks/FOLDER/UIDVALIDITY-UID-BLOCK, magic 2IMSFBLK).  They are
    removed when a mount opens the cache, never served -- not even a file
    whose sum vouches for bytes that are not the message's -- and the
    blocks are fetched again without a "damaged" warning: an upgrade is no
    damage."""
    proxy, folder, bodies, cache = read_once(scratch_dovecot, fault_proxy, scratch_mounter,
                                             tmp_path, "CacheOlder", [3 * BLOCK + 100, 2000])
    records = block_records(cache)
    assert len(records) >= 5, sorted(records)
    top = os.path.join(cache, "blocks")
    olddirs = set()
    for (uidvalidity, uid, block), (path, at, n) in records.items():
        with open(path, "rb") as f:
            f.seek(at)
            magic, fkey, v, u, b, sec, _, _, _ = RECORD.unpack(f.read(RECORD.size))
            data = bytearray(f.read(n))
        data[len(data) // 2] ^= 0xFF  # the old sum vouches for wrong bytes
        olddir = os.path.join(top, "%016x" % fkey)
        os.makedirs(olddir, mode=0o700, exist_ok=True)
        olddirs.add(olddir)
        with open(os.path.join(olddir, "%d-%d-%d" % (v, u, b)), "wb") as f:
            f.write(struct.pack("<QQIIIIQ", 0x4b4c4246534d4932, fkey, v, u, b, n,
                                0) + bytes(data))
    for n in os.listdir(top):
        if os.path.isfile(os.path.join(top, n)):
            os.unlink(os.path.join(top, n))

    mnt, log = proxy.mount(cache)
    read_all_and_compare(mnt, folder, bodies)
    pread_and_compare(mnt, folder, bodies)
    mnt.stop()
    fetched = {int(u) for f, c in body_fetches(log)
               for mm in [re.search(r"UID FETCH ([\d,]+)", c, re.I)] if mm
               for u in mm.group(1).split(",")}
    assert set(bodies) <= fetched, "UIDs %s, refetched %s" % (sorted(bodies), fetched)
    assert "damaged cache file" not in mnt.stderr(), mnt.stderr()
    assert not any(os.path.lexists(d) for d in olddirs), os.listdir(top)
    # and they are stored again, in segments
    assert len(block_records(cache)) >= 5, os.listdir(top)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def wait_blocks(cache, uid, blocks, timeout=10):
    """Waits until block files of uid for every block in `blocks` exist."""
    deadline = time.monotonic() + timeout
    have = set()
    while time.monotonic() < deadline:
        have = {k[2] for k in block_files(cache) if k[1] == uid}
        if set(blocks) <= have:
            return
        time.sleep(0.05)
    raise AssertionError("UID %d: blocks %s never reached the disk (have %s)" % (
        uid, sorted(blocks), sorted(have)))


def test_segment_files_removed_while_mounted(scratch_dovecot, fault_proxy, scratch_mounter,
                                             tmp_path):
    """The disk cache's writer keeps the segment file it appends to open.
    Removed under a running mount (an rm of the cache's files), it is not
    appended to any more: what is read afterwards reaches the disk in a new
    segment, and a second mount reads it from there."""
    server = scratch_dovecot
    folder = wh.unique_folder("CacheRmdir")
    bodies = seed_folder(server, folder, [3 * BLOCK + 100, 4 * BLOCK + 7])
    first, second = sorted(bodies)
    cache = str(tmp_path / "cache")
    proxy = Proxied(server, fault_proxy, scratch_mounter)
    mnt, _ = proxy.mount(cache)
    paths = files_by_uid(mnt, folder)
    assert read_bytes(paths[first]) == bodies[first]
    wait_blocks(cache, first, range(4))
    segments = set(block_files(cache).values())
    assert len(segments) == 1, segments
    for p in segments:
        os.unlink(p)
    assert read_bytes(paths[second]) == bodies[second]
    # its first block may have come with the listing, before the removal
    wait_blocks(cache, second, range(1, 5))
    mnt.stop()

    mnt, log = proxy.mount(cache)
    fd = os.open(files_by_uid(mnt, folder)[second], os.O_RDONLY)
    try:
        assert os.pread(fd, 3 * BLOCK, BLOCK) == bodies[second][BLOCK:4 * BLOCK]
    finally:
        os.close(fd)
    mnt.stop()
    ranges = [c for f, c in body_fetches(log)
              for mm in [re.search(r"UID FETCH ([\d,:]+) .*BODY\.PEEK\[\]<(\d+)\.", c, re.I)]
              if mm and str(second) in mm.group(1).split(",") and mm.group(2) != "0"]
    assert not ranges, "blocks written after the removal were fetched again: %s" % ranges


def test_imapfs_killed_while_appending(scratch_dovecot, fault_proxy, scratch_mounter, tmp_path):
    """imapfs SIGKILLed while a reader's blocks are being appended to the
    folder's segment (the tail may be torn, blocks written but not yet
    indexed): the next mount over the same cache reads every message
    exactly, warns of no damage (a torn tail is none), and does not fetch
    again a message whose blocks were all whole on disk."""
    server = scratch_dovecot
    folder = wh.unique_folder("CacheKilled")
    rnd = random.Random(7)
    bodies = seed_folder(server, folder, msg_sizes(rnd, 40, 1024, 600 * 1024))
    cache = str(tmp_path / "cache")
    proxy = Proxied(server, fault_proxy, scratch_mounter)
    mnt, _ = proxy.mount(cache)
    paths = files_by_uid(mnt, folder)
    stop = threading.Event()

    def reader():
        for uid in sorted(paths):
            if stop.is_set():
                return
            try:
                read_bytes(paths[uid])
            except OSError:
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    top = os.path.join(cache, "blocks")
    assert helpers.wait_for(lambda: apparent_bytes(top) >= 2 * 2**20, 60, 0.005), \
        "nothing reached the disk"
    os.kill(mnt.proc.pid, signal.SIGKILL)
    stop.set()
    t.join(30)
    mnt.proc.wait(10)
    mnt.stopped = True
    helpers.cleanup_mountpoint(mnt.path)
    records = block_records(cache)
    whole = [uid for uid in bodies
             if all((k[1], k[2]) in {(u, b) for (_, u, b) in records}
                    for k in [(0, uid, b) for b in range((len(bodies[uid]) + BLOCK - 1) // BLOCK)])]
    assert whole, "no message reached the disk whole before the kill"

    mnt, log = proxy.mount(cache)
    read_all_and_compare(mnt, folder, bodies)
    mnt.stop()
    assert "damaged cache file" not in mnt.stderr(), mnt.stderr()
    fetched = {int(u) for f, c in body_fetches(log)
               for mm in [re.search(r"UID FETCH ([\d,]+)", c, re.I)] if mm
               for u in mm.group(1).split(",")}
    assert not set(whole) & fetched, "whole on disk, fetched again: %s" % sorted(set(whole) & fetched)


# -- 4. concurrent random-range reads ------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("limits", [(), ("memory_cache=1M", "cache_size=6M")],
                         ids=["default", "tiny-cache"])
def test_concurrent_random_reads(scratch_dovecot, scratch_mounter, tmp_path, limits):
    server = scratch_dovecot
    folder = wh.unique_folder("CacheRandom")
    rnd = random.Random(4)
    bodies = seed_folder(server, folder, msg_sizes(rnd, 40, 10 * 1024, 2 * 1024 * 1024))
    uids = sorted(bodies)
    lengths = [1, 100, 4095, 4096, 65536, BLOCK - 1, BLOCK, BLOCK + 1, 300000, 1 << 20]
    plans = []
    for t in range(8):
        r = random.Random(100 + t)
        plan = []
        for _ in range(200):
            uid = r.choice(uids)
            size = len(bodies[uid])
            kind = r.random()
            if kind < 0.15:      # around a block boundary
                off = max(0, r.randrange(0, size // BLOCK + 1) * BLOCK + r.randint(-3, 3))
            elif kind < 0.2:     # at or past the end
                off = size + r.choice([-1, 0, 1, 5000])
                off = max(0, off)
            else:
                off = r.randrange(0, size)
            n = r.choice(lengths) if r.random() < 0.7 else r.randint(1, 500000)
            plan.append((uid, off, n, bodies[uid][off:off + n]))
        plans.append(plan)

    mnt = scratch_mounter(server, extra_opts=limits)
    paths = files_by_uid(mnt, folder)
    assert sorted(paths) == uids
    fds = {uid: os.open(p, os.O_RDONLY) for uid, p in paths.items()}
    errors = []
    done = [0] * 8
    stop_at = time.monotonic() + 150

    def worker(t):
        try:
            for i, (uid, off, n, want) in enumerate(plans[t]):
                if time.monotonic() > stop_at:
                    errors.append("thread %d: out of time after %d reads" % (t, i))
                    return
                got = os.pread(fds[uid], n, off)
                if got != want:
                    errors.append("thread %d: UID %d pread(%d, %d): %d bytes, want %d%s" % (
                        t, uid, n, off, len(got), len(want),
                        "" if len(got) != len(want) else " (bytes differ)"))
                done[t] += 1
        except Exception as e:
            errors.append("thread %d: %r" % (t, e))

    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(170)
        assert not any(th.is_alive() for th in threads), "readers hung"
    finally:
        for fd in fds.values():
            os.close(fd)
    assert not errors, "%d bad reads:\n%s" % (len(errors), "\n".join(errors[:20]))
    assert sum(done) == 8 * 200


# -- 5. memory and disk stay within their limits over 1 GB ---------------------------

def write_maildir_messages(env, folder, count, size, rnd):
    """`count` messages of about `size` bytes written straight into the
    folder's Maildir (as mailgen.write_big_maildir does); the folder must
    exist.  Returns the total BODY[] bytes (CRLF).  A server without a
    Maildir (Cyrus: env MAIL_DIR is null) gets the same messages through IMAP
    (MULTIAPPEND, a few per command)."""
    if not env.get("MAIL_DIR"):
        return append_messages(env, folder, count, size, rnd)
    cur = os.path.join(env["MAIL_DIR"], *mailgen.mutf7_encode(folder).split("/"), "cur")
    assert os.path.isdir(cur), cur
    chown = os.geteuid() == 0
    uid, gid = int(env["MAIL_UID"]), int(env["MAIL_GID"])
    import base64
    payload = base64.encodebytes(rnd.randbytes(size * 3 // 4))   # 76-char lines, LF
    base = int(time.time())
    total = 0
    for i in range(count):
        head = ("From: Big Sender <big@example.org>\nTo: alice@localhost\n"
                "Subject: memory test %d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
                "Message-ID: <mem.%d.%d@%s>\nMIME-Version: 1.0\n"
                "Content-Type: application/octet-stream\n"
                "Content-Transfer-Encoding: base64\n\n" % (
                    i, base, i, mailgen.MSGID_DOMAIN)).encode()
        # vary the bytes per message (rotate the payload) so no two are equal
        cut = (i * 7919 * 77) % len(payload)
        cut = payload.rfind(b"\n", 0, cut) + 1
        lf = head + payload[cut:] + payload[:cut]
        crlf_size = len(lf) + lf.count(b"\n")
        name = "%d.M%dP%d.cachetest,S=%d,W=%d:2,S" % (base, i, os.getpid(), len(lf),
                                                     crlf_size)
        p = os.path.join(cur, name)
        with open(p, "wb") as f:
            f.write(lf)
        if chown:
            os.chown(p, uid, gid)
        total += crlf_size
    return total


def append_messages(env, folder, count, size, rnd):
    """write_maildir_messages through IMAP: the same messages (CRLF)."""
    import base64
    import datetime as dt
    payload = base64.encodebytes(rnd.randbytes(size * 3 // 4))
    base = int(time.time())
    when = dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
    m = mailgen.connect(env)
    total = 0
    try:
        batch = []
        for i in range(count):
            head = ("From: Big Sender <big@example.org>\nTo: alice@localhost\n"
                    "Subject: memory test %d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
                    "Message-ID: <mem.%d.%d@%s>\nMIME-Version: 1.0\n"
                    "Content-Type: application/octet-stream\n"
                    "Content-Transfer-Encoding: base64\n\n" % (
                        i, base, i, mailgen.MSGID_DOMAIN)).encode()
            cut = (i * 7919 * 77) % len(payload)
            cut = payload.rfind(b"\n", 0, cut) + 1
            raw = (head + payload[cut:] + payload[:cut]).replace(b"\n", b"\r\n")
            batch.append((raw, ["\\Seen"], when))
            total += len(raw)
            if len(batch) == 5 or i == count - 1:
                mailgen.append_many(m, folder, batch)
                batch = []
    finally:
        m.logout()
    return total


@pytest.mark.slow
@pytest.mark.deadline(300)
def test_memory_and_disk_bounded_over_1gb(scratch_server, scratch_mounter, tmp_path):
    server = scratch_server()
    folder = "Gigabyte"
    count, size = 100, 10 * 1024 * 1024
    m = server.connect()
    try:
        wh.create_folder(m, folder)
    finally:
        m.logout()
    t0 = time.monotonic()
    total = write_maildir_messages(server.env, folder, count, size, random.Random(5))
    print("\nwrote %d messages, %.1f MB in %.1fs" % (count, total / 1e6,
                                                     time.monotonic() - t0))
    m = server.connect()
    try:
        meta = mailgen.fetch_meta(m, folder)
    finally:
        m.logout()
    assert len(meta) == count
    assert sum(r["size"] for r in meta.values()) == total

    memory_cache, cache_size = 32 << 20, 256 << 20
    cache = str(tmp_path / "cache-1g")
    opts = ["memory_cache=32M", "cache_size=256M", "prefetch=4"]
    mnt = scratch_mounter(server, opts=server.opts(cache) + opts)
    pid = mnt.proc.pid
    samples = {"rss": [], "disk": []}
    stop = threading.Event()

    def sampler():
        last_du = 0.0
        while not stop.is_set():
            kb = proc_status_kb(pid, "VmRSS")
            if kb is not None:
                samples["rss"].append(kb * 1024)
            if time.monotonic() - last_du >= 1.0:
                samples["disk"].append(apparent_bytes(os.path.join(cache, "blocks")))
                last_du = time.monotonic()
            stop.wait(0.2)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        paths = sorted(files_by_uid(mnt, folder).values())
        assert len(paths) == count
        r = subprocess.run(["bash", "-c", 'cat "$@" | wc -c', "bash"] + paths,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=200)
        elapsed = time.monotonic() - t0
        hwm = proc_status_kb(pid, "VmHWM")
    finally:
        stop.set()
        th.join(10)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == total, "read %s bytes, expected %d" % (r.stdout, total)
    final_disk = apparent_bytes(os.path.join(cache, "blocks"))
    mnt.stop()
    shutil.rmtree(cache, ignore_errors=True)    # 256 MB: not kept in tmp_path
    peak_rss = max(samples["rss"] or [0])
    peak_disk = max(samples["disk"] + [final_disk])
    print("read %.1f MB in %.1fs (%.0f MB/s); imapfs peak VmRSS %.1f MB (sampled, %d "
          "samples), VmHWM %.1f MB; blocks/ peak %.1f MB, final %.1f MB" % (
              total / 1e6, elapsed, total / 1e6 / elapsed, peak_rss / 2**20,
              len(samples["rss"]), (hwm or 0) / 1024, peak_disk / 2**20,
              final_disk / 2**20))
    assert samples["rss"], "never sampled imapfs's VmRSS"
    # AddressSanitizer's quarantine and shadow memory make a sanitized
    # build's RSS meaningless: the bound is checked on the normal build
    if not os.environ.get("IMAPFS_SANITIZED"):
        assert peak_rss <= memory_cache + (64 << 20), \
            "imapfs peak VmRSS %.1f MB > memory_cache 32 MB + 64 MB" % (peak_rss / 2**20)
    assert final_disk <= cache_size, "blocks/ holds %.1f MB > cache_size 256 MB" % (
        final_disk / 2**20)
    # while reading: within the limit but for blocks being stored right now
    assert peak_disk <= cache_size + 8 * (BLOCK + 64), \
        "blocks/ reached %.1f MB > cache_size 256 MB" % (peak_disk / 2**20)


# -- 6. UIDVALIDITY change drops the cache -------------------------------------------

def same_size_variant(raw, old, new):
    assert len(old) == len(new)
    out = raw.replace(old.encode(), new.encode())
    assert len(out) == len(raw) and out != raw
    return out


@pytest.mark.parametrize("remount", [True, False], ids=["remount", "same-mount"])
def test_uidvalidity_change_drops_cache(scratch_dovecot, fault_proxy, scratch_mounter,
                                        tmp_path, remount):
    server = scratch_dovecot
    folder = wh.unique_folder("CacheUidv")
    sizes = [1500, 3 * BLOCK + 99, 200 * 1024, 9000]
    token_old = wh.unique("uvold")
    token_new = token_old.replace("uvold", "uvNEW")
    olds = [wh.make_msg(token_old, i, size=s, body="plain" if s < 4000 else "attach",
                        subject="uidvalidity test %d" % i,
                        rnd=random.Random("old/%d" % i)) for i, s in enumerate(sizes)]
    # the new messages: same sizes, dates and subjects, different bytes
    news = []
    for i, o in enumerate(olds):
        body = o["raw"]
        cut = body.index(b"\r\n\r\n") + 4
        tail = bytearray(body[cut:])
        # change one byte in every 1000 of the body (CRLF left alone)
        for j in range(0, len(tail), 1000):
            if tail[j] not in b"\r\n-=":
                tail[j] = ord("Q") if tail[j] != ord("Q") else ord("Z")
        raw = same_size_variant(body[:cut], token_old, token_new) + bytes(tail)
        news.append(dict(o, raw=raw, sha=helpers.sha256(raw)))
        assert len(raw) == len(o["raw"]) and raw != o["raw"]

    m = server.connect()
    try:
        wh.seed(m, folder, olds)
        old_bodies = server_bodies(m, folder)
        uv_old = uidvalidity(m, folder)
    finally:
        m.logout()
    cache = str(tmp_path / "cache")
    # through the proxy only for its log (to diagnose a failure)
    proxy = Proxied(server, fault_proxy, scratch_mounter)
    mnt, _ = proxy.mount(cache, ["dir_cache=1"])
    read_all_and_compare(mnt, folder, old_bodies)
    names_before = sorted(os.listdir(helpers.folder_path(mnt.path, folder)))
    if remount:
        mnt.stop()

    m = server.connect()
    try:
        mailgen.check(m.delete(mailgen.qmbox(folder)), "DELETE")
        time.sleep(1.1)     # a new UIDVALIDITY even if it is time-based
        wh.seed(m, folder, news)
        new_bodies = server_bodies(m, folder)
        uv_new = uidvalidity(m, folder)
    finally:
        m.logout()
    assert uv_new != uv_old, "Dovecot kept UIDVALIDITY %d: cannot test" % uv_old
    assert sorted(new_bodies) == sorted(old_bodies), "UIDs differ: cannot test"
    assert all(len(new_bodies[u]) == len(old_bodies[u]) and new_bodies[u] != old_bodies[u]
               for u in new_bodies)

    if remount:
        mnt, _ = proxy.mount(cache, ["dir_cache=1"])
    else:
        time.sleep(1.5)     # past dir_cache=1: the next lookup asks the server
    d = helpers.folder_path(mnt.path, folder)
    # same names (same subjects, dates, UIDs): only UIDVALIDITY tells them apart
    assert sorted(os.listdir(d)) == names_before
    problems = []
    for uid, p in sorted(files_by_uid(mnt, folder).items()):
        try:
            with open(p, "rb") as f:
                got = f.read()
        except OSError as e:
            problems.append("UID %d: read failed: %s" % (uid, e.strerror))
            continue
        if got == new_bodies[uid]:
            continue
        what = "the OLD message's bytes" if got == old_bodies[uid] else "other bytes"
        # diagnosis: the kernel's page cache, or imapfs's own cache?
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            again = os.pread(fd, len(got) + 1, 0)
        finally:
            os.close(fd)
        after = ("the new bytes" if again == new_bodies[uid] else
                 "the old bytes" if again == old_bodies[uid] else "other bytes")
        problems.append("UID %d: read %s; after dropping the file's page cache "
                        "(fadvise DONTNEED): %s" % (uid, what, after))
    mnt.stop()
    assert not problems, "after the UIDVALIDITY change (%d -> %d):\n%s" % (
        uv_old, uv_new, "\n".join(problems))
