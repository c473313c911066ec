"""Password sources: password_command, IMAPFS_PASSWORD."""

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
