"""Routing of new mail (spec receive-folders.md section 4, optional): with
-o route_incoming, messages that arrive in INBOX while mounted and whose
receive folder is another folder are moved there (UID MOVE), exactly once
each.  Messages already in INBOX at mount time are left alone; without the
option nothing moves.  Each test has a Dovecot of its own."""

import os
import time

import pytest

import mime_fixtures as mf
import write_helpers as wh

ROUTE_WAIT = 10.0


def prepare(scratch_server, rf_mounter):
    """A fresh server with Calendar and Samples, the rows
    IPM.Schedule.Meeting -> Calendar and IPM.Note.Sample -> Samples set by a
    first mount (then unmounted), and messages already in INBOX that would
    be routed if they were new."""
    server = scratch_server()
    tok = wh.unique("route")
    pre = [mf.calendar(tok, "REQUEST"), mf.plain(tok), mf.tnef(tok)]
    m = server.connect()
    try:
        for f in ("Calendar", "Samples"):
            wh.create_folder(m, f)
        wh.seed(m, "INBOX", pre, create=False)
    finally:
        m.logout()
    first = rf_mounter(server)
    wh.rf_set(first.path, "IPM.Schedule.Meeting Calendar", "IPM.Note.Sample Samples")
    first.stop()
    return server, pre


def append_new(server):
    tok = wh.unique("route")
    new = {"req": mf.calendar(tok, "REQUEST"), "plain": mf.plain(tok),
           "tnef": mf.tnef(tok), "cancel": mf.calendar(tok, "CANCEL")}
    m = server.connect()
    try:
        wh.seed(m, "INBOX", list(new.values()), create=False)
    finally:
        m.logout()
    return new


def poker(mount):
    def poke():
        os.listdir(os.path.join(mount.path, "INBOX"))
    return poke


def settle(mount, seconds):
    """Keep the mount busy (listings of INBOX) for a while, bounded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.listdir(os.path.join(mount.path, "INBOX"))
        except OSError:
            pass
        time.sleep(0.5)


def check(server, placement):
    m = server.connect()
    try:
        problems = []
        for msg, folder in placement:
            problems += ["%s (%s): %s" % (msg["kind"], msg["cls"], p)
                         for p in wh.check_once(m, [msg], allowed=[folder])]
        return problems
    finally:
        m.logout()


@pytest.mark.slow
@pytest.mark.deadline(180)
def test_route_incoming(scratch_server, rf_mounter):
    server, pre = prepare(scratch_server, rf_mounter)
    mount = rf_mounter(server, extra_opts=["route_incoming", "dir_cache=1"])
    assert wh.rf_map(mount.path)["ipm.schedule.meeting"] == ("Calendar", [])
    settle(mount, 2)
    new = append_new(server)
    want = [(new["req"], "Calendar"), (new["cancel"], "Calendar"),
            (new["tnef"], "Samples"), (new["plain"], "INBOX")]
    deadline = time.monotonic() + ROUTE_WAIT
    while True:
        problems = check(server, want)
        if not problems or time.monotonic() > deadline:
            break
        poker(mount)()
        time.sleep(0.5)
    assert problems == [], "not routed within %.0fs: %s" % (ROUTE_WAIT, problems)
    settle(mount, 3)            # no second move, no copy left behind
    assert check(server, want) == []
    # what was in INBOX before the mount stays there
    assert check(server, [(p, "INBOX") for p in pre]) == []


@pytest.mark.slow
@pytest.mark.deadline(180)
def test_route_incoming_later_rows(scratch_server, rf_mounter):
    """A row set while mounted applies to mail arriving afterwards."""
    server = scratch_server()
    m = server.connect()
    try:
        wh.create_folder(m, "Archive")
    finally:
        m.logout()
    mount = rf_mounter(server, extra_opts=["route_incoming", "dir_cache=1"])
    wh.rf_set(mount.path, "IPM.Appointment Archive")
    settle(mount, 2)
    tok = wh.unique("route")
    appt, plain = mf.calendar(tok, "PUBLISH"), mf.plain(tok)
    m = server.connect()
    try:
        wh.seed(m, "INBOX", [appt, plain], create=False)
    finally:
        m.logout()
    problems = wh.wait_once(server, [appt], allowed=["Archive"], timeout=ROUTE_WAIT,
                            poke=poker(mount))
    assert problems == [], problems
    settle(mount, 2)
    assert check(server, [(appt, "Archive"), (plain, "INBOX")]) == []


@pytest.mark.slow
@pytest.mark.deadline(180)
def test_no_routing_without_option(scratch_server, rf_mounter):
    server, pre = prepare(scratch_server, rf_mounter)
    mount = rf_mounter(server, extra_opts=["dir_cache=1"])
    settle(mount, 1)
    new = append_new(server)
    settle(mount, 6)
    assert check(server, [(x, "INBOX") for x in list(new.values()) + pre]) == []
