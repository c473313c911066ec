"""A hostile server (scripts/fake-imap-server.py --mode hostile on 127.0.0.1):
folder names that must never become paths, a literal announcing 4 GB, an
endless line, a response that never ends.  imapfs must not crash, must not
create a path outside the mount or its cache directory, must not allocate
without bound, and must fail the operation with EIO in bounded time."""

import errno
import os
import time

import pytest

import helpers
import live_helpers as lh
from live_helpers import live  # noqa: F401  (fixture)

TIMEOUT = 2                 # -o timeout: an operation may take 4x that in all
RSS_LIMIT = 400 << 20       # bytes: the 64 MiB a request may read, and then some


def _mount(live, fake_server, tmp_path, *args):
    port, log = fake_server("hostile", *args, lifetime=150)
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    cache = tmp_path / "hcache"
    opts = ["plaintext", "password_file=%s" % pw, "cache_dir=%s" % cache,
            "timeout=%d" % TIMEOUT, "prefetch=0"]
    mnt = live.mount(None, url="imap://alice@127.0.0.1:%d" % port, opts=opts)
    return mnt, str(cache)


def _peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree(top):
    out = set()
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(root, n), top))
    return out


def test_hostile_folder_names(live, fake_server, tmp_path):
    """LIST returns "..", "../escape", "a/../../b", "/etc", "./dot", names with
    control characters and invalid modified UTF-7 besides INBOX, Other and the
    legitimate "ok&-fine": only INBOX, Other and "ok&fine" appear; nothing is
    created next to the mount or outside the cache's own layout."""
    before = _tree(str(tmp_path))
    mnt, cache = _mount(live, fake_server, tmp_path, "--attack", "names")
    root = os.listdir(mnt.path)
    folders = sorted(n for n in root if not n.startswith("."))
    assert folders == ["INBOX", "Other", "ok&fine"], root
    # every path under the mount stays under it, with printable names
    for rel in _tree(mnt.path):
        assert ".." not in rel.split("/") and all(ord(c) >= 0x20 and c != "\x7f" for c in rel), rel
    assert sorted(os.listdir(os.path.join(mnt.path, "Other")))
    after = _tree(str(tmp_path))
    new = sorted(p for p in after - before
                 if not p.startswith(("lmnt", "hcache", "fake-", "imapfs-l")) and
                 not p.startswith(os.path.relpath(mnt.path, str(tmp_path))))
    assert new == [], "created outside the mount and its cache: %r" % new
    for rel in _tree(cache):
        top = rel.split("/")[0]
        assert top in ("blocks", "folders", "uploads") or (
            top.startswith("journal-") and "/" not in top), "unexpected cache path %r" % rel
    assert mnt.proc.poll() is None
    # the names are logged, but no control character reaches the log
    log = helpers.read_text(mnt.stderr_path)
    assert "../escape" in log and not any(c in log for c in "\x01\t\x7f"), log[-2000:]


@pytest.mark.parametrize("attack", ["huge-literal", "endless-line", "never-ends"])
def test_endless_responses_fail_in_bounded_time(live, fake_server, tmp_path, attack):
    """The listing FETCH of Other never completes (a 4 GB literal streaming
    without end, one endless line, or "* OK" lines ten a second): `ls Other`
    fails with EIO within 2 x 4 x timeout s (one retry on a new connection)
    plus slack, imapfs's peak RSS stays below 400 MB, and INBOX still lists
    afterwards."""
    mnt, _ = _mount(live, fake_server, tmp_path, "--attack", attack, "--folder", "Other")
    d = os.path.join(mnt.path, "Other")
    limit = 2 * 4 * TIMEOUT + 6
    t0 = time.monotonic()
    r = live.op({"op": "listdir", "path": d}, timeout=limit + 30)
    took = time.monotonic() - t0
    assert not r.get("hung"), "ls Other hangs (%s)" % attack
    assert not r.get("ok"), "ls Other succeeded against %s?" % attack
    assert r.get("errno") == errno.EIO, "ls Other: %s, want EIO" % lh.errname(r)
    assert took < limit, "ls Other took %.1f s (limit %d s)" % (took, limit)
    assert mnt.proc.poll() is None, "imapfs exited"
    rss = _peak_rss(mnt.proc.pid)
    if not os.environ.get("IMAPFS_SANITIZED"):
        assert rss < RSS_LIMIT, "peak RSS %d MB" % (rss >> 20)
    ok = helpers.wait_for(lambda: live.op({"op": "listdir", "path": os.path.join(
        mnt.path, "INBOX")}, timeout=30).get("ok"), 30, 0.5)
    assert ok, "INBOX no longer lists after the attack"
