"""Refused mounts: each must print one line naming the reason on stderr,
exit non-zero, mount nothing and leave no process behind.  Run without -f
(daemon mode: it must only daemonize after a successful login) and, for a
few, with -f too."""

import os
import re
import socket
import time

import pytest

import helpers
from conftest import url_for, default_opts

UNTRUSTED = r"untrust|issuer|not trusted|unknown (ca|authority)|self[- ]signed|verif"
HOSTNAME = r"host ?name|mismatch|does not match|doesn't match|not valid for"
AUTH = r"auth|login|password|credential|reject|denied"
STARTTLS = r"starttls"
CONNECT = r"connect|refused|unreachable"


def one_line_error(r, pattern):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines, "nothing on stderr\n%r" % r
    assert len(lines) == 1, "expected exactly one line on stderr\n%r" % r
    assert re.search(pattern, lines[0], re.I), \
        "stderr does not name the reason (/%s/)\n%r" % (pattern, r)


def refused(imapfs_bin, tmp_path, url, opts, env=None, foreground=False,
            timeout=helpers.FAIL_TIMEOUT):
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt, exist_ok=True)
    args = []
    if opts:
        args += ["-o", ",".join(opts)]
    if foreground:
        args.append("-f")
    args += [url, mnt]
    try:
        r = helpers.run_imapfs(imapfs_bin, args, mountpoint=mnt, env=env,
                               workdir=str(tmp_path), timeout=timeout)
        assert r.returncode != "timeout", "imapfs did not give up\n%r" % r
        assert r.returncode != 0, r
        assert not r.mounted, "something got mounted\n%r" % r
        assert not r.leftover, "process(es) left behind: %r\n%r" % (r.leftover, r)
        assert os.listdir(mnt) == [], r
        return r
    finally:
        helpers.cleanup_mountpoint(mnt)


@pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "fg"])
def test_untrusted_ca(imapfs_bin, dovecot, tmp_path, foreground):
    # no ca_file: the system trust store does not know our test CA
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "imaps"),
                ["password_file=" + dovecot["PASSWORD_FILE"]], foreground=foreground)
    one_line_error(r, UNTRUSTED)


def test_untrusted_ca_starttls(imapfs_bin, dovecot, tmp_path):
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "starttls"),
                ["password_file=" + dovecot["PASSWORD_FILE"]])
    one_line_error(r, UNTRUSTED)


@pytest.mark.parametrize("kind", ["imaps", "starttls"])
def test_wrong_host_name(imapfs_bin, dovecot, tmp_path, kind):
    # the certificate is for DNS:localhost only
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, kind, host="127.0.0.1"),
                default_opts(dovecot))
    one_line_error(r, HOSTNAME)


@pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "fg"])
def test_wrong_password(imapfs_bin, dovecot, tmp_path, foreground):
    pw = tmp_path / "wrong-password"
    pw.write_text("not-the-password\n")
    pw.chmod(0o600)
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "imaps"),
                ["ca_file=" + dovecot["CA_FILE"], "password_file=%s" % pw],
                foreground=foreground)
    one_line_error(r, AUTH)


def test_unknown_user(imapfs_bin, dovecot, tmp_path):
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "imaps", user="mallory"),
                default_opts(dovecot))
    one_line_error(r, AUTH)


def test_starttls_missing(imapfs_bin, dovecot, tmp_path, fake_server):
    port, log = fake_server("no-starttls")
    url = "imap://alice@127.0.0.1:%d" % port
    r = refused(imapfs_bin, tmp_path, url, default_opts(dovecot))
    one_line_error(r, STARTTLS)
    conv = helpers.read_text(log)
    sent = [ln.upper().split() for ln in conv.splitlines() if ln.startswith("C: ")]
    assert not [c for c in sent if len(c) > 2 and c[2] in ("LOGIN", "AUTHENTICATE")], \
        "credentials were sent without TLS:\n" + conv


def test_unreachable_port(imapfs_bin, dovecot, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                      # nothing listens there now
    t0 = time.monotonic()
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "imaps", port=port),
                default_opts(dovecot), timeout=15)
    assert time.monotonic() - t0 < 10, "took too long to give up\n%r" % r
    one_line_error(r, CONNECT)


def test_no_password_and_no_terminal(imapfs_bin, dovecot, tmp_path):
    env = dict(os.environ)
    env.pop("IMAPFS_PASSWORD", None)
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "imaps"),
                ["ca_file=" + dovecot["CA_FILE"]], env=env, timeout=15)
    one_line_error(r, r"password|terminal|tty")


def _auth_lines(log, start):
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    # Dovecot: "auth failed", "password mismatch"; Cyrus: "badlogin: ..."
    return [ln for ln in text.splitlines()
            if "auth failed" in ln or "Authentication failed" in ln
            or "password mismatch" in ln or "badlogin:" in ln]


@pytest.mark.parametrize("sep", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_password_with_line_break_refused(imapfs_bin, dovecot, tmp_path, sep):
    env = dict(os.environ)
    env["IMAPFS_PASSWORD"] = dovecot["PASSWORD"] + sep + "A1 NOOP"
    start = os.path.getsize(dovecot["LOG"])
    r = refused(imapfs_bin, tmp_path, url_for(dovecot, "imaps"),
                ["ca_file=" + dovecot["CA_FILE"]], env=env)
    assert r.stderr.strip(), r
    time.sleep(0.3)
    assert not _auth_lines(dovecot["LOG"], start), \
        "a login was attempted with the bad password"
