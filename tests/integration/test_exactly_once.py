"""Exactly once (README: "What imapfs promises about your mail"): every
change is recorded in the change journal before it is sent and resolved
from the server's state, so no fault duplicates or loses a message.

Each test injects faults -- the server's session processes SIGKILLed at
random, imapfs itself SIGKILLed (alone, and at the same instant as the
server's sessions), a connection cut before or after the server acted, a
step of the COPY fallback refused -- and then checks every message with an
independent client (imaplib) by the SHA-256 of its bytes: each exists
exactly once; a cp that reported success is stored once, one that failed is
not stored.  The fault matrix prints one line with the number of
operations, faults, messages lost and duplicated."""

import errno
import imaplib
import os
import random
import signal
import threading
import time

import pytest

import helpers
import live_helpers as lh
import write_helpers as wh
from helpers import mailgen

KILL_MIN, KILL_MAX = 0.05, 0.4      # seconds between SIGKILLs of server sessions
OPS_PER_KILL = 30                    # ... and one at least every this many operations


# -- faults ---------------------------------------------------------------------

def _children(pid):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            kids.setdefault(int(fields[1]), []).append(int(p))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        for k in kids.get(q, ()):
            out.append(k)
            todo.append(k)
    return out


def _established_inodes():
    """Socket inodes of established TCP connections (/proc/net/tcp{,6})."""
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "01":      # ESTABLISHED
                        out.add(fields[9])
        except OSError:
            continue
    return out


def _serves_a_connection(pid, established):
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            if link.startswith("socket:[") and link[8:-1] in established:
                return True
    except OSError:
        pass
    return False


def session_pids(server):
    """PIDs of the server's session processes that serve a connection now
    (Cyrus also keeps idle ones forked ahead: killing those proves nothing)."""
    try:
        with open(server.env["PID_FILE"]) as f:
            master = int(f.read().split()[0])
    except (OSError, ValueError, KeyError):
        master = int(server.env["PID"])
    out = []
    established = _established_inodes()
    for pid in _children(master):
        try:
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
            # Dovecot forks an imap process per connection (its TLS ends in
            # imap-login); Cyrus forks imapd ahead, idle until a client comes
            if comm == "imap" or (comm == "imapd" and _serves_a_connection(pid, established)):
                out.append(pid)
        except OSError:
            continue
    return out


class SessionKiller:
    """SIGKILLs one of the server's session processes every 0.05-0.4 s,
    and at once whenever the operations tick past OPS_PER_KILL more: on a
    fast server (Cyrus finishes the matrix in a few seconds) the clock alone
    injected as few as 4 faults; the ticks keep the faults proportional to
    the work, and the kill still lands during whatever operation runs next."""

    def __init__(self, server, seed=7):
        self.server, self.rnd = server, random.Random(seed)
        self.kills = self.ops = 0
        self.stop_ev = threading.Event()
        self.nudge = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def tick(self):
        """One operation done (called by the test's thread)."""
        self.ops += 1
        if self.ops % OPS_PER_KILL == 0:
            self.nudge.set()

    def run(self):
        while not self.stop_ev.is_set():
            self.nudge.wait(self.rnd.uniform(KILL_MIN, KILL_MAX))
            self.nudge.clear()
            if self.stop_ev.is_set():
                break
            pids = session_pids(self.server)
            if pids:
                try:
                    os.kill(self.rnd.choice(pids), signal.SIGKILL)
                    self.kills += 1
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.nudge.set()
        self.thread.join(10)


def server_back(server, timeout=20):
    """After the session killer: the server accepts connections again.
    (Cyrus's master disables a service whose processes keep dying: then it
    is restarted, same mail, same ports.)"""
    up = helpers.wait_for(lambda: wh.port_open(server.env["IMAPS_PORT"]) and
                          wh.port_open(server.env["IMAP_PORT"]), timeout, 0.2)
    if not up:
        server.stop()
        server.restart()


def pending(mnt_path):
    """The journal's pending count from MOUNT/.status, or None."""
    st = lh.read_status(mnt_path)
    for line in st["text"].splitlines():
        if line.startswith("journal: "):
            return int(line.split()[1])
    return None


def wait_settled(mnt, timeout=60):
    st = lh.wait_status(mnt.path, lambda s: "journal: 0 pending" in s["text"], timeout, 0.5)
    assert "journal: 0 pending" in st["text"], "journal not settled:\n%s\nlog:\n%s" % (
        st["text"], helpers.read_text(mnt.stderr_path)[-6000:])


# -- what the server holds --------------------------------------------------------

def inventory(server):
    """{sha256: [(folder, uid, flags, internaldate)]} of every message."""
    m = server.connect()
    out = {}
    try:
        for f in wh.all_folders(m):
            for rec in wh.folder_contents(m, f):
                out.setdefault(rec["sha"], []).append(
                    (f, rec["uid"], rec.get("flags", []), rec.get("internaldate")))
    finally:
        m.logout()
    return out


def count_problems(inv, msgs):
    """(lost, duplicated, lines) over msgs (dicts with "sha")."""
    lost = dup = 0
    lines = []
    for msg in msgs:
        n = len(inv.get(msg["sha"], []))
        if n == 0:
            lost += 1
            lines.append("lost %s" % msg["msgid"])
        elif n > 1:
            dup += 1
            lines.append("%d copies of %s: %s" % (n, msg["msgid"], inv[msg["sha"]]))
    return lost, dup, lines


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


# -- 1. the fault matrix ------------------------------------------------------------

N_MV, N_RM, N_CP, N_FLAGS = 300, 100, 100, 100


@pytest.mark.slow
@pytest.mark.deadline(900)
def test_fault_matrix(scratch_server, scratch_mounter, tmp_path):
    server = scratch_server()
    token = wh.unique("x1")
    src, dst, cpf, flf = ("%s-%s" % (token, n) for n in ("Src", "Dst", "Cp", "Fl"))
    moving = [wh.make_msg(token + "mv", i) for i in range(N_MV)]
    removing = [wh.make_msg(token + "rm", i) for i in range(N_RM)]
    flagged = [wh.make_msg(token + "fl", i) for i in range(N_FLAGS)]
    copies = [wh.make_msg(token + "cp", i) for i in range(N_CP)]
    m = server.connect()
    try:
        wh.seed(m, src, moving + removing)
        wh.seed(m, flf, flagged)
        wh.create_folder(m, dst)
        wh.create_folder(m, cpf)
    finally:
        m.logout()
    mnt = scratch_mounter(server, extra_opts=["timeout=5"])
    sdir, ddir, cdir, fdir = (helpers.folder_path(mnt.path, f) for f in (src, dst, cpf, flf))
    by_uid = {helpers.uid_of(n): n for n in os.listdir(sdir)}
    fl_names = {helpers.uid_of(n): n for n in os.listdir(fdir)}
    results = {"mv": [], "rm": [], "cp": [], "flags": []}
    ops = 0
    with SessionKiller(server) as killer:
        for msg in moving:
            try:
                os.rename(os.path.join(sdir, by_uid[msg["uid"]]), os.path.join(ddir, by_uid[msg["uid"]]))
                results["mv"].append((msg, None))
            except OSError as e:
                results["mv"].append((msg, errname(e)))
            ops += 1
            killer.tick()
        for msg in removing:
            try:
                os.unlink(os.path.join(sdir, by_uid[msg["uid"]]))
                results["rm"].append((msg, None))
            except OSError as e:
                results["rm"].append((msg, errname(e)))
            ops += 1
            killer.tick()
        for i, msg in enumerate(copies):
            try:
                with open(os.path.join(cdir, "new-%d.eml" % i), "wb") as f:
                    f.write(msg["raw"])
                results["cp"].append((msg, None))
            except OSError as e:
                results["cp"].append((msg, errname(e)))
            ops += 1
            killer.tick()
        for msg in flagged:
            try:
                os.setxattr(os.path.join(fdir, fl_names[msg["uid"]]), "user.imap.flags",
                            b"\\Flagged $Checked")
                results["flags"].append((msg, None))
            except OSError as e:
                results["flags"].append((msg, errname(e)))
            ops += 1
            killer.tick()
        faults = killer.kills
    server_back(server)
    wait_settled(mnt, 90)
    inv = inventory(server)
    lost, dup, lines = count_problems(inv, moving + removing + flagged)
    # a cp that succeeded is stored exactly once; one that failed is not stored
    for msg, err in results["cp"]:
        n = len(inv.get(msg["sha"], []))
        if err is None and n != 1:
            lines.append("cp reported success, %d copies of %s" % (n, msg["msgid"]))
            lost += n == 0
            dup += n > 1
        if err is not None and n != 0:
            lines.append("cp failed (%s) but %d copies of %s stored" % (err, n, msg["msgid"]))
            dup += 1
    # where each one is
    for msg, err in results["mv"]:
        where = [w[0] for w in inv.get(msg["sha"], [])]
        if err is None and where != [dst]:
            lines.append("mv reported success, %s is in %s" % (msg["msgid"], where))
    for msg, err in results["rm"]:
        where = [w[0] for w in inv.get(msg["sha"], [])]
        if err is None and where != ["Trash"]:
            lines.append("rm reported success, %s is in %s" % (msg["msgid"], where))
    for msg, err in results["flags"]:
        hits = inv.get(msg["sha"], [])
        if err is None and hits and not {"\\Flagged", "$Checked"} <= set(hits[0][2]):
            lines.append("flags reported set, %s has %s" % (msg["msgid"], hits[0][2]))
    failed = {}
    for k, v in results.items():
        for _, e in v:
            if e:
                failed.setdefault(k, {}).setdefault(e, 0)
                failed[k][e] += 1
    print("\nexactly-once fault matrix: %d operations (%d mv, %d rm, %d cp, %d flag changes), "
          "%d faults injected, %d messages lost, %d duplicated; failed calls: %s" % (
              ops, N_MV, N_RM, N_CP, N_FLAGS, faults, lost, dup, failed))
    assert faults >= 5, "too few faults injected (%d): the test proves little" % faults
    assert lost == 0 and dup == 0 and not lines, "\n".join(lines[:40])


# -- 2. imapfs killed (alone, and with the server's sessions) ------------------------

def _kill_imapfs_during_mv(server, scratch_mounter, tmp_path, with_server):
    token = wh.unique("x2")
    src, dst = token + "-Src", token + "-Dst"
    msgs = [wh.make_msg(token, i) for i in range(120)]
    m = server.connect()
    try:
        wh.seed(m, src, msgs)
        wh.create_folder(m, dst)
    finally:
        m.logout()
    cache = str(tmp_path / "cache-kill")
    opts = server.opts(cache) + ["timeout=5"]
    mnt = scratch_mounter(server, opts=opts)
    sdir, ddir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    names = sorted(os.listdir(sdir))
    done = []

    def mover():
        for n in names:
            try:
                os.rename(os.path.join(sdir, n), os.path.join(ddir, n))
                done.append(n)
            except OSError:
                return

    t = threading.Thread(target=mover, daemon=True)
    t.start()
    assert helpers.wait_for(lambda: len(done) >= 20, 60, 0.01), "the mv loop did not start"
    victims = session_pids(server) if with_server else []
    os.kill(mnt.proc.pid, signal.SIGKILL)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    t.join(30)
    mnt.proc.wait(10)
    server_back(server)
    mnt.stopped = True
    helpers.cleanup_mountpoint(mnt.path)
    # the same cache_dir: the journal's pending entries are resolved
    again = scratch_mounter(server, opts=opts)
    wait_settled(again, 60)
    inv = inventory(server)
    lost, dup, lines = count_problems(inv, msgs)
    print("\nimapfs SIGKILLed%s after %d of %d mv: %d lost, %d duplicated" % (
        " with the server's sessions" if with_server else "", len(done), len(msgs), lost, dup))
    assert lost == 0 and dup == 0, "\n".join(lines[:40])
    for n in done:      # what was reported moved is in the destination
        uid = helpers.uid_of(n)
        msg = next(x for x in msgs if x["uid"] == uid)
        assert [w[0] for w in inv[msg["sha"]]] == [dst], (msg["msgid"], inv[msg["sha"]])


@pytest.mark.slow
@pytest.mark.deadline(300)
def test_imapfs_killed_during_mv(scratch_server, scratch_mounter, tmp_path):
    _kill_imapfs_during_mv(scratch_server(), scratch_mounter, tmp_path, False)


@pytest.mark.slow
@pytest.mark.deadline(300)
def test_imapfs_and_server_killed_during_mv(scratch_server, scratch_mounter, tmp_path):
    _kill_imapfs_during_mv(scratch_server(), scratch_mounter, tmp_path, True)


# -- 3. an older copy in the destination ----------------------------------------------

def _older_copy(server, fault_proxy, scratch_mounter, tmp_path, cut_when, rm):
    token = wh.unique("x3")
    src = token + "-Src"
    dst = "Trash" if rm else token + "-Dst"
    msg = wh.make_msg(token, 0)
    older = dict(msg, when=msg["when"].replace(year=2019))
    m = server.connect()
    try:
        wh.seed(m, src, [msg])
        if rm:
            wh.create_folder(m, dst)
        wh.seed(m, dst, [older], flags=["\\Seen", "$Old"], create=not rm)
        before = {r["uid"]: r for r in wh.folder_contents(m, dst)}
    finally:
        m.logout()
    port, log = fault_proxy(server.env["IMAP_PORT"], cut_on="MOVE", cut_when=cut_when)
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=5",
            "cache_dir=" + str(tmp_path / "cache-older")]
    mnt = scratch_mounter(server, url=url, opts=opts)
    sdir = helpers.folder_path(mnt.path, src)
    name = os.listdir(sdir)[0]
    if rm:
        os.unlink(os.path.join(sdir, name))
    else:
        os.rename(os.path.join(sdir, name), os.path.join(helpers.folder_path(mnt.path, dst), name))
    assert "CUT" in helpers.read_text(log), "the proxy never cut the MOVE"
    wait_settled(mnt, 30)
    m = server.connect()
    try:
        in_src = wh.folder_contents(m, src)
        in_dst = wh.folder_contents(m, dst)
    finally:
        m.logout()
    # the user's message: moved, with its own INTERNALDATE, exactly once
    mine = [r for r in in_dst if r["internaldate"] == int(msg["when"].timestamp())]
    assert not in_src and len(mine) == 1, (in_src, in_dst)
    # the older copy: untouched
    old = before[older["uid"]]
    assert any(r["uid"] == old["uid"] and r["flags"] == old["flags"] and
               r["internaldate"] == old["internaldate"] for r in in_dst), (old, in_dst)


@pytest.mark.parametrize("cut_when", ["request", "response"])
@pytest.mark.parametrize("rm", [False, True], ids=["mv", "rm"])
@pytest.mark.deadline(120)
def test_older_copy_in_destination(scratch_server, fault_proxy, scratch_mounter, tmp_path,
                                   cut_when, rm):
    _older_copy(scratch_server(), fault_proxy, scratch_mounter, tmp_path, cut_when, rm)


# -- 4. the COPY fallback with a refused step -------------------------------------------

@pytest.mark.parametrize("refused", ["STORE", "EXPUNGE"])
@pytest.mark.deadline(120)
def test_copy_fallback_refused_step(scratch_dovecot_nomove, fault_proxy, scratch_mounter,
                                    tmp_path, refused):
    """Without MOVE, mv is UID COPY + STORE \\Deleted + UID EXPUNGE.  With
    STORE or EXPUNGE refused, the mv fails and the message stays exactly
    once, in place, without \\Deleted (the copy is taken back)."""
    server = scratch_dovecot_nomove
    token = wh.unique("x4" + refused)
    src, dst = token + "-Src", token + "-Dst"
    msg = wh.make_msg(token, 0)
    m = server.connect()
    try:
        wh.seed(m, src, [msg], flags=["\\Flagged"])
        wh.create_folder(m, dst)
    finally:
        m.logout()
    port, log = fault_proxy(server.env["IMAP_PORT"], cut_on=refused, cut_when="refuse")
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=5",
            "cache_dir=" + str(tmp_path / "cache-refuse")]
    mnt = scratch_mounter(server, url=url, opts=opts)
    sdir, ddir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    name = os.listdir(sdir)[0]
    with pytest.raises(OSError):
        os.rename(os.path.join(sdir, name), os.path.join(ddir, name))
    assert "REFUSED" in helpers.read_text(log), "the proxy never refused %s" % refused
    wait_settled(mnt, 30)
    m = server.connect()
    try:
        in_src, in_dst = wh.folder_contents(m, src), wh.folder_contents(m, dst)
    finally:
        m.logout()
    assert [r["sha"] for r in in_src] == [msg["sha"]] and not in_dst, (in_src, in_dst)
    assert "\\Deleted" not in in_src[0]["flags"], in_src[0]["flags"]
    assert "\\Flagged" in in_src[0]["flags"], in_src[0]["flags"]


# -- 5. a refusal is final: nothing left pending ---------------------------------------

@pytest.mark.deadline(120)
def test_refused_flag_change_is_not_kept(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    """The server refuses the STORE of a flag change, and again when imapfs
    checks: setxattr fails (EPERM from the code CANNOT), the message keeps
    its flags, and the journal holds nothing that would retry it."""
    server = scratch_server()
    token = wh.unique("x5")
    folder = token + "-F"
    msg = wh.make_msg(token, 0)
    m = server.connect()
    try:
        wh.seed(m, folder, [msg], flags=["\\Seen"])
    finally:
        m.logout()
    port, log = fault_proxy(server.env["IMAP_PORT"], cut_on="STORE", cut_when="refuse", cut_count=2)
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=5",
            "cache_dir=" + str(tmp_path / "cache-flags")]
    mnt = scratch_mounter(server, url=url, opts=opts)
    d = helpers.folder_path(mnt.path, folder)
    with pytest.raises(OSError) as ei:
        os.setxattr(os.path.join(d, os.listdir(d)[0]), "user.imap.flags", b"\\Flagged")
    assert ei.value.errno == errno.EPERM, ei.value
    assert helpers.read_text(log).count("REFUSED") == 2
    wait_settled(mnt, 10)
    m = server.connect()
    try:
        assert wh.folder_contents(m, folder)[0]["flags"] == ["\\Seen"]
    finally:
        m.logout()


# -- 6. a server in trouble while a change is checked -----------------------------------

@pytest.mark.deadline(120)
def test_cp_checked_while_server_unavailable(scratch_server, fault_proxy, scratch_mounter,
                                             tmp_path):
    """The APPEND of a cp is stored but its answer lost; the SELECT that
    checks it is then refused NO [UNAVAILABLE] a few times (a server in
    trouble, not a folder gone).  The cp fails, and a cp of the same
    message retried at once is not sent while the first is unresolved (it
    would look the same on the server).  In the end the folder holds as
    many copies as cp calls succeeded: none is given up on a guess."""
    server = scratch_server()
    token = wh.unique("x6")
    folder = token + "-Cp"
    msg = wh.make_msg(token, 0)
    m = server.connect()
    try:
        wh.create_folder(m, folder)
    finally:
        m.logout()
    # the server side proxy refuses SELECT once an APPEND has gone by; the
    # client side one swallows the APPEND's answer and cuts the connection
    inner, inner_log = fault_proxy(server.env["IMAP_PORT"], cut_on="SELECT", cut_when="refuse",
                                   cut_count=3, refuse_code="UNAVAILABLE", arm_on="APPEND")
    outer, outer_log = fault_proxy(inner, cut_on="APPEND", cut_when="response")
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], outer)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=5",
            "cache_dir=" + str(tmp_path / "cache-unavailable")]
    mnt = scratch_mounter(server, url=url, opts=opts)
    d = helpers.folder_path(mnt.path, folder)
    assert os.listdir(d) == []
    succeeded = 0
    for name in ("first.eml", "again.eml"):
        try:
            with open(os.path.join(d, name), "wb") as f:
                f.write(msg["raw"])
            succeeded += 1
        except OSError as e:
            assert e.errno == errno.EIO, e
    assert "CUT response" in helpers.read_text(outer_log), "the APPEND's answer was not cut"
    assert "REFUSED" in helpers.read_text(inner_log), "no SELECT was refused"
    wait_settled(mnt, 60)
    m = server.connect()
    try:
        stored = [r for r in wh.folder_contents(m, folder) if r["sha"] == msg["sha"]]
    finally:
        m.logout()
    assert len(stored) == succeeded, "%d cp succeeded, %d copies stored:\n%s" % (
        succeeded, len(stored), helpers.read_text(mnt.stderr_path)[-4000:])
    assert succeeded < 2, "the retried cp was sent while the first was unresolved"


# -- 7. a folder the server stalls on holds up no other folder's changes ----------------

REFUSALS = 200      # checks refused while the first mount lives

@pytest.mark.slow
@pytest.mark.deadline(200)
def test_stuck_folder_holds_up_no_other(scratch_server, fault_proxy, scratch_mounter, tmp_path):
    """Two moves are left pending, Stuck -> Fine first, then A -> B (the
    server did both, but their answers were cut and every check refused
    NO [UNAVAILABLE]; imapfs is then SIGKILLed).  Dovecot is then made to
    stall every SELECT of Stuck (a dovecot-uidlist.lock without a PID, as a
    session killed mid-lock leaves).  The next mount with the same cache
    resolves A -> B within 20 s although the earlier Stuck entry cannot be
    checked; once the lock is gone, Stuck's too; each message exactly once."""
    server = scratch_server()
    token = wh.unique("x7")
    x, y = wh.make_msg(token, 0), wh.make_msg(token, 1)
    m = server.connect()
    try:
        wh.seed(m, "Stuck", [x])
        wh.seed(m, "A", [y])
        wh.create_folder(m, "Fine")
        wh.create_folder(m, "B")
    finally:
        m.logout()
    inner, inner_log = fault_proxy(server.env["IMAP_PORT"], cut_on="FETCH", cut_when="refuse",
                                   cut_count=REFUSALS, refuse_code="UNAVAILABLE", arm_on="MOVE",
                                   lifetime=190)
    outer, outer_log = fault_proxy(inner, cut_on="MOVE", cut_when="response", cut_count=2,
                                   lifetime=190)
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], outer)   # the journal is per URL
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=3",
            "cache_dir=" + str(tmp_path / "cache-stuck")]
    first = scratch_mounter(server, url=url, opts=opts)
    names = {f: os.listdir(helpers.folder_path(first.path, f)) for f in ("Stuck", "Fine", "A", "B")}
    for src, dst in (("Stuck", "Fine"), ("A", "B")):   # listed before the first MOVE arms
        s, d = (helpers.folder_path(first.path, f) for f in (src, dst))
        with pytest.raises(OSError):
            os.rename(os.path.join(s, names[src][0]), os.path.join(d, names[src][0]))
    assert helpers.read_text(outer_log).count("CUT response") == 2, helpers.read_text(outer_log)
    assert pending(first.path) == 2, lh.read_status(first.path)["text"]
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    first.stopped = True
    helpers.cleanup_mountpoint(first.path)
    # the refusals that are left go to a client of our own
    m = imaplib.IMAP4("127.0.0.1", outer)
    try:
        m.login(server.env["USER"], server.env["PASSWORD"])
        m.select("Fine")
        assert any(m.uid("FETCH", "1:*", "(UID)")[0] == "OK" for _ in range(REFUSALS + 1))
    finally:
        m.logout()
    lock = wh.plant_empty_uidlist_lock(server, "Stuck")
    try:
        again = scratch_mounter(server, url=url, opts=opts)
        st = lh.wait_status(again.path, lambda s: "journal: 1 pending" in s["text"], 20, 0.5)
        assert "journal: 1 pending" in st["text"], "A -> B waits behind Stuck:\n%s\n%s" % (
            st["text"], again.stderr()[-3000:])
        assert "src=Stuck" in st["text"], st["text"]
    finally:
        os.unlink(lock)
    wait_settled(again, 90)
    inv = inventory(server)
    lost, dup, lines = count_problems(inv, [x, y])
    assert lost == 0 and dup == 0, "\n".join(lines)
    assert [w[0] for w in inv[x["sha"]]] == ["Fine"] and [w[0] for w in inv[y["sha"]]] == ["B"], inv
