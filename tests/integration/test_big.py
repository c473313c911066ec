"""The 10,000-message folder and the 20 MB message."""

import os
import random
import re

import pytest

import helpers
from helpers import mailgen


def _fetch_bodies(m, folder, uids):
    """{uid: BODY[]} for many UIDs in one UID FETCH."""
    m.select(mailgen.qmbox(folder), readonly=True)
    typ, data = m.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            mm = re.search(rb"UID (\d+)", item[0])
            out[int(mm.group(1))] = item[1]
    return out


@pytest.mark.slow
@pytest.mark.deadline(240)
def test_big_folder(shared_mount, dovecot, imap):
    folder = dovecot["manifest"]["big_folder"]
    assert folder, "no Big folder (IMAPFS_TEST_BIG=0 deselects this test)"
    meta = mailgen.fetch_meta(imap, folder)
    assert len(meta) == dovecot["manifest"]["counts"][folder]
    d = helpers.folder_path(shared_mount.path, folder)
    names = os.listdir(d)
    by_uid = {}
    for n in names:
        assert n.endswith(".eml"), n
        uid = helpers.uid_of(n)
        assert uid is not None and uid not in by_uid, n
        by_uid[uid] = n
    assert len(names) == len(meta)
    assert set(by_uid) == set(meta), "listed UIDs differ from the server's"

    sample = random.Random(11).sample(sorted(meta), min(200, len(meta)))
    bodies = _fetch_bodies(imap, folder, sample)
    assert len(bodies) == len(sample)
    for uid in sample:
        p = os.path.join(d, by_uid[uid])
        st = os.stat(p)
        assert st.st_size == meta[uid]["size"], by_uid[uid]
        assert int(st.st_mtime) == meta[uid]["internaldate"], by_uid[uid]
        with open(p, "rb") as f:
            assert f.read() == bodies[uid], "content differs: %s" % by_uid[uid]


@pytest.mark.slow
@pytest.mark.deadline(240)
def test_huge_message(shared_mount, dovecot, imap):
    h = dovecot["manifest"]["huge"]
    assert h, "gen-mail made no Huge folder"
    d = helpers.folder_path(shared_mount.path, h["folder"])
    names = os.listdir(d)
    assert [helpers.uid_of(n) for n in names] == [h["uid"]], names
    p = os.path.join(d, names[0])
    st = os.stat(p)
    assert st.st_size == h["size"]
    assert st.st_size >= 20 * 1024 * 1024
    assert helpers.sha256_file(p) == h["sha256"]

    imap.select(mailgen.qmbox(h["folder"]), readonly=True)
    rnd = random.Random(99)
    size = h["size"]
    ranges = [(0, 1), (0, 4096), (size - 1, 1), (size - 4096, 4096),
              (size // 2, 1 << 20), (131071, 3), (4095, 8193)]
    while len(ranges) < 50:
        off = rnd.randrange(0, size)
        ranges.append((off, rnd.choice([1, 100, 4096, 65536, 131072, 1000003])))
    fd = os.open(p, os.O_RDONLY)
    try:
        for off, n in ranges:
            want = mailgen.fetch_body(imap, h["uid"], "BODY.PEEK[]<%d.%d>" % (off, n))
            assert len(want) == min(n, size - off), (off, n, len(want))
            got = os.pread(fd, n, off)
            assert got == want, "range %d+%d differs" % (off, n)
        assert os.pread(fd, 100, size) == b""          # at EOF
        assert os.pread(fd, 100, size + 12345) == b""  # past EOF
    finally:
        os.close(fd)
