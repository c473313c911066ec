"""Another client changes a folder; with -o dir_cache=1 the listing follows."""

import datetime as dt
import os
import time

import pytest

import helpers
from helpers import mailgen

FOLDER = "Scratch"


@pytest.mark.parametrize("kind", ["imaps", "starttls"])
def test_append_and_expunge_show_up(mounter, dovecot, imap, kind):
    m = mounter(kind, extra_opts=["dir_cache=1"])
    d = helpers.folder_path(m.path, FOLDER)
    before = {helpers.uid_of(n): n for n in os.listdir(d)}
    assert before, "Scratch should not be empty"
    server = mailgen.fetch_meta(imap, FOLDER)
    assert set(before) == set(server)

    # another client: append one message, expunge another
    token = "live-%d-%s" % (os.getpid(), kind)
    raw = mailgen.build_message(
        __import__("random").Random(1), subject=("Fresh " + token).encode(),
        msgid=token + "@" + mailgen.MSGID_DOMAIN,
        when=dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc), size=500)
    new_uid = mailgen.append(imap, FOLDER, raw, [], dt.datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc))
    assert new_uid, "no APPENDUID"
    gone_uid = min(before)
    imap.select(mailgen.qmbox(FOLDER))
    assert imap.uid("STORE", str(gone_uid), "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
    assert imap.expunge()[0] == "OK"

    def updated():
        now = {helpers.uid_of(n): n for n in os.listdir(d)}
        return now if (new_uid in now and gone_uid not in now) else None

    t0 = time.monotonic()
    now = helpers.wait_for(updated, timeout=15, interval=0.25)
    assert now, "listing not refreshed within 15 s (dir_cache=1): %r" % sorted(
        helpers.uid_of(n) for n in os.listdir(d))
    print("listing refreshed after %.1fs" % (time.monotonic() - t0))
    name = now[new_uid]
    assert name == helpers.expected_name("Fresh " + token, int(dt.datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc).timestamp()), new_uid)
    with open(os.path.join(d, name), "rb") as f:
        assert f.read() == raw
    # a lookup of the old names may be answered from a kernel/entry cache for
    # a moment, but not for long
    for n in (before[gone_uid], "%d.eml" % gone_uid):
        p = os.path.join(d, n)
        assert helpers.wait_for(lambda: not os.path.exists(p), timeout=10), \
            "%r still exists 10 s after the listing dropped it" % n
    assert set(now) == set(before) - {gone_uid} | {new_uid}
