#!/usr/bin/env python3
"""A wide-area network on 127.0.0.1, for bench/run.py --wan.

    python3 bench/relay.py --rtt-ms 40 --mbit 50 [--max-seconds S] PORT [PORT ...]

Listens on a free port of 127.0.0.1 for every target PORT (on 127.0.0.1),
prints one line "ports L1 L2 ..." on stdout once listening, and relays every
connection to its target through two emulated links, one per direction,
shared by all connections (as one access line is):

  - each chunk read from one side is serialized on its direction's link at
    --mbit Mbit/s (after whatever is queued there, from any connection), and
    delivered to the other side half the round trip (--rtt-ms / 2) after its
    serialization ends;
  - at most --queue-kib KiB per connection and direction wait in the relay;
    past that it stops reading that side, so TCP flow control holds the
    sender back as a full path would.

What it does not model: loss, jitter, and TCP's slow start (each leg is a
loopback connection, so a new connection gets the full rate at once).
TLS passes through untouched (the relay sees bytes only).

Bounded lifetime: it exits after --max-seconds (default 3 hours), on
SIGTERM/SIGINT, or when its standard input reaches end of file (the harness
keeps a pipe open, so the relay goes when the harness does).  A line
"stats" on standard input is answered with "stats UP DOWN" on standard
output: the bytes relayed so far in each direction.  Only
127.0.0.1 is ever listened on or connected to.  Standard library only.
"""

import argparse
import asyncio
import collections
import signal
import socket
import sys
import threading

HOST = "127.0.0.1"
READ_SIZE = 65536
EOF = None
# asyncio wakes up to a millisecond late (epoll's timeout is rounded up to
# whole milliseconds): aim this much early, so that the mean is on time
SLACK = 0.0005


class Link:
    """One direction: a queue served at `rate` bytes/s, then `delay` s."""

    def __init__(self, rate, delay):
        self.rate, self.delay = rate, delay
        self.busy_until = 0.0
        self.bytes = 0
        # pieces small enough that a chunk is not delivered in one lump
        # long after its first bytes would have arrived: ~2 ms of the link
        self.piece = max(1460, min(16384, int(rate * 0.002)))

    def schedule(self, now, n):
        start = max(now, self.busy_until)
        self.busy_until = start + n / self.rate
        self.bytes += n
        return self.busy_until + self.delay


class Pipe:
    """One direction of one connection: read, schedule on the link, deliver."""

    def __init__(self, link, reader, writer, limit):
        self.link, self.reader, self.writer, self.limit = link, reader, writer, limit
        self.queue = collections.deque()   # (deliver_at, bytes or EOF)
        self.queued = 0
        self.more = asyncio.Event()        # something was queued
        self.room = asyncio.Event()        # the queue drained below the limit

    async def read_side(self):
        loop = asyncio.get_running_loop()
        link = self.link
        while True:
            data = await self.reader.read(READ_SIZE)
            now = loop.time()
            if not data:
                # EOF follows the last byte
                self.queue.append((max(now, link.busy_until) + link.delay, EOF))
                self.more.set()
                return
            for i in range(0, len(data), link.piece):
                piece = data[i:i + link.piece]
                self.queue.append((link.schedule(now, len(piece)), piece))
            self.queued += len(data)
            self.more.set()
            while self.queued > self.limit:
                self.room.clear()
                await self.room.wait()

    async def write_side(self):
        loop = asyncio.get_running_loop()
        q = self.queue
        while True:
            while not q:
                self.more.clear()
                await self.more.wait()
            wait = q[0][0] - loop.time() - SLACK
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            now = loop.time() + SLACK
            out = []
            eof = False
            while q and q[0][0] <= now:
                _, piece = q.popleft()
                if piece is EOF:
                    eof = True
                    break
                out.append(piece)
            if out:
                buf = b"".join(out)
                self.queued -= len(buf)
                self.writer.write(buf)
                await self.writer.drain()
                if self.queued <= self.limit:
                    self.room.set()
            if eof:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return


class Relay:
    def __init__(self, args):
        self.args = args
        rate = args.mbit * 1e6 / 8
        delay = args.rtt_ms / 2000.0
        self.up = Link(rate, delay)      # client -> server
        self.down = Link(rate, delay)    # server -> client
        self.limit = args.queue_kib * 1024
        self.conns = set()

    async def handle(self, target, creader, cwriter):
        task = asyncio.current_task()
        self.conns.add(task)
        swriter = None
        try:
            sreader, swriter = await asyncio.open_connection(HOST, target)
            a = Pipe(self.up, creader, swriter, self.limit)
            b = Pipe(self.down, sreader, cwriter, self.limit)
            tasks = [asyncio.ensure_future(c) for c in (
                a.read_side(), a.write_side(), b.read_side(), b.write_side())]
            try:
                # done when both directions delivered their EOF, or on any error
                done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for t in done:
                    t.exception()
            finally:
                for t in tasks:
                    t.cancel()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (cwriter, swriter):
                if w is not None:
                    try:
                        w.close()
                    except Exception:
                        pass
            self.conns.discard(task)

    async def main(self):
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)

        def watch_stdin():
            # "stats" asks for the byte counters; end of file means stop
            try:
                for line in sys.stdin.buffer:
                    if line.strip() == b"stats":
                        print("stats %d %d" % (self.up.bytes, self.down.bytes), flush=True)
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)
        if not self.args.ignore_stdin:
            threading.Thread(target=watch_stdin, daemon=True).start()

        servers, ports = [], []
        for target in self.args.ports:
            srv = await asyncio.start_server(
                lambda r, w, t=target: self.handle(t, r, w), HOST, 0,
                family=socket.AF_INET, reuse_address=True, backlog=128)
            servers.append(srv)
            ports.append(srv.sockets[0].getsockname()[1])
        print("ports " + " ".join(str(p) for p in ports), flush=True)
        try:
            await asyncio.wait_for(stop.wait(), self.args.max_seconds)
        except asyncio.TimeoutError:
            print("relay: --max-seconds reached, exiting", file=sys.stderr)
        for srv in servers:
            srv.close()
        for t in list(self.conns):
            t.cancel()
        print("relay: up %d bytes, down %d bytes" % (self.up.bytes, self.down.bytes),
              file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    ap.add_argument("--rtt-ms", type=float, required=True, help="round trip time (ms)")
    ap.add_argument("--mbit", type=float, required=True, help="rate per direction (Mbit/s)")
    ap.add_argument("--queue-kib", type=int, default=4096,
                    help="bytes waiting per connection and direction before the "
                    "relay stops reading (KiB, default 4096)")
    ap.add_argument("--max-seconds", type=float, default=3 * 3600)
    ap.add_argument("--ignore-stdin", action="store_true",
                    help="do not exit when stdin closes (manual use)")
    ap.add_argument("ports", type=int, nargs="+", help="target ports on 127.0.0.1")
    args = ap.parse_args()
    if args.rtt_ms < 0 or args.mbit <= 0 or not 0 < args.max_seconds <= 86400:
        ap.error("bad --rtt-ms, --mbit or --max-seconds")
    if any(not 0 < p < 65536 for p in args.ports):
        ap.error("bad port")
    try:
        asyncio.run(Relay(args).main())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
