"""A hostile network or server at the session level, from scripts/fake-imap-server.py
(modes preauth, starttls-inject, escapes, codes, idle-burst; TLS with
certificates made here by openssl):

  * a plaintext "* PREAUTH" greeting on imap:// would skip STARTTLS: refused,
    at mount time and on every later connection, and nothing is sent after
    the greeting;
  * bytes sent with the STARTTLS answer (response injection) are refused by
    imapfs's own check;
  * a certificate whose only name is its subject CN is refused (SAN only);
  * server text full of terminal escapes never reaches the terminal raw;
  * RFC 5530 response codes decide the errno, whatever language the text is in;
  * -d logs command lines, never the literals they carry;
  * news that arrives over TLS together with IDLE's continuation (two
    records in one segment, the second held by OpenSSL's read-ahead) ends
    the IDLE at once.

No Dovecot is needed except for the METADATA case of -d."""

import errno
import os
import re
import subprocess

import pytest

import helpers
import write_helpers as wh

pytestmark = pytest.mark.deadline(60)

LIFETIME = 50


# -- helpers ---------------------------------------------------------------------

def make_certs(d, cn="localhost", san="DNS:localhost"):
    """A CA and a leaf (CN=cn, subjectAltName=san, or none when san is None)
    in directory d: (ca.crt, leaf.crt, leaf.key)."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("leaf.key", "leaf.csr", "leaf.crt"))
    ext = os.path.join(d, "leaf.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        assert r.returncode == 0, r.stdout.decode(errors="replace")

    run("req", "-x509", "-new", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "2",
        "-subj", "/CN=imapfs hostile-session test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
        if san:
            f.write("subjectAltName=%s\n" % san)
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-sha256", "-extfile", ext)
    return ca_crt, crt, key


def password_file(tmp_path):
    pw = tmp_path / "fake-password"
    pw.write_text("any-password\n")
    pw.chmod(0o600)
    return str(pw)


def refused(imapfs_bin, tmp_path, url, opts, extra_args=()):
    """Runs a mount that must fail: non-zero exit, nothing mounted, nothing
    left running.  Returns helpers.Result."""
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt, exist_ok=True)
    args = ["-o", ",".join(opts)] + list(extra_args) + [url, mnt]
    try:
        r = helpers.run_imapfs(imapfs_bin, args, mountpoint=mnt, workdir=str(tmp_path))
        assert r.returncode not in (0, "timeout"), r
        assert not r.mounted and not r.leftover, r
        assert not helpers.sanitizer_lines(r.stderr), r
        return r
    finally:
        helpers.cleanup_mountpoint(mnt)


def mount(imapfs_bin, tmp_path, url, opts, name="imapfs-hs"):
    m = helpers.Mount(imapfs_bin, url, str(tmp_path / ("mnt-" + name)), opts,
                      logdir=str(tmp_path), name=name)
    return m.start()


def conversation(log, connection=None):
    """The fake server's log lines, of one connection ("[N] ...") or all."""
    lines = helpers.read_text(log).splitlines()
    if connection is None:
        return lines
    prefix = "[%d] " % connection
    return [ln[len(prefix):] for ln in lines if ln.startswith(prefix)]


def client_lines(log, connection):
    return [ln for ln in conversation(log, connection) if ln.startswith("C")]


# -- 1. PREAUTH on imap:// ----------------------------------------------------------

def test_preauth_refused_before_starttls(imapfs_bin, fake_server, tmp_path):
    """A plaintext "* PREAUTH" greeting on imap:// (no -o plaintext): the
    mount is refused with a line naming PREAUTH, and imapfs sends nothing at
    all after the greeting (no CAPABILITY, no LIST, no mail commands)."""
    port, log = fake_server("preauth", lifetime=LIFETIME)
    r = refused(imapfs_bin, tmp_path, "imap://alice@127.0.0.1:%d" % port,
                ["password_file=" + password_file(tmp_path)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "PREAUTH" in lines[0], r
    assert "-o plaintext" in lines[0] and "imaps://" in lines[0], r
    conv = conversation(log, 1)
    assert conv and conv[0].startswith("S: * PREAUTH"), conv
    assert client_lines(log, 1) == [], "sent after a PREAUTH greeting:\n%s" % "\n".join(conv)


def test_preauth_accepted_with_plaintext(imapfs_bin, fake_server, tmp_path):
    """-o plaintext names the risk: there a PREAUTH session is used as it is
    (no LOGIN is sent) and the folders list."""
    port, log = fake_server("preauth", lifetime=LIFETIME)
    m = mount(imapfs_bin, tmp_path, "imap://alice@127.0.0.1:%d" % port,
              ["plaintext", "password_file=" + password_file(tmp_path),
               "cache_dir=%s" % (tmp_path / "cache")])
    try:
        assert sorted(n for n in os.listdir(m.path) if not n.startswith(".")) == \
            ["INBOX", "Other"]
        assert not [ln for ln in conversation(log) if re.search(r"C: \S+ (LOGIN|AUTHENTICATE)", ln)]
    finally:
        m.stop()


def test_preauth_accepted_over_imaps(imapfs_bin, fake_server, tmp_path):
    """imaps:// is unaffected: a PREAUTH greeting inside TLS (the certificate
    checked) is a server that knows its client; the folders list."""
    ca, crt, key = make_certs(str(tmp_path / "certs"))
    port, log = fake_server("preauth", "--tls", "imaps", "--cert", crt, "--key", key,
                            lifetime=LIFETIME)
    m = mount(imapfs_bin, tmp_path, "imaps://alice@localhost:%d" % port,
              ["ca_file=" + ca, "password_file=" + password_file(tmp_path),
               "cache_dir=%s" % (tmp_path / "cache")])
    try:
        assert "INBOX" in os.listdir(m.path)
        assert conversation(log, 1)[0].startswith("S: * PREAUTH")
    finally:
        m.stop()


def test_preauth_refused_on_later_connections(imapfs_bin, fake_server, tmp_path):
    """The first connection does STARTTLS and LOGIN; every later one (the
    INBOX watcher's, the pool's) greets with a plaintext PREAUTH.  Each is
    refused and sent nothing after its greeting; the mount keeps working on
    its encrypted connection."""
    ca, crt, key = make_certs(str(tmp_path / "certs"))
    port, log = fake_server("preauth", "--tls", "starttls", "--cert", crt, "--key", key,
                            "--preauth-from", "2", lifetime=LIFETIME)
    m = mount(imapfs_bin, tmp_path, "imap://alice@localhost:%d" % port,
              ["ca_file=" + ca, "password_file=" + password_file(tmp_path),
               "cache_dir=%s" % (tmp_path / "cache"), "connections=2"])
    try:
        assert [ln for ln in client_lines(log, 1) if "STARTTLS" in ln], conversation(log, 1)
        inbox = os.path.join(m.path, "INBOX")
        names = sorted(os.listdir(inbox))
        assert len(names) == 2, names
        # the watcher connects at once, and retries
        assert helpers.wait_for(lambda: "PREAUTH" in m.stderr() and
                                "[2] S: * PREAUTH" in helpers.read_text(log), 15), \
            m.stderr()[-3000:]
        assert sorted(os.listdir(inbox)) == names
    finally:
        m.stop()
    err = m.stderr()
    assert re.search(r"greeted with PREAUTH before STARTTLS", err), err[-3000:]
    later = sorted({int(x) for x in re.findall(r"^\[(\d+)\]", helpers.read_text(log), re.M)} - {1})
    assert later, helpers.read_text(log)
    for n in later:
        assert client_lines(log, n) == [], "connection %d after PREAUTH:\n%s" % (
            n, "\n".join(conversation(log, n)))


# -- 3. STARTTLS response injection ----------------------------------------------------

def test_starttls_injection_refused(imapfs_bin, fake_server, tmp_path):
    """The server answers STARTTLS with its OK and, in the same packet, a
    forged "* CAPABILITY" line.  imapfs's own check refuses it (its message,
    not libetpan's) and sends nothing more: no TLS handshake, no login."""
    port, log = fake_server("starttls-inject", lifetime=LIFETIME)
    r = refused(imapfs_bin, tmp_path, "imap://alice@127.0.0.1:%d" % port,
                ["password_file=" + password_file(tmp_path)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r
    assert "sent more after its answer to STARTTLS" in lines[0], r
    conv = conversation(log, 1)
    assert "C-RAW: 0 bytes" in conv, "\n".join(conv)
    assert not [ln for ln in conv if re.search(r"C: \S+ (LOGIN|AUTHENTICATE)", ln)], conv


# -- 4. TLS: the subject CN is never a host name ---------------------------------------

@pytest.mark.parametrize("san", [None, "DNS:mail.example.org", "IP:127.0.0.1"],
                         ids=["no-san", "other-dns", "ip-only"])
def test_certificate_cn_only_refused(imapfs_bin, fake_server, tmp_path, san):
    """A certificate for CN=localhost whose subjectAltName does not name
    localhost (none at all, another name, an IP address only) is refused for
    imaps://alice@localhost: host name mismatch."""
    ca, crt, key = make_certs(str(tmp_path / "certs"), cn="localhost", san=san)
    port, log = fake_server("preauth", "--tls", "imaps", "--cert", crt, "--key", key,
                            "--preauth-from", "1000", lifetime=LIFETIME)
    r = refused(imapfs_bin, tmp_path, "imaps://alice@localhost:%d" % port,
                ["ca_file=" + ca, "password_file=" + password_file(tmp_path)])
    assert re.search(r"host name mismatch", r.stderr), r
    assert not [ln for ln in conversation(log) if "] C:" in ln], helpers.read_text(log)


def test_certificate_with_san_accepted(imapfs_bin, fake_server, tmp_path):
    """The control: the same kind of certificate naming localhost in its
    subjectAltName mounts."""
    ca, crt, key = make_certs(str(tmp_path / "certs"), cn="something else")
    port, _ = fake_server("preauth", "--tls", "imaps", "--cert", crt, "--key", key,
                          "--preauth-from", "1000", lifetime=LIFETIME)
    m = mount(imapfs_bin, tmp_path, "imaps://alice@localhost:%d" % port,
              ["ca_file=" + ca, "password_file=" + password_file(tmp_path),
               "cache_dir=%s" % (tmp_path / "cache")])
    try:
        assert "INBOX" in os.listdir(m.path)
    finally:
        m.stop()


# -- 5. terminal escapes in server text ---------------------------------------------------

RAW_ESCAPES = [b"\x1b", b"\x07", b"\x9b", b"\xc2\x9b", b"\xe2\x80\xae", b"\xe2\x81\xa6"]


@pytest.mark.parametrize("extra", [[], ["-f"], ["-d"]], ids=["daemon", "fg", "debug"])
def test_escapes_do_not_reach_the_terminal(imapfs_bin, fake_server, tmp_path, extra):
    """Greeting and LOGIN refusal full of ESC sequences, a raw C1 CSI byte,
    U+009B and bidi controls: the refusal is printed (one line naming the
    login), with none of them in it."""
    port, _ = fake_server("escapes", lifetime=LIFETIME)
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt, exist_ok=True)
    errp = str(tmp_path / "stderr")
    args = ["-o", "plaintext,password_file=" + password_file(tmp_path)] + extra + \
        ["imap://alice@127.0.0.1:%d" % port, mnt]
    try:
        with open(errp, "wb") as ef:
            p = subprocess.run([imapfs_bin] + args, stdin=subprocess.DEVNULL,
                               stdout=ef, stderr=ef, timeout=helpers.FAIL_TIMEOUT)
    finally:
        helpers.cleanup_mountpoint(mnt)
    with open(errp, "rb") as f:
        raw = f.read()
    assert p.returncode != 0, raw
    assert not helpers.sanitizer_lines(raw.decode(errors="replace")), raw
    assert re.search(rb"login as alice refused by 127\.0\.0\.1", raw), raw
    found = [e for e in RAW_ESCAPES if e in raw]
    assert not found, "raw on the terminal: %r in %r" % (found, raw)
    assert b"reversed" in raw and b"owned" in raw, raw     # the text itself is still shown


# -- 2. RFC 5530 response codes -------------------------------------------------------------

@pytest.fixture
def codes_mount(imapfs_bin, fake_server, tmp_path):
    """A mount (-d) of the fake server's "codes" mode: (Mount, server log)."""
    port, log = fake_server("codes", lifetime=LIFETIME)
    m = mount(imapfs_bin, tmp_path, "imap://alice@127.0.0.1:%d" % port,
              ["plaintext", "debug", "password_file=" + password_file(tmp_path),
               "cache_dir=%s" % (tmp_path / "cache")])
    try:
        yield m, log
    finally:
        m.stop()


MKDIR_ERRNO = [
    ("Exists1", errno.EEXIST),        # [ALREADYEXISTS]
    ("Forbidden1", errno.EACCES),     # [NOPERM]
    ("Limit1", errno.ENOSPC),         # [LIMIT]
    ("Quota1", errno.ENOSPC),         # [OVERQUOTA]
    ("Cannot1", errno.EPERM),         # [CANNOT]
    ("Inuse1", errno.EBUSY),          # [INUSE]
    ("Plain1", errno.EEXIST),         # no code, English text: the last resort
    ("Nocode1", errno.EIO),           # no code, German text: nothing to go by
]


def test_create_refusals_by_code(codes_mount):
    """mkdir answered NO with RFC 5530 codes and German text: the code
    decides the errno (text only when there is no code)."""
    m, _ = codes_mount
    got = {}
    for name, _ in MKDIR_ERRNO:
        try:
            os.mkdir(os.path.join(m.path, name))
            got[name] = 0
        except OSError as e:
            got[name] = e.errno
    want = dict(MKDIR_ERRNO)
    assert got == want, {n: (errno.errorcode.get(got[n], got[n]), errno.errorcode[want[n]])
                         for n in want if got[n] != want[n]}


def test_trash_created_meanwhile(codes_mount):
    """rm needs the trash, which is not listed; its CREATE is answered "NO
    [ALREADYEXISTS]" in German (another client made it meanwhile): imapfs
    takes that as "it is there", finds it on the next LIST and moves the
    message with UID MOVE."""
    m, log = codes_mount
    inbox = os.path.join(m.path, "INBOX")
    name = sorted(os.listdir(inbox))[0]
    os.unlink(os.path.join(inbox, name))
    conv = helpers.read_text(log)
    assert re.search(r"C: \S+ CREATE Trash", conv), conv
    assert re.search(r"C: \S+ UID MOVE %d Trash" % helpers.uid_of(name), conv), conv
    assert not re.search(r"C: \S+ CREATE INBOX", conv), conv


def write_message(path, body):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
    finally:
        os.close(fd)


MARKER = b"Z7Q-literal-marker-4711"


def message(marker=MARKER):
    return (b"From: someone@example.org\r\nSubject: a test\r\n\r\n" + marker +
            b" is the first line of the body\r\n" + b"more text\r\n" * 20)


def test_append_refusals_by_code(codes_mount):
    """cp answered "NO [OVERQUOTA]" (after the literal) or "NO [LIMIT]"
    (before it, instead of the continuation), both in German: ENOSPC at
    close."""
    m, log = codes_mount
    body = message()
    for folder in ("INBOX", "Other"):
        with pytest.raises(OSError) as ei:
            write_message(os.path.join(m.path, folder, "new.eml"), body)
        assert ei.value.errno == errno.ENOSPC, (folder, ei.value)
    conv = helpers.read_text(log)
    assert "C: <literal of %d bytes>" % len(body) in conv, conv
    assert re.search(r"S: \S+ NO \[LIMIT\]", conv), conv


# -- 6. -d never logs literals ---------------------------------------------------------------

def test_debug_log_keeps_literals_out(codes_mount):
    """With -d: two APPENDs, one refused after its literal, one before it
    (the literal is never sent).  The log shows both command lines with
    their literal sizes, never the message; and after the literal that was
    never sent, the next command (a mkdir) is logged as usual."""
    m, _ = codes_mount
    body = message()
    for folder in ("INBOX", "Other"):
        with pytest.raises(OSError):
            write_message(os.path.join(m.path, folder, "new.eml"), body)
    with pytest.raises(OSError) as ei:
        os.mkdir(os.path.join(m.path, "Exists2"))
    assert ei.value.errno == errno.EEXIST
    err = m.stderr()
    assert MARKER.decode() not in err, err[-4000:]
    appends = re.findall(r">> \S+ APPEND (\S+) .*\{(\d+)\}", err)
    assert [a[0] for a in appends] == ["INBOX", "Other"], err[-4000:]
    assert all(int(a[1]) == len(body) for a in appends), appends
    assert re.search(r">> \S+ CREATE Exists2", err), err[-4000:]


@pytest.mark.deadline(120)
def test_debug_log_keeps_metadata_out(scratch_metadata_server, rf_mounter, tmp_path):
    """With -d on a METADATA server: a rule written to .receive-folders
    (SETMETADATA, its value a LITERAL+ literal) and a message copied in
    (APPEND) are logged as command lines with literal sizes; the class name
    in the table and the marker in the message body never appear."""
    server = scratch_metadata_server
    wh_m = server.connect()
    try:
        wh.create_folder(wh_m, "Samples")
    finally:
        wh_m.logout()
    m = rf_mounter(server, extra_opts=["debug"])
    cls = "A.Markerclass9931"
    with open(os.path.join(m.path, ".receive-folders"), "w") as f:
        f.write("%s Samples\n" % cls)
    write_message(os.path.join(m.path, "Samples", "new.eml"), message())
    assert helpers.wait_for(lambda: len(os.listdir(os.path.join(m.path, "Samples"))) == 1, 10)
    # the rule reached the server (so SETMETADATA really carried it)
    wh_m = server.connect()
    try:
        value = wh.get_metadata(wh_m, "", "/private/vendor/imapfs/receive-folders")
    finally:
        wh_m.logout()
    assert value and cls.encode() in (value if isinstance(value, bytes) else value.encode())
    err = m.stderr()
    assert ">> " in err and re.search(r">> \S+ SETMETADATA .*\{\d+\+?\}", err), err[-4000:]
    assert re.search(r">> \S+ APPEND .*\{%d\}" % len(message()), err), err[-4000:]
    assert re.search(r">> \S+ GETMETADATA ", err), err[-4000:]
    assert cls not in err, "the table's value is in the -d log"
    assert MARKER.decode() not in err, "the message body is in the -d log"


# -- 6. TLS records read ahead ---------------------------------------------------------

def test_news_held_by_tls_read_ahead_ends_idle(imapfs_bin, fake_server, tmp_path):
    """imapfs reads whatever the socket holds into OpenSSL at once (records
    come about 2 KB each).  "+ idling" and "* 3 EXISTS" arriving in one
    segment as two records: the second is already off the socket, so a poll
    of the socket would sleep through it until the IDLE timed out.  It must
    end the IDLE (DONE) at once, and the new message be listed."""
    ca, crt, key = make_certs(str(tmp_path / "certs"))
    port, log = fake_server("idle-burst", "--tls", "imaps", "--cert", crt, "--key", key,
                            lifetime=LIFETIME)
    m = mount(imapfs_bin, tmp_path, "imaps://alice@localhost:%d" % port,
              ["ca_file=" + ca, "password_file=" + password_file(tmp_path),
               "cache_dir=%s" % (tmp_path / "cache"), "dir_cache=600"])
    try:
        assert helpers.wait_for(lambda: "S: <burst sent>" in helpers.read_text(log), 15), \
            "no IDLE on INBOX:\n%s" % "\n".join(conversation(log)[-30:])

        def done_after_burst():
            lines = conversation(log)
            at = next(i for i, ln in enumerate(lines) if ln.endswith("S: <burst sent>"))
            return any(re.search(r"C: DONE$", ln) for ln in lines[at:])
        assert helpers.wait_for(done_after_burst, 3), \
            "IDLE not ended after the news:\n%s" % "\n".join(conversation(log)[-30:])
        inbox = os.path.join(m.path, "INBOX")
        assert helpers.wait_for(lambda: len(os.listdir(inbox)) == 3, 10), os.listdir(inbox)
    finally:
        m.stop()
