"""No lock is held while a store goes to the server: a slow APPEND (a file
closed after cp) or SETMETADATA (a receive-folder change) holds up only what
has to wait for it.  A small proxy in this file holds every client command
of one kind (APPEND, SETMETADATA) for a few seconds before the server sees
it, well within -o timeout, so nothing times out."""

import os
import socket
import threading
import time

import pytest

import helpers
import write_helpers as wh

pytestmark = pytest.mark.deadline(120)

HOLD = 3.0          # seconds each held command waits before it is forwarded
TIMEOUT = 10        # the mount's -o timeout: far above HOLD
PROMPT = 1.0        # what an operation that waits for nothing may take


class HoldingProxy:
    """127.0.0.1 TCP proxy to target_port that holds each client command line
    starting "<tag> <word> " for HOLD seconds.  Only the client's side is
    looked at, a chunk at a time: enough for imapfs, which sends a command
    in one write and waits for its continuation before the literal."""

    def __init__(self, target_port, word):
        self.target = target_port
        self.word = word.upper().encode()
        self.held = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _holds(self, chunk):
        for line in chunk.split(b"\n"):
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[1].upper() == self.word:
                return True
        return False

    def _pipe(self, src, dst, client_side):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if client_side and self._holds(chunk):
                    with self.lock:
                        self.held += 1
                    time.sleep(HOLD)
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False),
                             daemon=True).start()

    def close(self):
        self.closed = True
        self.sock.close()


@pytest.fixture
def holding_proxy():
    proxies = []

    def start(target_port, word):
        p = HoldingProxy(target_port, word)
        proxies.append(p)
        return p

    yield start
    for p in proxies:
        p.close()


def proxied_mount(server, proxy, mounter, tmp_path, extra_opts=()):
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], proxy.port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext",
            "timeout=%d" % TIMEOUT, "cache_dir=" + str(tmp_path / "cache-held")]
    return mounter(server, url=url, opts=opts + list(extra_opts))


def timed(fn, *args):
    t0 = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - t0


class Closer(threading.Thread):
    """close(fd) on a thread of its own: its flush is the held APPEND."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd, self.error, self.elapsed = fd, None, None

    def run(self):
        t0 = time.monotonic()
        try:
            os.close(self.fd)
        except OSError as e:
            self.error = e
        self.elapsed = time.monotonic() - t0


def on_server(server, fn, *args):
    """fn(an IMAP session of server, *args), logged out after."""
    m = server.connect()
    try:
        return fn(m, *args)
    finally:
        m.logout()


def stored_copies(server, folder, raw):
    return [r for r in on_server(server, wh.folder_contents, folder)
            if r["sha"] == helpers.sha256(raw)]


def start_held_upload(server, holding_proxy, scratch_mounter, tmp_path):
    """A file written into a fresh folder and closed on another thread, whose
    APPEND the proxy holds: (folder, raw, the closer, a second descriptor)."""
    folder = wh.unique_folder("Held")
    on_server(server, wh.create_folder, folder)
    proxy = holding_proxy(server.env["IMAP_PORT"], "APPEND")
    mnt = proxied_mount(server, proxy, scratch_mounter, tmp_path)
    raw = wh.make_msg(wh.unique("held"), 0)["raw"]
    fd = os.open(os.path.join(helpers.folder_path(mnt.path, folder), "held.eml"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, raw)
    second = os.dup(fd)
    closer = Closer(fd)
    closer.start()
    assert helpers.wait_for(lambda: proxy.held == 1, 5, 0.02), "no APPEND reached the proxy"
    return folder, raw, closer, second


def test_getattr_during_a_held_append(scratch_dovecot, holding_proxy, scratch_mounter, tmp_path):
    """fstat of the file being stored answers at once: the upload's lock is
    not held across the APPEND (it was, and fstat waited the whole HOLD)."""
    server = scratch_dovecot
    folder, raw, closer, second = start_held_upload(server, holding_proxy, scratch_mounter,
                                                    tmp_path)
    try:
        st, took = timed(os.fstat, second)
        assert took < PROMPT, "fstat waited %.1fs for the APPEND" % took
        assert st.st_size == len(raw)
        closer.join(HOLD + TIMEOUT)
        assert closer.error is None, closer.error
        assert closer.elapsed >= HOLD - 0.5, "the APPEND was not held?"
    finally:
        os.close(second)
    assert len(stored_copies(server, folder, raw)) == 1


def test_second_close_waits_for_the_store(scratch_dovecot, holding_proxy, scratch_mounter,
                                          tmp_path):
    """Another descriptor's close during the store waits for it, then
    succeeds without storing the file again."""
    server = scratch_dovecot
    folder, raw, closer, second = start_held_upload(server, holding_proxy, scratch_mounter,
                                                    tmp_path)
    _, took = timed(os.close, second)
    closer.join(HOLD + TIMEOUT)
    assert closer.error is None, closer.error
    assert took >= HOLD - 1.5, "the second close did not wait for the store (%.1fs)" % took
    assert len(stored_copies(server, folder, raw)) == 1


class Writer(threading.Thread):
    """One write of the control file (its save held by the proxy)."""

    def __init__(self, mnt_path, line):
        super().__init__(daemon=True)
        self.mnt_path, self.line = mnt_path, line
        self.errors, self.elapsed = None, None

    def run(self):
        t0 = time.monotonic()
        self.errors = wh.rf_write(self.mnt_path, self.line + "\n")
        self.elapsed = time.monotonic() - t0


def server_entry(server):
    return on_server(server, wh.get_metadata, "", "/private/vendor/imapfs/receive-folders") or b""


@pytest.mark.slow
def test_receive_saves_in_order_each_writer_told(scratch_metadata_server, holding_proxy,
                                                 scratch_mounter, tmp_path):
    """Two changes to the receive-folder table while the first one's save is
    held: the table reads at once meanwhile, the second writer returns only
    after a save with its change in it, both succeed, and the server ends
    with both rows."""
    server = scratch_metadata_server
    for name in ("Samples", "Archive"):
        on_server(server, wh.create_folder, name)
    proxy = holding_proxy(server.env["IMAP_PORT"], "SETMETADATA")
    mnt = proxied_mount(server, proxy, scratch_mounter, tmp_path)
    first = Writer(mnt.path, "IPM.Note.Held Samples")
    first.start()
    assert helpers.wait_for(lambda: proxy.held == 1, 5, 0.02), "no SETMETADATA was sent"
    rows, took = timed(wh.rf_map, mnt.path)
    assert took < PROMPT, "reading the table waited %.1fs for the save" % took
    assert "ipm.note.held" in rows
    second = Writer(mnt.path, "MY.Held Archive")
    second.start()
    first.join(HOLD + TIMEOUT)
    second.join(2 * HOLD + TIMEOUT)
    assert first.errors == (0, 0), first.errors
    assert second.errors == (0, 0), second.errors
    assert proxy.held == 2, "the second change was not saved on its own"
    assert second.elapsed >= HOLD, "the second writer did not wait for its save"
    value = server_entry(server)
    assert b"IPM.Note.Held\tSamples" in value and b"MY.Held\tArchive" in value, value[:500]
