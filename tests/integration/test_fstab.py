"""Mounting through mount(8) and mount.fuse3, as from /etc/fstab, and
unmounting with umount(8): the daemon logs out of every IMAP session it
opened (Dovecot logs "Disconnected: Logged out" for each login, Cyrus "USAGE
user") and exits."""

import os
import re
import subprocess

import pytest

import helpers

SYSTEM_BIN = "/usr/local/bin/imapfs"


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=kw.pop("timeout", 30), **kw)


def _daemon_pids(mnt):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"imapfs") for a in args[:1]) and mnt.encode() in args:
            pids.append(int(p))
    return pids


def _logins_and_logouts(server, start):
    with open(server.env["LOG"], errors="replace") as f:
        f.seek(start)
        text = f.read()
    if server.env.get("SERVER") == "cyrus":
        # Cyrus: "login: localhost [127.0.0.1] alice plaintext+TLS User logged
        # in" per login, "USAGE alice user: ..." when a session ends with
        # LOGOUT (nothing when the client just closes the connection)
        user = re.escape(server.env["USER"])
        return (len(re.findall(r"\]: login: \S+ \[[^]]*\] %s .*User logged in" % user,
                               text)),
                len(re.findall(r"\]: USAGE %s user:" % user, text)))
    return (len(re.findall(r"imap-login: Info: Login: user=<%s>" % server.env["USER"], text)),
            len(re.findall(r"imap\(%s\).*Disconnected: Logged out" % server.env["USER"], text)))


def _mount_and_check(server, tmp_path, cmd, mnt):
    start = os.path.getsize(server.env["LOG"])
    r = _run(cmd, cwd=str(tmp_path))
    assert r.returncode == 0, "%s: %s" % (" ".join(cmd), r.stderr)
    try:
        assert os.path.ismount(mnt)
        assert "INBOX" in os.listdir(mnt)
        os.listdir(os.path.join(mnt, "INBOX"))
        pids = _daemon_pids(mnt)
        assert pids, "no imapfs process serves %s" % mnt
    finally:
        u = _run(["umount", mnt])
    assert u.returncode == 0, u.stderr
    assert helpers.wait_for(lambda: not _daemon_pids(mnt), 15, 0.1), "imapfs did not exit"
    # every session imapfs opened said LOGOUT (Dovecot logs the disconnect
    # a moment after the client closed)
    assert helpers.wait_for(lambda: (lambda a, b: a > 0 and a == b)(
        *_logins_and_logouts(server, start)), 10, 0.2), _logins_and_logouts(server, start)


def test_mount_fuse_program_syntax(scratch_server, imapfs_bin, tmp_path):
    """mount -t fuse 'BINARY#URL' MNT -o options,_netdev,noauto (mount.fuse3)."""
    server = scratch_server()
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    opts = ",".join(server.opts(str(tmp_path / "cache")) + ["_netdev", "noauto"])
    _mount_and_check(server, tmp_path, ["mount", "-t", "fuse", "%s#%s" % (
        os.path.abspath(imapfs_bin), server.url()), mnt, "-o", opts], mnt)


def test_fstab_line(scratch_server, imapfs_bin, tmp_path):
    """The fstab line the README documents (type fuse.imapfs, _netdev, user,
    noauto, password_file), used with mount -T FSTAB MNT.  mount.fuse3 runs
    `imapfs` from the system PATH: a symlink in /usr/local/bin for the test."""
    if os.path.lexists(SYSTEM_BIN) and os.path.realpath(SYSTEM_BIN) != os.path.realpath(imapfs_bin):
        pytest.skip("%s is another imapfs" % SYSTEM_BIN)
    made = not os.path.lexists(SYSTEM_BIN)
    if made:
        os.symlink(os.path.abspath(imapfs_bin), SYSTEM_BIN)
    try:
        server = scratch_server()
        mnt = str(tmp_path / "mnt")
        os.mkdir(mnt)
        fstab = tmp_path / "fstab"
        fstab.write_text("%s %s fuse.imapfs _netdev,user,noauto,%s 0 0\n" % (
            server.url(), mnt, ",".join(server.opts(str(tmp_path / "cache")))))
        _mount_and_check(server, tmp_path, ["mount", "-T", str(fstab), mnt], mnt)
    finally:
        if made:
            os.unlink(SYSTEM_BIN)
