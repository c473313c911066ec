"""A TCP relay that counts the bytes crossing it and can act as a slower
link: each direction delivers its bytes `rtt_ms`/2 after they arrived, at
most `mbit` Mbit/s (None: as fast as the machine goes).  Between imapfs
and a server on 127.0.0.1, for tests and measurements of COMPRESS: what
imapfs sends and receives is counted on the wire, as it is, whether
compressed, in TLS or plain.

    link = Link(target_port, listen="127.0.0.1", rtt_ms=20, mbit=20)
    ... imapfs connects to link.host:link.port ...
    link.down, link.up      # bytes server -> client, client -> server
    link.close()

The link's buffers are unbounded (no back-pressure): a model of a path's
delay and bandwidth, not of its congestion control."""

import collections
import socket
import threading
import time


class _Direction:
    def __init__(self, link, src, dst):
        self.link, self.src, self.dst = link, src, dst
        self.queue = collections.deque()
        self.cv = threading.Condition()
        self.free_at = 0.0          # when the link is free again (rate)
        self.eof = False

    def reader(self):
        try:
            while True:
                data = self.src.recv(65536)
                if not data:
                    break
                now = time.monotonic()
                with self.cv:
                    start = max(now, self.free_at)
                    if self.link.mbit:
                        self.free_at = start + len(data) * 8 / (self.link.mbit * 1e6)
                    else:
                        self.free_at = start
                    self.queue.append((self.free_at + self.link.rtt_ms / 2000.0, data))
                    self.cv.notify()
        except OSError:
            pass
        with self.cv:
            self.eof = True
            self.cv.notify()

    def writer(self, count):
        try:
            while True:
                with self.cv:
                    while not self.queue and not self.eof:
                        self.cv.wait()
                    if not self.queue:
                        break
                    when, data = self.queue.popleft()
                delay = when - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.dst.sendall(data)
                count(len(data))
        except OSError:
            pass
        for s in (self.dst, self.src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Link:
    def __init__(self, target_port, listen="127.0.0.1", rtt_ms=0.0, mbit=None,
                 target_host="127.0.0.1"):
        self.target = (target_host, int(target_port))
        self.rtt_ms, self.mbit = float(rtt_ms), mbit
        self.lock = threading.Lock()
        self.down = self.up = 0
        self.connections = 0
        self.socks = []
        self.srv = socket.socket(socket.AF_INET6 if ":" in listen else socket.AF_INET)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((listen, 0))
        self.srv.listen(32)
        self.srv.settimeout(0.2)
        self.host, self.port = listen, self.srv.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _count(self, which):
        def add(n):
            with self.lock:
                setattr(self, which, getattr(self, which) + n)
        return add

    def counts(self):
        with self.lock:
            return self.down, self.up

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            for x in (c, s):
                x.settimeout(None)
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                self.socks += [c, s]
            for d, which in ((_Direction(self, c, s), "up"), (_Direction(self, s, c), "down")):
                threading.Thread(target=d.reader, daemon=True).start()
                threading.Thread(target=d.writer, args=(self._count(which),),
                                 daemon=True).start()

    def close(self):
        self.stop.set()
        try:
            self.srv.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
