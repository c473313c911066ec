"""Soak test (issue 6): a minute of concurrent work on one mount.

Two watched folders (-o watch=SoakA,SoakB) on a private Dovecot; for 60 s
(IMAPFS_SOAK_SECONDS to change):

- 8 reader threads list a random folder, pick a random message, look up its
  Message-ID (user.imap.message_id) and read it whole (half the time with
  its page cache dropped first); the bytes must have the SHA-256 imaplib
  gave for that Message-ID.  A message that vanished meanwhile (moved or
  expunged: ENOENT, ESTALE, EIO) is skipped;
- 1 mover thread runs `mv` of a random message to the other folder through
  the mount;
- 1 external imaplib client appends messages of its own, changes their
  flags and expunges some of them again (UID EXPUNGE, never a bare EXPUNGE).

At the end every message that should exist (the seeded ones and the
client's not expunged) is on the server exactly once across all folders,
with its bytes, the expunged ones nowhere; every read matched; and the
mount's listings of the two watched folders agree with the server.
"""

import errno
import os
import random
import subprocess
import threading
import time

import pytest

import helpers
import live_helpers as lh
import write_helpers as wh
from helpers import mailgen
from live_helpers import live  # noqa: F401  (fixture)

SOAK_SECONDS = float(os.environ.get("IMAPFS_SOAK_SECONDS", "60"))
FOLDERS = ["SoakA", "SoakB"]
READERS = 8
VANISHED = (errno.ENOENT, errno.ESTALE, errno.EIO)


def sizes(rnd, n, lo=800, hi=300 * 1024):
    return [int(lo * (hi / lo) ** rnd.random()) for _ in range(n)]


class Truth:
    """Message-ID -> SHA-256 of BODY[], shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sha = {}

    def add(self, msgid, sha):
        with self.lock:
            self.sha[msgid] = sha

    def get(self, msgid):
        with self.lock:
            return self.sha.get(msgid)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.problems = []

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def problem(self, text):
        with self.lock:
            self.problems.append(text)


def reader(idx, dirs, truth, stats, end):
    rnd = random.Random(1000 + idx)
    while time.monotonic() < end:
        d = dirs[rnd.choice(FOLDERS)]
        try:
            names = os.listdir(d)
        except OSError as e:
            stats.problem("reader %d: ls %s: %s" % (idx, d, e))
            continue
        if not names:
            continue
        path = os.path.join(d, rnd.choice(names))
        try:
            msgid = os.getxattr(path, "user.imap.message_id").decode()
            data = lh.read_file(path, drop=rnd.random() < 0.5)
        except OSError as e:
            if e.errno in VANISHED:
                stats.count("vanished")
                continue
            stats.problem("reader %d: %s: %s" % (idx, os.path.basename(path), e))
            continue
        want = truth.get(msgid)
        if want is None:
            stats.problem("reader %d: %s: unknown Message-ID %r" % (
                idx, os.path.basename(path), msgid))
        elif helpers.sha256(data) != want:
            stats.problem("reader %d: %s (%s): %d bytes that are not the message's%s" % (
                idx, os.path.basename(path), msgid, len(data),
                "" if wh.msgid_of(data) == msgid else
                " (they carry Message-ID %r)" % wh.msgid_of(data)))
        else:
            stats.count("reads")


def mover(dirs, stats, end):
    rnd = random.Random(7)
    while time.monotonic() < end:
        src = rnd.choice(FOLDERS)
        dst = [f for f in FOLDERS if f != src][0]
        try:
            names = os.listdir(dirs[src])
        except OSError as e:
            stats.problem("mover: ls %s: %s" % (src, e))
            continue
        if not names:
            continue
        try:
            r = subprocess.run(["mv", os.path.join(dirs[src], rnd.choice(names)),
                                dirs[dst] + "/"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
        except subprocess.TimeoutExpired:
            stats.problem("mover: mv did not finish within 60 s")
            return
        stats.count("moves" if r.returncode == 0 else "moves_failed")
        time.sleep(rnd.uniform(0, 0.3))


class ExternalClient:
    """Another IMAP client working on messages of its own."""

    def __init__(self, server, truth, stats):
        self.server, self.truth, self.stats = server, truth, stats
        self.alive, self.expunged = {}, {}
        self.rnd = random.Random(99)
        self.token = wh.unique("ext")
        self.n = 0

    def find(self, m, msgid):
        out = []
        for f in FOLDERS:
            mailgen.check(m.select(mailgen.qmbox(f)), "SELECT")
            data = mailgen.check(m.uid("SEARCH", "HEADER", "Message-ID",
                                       mailgen.quote(msgid)), "SEARCH")
            out += [(f, int(u)) for u in data[0].split()]
        return out

    def append(self, m):
        msg = wh.make_msg(self.token, self.n, size=self.rnd.choice([900, 5000, 150000]),
                          body="attach" if self.rnd.random() < 0.3 else "plain")
        self.n += 1
        self.truth.add(msg["msgid"], msg["sha"])    # before a reader can see it
        mailgen.append(m, self.rnd.choice(FOLDERS), msg["raw"], [], msg["when"])
        self.alive[msg["msgid"]] = msg
        self.stats.count("ext_appends")

    def flag(self, m):
        msgid = self.rnd.choice(sorted(self.alive))
        op = self.rnd.choice(["+FLAGS", "-FLAGS"])
        for f, uid in self.find(m, msgid):
            mailgen.check(m.select(mailgen.qmbox(f)), "SELECT")
            mailgen.check(m.uid("STORE", str(uid), op, r"(\Flagged)"), "STORE")
            self.stats.count("ext_flags")

    def expunge(self, m):
        msgid = self.rnd.choice(sorted(self.alive))
        for _ in range(5):          # the mover may carry it off meanwhile
            where = self.find(m, msgid)
            if not where:
                break
            for f, uid in where:
                mailgen.check(m.select(mailgen.qmbox(f)), "SELECT")
                mailgen.check(m.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"),
                              "STORE")
                mailgen.check(m.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
        if not self.find(m, msgid):
            self.expunged[msgid] = self.alive.pop(msgid)
            self.stats.count("ext_expunges")

    def run(self, end):
        m = self.server.connect()
        try:
            while time.monotonic() < end:
                x = self.rnd.random()
                if x < 0.45 or len(self.alive) < 3:
                    self.append(m)
                elif x < 0.8:
                    self.flag(m)
                else:
                    self.expunge(m)
                time.sleep(self.rnd.uniform(0.1, 0.4))
        except Exception as e:       # noqa: BLE001  (reported, not raised)
            self.stats.problem("external client: %r" % e)
        finally:
            try:
                m.logout()
            except Exception:        # noqa: BLE001
                pass


@pytest.mark.slow
@pytest.mark.deadline(SOAK_SECONDS + 240)
def test_soak_readers_mover_external_client(scratch_server, live):
    """8 readers, 1 mover (mv through the mount), 1 external imaplib client
    (append/flag/expunge) for 60 s on two watched folders: every read
    matches imaplib's bytes, every message ends up exactly once (the
    expunged ones nowhere), and the mount's listings agree with the server."""
    rnd = random.Random(2024)
    server = scratch_server()
    seeded = []
    for f in FOLDERS:
        msgs = [wh.make_msg(wh.unique("soak" + f), i, size=s,
                            body="plain" if s < 4000 else "attach")
                for i, s in enumerate(sizes(rnd, 40))]
        seeded += lh.seed(server, f, msgs)
    truth = Truth()
    for f in FOLDERS:      # the server's own bytes (BODY[]), by Message-ID
        for rec in lh.truth(server, f).values():
            truth.add(rec["msgid"], rec["sha"])
    assert all(truth.get(x["msgid"]) == x["sha"] for x in seeded)

    mnt = live.mount(server, ["timeout=10"], watch=FOLDERS)
    dirs = {f: helpers.folder_path(mnt.path, f) for f in FOLDERS}
    for d in dirs.values():
        lh.ls_l(d)
    stats = Stats()
    ext = ExternalClient(server, truth, stats)
    end = time.monotonic() + SOAK_SECONDS
    threads = [threading.Thread(target=reader, args=(i, dirs, truth, stats, end),
                                daemon=True) for i in range(READERS)]
    threads.append(threading.Thread(target=mover, args=(dirs, stats, end), daemon=True))
    threads.append(threading.Thread(target=ext.run, args=(end,), daemon=True))
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(1.0, end - time.monotonic()) + 90)
    hung = [th for th in threads if th.is_alive()]
    assert not hung, "%d worker thread(s) still running 90 s after the end" % len(hung)
    print("soak counts: %r" % stats.counts)
    assert not stats.problems, "%d problems:\n%s" % (
        len(stats.problems), "\n".join(stats.problems[:30]))
    c = stats.counts
    assert c.get("reads", 0) >= 100, "too few reads to mean anything: %r" % c
    assert c.get("moves", 0) >= 5, "too few moves: %r" % c
    assert c.get("ext_appends", 0) >= 5, "too few external appends: %r" % c

    # the server: everything exactly once, nothing expunged left
    should = seeded + list(ext.alive.values())
    m = server.connect()
    try:
        folders = wh.all_folders(m)
        problems = wh.check_once(m, should, folders, allowed=FOLDERS)
        gone = wh.locate(m, list(ext.expunged.values()), folders)
        for msgid, hits in gone.items():
            if hits:
                problems.append("%s was expunged but is in %s" % (
                    msgid, ["%s/%d" % (f, r["uid"]) for f, r in hits]))
        server_uids = {f: sorted(r["uid"] for r in wh.folder_contents(m, f))
                       for f in FOLDERS}
    finally:
        m.logout()
    assert not problems, "%d problems on the server:\n%s" % (
        len(problems), "\n".join(problems[:30]))

    # the mount's listings of the watched folders follow the server
    def agree():
        return all(sorted(lh.files_by_uid(dirs[f])) == server_uids[f] for f in FOLDERS)

    assert helpers.wait_for(agree, 10, 0.5), "listings differ from the server: %s" % {
        f: (sorted(set(lh.files_by_uid(dirs[f])) ^ set(server_uids[f])))
        for f in FOLDERS}
