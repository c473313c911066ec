"""COMPRESS=DEFLATE (RFC 4978) through a real mount.

On a private Dovecot with its imap_zlib plugin (dovecot-env --compress;
on Cyrus, which always offers it, the same):
  * with -o compress=yes every listing and every byte of every message is
    what imaplib gets, and cp and mv work;
  * the wire really is compressed: a counting relay on 127.0.0.1 (plain
    IMAP, -o plaintext) sees far fewer bytes with compress=yes than with no;
  * compress=auto does not compress on loopback, however long the round
    trip; on a non-loopback address of this machine it compresses when the
    round trip is long and not when it is short;
  * compress=yes on a server without COMPRESS: one line in the log.
A hostile server (scripts/fake-imap-server.py --mode compress) that answers
COMPRESS OK and then sends a corrupt deflate stream, a truncated one, a
stalled one, a compression bomb, or bytes in the OK's packet before the
inflater could be in place: the request fails with EIO in bounded time,
imapfs's memory stays bounded, and it lives on."""

import errno
import os
import re
import socket
import time

import pytest

import helpers
import link_helpers
import live_helpers as lh
import write_helpers as wh
from live_helpers import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.deadline(180)

TIMEOUT = 2                 # -o timeout for the hostile server: 4x that per operation
RSS_LIMIT = 400 << 20       # the 64 MiB a request may read, and then some
COMPRESSING = "compressing the connections to"


# -- the server ------------------------------------------------------------------------

FOLDERS = {
    # folder: [(size, body kind)]
    "INBOX": [(300, "plain"), (2500, "utf8"), (9000, "qp"), (31000, "alt"), (700, "plain"),
              (64000, "plain"), (120000, "utf8"), (4000, "attach"), (1500, "plain")],
    "Bulk": [(2000000, "plain"), (1000000, "attach"), (300000, "utf8")],
}


@pytest.fixture(scope="module")
def zserver():
    """A private server offering COMPRESS=DEFLATE, with FOLDERS in it;
    .truth = {folder: [folder_contents records]}."""
    s = wh.ScratchServer(extra_args=["--compress"])
    try:
        s.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        m = s.connect()
        try:
            assert "COMPRESS=DEFLATE" in wh.capabilities(m), wh.capabilities(m)
            for folder, plan in FOLDERS.items():
                token = wh.unique("z" + folder)
                msgs = [wh.make_msg(token, i, size=size, body=kind)
                        for i, (size, kind) in enumerate(plan)]
                wh.seed(m, folder, msgs, create=folder != "INBOX")
            s.truth = {f: wh.folder_contents(m, f) for f in FOLDERS}
        finally:
            m.logout()
        yield s
    finally:
        s.cleanup()


def plain_url(server, port, host="127.0.0.1"):
    return "imap://%s@%s:%d" % (server.env["USER"], host, port)


def plain_opts(server, cache):
    return ["plaintext", "password_file=" + server.env["PASSWORD_FILE"], "cache_dir=" + cache]


def read_everything(mnt_path, folders=FOLDERS):
    """{folder: {uid: sha256}} of every file in the mount's folders."""
    out = {}
    for folder in folders:
        d = helpers.folder_path(mnt_path, folder)
        out[folder] = {helpers.uid_of(n): helpers.sha256_file(os.path.join(d, n))
                       for n in os.listdir(d)}
    return out


def truth_sums(server, folders=FOLDERS):
    return {f: {r["uid"]: r["sha"] for r in server.truth[f]} for f in folders}


def non_loopback_address():
    """An IPv4 address of this machine that is not loopback, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))      # no packet is sent
            addr = s.getsockname()[0]
    except OSError:
        return None
    if addr.startswith("127.") or addr == "0.0.0.0":
        return None
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
    except OSError:
        return None
    return addr


# -- a real server -------------------------------------------------------------------------

def test_contents_equal_imaplib(zserver, scratch_mounter):
    """compress=yes: the names are imaplib's (subject, date, UID) and every
    byte of every message too (SHA-256), a 2 MB text and a 1 MB attachment
    included."""
    mnt = scratch_mounter(zserver, extra_opts=["compress=yes"])
    for folder, recs in zserver.truth.items():
        d = helpers.folder_path(mnt.path, folder)
        names = sorted(os.listdir(d))
        want = sorted(helpers.expected_name(_subject(r), r["internaldate"], r["uid"])
                      for r in recs)
        assert names == want, folder
        for n in names:
            assert os.stat(os.path.join(d, n)).st_size == next(
                r["size"] for r in recs if r["uid"] == helpers.uid_of(n))
    assert read_everything(mnt.path) == truth_sums(zserver)
    assert COMPRESSING in mnt.stderr(), mnt.stderr()[-2000:]


def _subject(rec):
    m = re.search(rb"(?im)^Subject: ?(.*)\r?$", rec["body"].split(b"\r\n\r\n", 1)[0])
    return m.group(1).decode() if m else None


def test_cp_and_mv(zserver, scratch_mounter, tmp_path):
    """compress=yes: cp of a 700 KB message into a folder (APPEND through
    the deflater), then mv of it to another folder: the server has exactly
    the bytes, once, where they belong."""
    src_folder, dst_folder = wh.unique_folder("ZCp"), wh.unique_folder("ZMv")
    m = zserver.connect()
    try:
        wh.create_folder(m, src_folder)
        wh.create_folder(m, dst_folder)
    finally:
        m.logout()
    mnt = scratch_mounter(zserver, extra_opts=["compress=yes"])
    msg = wh.make_msg(wh.unique("zcp"), 0, size=700000, body="attach")
    f = tmp_path / "new.eml"
    f.write_bytes(msg["raw"])
    src = helpers.folder_path(mnt.path, src_folder)
    r = wh.run(["cp", str(f), src + "/"])
    assert r.returncode == 0, r.stderr
    m = zserver.connect()
    try:
        recs = wh.folder_contents(m, src_folder)
    finally:
        m.logout()
    assert [r["sha"] for r in recs] == [msg["sha"]]
    name = next(n for n in os.listdir(src) if helpers.uid_of(n) == recs[0]["uid"])
    dst = helpers.folder_path(mnt.path, dst_folder)
    r = wh.run(["mv", os.path.join(src, name), dst + "/"])
    assert r.returncode == 0, r.stderr
    m = zserver.connect()
    try:
        assert wh.folder_contents(m, src_folder) == []
        moved = wh.folder_contents(m, dst_folder)
    finally:
        m.logout()
    assert [r["sha"] for r in moved] == [msg["sha"]]
    assert [helpers.sha256_file(os.path.join(dst, n)) for n in os.listdir(dst)] == [msg["sha"]]
    assert COMPRESSING in mnt.stderr()


def test_idle_over_compression(zserver, scratch_mounter):
    """compress=yes: the INBOX watcher's IDLE (its DONE deflated and flushed
    like any command, the server's news inflated) brings a message another
    client appends into the listing at once (dir_cache is an hour)."""
    mnt = scratch_mounter(zserver, extra_opts=["compress=yes", "dir_cache=3600", "debug"])
    inbox = os.path.join(mnt.path, "INBOX")
    before = set(os.listdir(inbox))
    assert helpers.wait_for(lambda: re.search(r"watching INBOX with IDLE", mnt.stderr()), 10)
    time.sleep(0.5)                     # into IDLE
    msg = wh.make_msg(wh.unique("zidle"), 0, size=3000)
    m = zserver.connect()
    try:
        uid = wh.seed(m, "INBOX", [msg], create=False)[0]["uid"]
        zserver.truth["INBOX"] = wh.folder_contents(m, "INBOX")
    finally:
        m.logout()
    assert helpers.wait_for(lambda: any(helpers.uid_of(n) == uid for n in os.listdir(inbox)), 5), \
        mnt.stderr()[-3000:]
    new = [n for n in set(os.listdir(inbox)) - before]
    assert [helpers.sha256_file(os.path.join(inbox, n)) for n in new] == [msg["sha"]]
    assert len(re.findall(r"session \d+: compressing|compressing the connections", mnt.stderr())) >= 2


def _relay_run(zserver, imapfs_bin, tmp_path, name, opts, link):
    """Mount through link (plain IMAP), read everything; (sums, bytes down,
    bytes up, stderr)."""
    m = helpers.Mount(imapfs_bin, plain_url(zserver, link.port, link.host),
                      str(tmp_path / ("mnt-" + name)),
                      plain_opts(zserver, str(tmp_path / ("cache-" + name))) + opts,
                      logdir=str(tmp_path), name="imapfs-" + name)
    m.start()
    try:
        sums = read_everything(m.path)
    finally:
        m.stop()
    down, up = link.counts()
    return sums, down, up, m.stderr()


def test_wire_is_compressed(zserver, imapfs_bin, tmp_path):
    """Through a counting relay on 127.0.0.1: reading everything with
    compress=yes takes well under half the bytes on the wire that
    compress=no takes (the 1 MB attachment is random base64, which deflate
    shrinks by a quarter only), and the bytes read are the same."""
    runs = {}
    for mode in ("no", "yes"):
        link = link_helpers.Link(zserver.env["IMAP_PORT"])
        try:
            runs[mode] = _relay_run(zserver, imapfs_bin, tmp_path, "wire-" + mode,
                                    ["compress=" + mode, "prefetch=0"], link)
        finally:
            link.close()
    assert runs["no"][0] == runs["yes"][0] == truth_sums(zserver)
    plain = sum(r["size"] for recs in zserver.truth.values() for r in recs)
    assert runs["no"][1] > plain                       # every byte crossed, and more
    assert runs["yes"][1] < 0.5 * runs["no"][1], (runs["yes"][1], runs["no"][1])
    assert COMPRESSING in runs["yes"][3] and COMPRESSING not in runs["no"][3]


def test_auto_never_on_loopback(zserver, imapfs_bin, tmp_path):
    """compress=auto (the default) through a relay on 127.0.0.1 that makes
    the round trip 40 ms: loopback, so no compression -- the log says why,
    and the wire carries every byte."""
    link = link_helpers.Link(zserver.env["IMAP_PORT"], rtt_ms=40)
    try:
        sums, down, _, err = _relay_run(zserver, imapfs_bin, tmp_path, "auto-lo", ["debug"],
                                        link)
    finally:
        link.close()
    assert sums == truth_sums(zserver)
    assert re.search(r"not compressing \(loopback; round trip (\d+\.\d+) ms\)", err), err[-3000:]
    rtt = float(re.search(r"not compressing \(loopback; round trip (\d+\.\d+) ms\)", err).group(1))
    assert rtt >= 30, "the relay's 40 ms were not measured: %.2f ms" % rtt
    assert COMPRESSING not in err
    assert down > sum(r["size"] for recs in zserver.truth.values() for r in recs)


@pytest.mark.parametrize("rtt_ms,compressed", [(40, True), (0, False)], ids=["slow", "fast"])
def test_auto_by_round_trip(zserver, imapfs_bin, tmp_path, rtt_ms, compressed):
    """compress=auto through a relay on a non-loopback address of this
    machine: a 40 ms round trip compresses, a direct one (well under 10 ms)
    does not."""
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    link = link_helpers.Link(zserver.env["IMAP_PORT"], listen=addr, rtt_ms=rtt_ms)
    try:
        sums, down, _, err = _relay_run(zserver, imapfs_bin, tmp_path, "auto-%d" % rtt_ms,
                                        ["debug", "compress=auto"], link)
    finally:
        link.close()
    assert sums == truth_sums(zserver)
    if compressed:
        assert COMPRESSING in err, err[-3000:]
    else:
        assert re.search(r"not compressing \(a short round trip; round trip", err), err[-3000:]
        assert COMPRESSING not in err


def test_yes_without_server_support_logs_once(fake_server, live, tmp_path):
    """compress=yes on a server without COMPRESS=DEFLATE: the mount works,
    one line says so, however many connections log in, and COMPRESS is
    never sent."""
    port, log = fake_server("codes", lifetime=60)
    pw = tmp_path / "pw"
    pw.write_text("any\n")
    pw.chmod(0o600)
    mnt = live.mount(None, url="imap://alice@127.0.0.1:%d" % port,
                     opts=["plaintext", "password_file=%s" % pw, "cache_dir=%s" % (tmp_path / "c"),
                           "compress=yes", "connections=3"])
    assert sorted(os.listdir(os.path.join(mnt.path, "INBOX")))
    assert sorted(os.listdir(os.path.join(mnt.path, "Other")))
    text = helpers.read_text(log)
    assert helpers.wait_for(lambda: len(re.findall(r"\] C: \S+ LOGIN", helpers.read_text(log))) >= 2,
                            10), helpers.read_text(log)
    err = mnt.stderr()
    assert len(re.findall(r"does not offer COMPRESS=DEFLATE", err)) == 1, err
    assert "COMPRESS" not in re.sub(r"CAPABILITY.*", "", text)


# -- a hostile server -----------------------------------------------------------------------

def _peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _hostile_mount(live, fake_server, tmp_path, attack, *extra):
    port, log = fake_server("compress", "--compress-attack", attack, *extra, lifetime=170)
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    opts = ["plaintext", "password_file=%s" % pw, "cache_dir=%s" % (tmp_path / "zcache"),
            "timeout=%d" % TIMEOUT, "prefetch=0", "compress=yes", "connections=2"]
    return live.mount(None, url="imap://alice@127.0.0.1:%d" % port, opts=opts), log


WHY = {
    "corrupt": r"compressed data is corrupt",
    "truncated": r"connection lost",
    "stalled": r"stopped answering",
    "bomb": r"inflates to more than one request may take",
}


@pytest.mark.parametrize("attack", ["corrupt", "truncated", "stalled", "bomb"])
def test_hostile_stream_fails_in_bounded_time(live, fake_server, tmp_path, attack):
    """COMPRESS answered OK and done right, until a message of Other is
    read; then its response is a corrupt deflate stream, one cut short (and
    the connection closed), one cut short and silent, or a bomb (a line of
    "A"s without end, 1000:1).  Reading it fails with EIO within 2 x 4 x
    timeout s (one retry on a new connection) plus slack; the log says why;
    imapfs's peak RSS stays below 400 MB; it lives on, and INBOX still
    lists."""
    mnt, log = _hostile_mount(live, fake_server, tmp_path, attack)
    d = os.path.join(mnt.path, "Other")
    names = sorted(os.listdir(d))
    assert len(names) == 6, names
    assert COMPRESSING in mnt.stderr()
    limit = 2 * 4 * TIMEOUT + 6
    t0 = time.monotonic()
    r = live.op({"op": "readpath", "path": os.path.join(d, names[0])}, timeout=limit + 30)
    took = time.monotonic() - t0
    assert not r.get("hung"), "cat hangs (%s)" % attack
    assert not r.get("ok"), "cat succeeded against %s?" % attack
    assert r.get("errno") == errno.EIO, "cat: %s, want EIO" % lh.errname(r)
    assert took < limit, "cat took %.1f s (limit %d s)" % (took, limit)
    assert mnt.proc.poll() is None, "imapfs exited"
    if not os.environ.get("IMAPFS_SANITIZED"):
        rss = _peak_rss(mnt.proc.pid)
        assert rss < RSS_LIMIT, "peak RSS %d MB" % (rss >> 20)
    assert re.search(WHY[attack], mnt.stderr()), mnt.stderr()[-3000:]
    assert "<compress attack %s>" % attack in helpers.read_text(log)
    if attack == "bomb":
        m = re.search(r"<bomb: (\d+) bytes deflated to (\d+)>", helpers.read_text(log))
        assert m, helpers.read_text(log)[-2000:]
        # what the server got rid of inflates to far more than imapfs took in
        assert int(m.group(2)) > 64 << 20 and int(m.group(1)) < int(m.group(2)) // 500, m.groups()
    ok = helpers.wait_for(lambda: live.op({"op": "listdir", "path": os.path.join(
        mnt.path, "INBOX")}, timeout=30).get("ok"), 30, 0.5)
    assert ok, "INBOX no longer lists after the attack"


def test_injection_after_ok_refused_at_mount(imapfs_bin, fake_server, tmp_path):
    """The server answers COMPRESS with its OK and, in the same packet,
    deflated bytes (read by libetpan before the inflater is in place): the
    mount is refused with a line saying so, and the client sends nothing
    more."""
    port, log = fake_server("compress", "--compress-attack", "inject", lifetime=60)
    pw = tmp_path / "pw"
    pw.write_text("any\n")
    pw.chmod(0o600)
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt)
    try:
        r = helpers.run_imapfs(imapfs_bin, ["-o", "plaintext,compress=yes,password_file=%s" % pw,
                                            "imap://alice@127.0.0.1:%d" % port, mnt],
                               mountpoint=mnt, workdir=str(tmp_path))
        assert r.returncode not in (0, "timeout"), r
        assert not r.mounted and not r.leftover, r
        assert not helpers.sanitizer_lines(r.stderr), r
    finally:
        helpers.cleanup_mountpoint(mnt)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "warning: -o plaintext" not in ln]
    assert len(lines) == 1 and "sent more after its answer to COMPRESS" in lines[0], r
    conv = helpers.read_text(log)
    assert "<injected deflated bytes after the OK>" in conv and "C-RAW: 0 bytes" in conv, conv


def test_injection_on_a_later_connection(live, fake_server, tmp_path):
    """The first connection compresses honestly, then leaves (BYE) when a
    message of Other is read; every later one injects bytes after its
    COMPRESS OK.  The read fails with EIO in bounded time, no later
    connection sends anything after the OK, imapfs lives on and lists
    what it had."""
    mnt, log = _hostile_mount(live, fake_server, tmp_path, "inject", "--attack-from", "2")
    d = os.path.join(mnt.path, "Other")
    names = sorted(os.listdir(d))
    assert len(names) == 6
    limit = 2 * 4 * TIMEOUT + 6
    t0 = time.monotonic()
    r = live.op({"op": "readpath", "path": os.path.join(d, names[0])}, timeout=limit + 30)
    took = time.monotonic() - t0
    assert not r.get("ok") and r.get("errno") == errno.EIO, lh.errname(r)
    assert took < limit, "cat took %.1f s" % took
    assert mnt.proc.poll() is None
    assert helpers.wait_for(lambda: "sent more after its answer to COMPRESS" in mnt.stderr(), 10), \
        mnt.stderr()[-3000:]
    conv = helpers.read_text(log)
    injected = re.findall(r"^\[(\d+)\] S: <injected deflated bytes after the OK>", conv, re.M)
    assert injected and "1" not in injected, conv[-3000:]
    for n in injected:
        assert "[%s] C-RAW: 0 bytes" % n in conv, conv[-3000:]
    r = live.op({"op": "listdir", "path": d}, timeout=30)
    assert r.get("ok") and sorted(r["names"]) == names, r
