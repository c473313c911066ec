"""df on a mount: the account's quota (RFC 2087 GETQUOTAROOT of INBOX,
STORAGE), or, on a server without QUOTA, sizes that do not look full."""

import os
import subprocess

import mailgen


def _df(path):
    r = subprocess.run(["df", "-k", "--output=size,used,avail", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    size, used, avail = (int(x) for x in r.stdout.splitlines()[1].split())
    return size, used, avail


def _server_quota(server):
    m = server.connect()
    try:
        typ, data = m.getquotaroot("INBOX")
        assert typ == "OK", data
        # [[b'INBOX "User quota"'], [b'"User quota" (STORAGE 489 10240)']]
        line = data[1][0].decode()
        used, limit = line.rsplit("(STORAGE ", 1)[1].rstrip(")").split()
        return int(used), int(limit)
    finally:
        m.logout()


def test_df_shows_the_quota(scratch_server, scratch_mounter):
    """With a 10 MiB quota and ~1.5 MB of mail, df shows 10240 KiB in all,
    the used KiB GETQUOTAROOT reports (imaplib), and the rest available."""
    server = scratch_server(extra_args=["--quota=10M"])
    m = server.connect()
    try:
        for i in range(3):
            mailgen.check(m.append("INBOX", None, None,
                              b"From: a@example.org\r\nSubject: q%d\r\n\r\n" % i + b"x" * 500000),
                     "APPEND")
    finally:
        m.logout()
    used, limit = _server_quota(server)
    assert limit == 10240 and used >= 1400
    mnt = scratch_mounter(server)
    size, dused, avail = _df(mnt.path)
    assert (size, dused, avail) == (limit, used, limit - used)


def test_df_without_quota_is_not_full(scratch_server, scratch_mounter):
    """No quota: df must not show a full (0 available) or negative-used
    filesystem; it shows a large free size and nothing used.  Dovecot
    (without --quota) does not announce QUOTA; Cyrus always does, but
    GETQUOTAROOT INBOX names no quota root."""
    server = scratch_server()
    m = server.connect()
    try:
        if "QUOTA" in m.capabilities:
            typ, data = m.getquotaroot("INBOX")
            assert typ == "OK" and data[0] == [b"INBOX"] and data[1] == [None], data
            print("QUOTA announced, INBOX has no quota root")
        else:
            print("no QUOTA capability")
    finally:
        m.logout()
    mnt = scratch_mounter(server)
    size, used, avail = _df(mnt.path)
    assert avail > 10 ** 9 and used == 0 and size == avail
    st = os.statvfs(mnt.path)
    assert st.f_bavail > 0 and st.f_namemax == 255
