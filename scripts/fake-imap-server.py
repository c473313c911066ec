#!/usr/bin/env python3
"""A tiny scripted IMAP server on 127.0.0.1 for cases Dovecot can't produce.

    scripts/fake-imap-server.py --mode MODE [--port N] [--lifetime SECONDS]
                                [--log FILE]

Prints the listening port as the first line on stdout (then flushes), serves
connections (one thread each) and exits after --lifetime seconds (default
30).  Every line received is appended to --log if given ("C: ..." lines, and
"S: ..." for what was sent), so a test can check what a client sent.

Modes:
  no-starttls   greets "* OK" (no capabilities in the greeting);
                CAPABILITY -> "IMAP4rev1 AUTH=PLAIN LOGIN" (no STARTTLS);
                LOGOUT, NOOP; BAD for anything else.
  account       plain TCP (mount with -o plaintext), CAPABILITY "IMAP4rev1
                LOGIN", any LOGIN accepted; a tiny scripted account (see
                ACCOUNT / account_messages()) with lying RFC822.SIZEs, a
                message whose body FETCH answers NO, one expunged after
                it was listed (an empty body, then NO [EXPUNGEISSUED]),
                and a folder whose SELECT answers NO.  Deterministic: a test can import this
                file and call account_messages() for the expected bytes.

  bye-mid-fetch plain TCP, CAPABILITY "IMAP4rev1 LOGIN IDLE", an honest
                account (HONEST: INBOX and Other, sizes from 650 bytes to
                200 KB).  The first --bye-count (default 1) metadata FETCHes
                (no body) and the first --bye-count body FETCHes of the
                folder --folder (default Other), over all connections, are
                sabotaged, then the server behaves.  --style says how:
                  untagged  the first message's complete FETCH response, then
                            "* BYE", then the connection is closed
                  inside    the first message's FETCH response without its
                            closing parenthesis (after the literal, if any),
                            then "* BYE" and close
                  literal   the first literal of the response cut in half,
                            then "* BYE" where the literal's bytes would go
                            on, and close (the client sees EOF mid-literal)
  bad-fetch     like bye-mid-fetch's honest account, but in --folder
                (default Other) the FETCH response of UID --uid (default 3)
                is unparsable whenever that UID is part of a FETCH:
                --bad size gives "RFC822.SIZE 12x34", --bad date an
                INTERNALDATE "31-Foo-2024 99:61:00 +0000" (default size).

Every mode's account is deterministic: a test can import this file and call
account_messages(ACCOUNT) or account_messages(HONEST) for the bytes.

  slow-listing  the honest account plus a folder Many (300 messages) whose
                listing FETCH pauses, or loses its connection, half-way
                (--listing-fault, --pause; see class SlowListing).

  hostile       the honest account with an --attack: hostile folder names
                in LIST, or, in the listing FETCH of --folder, a literal
                announcing 4 GB, an endless line, a response that never ends
                (see class Hostile).

  preauth, starttls-inject, escapes, codes
                hostile sessions (see "hostile sessions" below): PREAUTH
                greetings, a STARTTLS answer with injected bytes, text full
                of terminal escapes, RFC 5530 response codes with German
                text; optionally over TLS (--tls, --cert, --key).
  appendlimit   the honest account, CAPABILITY with APPENDLIMIT=--append-limit
                (RFC 7889); an APPEND of a literal larger than
                --enforce-limit (default: the same) gets "NO [TOOBIG] Message
                too large" without a continuation, a smaller one is read and
                answered OK (and not listed afterwards).

  big-sizes     the honest INBOX plus a folder Huge: UIDs 1 and 2 claim an
                RFC822.SIZE of 4294967000 (near 4 GiB); UID 1 has 900 bytes,
                UIDs 2 and 3 never end (a partial FETCH BODY[]<o.n> always
                gets n bytes: the body goes on past what IMAP can address),
                UID 3 claims 1000 bytes; and a folder Spill whose UID 1
                (1,000,000 bytes, honest size) answers a partial FETCH of
                more than 131072 bytes (a read-ahead run) with 100 bytes
                more than asked for; and a folder Shifted whose UID 1
                (400,000 bytes, honest size) answers a partial FETCH
                BODY[]<o.n> with o > 0 with the n bytes from o + 1, labelled
                BODY[]<o+1> (the right bytes of another range); and a
                folder Cut whose UID 1 (8 blocks, 1048576 bytes) sees the
                first partial FETCH of more than 131072 bytes answered in
                full and the connection closed before the tagged OK.

  compress      the honest account, CAPABILITY with COMPRESS=DEFLATE (RFC
                4978), done for real (raw deflate both ways, a sync flush
                after each write) -- with a --compress-attack on connections
                from number --attack-from (default 1) on; see class Compress.

  inbox-case    the honest account (IDLE too), but LIST names INBOX "Inbox"
                and "INBOX" by turns (over all connections), as a server
                might that changed its mind, and each SELECT answers after
                --select-delay ms (default 20): a client reading INBOX holds
                its name while the next LIST replaces it.

To add a mode, subclass Session, override what differs (greeting,
capabilities, or a cmd_<NAME> method), and register it in MODES.  Ideas:
hostile folder names in LIST, a lying RFC822.SIZE, an endless line, a server
that stalls after the greeting...
"""

import argparse
import os
import random
import re
import socket
import sys
import threading
import time

MAX_LINE = 64 * 1024
IDLE_TIMEOUT = 15.0
MAX_CONNECTIONS = 64
OPTS = None          # the parsed command line (set by main)


class Session:
    """One client connection.  Subclasses script the behaviour."""

    greeting_text = "* OK fake IMAP server ready"
    capabilities = "IMAP4rev1 AUTH=PLAIN LOGIN"

    def __init__(self, conn, log):
        self.conn = conn
        self.log = log
        self.buf = b""
        self.done = False

    # -- I/O ------------------------------------------------------------
    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.log(b"S: " + line)
        self.conn.sendall(line + b"\r\n")

    def readline(self):
        while b"\r\n" not in self.buf and b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ConnectionError("line too long")
            chunk = self.conn.recv(4096)
            if not chunk:
                raise ConnectionError("client closed")
            self.buf += chunk
        i = self.buf.index(b"\n")
        line, self.buf = self.buf[:i].rstrip(b"\r"), self.buf[i + 1:]
        self.log(b"C: " + line)
        return line

    # -- protocol -------------------------------------------------------
    def greeting(self):
        self.send(self.greeting_text.replace("{caps}", self.capabilities))

    def run(self):
        self.greeting()
        while not self.done:
            line = self.readline()
            parts = line.split(None, 2)
            if len(parts) < 2:
                self.send(b"* BAD missing tag or command")
                continue
            tag = parts[0].decode("ascii", "replace")
            cmd = parts[1].decode("ascii", "replace").upper()
            args = parts[2] if len(parts) > 2 else b""
            handler = getattr(self, "cmd_" + cmd.replace("-", "_"), None)
            if handler is None:
                self.send("%s BAD command not supported here" % tag)
            else:
                handler(tag, args)

    def cmd_CAPABILITY(self, tag, args):
        self.send("* CAPABILITY " + self.capabilities)
        self.send(tag + " OK CAPABILITY completed")

    def cmd_NOOP(self, tag, args):
        self.send(tag + " OK NOOP completed")

    def cmd_LOGOUT(self, tag, args):
        self.send("* BYE logging out")
        self.send(tag + " OK LOGOUT completed")
        self.done = True


class NoStartTLS(Session):
    capabilities = "IMAP4rev1 AUTH=PLAIN LOGIN"


# -- mode "account" -------------------------------------------------------------

INTERNALDATE = "01-Jan-2024 10:00:00 +0000"
SYSTEM_FLAGS = r"\Answered \Flagged \Deleted \Seen \Draft"

# folder -> [(uid, subject, real length, claimed RFC822.SIZE or None (= real),
#             flags, deliverable)]
ACCOUNT = {
    "INBOX": [
        (1, "Size too small", 300, 200, r"\Seen", True),
        (2, "Size too large", 1000, 5000, r"\Seen", True),
        (3, "Spans blocks", 300000, 140000, "", True),
        (4, "Undeliverable", 500, 500, "", False),
        (5, "Normal", 700, None, r"\Seen \Flagged", True),
        (6, "Blocks too large", 150000, 400000, "", True),
    ],
    "Broken": None,          # listed, but SELECT answers NO
    "Fine": [
        (1, "Fine message", 900, None, r"\Seen", True),
    ],
    # UID 1 expunged by "another client" after it was listed: its body
    # comes back as an empty literal and the FETCH ends NO [EXPUNGEISSUED]
    # (Dovecot's answer), after the other messages' bodies
    "Gone": [
        (1, "Gone meanwhile", 900, None, "", "expunged"),
        (2, "Still here", 800, None, "", True),
    ],
}
ACCOUNT_FOLDERS = ["INBOX", "Broken", "Fine", "Gone"]


def make_message(folder, uid, subject, length):
    """A deterministic RFC 5322 message of exactly `length` bytes: a few
    headers, then pseudo-random printable lines ending in CRLF."""
    head = ("From: Fake Sender <sender@example.org>\r\n"
            "To: alice@example.org\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
            "Message-ID: <%s.%d@fake.example.org>\r\n"
            "\r\n" % (subject, folder.lower(), uid)).encode()
    if length < len(head) + 2:
        raise ValueError("message too short for its headers")
    rng = random.Random("%s/%d/%d" % (folder, uid, length))
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-"
    out = [head]
    remaining = length - len(head)
    while remaining > 80:
        n = rng.randint(0, 76)
        out.append(bytes(rng.choice(alphabet) for _ in range(n)) + b"\r\n")
        remaining -= n + 2
    out.append(bytes(rng.choice(alphabet) for _ in range(remaining - 2)) + b"\r\n")
    body = b"".join(out)
    assert len(body) == length
    return body


# mode "bye-mid-fetch" / "bad-fetch": every message honest and deliverable
HONEST = {
    "INBOX": [
        (1, "Inbox one", 800, None, r"\Seen", True),
        (2, "Inbox two", 1200, None, "", True),
    ],
    "Other": [
        (1, "Other one", 700, None, r"\Seen", True),
        (2, "Other two", 1500, None, "", True),
        (3, "Other three", 2500, None, r"\Flagged", True),
        (4, "Other four", 200000, None, r"\Seen", True),
        (5, "Other five", 3000, None, "", True),
        (6, "Other six", 650, None, r"\Seen", True),
    ],
}
HONEST_FOLDERS = ["INBOX", "Other"]

_messages_cache = {}


def account_messages(account=None):
    """{folder: {uid: dict(subject, body, claimed, flags, deliverable)}} of
    `account` (default ACCOUNT, the "account" mode's)."""
    account = ACCOUNT if account is None else account
    key = id(account)
    if key not in _messages_cache:
        out = {}
        for folder, msgs in account.items():
            if msgs is None:
                continue
            out[folder] = {
                uid: {"subject": subj, "body": make_message(folder, uid, subj, real),
                      "claimed": real if claimed is None else claimed,
                      "flags": flags, "deliverable": ok}
                for uid, subj, real, claimed, flags, ok in msgs}
        _messages_cache[key] = out
    return _messages_cache[key]


def parse_set(spec, maxval):
    """An IMAP sequence set ("1:5", "3:*", "1,4") -> set of ints (RFC 3501:
    n:m is inclusive whatever the order; "*" is the largest number)."""
    out = set()
    for part in spec.split(","):
        ends = part.split(":")
        if len(ends) > 2:
            raise ValueError(spec)
        nums = [maxval if e == "*" else int(e) for e in ends]
        lo, hi = min(nums), max(nums)
        if hi - lo > 1000000:
            raise ValueError(spec)
        out.update(range(lo, hi + 1))
    return out


def imap_args(raw):
    """Split LOGIN/SELECT arguments: atoms and quoted strings (no literals)."""
    out = []
    for m in re.finditer(rb'"((?:[^"\\]|\\.)*)"|(\S+)', raw):
        if m.group(1) is not None:
            out.append(re.sub(rb"\\(.)", rb"\1", m.group(1)))
        else:
            out.append(m.group(2))
    return out


class Account(Session):
    capabilities = "IMAP4rev1 LOGIN"
    greeting_text = "* OK [CAPABILITY {caps}] fake IMAP account ready"
    account = ACCOUNT
    folders = ACCOUNT_FOLDERS

    def __init__(self, conn, log):
        super().__init__(conn, log)
        self.authed = False
        self.selected = None    # folder name

    def sendraw(self, data):
        self.log(b"S: <%d bytes>" % len(data))
        self.conn.sendall(data)

    def cmd_LOGIN(self, tag, args):
        if len(imap_args(args)) != 2:
            self.send(tag + " BAD LOGIN needs user and password")
            return
        self.authed = True
        self.send(tag + " OK [CAPABILITY " + self.capabilities + "] logged in")

    def cmd_LIST(self, tag, args):
        if not self.authed:
            self.send(tag + " BAD not logged in")
            return
        a = imap_args(args)
        if len(a) == 2 and a[1] == b"":
            self.send('* LIST (\\Noselect) "/" ""')
        else:
            for name in self.folders:
                self.send('* LIST (\\HasNoChildren) "/" %s' % name)
        self.send(tag + " OK LIST completed")

    def cmd_SELECT(self, tag, args, examine=False):
        a = imap_args(args)
        if not self.authed or len(a) != 1:
            self.send(tag + " BAD SELECT needs one mailbox")
            return
        name = a[0].decode("utf-8", "replace")
        if name.upper() == "INBOX":
            name = "INBOX"
        self.selected = None
        if name not in self.account:
            self.send(tag + " NO [NONEXISTENT] no such mailbox")
            return
        if self.account[name] is None:
            self.send(tag + " NO cannot open")
            return
        msgs = account_messages(self.account)[name]
        self.selected = name
        self.send("* FLAGS (%s)" % SYSTEM_FLAGS)
        self.send("* OK [PERMANENTFLAGS (%s \\*)] flags" % SYSTEM_FLAGS)
        self.send("* %d EXISTS" % len(msgs))
        self.send("* 0 RECENT")
        self.send("* OK [UIDVALIDITY 1] UIDs valid")
        self.send("* OK [UIDNEXT %d] predicted next UID" % (max(msgs) + 1))
        self.send(tag + " OK [%s] %s completed" % ("READ-ONLY" if examine else "READ-WRITE",
                                                  "EXAMINE" if examine else "SELECT"))

    def cmd_EXAMINE(self, tag, args):
        self.cmd_SELECT(tag, args, examine=True)

    def cmd_CHECK(self, tag, args):
        self.send(tag + " OK CHECK completed")

    def cmd_CLOSE(self, tag, args):
        self.selected = None
        self.send(tag + " OK CLOSE completed")

    def cmd_FETCH(self, tag, args, by_uid=False):
        if self.selected is None:
            self.send(tag + " BAD no mailbox selected")
            return
        msgs = account_messages(self.account)[self.selected]
        uids = sorted(msgs)
        text = args.decode("ascii", "replace")
        m = re.match(r"(\S+)\s+(.*)$", text)
        if not m:
            self.send(tag + " BAD FETCH syntax")
            return
        try:
            wanted = parse_set(m.group(1), uids[-1] if by_uid else len(uids))
        except ValueError:
            self.send(tag + " BAD bad sequence set")
            return
        items = m.group(2).upper()
        body = re.search(r"BODY(?:\.PEEK)?\[\](?:<(\d+)\.(\d+)>)?", items)
        targets = [(seq, uid) for seq, uid in enumerate(uids, 1)
                   if (uid if by_uid else seq) in wanted]
        if body and any(not msgs[uid]["deliverable"] for _, uid in targets):
            self.send(tag + " NO [SERVERBUG] cannot deliver")
            return
        # one (head, literal or None, tail) per message: head ends with
        # "{n}\r\n" when a literal follows; tail ends with ")\r\n"
        parts = [self.fetch_parts(seq, uid, msgs[uid], items, body)
                 for seq, uid in targets]
        if self.fetch_hook(tag, "body" if body else "meta", parts):
            return
        for head, lit, tail in parts:
            self.sendraw(head + (lit or b"") + tail)
        if body and any(msgs[uid]["deliverable"] == "expunged" for _, uid in targets):
            self.send(tag + " NO [EXPUNGEISSUED] some of the messages no longer exist")
            return
        self.send(tag + " OK %sFETCH completed" % ("UID " if by_uid else ""))

    def fetch_parts(self, seq, uid, msg, items, body):
        if body:
            data = b"" if msg["deliverable"] == "expunged" else msg["body"]
            if body.group(1) is not None:
                off, ln = int(body.group(1)), int(body.group(2))
                part, origin = data[off:off + ln], "<%d>" % off
            else:
                part, origin = data, ""
            return (b"* %d FETCH (UID %d BODY[]%s {%d}\r\n" % (
                seq, uid, origin.encode(), len(part)), part, b")\r\n")
        hdr = ("Subject: %s\r\n\r\n" % msg["subject"]).encode()
        line = ("* %d FETCH (UID %d FLAGS (%s) RFC822.SIZE %d INTERNALDATE \"%s\""
                % (seq, uid, msg["flags"], msg["claimed"], INTERNALDATE))
        if "HEADER.FIELDS" in items:
            return ((line + " BODY[HEADER.FIELDS (SUBJECT)] {%d}\r\n" % len(hdr)).encode(),
                    hdr, b")\r\n")
        return (line.encode(), None, b")\r\n")

    def fetch_hook(self, tag, kind, parts):
        """Called before a FETCH's responses are sent; True = handled."""
        return False

    def cmd_SEARCH(self, tag, args, by_uid=False):
        if self.selected is None:
            self.send(tag + " BAD no mailbox selected")
            return
        uids = sorted(account_messages(self.account)[self.selected])
        nums = uids if by_uid else range(1, len(uids) + 1)
        self.send("* SEARCH" + "".join(" %d" % n for n in nums))
        self.send(tag + " OK SEARCH completed")

    def cmd_UID(self, tag, args):
        parts = args.split(None, 1)
        sub = parts[0].decode("ascii", "replace").upper() if parts else ""
        rest = parts[1] if len(parts) > 1 else b""
        if sub == "FETCH":
            self.cmd_FETCH(tag, rest, by_uid=True)
        elif sub == "SEARCH":
            self.cmd_SEARCH(tag, rest, by_uid=True)
        else:
            self.send(tag + " BAD UID %s not supported here" % sub)


# -- modes "bye-mid-fetch" and "bad-fetch" -------------------------------------

class Honest(Account):
    """The HONEST account, IDLE supported (so a client may watch INBOX)."""
    capabilities = "IMAP4rev1 LOGIN IDLE"
    account = HONEST
    folders = HONEST_FOLDERS

    def cmd_IDLE(self, tag, args):
        if self.selected is None:
            self.send(tag + " BAD no mailbox selected")
            return
        self.idle_started()
        self.conn.settimeout(None)          # the lifetime ends it
        try:
            line = self.readline()
        finally:
            self.conn.settimeout(IDLE_TIMEOUT)
        if line.strip().upper() != b"DONE":
            self.send(tag + " BAD expected DONE")
            return
        self.send(tag + " OK IDLE terminated")

    def idle_started(self):
        """IDLE's continuation (and whatever a mode sends with it)."""
        self.send("+ idling")

    def cmd_UNSELECT(self, tag, args):
        self.selected = None
        self.send(tag + " OK UNSELECT completed")

    def cmd_STATUS(self, tag, args):
        a = imap_args(args)
        name = a[0].decode("utf-8", "replace") if a else ""
        if name.upper() == "INBOX":
            name = "INBOX"
        if name not in self.account:
            self.send(tag + " NO [NONEXISTENT] no such mailbox")
            return
        msgs = account_messages(self.account)[name]
        self.send('* STATUS %s (MESSAGES %d UIDNEXT %d UIDVALIDITY 1 UNSEEN 0)' % (
            name, len(msgs), max(msgs) + 1))
        self.send(tag + " OK STATUS completed")


class Budget:
    """Sabotages left, shared by all connections of the server process."""
    lock = threading.Lock()
    left = {}

    @classmethod
    def take(cls, kind, start):
        with cls.lock:
            n = cls.left.setdefault(kind, start)
            if n <= 0:
                return False
            cls.left[kind] = n - 1
            return True


class ByeMidFetch(Honest):
    def fetch_hook(self, tag, kind, parts):
        if self.selected != OPTS.folder or not parts:
            return False
        if not Budget.take(kind, OPTS.bye_count):
            return False
        head, lit, tail = parts[0]
        bye = b"* BYE fake server: going away in the middle of a FETCH\r\n"
        style = OPTS.style
        if style == "literal" and lit is None:
            style = "inside"         # nothing to cut: no literal in the reply
        if style == "untagged":
            data = head + (lit or b"") + tail + bye
        elif style == "inside":
            data = head + (lit or b"") + b"\r\n" + bye
        else:                        # "literal"
            data = head + lit[:len(lit) // 2] + b"\r\n" + bye
        self.log(b"S: <sabotaged %s FETCH, style %s>" % (kind.encode(), style.encode()))
        self.sendraw(data)
        raise ConnectionError("sabotaged FETCH: connection closed")


class BadFetch(Honest):
    def fetch_parts(self, seq, uid, msg, items, body):
        head, lit, tail = super().fetch_parts(seq, uid, msg, items, body)
        if self.selected != OPTS.folder or uid != OPTS.uid:
            return head, lit, tail
        prefix = b"* %d FETCH (UID %d " % (seq, uid)
        assert head.startswith(prefix)
        if OPTS.bad == "size":
            junk = b"RFC822.SIZE 12x34 "
        else:
            junk = b'INTERNALDATE "31-Foo-2024 99:61:00 +0000" '
        if body is None:
            # replace the real item so the response has exactly one of it
            head = re.sub(rb" RFC822\.SIZE \d+" if OPTS.bad == "size" else
                          rb' INTERNALDATE "[^"]*"', b"", head)
        self.log(b"S: <unparsable FETCH response for UID %d>" % uid)
        return prefix + junk + head[len(prefix):], lit, tail


# -- mode "slow-listing" -----------------------------------------------------------

SLOW_LISTING = dict(HONEST)
SLOW_LISTING["Many"] = [(uid, "Many %d" % uid, 400 + uid % 7 * 10, None, "", True)
                        for uid in range(1, 301)]
SLOW_LISTING_FOLDERS = HONEST_FOLDERS + ["Many"]


class SlowListing(Honest):
    """The honest account plus a folder Many of 300 small messages, whose
    listing (metadata) FETCH is sent in two halves with --listing-fault
    between them: pause (--pause seconds, then the rest), drop (the first
    such FETCH only: the connection is closed after the first half) or
    always-drop (every one)."""
    account = SLOW_LISTING
    folders = SLOW_LISTING_FOLDERS

    def fetch_hook(self, tag, kind, parts):
        if self.selected != "Many" or kind != "meta" or len(parts) < 2:
            return False
        fault = OPTS.listing_fault
        if fault == "drop" and not Budget.take("listing", 1):
            return False
        half = len(parts) // 2
        for head, lit, tail in parts[:half]:
            self.sendraw(head + (lit or b"") + tail)
        if fault != "pause":
            self.log(b"S: <dropped the listing after %d messages>" % half)
            raise ConnectionError("listing cut: connection closed")
        self.log(b"S: <paused the listing after %d messages>" % half)
        time.sleep(OPTS.pause)
        for head, lit, tail in parts[half:]:
            self.sendraw(head + (lit or b"") + tail)
        self.send(tag + " OK UID FETCH completed")
        return True


# -- mode "hostile" ----------------------------------------------------------------

HOSTILE_NAMES = [
    "..", "../escape", "a/../../b", "/etc", "./dot", "x\x01y", "tab\there", "del\x7f",
    "&AAA-", "&Jjo", "&ZeVnLIqe-&ZeVnLIqe-", "ok&-fine", "..&AC8-..",
]


class Hostile(Honest):
    """The honest account, plus --attack:
      names        LIST also returns names that must never become paths:
                   "..", "../escape", "/etc", control characters, invalid
                   modified UTF-7 (HOSTILE_NAMES); "ok&-fine" is legitimate
      huge-literal the listing FETCH of --folder sends a literal announcing
                   4 GB ({4294967295}) and then bytes without end
      endless-line the listing FETCH of --folder sends one line that never
                   ends (no CRLF), as fast as the client reads
      never-ends   the listing FETCH of --folder sends "* OK" lines, ten a
                   second, and never the tagged reply"""

    def cmd_LIST(self, tag, args):
        if OPTS.attack != "names":
            return super().cmd_LIST(tag, args)
        a = imap_args(args)
        if len(a) == 2 and a[1] == b"":
            self.send('* LIST (\\Noselect) "/" ""')
        else:
            for name in self.folders:
                self.send('* LIST (\\HasNoChildren) "/" %s' % name)
            for name in HOSTILE_NAMES:
                quoted = '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')
                self.send(('* LIST (\\HasNoChildren) "/" %s' % quoted).encode("latin-1"))
        self.send(tag + " OK LIST completed")

    def fetch_hook(self, tag, kind, parts):
        if OPTS.attack == "names" or self.selected != OPTS.folder or kind != "meta" or not parts:
            return False
        self.log(b"S: <attack %s>" % OPTS.attack.encode())
        self.conn.settimeout(None)          # the lifetime, or the client, ends it
        if OPTS.attack == "huge-literal":
            self.sendraw(b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {4294967295}\r\n")
            chunk = b"Subject: " + b"A" * 65527
            while True:
                self.conn.sendall(chunk)
        elif OPTS.attack == "endless-line":
            self.sendraw(b"* 1 FETCH (UID 1 FLAGS (")
            chunk = b"\\Seen " * 9362
            while True:
                self.conn.sendall(chunk)
        else:                               # never-ends
            while True:
                self.conn.sendall(b"* OK still working on it\r\n")
                time.sleep(0.1)


# -- hostile sessions (tests/integration/test_hostile_session.py) ----------------
#
# TLS for any of these modes: --tls imaps (from the first byte) or --tls
# starttls (STARTTLS offered and done), with --cert/--key (PEM).  Their log
# lines start with "[N] ", N the connection's number, as connections overlap.

import ssl  # noqa: E402

CONNECTIONS = {"n": 0, "lock": threading.Lock()}


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(OPTS.cert, OPTS.key)
    return ctx


class Tagged(Honest):
    """The honest account; connection-numbered log lines; TLS per --tls."""

    def __init__(self, conn, log):
        with CONNECTIONS["lock"]:
            CONNECTIONS["n"] += 1
            self.number = CONNECTIONS["n"]
        super().__init__(conn, lambda line: log(b"[%d] " % self.number + line))
        self.tls = OPTS.tls == "imaps"

    @property
    def capabilities(self):
        caps = "IMAP4rev1 LOGIN IDLE"
        return caps + (" STARTTLS" if OPTS.tls == "starttls" and not self.tls else "")

    def run(self):
        if OPTS.tls == "imaps":
            self.conn = tls_context().wrap_socket(self.conn, server_side=True)
        super().run()

    def cmd_STARTTLS(self, tag, args):
        if OPTS.tls != "starttls" or self.tls:
            self.send(tag + " BAD STARTTLS not available")
            return
        self.send(tag + " OK Begin TLS negotiation now")
        self.conn = tls_context().wrap_socket(self.conn, server_side=True)
        self.tls = True

    def read_raw(self, seconds):
        """Logs whatever the client still sends within `seconds`."""
        self.conn.settimeout(seconds)
        try:
            data = self.buf + self.conn.recv(65536)
        except (socket.timeout, OSError):
            data = self.buf
        self.log(b"C-RAW: %d bytes" % len(data))
        self.done = True


class Preauth(Tagged):
    """Connections from number --preauth-from on greet "* PREAUTH" (already
    logged in); earlier ones greet "* OK" and want a LOGIN.  Then the honest
    account, IDLE included."""

    def greeting(self):
        if self.number >= OPTS.preauth_from:
            self.authed = True
            self.send("* PREAUTH [CAPABILITY %s] fake server: logged in already"
                      % self.capabilities)
        else:
            self.send("* OK [CAPABILITY %s] fake server ready" % self.capabilities)


class StarttlsInject(Tagged):
    """Offers STARTTLS and answers it with its OK and, in the same packet, a
    forged "* CAPABILITY" (CVE-2020-15953 style); then logs what the client
    still sends ("C-RAW: n bytes")."""

    @property
    def capabilities(self):
        return "IMAP4rev1 STARTTLS LOGINDISABLED"

    def cmd_STARTTLS(self, tag, args):
        self.sendraw(("%s OK Begin TLS negotiation now\r\n"
                      "* CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN\r\n" % tag).encode())
        self.read_raw(3.0)


ESCAPES = "\x1b]0;owned\x07 \x1b[2J \x9b31m \u009b1m \u202ereversed \u2066isolated\u2069"


class Escapes(Tagged):
    """Greets, and refuses every LOGIN, with text full of terminal escapes:
    ESC sequences, a raw C1 CSI byte, U+009B in UTF-8, bidi override and
    isolate (ESCAPES)."""

    def greeting(self):
        self.sendraw(("* OK [CAPABILITY %s] %s\r\n" % (self.capabilities, ESCAPES))
                     .encode("utf-8").replace(b"\xc2\x9b31m", b"\x9b31m", 1))

    def cmd_LOGIN(self, tag, args):
        self.sendraw(("%s NO [AUTHENTICATIONFAILED] %s\r\n" % (tag, ESCAPES))
                     .encode("utf-8").replace(b"\xc2\x9b31m", b"\x9b31m", 1))


# CREATE refusals, by the first word of the folder name: the RFC 5530 code,
# and text in German, so only the code can tell what went wrong
CREATE_REFUSALS = {
    "Exists": "NO [ALREADYEXISTS] Postfach existiert bereits",
    "Forbidden": "NO [NOPERM] Zugriff verweigert",
    "Limit": "NO [LIMIT] Zu viele Postf\u00e4cher",
    "Quota": "NO [OVERQUOTA] Speicherplatz ersch\u00f6pft",
    "Cannot": "NO [CANNOT] Unzul\u00e4ssiger Name",
    "Inuse": "NO [INUSE] Postfach wird gerade benutzt",
    "Plain": "NO Mailbox already exists",
    "Nocode": "NO Das hat nicht geklappt",
}
# APPEND refusals, by folder: (answer, before the literal's continuation?)
APPEND_REFUSALS = {
    "INBOX": ("NO [OVERQUOTA] Kontingent \u00fcberschritten", False),
    "Other": ("NO [LIMIT] Nachricht zu gro\u00df", True),
}


class Codes(Tagged):
    """The honest account, with MOVE and UIDPLUS; CREATE and APPEND always
    refused, with RFC 5530 response codes and German text (CREATE_REFUSALS,
    APPEND_REFUSALS); an APPEND's literal is read unless the refusal comes
    before it.  "Trash" is not listed until a CREATE of it, which is refused
    with ALREADYEXISTS as if another client had just made it; from then on
    LIST shows it.  UID MOVE answers OK with a COPYUID (and changes
    nothing)."""

    trash = {"listed": False}

    @property
    def capabilities(self):
        return "IMAP4rev1 LOGIN IDLE MOVE UIDPLUS"

    @property
    def folders(self):
        return HONEST_FOLDERS + (["Trash"] if self.trash["listed"] else [])

    def cmd_SUBSCRIBE(self, tag, args):
        self.send(tag + " OK SUBSCRIBE completed")

    def cmd_CREATE(self, tag, args):
        a = imap_args(args)
        name = a[0].decode("utf-8", "replace") if len(a) == 1 else ""
        word = re.match(r"[A-Za-z]*", name).group(0)
        if name == "Trash":
            self.trash["listed"] = True
            word = "Exists"
        self.send(("%s %s" % (tag, CREATE_REFUSALS.get(word, "NO [CANNOT] nein")))
                  .encode("utf-8"))

    def cmd_STATUS(self, tag, args):
        a = imap_args(args)
        if a and a[0] == b"Trash" and self.trash["listed"]:
            self.send("* STATUS Trash (MESSAGES 0 UIDNEXT 1000 UIDVALIDITY 7)")
            self.send(tag + " OK STATUS completed")
            return
        super().cmd_STATUS(tag, args)

    def cmd_UID(self, tag, args):
        m = re.match(rb"MOVE (\d+) (.+)$", args, re.I)
        if not m:
            return super().cmd_UID(tag, args)
        if self.selected is None:
            self.send(tag + " BAD no mailbox selected")
            return
        self.send("* OK [COPYUID 7 %s 1000] moved" % m.group(1).decode())
        self.send(tag + " OK MOVE completed")

    def cmd_APPEND(self, tag, args):
        m = re.match(rb"(\S+) .*\{(\d+)(\+?)\}$", args)
        if not m:
            self.send(tag + " BAD APPEND syntax")
            return
        folder = imap_args(m.group(1))[0].decode("utf-8", "replace")
        answer, early = APPEND_REFUSALS.get(folder, ("NO [CANNOT] nein", False))
        if early and not m.group(3):
            self.send(("%s %s" % (tag, answer)).encode("utf-8"))
            return
        if not m.group(3):
            self.send("+ go ahead")
        n = int(m.group(2))
        while len(self.buf) < n + 2:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("client closed")
            self.buf += chunk
        self.log(b"C: <literal of %d bytes>" % n)
        self.buf = self.buf[n:]
        self.readline()             # the rest of the command line: empty
        self.send(("%s %s" % (tag, answer)).encode("utf-8"))


IDLE_BURST = {folder: list(msgs) for folder, msgs in HONEST.items()}
BURST = {"sent": False, "lock": threading.Lock()}


class IdleBurst(Tagged):
    """The honest account; the first IDLE on INBOX is answered by "+ idling"
    and, in the same TCP segment (TCP_CORK), "* 3 EXISTS" for a message
    delivered that moment -- under --tls imaps two TLS records arriving
    together, of which a client reading ahead holds the second: one that then
    waits on the socket for news never sees it, and never sends DONE."""
    account = IDLE_BURST

    def idle_started(self):
        with BURST["lock"]:
            burst = self.selected == "INBOX" and not BURST["sent"]
            if burst:
                BURST["sent"] = True
                IDLE_BURST["INBOX"].append((3, "Inbox three", 900, None, "", True))
                _messages_cache.pop(id(IDLE_BURST), None)
        if not burst:
            super().idle_started()
            return
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        super().idle_started()
        self.send("* 3 EXISTS")
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        self.log(b"S: <burst sent>")


SESSION_MODES = {
    "idle-burst": IdleBurst,
    "preauth": Preauth,
    "starttls-inject": StarttlsInject,
    "escapes": Escapes,
    "codes": Codes,
}


def add_session_options(ap):
    ap.add_argument("--tls", default="none", choices=("none", "imaps", "starttls"),
                    help="preauth, starttls-inject, escapes, codes, idle-burst: TLS "
                    "(--cert, --key)")
    ap.add_argument("--cert", help="--tls: the server's certificate chain (PEM)")
    ap.add_argument("--key", help="--tls: the server's private key (PEM)")
    ap.add_argument("--preauth-from", type=int, default=1,
                    help="preauth: the first connection that greets with PREAUTH")


# -- mode "appendlimit" ------------------------------------------------------------

class AppendLimit(Honest):
    """The honest account announcing APPENDLIMIT=--append-limit."""

    @property
    def capabilities(self):
        return "IMAP4rev1 LOGIN IDLE APPENDLIMIT=%d" % OPTS.append_limit

    def read_literal(self, n):
        while len(self.buf) < n:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("client closed in a literal")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        self.log(b"C: <%d bytes>" % n)
        return data

    def cmd_APPEND(self, tag, args):
        m = re.search(rb"\{(\d+)\}$", args)
        if not self.authed or not m:
            self.send(tag + " BAD APPEND needs a literal")
            return
        n = int(m.group(1))
        limit = OPTS.append_limit if OPTS.enforce_limit is None else OPTS.enforce_limit
        if n > limit:
            self.send(tag + " NO [TOOBIG] Message too large")
            return
        self.send("+ ready")
        self.read_literal(n)
        if self.readline() != b"":
            self.send(tag + " BAD junk after the literal")
            return
        self.send(tag + " OK APPEND completed")


# -- mode "big-sizes" --------------------------------------------------------------

NEAR_4G = 4294967000
BIG_SIZES = {
    "INBOX": [(1, "Inbox one", 800, None, r"\Seen", True)],
    "Huge": [
        (1, "Claims 4 GB", 900, NEAR_4G, "", True),
        (2, "Endless", 900, NEAR_4G, "", True),
        (3, "Endless small", 900, 1000, "", True),
    ],
    "Spill": [(1, "Spills over", 1000000, None, "", True)],
    "Shifted": [(1, "Shifted by one", 400000, None, "", True)],
    "Cut": [(1, "Cut before the OK", 8 * 131072, None, "", True)],
}


class BigSizes(Honest):
    account = BIG_SIZES
    folders = ["INBOX", "Huge", "Spill", "Shifted", "Cut"]

    def fetch_hook(self, tag, kind, parts):
        if self.selected != "Cut" or kind != "body" or not parts or b"BODY[]<" not in parts[0][0] \
                or len(parts[0][1] or b"") <= 131072:
            return False
        if not Budget.take("cut", 1):
            return False
        head, lit, tail = parts[0]
        self.log(b"S: <Cut: the whole run, then the connection closed before the tagged OK>")
        self.sendraw(head + lit + tail)
        raise ConnectionError("Cut: connection closed before the tagged OK")

    def fetch_parts(self, seq, uid, msg, items, body):
        if self.selected == "Spill" and body and body.group(1) is not None and int(body.group(2)) > 131072:
            off, ln = int(body.group(1)), int(body.group(2))
            part = msg["body"][off:off + ln] + b"y" * 100
            return (b"* %d FETCH (UID %d BODY[]<%d> {%d}\r\n" % (seq, uid, off, len(part)), part, b")\r\n")
        if self.selected == "Shifted" and body and body.group(1) is not None and int(body.group(1)) > 0:
            off, ln = int(body.group(1)) + 1, int(body.group(2))
            part = msg["body"][off:off + ln]
            return (b"* %d FETCH (UID %d BODY[]<%d> {%d}\r\n" % (seq, uid, off, len(part)), part, b")\r\n")
        if self.selected != "Huge" or uid == 1 or not body or body.group(1) is None:
            return super().fetch_parts(seq, uid, msg, items, body)
        off, ln = int(body.group(1)), int(body.group(2))
        line = b"x" * 78 + b"\r\n"
        part = (line * (ln // len(line) + 1))[:ln]
        return (b"* %d FETCH (UID %d BODY[]<%d> {%d}\r\n" % (seq, uid, off, ln), part, b")\r\n")
# -- mode "inbox-case" ------------------------------------------------------------

class InboxCase(Honest):
    turn_lock = threading.Lock()
    turns = 0

    def cmd_LIST(self, tag, args):
        a = imap_args(args)
        if not self.authed or (len(a) == 2 and a[1] == b""):
            return super().cmd_LIST(tag, args)
        with InboxCase.turn_lock:
            InboxCase.turns += 1
            inbox = "Inbox" if InboxCase.turns % 2 else "INBOX"
        for name in self.folders:
            self.send('* LIST (\\HasNoChildren) "/" %s' % (inbox if name == "INBOX" else name))
        self.send(tag + " OK LIST completed")

    def cmd_SELECT(self, tag, args, examine=False):
        time.sleep(OPTS.select_delay / 1000.0)
        super().cmd_SELECT(tag, args, examine)


# -- mode "compress" ---------------------------------------------------------------

import zlib  # noqa: E402


class DeflateSocket:
    """A connection after COMPRESS DEFLATE: sendall deflates (raw, a sync
    flush after each call), recv inflates.  .raw is the socket below."""

    def __init__(self, raw):
        self.raw = raw
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        self.sent = 0               # compressed bytes sent

    def deflate(self, data):
        return self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)

    def sendall(self, data):
        z = self.deflate(data)
        self.sent += len(z)
        self.raw.sendall(z)

    def recv(self, n):
        while True:
            data = self.raw.recv(n)
            if not data:
                return b""
            out = self.inflater.decompress(data)
            if out:
                return out

    def settimeout(self, t):
        self.raw.settimeout(t)

    def close(self):
        self.raw.close()


class Compress(Tagged):
    """The honest account offering COMPRESS=DEFLATE, done for real.  From
    connection --attack-from on, --compress-attack:
      none       nothing: compression as it should be
      corrupt    the body FETCH of --folder: its response starts, deflated
                 as it should be, then comes a block of reserved type (a
                 deflate stream no inflater accepts) and garbage; the
                 connection stays open
      truncated  that response deflated, but only its first half is sent,
                 then the connection is closed (EOF inside the stream)
      stalled    the same first half, then nothing, the connection open
      bomb       that response is "* n FETCH (UID u FLAGS (" and then
                 deflated "A"s without end, 1 MiB at a time (about 1 KB
                 on the wire each): a line that never ends, inflating
                 1000:1
      inject     COMPRESS is answered OK and, in the same packet, a deflated
                 "* OK" line, before the client could have its inflater in
                 place; then what the client still sends is logged
                 ("C-RAW: n bytes")
    Connections before --attack-from (with inject) compress honestly, and
    answer the body FETCH of --folder with "* BYE" and close: the client
    has to connect again, and meets the attack."""

    @property
    def capabilities(self):
        return "IMAP4rev1 LOGIN IDLE COMPRESS=DEFLATE"

    def attacked(self):
        return self.number >= OPTS.attack_from and OPTS.compress_attack != "none"

    def cmd_COMPRESS(self, tag, args):
        if args.strip().upper() != b"DEFLATE":
            self.send(tag + " BAD only DEFLATE")
            return
        if isinstance(self.conn, DeflateSocket):
            self.send(tag + " NO [COMPRESSIONACTIVE] already")
            return
        if self.attacked() and OPTS.compress_attack == "inject":
            z = DeflateSocket(self.conn)
            self.sendraw(("%s OK DEFLATE active\r\n" % tag).encode() +
                         z.deflate(b"* OK [ALERT] injected before the inflater\r\n"))
            self.log(b"S: <injected deflated bytes after the OK>")
            self.conn = z
            self.read_raw(3.0)
            return
        self.send(tag + " OK DEFLATE active")
        self.conn = DeflateSocket(self.conn)

    def fetch_hook(self, tag, kind, parts):
        if kind != "body" or self.selected != OPTS.folder or not parts:
            return False
        if not isinstance(self.conn, DeflateSocket):
            return False
        attack = OPTS.compress_attack
        if attack == "none":
            return False
        if not self.attacked():
            if attack != "inject":
                return False
            self.send(b"* BYE going away (the next connection meets the attack)")
            raise ConnectionError("closed to make the client connect again")
        z, raw = self.conn, self.conn.raw
        head, lit, tail = parts[0]
        self.log(b"S: <compress attack %s>" % attack.encode())
        if attack == "corrupt":
            z.sendall(head)
            rng = random.Random(4711)
            raw.sendall(b"\x07" + bytes(rng.randrange(256) for _ in range(4096)))
            self.hold()
        elif attack in ("truncated", "stalled"):
            data = z.deflate(head + (lit or b"") + tail)
            raw.sendall(data[:len(data) // 2])
            if attack == "truncated":
                raise ConnectionError("cut inside the compressed stream")
            self.hold()
        else:                               # bomb
            z.sendall(head.split(b" BODY[]")[0] + b" FLAGS (")
            mib = b"A" * (1 << 20)
            z.sendall(mib)
            # from the second MiB of "A"s on, deflate's output repeats:
            # about 1 KB, sent again and again without deflating anything
            steady = z.deflate(mib)
            inflated, sent = 2 << 20, z.sent + len(steady)
            raw.settimeout(None)
            try:
                raw.sendall(steady)
                while True:
                    raw.sendall(steady)
                    inflated += 1 << 20
                    sent += len(steady)
            finally:
                self.log(b"S: <bomb: %d bytes deflated to %d>" % (sent, inflated))
        return True

    def hold(self):
        """Keeps the connection open, silent, until the client goes."""
        self.conn.settimeout(None)
        try:
            while self.conn.raw.recv(65536):
                pass
        except OSError:
            pass
        raise ConnectionError("client went away")


MODES = {
    "no-starttls": NoStartTLS,
    "account": Account,
    "bye-mid-fetch": ByeMidFetch,
    "bad-fetch": BadFetch,
    "hostile": Hostile,
    "appendlimit": AppendLimit,
    "big-sizes": BigSizes,
    "inbox-case": InboxCase,
    "compress": Compress,
    "slow-listing": SlowListing,
}
MODES.update(SESSION_MODES)


def main():
    ap = argparse.ArgumentParser(description="scripted fake IMAP server (127.0.0.1)")
    ap.add_argument("--mode", default="no-starttls", choices=sorted(MODES))
    ap.add_argument("--no-starttls", dest="mode", action="store_const",
                    const="no-starttls", help="same as --mode no-starttls")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=30.0)
    ap.add_argument("--log", help="append the conversation to this file")
    ap.add_argument("--folder", default="Other",
                    help="bye-mid-fetch/bad-fetch: the folder to misbehave in")
    ap.add_argument("--style", default="untagged",
                    choices=("untagged", "inside", "literal"),
                    help="bye-mid-fetch: where the BYE goes")
    ap.add_argument("--bye-count", type=int, default=1,
                    help="bye-mid-fetch: sabotaged FETCHes of each kind")
    ap.add_argument("--uid", type=int, default=3, help="bad-fetch: the bad UID")
    ap.add_argument("--bad", default="size", choices=("size", "date"),
                    help="bad-fetch: which item is unparsable")
    ap.add_argument("--attack", default="names",
                    choices=("names", "huge-literal", "endless-line", "never-ends"),
                    help="hostile: what it does (see Hostile)")
    ap.add_argument("--append-limit", type=int, default=4000,
                    help="appendlimit: the APPENDLIMIT announced")
    ap.add_argument("--enforce-limit", type=int, default=None,
                    help="appendlimit: the limit APPEND enforces (default: announced)")
    ap.add_argument("--select-delay", type=int, default=20,
                    help="inbox-case: milliseconds before each SELECT answers")
    ap.add_argument("--compress-attack", default="none",
                    choices=("none", "corrupt", "truncated", "stalled", "bomb", "inject"),
                    help="compress: what the server does to its deflate stream")
    ap.add_argument("--attack-from", type=int, default=1,
                    help="compress: the first connection attacked")
    ap.add_argument("--listing-fault", default="pause", choices=("pause", "drop", "always-drop"),
                    help="slow-listing: what comes between the halves of Many's listing")
    ap.add_argument("--pause", type=float, default=3.0,
                    help="slow-listing: seconds between the halves (--listing-fault pause)")
    ap.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    add_session_options(ap)
    a = ap.parse_args()
    global OPTS
    OPTS = a

    lock = threading.Lock()
    logf = open(a.log, "ab", buffering=0) if a.log else None

    def log(line):
        if logf:
            with lock:
                logf.write(line + b"\n")

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(16)
    srv.settimeout(0.2)
    print(srv.getsockname()[1], flush=True)

    deadline = time.monotonic() + a.lifetime
    count = 0

    def serve(conn):
        conn.settimeout(IDLE_TIMEOUT)
        try:
            MODES[a.mode](conn, log).run()
        except (OSError, ConnectionError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    while time.monotonic() < deadline and count < a.max_connections:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        count += 1
        log(b"-- connection %d" % count)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    srv.close()
    # daemon threads die with the process; give open sessions a moment
    time.sleep(0.1)
    os._exit(0)


if __name__ == "__main__":
    main()
