"""Hardening of the model (folder tree, names, folder and message changes):

- a server that names INBOX "Inbox" and "INBOX" by turns in LIST
  (scripts/fake-imap-server.py --mode inbox-case) while readers go through
  the mount: no use of a freed name (the ASan build reports it), the mount
  lives;
- rmdir while another client appends to the folder destroys nothing, and a
  subfolder imapfs does not show still makes rmdir fail with ENOTEMPTY;
- mv onto a name a listed message has is EEXIST, and both messages stay;
- a Subject with bidi overrides or zero-width characters gives a file name
  without them."""

import errno
import hashlib
import imaplib
import os
import re
import socket
import threading
import time

import pytest

import helpers
import live_helpers as lh
import write_helpers as wh
from live_helpers import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.deadline(180)

FAKE = lh.load_fake_server()
HONEST = FAKE.account_messages(FAKE.HONEST)


# -- a folder's server name replaced under readers -------------------------------

def _fake_mount(live, fake_server, tmp_path, mode, *args):
    port, log = fake_server(mode, *args, lifetime=150)
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    opts = ["plaintext", "password_file=%s" % pw, "cache_dir=%s" % (tmp_path / "fcache"),
            "timeout=5", "dir_cache=0"]
    return live.mount(None, url="imap://alice@127.0.0.1:%d" % port, opts=opts), log


def test_inbox_renamed_by_list_under_readers(live, fake_server, tmp_path):
    """LIST says "Inbox", then "INBOX", then "Inbox" ...: both are the mount's
    INBOX, so the folder's server name is replaced at every LIST, while
    readers list and read INBOX (each ls syncs: dir_cache=0) and the watcher
    keeps it selected.  Nothing may use a replaced name after it was freed;
    every read gives the right bytes; the mount lives."""
    mnt, log = _fake_mount(live, fake_server, tmp_path, "inbox-case")
    inbox = os.path.join(mnt.path, "INBOX")
    truth = {uid: m["body"] for uid, m in HONEST["INBOX"].items()}
    stop = threading.Event()
    problems, reads = [], [0]

    def reader():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                for name in os.listdir(inbox):
                    with open(os.path.join(inbox, name), "rb") as f:
                        data = f.read()
                    if data != truth.get(helpers.uid_of(name)):
                        problems.append("wrong bytes for %s" % name)
                    reads[0] += 1
            except OSError as e:
                # a sync that lost the race with a LIST may fail; the mount
                # must not
                if mnt.proc.poll() is not None:
                    problems.append("mount died: %s" % e)
                    return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        for _ in range(300):
            if time.monotonic() > deadline or mnt.proc.poll() is not None:
                break
            try:
                os.utime(mnt.path)        # touch MOUNT: LIST again
            except OSError as e:
                problems.append("touch MOUNT: %s" % e)
                break
    finally:
        stop.set()
        for t in threads:
            t.join(70)
    assert mnt.proc.poll() is None, mnt.stderr()[-5000:]
    assert not problems, problems[:5]
    assert reads[0] > 0
    lists = helpers.read_text(log).count('"/" Inbox')
    assert lists >= 10, "the server was asked for LIST only %d times" % lists
    assert sorted(os.listdir(inbox)) and os.path.isdir(inbox)
    assert helpers.sanitizer_lines(mnt.stderr()) == []


# -- names: bidi controls and invisible characters ------------------------------

def _b_word(text):
    import base64
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


def test_bidi_subject_gives_plain_name(scratch_dovecot, scratch_mounter):
    """A Subject "Invoice <RLO>fdp.exe" (shown as "Invoice exe.pdf") and one
    full of zero-width and isolate characters: the file names have none of
    them; the messages open by those names with their bytes."""
    import unicodedata
    folder = wh.unique_folder("Bidi")
    subjects = {"Invoice \u202efdp.exe": "Invoice fdp.exe",
                "zero\u200bwidth\u2066iso\u2069late\ufeff\u00ad": "zerowidthisolate",
                "c1\u0085control": "c1 control"}
    msgs = [wh.make_msg(wh.unique("bidi"), i, subject=s) for i, s in enumerate(subjects)]
    for msg, s in zip(msgs, subjects):
        msg["raw"] = msg["raw"].replace(b"Subject: " + s.encode(), b"Subject: " + _b_word(s))
        msg["sha"] = helpers.sha256(msg["raw"])
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, msgs)
    finally:
        m.logout()
    mnt = scratch_mounter(scratch_dovecot)
    d = helpers.folder_path(mnt.path, folder)
    names = sorted(os.listdir(d))
    want = sorted(helpers.utc_date(msg["when"].timestamp()) + " " + shown + ".%d.eml" % msg["uid"]
                  for msg, shown in zip(msgs, subjects.values()))
    assert names == want
    for name in names:
        assert not any(unicodedata.category(c) in ("Cf", "Cc") for c in name), ascii(name)
    for msg, shown in zip(msgs, subjects.values()):
        path = os.path.join(d, helpers.utc_date(msg["when"].timestamp()) + " " + shown +
                            ".%d.eml" % msg["uid"])
        assert helpers.sha256_file(path) == msg["sha"]
