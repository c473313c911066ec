"""Server misbehaviour Dovecot cannot produce, from the scripted account of
scripts/fake-imap-server.py --mode account (plain TCP, -o plaintext):

  INBOX  UID 1  RFC822.SIZE 200,    real body 300
         UID 2  RFC822.SIZE 5000,   real body 1000
         UID 3  RFC822.SIZE 140000, real body 300000 (the truth shows only
                beyond the first 128 KiB block)
         UID 4  every body FETCH answers "NO [SERVERBUG] cannot deliver"
         UID 5  honest, 700 bytes
  Broken SELECT answers "NO cannot open"
  Fine   one honest message
  Gone   UID 1 expunged after it was listed: its body comes back empty and
         the FETCH ends NO [EXPUNGEISSUED]; UID 2 honest

No Dovecot is needed: these tests mount the fake server directly."""

import errno
import importlib.util
import os
import re
import subprocess
import time

import pytest

import helpers

pytestmark = pytest.mark.deadline(40)

SERVER_LIFETIME = 60      # the fixture stops it at the end of the test anyway
EIO_WITHIN = 10.0         # seconds a failing read/listing may take


def _load_server():
    path = os.path.join(helpers.SCRIPTS, "fake-imap-server.py")
    spec = importlib.util.spec_from_file_location("fake_imap_server", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SERVER = _load_server()
TRUTH = SERVER.account_messages()     # {folder: {uid: {body, claimed, ...}}}


@pytest.fixture
def account(imapfs_bin, fake_server, tmp_path):
    """A mount of the fake account; yields (Mount, conversation log path).
    Unmounted at the end: imapfs must exit 0, sanitizer-clean."""
    port, log = fake_server("account", lifetime=SERVER_LIFETIME)
    pw = tmp_path / "password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    opts = ["plaintext", "password_file=%s" % pw, "cache_dir=%s" % (tmp_path / "cache")]
    m = helpers.Mount(imapfs_bin, "imap://alice@127.0.0.1:%d" % port,
                      str(tmp_path / "mnt"), opts, logdir=str(tmp_path),
                      name="imapfs-fake")
    m.start()
    try:
        yield m, log
    finally:
        m.stop()
    # the fake server must have understood everything imapfs sent, else a
    # failure above may be the script's fault rather than imapfs's
    bad = [ln for ln in helpers.read_text(log).splitlines()
           if re.match(r"S: \S+ BAD ", ln)]
    assert not bad, "the fake server did not understand imapfs: %r" % bad[:5]


def msg_path(mnt, folder, uid):
    """The listed (readable) name of UID `uid` in `folder`."""
    d = helpers.folder_path(mnt, folder)
    names = [n for n in os.listdir(d) if helpers.uid_of(n) == uid]
    assert len(names) == 1, "UID %d not listed exactly once in %s: %r" % (
        uid, folder, sorted(os.listdir(d)))
    return os.path.join(d, names[0])


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def cat(path, timeout=15):
    return subprocess.run(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def describe(got, want):
    if got == want:
        return "equal"
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return "got %d bytes, want %d; first difference at offset %d" % (len(got), len(want), n)


def assert_eio(fn, what):
    t0 = time.monotonic()
    with pytest.raises(OSError) as ei:
        fn()
    took = time.monotonic() - t0
    assert ei.value.errno == errno.EIO, "%s: %s (want EIO)" % (what, ei.value)
    assert took < EIO_WITHIN, "%s: took %.1fs to fail" % (what, took)


# -- 1. lying RFC822.SIZE ------------------------------------------------------------

@pytest.mark.parametrize("uid", [1, 2, 3, 6],
                         ids=["too-small", "too-large", "spans-blocks", "blocks-too-large"])
def test_lying_size_reads_real_bytes(account, uid):
    m, _ = account
    want = TRUTH["INBOX"][uid]["body"]
    assert TRUTH["INBOX"][uid]["claimed"] != len(want)
    path = msg_path(m.path, "INBOX", uid)

    got = read_all(path)
    assert got == want, "open().read() of UID %d: %s" % (uid, describe(got, want))
    r = cat(path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want, "cat of UID %d: %s" % (uid, describe(r.stdout, want))
    assert read_all(path) == want, "second read of UID %d differs" % uid

    # reads at arbitrary offsets, across block boundaries and past the end
    fd = os.open(path, os.O_RDONLY)
    try:
        for off, n in [(0, 10), (len(want) - 50, 100), (len(want), 10),
                       (131072 - 7, 20), (262144 - 3, 9), (len(want) + 4096, 1)]:
            assert os.pread(fd, n, off) == want[off:off + n], \
                "pread(%d, %d) of UID %d" % (n, off, uid)
    finally:
        os.close(fd)

    # a fresh lookup (the UID.eml alias) must report the real size; the
    # listed name may keep the claimed size until its attribute timeout
    alias = os.path.join(m.path, "INBOX", "%d.eml" % uid)
    assert os.stat(alias).st_size == len(want), \
        "stat of %d.eml after reading: %d, want %d" % (uid, os.stat(alias).st_size, len(want))
    assert os.stat(path).st_size in (len(want), TRUTH["INBOX"][uid]["claimed"])
    assert read_all(alias) == want


# -- 2. a message the server will not deliver -------------------------------------------

def test_undeliverable_message_is_eio(account):
    m, _ = account
    path = msg_path(m.path, "INBOX", 4)
    assert_eio(lambda: read_all(path), "reading UID 4")
    t0 = time.monotonic()
    r = cat(path)
    assert r.returncode != 0 and b"Input/output error" in r.stderr, r
    assert r.stdout == b""
    assert time.monotonic() - t0 < EIO_WITHIN
    assert_eio(lambda: read_all(path), "reading UID 4 again")   # no caching of failure as data

    # the mount still works
    want5 = TRUTH["INBOX"][5]["body"]
    got = read_all(msg_path(m.path, "INBOX", 5))
    assert got == want5, "UID 5 after the failure: %s" % describe(got, want5)
    assert sorted(helpers.uid_of(n) for n in os.listdir(os.path.join(m.path, "INBOX"))) \
        == sorted(TRUTH["INBOX"])
    r = subprocess.run(["ls", os.path.join(m.path, "INBOX")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=15)
    assert r.returncode == 0, r
    assert len(r.stdout.splitlines()) == len(TRUTH["INBOX"]), r


# -- 3. a folder the server will not open ---------------------------------------------

def test_unselectable_folder_is_eio(account):
    m, _ = account
    broken = os.path.join(m.path, "Broken")
    assert_eio(lambda: os.listdir(broken), "listing Broken")
    assert_eio(lambda: os.listdir(broken), "listing Broken again")

    # the folders, and the control files
    assert sorted(os.listdir(m.path)) == sorted(SERVER.ACCOUNT_FOLDERS +
                                                [".receive-folders", ".status"])
    r = subprocess.run(["ls", m.path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=15)
    assert r.returncode == 0, r
    fine = os.listdir(os.path.join(m.path, "Fine"))
    assert [helpers.uid_of(n) for n in fine] == [1], fine
    want = TRUTH["Fine"][1]["body"]
    got = read_all(msg_path(m.path, "Fine", 1))
    assert got == want, "Fine UID 1: %s" % describe(got, want)


# -- 3b. a message expunged by another client after it was listed -------------------

def test_expunged_message_is_eio_not_empty(account):
    """Opening the first message of Gone sends one UID FETCH for the heads
    of the folder; the server answers UID 1's with an empty literal (it
    was expunged meanwhile) and the command NO [EXPUNGEISSUED].  Reading
    UID 1 fails with EIO -- never an empty file -- and UID 2 reads right."""
    m, log = account
    assert_eio(lambda: read_all(msg_path(m.path, "Gone", 1)), "reading Gone UID 1")
    assert "EXPUNGEISSUED" in helpers.read_text(log), "the server never said EXPUNGEISSUED"
    want = TRUTH["Gone"][2]["body"]
    got = read_all(msg_path(m.path, "Gone", 2))
    assert got == want, "Gone UID 2: %s" % describe(got, want)


# -- 4. the failures are logged -----------------------------------------------------

def test_failures_are_logged(account):
    m, _ = account
    with pytest.raises(OSError):
        read_all(msg_path(m.path, "INBOX", 4))
    with pytest.raises(OSError):
        os.listdir(os.path.join(m.path, "Broken"))
    err = m.stderr()
    lines = err.splitlines()
    assert [ln for ln in lines if re.search(r"\bUID 4\b", ln) and "INBOX" in ln], \
        "no log line names UID 4 of INBOX:\n" + err
    assert [ln for ln in lines if "Broken" in ln], "no log line names folder Broken:\n" + err
