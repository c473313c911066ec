"""Accounts in $XDG_CONFIG_HOME/imapfs/config: `imapfs work MOUNTPOINT`
mounts the account [work] with the options of its section; the command
line's -o options come on top."""

import os

import helpers
from test_failures import refused


def _config(tmp_path, dovecot, extra=""):
    xdg = tmp_path / "xdg"
    (xdg / "imapfs").mkdir(parents=True)
    (xdg / "imapfs" / "config").write_text(
        "# two accounts; only [work] is used\n"
        "[private]\nurl = imaps://nobody@example.invalid\n\n"
        "[work]\n"
        "url = imaps://%s@localhost:%s\n"
        "ca_file = %s\n"
        "password_file = %s\n"
        "watch = Archive\n"
        "timeout = 9\n%s"
        % (dovecot["USER"], dovecot["IMAPS_PORT"], dovecot["CA_FILE"],
           dovecot["PASSWORD_FILE"], extra))
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(xdg)
    return env


def test_mount_by_account_name(mounter, dovecot, tmp_path):
    """The section's url, ca_file, password_file and watch are used; INBOX
    lists every message; .status shows Archive watched."""
    env = _config(tmp_path, dovecot)
    m = mounter(opts=["cache_dir=" + str(tmp_path / "c")], env=env, url="work")
    names = os.listdir(os.path.join(m.path, "INBOX"))
    assert len(names) == dovecot["manifest"]["counts"]["INBOX"]
    status = helpers.read_text(os.path.join(m.path, ".status"))
    assert "server imaps://%s@localhost:%s" % (dovecot["USER"], dovecot["IMAPS_PORT"]) in status
    assert any(line.startswith("watch Archive ") for line in status.splitlines()), status


def test_account_errors_are_explained(imapfs_bin, dovecot, tmp_path):
    """An unknown account, an unknown key (with its line number) and a
    password in the file each stop the mount with a message that says so."""
    env = _config(tmp_path, dovecot)
    r = refused(imapfs_bin, tmp_path, "nosuch", [], env=env)
    assert "no account [nosuch]" in r.stderr, r.stderr
    env = _config(tmp_path / "b", dovecot, "colour = blue\n")
    r = refused(imapfs_bin, tmp_path, "work", [], env=env)
    assert 'line 11: unknown key "colour"' in r.stderr, r.stderr
    env = _config(tmp_path / "c", dovecot, "password = hunter2\n")
    r = refused(imapfs_bin, tmp_path, "work", [], env=env)
    assert "password_file" in r.stderr and "hunter2" not in r.stderr, r.stderr
