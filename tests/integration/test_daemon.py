"""Daemon mode (no -f): returns after a successful login with the file
system mounted, logs to syslog; `fusermount3 -u` makes the daemon exit."""

import os
import socket
import subprocess
import time

import pytest

import helpers
from conftest import url_for, default_opts


def test_daemon_mode(imapfs_bin, dovecot, small_truth, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt)
    pids = []
    try:
        r = helpers.run_imapfs(imapfs_bin, ["-o", ",".join(default_opts(dovecot)),
                                            url_for(dovecot, "imaps"), mnt],
                               mountpoint=mnt, workdir=str(tmp_path), timeout=20)
        assert r.returncode == 0, r
        assert helpers.wait_for(lambda: helpers.is_mounted(mnt), 15), \
            "not mounted after the foreground part returned\n%r" % r
        pids = helpers.pids_for_mountpoint(mnt)
        assert len(pids) == 1, "expected one daemon process, found %r" % pids
        helpers.track(("daemon", pids[0]), pids[0], mnt)

        inbox = small_truth["INBOX"]
        names = os.listdir(os.path.join(mnt, "INBOX"))
        assert sorted(helpers.uid_of(n) for n in names) == sorted(inbox)
        n = sorted(names)[0]
        with open(os.path.join(mnt, "INBOX", n), "rb") as f:
            assert helpers.sha256(f.read()) == inbox[helpers.uid_of(n)]["sha256"]

        u = subprocess.run(["fusermount3", "-u", mnt], timeout=10,
                                         capture_output=True, text=True)
        assert u.returncode == 0, u.stderr
        left = helpers.wait_no_process(mnt, 10)
        assert not left, "daemon %r still running 10 s after unmount" % left
        assert not helpers.is_mounted(mnt)
        assert not helpers.sanitizer_lines(r.stderr), r.stderr
    finally:
        helpers.cleanup_mountpoint(mnt)
        for p in pids:
            helpers.untrack(("daemon", p))


def test_daemon_logs_to_syslog(imapfs_bin, scratch_server, tmp_path):
    """Detached, imapfs logs to syslog (a /dev/log datagram socket this test
    provides when the machine has none): a folder deleted by another client
    gives a warning there, tagged imapfs[PID], without the password; nothing
    goes to the terminal."""
    if os.path.exists("/dev/log"):
        pytest.skip("/dev/log belongs to the system's syslog here")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    sock.settimeout(0.2)
    server = scratch_server()
    m = server.connect()
    try:
        m.create("Doomed")
    finally:
        m.logout()
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt)
    pids = []
    try:
        r = helpers.run_imapfs(imapfs_bin, ["-o", ",".join(server.opts(str(tmp_path / "c"))),
                                            server.url(), mnt],
                               mountpoint=mnt, workdir=str(tmp_path), timeout=20)
        assert r.returncode == 0, r
        assert helpers.wait_for(lambda: helpers.is_mounted(mnt), 15)
        pids = helpers.pids_for_mountpoint(mnt)
        helpers.track(("daemon", pids[0]), pids[0], mnt)
        os.listdir(os.path.join(mnt, "Doomed"))
        m = server.connect()
        try:
            m.delete("Doomed")
        finally:
            m.logout()
        subprocess.run(["touch", os.path.join(mnt, "Doomed")], capture_output=True, timeout=30)
        got = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(b"Doomed" in g for g in got):
            try:
                got.append(sock.recv(65536))
            except socket.timeout:
                pass
        text = b"\n".join(got).decode(errors="replace")
        assert "imapfs[%d]" % pids[0] in text and "Doomed" in text, text
        assert server.env["PASSWORD"] not in text
        assert "Doomed" not in r.stderr
        # the mount can be busy a moment after touch exits (the kernel
        # releases what touch opened after its close() returns): a
        # failure in 2 of 6 runs against Cyrus, before and after 0a4fd35
        u = helpers.unmount(mnt)
        assert u.returncode == 0, u.stdout
        assert not helpers.wait_no_process(mnt, 10)
    finally:
        sock.close()
        os.unlink("/dev/log")
        helpers.cleanup_mountpoint(mnt)
        for p in pids:
            helpers.untrack(("daemon", p))
