#!/usr/bin/env python3
"""imapfs benchmark: imapfs against a peer tool, same server, same run.

    IMAPFS_BIN=./imapfs python3 bench/run.py [--smoke] [--runs N] [--tls]
        [--imapfs-opts OPTS] [--out FILE] [--keep] [--max-minutes M]

Starts a private Dovecot on 127.0.0.1 (scripts/dovecot-env), writes the
benchmark folders straight into its Maildir, warms the server once (every
peer and one imapfs pass), then measures, interleaving imapfs and its peer
in every round:

  P1 cold `ls -l` of the mixed folder   vs Python imaplib, one UID FETCH 1:*
  P2 warm `ls -l` (same mount again)    vs `ls -l` of a local 10,000-file dir
  P3 cold `cat` of every message        vs mbsync full pull into empty Maildir
  P4 cold `cat` of the large message    vs curl imap://.../Huge;UID=n
  P5 warm `cat` of every message        vs `cat` of the local Maildir files
  P6 remount (same cache_dir), `ls -l`  vs P1's cold imapfs `ls -l`
  P7 peak RSS (VmHWM) of imapfs after `ls -l` of the many-small folder

cold = fresh mount with an empty -o cache_dir; warm = the same mount again.
Medians of --runs runs (default 5; --smoke: small folders, 1 run).  The
table (markdown) is printed and written to --out (default
bench/last-results.md; --smoke writes nothing unless --out is given).

Only the Python standard library plus dovecot, mbsync (isync), curl, ls,
cat and fusermount3.  Everything started is stopped, every mount unmounted
and the work directory removed at the end (also on error or Ctrl-C).
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
PYTHON = sys.executable or "/usr/bin/python3"

MIXED, HUGE, MANY = "Bench10k", "Huge", "Bench100k"
MiB = 1024 * 1024

FULL = {"mixed": 10000, "huge": 10 * MiB, "many": 100000, "runs": 5}
SMOKE = {"mixed": 500, "huge": 1 * MiB, "many": 2000, "runs": 1}

TARGETS = {"P1": 1.0, "P2": 3.0, "P3": 1.0, "P4": 1.2, "P5": 5.0, "P6": 0.3}
P7_TARGET_MIB = 128

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


def gen_many(env, count, rnd, pool):
    w = Writer(env, MANY)
    for i in range(count):
        when = rand_when(rnd)
        raw = text_message(rnd, pool, subject_for(rnd, "Small", i + 1),
                           "small.%06d@bench.localhost" % (i + 1), when,
                           rnd.randint(200, 1200))
        w.add(raw, when, "S" if i % 3 else "")
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

    def __init__(self, binary, url, path, opts, logdir, name):
        self.binary, self.url, self.path, self.opts = binary, url, path, opts
        self.log_path = os.path.join(logdir, name + ".stderr")
        self.proc = None

    def start(self, timeout=30):
        os.makedirs(self.path, exist_ok=True)
        argv = [self.binary, "-o", ",".join(self.opts), "-f", self.url, self.path]
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
        raise BenchError("imapfs did not mount (exit %s): %s\n%s" % (
            rc, " ".join(argv), self.stderr_tail()))

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
        subprocess.run(["fusermount3", "-u", self.path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError("imapfs did not exit within %ds of fusermount3 -u" % timeout)
        self._done()
        if rc != 0:
            raise BenchError("imapfs exited %d after unmount:\n%s" % (rc, self.stderr_tail()))

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
    def __init__(self, name, env, work, pwfile):
        self.name, self.env, self.work, self.pwfile = name, env, work, pwfile
        self.tls = name == "tls"
        self.user, self.password = env["USER"], env["PASSWORD"]
        if self.tls:
            # the test certificate is for DNS:localhost (127.0.0.1 in /etc/hosts)
            self.host, self.port = "localhost", int(env["IMAPS_PORT"])
        else:
            self.host, self.port = "127.0.0.1", int(env["IMAP_PORT"])

    # imapfs
    def imapfs_url(self):
        return "%s://%s@%s:%d" % ("imaps" if self.tls else "imap", self.user,
                                   self.host, self.port)

    def imapfs_opts(self, cache_dir, extra):
        o = ["password_file=" + self.pwfile, "cache_dir=" + cache_dir]
        o.append("ca_file=" + self.env["CA_FILE"] if self.tls else "plaintext")
        return o + extra

    # imaplib
    def imaplib_connect(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.env["CA_FILE"])
            m = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=ctx, timeout=120)
        else:
            m = imaplib.IMAP4(self.host, self.port, timeout=120)
        m.login(self.user, self.password)
        return m

    # mbsync
    def mbsyncrc(self, local, folder):
        rc = os.path.join(self.work, "mbsyncrc-" + self.name)
        tls = ("SSLType IMAPS\nCertificateFile %s\n" % self.env["CA_FILE"]
               if self.tls else "SSLType None\nAuthMechs LOGIN\n")
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


def imaplib_listing(t, folder):
    """The P1 peer: connect, log in, EXAMINE, one UID FETCH 1:*, log out."""
    m = t.imaplib_connect()
    try:
        typ, data = m.select('"%s"' % folder, readonly=True)
        if typ != "OK":
            raise BenchError("EXAMINE %s: %r" % (folder, data))
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE "
                          "BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        if typ != "OK":
            raise BenchError("UID FETCH: %r" % (data,))
        n = sum(1 for d in data if isinstance(d, tuple))
    finally:
        try:
            m.logout()
        except Exception:
            pass
    return n


def timed_imaplib(t, folder, expect):
    t0 = time.perf_counter()
    n = imaplib_listing(t, folder)
    sec = time.perf_counter() - t0
    if n != expect:
        raise BenchError("imaplib fetched %d messages of %s, expected %d" % (n, folder, expect))
    return sec


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


# --------------------------------------------------------------------------
# the benchmark

class Bench:
    def __init__(self, args, sizes):
        self.args, self.sizes = args, sizes
        self.binary = args.imapfs_bin
        self.extra = [o for o in (args.imapfs_opts or "").split(",") if o]
        self.work = None
        self.dovecot_dir = None
        self.seq = 0

    # -- setup ---------------------------------------------------------------
    def setup(self):
        self.work = tempfile.mkdtemp(prefix="imapfs-bench-", dir="/tmp")
        os.chmod(self.work, 0o755)  # Dovecot's mail user must traverse it
        self.dovecot_dir = os.path.join(self.work, "dovecot")
        log("work dir %s; starting Dovecot" % self.work)
        subprocess.run([PYTHON, DOVECOT_ENV, "start", self.dovecot_dir], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        with open(os.path.join(self.dovecot_dir, "env.json")) as f:
            self.env = json.load(f)
        self.pwfile = os.path.join(self.work, "password")
        fd = os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.env["PASSWORD"] + "\n")
        self.plain = Transport("plain", self.env, self.work, self.pwfile)

    def generate(self):
        t = self.plain
        m = t.imaplib_connect()
        try:
            for f in (MIXED, HUGE, MANY):
                for cmd in (m.create, m.subscribe):
                    typ, data = cmd(f)
                    if typ != "OK":
                        raise BenchError("%s %s: %r" % (cmd.__name__, f, data))
        finally:
            m.logout()
        rnd = random.Random(20240229)
        t0 = time.monotonic()
        pool = TextPool(rnd)
        s = self.sizes
        w = gen_mixed(self.env, s["mixed"], rnd, pool)
        self.mixed_total = w.total_crlf
        srt = sorted(w.sizes)
        log("wrote %d messages into %s: %.1f MB, median %.1f KB, max %.0f KB (%.1fs)" % (
            w.n, MIXED, w.total_crlf / 1e6, srt[len(srt) // 2] / 1024, srt[-1] / 1024,
            time.monotonic() - t0))
        t0 = time.monotonic()
        w = gen_huge(self.env, s["huge"], rnd, pool)
        self.huge_size = w.total_crlf
        log("wrote one %.2f MB message into %s (%.1fs)" % (
            self.huge_size / 1e6, HUGE, time.monotonic() - t0))
        t0 = time.monotonic()
        w = gen_many(self.env, s["many"], rnd, pool)
        log("wrote %d messages into %s: %.1f MB (%.1fs)" % (
            w.n, MANY, w.total_crlf / 1e6, time.monotonic() - t0))
        # Dovecot indexes the new files at the first SELECT
        t0 = time.monotonic()
        m = t.imaplib_connect()
        try:
            for f, n in ((MIXED, s["mixed"]), (HUGE, 1), (MANY, s["many"])):
                typ, data = m.select(f, readonly=True)
                if typ != "OK" or int(data[0]) != n:
                    raise BenchError("Dovecot sees %r messages in %s, expected %d" % (data, f, n))
            m.select(HUGE, readonly=True)
            typ, data = m.uid("SEARCH", "ALL")
            self.huge_uid = int(data[0].split()[0])
        finally:
            m.logout()
        log("Dovecot indexed the folders (%.1fs)" % (time.monotonic() - t0))

    # -- helpers -------------------------------------------------------------
    def fresh_dir(self, prefix):
        self.seq += 1
        d = os.path.join(self.work, "%s-%d" % (prefix, self.seq))
        os.makedirs(d)
        return d

    def mount(self, t, cache_dir, name, extra=None):
        mnt = self.fresh_dir("mnt")
        opts = t.imapfs_opts(cache_dir, self.extra if extra is None else extra)
        return Mount(self.binary, t.imapfs_url(), mnt, opts, self.work, name).start()

    def mbsync_pull(self, t):
        local = self.fresh_dir("maildir")
        rc = t.mbsyncrc(local, MIXED)
        sec, _ = run_timed(["mbsync", "-q", "-c", rc, "bench"], timeout=900)
        return sec, local

    # -- warm-up -------------------------------------------------------------
    def warm_up(self, t):
        s = self.sizes
        log("[%s] warm-up: imaplib listing of each folder" % t.name)
        for f, n in ((MIXED, s["mixed"]), (HUGE, 1), (MANY, s["many"])):
            sec = timed_imaplib(t, f, n)
            log("  imaplib %s: %.2fs" % (f, sec))
        log("[%s] warm-up: mbsync pull of %s" % (t.name, MIXED))
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
        log("  mbsync: %d messages, %.1f MB in %.2fs" % (n, got / 1e6, sec))
        self.local_cur = cur     # local peer for P2 and P5 (kept)
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
            for f, n in ((MIXED, s["mixed"]), (HUGE, 1), (MANY, s["many"])):
                d = os.path.join(mt.path, f)
                sec, _ = run_timed(ls_cmd(d), timeout=900)
                got = count_files(d)
                if got != n:
                    raise BenchError("imapfs lists %d files in %s, expected %d" % (got, f, n))
                log("  imapfs ls -l %s: %d files, %.2fs" % (f, got, sec))
            for f, expect in ((MIXED, self.mixed_total), (HUGE, self.huge_size)):
                t0 = time.perf_counter()
                got = cat_bytes(os.path.join(mt.path, f))
                if got != expect:
                    raise BenchError("cat of imapfs %s gave %d bytes, expected %d" % (
                        f, got, expect))
                log("  imapfs cat %s: %.1f MB, %.2fs" % (f, got / 1e6, time.perf_counter() - t0))
        finally:
            mt.stop()
        shutil.rmtree(cache)
        # page cache for the local peer
        run_timed(ls_cmd(self.local_cur))
        run_timed(cat_cmd(self.local_cur))

    # -- measured rounds -------------------------------------------------------
    def measure(self, t, runs):
        s = self.sizes
        r = {k: [] for k in ("P1i", "P1p", "P2i", "P2p", "P3i", "P3p", "P4i", "P4p",
                             "P5i", "P5p", "P6i", "P7rss", "P7ls")}
        mixed = lambda mt: os.path.join(mt.path, MIXED)  # noqa: E731
        for i in range(runs):
            check_deadline("round %d" % (i + 1))
            log("[%s] round %d/%d" % (t.name, i + 1, runs))
            # P1 / P2 / P6
            settle()
            r["P1p"].append(timed_imaplib(t, MIXED, s["mixed"]))
            cache = self.fresh_dir("cache")
            settle()
            mt = self.mount(t, cache, "p1-" + t.name)
            try:
                r["P1i"].append(run_timed(ls_cmd(mixed(mt)))[0])
                r["P2i"].append(run_timed(ls_cmd(mixed(mt)))[0])
            finally:
                mt.stop()
            settle()
            mt = self.mount(t, cache, "p6-" + t.name)
            try:
                r["P6i"].append(run_timed(ls_cmd(mixed(mt)))[0])
            finally:
                mt.stop()
            shutil.rmtree(cache)
            settle()
            r["P2p"].append(run_timed(ls_cmd(self.local_cur))[0])
            log("  P1 ls cold %.3fs / imaplib %.3fs; P2 ls warm %.4fs / local %.4fs; "
                "P6 ls after remount %.3fs" % (r["P1i"][-1], r["P1p"][-1], r["P2i"][-1],
                                              r["P2p"][-1], r["P6i"][-1]))
            # P3 / P5
            settle()
            sec, local = self.mbsync_pull(t)
            n = sum(count_files(os.path.join(local, MIXED, sub)) for sub in ("cur", "new"))
            shutil.rmtree(local)
            if n != s["mixed"]:
                raise BenchError("mbsync pulled %d messages, expected %d" % (n, s["mixed"]))
            settle()
            r["P3p"].append(sec)
            cache = self.fresh_dir("cache")
            mt = self.mount(t, cache, "p3-" + t.name)
            try:
                r["P3i"].append(run_timed(cat_cmd(mixed(mt)), timeout=900)[0])
                r["P5i"].append(run_timed(cat_cmd(mixed(mt)), timeout=900)[0])
            finally:
                mt.stop()
            shutil.rmtree(cache)
            settle()
            r["P5p"].append(run_timed(cat_cmd(self.local_cur))[0])
            log("  P3 cat cold %.2fs / mbsync %.2fs; P5 cat warm %.3fs / local %.3fs" % (
                r["P3i"][-1], r["P3p"][-1], r["P5i"][-1], r["P5p"][-1]))
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
                r["P4i"].append(run_timed(["cat", os.path.join(d, names[0])],
                                          timeout=300)[0])
            finally:
                mt.stop()
            shutil.rmtree(cache)
            log("  P4 cat large cold %.3fs / curl %.3fs" % (r["P4i"][-1], r["P4p"][-1]))
            # P7
            settle()
            cache = self.fresh_dir("cache")
            mt = self.mount(t, cache, "p7-" + t.name)
            try:
                r["P7ls"].append(run_timed(ls_cmd(os.path.join(mt.path, MANY)),
                                           timeout=900)[0])
                r["P7rss"].append(mt.vm_hwm_kib() / 1024)
            finally:
                mt.stop()
            shutil.rmtree(cache)
            log("  P7 ls -l %s %.2fs, VmHWM %.1f MiB" % (MANY, r["P7ls"][-1], r["P7rss"][-1]))
        return r

    # -- cleanup -------------------------------------------------------------
    def cleanup(self):
        for mt in list(Mount.live):
            mt.kill()
        if self.dovecot_dir and os.path.exists(os.path.join(self.dovecot_dir, "env.json")):
            subprocess.run([PYTHON, DOVECOT_ENV, "stop", self.dovecot_dir],
                           stdout=subprocess.DEVNULL, timeout=60)
        if self.work:
            if self.args.keep:
                log("kept %s" % self.work)
            else:
                shutil.rmtree(self.work, ignore_errors=True)


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


def table(r, sizes, args, transport):
    med = {k: statistics.median(v) for k, v in r.items() if v}
    mix, many = "{:,}".format(sizes["mixed"]), "{:,}".format(sizes["many"])
    huge = "%g MB" % (sizes["huge"] / MiB)
    rows = [
        ("P1", "cold `ls -l` of the %s-message folder" % mix, "P1i",
         "imaplib `UID FETCH 1:*` (UID FLAGS RFC822.SIZE INTERNALDATE subject)", "P1p"),
        ("P2", "warm `ls -l` of the same folder", "P2i",
         "`ls -l` of a local directory of %s files" % mix, "P2p"),
        ("P3", "cold `cat` of every message of the %s-message folder" % mix, "P3i",
         "mbsync (`FSync no`) full pull into an empty Maildir", "P3p"),
        ("P4", "cold `cat` of the %s message" % huge, "P4i",
         "curl `%s://…/%s;UID=n`" % ("imap" if transport == "plain" else "imaps", HUGE),
         "P4p"),
        ("P5", "warm `cat` of every message (after P3)", "P5i",
         "`cat` of the same messages in a local Maildir", "P5p"),
        ("P6", "remount (same cache_dir), `ls -l` of the %s-message folder" % mix, "P6i",
         "P1's cold imapfs `ls -l`", "P1i"),
    ]
    out = ["| # | what | imapfs | peer | peer time | ratio | target | |",
           "|---|---|---:|---|---:|---:|---:|---|"]
    for pid, what, ki, peer, kp in rows:
        if ki not in med or kp not in med:
            continue
        ratio = med[ki] / med[kp] if med[kp] > 0 else float("inf")
        tgt = TARGETS[pid]
        out.append("| %s | %s | %s | %s | %s | %.2f | ≤ %.1f | %s |" % (
            pid, what, fmt_s(med[ki]), peer, fmt_s(med[kp]), ratio, tgt,
            "ok" if ratio <= tgt else "**miss**"))
    if "P7rss" in med:
        out.append("| P7 | peak RSS (VmHWM) of imapfs after `ls -l` of the %s-message "
                   "folder (`ls -l` took %s) | %.1f MiB | — | — | — | ≤ %d MiB | %s |" % (
                       many, fmt_s(med["P7ls"]), med["P7rss"], P7_TARGET_MIB,
                       "ok" if med["P7rss"] <= P7_TARGET_MIB else "**miss**"))
    runs_line = "; ".join("%s %s" % (k, "/".join(
        ("%.1f" % x) if k == "P7rss" else fmt_s(x).replace(" ", "") for x in v))
        for k, v in r.items() if v)
    return "\n".join(out), runs_line


def report(results, sizes, args, started):
    head = ["# imapfs benchmark%s" % (" (smoke)" if args.smoke else ""), "",
            "- machine: %s" % machine(),
            "- imapfs: %s (`%s`)%s" % (first_line([args.imapfs_bin, "-V"]), args.imapfs_bin,
                                       (", -o " + args.imapfs_opts) if args.imapfs_opts
                                       else ""),
            "- peers: %s; %s; %s; Python %s imaplib; server %s" % (
                first_line(["mbsync", "--version"]), first_line(["curl", "--version"]).split(
                    " (")[0], "coreutils " + first_line(["ls", "--version"]).split()[-1],
                platform.python_version(), "Dovecot " + first_line(["dovecot", "--version"])
                .split()[0]),
            "- data: %s messages of mixed sizes (%.0f MB), one %g MB message, "
            "%s small messages; medians of %d run(s); %s" % (
                "{:,}".format(sizes["mixed"]), sizes.get("mixed_total", 0) / 1e6,
                sizes["huge"] / MiB, "{:,}".format(sizes["many"]), sizes["runs"],
                time.strftime("%Y-%m-%d", time.localtime(started))),
            "- command: `%s`" % " ".join(["bench/run.py"] + sys.argv[1:]), ""]
    parts = ["\n".join(head)]
    for tname, r in results:
        tab, runs_line = table(r, sizes, args, tname)
        title = ("Plain IMAP on loopback (`-o plaintext`, `imap://alice@127.0.0.1:PORT`)"
                 if tname == "plain" else
                 "IMAPS on loopback (`imaps://alice@localhost:PORT`, `-o ca_file`)")
        parts.append("## %s\n\n%s\n\nAll runs: %s\n" % (title, tab, runs_line))
    parts.append(
        "cold = fresh mount with an empty `-o cache_dir`; warm = the same mount again; "
        "P6 = unmount and mount again with the same cache_dir.  Dovecot was warmed by "
        "every peer and one imapfs pass before measuring; imapfs and peer runs are "
        "interleaved.  `cat` = `cd DIR && cat -- * > /dev/null` for imapfs and the "
        "local Maildir alike; P4 times `cat` of the one file after an untimed listing; "
        "the imaplib peer is timed in-process from connect to logout.\n")
    return "\n".join(parts)


def main():
    global _deadline
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="small folders, 1 run (CI: keeps the harness working)")
    ap.add_argument("--runs", type=int, help="measured runs per item (default 5, smoke 1)")
    ap.add_argument("--tls", action="store_true", help="also measure over IMAPS (second table)")
    ap.add_argument("--imapfs-opts", default="",
                    help="extra imapfs -o options, e.g. memory_cache=64M,prefetch=8")
    ap.add_argument("--imapfs-bin", default=os.environ.get("IMAPFS_BIN",
                                                           os.path.join(REPO, "imapfs")))
    ap.add_argument("--out", help="write the markdown table here "
                    "(default bench/last-results.md; none with --smoke)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--max-minutes", type=float,
                    help="give up (cleanly) after this long (default 30, smoke 5)")
    args = ap.parse_args()
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.runs:
        sizes["runs"] = max(1, args.runs)
    _deadline = time.monotonic() + 60 * (args.max_minutes or (5 if args.smoke else 30))
    args.imapfs_bin = os.path.abspath(args.imapfs_bin)
    for tool in ("mbsync", "curl", "fusermount3", "dovecot"):
        if not shutil.which(tool) and not (tool == "dovecot" and os.path.exists(
                "/usr/sbin/dovecot")):
            print("bench: %s is missing (apt-get install isync curl fuse3 dovecot-imapd)"
                  % tool, file=sys.stderr)
            return 2
    if not os.access(args.imapfs_bin, os.X_OK):
        print("bench: no imapfs binary at %s (set IMAPFS_BIN)" % args.imapfs_bin,
              file=sys.stderr)
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
        sizes["mixed_total"] = b.mixed_total
        transports = [b.plain]
        if args.tls:
            transports.append(Transport("tls", b.env, b.work, b.pwfile))
        for t in transports:
            check_deadline("warm-up")
            b.warm_up(t)
            results.append((t.name, b.measure(t, sizes["runs"])))
    except BenchError as e:
        print("bench: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        b.cleanup()
    text = report(results, sizes, args, started)
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
