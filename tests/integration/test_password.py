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
