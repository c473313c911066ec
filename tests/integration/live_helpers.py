"""Helpers for the live-update and resilience tests (test_notify.py,
test_resilience.py, test_soak.py).

The one fixture, `live`, hands out everything these tests start besides the
servers themselves, and takes it down again in a safe order at the end of
the test, whatever happened:

    live.mount(server, extra_opts=(), watch=None, url=None, opts=None)
        -> helpers.Mount on a ScratchServer (or any URL); `watch` is a list
           of folders, passed as one `-o watch=A,B` argument, exactly as a
           user types it
    live.inotify(path)   -> Inotify: `inotifywait -m path`, events collected
    live.holder()        -> Holder: a child process that opens files and
           directories in the mount, reads, lists, chdirs on command; a call
           that does not answer in time kills it (a hung FUSE request can
           never hang the test itself)
    live.op(cmd, timeout) one command on a shared Holder (respawned after a
           hang): for timing a single ls / cat in the mount
    live.freeze(server) / live.thaw()
        SIGSTOP / SIGCONT every process of a private Dovecot (the master and
        all its children): the server accepts TCP connections (the kernel
        does) but never answers

Teardown order: thaw frozen servers, kill holders, stop inotifywait, then
unmount (each mount checked like conftest's fixtures do: exit 0, no
sanitizer report).  `live` depends on scratch_server and fake_server, so it
is torn down before them.
"""

import datetime as dt
import errno
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time

import pytest

import helpers
import write_helpers as wh
from helpers import mailgen

NOTIFY_WITHIN = 2.0          # spec: inotify event within 2 s of the change
INBOX = "INBOX"
UTC = dt.timezone.utc


# -- the `live` fixture ------------------------------------------------------------

class Live:
    def __init__(self, binary, tmp_path):
        self.binary, self.tmp = binary, tmp_path
        self.mounts, self.watchers, self.holders, self.frozen = [], [], [], []
        self._shared = None

    def mount(self, server, extra_opts=(), watch=None, url=None, opts=None,
              env=None):
        n = len(self.mounts)
        mnt = str(self.tmp / ("lmnt%d" % n))
        o = (server.opts(str(self.tmp / ("lcache%d" % n))) if opts is None
             else list(opts))
        o += list(extra_opts)
        m = helpers.Mount(self.binary, url or server.url(), mnt, o, env=env,
                          extra_args=watch_args(watch), logdir=str(self.tmp),
                          name="imapfs-l%d" % n)
        self.mounts.append(m)
        return m.start()

    def inotify(self, path):
        w = Inotify(path)
        self.watchers.append(w)
        return w.start()

    def holder(self):
        h = Holder()
        self.holders.append(h)
        return h

    def op(self, cmd, timeout=30.0):
        """Run one Holder command; a hang (no answer within `timeout`) is
        returned as {"ok": False, "hung": True, ...}."""
        if self._shared is None or not self._shared.alive():
            self._shared = self.holder()
        return self._shared.call(cmd, timeout)

    def freeze(self, server):
        self.frozen.append(server)
        pids = stop_dovecot_tree(server)
        assert pids, "no Dovecot process found to freeze"
        return pids

    def thaw(self, server=None):
        for s in list(self.frozen):
            if server is None or s is server:
                signal_all(dovecot_pids(s), signal.SIGCONT)
                self.frozen.remove(s)

    def close(self):
        errors = []
        self.thaw()
        for h in self.holders:
            h.kill()
        for w in self.watchers:
            w.stop()
        for m in self.mounts:
            try:
                m.stop()
            except AssertionError as e:
                errors.append(str(e))
        if errors:
            pytest.fail("\n\n".join(errors))


@pytest.fixture
def live(imapfs_bin, tmp_path, scratch_server, fake_server):
    lv = Live(imapfs_bin, tmp_path)
    try:
        yield lv
    finally:
        lv.close()


def watch_args(folders):
    """The command line arguments for -o watch=FOLDER[,FOLDER...]."""
    if not folders:
        return []
    if isinstance(folders, str):
        folders = [folders]
    return ["-o", "watch=" + ",".join(folders)]


# -- inotifywait ---------------------------------------------------------------------

class Event:
    def __init__(self, t, kinds, name):
        self.t, self.kinds, self.name = t, kinds, name

    def __repr__(self):
        return "%s %r" % (",".join(sorted(self.kinds)), self.name)


class Inotify:
    """`inotifywait -m PATH`; every event line is kept with the monotonic
    time it arrived."""

    def __init__(self, path):
        self.path = path
        self.events = []
        self.cond = threading.Condition()
        self.p = None
        self.errlines = []

    def start(self, timeout=10.0):
        self.p = subprocess.Popen(["inotifywait", "-m", "--format", "%e\t%f", self.path],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        ready = threading.Event()

        def err():
            for line in self.p.stderr:
                self.errlines.append(line.decode(errors="replace").rstrip("\n"))
                if b"Watches established" in line:
                    ready.set()
            ready.set()

        def out():
            for line in self.p.stdout:
                kinds, _, name = line.rstrip(b"\n").partition(b"\t")
                ev = Event(time.monotonic(), set(kinds.decode().split(",")),
                           name.decode("utf-8", "surrogateescape"))
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()

        threading.Thread(target=err, daemon=True).start()
        threading.Thread(target=out, daemon=True).start()
        ready.wait(timeout)
        if self.p.poll() is not None or not any("Watches established" in x
                                                for x in self.errlines):
            self.stop()
            raise AssertionError("inotifywait -m %s did not start: %s" % (
                self.path, self.errlines))
        return self

    def wait(self, kind, name=None, timeout=NOTIFY_WITHIN, since=0.0, pred=None):
        """The first event of `kind` (e.g. "CREATE") for `name` (or any name,
        or one where pred(name) is true) that arrived after `since`; None if
        none came within `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if ev.t < since or kind not in ev.kinds:
                        continue
                    if name is not None and ev.name != name:
                        continue
                    if pred is not None and not pred(ev.name):
                        continue
                    return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def seen(self, kinds=("CREATE", "DELETE", "ATTRIB", "MOVED_FROM", "MOVED_TO")):
        with self.cond:
            return [ev for ev in self.events if ev.kinds & set(kinds)]

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def uid_suffix(uid):
    """pred for Inotify.wait: a message file name of UID `uid`."""
    return lambda name: name.endswith(".%d.eml" % uid) or name == "%d.eml" % uid


def expect_event(ino, kind, name, t_change, what, pred=None):
    """Waits (up to 10 s, for a useful message) for `kind` `name` (or a name
    pred accepts); fails unless it came within NOTIFY_WITHIN of t_change.
    Returns the Event."""
    ev = ino.wait(kind, name, timeout=10.0, since=0, pred=pred)
    label = repr(name) if name is not None else "(a matching name)"
    assert ev is not None, "%s: no inotify %s %s within 10 s; events seen: %r" % (
        what, kind, label, ino.seen())
    late = ev.t - t_change
    print("%s: inotify %s %r after %.2f s" % (what, kind, ev.name, late))
    assert late <= NOTIFY_WITHIN, "%s: inotify %s %r came after %.2f s (limit %.1f s)" % (
        what, kind, ev.name, late, NOTIFY_WITHIN)
    return ev


# -- holder: a child process doing file operations in the mount ---------------------

HOLDER_CODE = r'''
import errno, hashlib, json, os, sys, time
fds = {}
def sha(b):
    return hashlib.sha256(b).hexdigest()
def readall(fd, chunk, drop):
    if drop:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    h, off = hashlib.sha256(), 0
    while True:
        b = os.pread(fd, chunk, off)
        if not b:
            break
        h.update(b)
        off += len(b)
    return h.hexdigest(), off
os.chdir("/")
for line in sys.stdin:
    c = json.loads(line)
    op, r, t0 = c["op"], {}, time.monotonic()
    try:
        if op == "open":
            fl = os.O_RDONLY | (os.O_DIRECTORY if c.get("dir") else 0)
            fds[c["id"]] = os.open(c["path"], fl)
        elif op == "close":
            os.close(fds.pop(c["id"]))
        elif op == "pread":
            fd = fds[c["id"]]
            if c.get("drop"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            b = os.pread(fd, c["len"], c["off"])
            r["len"], r["sha"] = len(b), sha(b)
        elif op == "readall":
            r["sha"], r["len"] = readall(fds[c["id"]], c.get("chunk", 1 << 17),
                                         c.get("drop", False))
        elif op == "readpath":
            fd = os.open(c["path"], os.O_RDONLY)
            try:
                r["sha"], r["len"] = readall(fd, c.get("chunk", 1 << 17),
                                             c.get("drop", False))
            finally:
                os.close(fd)
        elif op == "listdir":
            r["names"] = os.listdir(c["path"])
        elif op == "listfd":
            r["names"] = os.listdir(fds[c["id"]])
        elif op == "scan":
            names = []
            with os.scandir(c["path"]) as it:
                for e in it:
                    if not names:
                        r["first"] = time.monotonic() - t0
                    names.append(e.name)
            r["names"] = names
        elif op == "chdir":
            os.chdir(c["path"])
        elif op == "stat":
            st = os.stat(c["path"])
            r["mode"], r["size"] = st.st_mode, st.st_size
        elif op == "exit":
            break
        else:
            raise ValueError("unknown op %r" % op)
        r["ok"] = True
    except OSError as e:
        r["ok"], r["errno"] = False, e.errno
        r["error"] = errno.errorcode.get(e.errno, str(e.errno))
    r["elapsed"] = time.monotonic() - t0
    sys.stdout.write(json.dumps(r) + "\n")
    sys.stdout.flush()
'''


class Holder:
    """A child process (python -c HOLDER_CODE) that keeps files/directories
    in the mount open and does operations on command (one JSON line each
    way).  Commands: open(id, path, dir=False), close(id), pread(id, off, len,
    drop=False), readall(id, drop=False), readpath(path, drop=False),
    listdir(path), listfd(id), chdir(path), stat(path).  `drop` first drops
    the file's page cache (fadvise DONTNEED), so the read reaches imapfs.
    Every answer has ok, elapsed (seconds, measured in the child), and errno
    + error (e.g. "EIO") when not ok."""

    def __init__(self):
        self.p = subprocess.Popen([helpers.PYTHON, "-c", HOLDER_CODE], cwd="/",
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.q = queue.Queue()
        self.dead = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(json.loads(line))
        self.q.put(None)

    def alive(self):
        return not self.dead and self.p.poll() is None

    def call(self, cmd, timeout=30.0):
        if not self.alive():
            return {"ok": False, "dead": True, "error": "holder gone", "elapsed": 0}
        t0 = time.monotonic()
        try:
            self.p.stdin.write((json.dumps(cmd) + "\n").encode())
            self.p.stdin.flush()
            r = self.q.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return {"ok": False, "hung": True, "error": "no answer within %.1f s" % timeout,
                    "elapsed": time.monotonic() - t0}
        except OSError as e:
            self.kill()
            return {"ok": False, "dead": True, "error": str(e), "elapsed": 0}
        if r is None:
            self.dead = True
            return {"ok": False, "dead": True, "error": "holder exited: %s" % (
                self.p.stderr.read().decode(errors="replace")[-2000:]), "elapsed": 0}
        return r

    def kill(self):
        self.dead = True
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                pass


def errname(r):
    if r.get("hung"):
        return "HUNG"
    return r.get("error") or ("OK" if r.get("ok") else "?")


def errno_in(r, *names):
    return not r.get("ok") and r.get("error") in names


# -- freezing a Dovecot ------------------------------------------------------------

def _proc_table():
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        try:
            table[int(name)] = int(rest[1])
        except (IndexError, ValueError):
            pass
    return table


def dovecot_master(server):
    """The master PID of a ScratchServer (from its PID file, so also after
    restart()), or None if it does not run."""
    try:
        with open(server.env["PID_FILE"]) as f:
            master = int(f.read().strip())
    except (OSError, ValueError):
        master = server.env.get("PID")
    if not master:
        return None
    try:
        with open("/proc/%d/cmdline" % master, "rb") as f:
            if server.env["CONF"].encode() not in f.read():
                return None        # not our Dovecot (stopped, pid reused)
    except OSError:
        return None
    return master


def _descendants(pid):
    table = _proc_table()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c, pp in table.items():
            if pp == p and c not in out:
                out.append(c)
                todo.append(c)
    return out


def dovecot_pids(server):
    """The master and all its descendants (a snapshot)."""
    master = dovecot_master(server)
    return [master] + _descendants(master) if master else []


def stop_dovecot_tree(server):
    """SIGSTOP the master first (so it forks nothing more), then every
    descendant until no new one shows up.  Returns all the PIDs."""
    master = dovecot_master(server)
    if not master:
        return []
    os.kill(master, signal.SIGSTOP)
    seen = [master]
    for _ in range(50):
        new = [p for p in _descendants(master) if p not in seen]
        if not new:
            break
        signal_all(new, signal.SIGSTOP)
        seen += new
    return seen


def kill_dovecot(server):
    """SIGKILL the whole Dovecot at once (no BYE, no shutdown): connections
    are simply reset.  Waits until its ports are free."""
    pids = stop_dovecot_tree(server)
    signal_all(pids[1:], signal.SIGKILL)
    signal_all(pids[:1], signal.SIGKILL)
    ok = helpers.wait_for(lambda: all(_state(p) in ("Z", "gone") for p in pids), 10, 0.05)
    assert ok, "Dovecot processes survived SIGKILL: %r" % pids
    # a zombie master (not reaped yet) would make a restart think Dovecot
    # still runs: its PID file goes too
    try:
        os.unlink(server.env["PID_FILE"])
    except OSError:
        pass
    helpers.wait_for(lambda: not any(wh.port_open(p) for p in (
        server.env["IMAP_PORT"], server.env["IMAPS_PORT"])), 5, 0.05)
    return pids


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rfind(")") + 2:].split()[0]
    except OSError:
        return "gone"


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


# -- .status -----------------------------------------------------------------------

STATUS = ".status"
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def kv(tokens):
    out = {}
    for t in tokens:
        k, sep, v = t.partition("=")
        if sep:
            out[k] = v
    return out


def parse_status(text):
    """The lines of MOUNT/.status by keyword (spacing-insensitive):
    {"server": str, "state": str, "state_kv": {since, next_attempt_in},
     "connections": [{"n", "state", "folder"}], "watches": {folder: {"state",
     "last_sync", "age"}}, "cache": {k: v}, "text": text}"""
    st = {"server": None, "state": None, "state_kv": {}, "connections": [],
          "watches": {}, "cache": None, "text": text}
    for line in text.splitlines():
        w = line.split()
        if not w:
            continue
        if w[0] == "server" and len(w) >= 2:
            st["server"] = w[1]
        elif w[0] == "state" and len(w) >= 2:
            st["state"] = w[1]
            st["state_kv"] = kv(w[2:])
        elif w[0] == "connection" and len(w) >= 4:
            st["connections"].append({"n": w[1], "state": w[2], "folder": " ".join(w[3:])})
        elif w[0] == "watch" and len(w) >= 5:
            rest = kv(w[-2:])
            st["watches"][" ".join(w[1:-3])] = {"state": w[-3],
                                                "last_sync": rest.get("last_sync"),
                                                "age": rest.get("age")}
        elif w[0] == "cache":
            st["cache"] = kv(w[1:])
    return st


def read_status(mnt_path):
    with open(os.path.join(mnt_path, STATUS), "rb") as f:
        return parse_status(f.read().decode("utf-8"))


def seconds(value):
    """"12s" -> 12 (None if malformed)."""
    m = re.match(r"^(\d+)s$", value or "")
    return int(m.group(1)) if m else None


def wait_status(mnt_path, pred, timeout, interval=0.25):
    """Polls .status until pred(parsed) is true; returns the last parse."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            st = read_status(mnt_path)
        except OSError as e:
            st = {"error": e, "text": "", "state": None, "watches": {},
                  "connections": [], "cache": None, "state_kv": {}, "server": None}
        if ("error" not in st and pred(st)) or time.monotonic() > deadline:
            return st
        time.sleep(interval)


# -- server side -------------------------------------------------------------------

def truth(server, folder):
    """{uid: {uid, msgid, sha, body, size, flags, internaldate}} via imaplib."""
    m = server.connect()
    try:
        return {r["uid"]: r for r in wh.folder_contents(m, folder)}
    finally:
        m.logout()


def imap_store(server, folder, uid, op, flags):
    m = server.connect()
    try:
        mailgen.check(m.select(mailgen.qmbox(folder)), "SELECT")
        mailgen.check(m.uid("STORE", str(uid), op, "(%s)" % flags), "STORE")
    finally:
        m.logout()


def imap_expunge(server, folder, uid):
    """STORE \\Deleted + UID EXPUNGE of one UID (UIDPLUS)."""
    m = server.connect()
    try:
        mailgen.check(m.select(mailgen.qmbox(folder)), "SELECT")
        mailgen.check(m.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
        mailgen.check(m.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
    finally:
        m.logout()


def imap_move(server, src, uid, dst, msgid=None):
    """UID MOVE by another client; returns the message's UID in dst (from
    COPYUID, else looked up by Message-ID), or None."""
    m = server.connect()
    try:
        mailgen.check(m.select(mailgen.qmbox(src)), "SELECT")
        m.untagged_responses.pop("COPYUID", None)
        typ, data = m.uid("MOVE", str(uid), mailgen.qmbox(dst))
        assert typ == "OK", "UID MOVE failed: %r" % data
        for v in m.untagged_responses.get("COPYUID", []):
            mm = re.match(rb"\s*\d+ \S+ (\d+)", v if isinstance(v, bytes) else b"")
            if mm:
                return int(mm.group(1))
        if msgid:
            uids = mailgen.search_msgid(m, dst, msgid)
            return uids[0] if len(uids) == 1 else None
        return None
    finally:
        m.logout()


def append(server, folder, msg, flags=()):
    m = server.connect()
    try:
        msg["uid"] = mailgen.append(m, folder, msg["raw"], list(flags), msg["when"])
        msg["folder"] = folder
    finally:
        m.logout()
    return msg["uid"]


def seed(server, folder, msgs, create=True, flags=()):
    m = server.connect()
    try:
        return wh.seed(m, folder, msgs, flags=flags, create=create)
    finally:
        m.logout()


def load_fake_server():
    """scripts/fake-imap-server.py as a module (for its accounts' bytes)."""
    import importlib.util
    path = os.path.join(helpers.SCRIPTS, "fake-imap-server.py")
    spec = importlib.util.spec_from_file_location("fake_imap_server", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- mount side --------------------------------------------------------------------

def files_by_uid(d):
    """{uid: path} of a folder directory in the mount."""
    out = {}
    for name in os.listdir(d):
        uid = helpers.uid_of(name)
        if uid is not None:
            out[uid] = os.path.join(d, name)
    return out


def ls_l(d):
    """Like `ls -l`: list, then stat every entry (so the kernel has a dentry
    and attributes for each); returns {name: stat}."""
    out = {}
    for name in os.listdir(d):
        try:
            out[name] = os.lstat(os.path.join(d, name))
        except FileNotFoundError:
            pass
    return out


def read_file(path, drop=True):
    """Whole file; `drop` first drops its page cache so imapfs serves it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if drop:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        chunks = []
        while True:
            b = os.read(fd, 1 << 17)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def flags_xattr(path):
    return sorted(os.getxattr(path, "user.imap.flags").decode().split())


def run(args, timeout=30):
    t0 = time.monotonic()
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    r.elapsed = time.monotonic() - t0
    return r


def errno_name(e):
    return errno.errorcode.get(e, str(e))
