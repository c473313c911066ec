"""A plain-TCP relay on 127.0.0.1 between imapfs (imap:// + -o plaintext)
and the server, for tests that must see or steer imapfs's commands: it
counts the client's commands by word, calls a hook right before forwarding
a chosen command (so another client can act between two of imapfs's
commands, or the command can be held back until the test lets it go), and
can answer chosen commands NO itself."""

import re
import socket
import threading

import pytest


class CommandRelay:
    CMD = re.compile(rb"^(\S+) +(?:UID +)?([A-Za-z]+)")

    def __init__(self, target_port):
        self.target = int(target_port)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.armed = None           # (command words, text, hook)
        self.refuse = set()         # command words answered NO, not forwarded
        self.fired = []             # the command lines a hook ran before
        self.counts = {}            # command word -> how many were sent
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, commands, hook, text=None):
        """hook() before the first of `commands` (words, "|"-separated)
        whose line holds `text` (a str; None: any line).  The connection
        that sent it waits while the hook runs; the others go on."""
        with self.lock:
            self.armed = (commands.upper().encode().split(b"|"),
                          text.encode() if text is not None else b"", hook)

    def count(self, word):
        with self.lock:
            return self.counts.get(word.upper().encode(), 0)

    def _take(self, word, line):
        word = word.upper()
        with self.lock:
            self.counts[word] = self.counts.get(word, 0) + 1
            if self.armed and word in self.armed[0] and self.armed[1] in line:
                hook, self.armed = self.armed[2], None
                return hook
        return None

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            s.settimeout(None)
            c.settimeout(None)
            self.socks += [c, s]
            threading.Thread(target=self._up, args=(c, s), daemon=True).start()
            threading.Thread(target=self._down, args=(s, c), daemon=True).start()

    def _up(self, c, s):
        buf = b""
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    m = self.CMD.match(line)
                    hook = self._take(m.group(2), line) if m else None
                    if hook:
                        self.fired.append(line)
                        hook()
                    if m and m.group(2).upper() in self.refuse:
                        c.sendall(m.group(1) + b" NO [CANNOT] refused by the test relay\r\n")
                        continue
                    s.sendall(line + b"\n")
        except OSError:
            pass
        finally:
            self._close(c, s)

    def _down(self, s, c):
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            self._close(c, s)

    @staticmethod
    def _close(*socks):
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.srv.close()
        self._close(*self.socks)
        for x in self.socks:
            x.close()


@pytest.fixture
def command_relay():
    """command_relay(target_port) -> a CommandRelay, closed after the test."""
    made = []

    def make(port):
        made.append(CommandRelay(port))
        return made[-1]

    yield make
    for r in made:
        r.close()
