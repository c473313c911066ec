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

To add a mode, subclass Session, override what differs (greeting,
capabilities, or a cmd_<NAME> method), and register it in MODES.  Ideas:
hostile folder names in LIST, a lying RFC822.SIZE, an endless line, a server
that stalls after the greeting...
"""

import argparse
import os
import socket
import sys
import threading
import time

MAX_LINE = 64 * 1024
IDLE_TIMEOUT = 15.0
MAX_CONNECTIONS = 64


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


MODES = {
    "no-starttls": NoStartTLS,
}


def main():
    ap = argparse.ArgumentParser(description="scripted fake IMAP server (127.0.0.1)")
    ap.add_argument("--mode", default="no-starttls", choices=sorted(MODES))
    ap.add_argument("--no-starttls", dest="mode", action="store_const",
                    const="no-starttls", help="same as --mode no-starttls")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=30.0)
    ap.add_argument("--log", help="append the conversation to this file")
    a = ap.parse_args()

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

    while time.monotonic() < deadline and count < MAX_CONNECTIONS:
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
