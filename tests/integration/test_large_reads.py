"""Reading a message larger than one block (128 KiB) before its size is
checked: the check waits until a read reaches the block holding the claimed
end, so the first open reads through direct I/O.  What a reader sees then:
the exact bytes (an independent imaplib BODY[]) however it reads, a
private mmap(2) that works, a shared one that fails with ENODEV until a
read has reached the end, and later opens that use the page cache."""

import errno
import mmap
import os
import subprocess

import pytest

import helpers
import write_helpers as wh


def _seeded(server, size):
    folder = wh.unique_folder("lr")
    msg = wh.make_msg(wh.unique("lr"), 0, size=size)
    m = server.connect()
    try:
        wh.seed(m, folder, [msg])
    finally:
        m.logout()
    return folder, msg


def _body(server, folder):
    m = server.connect()
    try:
        m.select(folder, readonly=True)
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    finally:
        m.logout()
    assert typ == "OK", data
    return data[0][1]


def _only_file(mnt, folder):
    d = helpers.folder_path(mnt.path, folder)
    names = os.listdir(d)
    assert len(names) == 1, names
    return os.path.join(d, names[0])


def test_head_then_the_rest(scratch_dovecot, scratch_mounter):
    """head of a large message, then cat, then reads across its end: the
    exact bytes each time, and its size is the body's."""
    folder, _ = _seeded(scratch_dovecot, 700 * 1024)
    want = _body(scratch_dovecot, folder)
    mnt = scratch_mounter(scratch_dovecot)
    p = _only_file(mnt, folder)
    r = subprocess.run(["head", "-c", "4096", p], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == want[:4096], r.stderr
    r = subprocess.run(["cat", p], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == want, (len(r.stdout), len(want))
    fd = os.open(p, os.O_RDONLY)
    try:
        for off, n in [(len(want) - 10, 100), (len(want), 10), (131072 - 3, 10), (0, len(want) + 1)]:
            assert os.pread(fd, n, off) == want[off:off + n], (off, n)
    finally:
        os.close(fd)
    assert os.stat(p).st_size == len(want)


def test_mmap_before_and_after_the_check(scratch_dovecot, scratch_mounter):
    """The first open of a large message: a private mapping reads the exact
    bytes, a shared one fails with ENODEV (direct I/O); once a read has
    reached the end, a later open maps it shared."""
    folder, _ = _seeded(scratch_dovecot, 300 * 1024)
    want = _body(scratch_dovecot, folder)
    mnt = scratch_mounter(scratch_dovecot)
    p = _only_file(mnt, folder)
    with open(p, "rb") as f:
        with pytest.raises(OSError) as e:
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        assert e.value.errno == errno.ENODEV
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as mm:
            assert mm[:] == want
        assert f.read() == want
    with open(p, "rb") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert mm[:] == want
