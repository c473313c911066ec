#!/usr/bin/env python3
"""imapfs benchmark: imapfs against a peer tool, same server, same run.

    IMAPFS_BIN=./imapfs python3 bench/run.py [--smoke] [--runs N] [--tls]
        [--wan] [--writeback] [--scale] [--no-loopback] [--imapfs-opts OPTS]
        [--out FILE] [--keep] [--max-minutes M]

Starts a private Dovecot on 127.0.0.1 (scripts/dovecot-env), writes the
benchmark folders straight into its Maildir, warms the server once (every
peer and one imapfs pass), then measures, interleaving imapfs and its peer
in every round:

  P1 cold `ls -l` of the mixed folder   vs Python imaplib, one UID FETCH 1:*
                                           (and vs the floor + that FETCH)
  P2 warm `ls -l` (same mount again)    vs `ls -l` of a local 10,000-file dir
                                           (and vs the floor's warm `ls -l`)
  P3 cold `cat` of every message        vs mbsync full pull into empty Maildir
  P4 cold `cat` of the large message    vs curl imap://.../Huge;UID=n
  P5 warm `cat` of every message        vs `cat` of the local Maildir files
  P6 remount (same cache_dir), `ls -l`  vs P1's cold imapfs `ls -l`
                                           (and vs the floor + one round trip;
                                           P6c: vs the floor's first `ls -l`
                                           after its own mount + one)
  P7 peak RSS (VmHWM) of imapfs after `ls -l` of the many-small folder
  Q1 cold `ls -l` of the many-small     vs imaplib, logged in: EXAMINE,
     folder's .search/SUBJECT "00 " (1%,   UID SEARCH, one UID FETCH of
     the folder never listed)              the hits' metadata (as P1)
  P1 and P3 also on the realistic folder (heavy-tailed sizes, text-heavy).

The floor is bench/floorfs.c (built by `make`): a minimal FUSE filesystem
serving the same names and sizes from memory.

--wan: the same server through bench/relay.py (a delay-and-rate relay on
127.0.0.1) at 40 ms / 50 Mbit/s and 150 ms / 5 Mbit/s, imapfs against an
already logged-in imaplib connection (W1-W5, mv of 50 messages; W2t is W2
on a 10 MB message that is mostly text, where COMPRESS pays: at 150 ms its
target, and W3's, is 0.6 of imaplib's uncompressed FETCH).
--writeback: through the relay at 40 ms / 50 Mbit/s, `-o writeback` against
the same mount without it: mv, rm and setfattr of 1,000 messages in one
command (WB1-WB3; the synchronous peer on 200, times 5), the time until the
server has them (WB1f-WB3f), 200 changes with the relay stopped (WB4) and
the time until the server has them once it is back (WB4r).
--scale: a folder of 1,000,000 messages (peak RSS, remount `ls -l` vs the
floor) and an account of 100,000 folders (mount + `ls` of the root).

cold = fresh mount with an empty -o cache_dir; warm = the same mount again.
Medians of --runs runs (default 5, WAN 3; --smoke: small folders, one WAN
profile, 1 run).  The table (markdown) is printed and written to --out
(default bench/last-results.md; --smoke writes nothing unless --out is
given).

Only the Python standard library plus dovecot, mbsync (isync), curl, ls,
cat, head, mv and fusermount3.  Everything started is stopped, every mount
unmounted and the work directory removed at the end (also on error or
Ctrl-C).
"""

import argparse
import base64
import datetime as dt
import imaplib
import json
import math
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DOVECOT_ENV = os.path.join(REPO, "scripts", "dovecot-env")
RELAY = os.path.join(REPO, "bench", "relay.py")
PYTHON = sys.executable or "/usr/bin/python3"
IMAP_ZLIB = "/usr/lib/dovecot/modules/lib30_imap_zlib_plugin.so"

MIXED, HUGE, MANY = "Bench10k", "Huge", "Bench100k"
REAL, SMALL = "Real10k", "Wan55"
HUGETEXT = "HugeText"   # W2t: a large message that is mostly text
MOVESRC, MOVEDST = "MoveSrc", "MoveDst"
# --writeback: a source folder per item, reset (moved back, flags \Seen) before
# every run; WB4 has folders and a trash of its own
WB_MV, WB_MVDST, WB_RM, WB_TRASH = "WbMove", "WbMoveDst", "WbRm", "BenchTrash"
WB_FLAG = "WbFlag"
WB_OFF, WB_OFFDST, WB_OFFTRASH = "WbOffline", "WbOfflineDst", "WbOfflineTrash"
BIG = "Bench1M"
MiB = 1024 * 1024

FULL = {"mixed": 10000, "huge": 10 * MiB, "many": 100000, "real": 10000, "small": 55,
        "runs": 5, "wan_runs": 3, "big": 1000000, "folders": 100000, "scale_runs": 1,
        "wb": 1000, "wb_sync": 200, "wb_off": 200, "wb_runs": 3}
SMOKE = {"mixed": 500, "huge": 1 * MiB, "many": 2000, "real": 300, "small": 55,
         "runs": 1, "wan_runs": 1, "big": 20000, "folders": 2000, "scale_runs": 1,
         "wb": 100, "wb_sync": 20, "wb_off": 100, "wb_runs": 1}

# (name, round trip ms, Mbit/s per direction); --smoke: the first only
PROFILES = [("40 ms RTT, 50 Mbit/s", 40, 50), ("150 ms RTT, 5 Mbit/s", 150, 5)]
MV_BATCH = 50          # `mv` of this many messages in one command (first profile)

TARGETS = {"P1": 1.0, "P1f": 1.2, "P1r": 1.0, "P2": 3.0, "P2f": 1.2, "P3": 1.0,
           "P3r": 1.0, "P3t": 1.0, "P4": 1.2, "P5": 5.0, "P6": 0.3, "P6f": 1.2, "P6c": 1.2,
           "Q1": 1.2, "W1": 1.2, "W2": 1.2, "W2t": 1.2, "W3": 1.2, "W4": 1.2, "W5": 1.2, "W6": 1.2, "S2": 1.2, "S2c": 1.2,
           # --writeback (issue 16): the change under -o writeback against the
           # same change without it; the "f" items against their budget
           # (2 round trips + 1 s + writeback_delay, see wb_table)
           "WB1": 0.05, "WB2": 0.05, "WB3": 0.05, "WB1f": 1.0, "WB2f": 1.0, "WB3f": 1.0}
P7_TARGET_MIB = 128
WB4_TARGET_MS = 10      # the slowest change offline, strictly below
WB4R_TARGET_S = 10.0    # relay back until the server has every offline change
WB_WAIT_S = 180         # give up waiting for the server after this long
# Q1: a search directory of the many-small folder.  Its subjects are
# "Small NNNNNN words..." (gen_many, subject_for: NNNNNN = 1..count, then
# words without digits), so "00 " is in exactly the subjects of every
# hundredth message: 1% (1,000 of 100,000; 20 of 2,000 with --smoke)
Q1_QUERY = 'SUBJECT "00 "'
S1_TARGET_MIB = 128
S3_TARGET_S = 2.0

_deadline = None


def log(msg):
    print("bench: " + msg, flush=True)


class BenchError(Exception):
    pass


def check_deadline(what):
    if _deadline is not None and time.monotonic() > _deadline:
        raise BenchError("time limit (--max-minutes) exceeded before " + what)


# --------------------------------------------------------------------------
# mail generation (Maildir files written directly, LF line ends as Maildir
# delivery agents do; Dovecot serves them with CRLF: W= is that size)

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
         "tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam "
         "quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo "
         "consequat duis aute irure in reprehenderit voluptate velit esse cillum "
         "fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt "
         "culpa qui officia deserunt mollit anim id est laborum meeting report "
         "invoice budget draft review quarterly release notes schedule project "
         "update minutes agenda travel expenses contract proposal").split()
SENDERS = ["Bob Example <bob@example.org>", "Carol <carol@example.net>",
           "Dave Miller <dave@example.com>", "\"Eve, Admin\" <eve@example.org>",
           "newsletter@lists.example.com", "Frank <frank@example.de>"]


class TextPool:
    """A few MB of LF text lines; bodies are line-aligned slices of it."""

    def __init__(self, rnd, size=4 * MiB):
        lines, n = [], 0
        while n < size:
            line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 12)))
            line = line[:1].upper() + line[1:] + ".\n"
            lines.append(line)
            n += len(line)
        self.data = "".join(lines).encode()

    def take(self, rnd, size):
        size = max(1, min(size, len(self.data) // 2))
        st = rnd.randrange(0, len(self.data) - size - 200)
        st = self.data.index(b"\n", st) + 1
        end = self.data.find(b"\n", st + size)
        end = len(self.data) if end < 0 else end + 1
        return self.data[st:end]


def b64_lf(data):
    enc = base64.b64encode(data)
    return b"".join(enc[i:i + 76] + b"\n" for i in range(0, len(enc), 76))


def headers(rnd, subject, msgid, when, ctype):
    return ("From: %s\nTo: Alice <alice@localhost>\nSubject: %s\n"
            "Date: %s\nMessage-ID: <%s>\nMIME-Version: 1.0\n%s\n" % (
                rnd.choice(SENDERS), subject,
                when.strftime("%a, %d %b %Y %H:%M:%S %z"), msgid, ctype)).encode()


def text_message(rnd, pool, subject, msgid, when, size):
    body = pool.take(rnd, size)
    return headers(rnd, subject, msgid, when,
                   "Content-Type: text/plain; charset=us-ascii\n"
                   "Content-Transfer-Encoding: 7bit\n") + body


def attach_message(rnd, pool, subject, msgid, when, att_bytes):
    b = "==bench%016x==" % rnd.getrandbits(64)
    text = pool.take(rnd, rnd.randint(300, 2000))
    return (headers(rnd, subject, msgid, when,
                    "Content-Type: multipart/mixed; boundary=\"%s\"\n" % b) +
            ("This is a multi-part message in MIME format.\n\n--%s\n"
             "Content-Type: text/plain; charset=us-ascii\n\n" % b).encode() + text +
            ("\n--%s\nContent-Type: application/octet-stream; name=\"data.bin\"\n"
             "Content-Disposition: attachment; filename=\"data.bin\"\n"
             "Content-Transfer-Encoding: base64\n\n" % b).encode() +
            b64_lf(rnd.randbytes(att_bytes)) + ("--%s--\n" % b).encode())


def rand_when(rnd):
    base = dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc)
    return base + dt.timedelta(seconds=rnd.randrange(0, 3 * 365 * 86400))


def subject_for(rnd, prefix, i):
    return "%s %06d %s" % (prefix, i, " ".join(rnd.choice(WORDS)
                                               for _ in range(rnd.randint(2, 6))))


class Writer:
    """Writes messages into one folder's Maildir cur/ with Dovecot's owner."""

    def __init__(self, env, folder):
        self.cur = os.path.join(env["MAIL_DIR"], folder, "cur")
        if not os.path.isdir(self.cur):
            raise BenchError("maildir %s does not exist" % self.cur)
        self.uid, self.gid = int(env["MAIL_UID"]), int(env["MAIL_GID"])
        self.chown = os.geteuid() == 0
        self.base = int(time.time())
        self.n = 0
        self.total_crlf = 0
        self.sizes = []

    def add(self, lf, when, flags="S"):
        crlf_size = len(lf) + lf.count(b"\n")
        name = "%d.M%dP%d.bench,S=%d,W=%d:2,%s" % (self.base, self.n, os.getpid(),
                                                  len(lf), crlf_size, flags)
        p = os.path.join(self.cur, name)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, lf)
        finally:
            os.close(fd)
        if self.chown:
            os.chown(p, self.uid, self.gid)
        t = when.timestamp()
        os.utime(p, (t, t))
        self.n += 1
        self.total_crlf += crlf_size
        self.sizes.append(crlf_size)


def gen_mixed(env, count, rnd, pool):
    """Realistic mixed sizes: log-normal (median ~4 KB) plus ~2% messages
    with a 50-500 KB attachment."""
    w = Writer(env, MIXED)
    mu = math.log(4096)
    for i in range(count):
        when = rand_when(rnd)
        subj = subject_for(rnd, "Mixed", i + 1)
        msgid = "mixed.%06d@bench.localhost" % (i + 1)
        if rnd.random() < 0.02:
            raw = attach_message(rnd, pool, subj, msgid, when,
                                 rnd.randint(50 * 1024, 500 * 1024) * 3 // 4)
        else:
            size = int(rnd.lognormvariate(mu, 1.0))
            raw = text_message(rnd, pool, subj, msgid, when, max(200, min(size, 1 * MiB)))
        w.add(raw, when, "S" if i % 4 else "")
    return w


def gen_many(env, count, rnd, pool, folder=MANY, prefix="Small"):
    """Small (0.3-1.5 KB) messages; also the 1,000,000-message folder."""
    w = Writer(env, folder)
    tag = prefix.lower()
    for i in range(count):
        if i % 10000 == 0:
            check_deadline("writing %s" % folder)
        when = rand_when(rnd)
        raw = text_message(rnd, pool, subject_for(rnd, prefix, i + 1),
                           "%s.%07d@bench.localhost" % (tag, i + 1), when,
                           rnd.randint(200, 1200))
        w.add(raw, when, "S" if i % 3 else "")
    return w


# The realistic folder: a heavy-tailed size mix (share, smallest, largest),
# sizes log-uniform-ish inside a class (exponent 0.65 leans towards the top:
# 10,000 messages come to ~390 MB), bodies mostly text, so that they
# compress.  Each class gets its exact share (rounded), in a seeded order.
REAL_CLASSES = [(0.80, 1000, 10000), (0.17, 10000, 100000),
                (0.027, 100000, 1000000), (0.003, 1000000, 10000000)]


def real_sizes(count, rnd):
    counts = [int(round(share * count)) for share, _, _ in REAL_CLASSES]
    counts[0] += count - sum(counts)
    sizes = []
    for n, (_, lo, hi) in zip(counts, REAL_CLASSES):
        sizes += [int(lo * (hi / lo) ** (rnd.random() ** 0.65)) for _ in range(n)]
    rnd.shuffle(sizes)
    return sizes


def long_text(rnd, pool, size):
    parts, n = [], 0
    while n < size:
        t = pool.take(rnd, min(size - n, 1 * MiB))
        parts.append(t)
        n += len(t)
    return b"".join(parts)


def real_message(rnd, pool, subject, msgid, when, size):
    """About `size` bytes: plain text up to 30 KB; then text plus an HTML
    version of it; from 100 KB on a short text with an attachment that is
    text (a log or CSV, 7bit) two times in three, else base64 (binary)."""
    if size < 30000:
        return text_message(rnd, pool, subject, msgid, when, max(200, size - 400))
    b = "==real%016x==" % rnd.getrandbits(64)
    if size < 100000:
        text = pool.take(rnd, size * 2 // 5)
        html = (b"<html><body>\n" + b"".join(
            b"<p>" + line + b"</p>\n" for line in pool.take(rnd, size * 2 // 5).split(b"\n")
            if line) + b"</body></html>\n")
        return (headers(rnd, subject, msgid, when,
                        "Content-Type: multipart/alternative; boundary=\"%s\"\n" % b) +
                ("\n--%s\nContent-Type: text/plain; charset=us-ascii\n\n" % b).encode() +
                text + ("\n--%s\nContent-Type: text/html; charset=us-ascii\n\n" % b).encode() +
                html + ("--%s--\n" % b).encode())
    text = pool.take(rnd, rnd.randint(500, 3000))
    if rnd.random() < 2 / 3:
        att = long_text(rnd, pool, size - len(text) - 800)
        part = ("Content-Type: text/plain; charset=us-ascii; name=\"report.log\"\n"
                "Content-Disposition: attachment; filename=\"report.log\"\n"
                "Content-Transfer-Encoding: 7bit\n\n").encode() + att
    else:
        att = b64_lf(rnd.randbytes(max(1024, (size - len(text) - 800) * 57 // 78)))
        part = ("Content-Type: application/pdf; name=\"scan.pdf\"\n"
                "Content-Disposition: attachment; filename=\"scan.pdf\"\n"
                "Content-Transfer-Encoding: base64\n\n").encode() + att
    return (headers(rnd, subject, msgid, when,
                    "Content-Type: multipart/mixed; boundary=\"%s\"\n" % b) +
            ("This is a multi-part message in MIME format.\n\n--%s\n"
             "Content-Type: text/plain; charset=us-ascii\n\n" % b).encode() + text +
            ("\n--%s\n" % b).encode() + part + ("--%s--\n" % b).encode())


def gen_real(env, folder, count, rnd, pool, prefix="Real"):
    w = Writer(env, folder)
    for i, size in enumerate(real_sizes(count, rnd)):
        if i % 1000 == 0:
            check_deadline("writing %s" % folder)
        when = rand_when(rnd)
        raw = real_message(rnd, pool, subject_for(rnd, prefix, i + 1),
                           "%s.%06d@bench.localhost" % (prefix.lower(), i + 1), when, size)
        w.add(raw, when, "S" if i % 5 else "")
    return w


def gen_huge(env, size, rnd, pool):
    w = Writer(env, HUGE)
    when = dt.datetime(2024, 2, 29, 12, 0, 0, tzinfo=dt.timezone.utc)
    # base64 with 76-char lines: 78 bytes CRLF per 57 input bytes
    att = max(1024, (size - 4096) * 57 // 78)
    raw = attach_message(rnd, pool, "Large attachment", "huge.000001@bench.localhost",
                         when, att)
    w.add(raw, when, "S")
    return w


def gen_huge_text(env, size, rnd, pool):
    """One message of about `size` bytes that is mostly text (a short note
    and a log attached as 7bit text/plain): what COMPRESS is for."""
    w = Writer(env, HUGETEXT)
    when = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    b = "==benchtext%016x==" % rnd.getrandbits(64)
    note = pool.take(rnd, 1500)
    log_text = long_text(rnd, pool, max(1024, size - 4096))
    raw = (headers(rnd, "Large text attachment", "hugetext.000001@bench.localhost", when,
                   "Content-Type: multipart/mixed; boundary=\"%s\"\n" % b) +
           ("This is a multi-part message in MIME format.\n\n--%s\n"
            "Content-Type: text/plain; charset=us-ascii\n\n" % b).encode() + note +
           ("\n--%s\nContent-Type: text/plain; charset=us-ascii; name=\"server.log\"\n"
            "Content-Disposition: attachment; filename=\"server.log\"\n"
            "Content-Transfer-Encoding: 7bit\n\n" % b).encode() + log_text +
           ("\n--%s--\n" % b).encode())
    w.add(raw, when, "S")
    return w


# --------------------------------------------------------------------------
# processes and mounts

def settle():
    """Write back dirty pages of earlier steps (pulled Maildirs, imapfs cache
    files) so that they do not slow down the next measurement."""
    os.sync()


def run_timed(argv, timeout=600, cwd=None, env=None, check=True, stdout=None):
    """Run argv; return (seconds, CompletedProcess)."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL if stdout is None else stdout,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=cwd, env=env)
    dtime = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise BenchError("%s exited %d: %s" % (" ".join(argv), p.returncode,
                                              p.stderr.decode(errors="replace")[-2000:]))
    return dtime, p


def ls_cmd(d):
    return ["ls", "-l", d]


def cat_cmd(d):
    # the same command shape for imapfs and the local Maildir
    return ["sh", "-c", 'cd "$1" && exec cat -- * > /dev/null', "sh", d]


def is_mounted(path):
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if line.split()[4].replace("\\040", " ") == path:
                    return True
    except OSError:
        pass
    return False


class Mount:
    live = []

    def __init__(self, argv, path, logdir, name):
        """argv: the whole command (imapfs ... -f URL PATH, or floorfs SPEC PATH)."""
        self.argv, self.path, self.name = argv, path, name
        self.log_path = os.path.join(logdir, name + ".stderr")
        self.proc = None

    def start(self, timeout=30):
        os.makedirs(self.path, exist_ok=True)
        argv = self.argv
        self.errf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.errf,
                                     stderr=self.errf, start_new_session=True)
        Mount.live.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_mounted(self.path):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        rc = self.proc.poll()
        self.kill()
        raise BenchError("%s did not mount within %ds (exit %s): %s\n%s" % (
            self.name, timeout, rc, " ".join(argv), self.stderr_tail()))

    def wait_sessions(self, limit_s=10):
        """Wait until every connection of the mount is open (MOUNT/.status:
        no `connection N closed` line).  A fresh mount opens its spare
        sessions in the background; on loopback their logins (TLS
        handshakes, Dovecot's login and imap processes) take the same two
        CPUs as the work being timed.  A mount of a binary without the
        connection lines counts as ready."""
        deadline = time.monotonic() + limit_s
        lines = []
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(self.path, ".status"), "rb") as f:
                    lines = f.read().decode(errors="replace").splitlines()
            except OSError:
                return
            conns = [ln.split() for ln in lines if ln.startswith("connection ")]
            if all(len(c) > 2 and c[2] != "closed" for c in conns):
                return
            time.sleep(0.02)
        raise BenchError("%s: the mount's connections did not all open within %ds: %r" % (
            self.name, limit_s, lines))

    def stderr_tail(self):
        try:
            self.errf.flush()
            with open(self.log_path, "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def vm_hwm_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise BenchError("no VmHWM for pid %d" % self.proc.pid)

    def stop(self, timeout=60):
        """fusermount3 -u and wait for imapfs to exit (it may write its cache)."""
        if self.proc is None:
            return
        # a busy mount (a process still inside it) cannot be unmounted: try
        # for a few seconds, then kill rather than wait for an exit that
        # will not come
        deadline = time.monotonic() + 10
        while True:
            p = subprocess.run(["fusermount3", "-u", self.path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=30)
            if p.returncode == 0 or not is_mounted(self.path):
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise BenchError("%s: fusermount3 -u failed: %s" % (
                    self.name, p.stderr.decode(errors="replace").strip()))
            time.sleep(0.2)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError("%s did not exit within %ds of fusermount3 -u" % (self.name, timeout))
        self._done()
        if rc != 0:
            raise BenchError("%s exited %d after unmount:\n%s" % (self.name, rc,
                                                                  self.stderr_tail()))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-uz", self.path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        self._done()

    def _done(self):
        if self in Mount.live:
            Mount.live.remove(self)
        try:
            self.errf.close()
        except (OSError, AttributeError):
            pass


# --------------------------------------------------------------------------
# transports: plain IMAP on loopback (default) or implicit TLS (--tls)

class Transport:
    def __init__(self, name, env, work, pwfile, port=None):
        """name: "plain" or "tls"; port: another port on 127.0.0.1 leading to
        the same server (the WAN relay's), else Dovecot's own."""
        self.name, self.env, self.work, self.pwfile = name, env, work, pwfile
        self.tls = name == "tls"
        self.user, self.password = env["USER"], env["PASSWORD"]
        if self.tls:
            # the test certificate is for DNS:localhost (127.0.0.1 in /etc/hosts)
            self.host, self.port = "localhost", int(port or env["IMAPS_PORT"])
        else:
            self.host, self.port = "127.0.0.1", int(port or env["IMAP_PORT"])

    # imapfs
    def imapfs_url(self):
        return "%s://%s@%s:%d" % ("imaps" if self.tls else "imap", self.user,
                                   self.host, self.port)

    def imapfs_opts(self, cache_dir, extra):
        o = ["password_file=" + self.pwfile, "cache_dir=" + cache_dir]
        o.append("ca_file=" + self.env["CA_FILE"] if self.tls else "plaintext")
        return o + extra

    # imaplib
    def imaplib_connect(self, timeout=120):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.env["CA_FILE"])
            m = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=ctx, timeout=timeout)
        else:
            m = imaplib.IMAP4(self.host, self.port, timeout=timeout)
        m.login(self.user, self.password)
        return m

    # mbsync
    def mbsyncrc(self, local, folder):
        rc = os.path.join(self.work, "mbsyncrc-" + self.name)
        tls = ("SSLType IMAPS\nCertificateFile %s\n" % self.env["CA_FILE"]
               if self.tls else "SSLType None\nAuthMechs LOGIN\n")
        # mbsync 1.4 compresses whenever the server offers COMPRESS=DEFLATE
        # (ours does, when Dovecot has imap_zlib): on loopback that only
        # costs, so it is turned off, as imaplib and curl do not compress
        tls += "DisableExtensions COMPRESS=DEFLATE\n"
        with open(rc, "w") as f:
            f.write("FSync no\n\n"
                    "IMAPAccount bench\nHost %s\nPort %d\nUser %s\n"
                    "PassCmd \"cat %s\"\n%s\n"
                    "IMAPStore bench-far\nAccount bench\n\n"
                    "MaildirStore bench-near\nPath %s/\nInbox %s/INBOX\n"
                    "SubFolders Verbatim\n\n"
                    "Channel bench\nFar :bench-far:\nNear :bench-near:\n"
                    "Patterns %s\nSync Pull\nCreate Near\nExpunge None\n"
                    "SyncState *\n" % (self.host, self.port, self.user, self.pwfile,
                                       tls, local, local, folder))
        return rc

    # curl
    def curl_argv(self, folder, uid, out):
        cfg = os.path.join(self.work, "curl.cfg")
        if not os.path.exists(cfg):
            fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write('user = "%s:%s"\n' % (self.user, self.password))
        url = "%s://%s:%d/%s;UID=%d" % ("imaps" if self.tls else "imap", self.host,
                                         self.port, folder, uid)
        a = ["curl", "-s", "-S", "-K", cfg, url, "-o", out]
        if self.tls:
            a[1:1] = ["--cacert", self.env["CA_FILE"],
                      "--resolve", "localhost:%d:127.0.0.1" % self.port]
        return a


META = "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"


def imaplib_listing(t, folder):
    """The P1 peer: connect, log in, EXAMINE, one UID FETCH 1:*, log out.
    Returns (messages, seconds from EXAMINE to the FETCH's end)."""
    m = t.imaplib_connect()
    try:
        t0 = time.perf_counter()
        typ, data = m.select('"%s"' % folder, readonly=True)
        if typ != "OK":
            raise BenchError("EXAMINE %s: %r" % (folder, data))
        typ, data = m.uid("FETCH", "1:*", META)
        sec = time.perf_counter() - t0
        if typ != "OK":
            raise BenchError("UID FETCH: %r" % (data,))
        n = sum(1 for d in data if isinstance(d, tuple))
    finally:
        try:
            m.logout()
        except Exception:
            pass
    return n, sec


def timed_imaplib(t, folder, expect):
    """(seconds from connect to logout, seconds of EXAMINE + FETCH)"""
    t0 = time.perf_counter()
    n, fetch = imaplib_listing(t, folder)
    sec = time.perf_counter() - t0
    if n != expect:
        raise BenchError("imaplib fetched %d messages of %s, expected %d" % (n, folder, expect))
    return sec, fetch


def imaplib_search(m, folder, query, expect=None):
    """The Q1 peer, on a logged-in connection: EXAMINE, UID SEARCH QUERY,
    one UID FETCH of the hits' metadata (what P1 fetches).  Returns (hits,
    seconds of the three)."""
    t0 = time.perf_counter()
    typ, data = m.select('"%s"' % folder, readonly=True)
    imap_ok(m, typ, data, "EXAMINE %s" % folder)
    typ, data = m.uid("SEARCH", query)
    hits = imap_ok(m, typ, data, "UID SEARCH %s" % query)[0].split()
    n = 0
    if hits:
        typ, data = m.uid("FETCH", b",".join(hits).decode(), META)
        n = sum(1 for d in imap_ok(m, typ, data, "UID FETCH") if isinstance(d, tuple))
    sec = time.perf_counter() - t0
    if n != len(hits) or (expect is not None and n != expect):
        raise BenchError("imaplib: UID SEARCH %s in %s found %d, FETCH gave %d, expected %s" % (
            query, folder, len(hits), n, expect))
    return n, sec


def imap_ok(m, typ, data, what):
    if typ != "OK":
        raise BenchError("%s: %s %r" % (what, typ, data))
    return data


def select_folder(m, folder, readonly=True):
    typ, data = m.select('"%s"' % folder, readonly=readonly)
    imap_ok(m, typ, data, "SELECT %s" % folder)
    return int(data[0])


def uids(m):
    typ, data = m.uid("SEARCH", "ALL")
    return [int(x) for x in imap_ok(m, typ, data, "UID SEARCH")[0].split()]


def literal_bytes(data):
    """Total size of the literals in an imaplib FETCH answer, and how many."""
    parts = [d[1] for d in data if isinstance(d, tuple)]
    return sum(len(x) for x in parts), len(parts)


def round_trip(m, n=5):
    """Median time of a NOOP on a logged-in connection (one round trip)."""
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        imap_ok(m, *m.noop(), "NOOP")
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def streamed_fetch(m, items, limit_s):
    """UID FETCH 1:* ITEMS on a selected imaplib connection, reading the answer
    as it comes and keeping nothing (a folder of a million messages would not
    fit in imaplib's list).  Returns the number of FETCH responses."""
    tag = b"bsf1"
    m.send(tag + b" UID FETCH 1:* " + items.encode() + b"\r\n")
    deadline = time.monotonic() + limit_s
    n = 0
    while True:
        if time.monotonic() > deadline:
            raise BenchError("streamed FETCH took over %ds" % limit_s)
        line = m.readline()
        if not line:
            raise BenchError("connection closed during a streamed FETCH")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise BenchError("streamed FETCH: %r" % line[:200])
            return n
        if line.startswith(b"* ") and b" FETCH " in line[:40]:
            n += 1
        while line.endswith(b"}\r\n"):
            size = int(line[line.rindex(b"{") + 1:-3])
            m.read(size)
            line = m.readline()


def count_files(d):
    n = 0
    with os.scandir(d) as it:
        for e in it:
            if e.is_file(follow_symlinks=False):
                n += 1
    return n


def cat_bytes(d):
    p = subprocess.run(["sh", "-c", 'cd "$1" && cat -- * | wc -c', "sh", d],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=900)
    if p.returncode != 0:
        raise BenchError("cat of %s failed: %s" % (d, p.stderr.decode(errors="replace")))
    return int(p.stdout.split()[0])


def status_messages(m, folder):
    """MESSAGES of a folder (STATUS: not the selected one, whose view Dovecot
    may answer from)."""
    typ, data = m.status('"%s"' % folder, "(MESSAGES)")
    data = imap_ok(m, typ, data, "STATUS %s" % folder)
    hit = re.search(rb"MESSAGES (\d+)", b" ".join(x for x in data if isinstance(x, bytes)))
    if not hit:
        raise BenchError("STATUS %s: no MESSAGES in %r" % (folder, data))
    return int(hit.group(1))


def flagged_count(m):
    """How many messages of the selected folder are \\Flagged: a NOOP, then
    UID SEARCH FLAGGED (Dovecot's SEARCH sees the folder as the end of the
    previous command left it, so without the NOOP it lags one poll)."""
    imap_ok(m, *m.noop(), "NOOP")
    typ, data = m.uid("SEARCH", "FLAGGED")
    return len(imap_ok(m, typ, data, "UID SEARCH FLAGGED")[0].split())


def fsync_dir(path):
    """fsync of a directory of the mount: under -o writeback, returns when
    everything the mount acknowledged is on the server."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def wb_status(mt):
    """MOUNT/.status: (its `writeback:` line, the last batch, conflict lines)."""
    with open(os.path.join(mt.path, ".status"), "rb") as f:
        lines = f.read().decode(errors="replace").splitlines()
    state = next((x for x in lines if x.startswith("writeback: ")), "")
    batch = next((x[len("writeback last batch: "):] for x in lines
                  if x.startswith("writeback last batch: ")), "")
    return state, batch, [x for x in lines if x.startswith("writeback conflict: ")]


def nearest_rank(xs, q):
    """The q-quantile of xs by nearest rank (p99 of 200: the 198th)."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]


# --------------------------------------------------------------------------
# the benchmark

# bench/relay.py listening on given ports (it always asks for free ones):
# its asyncio.start_server is handed them in order.  For --writeback's WB4r,
# which stops the relay and starts it again where the mount reconnects to.
RELAY_ON_PORTS = r"""
import asyncio, runpy, sys
want = [int(p) for p in sys.argv[1].split(",")]
start_server = asyncio.start_server
async def on_port(cb, host, port, **kw):
    return await start_server(cb, host, want.pop(0) if want else port, **kw)
asyncio.start_server = on_port
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class Relay:
    """bench/relay.py as a child process: one WAN profile for every port."""

    def __init__(self, work, name, rtt_ms, mbit, ports, max_seconds, listen=None):
        """listen: the relay's own ports (one per target port), else free ones."""
        self.log_path = os.path.join(work, "relay-%s.stderr" % name)
        self.errf = open(self.log_path, "ab")
        argv = [PYTHON, RELAY, "--rtt-ms", str(rtt_ms), "--mbit", str(mbit),
                "--max-seconds", str(int(max_seconds))] + [str(p) for p in ports]
        if listen:
            argv[1:1] = ["-c", RELAY_ON_PORTS, ",".join(str(p) for p in listen)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errf, start_new_session=True)
        line = self.read_line(15)
        words = line.split()
        if len(words) != len(ports) + 1 or words[0] != b"ports":
            self.stop()
            raise BenchError("the relay did not start: %r" % line)
        self.ports = [int(w) for w in words[1:]]
        if listen and self.ports != [int(p) for p in listen]:
            self.stop()
            raise BenchError("the relay listens on %r, not on %r" % (self.ports, listen))

    def read_line(self, limit_s):
        """One line the relay prints, waiting at most limit_s."""
        deadline = time.monotonic() + limit_s
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                c = os.read(self.proc.stdout.fileno(), 256)
                if not c:
                    break
                line += c
        return line

    def down_bytes(self):
        """Bytes relayed from the server to the clients so far."""
        return self.stats()[1]

    def wait_quiet(self, quiet_s, limit_s):
        """Wait until nothing has crossed the relay for quiet_s (a mount's
        spare sessions logging in, say); False if that took over limit_s."""
        deadline = time.monotonic() + limit_s
        last, since = self.stats(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.stats()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return True
        return False

    def stats(self):
        """(bytes up, bytes down) relayed so far."""
        self.proc.stdin.write(b"stats\n")
        self.proc.stdin.flush()
        line = self.read_line(10)
        words = line.split()
        if len(words) != 3 or words[0] != b"stats":
            raise BenchError("the relay did not answer stats: %r" % line)
        return int(words[1]), int(words[2])

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()     # the relay exits at end of file
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdout, self.errf):
            try:
                f.close()
            except OSError:
                pass


def floor_spec(d, path):
    """Write floorfs's spec (SIZE MTIME NAME per line) from the listing of d."""
    n = 0
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f, os.scandir(d) as it:
        for e in it:
            st = e.stat(follow_symlinks=False)
            name = e.name.replace("\n", "_")
            f.write("%d %d %s\n" % (st.st_size, int(st.st_mtime), name))
            n += 1
    return n


def head_cmd(d):
    # the first 4 KB of every message, one process (GNU head, -c per file)
    return ["sh", "-c", 'cd "$1" && exec head -q -c 4096 -- * > /dev/null', "sh", d]


def shell_bytes(script, d, timeout=900):
    p = subprocess.run(["sh", "-c", script, "sh", d], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise BenchError("%s in %s failed: %s" % (script, d, p.stderr.decode(errors="replace")))
    return int(p.stdout.split()[0])


def reconfigure(env, text):
    """Append text to the dovecot.conf scripts/dovecot-env wrote, and have
    Dovecot reload it (SIGHUP to the master; new sessions see it)."""
    with open(env["CONF"], "a") as f:
        f.write("\n# added by bench/run.py\n" + text)
    os.kill(int(env["PID"]), signal.SIGHUP)


class Bench:
    def __init__(self, args, sizes):
        self.args, self.sizes = args, sizes
        self.binary = args.imapfs_bin
        self.floorfs = args.floorfs_bin
        self.extra = [o for o in (args.imapfs_opts or "").split(",") if o]
        self.work = None
        self.dovecot_dirs = []
        self.relays = []
        self.seq = 0
        self.shm = None  # a work dir on tmpfs (P3t), made at setup
        self.compress = False
        self.wan_extra = []
        self.totals = {}

    # -- setup ---------------------------------------------------------------
    def start_dovecot(self, name, *opts):
        d = os.path.join(self.work, name)
        self.dovecot_dirs.append(d)
        subprocess.run([PYTHON, DOVECOT_ENV, "start", d] + list(opts), check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        with open(os.path.join(d, "env.json")) as f:
            return json.load(f)

    def setup(self):
        self.work = tempfile.mkdtemp(prefix="imapfs-bench-", dir="/tmp")
        os.chmod(self.work, 0o755)  # Dovecot's mail user must traverse it
        if os.path.isdir("/dev/shm"):
            self.shm = tempfile.mkdtemp(prefix="imapfs-bench-", dir="/dev/shm")
        log("work dir %s; starting Dovecot" % self.work)
        # the server offers COMPRESS=DEFLATE (RFC 4978), as most do, when
        # Dovecot has its imap_zlib plugin (Debian's dovecot-core does)
        self.env = self.start_dovecot("dovecot", *(["--compress"] if os.path.exists(IMAP_ZLIB)
                                                   else []))
        self.pwfile = os.path.join(self.work, "password")
        fd = os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.env["PASSWORD"] + "\n")
        self.plain = Transport("plain", self.env, self.work, self.pwfile)
        m = self.plain.imaplib_connect()
        try:
            typ, data = m.capability()
        finally:
            m.logout()
        self.compress = b"COMPRESS=DEFLATE" in data[0].upper()
        log("the server %s COMPRESS=DEFLATE" % ("offers" if self.compress else
                                                "does not offer (no imap_zlib plugin)"))
        if os.path.exists(IMAP_ZLIB) and not self.compress:
            raise BenchError("Dovecot started with --compress does not offer COMPRESS=DEFLATE")
        # imapfs's -o compress=auto never compresses to a loopback address,
        # and the WAN relay is one: over it, imapfs gets -o compress=yes,
        # what auto picks on a real link of these round trips (>= 10 ms)
        self.wan_extra = list(self.extra)
        if (self.compress and not any(o.startswith("compress=") for o in self.extra) and
                "compress=" in subprocess.run([self.binary, "--help"], stdin=subprocess.DEVNULL,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              timeout=10).stdout.decode(errors="replace")):
            self.wan_extra.append("compress=yes")

    def move_count(self):
        s, a = self.sizes, self.args
        tr = 2 if a.tls else 1
        return tr * (len(self.profiles()) * s["wan_runs"] * 2 +
                     s["wan_runs"] * 2 * MV_BATCH) + 10

    def profiles(self):
        return PROFILES[:1] if self.args.smoke else PROFILES

    def generate(self):
        a, s, t = self.args, self.sizes, self.plain
        loop, wan, scale = not a.no_loopback, a.wan, a.scale
        folders = []
        if loop or wan:
            folders += [MIXED, HUGE]
        if loop:
            folders += [MANY, REAL]
        if wan:
            folders += [HUGETEXT, SMALL, MOVESRC, MOVEDST]
        if a.writeback:
            folders += [WB_MV, WB_MVDST, WB_RM, WB_TRASH, WB_FLAG, WB_OFF, WB_OFFDST,
                        WB_OFFTRASH]
        if scale:
            folders += [BIG]
        m = t.imaplib_connect()
        try:
            for f in folders:
                for cmd in (m.create, m.subscribe):
                    typ, data = cmd(f)
                    if typ != "OK":
                        raise BenchError("%s %s: %r" % (cmd.__name__, f, data))
        finally:
            m.logout()
        self.folders = folders
        rnd = random.Random(20240229)
        pool = TextPool(rnd)
        counts = {}

        def done(w, folder, t0):
            srt = sorted(w.sizes) or [0]
            self.totals[folder] = w.total_crlf
            counts[folder] = w.n
            log("wrote %d messages into %s: %.1f MB, median %.1f KB, max %.0f KB (%.1fs)" % (
                w.n, folder, w.total_crlf / 1e6, srt[len(srt) // 2] / 1024, srt[-1] / 1024,
                time.monotonic() - t0))
            return w
        # the first three draw from one generator, in this order, as before
        if MIXED in folders:
            t0 = time.monotonic()
            done(gen_mixed(self.env, s["mixed"], rnd, pool), MIXED, t0)
            t0 = time.monotonic()
            w = done(gen_huge(self.env, s["huge"], rnd, pool), HUGE, t0)
            self.huge_size = w.total_crlf
        if MANY in folders:
            t0 = time.monotonic()
            done(gen_many(self.env, s["many"], rnd, pool), MANY, t0)
        if REAL in folders:
            t0 = time.monotonic()
            done(gen_real(self.env, REAL, s["real"], random.Random(7001), pool), REAL, t0)
        if HUGETEXT in folders:
            t0 = time.monotonic()
            w = done(gen_huge_text(self.env, s["huge"], random.Random(7009), pool),
                     HUGETEXT, t0)
            self.huge_text_size = w.total_crlf
        if SMALL in folders:
            t0 = time.monotonic()
            w = done(gen_real(self.env, SMALL, s["small"], random.Random(7002), pool,
                              prefix="Wan"), SMALL, t0)
            self.small_sizes = list(w.sizes)
            t0 = time.monotonic()
            done(gen_many(self.env, self.move_count(), random.Random(7003), pool,
                          folder=MOVESRC, prefix="Move"), MOVESRC, t0)
            counts[MOVEDST] = 0
        if WB_MV in folders:
            # one run's messages per source folder (the run moves them back)
            n = s["wb"] + s["wb_sync"]
            for seed, f, prefix, count in ((7005, WB_MV, "Wbmove", n), (7006, WB_RM, "Wbrm", n),
                                           (7007, WB_FLAG, "Wbflag", n),
                                           (7008, WB_OFF, "Wboff", s["wb_off"])):
                t0 = time.monotonic()
                done(gen_many(self.env, count, random.Random(seed), pool, folder=f,
                              prefix=prefix), f, t0)
            for f in (WB_MVDST, WB_TRASH, WB_OFFDST, WB_OFFTRASH):
                counts[f] = 0
        if BIG in folders:
            t0 = time.monotonic()
            done(gen_many(self.env, s["big"], random.Random(7004), pool, folder=BIG,
                          prefix="Big"), BIG, t0)
        # Dovecot indexes the new files at the first SELECT (no doveadm)
        t0 = time.monotonic()
        m = t.imaplib_connect(timeout=3600)
        try:
            for f in folders:
                check_deadline("indexing %s" % f)
                t1 = time.monotonic()
                n = select_folder(m, f)
                if n != counts[f]:
                    raise BenchError("Dovecot sees %d messages in %s, expected %d" % (
                        n, f, counts[f]))
                if f == HUGE:
                    self.huge_uid = uids(m)[0]
                if f == HUGETEXT:
                    self.huge_text_uid = uids(m)[0]
                if time.monotonic() - t1 > 5:
                    log("  Dovecot indexed %s in %.1fs" % (f, time.monotonic() - t1))
        finally:
            m.logout()
        self.counts = counts
        log("Dovecot indexed the folders (%.1fs)" % (time.monotonic() - t0))

    # -- helpers -------------------------------------------------------------
    def fresh_dir(self, prefix, tmpfs=False):
        self.seq += 1
        d = os.path.join(self.shm if tmpfs else self.work, "%s-%d" % (prefix, self.seq))
        os.makedirs(d)
        return d

    def mount(self, t, cache_dir, name, extra=None, timeout=30):
        mnt = self.fresh_dir("mnt")
        opts = t.imapfs_opts(cache_dir, self.extra if extra is None else extra)
        argv = [self.binary, "-o", ",".join(opts), "-f", t.imapfs_url(), mnt]
        mt = Mount(argv, mnt, self.work, name).start(timeout)
        try:
            mt.wait_sessions()
        except BenchError:
            mt.stop()
            raise
        return mt

    def mount_floor(self, spec, name, timeout=120):
        mnt = self.fresh_dir("floor")
        return Mount([self.floorfs, "-s", spec, mnt], mnt, self.work, name).start(timeout)

    def mbsync_pull(self, t, folder=MIXED, tmpfs=False):
        local = self.fresh_dir("maildir", tmpfs)
        rc = t.mbsyncrc(local, folder)
        sec, _ = run_timed(["mbsync", "-q", "-c", rc, "bench"], timeout=900)
        return sec, local

    def mbsync_count(self, local, folder):
        n = sum(count_files(os.path.join(local, folder, sub)) for sub in ("cur", "new"))
        if n != self.counts[folder]:
            raise BenchError("mbsync pulled %d messages of %s, expected %d" % (
                n, folder, self.counts[folder]))

    # -- warm-up -------------------------------------------------------------
    def warm_up(self, t):
        s = self.sizes
        log("[%s] warm-up: imaplib listing of each folder" % t.name)
        for f in (MIXED, HUGE, MANY, REAL):
            sec, _ = timed_imaplib(t, f, self.counts[f])
            log("  imaplib %s: %.2fs" % (f, sec))
        # Q1's expectation (and Dovecot's search of that folder warmed)
        m = t.imaplib_connect()
        try:
            self.q1_hits, sec = imaplib_search(m, MANY, Q1_QUERY)
        finally:
            m.logout()
        if self.q1_hits != self.counts[MANY] // 100:
            raise BenchError("imaplib: UID SEARCH %s in %s found %d messages, expected %d "
                             "(1%%: the subjects numbered NNNN00)" % (
                                 Q1_QUERY, MANY, self.q1_hits, self.counts[MANY] // 100))
        log("  imaplib UID SEARCH %s in %s: %d hits, %.3fs" % (Q1_QUERY, MANY, self.q1_hits,
                                                              sec))
        log("[%s] warm-up: mbsync pull of %s and %s" % (t.name, MIXED, REAL))
        sec, local = self.mbsync_pull(t)
        cur = os.path.join(local, MIXED, "cur")
        # mbsync puts unseen messages into new/: one directory for the local peer
        new = os.path.join(local, MIXED, "new")
        for name in os.listdir(new):
            os.rename(os.path.join(new, name), os.path.join(cur, name))
        n = count_files(cur)
        if n != s["mixed"]:
            raise BenchError("mbsync pulled %d messages, expected %d" % (n, s["mixed"]))
        got = cat_bytes(cur)
        log("  mbsync %s: %d messages, %.1f MB in %.2fs" % (MIXED, n, got / 1e6, sec))
        self.local_cur = cur     # local peer for P2 and P5 (kept)
        sec, local = self.mbsync_pull(t, REAL)
        self.mbsync_count(local, REAL)
        shutil.rmtree(local)
        log("  mbsync %s: %.2fs" % (REAL, sec))
        log("[%s] warm-up: curl of %s UID %d" % (t.name, HUGE, self.huge_uid))
        out = os.path.join(self.work, "huge.eml")
        sec, _ = run_timed(t.curl_argv(HUGE, self.huge_uid, out), timeout=300)
        size = os.path.getsize(out)
        os.unlink(out)
        if size != self.huge_size:
            raise BenchError("curl fetched %d bytes, expected %d" % (size, self.huge_size))
        log("  curl: %d bytes in %.2fs" % (size, sec))
        log("[%s] warm-up: one imapfs pass (ls -l, cat of every file)" % t.name)
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, "warmup-" + t.name)
        try:
            for f in (MIXED, HUGE, MANY, REAL):
                d = os.path.join(mt.path, f)
                sec, _ = run_timed(ls_cmd(d), timeout=900)
                got = count_files(d)
                if got != self.counts[f]:
                    raise BenchError("imapfs lists %d files in %s, expected %d" % (
                        got, f, self.counts[f]))
                log("  imapfs ls -l %s: %d files, %.2fs" % (f, got, sec))
            # the floor serves the same names, sizes and dates
            self.floor_spec = os.path.join(self.work, "floor-%s.spec" % MIXED)
            floor_spec(os.path.join(mt.path, MIXED), self.floor_spec)
            self.floor_spec_real = os.path.join(self.work, "floor-%s.spec" % REAL)
            floor_spec(os.path.join(mt.path, REAL), self.floor_spec_real)
            for f in (MIXED, HUGE, REAL):
                t0 = time.perf_counter()
                got = cat_bytes(os.path.join(mt.path, f))
                if got != self.totals[f]:
                    raise BenchError("cat of imapfs %s gave %d bytes, expected %d" % (
                        f, got, self.totals[f]))
                log("  imapfs cat %s: %.1f MB, %.2fs" % (f, got / 1e6, time.perf_counter() - t0))
        finally:
            mt.stop()
        shutil.rmtree(cache)
        # page cache for the local peer
        run_timed(ls_cmd(self.local_cur))
        run_timed(cat_cmd(self.local_cur))

    # -- measured rounds (loopback) ---------------------------------------------
    def measure(self, t, runs):
        r = {k: [] for k in ("P1i", "P1p", "P1q", "P1ri", "P1rp", "P2i", "P2p", "F", "F1", "RT",
                             "P3i", "P3p", "P3ri", "P3rp", "P3ti", "P3tp", "P3fp", "P4i", "P4p", "P5i",
                             "P5p", "P6i", "P7rss", "P7ls", "Q1i", "Q1p")}
        folder = lambda mt, f=MIXED: os.path.join(mt.path, f)  # noqa: E731
        fl = self.mount_floor(self.floor_spec, "floor-" + t.name)
        try:
            n = count_files(fl.path)
            if n != self.counts[MIXED]:
                raise BenchError("the floor lists %d files, expected %d" % (n, self.counts[MIXED]))
            for i in range(runs):
                check_deadline("round %d" % (i + 1))
                log("[%s] round %d/%d" % (t.name, i + 1, runs))
                self.measure_round(t, r, folder, fl)
        finally:
            fl.stop()
        # the floor's peers: what the kernel and one IMAP exchange cost at least
        r["P1fp"] = [a + b for a, b in zip(r["F"], r["P1q"])]
        r["P6fp"] = [a + b for a, b in zip(r["F"], r["RT"])]
        r["P6cp"] = [a + b for a, b in zip(r["F1"], r["RT"])]
        return r

    def measure_round(self, t, r, folder, fl):
        # P1 / P2 / P6, and the floor
        settle()
        p, q = timed_imaplib(t, MIXED, self.counts[MIXED])
        r["P1p"].append(p)
        r["P1q"].append(q)
        m = t.imaplib_connect()
        try:
            r["RT"].append(round_trip(m))
        finally:
            m.logout()
        cache = self.fresh_dir("cache")
        settle()
        mt = self.mount(t, cache, "p1-" + t.name)
        try:
            r["P1i"].append(run_timed(ls_cmd(folder(mt)))[0])
            r["P2i"].append(run_timed(ls_cmd(folder(mt)))[0])
        finally:
            mt.stop()
        settle()
        mt = self.mount(t, cache, "p6-" + t.name)
        try:
            r["P6i"].append(run_timed(ls_cmd(folder(mt)))[0])
        finally:
            mt.stop()
        shutil.rmtree(cache)
        settle()
        r["P2p"].append(run_timed(ls_cmd(self.local_cur))[0])
        run_timed(ls_cmd(fl.path))            # warm (it is, unless evicted)
        r["F"].append(run_timed(ls_cmd(fl.path))[0])
        # the floor's first listing after its own mount: the kernel makes
        # every inode and dentry, as it does for any remount
        fl1 = self.mount_floor(self.floor_spec, "floor-first-" + t.name)
        try:
            r["F1"].append(run_timed(ls_cmd(fl1.path))[0])
        finally:
            fl1.stop()
        log("  P1 ls cold %.3fs / imaplib %.3fs (EXAMINE+FETCH %.3fs); P2 ls warm %.4fs / "
            "local %.4fs / floor %.4fs; P6 ls after remount %.3fs; round trip %.2fms" % (
                r["P1i"][-1], r["P1p"][-1], r["P1q"][-1], r["P2i"][-1], r["P2p"][-1],
                r["F"][-1], r["P6i"][-1], r["RT"][-1] * 1000))
        # P1 on the realistic folder
        settle()
        r["P1rp"].append(timed_imaplib(t, REAL, self.counts[REAL])[0])
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, "p1r-" + t.name)
        try:
            r["P1ri"].append(run_timed(ls_cmd(folder(mt, REAL)))[0])
        finally:
            mt.stop()
        shutil.rmtree(cache)
        log("  P1 %s ls cold %.3fs / imaplib %.3fs" % (REAL, r["P1ri"][-1], r["P1rp"][-1]))
        # P4
        settle()
        r["P4p"].append(run_timed(t.curl_argv(HUGE, self.huge_uid, "/dev/null"),
                                  timeout=300)[0])
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, "p4-" + t.name)
        try:
            d = os.path.join(mt.path, HUGE)
            names = os.listdir(d)   # the listing is not part of P4
            if len(names) != 1:
                raise BenchError("imapfs lists %r in %s" % (names, HUGE))
            settle()                # what the mount wrote, as before curl's run
            r["P4i"].append(run_timed(["cat", os.path.join(d, names[0])], timeout=300)[0])
        finally:
            mt.stop()
        shutil.rmtree(cache)
        log("  P4 cat large cold %.3fs / curl %.3fs" % (r["P4i"][-1], r["P4p"][-1]))
        # P3 / P5
        settle()
        sec, local = self.mbsync_pull(t)
        self.mbsync_count(local, MIXED)
        shutil.rmtree(local)
        settle()
        r["P3p"].append(sec)
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, "p3-" + t.name)
        try:
            r["P3i"].append(run_timed(cat_cmd(folder(mt)), timeout=900)[0])
            r["P5i"].append(run_timed(cat_cmd(folder(mt)), timeout=900)[0])
        finally:
            mt.stop()
        shutil.rmtree(cache)
        settle()
        r["P5p"].append(run_timed(cat_cmd(self.local_cur))[0])
        log("  P3 cat cold %.2fs / mbsync %.2fs; P5 cat warm %.3fs / local %.3fs" % (
            r["P3i"][-1], r["P3p"][-1], r["P5i"][-1], r["P5p"][-1]))
        # P3 on the realistic folder; P3t the same with imapfs's cache and
        # mbsync's Maildir on tmpfs: both write every byte, and the disk's
        # writeback swings either by 2x between runs
        for key, tmpfs in (("P3r", False), ("P3t", True)):
            if tmpfs and not self.shm:
                continue
            settle()
            sec, local = self.mbsync_pull(t, REAL, tmpfs)
            self.mbsync_count(local, REAL)
            shutil.rmtree(local)
            settle()
            r[key + "p"].append(sec)
            cache = self.fresh_dir("cache", tmpfs)
            mt = self.mount(t, cache, key.lower() + "-" + t.name)
            try:
                r[key + "i"].append(run_timed(cat_cmd(folder(mt, REAL)), timeout=900)[0])
            finally:
                mt.stop()
            shutil.rmtree(cache)
            log("  %s %s cat cold %.2fs / mbsync %.2fs" % (key, REAL, r[key + "i"][-1],
                                                          r[key + "p"][-1]))
        # what FUSE alone costs for P3r/P3t: the floor's first `cat` (and
        # listing) of the same names and sizes after its own mount
        settle()
        fl = self.mount_floor(self.floor_spec_real, "floor-real-" + t.name)
        try:
            r["P3fp"].append(run_timed(cat_cmd(fl.path), timeout=900)[0])
        finally:
            fl.stop()
        log("  P3f floor cat of %s's sizes %.2fs" % (REAL, r["P3fp"][-1]))
        # P7
        settle()
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, "p7-" + t.name)
        try:
            r["P7ls"].append(run_timed(ls_cmd(os.path.join(mt.path, MANY)), timeout=900)[0])
            r["P7rss"].append(mt.vm_hwm_kib() / 1024)
        finally:
            mt.stop()
        shutil.rmtree(cache)
        log("  P7 ls -l %s %.2fs, VmHWM %.1f MiB" % (MANY, r["P7ls"][-1], r["P7rss"][-1]))
        # Q1: a search directory of the many-small folder, cold (the folder
        # never listed) against imaplib, logged in before the timing
        settle()
        m = t.imaplib_connect()
        try:
            r["Q1p"].append(imaplib_search(m, MANY, Q1_QUERY, self.q1_hits)[1])
        finally:
            m.logout()
        settle()
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, "q1-" + t.name)
        try:
            d = os.path.join(mt.path, MANY, ".search", Q1_QUERY)
            r["Q1i"].append(run_timed(ls_cmd(d), timeout=900)[0])
            got = count_files(d)
            if got != self.q1_hits:
                raise BenchError("imapfs lists %d files in %s/.search/%s, imaplib's UID SEARCH "
                                 "found %d" % (got, MANY, Q1_QUERY, self.q1_hits))
        finally:
            mt.stop()
        shutil.rmtree(cache)
        log("  Q1 ls -l %s/.search/%s cold %.3fs / imaplib EXAMINE+SEARCH+FETCH %.3fs "
            "(%d hits)" % (MANY, Q1_QUERY, r["Q1i"][-1], r["Q1p"][-1], self.q1_hits))

    # -- WAN -------------------------------------------------------------------
    def start_relay(self, name, rtt, mbit, listen=None):
        left = (_deadline - time.monotonic()) if _deadline else 3600
        rl = Relay(self.work, name, rtt, mbit,
                   [self.env["IMAP_PORT"], self.env["IMAPS_PORT"]], max(60, left + 120),
                   listen)
        self.relays.append(rl)
        return rl

    def stop_relay(self, rl):
        rl.stop()
        if rl in self.relays:
            self.relays.remove(rl)

    def wan_warm_up(self):
        """The server's caches, when the loopback table did not warm them."""
        t = self.plain
        m = t.imaplib_connect()
        try:
            for f, items in ((MIXED, META), (HUGE, "BODY.PEEK[]"), (HUGETEXT, "BODY.PEEK[]"),
                             (SMALL, "BODY.PEEK[]"),
                             (MOVESRC, META)):
                select_folder(m, f)
                imap_ok(m, *m.uid("FETCH", "1:*", items), "warm-up FETCH")
        finally:
            m.logout()

    def wan_mount(self, t, name, rl, more=()):
        """A fresh (cold) mount, logged in (imapfs logs in and lists the
        folders before it mounts); the root is listed too, and whatever the
        mount does by itself on the network right after (spare sessions
        logging in) is let finish: connection setup is not timed.  more:
        -o options besides --imapfs-opts' and compress=."""
        cache = self.fresh_dir("cache")
        mt = self.mount(t, cache, name, extra=self.wan_extra + list(more), timeout=120)
        mt.cache = cache
        os.listdir(mt.path)
        rtt = self.profile_rtt
        if not rl.wait_quiet(max(0.3, 3 * rtt), 30):
            log("  (%s: the mount was still busy on the network after 30 s)" % name)
        return mt

    def wan_remount(self, t, r, rl, mt, check, mark, count):
        """W6: `ls -l` of the big folder after unmounting mt and mounting
        again with its cache_dir; its peer, the floor's first `ls -l` after
        its own mount plus one round trip.  Returns the new mount."""
        mt.stop(timeout=120)
        again = self.mount(t, mt.cache, "w6-" + t.name, extra=self.wan_extra, timeout=120)
        again.cache = mt.cache
        try:
            self.wan_time_remount(t, r, rl, again, check, mark, count)
        except BaseException:
            again.stop(timeout=120)
            raise
        return again

    def wan_time_remount(self, t, r, rl, mt, check, mark, count):
        os.listdir(mt.path)
        if not rl.wait_quiet(max(0.3, 3 * self.profile_rtt), 30):
            log("  (w6-%s: the mount was still busy on the network after 30 s)" % t.name)
        d = os.path.join(mt.path, MIXED)
        mark()
        r["W6i"].append(run_timed(ls_cmd(d))[0])
        count("W6i")
        if check and count_files(d) != self.counts[MIXED]:
            raise BenchError("imapfs lists the wrong number of files in %s after a remount" % MIXED)
        spec = getattr(self, "floor_spec", None)
        if not spec:
            spec = self.floor_spec = os.path.join(self.work, "floor-%s.spec" % MIXED)
            floor_spec(d, spec)
        settle()
        fl = self.mount_floor(spec, "floor-w6-" + t.name)
        try:
            r["W6f"].append(run_timed(ls_cmd(fl.path))[0])
        finally:
            fl.stop()
        r["W6p"].append(r["W6f"][-1] + r["RTT"][-1])

    def wan_unmount(self, mt):
        mt.stop(timeout=120)
        shutil.rmtree(mt.cache)

    def wan_cat_one(self, t, r, rl, m, key, folder, uid, size, check, mark, count):
        """key + p: imaplib's one FETCH of the folder's one message (m logged
        in); key + i: cold `cat` of it on a fresh mount, listed untimed."""
        settle()
        select_folder(m, folder)
        mark()
        t0 = time.perf_counter()
        data = imap_ok(m, *m.uid("FETCH", str(uid), "BODY.PEEK[]"), "UID FETCH")
        r[key + "p"].append(time.perf_counter() - t0)
        count(key + "p")
        if literal_bytes(data) != (size, 1):
            raise BenchError("imaplib fetched %r bytes of the message of %s" % (
                literal_bytes(data), folder))
        mt = self.wan_mount(t, key.lower() + "-" + t.name, rl)
        try:
            d = os.path.join(mt.path, folder)
            names = os.listdir(d)
            if len(names) != 1:
                raise BenchError("imapfs lists %r in %s" % (names, folder))
            f = os.path.join(d, names[0])
            mark()
            r[key + "i"].append(run_timed(["cat", f], timeout=900)[0])
            count(key + "i")
            if check and os.path.getsize(f) != size:
                raise BenchError("imapfs shows the message of %s with the wrong size" % folder)
        finally:
            self.wan_unmount(mt)
        log("  %s cat of %s cold %.3fs / imaplib FETCH %.3fs" % (
            key, folder, r[key + "i"][-1], r[key + "p"][-1]))

    def measure_wan(self, t, runs, batch, rl):
        r = {k: [] for k in ("RTT", "W1i", "W1p", "W2i", "W2p", "W2ti", "W2tp", "W3i", "W3p",
                             "W4i", "W4p", "W6i", "W6f", "W6p",
                             "W5i", "W5p", "MVi", "MVp")}
        for i in range(runs):
            check_deadline("WAN round %d" % (i + 1))
            log("[%s] round %d/%d" % (t.name, i + 1, runs))
            self.wan_round(t, r, batch, i == 0, rl)
        return r

    def wan_round(self, t, r, batch, check, rl):
        s = self.sizes
        # bytes from the server during each timed step: key + "b"
        last = [0]

        def mark():
            last[0] = rl.down_bytes()

        def count(key):
            r.setdefault(key + "b", []).append(rl.down_bytes() - last[0])
        m = t.imaplib_connect()     # the peer: logged in before any timing
        try:
            r["RTT"].append(round_trip(m, 3))
            # W1: cold ls -l of the big folder
            settle()
            mark()
            t0 = time.perf_counter()
            select_folder(m, MIXED, readonly=False)
            data = imap_ok(m, *m.uid("FETCH", "1:*", META), "UID FETCH")
            r["W1p"].append(time.perf_counter() - t0)
            count("W1p")
            if literal_bytes(data)[1] != self.counts[MIXED]:
                raise BenchError("imaplib fetched %d messages of %s" % (
                    literal_bytes(data)[1], MIXED))
            mt = self.wan_mount(t, "w1-" + t.name, rl)
            try:
                mark()
                r["W1i"].append(run_timed(ls_cmd(os.path.join(mt.path, MIXED)))[0])
                count("W1i")
                if check and count_files(os.path.join(mt.path, MIXED)) != self.counts[MIXED]:
                    raise BenchError("imapfs lists the wrong number of files in " + MIXED)
                mt = self.wan_remount(t, r, rl, mt, check, mark, count)
            finally:
                self.wan_unmount(mt)
            log("  W1 ls -l cold %.3fs / imaplib SELECT+FETCH %.3fs (round trip %.1fms); W6 "
                "after a remount %.3fs / floor's first %.3fs + round trip" % (
                    r["W1i"][-1], r["W1p"][-1], r["RTT"][-1] * 1000, r["W6i"][-1],
                    r["W6f"][-1]))
            # W2 and W2t: cold cat of a large message (binary, text)
            for key, folder, uid, size in (("W2", HUGE, self.huge_uid, self.huge_size),
                                           ("W2t", HUGETEXT, self.huge_text_uid,
                                            self.huge_text_size)):
                self.wan_cat_one(t, r, rl, m, key, folder, uid, size, check, mark, count)
            # W3 and W4: every message of the small folder, whole and first 4 KB
            settle()
            select_folder(m, SMALL)
            mark()
            t0 = time.perf_counter()
            data = imap_ok(m, *m.uid("FETCH", "1:*", "BODY.PEEK[]"), "UID FETCH")
            r["W3p"].append(time.perf_counter() - t0)
            count("W3p")
            if literal_bytes(data) != (self.totals[SMALL], s["small"]):
                raise BenchError("imaplib fetched %r of %s" % (literal_bytes(data), SMALL))
            mt = self.wan_mount(t, "w3-" + t.name, rl)
            try:
                d = os.path.join(mt.path, SMALL)
                os.listdir(d)
                mark()
                r["W3i"].append(run_timed(cat_cmd(d), timeout=900)[0])
                count("W3i")
                if check and cat_bytes(d) != self.totals[SMALL]:
                    raise BenchError("cat of imapfs %s gave the wrong number of bytes" % SMALL)
            finally:
                self.wan_unmount(mt)
            head_total = sum(min(4096, x) for x in self.small_sizes)
            settle()
            mark()
            t0 = time.perf_counter()
            data = imap_ok(m, *m.uid("FETCH", "1:*", "BODY.PEEK[]<0.4096>"), "UID FETCH")
            r["W4p"].append(time.perf_counter() - t0)
            count("W4p")
            if literal_bytes(data) != (head_total, s["small"]):
                raise BenchError("imaplib fetched %r of %s (partial)" % (
                    literal_bytes(data), SMALL))
            mt = self.wan_mount(t, "w4-" + t.name, rl)
            try:
                d = os.path.join(mt.path, SMALL)
                os.listdir(d)
                mark()
                r["W4i"].append(run_timed(head_cmd(d), timeout=900)[0])
                count("W4i")
                if check and shell_bytes('cd "$1" && head -q -c 4096 -- * | wc -c',
                                         d) != head_total:
                    raise BenchError("head of imapfs %s gave the wrong number of bytes" % SMALL)
            finally:
                self.wan_unmount(mt)
            log("  W3 cat * cold %.3fs / imaplib FETCH %.3fs; W4 head -c 4096 cold %.3fs / "
                "imaplib FETCH <0.4096> %.3fs" % (r["W3i"][-1], r["W3p"][-1], r["W4i"][-1],
                                                   r["W4p"][-1]))
            # W5: mv of one message (and of MV_BATCH in one command)
            settle()
            select_folder(m, MOVESRC, readonly=False)
            left = uids(m)
            if len(left) < 1 + (MV_BATCH if batch else 0):
                raise BenchError("%s ran out of messages" % MOVESRC)
            mark()
            t0 = time.perf_counter()
            imap_ok(m, *m.uid("MOVE", str(left[0]), MOVEDST), "UID MOVE")
            r["W5p"].append(time.perf_counter() - t0)
            count("W5p")
            if batch:
                uidset = ",".join(str(u) for u in left[1:1 + MV_BATCH])
                t0 = time.perf_counter()
                imap_ok(m, *m.uid("MOVE", uidset, MOVEDST), "UID MOVE")
                r["MVp"].append((time.perf_counter() - t0) / MV_BATCH)
        finally:
            try:
                m.logout()
            except Exception:
                pass
        mt = self.wan_mount(t, "w5-" + t.name, rl)
        try:
            src, dst = os.path.join(mt.path, MOVESRC), os.path.join(mt.path, MOVEDST)
            names = sorted(os.listdir(src))
            before = len(os.listdir(dst))
            if len(names) < 1 + (MV_BATCH if batch else 0):
                raise BenchError("%s ran out of messages" % MOVESRC)
            mark()
            r["W5i"].append(run_timed(["mv", "--", os.path.join(src, names[0]), dst + "/"],
                                      timeout=300)[0])
            count("W5i")
            moved = 1
            if batch:
                argv = (["mv", "--"] + [os.path.join(src, n) for n in names[1:1 + MV_BATCH]] +
                        [dst + "/"])
                r["MVi"].append(run_timed(argv, timeout=900)[0] / MV_BATCH)
                moved += MV_BATCH
            got = len(os.listdir(src)), len(os.listdir(dst))
            if got != (len(names) - moved, before + moved):
                raise BenchError("after mv imapfs lists %r in %s and %s, expected %r" % (
                    got, MOVESRC, MOVEDST, (len(names) - moved, before + moved)))
        finally:
            self.wan_unmount(mt)
        log("  W5 mv cold %.3fs / imaplib UID MOVE %.3fs%s" % (
            r["W5i"][-1], r["W5p"][-1], "; mv of %d: %.1f ms / message, UID MOVE of %d: "
            "%.1f ms / message" % (MV_BATCH, r["MVi"][-1] * 1000, MV_BATCH,
                                   r["MVp"][-1] * 1000) if batch else ""))

    # -- write-back ----------------------------------------------------------------
    def wb_reset(self):
        """Every --writeback message back in its source folder, flags \\Seen
        only (straight to Dovecot, not through the relay)."""
        m = self.plain.imaplib_connect()
        try:
            for src, others in ((WB_MV, (WB_MVDST,)), (WB_RM, (WB_TRASH,)), (WB_FLAG, ()),
                                (WB_OFF, (WB_OFFDST, WB_OFFTRASH))):
                for o in others:
                    if select_folder(m, o, readonly=False):
                        imap_ok(m, *m.uid("MOVE", "1:*", src), "UID MOVE from %s" % o)
                n = select_folder(m, src, readonly=False)
                if n != self.counts[src]:
                    raise BenchError("%s holds %d messages after the reset, expected %d" % (
                        src, n, self.counts[src]))
                imap_ok(m, *m.uid("STORE", "1:*", "FLAGS.SILENT", "(\\Seen)"), "UID STORE")
        finally:
            m.logout()

    def wait_server(self, m, ready, what, mt=None, pause=0.01):
        """Ask ready(m) until it holds, pause seconds between the answer and
        the next question; returns time.perf_counter() at the answer that
        held.  BenchError after WB_WAIT_S."""
        give_up = time.perf_counter() + WB_WAIT_S
        while True:
            ok = ready(m)
            now = time.perf_counter()
            if ok:
                return now
            if now > give_up:
                raise BenchError("%s: the server did not have it within %d s%s" % (
                    what, WB_WAIT_S, "; .status: %r" % (wb_status(mt),) if mt else ""))
            time.sleep(pause)

    def wb_settled(self, mt, d, what):
        """fsync of folder d (untimed): everything on the server, then the
        mount's .status must say so; returns its last batch."""
        try:
            fsync_dir(d)
        except OSError as e:
            raise BenchError("%s: fsync of %s: %s; .status: %r" % (what, d, e, wb_status(mt)))
        state, batch, conflicts = wb_status(mt)
        if conflicts or ", 0 unsent," not in state:
            raise BenchError("%s: after fsync .status says %r %r" % (what, state, conflicts))
        return batch

    def measure_writeback(self, runs, rtt_ms, mbit):
        """--writeback: WB1-WB4 over the relay at one WAN profile."""
        r = {k: [] for k in ("RTT", "WBbud", "WB1i", "WB1s", "WB1f", "WB2i", "WB2s", "WB2f",
                             "WB3i", "WB3s", "WB3f", "WB4max", "WB4p99", "WB4r")}
        self.wb_notes = {"batch": {}, "offline": [], "delay": None,
                         "fs": first_line(["stat", "-f", "-c", "%T", self.work])}
        m = self.plain.imaplib_connect()      # Dovecot's caches of the folders
        try:
            for f in (WB_MV, WB_RM, WB_FLAG, WB_OFF):
                select_folder(m, f)
                imap_ok(m, *m.uid("FETCH", "1:*", META), "warm-up FETCH")
        finally:
            m.logout()
        self.profile_rtt = rtt_ms / 1000.0
        self.wb_relay = self.start_relay("wb", rtt_ms, mbit)
        try:
            for i in range(runs):
                check_deadline("write-back round %d" % (i + 1))
                log("[write-back] round %d/%d" % (i + 1, runs))
                self.wb_round(r, rtt_ms, mbit)
        finally:
            self.stop_relay(self.wb_relay)
        return r

    def wb_quiet(self):
        self.wb_relay.wait_quiet(max(0.3, 3 * self.profile_rtt), 30)

    def wb_item(self, r, key, mt, m, argv, ready, rtts, d):
        """One timed command under -o writeback (key + "i"), then the time
        from its return until ready(m) holds on the relayed imaplib
        connection, less rtts round trips (key + "f")."""
        self.wb_quiet()
        sec = run_timed(argv, timeout=900)[0]
        t_ret = time.perf_counter()
        t_seen = self.wait_server(m, ready, key, mt)
        r[key + "i"].append(sec)
        r[key + "f"].append(max(0.0, t_seen - t_ret - rtts * r["RTT"][-1]))
        self.wb_notes["batch"].setdefault(key, []).append(self.wb_settled(mt, d, key))
        log("  %s %.3fs, on the server %.3fs later (less %d RTT)" % (
            key, sec, r[key + "f"][-1], rtts))

    def wb_round(self, r, rtt_ms, mbit):
        s = self.sizes
        n, ns, off = s["wb"], s["wb_sync"], s["wb_off"]
        scale = n / ns
        flag = b"\\Flagged"
        t = Transport("plain", self.env, self.work, self.pwfile, port=self.wb_relay.ports[0])
        self.wb_reset()
        settle()

        def paths(d, names):
            return [os.path.join(d, x) for x in names]

        def listed(mt, folders):
            dirs = {f: os.path.join(mt.path, f) for f in folders}
            return dirs, {f: sorted(os.listdir(d)) for f, d in dirs.items()}

        # WB1-WB3 under -o writeback, watched by imaplib through the relay
        mt = self.wan_mount(t, "wb-%d" % self.seq, self.wb_relay, ["writeback",
                                                                     "trash=" + WB_TRASH])
        m = None
        try:
            m = t.imaplib_connect()
            r["RTT"].append(round_trip(m, 5))
            state = wb_status(mt)[0]
            hit = re.search(r"delay (\d+) s", state)
            if not hit:
                raise BenchError("no `writeback:` line in .status: %r" % state)
            self.wb_notes["delay"] = delay = int(hit.group(1))
            r["WBbud"].append(2 * r["RTT"][-1] + 1.0 + delay)
            dirs, names = listed(mt, (WB_MV, WB_MVDST, WB_RM, WB_TRASH, WB_FLAG))
            for f in (WB_MV, WB_RM, WB_FLAG):
                if len(names[f]) != n + ns:
                    raise BenchError("imapfs lists %d files in %s, expected %d" % (
                        len(names[f]), f, n + ns))
            # WB1: mv
            base = status_messages(m, WB_MVDST)
            self.wb_item(r, "WB1", mt, m, ["mv", "--"] + paths(dirs[WB_MV], names[WB_MV][:n]) +
                         [dirs[WB_MVDST] + "/"],
                         lambda m: status_messages(m, WB_MVDST) == base + n, 1, dirs[WB_MVDST])
            got = len(os.listdir(dirs[WB_MV])), len(os.listdir(dirs[WB_MVDST]))
            if got != (ns, base + n):
                raise BenchError("after mv imapfs lists %r in %s and %s, expected %r" % (
                    got, WB_MV, WB_MVDST, (ns, base + n)))
            # WB2: rm (to the trash)
            base = status_messages(m, WB_TRASH)
            self.wb_item(r, "WB2", mt, m, ["rm", "--"] + paths(dirs[WB_RM], names[WB_RM][:n]),
                         lambda m: status_messages(m, WB_TRASH) == base + n, 1, dirs[WB_RM])
            if len(os.listdir(dirs[WB_RM])) != ns:
                raise BenchError("after rm imapfs lists %d files in %s, expected %d" % (
                    len(os.listdir(dirs[WB_RM])), WB_RM, ns))
            # WB3: flags
            select_folder(m, WB_FLAG)
            base = flagged_count(m)
            self.wb_item(r, "WB3", mt, m, ["setfattr", "-n", "user.imap.flags", "-v",
                                           flag.decode()] + paths(dirs[WB_FLAG],
                                                                  names[WB_FLAG][:n]),
                         lambda m: flagged_count(m) == base + n, 2, dirs[WB_FLAG])
        finally:
            if m is not None:
                try:
                    m.logout()
                except Exception:
                    pass
            self.wan_unmount(mt)
        # the same without write-back, on ns messages each (what is left)
        settle()
        mt = self.wan_mount(t, "wbs-%d" % self.seq, self.wb_relay, ["trash=" + WB_TRASH])
        d = self.plain.imaplib_connect()      # checks only, straight to Dovecot
        try:
            dirs, names = listed(mt, (WB_MV, WB_MVDST, WB_RM, WB_TRASH, WB_FLAG))
            steps = (("WB1s", "mv", ["mv", "--"] + paths(dirs[WB_MV], names[WB_MV][:ns]) +
                      [dirs[WB_MVDST] + "/"], lambda: status_messages(d, WB_MVDST)),
                     ("WB2s", "rm", ["rm", "--"] + paths(dirs[WB_RM], names[WB_RM][:ns]),
                      lambda: status_messages(d, WB_TRASH)))
            for key, what, argv, count in steps:
                base = count()
                self.wb_quiet()
                r[key].append(run_timed(argv, timeout=900)[0] * scale)
                if count() != base + ns:
                    raise BenchError("%s of %d without write-back: the server has %d, "
                                     "expected %d" % (what, ns, count(), base + ns))
            # WB3s: ns messages WB3 did not flag
            fresh = [x for x in names[WB_FLAG]
                     if flag not in os.getxattr(os.path.join(dirs[WB_FLAG], x),
                                                "user.imap.flags")][:ns]
            if len(fresh) != ns:
                raise BenchError("%s has %d messages without \\Flagged, expected %d" % (
                    WB_FLAG, len(fresh), ns))
            select_folder(d, WB_FLAG)
            base = flagged_count(d)
            self.wb_quiet()
            r["WB3s"].append(run_timed(["setfattr", "-n", "user.imap.flags", "-v", flag.decode()] +
                                       paths(dirs[WB_FLAG], fresh), timeout=900)[0] * scale)
            if flagged_count(d) != base + ns:
                raise BenchError("setfattr of %d without write-back: %d flagged, expected %d" % (
                    ns, flagged_count(d), base + ns))
        finally:
            try:
                d.logout()
            except Exception:
                pass
            self.wan_unmount(mt)
        for k in ("WB1", "WB2", "WB3"):
            log("  %s without write-back: %.2fs for %d, x %g = %.2fs" % (
                k, r[k + "s"][-1] / scale, ns, scale, r[k + "s"][-1]))
        # WB4: offline (the relay stopped), then WB4r: the relay back
        settle()
        mt = self.wan_mount(t, "wbo-%d" % self.seq, self.wb_relay,
                            ["writeback", "timeout=5", "trash=" + WB_OFFTRASH])
        d = self.plain.imaplib_connect()
        try:
            dirs, names = listed(mt, (WB_OFF, WB_OFFDST, WB_OFFTRASH))
            if len(names[WB_OFF]) != off:
                raise BenchError("imapfs lists %d files in %s, expected %d" % (
                    len(names[WB_OFF]), WB_OFF, off))
            self.wb_quiet()
            listen = self.wb_relay.ports
            self.stop_relay(self.wb_relay)
            t0 = time.monotonic()
            while not wb_status(mt)[0].endswith("offline") and time.monotonic() - t0 < 15:
                time.sleep(0.05)
            went = wb_status(mt)[0].endswith("offline")
            went_s = time.monotonic() - t0
            ts, done = [], [0, 0, 0]
            for i, x in enumerate(names[WB_OFF]):
                p = os.path.join(dirs[WB_OFF], x)
                t1 = time.perf_counter()
                if i % 3 == 0:
                    os.rename(p, os.path.join(dirs[WB_OFFDST], x))
                elif i % 3 == 1:
                    os.unlink(p)
                else:
                    os.setxattr(p, "user.imap.flags", flag)
                ts.append(time.perf_counter() - t1)
                done[i % 3] += 1
            after = wb_status(mt)[0]
            r["WB4max"].append(max(ts))
            r["WB4p99"].append(nearest_rank(ts, 0.99))
            self.wb_notes["offline"].append((went, went_s, after))
            self.wb_relay = self.start_relay("wb-back", rtt_ms, mbit, listen=listen)
            t0 = time.perf_counter()
            want = (done[0], done[1], done[2], off - done[0] - done[1])

            def landed(d):
                n_src = select_folder(d, WB_OFF)
                typ, data = d.uid("SEARCH", "FLAGGED")
                fl = len(imap_ok(d, typ, data, "UID SEARCH FLAGGED")[0].split())
                return (status_messages(d, WB_OFFDST), status_messages(d, WB_OFFTRASH), fl,
                        n_src) == want
            r["WB4r"].append(self.wait_server(d, landed, "WB4r", mt, pause=0.05) - t0)
            self.wb_settled(mt, dirs[WB_OFF], "WB4")
            log("  WB4 %d changes offline (%s after %.1fs): slowest %.2fms, p99 %.2fms; "
                "WB4r on the server %.2fs after the relay was back" % (
                    off, "offline" if went else "not offline", went_s, r["WB4max"][-1] * 1000,
                    r["WB4p99"][-1] * 1000, r["WB4r"][-1]))
        finally:
            try:
                d.logout()
            except Exception:
                pass
            self.wan_unmount(mt)

    # -- scale -------------------------------------------------------------------
    def measure_scale(self, runs):
        """S1/S2 on the 1,000,000-message folder, S3 on 100,000 folders (plain
        IMAP on loopback only)."""
        t = self.plain
        r = {k: [] for k in ("S1rss", "S1ls", "S2i", "S2f", "S2fc", "S3i", "S3p")}
        n_big = self.counts[BIG]
        step = 3600
        # Dovecot's imap process caches the Subject of every message it is
        # asked for: a million of them outgrow the default 256 MB address
        # space limit and the process dies in the middle of the first FETCH
        reconfigure(t.env, "service imap {\n  vsz_limit = 2G\n}\n")
        time.sleep(1)
        log("[scale] warm-up: one streamed metadata FETCH of %s" % BIG)
        m = t.imaplib_connect(timeout=step)
        try:
            select_folder(m, BIG)
            t0 = time.perf_counter()
            n = streamed_fetch(m, META, step)
            if n != n_big:
                raise BenchError("the streamed FETCH gave %d messages of %s" % (n, BIG))
            log("  %d messages in %.1fs" % (n, time.perf_counter() - t0))
        finally:
            m.logout()
        spec = None
        for i in range(runs):
            check_deadline("scale round %d" % (i + 1))
            log("[scale] round %d/%d: %s" % (i + 1, runs, BIG))
            settle()
            cache = self.fresh_dir("cache")
            mt = self.mount(t, cache, "s1-%d" % i, timeout=600)
            try:
                d = os.path.join(mt.path, BIG)
                r["S1ls"].append(run_timed(ls_cmd(d), timeout=step)[0])
                r["S1rss"].append(mt.vm_hwm_kib() / 1024)
                if spec is None:
                    spec = os.path.join(self.work, "floor-%s.spec" % BIG)
                    t0 = time.monotonic()
                    if floor_spec(d, spec) != n_big:
                        raise BenchError("imapfs lists the wrong number of files in " + BIG)
                    log("  floor spec from the listing (%.1fs)" % (time.monotonic() - t0))
            finally:
                mt.stop(timeout=600)
            log("  S1 ls -l cold %.2fs, VmHWM %.1f MiB" % (r["S1ls"][-1], r["S1rss"][-1]))
            settle()
            mt = self.mount(t, cache, "s2-%d" % i, timeout=600)
            try:
                r["S2i"].append(run_timed(ls_cmd(os.path.join(mt.path, BIG)), timeout=step)[0])
            finally:
                mt.stop(timeout=600)
            shutil.rmtree(cache)
            fl = self.mount_floor(spec, "floor-s2-%d" % i, timeout=600)
            try:
                # the first listing after its mount starts, as imapfs's
                # after the remount does, with no inode or dentry cached
                r["S2fc"].append(run_timed(ls_cmd(fl.path), timeout=step)[0])
                r["S2f"].append(run_timed(ls_cmd(fl.path), timeout=step)[0])
            finally:
                fl.stop(timeout=600)
            log("  S2 ls -l after remount %.2fs / floor warm %.2fs, its first after mounting %.2fs"
                % (r["S2i"][-1], r["S2f"][-1], r["S2fc"][-1]))
        self.folders_account(r, runs)
        return r

    def folders_account(self, r, runs):
        """A second Dovecot whose account has s["folders"] folders, made as
        Maildir++ directories straight on disk (Dovecot lists what is there)."""
        nf = self.sizes["folders"]
        log("[scale] starting a second Dovecot for %d folders" % nf)
        env = self.start_dovecot("dovecot-folders")
        # The folders are made on disk, behind Dovecot's back.  Once the
        # warm-up LIST has put them in its mailbox list index, LIST may be
        # answered from that index alone, as a server that keeps its folder
        # list in a database does (else every LIST stats every directory:
        # 2.2 s per 20,000 folders here, against 0.15 s)
        reconfigure(env, "mailbox_list_index_very_dirty_syncs = yes\n")
        time.sleep(1)
        pwfile = os.path.join(self.work, "password-folders")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(env["PASSWORD"] + "\n")
        t = Transport("plain", env, self.work, pwfile)
        uid, gid = int(env["MAIL_UID"]), int(env["MAIL_GID"])
        chown = os.geteuid() == 0
        t0 = time.monotonic()
        for i in range(nf):
            if i % 10000 == 0:
                check_deadline("making folders")
            base = os.path.join(env["MAIL_DIR"], "Project %06d" % (i + 1))
            for p in (base, base + "/cur", base + "/new", base + "/tmp"):
                os.mkdir(p, 0o700)
                if chown:
                    os.chown(p, uid, gid)
        log("  made %d folders (%.1fs)" % (nf, time.monotonic() - t0))
        for i in range(runs + 1):          # the first is the warm-up
            check_deadline("folders round %d" % i)
            m = t.imaplib_connect(timeout=1800)
            try:
                t0 = time.perf_counter()
                typ, data = m.list('""', "*")
                list_sec = time.perf_counter() - t0
                imap_ok(m, typ, data, "LIST")
            finally:
                m.logout()
            if len(data) < nf:
                raise BenchError("LIST gave %d folders, expected %d" % (len(data), nf))
            if i:
                r["S3p"].append(list_sec)
            cache = self.fresh_dir("cache")
            mnt = self.fresh_dir("mnt")
            opts = t.imapfs_opts(cache, self.extra)
            argv = [self.binary, "-o", ",".join(opts), "-f", t.imapfs_url(), mnt]
            t0 = time.perf_counter()
            mt = Mount(argv, mnt, self.work, "s3-%d" % i).start(timeout=600)
            try:
                _, p = run_timed(["ls", mnt], timeout=600, stdout=subprocess.PIPE)
                sec = time.perf_counter() - t0
                n = p.stdout.count(b"\n")
            finally:
                mt.stop(timeout=600)
            shutil.rmtree(cache)
            if n < nf:
                raise BenchError("imapfs lists %d folders at the root, expected %d" % (n, nf))
            if i:
                r["S3i"].append(sec)
            log("  S3%s mount + ls of the root %.2fs (%d entries) / imaplib LIST %.2fs" % (
                " (warm-up)" if not i else "", sec, n, list_sec))

    # -- cleanup -------------------------------------------------------------
    def cleanup(self):
        for mt in list(Mount.live):
            mt.kill()
        for rl in list(self.relays):
            self.stop_relay(rl)
        for d in self.dovecot_dirs:
            if os.path.exists(os.path.join(d, "env.json")):
                subprocess.run([PYTHON, DOVECOT_ENV, "stop", d],
                               stdout=subprocess.DEVNULL, timeout=60)
        if self.work:
            if self.args.keep:
                log("kept %s" % self.work)
            else:
                shutil.rmtree(self.work, ignore_errors=True)
        if self.shm:
            shutil.rmtree(self.shm, ignore_errors=True)


# --------------------------------------------------------------------------
# report

def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        load = "load average %s at the start" % " ".join(
            "%.2f" % x for x in os.getloadavg())
    except OSError:
        load = "load average ?"
    return "nproc %d, %s, %s RAM, Linux %s; %s" % (nproc, model, mem,
                                                    platform.release(), load)


def first_line(argv):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode(errors="replace").strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def fmt_s(x):
    if x >= 10:
        return "%.1f s" % x
    if x >= 1:
        return "%.2f s" % x
    if x >= 0.01:
        return "%.0f ms" % (x * 1000) if x >= 0.1 else "%.1f ms" % (x * 1000)
    return "%.2f ms" % (x * 1000)


def fmt_bytes(n):
    if n >= 1e6:
        return "%.2f MB" % (n / 1e6)
    if n >= 1e3:
        return "%.1f KB" % (n / 1e3)
    return "%d B" % n


def ratio_row(pid, what, imapfs, peer, peer_time, ratio, tgt):
    # two decimals, more for the small ratios and targets of --writeback
    return "| %s | %s | %s | %s | %s | %s | ≤ %s | %s |" % (
        pid, what, imapfs, peer, peer_time, "%.2f" % ratio if ratio >= 0.01 else "%.4f" % ratio,
        "%.1f" % tgt if tgt >= 0.1 else "%.2f" % tgt, "ok" if ratio <= tgt else "**miss**")


def ratio_rows(r, rows, units=fmt_s, targets=TARGETS):
    """rows: (id, what, imapfs key, peer text, peer key); medians of each key."""
    med = {k: statistics.median(v) for k, v in r.items() if v}
    out = []
    for pid, what, ki, peer, kp in rows:
        if ki not in med or kp not in med:
            continue
        ratio = med[ki] / med[kp] if med[kp] > 0 else float("inf")
        out.append(ratio_row(pid, what, units(med[ki]), peer, units(med[kp]), ratio,
                             targets[pid]))
    return med, out


def runs_line(r, raw=()):
    return "; ".join("%s %s" % (k, "/".join(
        ("%.1f" % x) if k in raw else fmt_s(x).replace(" ", "") for x in v))
        for k, v in r.items() if v)


HEAD = ["| # | what | imapfs | peer | peer time | ratio | target | |",
        "|---|---|---:|---|---:|---:|---:|---|"]


def table(r, sizes, transport, counts, totals):
    mix, many = "{:,}".format(sizes["mixed"]), "{:,}".format(sizes["many"])
    real = "{:,}".format(sizes["real"])
    huge = "%g MB" % (sizes["huge"] / MiB)
    rows = [
        ("P1", "cold `ls -l` of the %s-message folder" % mix, "P1i",
         "imaplib `UID FETCH 1:*` (UID FLAGS RFC822.SIZE INTERNALDATE subject)", "P1p"),
        ("P1f", "the same, against the floor", "P1i",
         "floorfs warm `ls -l` + imaplib EXAMINE and that FETCH", "P1fp"),
        ("P1r", "cold `ls -l` of the realistic %s-message folder" % real, "P1ri",
         "imaplib `UID FETCH 1:*` (as P1)", "P1rp"),
        ("P2", "warm `ls -l` of the same folder", "P2i",
         "`ls -l` of a local directory of %s files" % mix, "P2p"),
        ("P2f", "the same, against the floor", "P2i",
         "floorfs warm `ls -l` (the same names and sizes)", "F"),
        ("P3", "cold `cat` of every message of the %s-message folder" % mix, "P3i",
         "mbsync (`FSync no`) full pull into an empty Maildir", "P3p"),
        ("P3r", "cold `cat` of every message of the realistic folder (%.0f MB)" % (
            totals.get(REAL, 0) / 1e6), "P3ri", "mbsync (as P3)", "P3rp"),
        ("P3t", "the same, imapfs's cache_dir on tmpfs", "P3ti",
         "mbsync (as P3) into a Maildir on tmpfs", "P3tp"),
        ("P4", "cold `cat` of the %s message" % huge, "P4i",
         "curl `%s://…/%s;UID=n`" % ("imap" if transport == "plain" else "imaps", HUGE),
         "P4p"),
        ("P5", "warm `cat` of every message (after P3)", "P5i",
         "`cat` of the same messages in a local Maildir", "P5p"),
        ("P6", "remount (same cache_dir), `ls -l` of the %s-message folder" % mix, "P6i",
         "P1's cold imapfs `ls -l`", "P1i"),
        ("P6f", "the same, against the floor", "P6i",
         "floorfs warm `ls -l` + one round trip (NOOP)", "P6fp"),
        ("P6c", "the same, against the floor's first `ls -l` after its own mount", "P6i",
         "floorfs first `ls -l` after mounting + one round trip (NOOP)", "P6cp"),
    ]
    med, out = ratio_rows(r, rows)
    out = HEAD + out
    if "P3fp" in med and "P3ti" in med:
        out.append("| P3f | P3t against the floor (what FUSE alone costs) | %s | floorfs first "
                   "`cat` of the same names and sizes after its mount | %s | %.2f | (reported) | |"
                   % (fmt_s(med["P3ti"]), fmt_s(med["P3fp"]), med["P3ti"] / med["P3fp"]))
    if "P7rss" in med:
        out.append("| P7 | peak RSS (VmHWM) of imapfs after `ls -l` of the %s-message "
                   "folder (`ls -l` took %s) | %.1f MiB | — | — | — | ≤ %d MiB | %s |" % (
                       many, fmt_s(med["P7ls"]), med["P7rss"], P7_TARGET_MIB,
                       "ok" if med["P7rss"] <= P7_TARGET_MIB else "**miss**"))
    out += ratio_rows(r, [
        ("Q1", "cold `ls -l` of `.search/%s` in the %s-message folder (%s hits, "
         "the folder never listed)" % (Q1_QUERY, many, "{:,}".format(
             counts.get(MANY, 0) // 100)), "Q1i",
         "imaplib (logged in) EXAMINE + `UID SEARCH` + `UID FETCH` of the hits (as P1)",
         "Q1p")])[1]
    return "\n".join(out), runs_line(r, ("P7rss",))


# The issue's target for text-heavy mail with COMPRESS on the slow profile:
# W2t and W3 against imaplib's uncompressed FETCH
COMPRESSED_TARGET = 0.6


def wan_table(r, sizes, counts, totals, batch, compressed_slow):
    """compressed_slow: the 150 ms / 5 Mbit/s profile with imapfs compressing,
    where W2t and W3 (text-heavy) have COMPRESSED_TARGET."""
    mix = "{:,}".format(counts[MIXED])
    rows = [
        ("W1", "cold `ls -l` of the %s-message folder" % mix, "W1i",
         "imaplib SELECT + `UID FETCH 1:*` (UID FLAGS RFC822.SIZE INTERNALDATE subject)",
         "W1p"),
        ("W2", "cold `cat` of the %g MB message" % (sizes["huge"] / MiB), "W2i",
         "imaplib `UID FETCH n BODY.PEEK[]`", "W2p"),
        ("W2t", "cold `cat` of the %.1f MB text-heavy message (a log attached as text)" % (
            totals.get(HUGETEXT, 0) / 1e6), "W2ti", "imaplib `UID FETCH n BODY.PEEK[]`, "
         "uncompressed", "W2tp"),
        ("W3", "cold `cat` of every message of the %d-message folder (%.2f MB)" % (
            counts[SMALL], totals[SMALL] / 1e6), "W3i",
         "imaplib `UID FETCH 1:* BODY.PEEK[]`", "W3p"),
        ("W4", "`head -c 4096` of every message of that folder (cold)", "W4i",
         "imaplib `UID FETCH 1:* BODY.PEEK[]<0.4096>`", "W4p"),
        ("W5", "`mv` of one message to another folder", "W5i", "imaplib `UID MOVE`", "W5p"),
        ("W6", "`ls -l` of the %s-message folder after a remount (same cache_dir)" % mix, "W6i",
         "floorfs first `ls -l` after its own mount + one round trip (NOOP)", "W6p"),
    ]
    targets = dict(TARGETS)
    if compressed_slow:
        targets.update({"W2t": COMPRESSED_TARGET, "W3": COMPRESSED_TARGET})
    med, out = ratio_rows(r, rows, targets=targets)
    out = HEAD + out
    if batch and "MVi" in med:
        out.append("| mv%d | `mv` of %d messages in one command, per message | %s | imaplib "
                   "one `UID MOVE` of %d UIDs, per message | %s | %.2f | (reported) | |" % (
                       MV_BATCH, MV_BATCH, fmt_s(med["MVi"]), MV_BATCH, fmt_s(med["MVp"]),
                       med["MVi"] / med["MVp"] if med["MVp"] > 0 else float("inf")))
    note = "Round trip through the relay (imaplib NOOP): %s." % fmt_s(med.get("RTT", 0))
    got = ["%s %s / %s" % (w, fmt_bytes(med[w + "ib"]), fmt_bytes(med[w + "pb"]))
           for w in ("W1", "W2", "W2t", "W3", "W4", "W5", "W6") if w + "ib" in med and w + "pb" in med]
    if got:
        note += ("  Bytes from the server during each timed step (imapfs / imaplib, all "
                 "connections): %s." % "; ".join(got))
    return "\n".join(out) + "\n\n" + note, runs_line(
        {k: v for k, v in r.items() if not k.endswith("b")})


def wb_table(r, sizes, notes):
    n = "{:,}".format(sizes["wb"])
    ns, k = sizes["wb_sync"], sizes["wb"] / sizes["wb_sync"]
    sync = "the same without `-o writeback` (synchronous), on %d messages × %g" % (ns, k)
    delay = notes.get("delay")
    budget = "2 × RTT + 1 s + writeback_delay (%s s)" % delay
    rows = [
        ("WB1", "`mv -- f1 … f%s DEST/` (one command, both folders listed), `-o writeback`: "
         "until mv returns" % n, "WB1i", sync, "WB1s"),
        ("WB1f", "from mv's return until imaplib (`STATUS DEST (MESSAGES)` every 10 ms, less "
         "one RTT) sees all %s in the destination" % n, "WB1f", budget, "WBbud"),
        ("WB2", "`rm -- f1 … f%s` (to the trash, `-o trash=%s`), `-o writeback`" % (n, WB_TRASH),
         "WB2i", sync, "WB2s"),
        ("WB2f", "from rm's return until imaplib (`STATUS`, as WB1f) sees all %s in the "
         "trash" % n, "WB2f", budget, "WBbud"),
        ("WB3", "`setfattr -n user.imap.flags -v '\\Flagged' f1 … f%s`, `-o writeback`" % n,
         "WB3i", sync, "WB3s"),
        ("WB3f", "from setfattr's return until imaplib (NOOP + `UID SEARCH FLAGGED`, less two "
         "RTTs) counts %s" % n, "WB3f", budget, "WBbud"),
    ]
    med, out = ratio_rows(r, rows)
    out = HEAD + out
    if r.get("WB4max"):
        worst = max(r["WB4max"])
        out.append("| WB4 | %d changes with the relay stopped (the mount offline, "
                   "`-o timeout=5`), `os.rename` to another folder, `os.unlink`, "
                   "`os.setxattr` in turn, each timed: the slowest of all runs (p99) | %s "
                   "(p99 %s) | — | — | — | < %d ms | %s |" % (
                       sizes["wb_off"], fmt_s(worst), fmt_s(med["WB4p99"]), WB4_TARGET_MS,
                       "ok" if worst * 1000 < WB4_TARGET_MS else "**miss**"))
    if "WB4r" in med:
        out.append("| WB4r | the relay started again on its port: until imaplib (straight to "
                   "the server) sees all %d changes there | %s | — | — | — | ≤ %g s | %s |" % (
                       sizes["wb_off"], fmt_s(med["WB4r"]), WB4R_TARGET_S,
                       "ok" if med["WB4r"] <= WB4R_TARGET_S else "**miss**"))
    note = ("Round trip through the relay (imaplib NOOP): %s; the budget of the f items "
            "(2 × RTT + 1 s + writeback_delay): %s.  The issue asks for everything on the "
            "server within 2 round trips + 1 s of the flush starting; the flush starts at "
            "most writeback_delay after the last change (0.2 s after a burst ends), so from "
            "the command's return the budget adds writeback_delay." % (
                fmt_s(med.get("RTT", 0)), fmt_s(med.get("WBbud", 0))))
    batches = notes.get("batch", {})
    if batches:
        note += ("  `.status` after each item (`writeback last batch`): %s." % "; ".join(
            "%s: %s" % (key, " / ".join(b or "(none)" for b in batches[key]))
            for key in sorted(batches)))
    for went, went_s, after in notes.get("offline", []):
        note += ("  WB4: the mount %s %.1f s after the relay stopped; after the changes "
                 "`.status` said `%s`." % ("showed offline" if went else
                                          "did **not** show offline", went_s, after))
    if notes.get("fs"):
        note += "  The journal (cache_dir) is on %s." % notes["fs"]
    return "\n".join(out) + "\n\n" + note, runs_line(r)


def scale_table(r, counts, sizes):
    med = {k: statistics.median(v) for k, v in r.items() if v}
    out = list(HEAD)
    if "S1rss" in med:
        out.append("| S1 | peak RSS (VmHWM) of imapfs after a cold `ls -l` of the %s-message "
                   "folder (`ls -l` took %s) | %.1f MiB | — | — | — | ≤ %d MiB | %s |" % (
                       "{:,}".format(counts[BIG]), fmt_s(med["S1ls"]), med["S1rss"],
                       S1_TARGET_MIB, "ok" if med["S1rss"] <= S1_TARGET_MIB else "**miss**"))
    _, rows = ratio_rows(r, [("S2", "remount (same cache_dir), `ls -l` of that folder", "S2i",
                              "floorfs warm `ls -l` of the same names and sizes", "S2f"),
                             ("S2c", "the same, against the floor's first `ls -l` after its own "
                              "mount (no inode or dentry cached yet, as after the remount)", "S2i",
                              "floorfs first `ls -l` after mounting", "S2fc")])
    out += rows
    if "S3i" in med:
        out.append("| S3 | mount + `ls` of the root of an account of %s folders (cold cache) "
                   "| %s | imaplib `LIST \"\" *` (for scale) | %s | — | ≤ %g s | %s |" % (
                       "{:,}".format(sizes["folders"]), fmt_s(med["S3i"]), fmt_s(med["S3p"]),
                       S3_TARGET_S, "ok" if med["S3i"] <= S3_TARGET_S else "**miss**"))
    return "\n".join(out), runs_line(r, ("S1rss",))


def report(results, sizes, args, started, b):
    counts, totals = b.counts, b.totals
    data = []
    for f, what in ((MIXED, "mixed sizes"), (HUGE, "large"), (MANY, "small"),
                    (REAL, "realistic (heavy-tailed sizes)"),
                    (HUGETEXT, "large, mostly text"), (SMALL, "realistic, WAN"),
                    (MOVESRC, "small, for mv"), (WB_MV, "small, for write-back mv"),
                    (WB_RM, "small, for write-back rm"), (WB_FLAG, "small, for write-back flags"),
                    (WB_OFF, "small, for write-back offline"), (BIG, "small, scale")):
        if f in counts:
            data.append("%s: %s message%s, %s, %.1f MB" % (
                f, "{:,}".format(counts[f]), "" if counts[f] == 1 else "s", what,
                totals.get(f, 0) / 1e6))
    if args.scale:
        data.append("%s empty folders in a second account" % "{:,}".format(sizes["folders"]))
    head = ["# imapfs benchmark%s" % (" (smoke)" if args.smoke else ""), "",
            "- machine: %s" % machine(),
            "- imapfs: %s (`%s`)%s" % (first_line([args.imapfs_bin, "-V"]), args.imapfs_bin,
                                       (", -o " + args.imapfs_opts) if args.imapfs_opts
                                       else ""),
            "- peers: %s; %s; %s; Python %s imaplib; server %s%s; floor: bench/floorfs "
            "(libfuse %s)" % (
                first_line(["mbsync", "--version"]), first_line(["curl", "--version"]).split(
                    " (")[0], "coreutils " + first_line(["ls", "--version"]).split()[-1],
                platform.python_version(), "Dovecot " + first_line(["dovecot", "--version"])
                .split()[0], " (offers COMPRESS=DEFLATE; mbsync has it turned off)"
                if b.compress else "", first_line(["pkg-config", "--modversion", "fuse3"])),
            "- data: %s" % "; ".join(data),
            "- medians of %s; %s" % (", ".join(
                ["%d run(s) on loopback" % sizes["runs"]] * (not args.no_loopback) +
                ["%d over the WAN relay" % sizes["wan_runs"]] * args.wan +
                ["%d with write-back" % sizes["wb_runs"]] * args.writeback +
                ["%d for scale" % sizes["scale_runs"]] * args.scale),
                time.strftime("%Y-%m-%d", time.localtime(started))),
            "- command: `%s`" % " ".join(["bench/run.py"] + sys.argv[1:]), ""]
    parts = ["\n".join(head)]
    for kind, tname, label, r in results:
        tls = tname == "tls"
        if kind == "loop":
            tab, line = table(r, sizes, tname, counts, totals)
            title = ("Plain IMAP on loopback (`-o plaintext`, `imap://alice@127.0.0.1:PORT`)"
                     if not tls else
                     "IMAPS on loopback (`imaps://alice@localhost:PORT`, `-o ca_file`)")
        elif kind == "wan":
            tab, line = wan_table(r, sizes, counts, totals, "MVi" in r and r["MVi"],
                                  label == PROFILES[-1][0] and "compress=yes" in b.wan_extra)
            title = "WAN %s, %s through bench/relay.py%s" % (
                label, "IMAPS" if tls else "plain IMAP",
                " (imapfs -o %s)" % ",".join(b.wan_extra) if b.wan_extra else "")
        elif kind == "wb":
            tab, line = wb_table(r, sizes, b.wb_notes)
            title = "Write-back (`-o writeback`), WAN %s, plain IMAP through bench/relay.py%s" % (
                label, " (imapfs -o %s)" % ",".join(b.wan_extra) if b.wan_extra else "")
        else:
            tab, line = scale_table(r, counts, sizes)
            title = "Scale (plain IMAP on loopback)"
        parts.append("## %s\n\n%s\n\nAll runs: %s\n" % (title, tab, line))
    parts.append(
        "cold = fresh mount with an empty `-o cache_dir`; warm = the same mount again.\n")
    if any(k == "loop" for k, _, _, _ in results):
        parts.append(
            "Loopback: P6 = unmount and mount again with the same cache_dir.  Each imapfs "
            "mount is timed once all its connections are open (`.status`).  Dovecot was "
            "warmed by every peer and one imapfs pass before measuring; imapfs and peer runs "
            "are interleaved.  `cat` = `cd DIR && cat -- * > /dev/null` for imapfs and the "
            "local Maildir alike; P4 times `cat` of the one file after an untimed listing; "
            "the imaplib peer of P1 is timed in-process from connect to logout (P1f: from "
            "EXAMINE to the end of the FETCH).  The floor (bench/floorfs) serves the same "
            "names and sizes from memory, and was listed once before its timed `ls -l`.  "
            "Q1: a fresh mount (empty cache_dir, the folder never listed) times `ls -l` of "
            "the search directory; its peer is one imaplib connection, logged in before "
            "the timing, EXAMINE to the end of the FETCH of the hits.\n")
    if any(k == "scale" for k, _, _, _ in results):
        parts.append(
            "Scale: S1 is a cold mount; S2 unmounts and mounts again with the same "
            "cache_dir, against the floor listing the same names (listed once before; "
            "S2c: against that first listing after the floor's mount, which like the "
            "remount's has the kernel create every inode and dentry); S3 "
            "is timed from starting imapfs (cold cache) to the end of `ls` of the mount "
            "point, in an account of its own (a second Dovecot) whose folders were made "
            "straight on disk.\n")
    if any(k == "wan" for k, _, _, _ in results):
        parts.append(
            "WAN: every tool goes through the same relay (one link per direction, shared by "
            "all connections: the rate is per direction, half the round trip each way).  "
            "The peer is one imaplib connection, logged in (and the folder selected, except "
            "for W1) before the timing starts; each imapfs run is a fresh mount (logged in, "
            "root listed, quiet on the network for three round trips), and W2-W5 list the "
            "folder before the timing starts.  W4 is "
            "`head -q -c 4096 -- *`.  W5 and mv%d move to another folder (the `mv` returns "
            "when the server has done it).  W6 unmounts W1's mount and mounts again with "
            "its cache_dir (listed at the root, quiet, as the others); its floor is timed "
            "on a fresh mount of floorfs.  imapfs's `-o compress=auto` never compresses to "
            "a loopback address, which the relay is: unless --imapfs-opts names compress=, "
            "imapfs gets `compress=yes` here (what auto picks on a real link of 10 ms or "
            "more), when the server offers COMPRESS and the binary has the option.  "
            "imaplib does not compress.  W2t is W2 on a message that is mostly text "
            "(a log attached as 7bit text/plain); with COMPRESS at 150 ms / 5 Mbit/s, W2t "
            "and W3 (text-heavy) have the issue's target of %g of imaplib's uncompressed "
            "FETCH.\n" % (MV_BATCH, COMPRESSED_TARGET))
    if any(k == "wb" for k, _, _, _ in results):
        parts.append(
            "Write-back: through the relay at the first WAN profile.  Each run moves every "
            "message back first (imaplib `UID MOVE 1:*`, flags set to \\Seen), then: a fresh "
            "mount with `-o writeback,trash=%s` lists the folders (untimed) and times WB1, "
            "WB2 and WB3 one after the other, each followed (untimed) by an fsync of a "
            "folder, which waits until everything is on the server; a fresh mount without "
            "`-o writeback` times the same commands on what is left, %d messages each "
            "(multiplied by %g for the peer column); a fresh mount with "
            "`-o writeback,timeout=5,trash=%s` lists its folders, the relay is stopped "
            "(connection refused), and once `.status` says offline (or after 15 s) WB4 "
            "times each change in-process; then the relay starts again on the same port "
            "(WB4r, polled every 50 ms on a connection straight to Dovecot: the moved ones "
            "in the destination, the removed ones in the trash, the flagged ones flagged).  "
            "The f items are polled on one imaplib connection through the relay, logged in "
            "before: Dovecot's `SEARCH` sees a folder as the end of the previous command "
            "left it, hence the NOOP before it in WB3f.  Setting user.imap.flags to "
            "\\Flagged replaces \\Seen: the change is `-FLAGS (\\Seen)` and "
            "`+FLAGS (\\Flagged)`.\n" % (WB_TRASH, sizes["wb_sync"],
                                          sizes["wb"] / sizes["wb_sync"], WB_OFFTRASH))
    return "\n".join(parts)


def find_floorfs(path):
    if os.access(path, os.X_OK) and os.path.getmtime(path) >= os.path.getmtime(
            os.path.join(REPO, "bench", "floorfs.c")):
        return True
    rel = os.path.relpath(path, REPO)
    p = subprocess.run(["make", "-s", "-C", REPO, rel], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if p.returncode != 0:
        print(p.stdout.decode(errors="replace")[-2000:], file=sys.stderr)
    return os.access(path, os.X_OK)


def main():
    global _deadline
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="small folders, 1 run, one WAN profile (CI: keeps the harness working)")
    ap.add_argument("--runs", type=int,
                    help="measured runs per item (default 5 on loopback, 3 over the WAN and "
                    "with --writeback; smoke 1)")
    ap.add_argument("--tls", action="store_true", help="also measure over IMAPS (more tables)")
    ap.add_argument("--wan", action="store_true",
                    help="also measure through the WAN relay (40 ms / 50 Mbit/s and "
                    "150 ms / 5 Mbit/s; --smoke: the first only)")
    ap.add_argument("--scale", action="store_true",
                    help="also the scale items: 1,000,000 messages, 100,000 folders (long)")
    ap.add_argument("--scale-runs", type=int, help="runs of the scale items (default 1)")
    ap.add_argument("--scale-messages", type=int,
                    help="messages of the scale folder (default 1,000,000; smoke 20,000)")
    ap.add_argument("--scale-folders", type=int,
                    help="folders of the scale account (default 100,000; smoke 2,000)")
    ap.add_argument("--writeback", action="store_true",
                    help="also the write-back items WB1-WB4 (-o writeback; through the relay "
                    "at 40 ms / 50 Mbit/s)")
    ap.add_argument("--no-loopback", action="store_true",
                    help="leave out the loopback table (with --wan, --scale or --writeback)")
    ap.add_argument("--imapfs-opts", default="",
                    help="extra imapfs -o options, e.g. memory_cache=64M,prefetch=8")
    ap.add_argument("--imapfs-bin", default=os.environ.get("IMAPFS_BIN",
                                                           os.path.join(REPO, "imapfs")))
    ap.add_argument("--floorfs-bin", default=os.environ.get(
        "FLOORFS_BIN", os.path.join(REPO, "build", "bench", "floorfs")))
    ap.add_argument("--out", help="write the markdown table here "
                    "(default bench/last-results.md; none with --smoke)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--max-minutes", type=float,
                    help="give up (cleanly) after this long (default 30, +30 with --wan, "
                    "+120 with --scale, +20 with --writeback; smoke 5, +3, +15, +4)")
    args = ap.parse_args()
    if args.no_loopback and not (args.wan or args.scale or args.writeback):
        ap.error("--no-loopback leaves nothing to measure without --wan, --scale or "
                 "--writeback")
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.runs:
        sizes["runs"] = sizes["wan_runs"] = sizes["wb_runs"] = max(1, args.runs)
    if args.scale_runs:
        sizes["scale_runs"] = max(1, args.scale_runs)
    if args.scale_messages:
        sizes["big"] = max(1, args.scale_messages)
    if args.scale_folders:
        sizes["folders"] = max(1, args.scale_folders)
    minutes = args.max_minutes or (
        (5 + 3 * args.wan + 15 * args.scale + 4 * args.writeback) if args.smoke else
        (30 + 30 * args.wan + 120 * args.scale + 20 * args.writeback))
    _deadline = time.monotonic() + 60 * minutes
    args.imapfs_bin = os.path.abspath(args.imapfs_bin)
    args.floorfs_bin = os.path.abspath(args.floorfs_bin)
    for tool in ("mbsync", "curl", "fusermount3", "dovecot", "head", "mv") + (
            ("setfattr",) if args.writeback else ()):
        if not shutil.which(tool) and not (tool == "dovecot" and os.path.exists(
                "/usr/sbin/dovecot")):
            print("bench: %s is missing (apt-get install isync curl fuse3 dovecot-imapd attr)"
                  % tool, file=sys.stderr)
            return 2
    if not os.access(args.imapfs_bin, os.X_OK):
        print("bench: no imapfs binary at %s (set IMAPFS_BIN)" % args.imapfs_bin,
              file=sys.stderr)
        return 2
    if (not args.no_loopback or args.scale) and not find_floorfs(args.floorfs_bin):
        print("bench: no floorfs at %s (make build/bench/floorfs, or set FLOORFS_BIN)"
              % args.floorfs_bin, file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = time.time()
    t_start = time.monotonic()
    b = Bench(args, sizes)
    results = []
    try:
        b.setup()
        b.generate()
        transports = [b.plain]
        if args.tls:
            transports.append(Transport("tls", b.env, b.work, b.pwfile))
        if not args.no_loopback:
            for t in transports:
                check_deadline("warm-up")
                b.warm_up(t)
                results.append(("loop", t.name, "", b.measure(t, sizes["runs"])))
        if args.wan:
            if args.no_loopback:
                b.wan_warm_up()
            for i, (label, rtt, mbit) in enumerate(b.profiles()):
                check_deadline("WAN " + label)
                log("WAN %s: starting the relay" % label)
                rl = b.start_relay("wan%d" % i, rtt, mbit)
                b.profile_rtt = rtt / 1000.0
                try:
                    for t in transports:
                        tw = Transport(t.name, b.env, b.work, b.pwfile,
                                       port=rl.ports[1 if t.tls else 0])
                        results.append(("wan", t.name, label,
                                        b.measure_wan(tw, sizes["wan_runs"], i == 0, rl)))
                finally:
                    b.stop_relay(rl)
        if args.writeback:
            label, rtt, mbit = PROFILES[0]
            check_deadline("write-back")
            log("write-back, WAN %s" % label)
            results.append(("wb", "plain", label, b.measure_writeback(sizes["wb_runs"], rtt,
                                                                      mbit)))
        if args.scale:
            check_deadline("scale")
            results.append(("scale", "plain", "", b.measure_scale(sizes["scale_runs"])))
    except BenchError as e:
        print("bench: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        b.cleanup()
    text = report(results, sizes, args, started, b)
    print()
    print(text)
    out = args.out or (None if args.smoke else os.path.join(REPO, "bench", "last-results.md"))
    if out:
        with open(out, "w") as f:
            f.write(text)
        log("table written to %s" % out)
    log("done in %.0fs" % (time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
