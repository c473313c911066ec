"""-o writeback (README: "Write-back"): mv, rm and flag changes return once
journaled, the mount shows them at once, and a flusher sends them in
batches -- checked on the server with imaplib, message by message (SHA-256),
and on the wire through scripts/fault-proxy.py (commands counted).

With writeback_delay=60 nothing is sent by itself during a test: what the
server has before an fsync (sync DIR), an unmount or a remount is what the
mount did not send yet."""

import os
import signal
import subprocess
import time

import helpers
import live_helpers as lh
import write_helpers as wh
from test_round_trips import commands_after, log_size, proxied, settle

HOLD = "writeback_delay=60"


def seeded(server, token, n, dest=True, **kw):
    msgs = [wh.make_msg(token, i, **kw) for i in range(n)]
    m = server.connect()
    try:
        wh.seed(m, token + "-A", msgs)
        if dest:
            wh.create_folder(m, token + "-B")
    finally:
        m.logout()
    return msgs


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def where(server, msgs, folders):
    m = server.connect()
    try:
        found = wh.locate(m, msgs, folders)
    finally:
        m.logout()
    return {k: [f for f, _ in v] for k, v in found.items()}


def flags_on_server(server, folder):
    """{Message-ID: set of flags} of folder."""
    m = server.connect()
    try:
        return {r["msgid"]: set(r.get("flags", ())) for r in wh.folder_contents(m, folder)}
    finally:
        m.logout()


def test_mv_shows_at_once_then_lands(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    token = wh.unique("wb1")
    msgs = seeded(server, token, 20)
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    shas = {n: helpers.sha256_file(os.path.join(a, n)) for n in names}
    os.listdir(b)
    t0 = time.monotonic()
    r = subprocess.run(["mv"] + [os.path.join(a, n) for n in names] + [b + "/"],
                       capture_output=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert took < 5, "mv of 20 took %.1f s under write-back" % took
    # the view: gone from A, in B under the same names, same bytes and size
    assert os.listdir(a) == []
    assert sorted(os.listdir(b)) == names
    by_uid = {x["uid"]: x for x in msgs}
    for n in names:
        p = os.path.join(b, n)
        assert helpers.sha256_file(p) == shas[n] == by_uid[helpers.uid_of(n)]["sha"]
        assert os.stat(p).st_size == len(by_uid[helpers.uid_of(n)]["raw"])
    # nothing sent yet: the server still has them all in A
    assert set(sum(where(server, msgs, [token + "-A", token + "-B"]).values(), [])) == {token + "-A"}
    st = lh.read_status(mnt.path)["text"]
    assert "writeback: on" in st, st
    fsync_dir(b)
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []
    # listed under their UIDs there now (as after a plain mv); the names
    # mv gave still open them
    assert len(os.listdir(b)) == len(names)
    for n in names:
        assert helpers.sha256_file(os.path.join(b, n)) == shas[n]


def test_rm_goes_to_the_trash_at_once(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    token = wh.unique("wb2")
    msgs = seeded(server, token, 6, dest=False)
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD, "trash=" + token + "-T"])
    m = server.connect()
    try:
        wh.create_folder(m, token + "-T")
    finally:
        m.logout()
    a = helpers.folder_path(mnt.path, token + "-A")
    t = helpers.folder_path(mnt.path, token + "-T")
    names = sorted(os.listdir(a))
    for n in names:
        os.unlink(os.path.join(a, n))
    assert os.listdir(a) == []
    assert sorted(os.listdir(t)) == names
    assert set(sum(where(server, msgs, [token + "-A", token + "-T"]).values(), [])) == {token + "-A"}
    fsync_dir(t)
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-T"],
                         allowed=[token + "-T"]) == []
    # rm in the trash deletes for good
    for n in names[:2]:
        os.unlink(os.path.join(t, n))
    fsync_dir(t)
    left = where(server, msgs, [token + "-A", token + "-T"])
    assert sorted(len(v) for v in left.values()) == [0, 0, 1, 1, 1, 1], left


def test_flags_read_back_at_once(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    token = wh.unique("wb3")
    msgs = seeded(server, token, 8, dest=False)
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a = helpers.folder_path(mnt.path, token + "-A")
    names = sorted(os.listdir(a))
    for n in names:
        os.setxattr(os.path.join(a, n), "user.imap.flags", b"\\Seen \\Flagged $Done")
    for n in names:
        assert os.getxattr(os.path.join(a, n), "user.imap.flags") == b"\\Seen \\Flagged $Done"
    before = flags_on_server(server, token + "-A")
    assert all("\\Flagged" not in f for f in before.values()), before
    fsync_dir(a)
    after = flags_on_server(server, token + "-A")
    assert len(after) == len(msgs)
    for msgid, f in after.items():
        assert {"\\Seen", "\\Flagged", "$Done"} <= f, (msgid, f)
    # taking a flag away, and the change after that, in order
    p = os.path.join(a, names[0])
    os.setxattr(p, "user.imap.flags", b"\\Seen")
    os.setxattr(p, "user.imap.flags", b"\\Answered")
    assert os.getxattr(p, "user.imap.flags") == b"\\Answered"
    fsync_dir(a)
    got = flags_on_server(server, token + "-A")
    first = next(x["msgid"] for x in msgs if x["uid"] == helpers.uid_of(names[0]))
    assert got[first] & {"\\Seen", "\\Answered", "\\Flagged", "$Done"} == {"\\Answered"}, got


def test_batched_on_the_wire(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    server = scratch_server()
    token = wh.unique("wb4")
    msgs = seeded(server, token, 200)
    mnt, log = proxied(server, fault_proxy, scratch_mounter, tmp_path, extra=["writeback", HOLD])
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    os.listdir(b)
    settle(mnt, log)
    mark = log_size(log)
    for n in names:
        os.setxattr(os.path.join(a, n), "user.imap.flags", b"\\Flagged")
    r = subprocess.run(["mv"] + [os.path.join(a, n) for n in names] + [b + "/"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    copies = [wh.make_msg(token + "cp", i, size=1000 + 37 * i) for i in range(20)]
    for i, msg in enumerate(copies):
        write_file(os.path.join(b, "cp-%d.eml" % i), msg["raw"])
    assert commands_after(log, mark).count("UID MOVE") == 0
    fsync_dir(b)
    sent = [c for c in commands_after(log, mark) if c not in ("IDLE", "DONE", "NOOP")]
    assert sent.count("UID MOVE") == 1, sent
    assert sent.count("UID STORE") <= 2, sent
    # one FETCH finds UIDs the STORE passed over (gone meanwhile)
    assert sent.count("UID FETCH") <= 1, sent
    assert sent.count("STATUS") <= 1 + sent.count("APPEND"), sent
    # MULTIAPPEND: one command (two when two copies are look-alikes, same
    # size and date: those never share a batch)
    assert 1 <= sent.count("APPEND") <= 2, sent
    # a SELECT afresh per batch from a folder (a re-created one is caught)
    assert sent.count("SELECT") <= 2, sent
    assert len(sent) <= 13, sent
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []
    assert wh.check_once(server.connect(), copies, [token + "-B"]) == []
    got = flags_on_server(server, token + "-B")
    assert all("\\Flagged" in got[x["msgid"]] for x in msgs), got


def test_unmount_sends_what_is_pending(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    token = wh.unique("wb5")
    msgs = seeded(server, token, 30)
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    for n in os.listdir(a):
        os.rename(os.path.join(a, n), os.path.join(b, n))
    t0 = time.monotonic()
    mnt.stop()
    assert time.monotonic() - t0 < 10
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []


def test_sigkill_then_remount_replays(scratch_dovecot, scratch_mounter, tmp_path):
    server = scratch_dovecot
    token = wh.unique("wb6")
    msgs = seeded(server, token, 30)
    cache = str(tmp_path / "cache-wb6")
    opts = server.opts(cache) + ["writeback", HOLD]
    mnt = scratch_mounter(server, opts=opts)
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    for n in names[:20]:
        os.rename(os.path.join(a, n), os.path.join(b, n))
    for n in names[20:25]:
        os.setxattr(os.path.join(a, n), "user.imap.flags", b"\\Flagged")
    os.kill(mnt.proc.pid, signal.SIGKILL)
    mnt.proc.wait(10)
    mnt.stopped = True
    helpers.cleanup_mountpoint(mnt.path)
    # nothing reached the server
    assert set(sum(where(server, msgs, [token + "-A", token + "-B"]).values(), [])) == {token + "-A"}
    again = scratch_mounter(server, opts=opts)
    a, b = (helpers.folder_path(again.path, token + s) for s in ("-A", "-B"))
    # what an earlier mount left is sent at once; every message is once
    # where it was meant to go, and shown there
    assert len(os.listdir(b)) == 20
    assert sorted(os.listdir(a)) == names[20:]
    fsync_dir(b)
    moved = [x for x in msgs if any(helpers.uid_of(n) == x["uid"] for n in names[:20])]
    assert len(moved) == 20
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B"]) == []
    assert wh.check_once(server.connect(), moved, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []
    flagged = [f for f in flags_on_server(server, token + "-A").values() if "\\Flagged" in f]
    assert len(flagged) == 5


def test_offline_changes_are_replayed(scratch_server, scratch_mounter):
    server = scratch_server()
    token = wh.unique("wb7")
    msgs = seeded(server, token, 30)
    mnt = scratch_mounter(server, extra_opts=["writeback", "writeback_delay=0", "timeout=5"])
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    os.listdir(b)
    server.stop()
    slowest = 0.0
    for n in names[:20]:
        t0 = time.monotonic()
        os.rename(os.path.join(a, n), os.path.join(b, n))
        slowest = max(slowest, time.monotonic() - t0)
    for n in names[20:25]:
        t0 = time.monotonic()
        os.setxattr(os.path.join(a, n), "user.imap.flags", b"\\Seen \\Flagged")
        slowest = max(slowest, time.monotonic() - t0)
    c = helpers.folder_path(mnt.path, token + "-C")
    t0 = time.monotonic()
    os.mkdir(c)
    for n in names[25:28]:
        os.rename(os.path.join(a, n), os.path.join(c, n))
    slowest = max(slowest, (time.monotonic() - t0) / 4)
    assert slowest < 0.5, "a change took %.3f s offline" % slowest
    assert sorted(os.listdir(b)) == names[:20]
    assert sorted(os.listdir(c)) == names[25:28]
    server.restart()
    moved = [x for x in msgs if any(helpers.uid_of(n) == x["uid"] for n in names[:20])]
    assert wh.wait_once(server, moved, [token + "-A", token + "-B"], allowed=[token + "-B"],
                        timeout=30) == []
    assert helpers.wait_for(
        lambda: len([f for f in flags_on_server(server, token + "-A").values() if "\\Flagged" in f]) == 5,
        30, 0.5)
    to_c = [x for x in msgs if any(helpers.uid_of(n) == x["uid"] for n in names[25:28])]
    assert wh.wait_once(server, to_c, [token + "-A", token + "-C"], allowed=[token + "-C"],
                        timeout=30) == []
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B", token + "-C"]) == []


def test_cut_during_the_batch(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    server = scratch_server()
    token = wh.unique("wb8")
    msgs = seeded(server, token, 40)
    port, log = fault_proxy(server.env["IMAP_PORT"], cut_on="UID MOVE", cut_when="response")
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=10",
            "cache_dir=" + str(tmp_path / "cache-wb8"), "writeback", HOLD]
    mnt = scratch_mounter(server, url=url, opts=opts)
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    os.listdir(b)
    r = subprocess.run(["mv"] + [os.path.join(a, n) for n in names] + [b + "/"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    fsync_dir(b)
    assert "UID MOVE" in helpers.read_text(log)
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []
    assert len(os.listdir(b)) == len(names)


def test_conflicts_lose_nothing(scratch_dovecot, scratch_mounter):
    """Another client expunges one message and deletes a destination before
    the flush: those changes are not made, each is listed in .status, and
    every other message lands once."""
    server = scratch_dovecot
    token = wh.unique("wb9")
    msgs = seeded(server, token, 10)
    m = server.connect()
    try:
        wh.create_folder(m, token + "-C")
    finally:
        m.logout()
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a, b, c = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B", "-C"))
    names = sorted(os.listdir(a))
    os.listdir(b)
    os.listdir(c)
    for n in names[:6]:
        os.rename(os.path.join(a, n), os.path.join(b, n))
    for n in names[6:]:
        os.rename(os.path.join(a, n), os.path.join(c, n))
    gone_uid = helpers.uid_of(names[0])
    m = server.connect()
    try:
        m.select('"%s-A"' % token)
        m.uid("STORE", str(gone_uid), "+FLAGS.SILENT", "(\\Deleted)")
        m.expunge()
        m.delete('"%s-C"' % token)
    finally:
        m.logout()
    try:
        fsync_dir(b)
    except OSError:
        pass    # a conflict's errno
    st = lh.read_status(mnt.path)["text"]
    assert st.count("writeback conflict:") == 5, st
    gone = next(x for x in msgs if x["uid"] == gone_uid)
    rest = [x for x in msgs if x is not gone]
    to_b = [x for x in rest if any(helpers.uid_of(n) == x["uid"] for n in names[:6])]
    assert wh.check_once(server.connect(), to_b, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []
    back = [x for x in rest if x not in to_b]
    assert wh.check_once(server.connect(), back, [token + "-A", token + "-B"],
                         allowed=[token + "-A"]) == []
    assert where(server, [gone], [token + "-A", token + "-B"])[gone["msgid"]] == []
    # the ones whose folder went are shown where they are again
    assert helpers.wait_for(lambda: len(os.listdir(a)) == 4, 15)


def test_changing_a_message_on_its_way(scratch_dovecot, scratch_mounter):
    """mv, setfattr or rm of a message whose move is not sent yet sends that
    move first, then makes the new change to the message where it arrived."""
    server = scratch_dovecot
    token = wh.unique("wb10")
    msgs = seeded(server, token, 3)
    m = server.connect()
    try:
        wh.create_folder(m, token + "-C")
        wh.create_folder(m, token + "-T")
    finally:
        m.logout()
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD, "trash=" + token + "-T"])
    a, b, c = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B", "-C"))
    names = sorted(os.listdir(a))
    for n in names:
        os.rename(os.path.join(a, n), os.path.join(b, n))
    os.rename(os.path.join(b, names[0]), os.path.join(c, names[0]))
    os.setxattr(os.path.join(b, names[1]), "user.imap.flags", b"\\Flagged")
    os.unlink(os.path.join(b, names[2]))
    assert os.listdir(c) == [names[0]]
    assert os.getxattr(os.path.join(b, names[1]), "user.imap.flags") == b"\\Flagged"
    fsync_dir(b)
    by_uid = {x["uid"]: x for x in msgs}
    first, second, third = (by_uid[helpers.uid_of(n)] for n in names)
    assert wh.check_once(server.connect(), msgs, [token + s for s in ("-A", "-B", "-C", "-T")]) == []
    got = where(server, msgs, [token + s for s in ("-A", "-B", "-C", "-T")])
    assert got[first["msgid"]] == [token + "-C"]
    assert got[second["msgid"]] == [token + "-B"]
    assert got[third["msgid"]] == [token + "-T"]
    assert "\\Flagged" in flags_on_server(server, token + "-B")[second["msgid"]]


def test_look_alikes_land_once(scratch_dovecot, scratch_mounter):
    """Messages of the same size and date moved to one folder together go in
    separate batches (an unclear outcome must be attributable): all land
    once."""
    server = scratch_dovecot
    token = wh.unique("wb11")
    base = wh.make_msg(token, 0)
    msgs = []
    for i in range(8):      # the same bytes but for one digit of the Message-ID
        raw = base["raw"].replace(base["msgid"][1:-1].encode(),
                                  base["msgid"][1:-1].replace(".0@", ".%d@" % i).encode())
        msgs.append(dict(base, raw=raw, msgid=base["msgid"].replace(".0@", ".%d@" % i),
                         sha=helpers.sha256(raw)))
    assert len({len(x["raw"]) for x in msgs}) == 1 and len({x["sha"] for x in msgs}) == 8
    m = server.connect()
    try:
        wh.seed(m, token + "-A", msgs)
        wh.create_folder(m, token + "-B")
    finally:
        m.logout()
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    r = subprocess.run(["mv"] + [os.path.join(a, n) for n in names] + [b + "/"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    fsync_dir(b)
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-B"],
                         allowed=[token + "-B"]) == []


def test_unmount_offline_keeps_them_for_the_next_mount(scratch_server, scratch_mounter, tmp_path):
    server = scratch_server()
    token = wh.unique("wb12")
    msgs = seeded(server, token, 10)
    cache = str(tmp_path / "cache-wb12")
    opts = server.opts(cache) + ["writeback", "timeout=3"]
    mnt = scratch_mounter(server, opts=opts)
    a, b = (helpers.folder_path(mnt.path, token + s) for s in ("-A", "-B"))
    names = sorted(os.listdir(a))
    os.listdir(b)
    server.stop()
    for n in names:
        os.rename(os.path.join(a, n), os.path.join(b, n))
    t0 = time.monotonic()
    with __import__("pytest").raises(OSError):
        fsync_dir(b)        # EIO: the server cannot be reached
    assert time.monotonic() - t0 < 8
    t0 = time.monotonic()
    mnt.stop()
    assert time.monotonic() - t0 < 8
    assert "not on the server yet" in mnt.stderr()
    server.restart()
    again = scratch_mounter(server, opts=opts)
    b = helpers.folder_path(again.path, token + "-B")
    assert wh.wait_once(server, msgs, [token + "-A", token + "-B"], allowed=[token + "-B"],
                        timeout=30) == []
    assert helpers.wait_for(lambda: len(os.listdir(b)) == 10, 15)


def write_file(path, data, flags=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        if flags:
            os.setxattr(path, "user.imap.flags", flags)
    finally:
        os.close(fd)


def test_cp_listed_and_readable_at_once(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    token = wh.unique("wb13")
    msgs = [wh.make_msg(token, i, size=2000 + 700 * i) for i in range(5)]
    m = server.connect()
    try:
        wh.create_folder(m, token + "-B")
    finally:
        m.logout()
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    b = helpers.folder_path(mnt.path, token + "-B")
    os.listdir(b)
    for i, msg in enumerate(msgs):
        write_file(os.path.join(b, "new-%d.eml" % i), msg["raw"], b"\\Seen $Kept" if i % 2 else None)
    assert sorted(os.listdir(b)) == ["new-%d.eml" % i for i in range(5)]
    for i, msg in enumerate(msgs):
        p = os.path.join(b, "new-%d.eml" % i)
        assert helpers.sha256_file(p) == msg["sha"]
        assert os.stat(p).st_size == len(msg["raw"])
    assert where(server, msgs, [token + "-B"]) == {x["msgid"]: [] for x in msgs}
    fsync_dir(b)
    assert wh.check_once(server.connect(), msgs, [token + "-B"], allowed=[token + "-B"]) == []
    got = flags_on_server(server, token + "-B")
    for i, msg in enumerate(msgs):
        assert ({"\\Seen", "$Kept"} <= got[msg["msgid"]]) == bool(i % 2), got
    # the names cp used still open them, now from the server
    for i, msg in enumerate(msgs):
        assert helpers.sha256_file(os.path.join(b, "new-%d.eml" % i)) == msg["sha"]
    assert len(os.listdir(b)) == 5


def test_cp_over_quota_is_kept_and_reported(scratch_server, scratch_mounter, tmp_path):
    server = scratch_server(extra_args=["--quota=1M"])
    token = wh.unique("wb14")
    big = wh.make_msg(token, 0, size=1500000)
    small = wh.make_msg(token, 1, size=3000)
    m = server.connect()
    try:
        wh.create_folder(m, token + "-B")
    finally:
        m.logout()
    cache = str(tmp_path / "cache-wb14")
    mnt = scratch_mounter(server, opts=server.opts(cache) + ["writeback", HOLD])
    b = helpers.folder_path(mnt.path, token + "-B")
    os.listdir(b)
    write_file(os.path.join(b, "big.eml"), big["raw"])     # returns 0: journaled
    write_file(os.path.join(b, "small.eml"), small["raw"])
    try:
        fsync_dir(b)
        raise AssertionError("fsync after a refused cp returned 0")
    except OSError as e:
        assert e.errno in (28, 5), e     # ENOSPC (the conflict's), or EIO
    assert wh.check_once(server.connect(), [small], [token + "-B"]) == []
    assert where(server, [big], [token + "-B"])[big["msgid"]] == []
    st = lh.read_status(mnt.path)["text"]
    assert "writeback conflict: cp into" in st, st
    kept = [os.path.join(dp, f) for dp, _, fs in os.walk(cache) for f in fs
            if f.startswith("unresolved-") and f.endswith(".eml")]
    assert [helpers.sha256_file(p) for p in kept] == [big["sha"]], kept
    assert "unresolved.txt" in mnt.stderr() or "journal directory" in mnt.stderr()
    assert sorted(os.listdir(b)) == ["small.eml"] or len(os.listdir(b)) == 1


def test_mkdir_then_mv_into_it(scratch_dovecot, scratch_mounter):
    server = scratch_dovecot
    token = wh.unique("wb15")
    msgs = seeded(server, token, 5, dest=False)
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a = helpers.folder_path(mnt.path, token + "-A")
    n = helpers.folder_path(mnt.path, token + "-New")
    names = sorted(os.listdir(a))
    t0 = time.monotonic()
    os.mkdir(n)
    assert time.monotonic() - t0 < 1
    assert os.listdir(n) == []
    assert token + "-New" in os.listdir(mnt.path)
    m = server.connect()
    try:
        assert token + "-New" not in wh.all_folders(m)
    finally:
        m.logout()
    for x in names:
        os.rename(os.path.join(a, x), os.path.join(n, x))
    assert sorted(os.listdir(n)) == names
    fsync_dir(n)
    assert wh.check_once(server.connect(), msgs, [token + "-A", token + "-New"],
                         allowed=[token + "-New"]) == []
    assert len(os.listdir(n)) == 5
    os.mkdir(helpers.folder_path(mnt.path, token + "-Empty"))
    fsync_dir(mnt.path)
    m = server.connect()
    try:
        assert token + "-Empty" in wh.all_folders(m)
    finally:
        m.logout()


def test_conflicts_moved_away_and_folder_recreated(scratch_dovecot, scratch_mounter):
    """Another client moves one message elsewhere, and deletes and re-creates
    a source folder (new UIDVALIDITY), before the flush: those changes are
    not made, each is listed in .status, and every message is once where
    the server has it."""
    server = scratch_dovecot
    token = wh.unique("wb16")
    msgs = seeded(server, token, 4)
    others = [wh.make_msg(token + "s", i) for i in range(2)]
    m = server.connect()
    try:
        wh.seed(m, token + "-S", others)
        wh.create_folder(m, token + "-C")
    finally:
        m.logout()
    mnt = scratch_mounter(server, extra_opts=["writeback", HOLD])
    a, b, sf = (helpers.folder_path(mnt.path, token + x) for x in ("-A", "-B", "-S"))
    os.listdir(b)
    for d in (a, sf):
        for n in os.listdir(d):
            os.rename(os.path.join(d, n), os.path.join(b, n))
    moved_away = msgs[0]
    m = server.connect()
    try:
        m.select('"%s-A"' % token)
        assert m.uid("MOVE", str(moved_away["uid"]), '"%s-C"' % token)[0] == "OK"
        m.select('"%s-B"' % token)
        m.close()
        assert m.delete('"%s-S"' % token)[0] == "OK"
        wh.seed(m, token + "-S", others)      # the same messages, a new UIDVALIDITY
    finally:
        m.logout()
    try:
        fsync_dir(b)
    except OSError:
        pass    # a conflict's errno
    st = lh.read_status(mnt.path)["text"]
    # the re-created folder's: UIDVALIDITY changed, or (a session that had
    # the old one selected moved nothing) gone
    assert st.count("writeback conflict:") == 3, st
    folders = [token + x for x in ("-A", "-B", "-C", "-S")]
    assert wh.check_once(server.connect(), [moved_away], folders, allowed=[token + "-C"]) == []
    assert wh.check_once(server.connect(), msgs[1:], folders, allowed=[token + "-B"]) == []
    assert wh.check_once(server.connect(), others, folders, allowed=[token + "-S"]) == []
