"""Helpers for the imapfs integration tests (mounting, naming rules, cleanup).

Everything here is bounded in time; every process started is tracked so the
per-test watchdog (conftest.py) can kill it if a test hangs on a FUSE call.
"""

import datetime as dt
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = os.path.join(REPO, "scripts")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

import mailgen  # noqa: E402,F401  (re-exported for the tests)

# Which IMAP server the suite runs against: IMAPFS_TEST_SERVER=dovecot
# (default, `make check`) or cyrus (`make check-servers`).  SERVER_ENV is the
# script that starts a private instance of it (scripts/dovecot-env,
# scripts/cyrus-env: the same interface and env.json keys).
SERVER = os.environ.get("IMAPFS_TEST_SERVER") or "dovecot"
if SERVER not in ("dovecot", "cyrus"):
    raise RuntimeError("IMAPFS_TEST_SERVER=%r: expected dovecot or cyrus" % SERVER)
SERVER_ENV = os.path.join(SCRIPTS, SERVER + "-env")

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ThreadSanitizer", "MemorySanitizer")
MOUNT_TIMEOUT = 15.0
EXIT_TIMEOUT = 10.0
FAIL_TIMEOUT = 20.0     # a refused mount must have exited by then

# -- tracking of everything we start (used by the watchdog) -----------------

_lock = threading.Lock()
_live = {}   # key -> (pid or Popen, mountpoint)


def track(key, proc_or_pid, mountpoint):
    with _lock:
        _live[key] = (proc_or_pid, mountpoint)


def untrack(key):
    with _lock:
        _live.pop(key, None)


def emergency_cleanup(reason):
    """Kill every tracked imapfs and lazily unmount its mountpoint."""
    with _lock:
        items = list(_live.items())
    for key, (p, mnt) in items:
        pid = p.pid if hasattr(p, "pid") else p
        print("watchdog: %s: killing imapfs pid %s (%s)" % (reason, pid, mnt),
              file=sys.stderr)
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        lazy_unmount(mnt)


# -- mount helpers ------------------------------------------------------------

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


def unmount(path, within=5.0):
    """fusermount3 -u, tried again for `within` seconds while the mount is
    busy: the kernel releases a file closed a moment ago (a straggling
    reader, or touch's file at the mount root) after close() returns.
    Returns the last try (stdout and stderr together in .stdout)."""
    deadline = time.monotonic() + within
    while True:
        r = subprocess.run(["fusermount3", "-u", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        if r.returncode == 0 or not is_mounted(path) or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def lazy_unmount(mnt):
    if mnt and is_mounted(mnt):
        subprocess.run(["fusermount3", "-uz", mnt], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)


def pids_for_mountpoint(mnt):
    """PIDs of processes having `mnt` as one argv element (our imapfs)."""
    target = os.fsencode(mnt)
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if target in argv:
            out.append(int(name))
    return out


def wait_no_process(mnt, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        left = pids_for_mountpoint(mnt)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def sanitizer_lines(text):
    return [line for line in text.splitlines()
            if any(mk in line for mk in SANITIZER_MARKERS)]


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Mount:
    """A foreground (-f) imapfs process serving `path`."""

    def __init__(self, binary, url, path, opts=(), env=None, logdir=None,
                 extra_args=(), name="imapfs"):
        self.binary, self.url, self.path = binary, url, path
        self.opts = list(opts)
        self.env = env
        self.logdir = logdir or os.path.dirname(path)
        self.stderr_path = os.path.join(self.logdir, "%s.stderr" % name)
        self.extra_args = list(extra_args)
        self.proc = None
        self.stopped = False

    def argv(self):
        a = [self.binary]
        if self.opts:
            a += ["-o", ",".join(self.opts)]
        return a + self.extra_args + ["-f", self.url, self.path]

    def start(self, timeout=MOUNT_TIMEOUT):
        os.makedirs(self.path, exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        self.errf = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.errf, stderr=self.errf,
                                     env=env, start_new_session=True)
        track(id(self), self.proc, self.path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_mounted(self.path):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        rc = self.proc.poll()
        err = self.stderr()
        self._force_cleanup()
        if rc is None:
            raise AssertionError("imapfs did not mount %s within %.0fs\ncmd: %s\n"
                                 "stderr:\n%s" % (self.path, timeout,
                                                  " ".join(self.argv()), err))
        raise AssertionError("imapfs exited with %s before mounting\ncmd: %s\n"
                             "stderr:\n%s" % (rc, " ".join(self.argv()), err))

    def stderr(self):
        try:
            self.errf.flush()
        except (OSError, AttributeError, ValueError):
            pass
        return read_text(self.stderr_path)

    def _force_cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        lazy_unmount(self.path)
        untrack(id(self))
        self.stopped = True
        try:
            self.errf.close()
        except (OSError, AttributeError):
            pass

    def stop(self, check=True):
        """fusermount3 -u; the process must exit 0 and be sanitizer-clean."""
        if self.stopped:
            return
        problems = []
        if is_mounted(self.path):
            r = unmount(self.path)
            if r.returncode != 0 and is_mounted(self.path):
                problems.append("fusermount3 -u failed: %s" % r.stdout.decode(
                    errors="replace").strip())
        try:
            rc = self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
            problems.append("imapfs did not exit within %.0fs after unmount"
                            % EXIT_TIMEOUT)
        self._force_cleanup()
        err = self.stderr()
        if rc not in (0, None):
            problems.append("imapfs exited with status %s" % rc)
        san = sanitizer_lines(err)
        if san:
            problems.append("sanitizer reports: %s" % "; ".join(san[:5]))
        if problems and check:
            raise AssertionError("%s\ncmd: %s\nstderr:\n%s" % (
                "\n".join(problems), " ".join(self.argv()), err[-20000:]))
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)


class Result:
    def __init__(self, rc, stdout, stderr, elapsed, mounted, leftover):
        self.returncode, self.stdout, self.stderr = rc, stdout, stderr
        self.elapsed, self.mounted, self.leftover = elapsed, mounted, leftover

    def __repr__(self):
        return ("Result(rc=%r, %.1fs, mounted=%r, leftover=%r)\nstdout: %s\n"
                "stderr: %s" % (self.returncode, self.elapsed, self.mounted,
                                self.leftover, self.stdout[-2000:], self.stderr[-4000:]))


def run_imapfs(binary, args, mountpoint=None, env=None, timeout=FAIL_TIMEOUT,
               workdir=None):
    """Run imapfs to completion (e.g. without -f, or a command that should
    fail).  Output goes to files (a daemon may keep stdio open).  Afterwards
    records whether something got mounted / left running, and cleans up."""
    workdir = workdir or (os.path.dirname(mountpoint) if mountpoint else "/tmp")
    tag = "%d-%d" % (os.getpid(), int(time.monotonic() * 1e6))
    outp = os.path.join(workdir, "run-%s.out" % tag)
    errp = os.path.join(workdir, "run-%s.err" % tag)
    e = dict(os.environ if env is None else env)
    t0 = time.monotonic()
    with open(outp, "wb") as o, open(errp, "wb") as er:
        p = subprocess.Popen([binary] + list(args), stdin=subprocess.DEVNULL,
                             stdout=o, stderr=er, env=e, start_new_session=True)
        track(("run", p.pid), p, mountpoint)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            rc = "timeout"
        finally:
            untrack(("run", p.pid))
    elapsed = time.monotonic() - t0
    mounted = bool(mountpoint) and is_mounted(mountpoint)
    leftover = []
    if mountpoint:
        leftover = wait_no_process(mountpoint, timeout=0.5 if not mounted else 0)
    res = Result(rc, read_text(outp), read_text(errp), elapsed, mounted, leftover)
    for path in (outp, errp):
        try:
            os.unlink(path)
        except OSError:
            pass
    return res


def cleanup_mountpoint(mnt):
    """Leave nothing behind at `mnt` (after a test that expected no mount)."""
    if not mnt:
        return
    pids = pids_for_mountpoint(mnt)
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-u", mnt], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
        pids = wait_no_process(mnt, 5)
    kill_pids(pids)
    lazy_unmount(mnt)


# -- naming rules ---------------------------------------------------------------

NAME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (.+)\.(\d+)\.eml$", re.S)


def display_subject(subject):
    """The subject as imapfs shows it (before length limiting)."""
    s = subject or ""
    s = "".join(" " if (ord(c) < 0x20 or ord(c) == 0x7F) else c for c in s)
    s = re.sub(" +", " ", s).strip(" ")
    s = s.replace("/", "\u2215")
    return s or "(no subject)"


def utc_date(ts):
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def expected_name(subject, internaldate, uid):
    """Full file name for names=readable, assuming maximal shortening."""
    prefix = utc_date(internaldate) + " "
    suffix = ".%d.eml" % uid
    subj = display_subject(subject).encode()
    budget = 255 - len(prefix.encode()) - len(suffix)
    if len(subj) > budget:
        subj = subj[:budget]
        while subj:
            try:
                subj.decode()
                break
            except UnicodeDecodeError:
                subj = subj[:-1]
    return prefix + subj.decode() + suffix


def uid_of(name):
    m = re.search(r"(?:^|\.)(\d+)\.eml$", name)
    return int(m.group(1)) if m else None


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def folder_path(mnt, folder):
    return os.path.join(mnt, *folder.split("/"))


def wait_for(pred, timeout, interval=0.2):
    """Poll pred() until truthy or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)
