#!/usr/bin/env python3
"""A TCP proxy for IMAP that cuts the connection at a chosen command.

    scripts/fault-proxy.py TARGET_PORT [--port P] [--cut-on CMD]
                           [--cut-when request|response|refuse] [--cut-count N]
                           [--refuse-code CODE] [--arm-on CMD]
                           [--log FILE] [--lifetime SECONDS]

Listens on 127.0.0.1 (port P, default: a free one), prints the listening port
as the first line on stdout, and forwards every connection to
127.0.0.1:TARGET_PORT.  Only 127.0.0.1 is used, on both sides.

--cut-on CMD     an IMAP command word (case-insensitive), matched on client
                 command lines "<tag> CMD ..." and "<tag> UID CMD ..."
--cut-when       request:  close both sides *instead of* forwarding that
                           command (the server never sees it)
                 response: forward the command, then close both sides when
                           the server's tagged reply to it arrives, without
                           relaying that reply (the server did it, the
                           client never learns)
                 refuse:   do not forward the command; answer it "NO
                           [CANNOT]" as a server refusing it would, and
                           keep the connection (for commands without a
                           literal: STORE, EXPUNGE, MOVE, COPY ...)
                 (default: response)
--cut-count N    only the first N matching commands (over all connections)
                 are cut; later ones pass through untouched (default 1)
--refuse-code C  the response code of a refusal (default CANNOT; e.g.
                 UNAVAILABLE, INUSE: a server in trouble for a while)
--arm-on CMD     cut nothing until a client command CMD has passed (over
                 all connections; for a second proxy behind a first, that
                 cuts at a later step than the first)
--log FILE       log the conversation ("C: " client lines, "S: " server
                 lines, literals as "{N bytes}", "CUT ..." events)
--lifetime S     exit after S seconds (default 300)

Literals ({N} / {N+} at the end of a line) are tracked in both directions, so
literal bytes (an APPEND's message, a FETCH's BODY[]) are never mistaken for
commands or replies.  After STARTTLS the connection is relayed blindly.

Python 3 standard library only.
"""

import argparse
import os
import re
import socket
import sys
import threading
import time

LITERAL_RE = re.compile(rb"\{(\d+)\+?\}\r?\n$")
CMD_RE = re.compile(rb"^(\S+) +(?:UID +)?([A-Za-z0-9_.-]+)", re.I)
CHUNK = 1 << 16


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8",
                      errors="replace") if path else None
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def __call__(self, cid, msg):
        if not self.f:
            return
        with self.lock:
            self.f.write("%8.3f #%d %s\n" % (time.monotonic() - self.t0, cid, msg))


class State:
    """Shared over all connections: how many cuts are left."""

    def __init__(self, cut_on, cut_when, cut_count, refuse_code="CANNOT", arm_on=None):
        self.cut_on = cut_on.upper().encode() if cut_on else None
        self.cut_when = cut_when
        self.left = cut_count
        self.refuse_code = refuse_code.encode()
        self.arm_on = arm_on.upper().encode() if arm_on else None
        self.armed = not arm_on
        self.lock = threading.Lock()

    def take(self, cmd):
        """True if a command with word `cmd` is to be cut (uses one cut);
        a command with the --arm-on word arms the cuts after it."""
        with self.lock:
            hit = self.armed and self.cut_on is not None and cmd.upper() == self.cut_on
            if self.arm_on is not None and cmd.upper() == self.arm_on:
                self.armed = True
            if not hit or self.left <= 0:
                return False
            self.left -= 1
            return True


class Parser:
    """Splits an IMAP byte stream into ('line', bytes, starts_new) and
    ('lit', bytes) events.  `starts_new` is False for the continuation of a
    command/response after a literal."""

    def __init__(self):
        self.buf = b""
        self.lit = 0          # literal bytes still to come
        self.cont = False     # next line continues the previous one
        self.raw = False

    def feed(self, data):
        self.buf += data
        out = []
        while self.buf:
            if self.raw:
                out.append(("lit", self.buf))
                self.buf = b""
                break
            if self.lit:
                n = min(self.lit, len(self.buf))
                out.append(("lit", self.buf[:n]))
                self.buf = self.buf[n:]
                self.lit -= n
                continue
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
            out.append(("line", line, not self.cont))
            m = LITERAL_RE.search(line)
            if m:
                self.lit = int(m.group(1))
                self.cont = True
            else:
                self.cont = False
        return out


def show(line, limit=300):
    s = line.rstrip(b"\r\n").decode("utf-8", "replace")
    return s if len(s) <= limit else s[:limit] + "..."


class Relay:
    ids = 0
    ids_lock = threading.Lock()

    def __init__(self, csock, ssock, state, log):
        with Relay.ids_lock:
            Relay.ids += 1
            self.cid = Relay.ids
        self.c, self.s, self.state, self.log = csock, ssock, state, log
        self.lock = threading.Lock()
        self.pending = set()        # tags whose tagged reply is to be swallowed
        self.starttls_tag = None
        self.auth_tag = None        # AUTHENTICATE in progress: mask client lines
        self.closed = False
        self.cp, self.sp = Parser(), Parser()

    def close(self, why):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self.log(self.cid, why)
        for sk in (self.c, self.s):
            try:
                sk.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sk.close()
            except OSError:
                pass

    def start(self):
        self.log(self.cid, "connected")
        for fn in (self.client_to_server, self.server_to_client):
            threading.Thread(target=self.guard, args=(fn,), daemon=True).start()

    def guard(self, fn):
        try:
            fn()
        except OSError as e:
            self.close("closed (%s)" % e)
        except Exception as e:      # never leave a half-open pair behind
            self.close("closed (error: %r)" % e)

    def client_to_server(self):
        while True:
            data = self.c.recv(CHUNK)
            if not data:
                self.close("client closed")
                return
            out = []
            for ev in self.cp.feed(data):
                if ev[0] == "lit":
                    out.append(ev[1])
                    continue
                line, new = ev[1], ev[2]
                if new:
                    m = CMD_RE.match(line)
                    if self.auth_tag is not None:
                        self.log(self.cid, "C: (SASL data, not logged)")
                    elif m and m.group(2).upper() in (b"LOGIN", b"AUTHENTICATE"):
                        self.log(self.cid, "C: " + show(b" ".join(line.split()[:3]))
                                 + " (credentials not logged)")
                    else:
                        self.log(self.cid, "C: " + show(line))
                    if m and self.auth_tag is None:
                        tag, cmd = m.group(1), m.group(2)
                        if cmd.upper() == b"AUTHENTICATE":
                            self.auth_tag = tag
                        if self.state.take(cmd):
                            if self.state.cut_when == "refuse":
                                if out:
                                    self.s.sendall(b"".join(out))
                                    out = []
                                self.c.sendall(tag + b" NO [" + self.state.refuse_code +
                                              b"] refused by the fault proxy\r\n")
                                self.log(self.cid, "REFUSED %s %s" % (
                                    tag.decode("ascii", "replace"), cmd.decode("ascii", "replace")))
                                continue
                            if self.state.cut_when == "request":
                                if out:
                                    self.s.sendall(b"".join(out))
                                self.close("CUT request %s %s (not forwarded)" % (
                                    tag.decode("ascii", "replace"),
                                    cmd.decode("ascii", "replace")))
                                return
                            with self.lock:
                                self.pending.add(tag)
                            self.log(self.cid, "CUT armed: response to %s %s" % (
                                tag.decode("ascii", "replace"),
                                cmd.decode("ascii", "replace")))
                        if cmd.upper() == b"STARTTLS":
                            self.starttls_tag = tag
                else:
                    self.log(self.cid, "C: (cont) " + show(line))
                lm = LITERAL_RE.search(line)
                if lm:
                    self.log(self.cid, "C: {%s bytes}" % lm.group(1).decode())
                out.append(line)
            if out:
                self.s.sendall(b"".join(out))
            if self.starttls_tag is not None:
                self.cp.raw = True

    def server_to_client(self):
        while True:
            data = self.s.recv(CHUNK)
            if not data:
                self.close("server closed")
                return
            out = []
            go_raw = False
            for ev in self.sp.feed(data):
                if ev[0] == "lit":
                    out.append(ev[1])
                    continue
                line, new = ev[1], ev[2]
                if new:
                    self.log(self.cid, "S: " + show(line))
                    tag = line.split(b" ", 1)[0]
                    with self.lock:
                        hit = tag in self.pending
                    if hit:
                        if out:
                            self.c.sendall(b"".join(out))
                        self.close("CUT response to %s (tagged reply swallowed: %s)" % (
                            tag.decode("ascii", "replace"), show(line)))
                        return
                    if self.starttls_tag is not None and tag == self.starttls_tag:
                        go_raw = True
                    if self.auth_tag is not None and tag == self.auth_tag:
                        self.auth_tag = None
                lm = LITERAL_RE.search(line)
                if lm:
                    self.log(self.cid, "S: {%s bytes}" % lm.group(1).decode())
                out.append(line)
            if out:
                self.c.sendall(b"".join(out))
            if go_raw:
                self.sp.raw = True


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target_port", type=int)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cut-on")
    ap.add_argument("--cut-when", choices=("request", "response", "refuse"), default="response")
    ap.add_argument("--cut-count", type=int, default=1)
    ap.add_argument("--refuse-code", default="CANNOT")
    ap.add_argument("--arm-on")
    ap.add_argument("--log")
    ap.add_argument("--lifetime", type=float, default=300)
    a = ap.parse_args(argv)

    log = Log(a.log)
    state = State(a.cut_on, a.cut_when, a.cut_count, a.refuse_code, a.arm_on)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(64)
    print(ls.getsockname()[1], flush=True)
    log(0, "listening on %d -> %d, cut-on %s, cut-when %s, cut-count %d, refuse-code %s, "
        "arm-on %s" % (ls.getsockname()[1], a.target_port, a.cut_on, a.cut_when, a.cut_count,
                       a.refuse_code, a.arm_on))

    def expire():
        log(0, "lifetime over")
        os._exit(0)

    t = threading.Timer(a.lifetime, expire)
    t.daemon = True
    t.start()

    while True:
        c, _ = ls.accept()
        try:
            s = socket.create_connection(("127.0.0.1", a.target_port), timeout=10)
            s.settimeout(None)
        except OSError as e:
            log(0, "cannot connect to target: %s" % e)
            c.close()
            continue
        for sk in (c, s):
            sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Relay(c, s, state, log).start()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
