"""Exactly once under -o writeback (README: "Write-back"): the flusher's
batches are cut -- the server's session processes SIGKILLed at random while
it sends, imapfs itself SIGKILLed in the middle of a flush -- and every
message is then checked with imaplib by the SHA-256 of its bytes: each
exists exactly once, where the change that returned 0 put it; a cp that
returned 0 is stored once.  The matrix prints one line with the numbers."""

import os
import signal
import threading
import time

import pytest

import helpers
import write_helpers as wh
from test_exactly_once import (SessionKiller, count_problems, inventory, server_back,
                               wait_settled)
from test_writeback import fsync_dir

N_MV, N_RM, N_CP, N_FLAGS = 300, 100, 60, 100


def flush_until_done(dirs, limit_s):
    """fsync the folders until one round of them all returns 0 (bounded)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            for d in dirs:
                fsync_dir(d)
            return True
        except OSError:
            time.sleep(0.2)
    return False


def seed_matrix(server, token):
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
        wh.create_folder(m, "Trash")
    finally:
        m.logout()
    return (src, dst, cpf, flf), (moving, removing, flagged, copies)


def do_changes(mnt, folders, msgs, waves=1, between=None):
    """The changes, through the mount, in `waves` (between() after each):
    every call must return 0 (write-back acknowledges from the journal,
    whatever the server does)."""
    src, dst, cpf, flf = folders
    moving, removing, flagged, copies = msgs
    sdir, ddir, cdir, fdir = (helpers.folder_path(mnt.path, f) for f in folders)
    by_uid = {helpers.uid_of(n): n for n in os.listdir(sdir)}
    fl_names = {helpers.uid_of(n): n for n in os.listdir(fdir)}
    os.listdir(ddir)
    os.listdir(cdir)
    os.listdir(helpers.folder_path(mnt.path, "Trash"))
    for w in range(waves):
        for msg in moving[w::waves]:
            n = by_uid[msg["uid"]]
            os.rename(os.path.join(sdir, n), os.path.join(ddir, n))
        for msg in removing[w::waves]:
            os.unlink(os.path.join(sdir, by_uid[msg["uid"]]))
        for i in range(w, len(copies), waves):
            with open(os.path.join(cdir, "new-%d.eml" % i), "wb") as f:
                f.write(copies[i]["raw"])
        for msg in flagged[w::waves]:
            os.setxattr(os.path.join(fdir, fl_names[msg["uid"]]), "user.imap.flags",
                        b"\\Flagged $Checked")
        if between:
            between([sdir, ddir, cdir, fdir])
    return [sdir, ddir, cdir, fdir]


def check_all(server, folders, msgs):
    src, dst, cpf, flf = folders
    moving, removing, flagged, copies = msgs
    inv = inventory(server)
    lost, dup, lines = count_problems(inv, moving + removing + flagged + copies)
    for group, where in ((moving, dst), (removing, "Trash"), (copies, cpf), (flagged, flf)):
        for msg in group:
            got = [w[0] for w in inv.get(msg["sha"], [])]
            if got != [where]:
                lines.append("%s is in %s, expected %s" % (msg["msgid"], got, where))
    for msg in flagged:
        hits = inv.get(msg["sha"], [])
        if hits and not {"\\Flagged", "$Checked"} <= set(hits[0][2]):
            lines.append("flags of %s: %s" % (msg["msgid"], hits[0][2]))
    return lost, dup, lines


@pytest.mark.slow
@pytest.mark.deadline(900)
def test_fault_matrix_writeback(scratch_server, scratch_mounter):
    server = scratch_server()
    folders, msgs = seed_matrix(server, wh.unique("wf1"))
    mnt = scratch_mounter(server, extra_opts=["writeback", "writeback_delay=60", "timeout=5"])
    flushed = []

    def flush(dirs):                 # each wave's flush starts with a kill
        killer.nudge.set()
        time.sleep(0.05)
        flushed.append(flush_until_done(dirs, 120))

    with SessionKiller(server) as killer:
        dirs = do_changes(mnt, folders, msgs, waves=6, between=flush)
        faults = killer.kills
    flushed = all(flushed)
    server_back(server)
    assert flushed or flush_until_done(dirs, 60), helpers.read_text(mnt.stderr_path)[-4000:]
    wait_settled(mnt, 60)
    lost, dup, lines = check_all(server, folders, msgs)
    print("\nwrite-back fault matrix: %d changes (%d mv, %d rm, %d cp, %d flag changes), "
          "%d faults injected during the flush, %d messages lost, %d duplicated" % (
              N_MV + N_RM + N_CP + N_FLAGS, N_MV, N_RM, N_CP, N_FLAGS, faults, lost, dup))
    assert faults >= 3, "too few faults injected (%d): the test proves little" % faults
    assert lost == 0 and dup == 0 and not lines, "\n".join(lines[:40])


@pytest.mark.slow
@pytest.mark.deadline(600)
def test_imapfs_killed_during_the_flush(scratch_server, scratch_mounter, tmp_path):
    server = scratch_server()
    folders, msgs = seed_matrix(server, wh.unique("wf2"))
    cache = str(tmp_path / "cache-wf2")
    opts = server.opts(cache) + ["writeback", "writeback_delay=60", "timeout=5"]
    mnt = scratch_mounter(server, opts=opts)
    dirs = do_changes(mnt, folders, msgs)
    t = threading.Thread(target=flush_until_done, args=(dirs, 30), daemon=True)
    with SessionKiller(server):
        t.start()
        time.sleep(0.3)              # the flush under way, sessions dying
        os.kill(mnt.proc.pid, signal.SIGKILL)
        mnt.proc.wait(10)
    t.join(30)
    mnt.stopped = True
    helpers.cleanup_mountpoint(mnt.path)
    server_back(server)
    again = scratch_mounter(server, opts=opts)   # the same journal
    dirs = [helpers.folder_path(again.path, f) for f in folders]
    assert flush_until_done(dirs, 120), helpers.read_text(again.stderr_path)[-4000:]
    wait_settled(again, 60)
    lost, dup, lines = check_all(server, folders, msgs)
    print("\nimapfs SIGKILLed during a write-back flush: %d messages lost, %d duplicated" % (
        lost, dup))
    assert lost == 0 and dup == 0 and not lines, "\n".join(lines[:40])
