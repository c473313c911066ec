"""Helpers for the write-operation tests (tests/integration/test_write_*.py).

Every write test runs against a private Dovecot of its own (ScratchServer,
started by the conftest fixtures scratch_dovecot, scratch_dovecot_nomove and
scratch_server), never against the session `dovecot` that the read-only
tests compare with their manifest.  Folder names are unique per test
(unique_folder) so the tests of one module do not see each other's mail.

The server side is always checked with imaplib: a message is identified by
its Message-ID and the SHA-256 of BODY[].
"""

import datetime as dt
import itertools
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time

import helpers
from helpers import mailgen

UTC = dt.timezone.utc
DOVECOT_ENV = helpers.SERVER_ENV    # dovecot-env, or cyrus-env (IMAPFS_TEST_SERVER)
FAULT_PROXY = os.path.join(helpers.SCRIPTS, "fault-proxy.py")
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


# -- private Dovecot ------------------------------------------------------------

class ScratchServer:
    """A private Dovecot (scripts/dovecot-env) in a fresh /tmp directory."""

    def __init__(self, no_move=False, extra_args=()):
        self.no_move = no_move
        self.extra_args = list(extra_args)     # more dovecot-env start options
        self.base = tempfile.mkdtemp(prefix="imapfs-wt-")
        os.chmod(self.base, 0o711)      # the Dovecot mail user must reach DIR
        self.dir = os.path.join(self.base, helpers.SERVER)
        self.env = None

    def start(self):
        args = [helpers.PYTHON, DOVECOT_ENV, "start", self.dir] + self.extra_args
        if self.no_move:
            args.append("--no-move")
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        if r.returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
            raise RuntimeError("%s start failed:\n" % os.path.basename(DOVECOT_ENV) +
                               r.stderr.decode(errors="replace"))
        self.env = mailgen.load_env(self.dir)
        return self

    def stop(self):
        """dovecot-env stop (SIGTERM, then SIGKILL after 5 s)."""
        subprocess.run([helpers.PYTHON, DOVECOT_ENV, "stop", self.dir], timeout=30)

    def restart(self, timeout=10):
        """Start the stopped instance again with its own dovecot.conf: same
        ports, certificates and password (dovecot-env start would make new
        ones)."""
        if helpers.SERVER == "cyrus":
            r = subprocess.run([helpers.PYTHON, DOVECOT_ENV, "restart", self.dir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60)
            if r.returncode != 0:
                raise RuntimeError("cyrus-env restart failed:\n" +
                                   r.stderr.decode(errors="replace"))
            return
        os.makedirs(self.env["BASE_DIR"], exist_ok=True)
        os.chmod(self.env["BASE_DIR"], 0o755)
        with open(os.path.join(self.dir, "dovecot.restart.stderr"), "ab") as errf:
            r = subprocess.run([DOVECOT, "-c", self.env["CONF"]],
                               stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                               timeout=30)
        if r.returncode != 0:
            raise RuntimeError("dovecot restart failed (exit %d)" % r.returncode)
        ok = helpers.wait_for(lambda: all(port_open(p) for p in (
            self.env["IMAP_PORT"], self.env["IMAPS_PORT"])), timeout, 0.05)
        if not ok:
            raise RuntimeError("restarted dovecot does not listen within %ds" % timeout)

    def cleanup(self):
        self.stop()
        if os.environ.get("IMAPFS_TEST_KEEP"):
            print("\nkept scratch %s directory: %s" % (
                helpers.SERVER.capitalize(), self.dir))
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    def connect(self):
        return mailgen.connect(self.env)

    def admin(self):
        """An IMAPS session of Cyrus's administrator (cyrus-env's
        imapfsadmin: creates shared folders, sets ACLs); Cyrus only."""
        return admin_connect(self.env)

    def url(self, port=None, host=None):
        return "imaps://%s@%s:%s" % (self.env["USER"], host or self.env["HOST"],
                                     port or self.env["IMAPS_PORT"])

    def opts(self, cache_dir):
        return ["ca_file=" + self.env["CA_FILE"],
                "password_file=" + self.env["PASSWORD_FILE"],
                "cache_dir=" + cache_dir]


def is_cyrus():
    """True when the suite runs against Cyrus (IMAPFS_TEST_SERVER=cyrus)."""
    return helpers.SERVER == "cyrus"


def admin_connect(env):
    import imaplib
    import ssl
    with open(env["ADMIN_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    m = imaplib.IMAP4_SSL(env.get("HOST", "localhost"), int(env["IMAPS_PORT"]),
                          ssl_context=ssl.create_default_context(cafile=env["CA_FILE"]),
                          timeout=60)
    m.login(env["ADMIN"], password)
    return m


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
            return True
    except OSError:
        return False


# -- messages -------------------------------------------------------------------

_counter = itertools.count(1)


def unique(prefix):
    return "%s-%d-%d" % (prefix, os.getpid() % 100000, next(_counter))


def unique_folder(prefix="W"):
    return unique(prefix)


def make_msg(token, i=0, *, size=600, when=None, subject=None, body="plain",
             rnd=None):
    """A generated CRLF message: dict(raw, msgid, subject, when, sha)."""
    rnd = rnd or random.Random("%s/%d" % (token, i))
    when = when or dt.datetime(2024, 1, 1 + i % 28, 10, i % 60, 0, tzinfo=UTC)
    subject = subject or "%s message %d" % (token, i)
    msgid = "%s.%d@%s" % (token, i, mailgen.MSGID_DOMAIN)
    raw = mailgen.build_message(rnd, subject=subject.encode(), msgid=msgid,
                                when=when, body=body, size=size)
    return {"raw": raw, "msgid": "<%s>" % msgid, "subject": subject, "when": when,
            "sha": helpers.sha256(raw)}


def create_folder(m, folder):
    typ, data = m.create(mailgen.qmbox(folder))
    if typ != "OK" and b"exists" not in b" ".join(d or b"" for d in data).lower():
        raise RuntimeError("CREATE %s failed: %r" % (folder, data))


def seed(m, folder, msgs, flags=(), create=True):
    """APPEND the messages (with INTERNALDATE = msg["when"]); sets msg["uid"]
    and msg["folder"].  `flags` may be a list (for all) or a callable."""
    if create:
        create_folder(m, folder)
    for i, msg in enumerate(msgs):
        fl = flags(i) if callable(flags) else list(flags)
        msg["uid"] = mailgen.append(m, folder, msg["raw"], fl, msg["when"])
        msg["folder"] = folder
        msg["flags"] = sorted(fl)
    return msgs


def msgid_of(raw):
    """The Message-ID header value (with <>), or None."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    mm = re.search(rb"(?im)^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)", head)
    return mm.group(1).decode("utf-8", "replace") if mm else None


_META = re.compile(rb"UID (\d+)|INTERNALDATE \"([^\"]+)\"|FLAGS \(([^)]*)\)")


def folder_contents(m, folder):
    """[{uid, msgid, sha, flags (sorted, no \\Recent), internaldate, size}] of a
    folder (EXAMINE; [] if the folder does not exist)."""
    typ, data = m.select(mailgen.qmbox(folder), readonly=True)
    if typ != "OK":
        return []
    if int(data[0]) == 0:
        return []
    data = mailgen.check(m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])"),
                         "FETCH all")
    out = []
    i = 0
    while i < len(data):
        item = data[i]
        if isinstance(item, tuple):
            meta, body = item[0], item[1]
            if i + 1 < len(data) and isinstance(data[i + 1], bytes):
                meta += data[i + 1]
                i += 1
            rec = {"size": len(body), "sha": helpers.sha256(body),
                   "msgid": msgid_of(body), "body": body}
            for mm in _META.finditer(meta):
                if mm.group(1):
                    rec["uid"] = int(mm.group(1))
                elif mm.group(2):
                    rec["internaldate"] = mailgen.parse_internaldate(mm.group(2))
                elif mm.group(3) is not None:
                    rec["flags"] = sorted(f for f in mm.group(3).decode().split()
                                          if f != "\\Recent")
            out.append(rec)
        i += 1
    return out


def all_folders(m):
    """Every folder name (UTF-8) the server lists, selectable or not."""
    data = mailgen.check(m.list('""', "*"), "LIST")
    return sorted(name for flags, delim, name in mailgen.parse_list(data)
                  if "\\NonExistent" not in flags)


def subscribed(m):
    data = mailgen.check(m.lsub('""', "*"), "LSUB")
    return sorted(name for flags, delim, name in mailgen.parse_list(data))


def raw_list_names(m):
    """Mailbox names exactly as LIST sends them (modified UTF-7, undecoded)."""
    data = mailgen.check(m.list('""', "*"), "LIST")
    out = []
    for item in data:
        if isinstance(item, tuple):
            out.append(item[1].decode("ascii"))
        elif item:
            mm = re.match(rb'\([^)]*\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$', item)
            name = mm.group(1)
            if name.startswith(b'"'):
                name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
            out.append(name.decode("ascii"))
    return out


def locate(m, msgs, folders=None):
    """{msgid: [(folder, rec), ...]} over `folders` (default: all) for the
    given message dicts."""
    want = {msg["msgid"] for msg in msgs}
    out = {w: [] for w in want}
    for f in (folders if folders is not None else all_folders(m)):
        for rec in folder_contents(m, f):
            if rec["msgid"] in want:
                out[rec["msgid"]].append((f, rec))
    return out


def check_once(m, msgs, folders=None, allowed=None):
    """Problems (list of str) unless every message is on the server exactly
    once, with the right bytes, in one of `allowed` folders (if given)."""
    found = locate(m, msgs, folders)
    problems = []
    for msg in msgs:
        hits = found[msg["msgid"]]
        where = ["%s/%s%s" % (f, r["uid"], " (\\Deleted)" if "\\Deleted" in
                              r.get("flags", ()) else "") for f, r in hits]
        if len(hits) != 1:
            problems.append("%s: %d copies %s" % (msg["msgid"], len(hits), where))
            continue
        f, rec = hits[0]
        if rec["sha"] != msg["sha"]:
            problems.append("%s: bytes differ in %s" % (msg["msgid"], f))
        if allowed is not None and f not in allowed:
            problems.append("%s: in %s, expected one of %s" % (msg["msgid"], f, allowed))
    return problems


def wait_once(server, msgs, folders=None, allowed=None, timeout=10.0,
              poke=None):
    """Poll (bounded) until check_once passes; returns the last problems.
    `poke()` (e.g. an ls through the mount) runs between polls so a lazy
    reconciliation gets a chance."""
    deadline = time.monotonic() + timeout
    while True:
        m = server.connect()
        try:
            problems = check_once(m, msgs, folders, allowed)
        finally:
            m.logout()
        if not problems or time.monotonic() > deadline:
            return problems
        if poke:
            try:
                poke()
            except OSError:
                pass
        time.sleep(0.5)


def capabilities(m):
    typ, data = m.capability()
    return set(data[0].decode().upper().split())


def rfc3339(ts):
    return dt.datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical(msg, uid):
    """Canonical file name of a make_msg() message stored with `uid`."""
    return helpers.expected_name(msg["subject"], int(msg["when"].timestamp()), uid)


def listing_uids(path):
    return sorted(helpers.uid_of(n) for n in os.listdir(path))


def run(args, timeout=120, **kw):
    """subprocess.run, captured, bounded."""
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


# -- receive folders (tests/integration/test_rfolders_*.py) ------------------------

RF_CTL = ".receive-folders"
RF_HEADER = "# class\tfolder\tmodified-UTC\tflags"
RF_DEFAULTS = [("", "INBOX", ["nodelete"]), ("IPC", "/", []),
               ("IPM", "INBOX", ["fixed"]), ("REPORT.IPM", "INBOX", ["fixed"])]
_RF_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_C_ESC = {"\\": "\\", '"': '"', "t": "\t", "n": "\n", "r": "\r", "a": "\a",
          "b": "\b", "f": "\f", "v": "\v", "'": "'", "?": "?"}


class MetadataScratchServer(ScratchServer):
    """A ScratchServer started with `dovecot-env start --metadata` (RFC 5464
    METADATA; server annotations in HOME/dovecot-attributes)."""

    def start(self):
        args = [helpers.PYTHON, DOVECOT_ENV, "start", self.dir, "--metadata"]
        if self.no_move:
            args.append("--no-move")
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        if r.returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
            raise RuntimeError("%s start --metadata failed:\n" %
                               os.path.basename(DOVECOT_ENV) +
                               r.stderr.decode(errors="replace"))
        self.env = mailgen.load_env(self.dir)
        return self


def _imaplib_metadata_commands():
    import imaplib
    for c in ("SETMETADATA", "GETMETADATA"):
        imaplib.Commands.setdefault(c, ("AUTH", "SELECTED"))


def get_metadata(m, mailbox, entry):
    """GETMETADATA MAILBOX ENTRY -> the value (bytes) or None (NIL).
    mailbox "" = server annotation."""
    _imaplib_metadata_commands()
    mb = '""' if mailbox == "" else mailgen.qmbox(mailbox)
    m.untagged_responses.pop("METADATA", None)
    typ, data = m._simple_command("GETMETADATA", mb, entry)
    if typ != "OK":
        raise RuntimeError("GETMETADATA %s %s failed: %r" % (mailbox, entry, data))
    typ, data = m._untagged_response(typ, data, "METADATA")
    for item in data or ():
        if isinstance(item, tuple):            # ... (ENTRY {n}, literal)
            return item[1]
        if item and item.rstrip().endswith(b"NIL)"):
            return None
        mm = re.search(rb'"((?:[^"\\]|\\.)*)"\)\s*$', item or b"")
        if mm:
            return re.sub(rb"\\(.)", rb"\1", mm.group(1))
    return None


def rf_unquote(field):
    """A control-file field: bare, or a C-escaped quoted string."""
    if not field.startswith('"'):
        return field
    if len(field) < 2 or not field.endswith('"'):
        raise ValueError("bad quoted field %r" % field)
    s, out, i = field[1:-1], [], 0
    while i < len(s):
        c = s[i]
        if c == '"':
            raise ValueError("unescaped quote in %r" % field)
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(s):
            raise ValueError("dangling backslash in %r" % field)
        c = s[i]
        if c in _C_ESC:
            out.append(_C_ESC[c])
            i += 1
        elif c == "x":
            mm = re.match(r"[0-9A-Fa-f]{1,2}", s[i + 1:])
            if not mm:
                raise ValueError("bad \\x escape in %r" % field)
            out.append(chr(int(mm.group(0), 16)))
            i += 1 + len(mm.group(0))
        elif c in "01234567":
            mm = re.match(r"[0-7]{1,3}", s[i:])
            out.append(chr(int(mm.group(0), 8)))
            i += len(mm.group(0))
        else:
            raise ValueError("unknown escape \\%s in %r" % (c, field))
    # octal/hex escapes are bytes: re-decode them as UTF-8
    raw = "".join(out)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def rf_parse(text):
    """Parse `cat MOUNT/.receive-folders` strictly (section 4 format):
    [{cls, folder, ts, flags, line}].  Raises AssertionError on a format
    violation."""
    assert text.endswith("\n"), "table does not end with a newline: %r" % text[-80:]
    lines = text[:-1].split("\n")
    assert lines[0] == RF_HEADER, "header line %r, expected %r" % (lines[0], RF_HEADER)
    rows = []
    for line in lines[1:]:
        f = line.split("\t")
        assert len(f) in (3, 4), "row %r: %d TAB-separated fields" % (line, len(f))
        assert _RF_TS.match(f[2]), "row %r: bad modified-UTC %r" % (line, f[2])
        flags = f[3].split(",") if len(f) == 4 else []
        assert len(f) == 3 or (f[3] and all(fl in ("nodelete", "fixed") for fl in flags)), \
            "row %r: bad flags field (no flags: no 4th field)" % line
        rows.append({"cls": rf_unquote(f[0]), "folder": rf_unquote(f[1]),
                     "ts": f[2], "flags": flags, "line": line})
    for a, b in zip(rows, rows[1:]):
        assert a["cls"].lower() <= b["cls"].lower(), \
            "rows not sorted case-insensitively by class: %r before %r" % (
                a["line"], b["line"])
    return rows


def rf_read(mnt_path):
    with open(os.path.join(mnt_path, RF_CTL), "rb") as f:
        return f.read().decode("utf-8")


def rf_rows(mnt_path):
    return rf_parse(rf_read(mnt_path))


def rf_map(mnt_path):
    """{class.lower(): (folder, flags)} of the current table."""
    return {r["cls"].lower(): (r["folder"], r["flags"]) for r in rf_rows(mnt_path)}


def rf_write(mnt_path, data, *, flags=os.O_WRONLY):
    """One open, ONE write(2) of `data`, close.  Returns (write_errno,
    close_errno); 0 = success.  A write that fails is not retried."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd = os.open(os.path.join(mnt_path, RF_CTL), flags)
    werr = cerr = 0
    try:
        if data:
            try:
                n = os.write(fd, data)
                assert n == len(data), "short write: %d of %d" % (n, len(data))
            except OSError as e:
                werr = e.errno
    finally:
        try:
            os.close(fd)
        except OSError as e:
            cerr = e.errno
    return werr, cerr


def rf_set(mnt_path, *lines):
    """Apply lines (one write); fail the test unless it succeeds."""
    data = "".join(l + "\n" for l in lines)
    werr, cerr = rf_write(mnt_path, data)
    if werr or cerr:
        raise AssertionError("writing %r to %s: write errno %s, close errno %s" % (
            data, RF_CTL, werr and errno_name(werr), cerr and errno_name(cerr)))


def rf_echo(mnt_path, line, timeout=30):
    """`echo LINE > MOUNT/.receive-folders` through sh (O_TRUNC)."""
    # bash, not dash: dash reports every failed write as "I/O error"
    return run(["bash", "-c", 'echo "$1" > "$2"', "bash", line,
                os.path.join(mnt_path, RF_CTL)], timeout=timeout)


def rf_get(mnt_path, cls):
    """GetReceiveFolder via the xattr: (folder, explicit class) as strings,
    exactly as returned (no unquoting)."""
    v = os.getxattr(os.path.join(mnt_path, RF_CTL), "user.receive_folder." + cls)
    s = v.decode("utf-8")
    assert s.count("\t") == 1, "xattr value %r is not FOLDER<TAB>CLASS" % v
    folder, explicit = s.split("\t")
    return folder, explicit


def errno_name(e):
    import errno as _errno
    return _errno.errorcode.get(e, str(e))


def folder_counts(m):
    """{folder: message count} for every selectable folder (STATUS)."""
    out = {}
    data = mailgen.check(m.list('""', "*"), "LIST")
    for flags, delim, name in mailgen.parse_list(data):
        if "\\Noselect" in flags or "\\NonExistent" in flags:
            continue
        typ, st = m.status(mailgen.qmbox(name), "(MESSAGES)")
        mm = re.search(rb"MESSAGES (\d+)", st[0] or b"") if typ == "OK" else None
        out[name] = int(mm.group(1)) if mm else None
    return out


def plant_empty_uidlist_lock(server, folder):
    """What a Dovecot session process SIGKILLed between creating its
    dovecot-uidlist.lock and writing its PID into it leaves (with
    dotlock_use_excl = yes): a lock without a PID, which Dovecot breaks only
    after 2 minutes.  Every SELECT of the folder waits for it."""
    lock = os.path.join(server.env["MAIL_DIR"], folder, "dovecot-uidlist.lock")
    with open(lock, "w"):
        pass
    os.chown(lock, server.env["MAIL_UID"], server.env["MAIL_GID"])
    return lock
