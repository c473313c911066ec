"""Password sources: password_command, IMAPFS_PASSWORD, ~/.netrc."""

import os
import stat

import helpers


def _check_inbox(mount, dovecot):
    names = os.listdir(os.path.join(mount.path, "INBOX"))
    assert len(names) == dovecot["manifest"]["counts"]["INBOX"]


def test_password_command(mounter, dovecot, tmp_path):
    script = tmp_path / "pw-cmd.sh"
    # only the first output line is the password
    script.write_text("#!/bin/sh\ncat '%s'\necho this-line-is-ignored\n"
                      % dovecot["PASSWORD_FILE"])
    script.chmod(stat.S_IRWXU)
    m = mounter(opts=["ca_file=" + dovecot["CA_FILE"],
                      "password_command=%s" % script])
    _check_inbox(m, dovecot)


def test_password_from_environment(mounter, dovecot):
    env = dict(os.environ)
    env["IMAPFS_PASSWORD"] = dovecot["PASSWORD"]
    m = mounter(opts=["ca_file=" + dovecot["CA_FILE"]], env=env)
    _check_inbox(m, dovecot)


def test_failing_password_command(imapfs_bin, dovecot, tmp_path):
    from test_failures import refused
    r = refused(imapfs_bin, tmp_path, "imaps://%s@localhost:%s" % (
        dovecot["USER"], dovecot["IMAPS_PORT"]),
        ["ca_file=" + dovecot["CA_FILE"], "password_command=/bin/false"])
    assert r.stderr.strip(), r


def _netrc_home(tmp_path, dovecot, mode, host="localhost"):
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    # another machine first, with a decoy password, then ours over two lines
    netrc.write_text("machine elsewhere.example login %s password decoy\n"
                     "machine %s\n  login %s\n  password %s\n"
                     % (dovecot["USER"], host, dovecot["USER"], dovecot["PASSWORD"]))
    netrc.chmod(mode)
    env = {k: v for k, v in os.environ.items() if k != "IMAPFS_PASSWORD"}
    env["HOME"] = str(home)
    return env


def test_password_from_netrc(mounter, dovecot, tmp_path):
    """No password option: the entry for the host in ~/.netrc (mode 0600)."""
    env = _netrc_home(tmp_path, dovecot, 0o600)
    m = mounter(opts=["ca_file=" + dovecot["CA_FILE"]], env=env)
    _check_inbox(m, dovecot)


def test_netrc_readable_by_others_is_refused(imapfs_bin, dovecot, tmp_path):
    """A ~/.netrc that others can read is not used: the mount fails and
    says how to fix it."""
    from test_failures import refused
    env = _netrc_home(tmp_path, dovecot, 0o644)
    r = refused(imapfs_bin, tmp_path, "imaps://%s@localhost:%s" % (
        dovecot["USER"], dovecot["IMAPS_PORT"]), ["ca_file=" + dovecot["CA_FILE"]], env=env)
    assert "chmod 600" in r.stderr and ".netrc" in r.stderr, r.stderr


CTTY = ("import fcntl, os, sys, termios\n"
        "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n")


def test_password_typed_at_the_prompt(imapfs_bin, dovecot, tmp_path):
    """No other source: imapfs asks on the terminal, echo off, and the
    password typed there (ending in CR LF, as some terminals send) mounts."""
    import select
    import subprocess
    import termios
    import time
    master, slave = os.openpty()
    home = tmp_path / "home"
    home.mkdir()
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    env = {k: v for k, v in os.environ.items() if k != "IMAPFS_PASSWORD"}
    env["HOME"] = str(home)
    url = "imaps://%s@%s:%s" % (dovecot["USER"], dovecot["HOST"], dovecot["IMAPS_PORT"])
    p = subprocess.Popen([helpers.PYTHON, "-c", CTTY, imapfs_bin, "-f", "-o",
                          "ca_file=%s,cache_dir=%s" % (dovecot["CA_FILE"], tmp_path / "c"),
                          url, mnt], stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    helpers.track(("prompt", p.pid), p, mnt)
    try:
        out, deadline = b"", time.monotonic() + 15
        while b"Password for" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        assert b"Password for" in out, out
        assert helpers.wait_for(lambda: not termios.tcgetattr(slave)[3] & termios.ECHO, 10, 0.05)
        os.write(master, dovecot["PASSWORD"].encode() + b"\r")
        assert helpers.wait_for(lambda: helpers.is_mounted(mnt), 15, 0.1), "not mounted"
        assert termios.tcgetattr(slave)[3] & termios.ECHO, "echo not restored"
        assert os.listdir(os.path.join(mnt, "INBOX"))
    finally:
        helpers.cleanup_mountpoint(mnt)
        if p.poll() is None:
            p.kill()
        p.wait(10)
        helpers.untrack(("prompt", p.pid))
        os.close(master)
        os.close(slave)
