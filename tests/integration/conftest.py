"""Fixtures for the imapfs integration tests.

Run:   /usr/bin/python3 -m pytest tests/integration            (everything)
       /usr/bin/python3 -m pytest tests/integration -m "not slow"

Environment:
  IMAPFS_BIN          binary to test (default <repo>/imapfs)
  IMAPFS_TEST_BIG     messages in folder Big (default 10000; 0 = no Big)
  IMAPFS_TEST_KEEP=1  keep the Dovecot directory (path printed) for debugging
  IMAPFS_TEST_SERVER  dovecot (default) or cyrus: which server every fixture
                      starts (scripts/dovecot-env or scripts/cyrus-env)

A private Dovecot (scripts/dovecot-env) is started once per session in a
fresh /tmp directory and populated by scripts/gen-mail; it is stopped at the
end.  With IMAPFS_TEST_SERVER=cyrus it is a private Cyrus instead (the
fixture keeps its name `dovecot`), and so are the scratch servers.  Each test has a watchdog (default 120 s, @pytest.mark.deadline(N) to
change): when it fires, every imapfs started by the harness is killed and its
mountpoint lazily unmounted, so a hung FUSE call turns into a test failure
instead of a hung run.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

sys.dont_write_bytecode = True      # keep the repo free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402
from helpers import mailgen  # noqa: E402

DEFAULT_DEADLINE = 120


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "deadline(seconds): per-test watchdog limit")


def pytest_collection_modifyitems(config, items):
    """IMAPFS_TEST_BIG=0 asks for no Big folder: its test is deselected (said
    in the summary), not skipped."""
    if os.environ.get("IMAPFS_TEST_BIG", "10000") != "0":
        return
    gone = [i for i in items if i.name == "test_big_folder"]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = [i for i in items if i not in gone]


# -- watchdog -------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _watchdog(request):
    mk = request.node.get_closest_marker("deadline")
    limit = float(mk.args[0]) if mk else DEFAULT_DEADLINE
    fired = []

    def fire():
        fired.append(True)
        helpers.emergency_cleanup("test %s exceeded %.0fs" % (request.node.name, limit))

    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    yield
    t.cancel()
    if fired:
        pytest.fail("watchdog: test exceeded its %.0fs deadline; imapfs was killed" % limit)


# -- binary -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def imapfs_bin():
    b = os.environ.get("IMAPFS_BIN") or os.path.join(helpers.REPO, "imapfs")
    # A suite that cannot mount must fail, never skip: `make check` would
    # pass having tested nothing.
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail("imapfs binary not found at %s (build it, or set IMAPFS_BIN)" % b,
                    pytrace=False)
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.fail("FUSE not available: the suite needs /dev/fuse and fusermount3 "
                    "(package fuse3; in a container, pass /dev/fuse through)", pytrace=False)
    return os.path.abspath(b)


# -- Dovecot + mail --------------------------------------------------------------

@pytest.fixture(scope="session")
def dovecot():
    """env.json of a running, populated private Dovecot (+ manifest)."""
    base = tempfile.mkdtemp(prefix="imapfs-it-")
    os.chmod(base, 0o711)            # the Dovecot mail user must reach DIR
    d = os.path.join(base, helpers.SERVER)
    script = helpers.SERVER_ENV
    r = subprocess.run([helpers.PYTHON, script, "start", d], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail("%s start failed:\n" % os.path.basename(script) +
                    r.stderr.decode(errors="replace"))
    try:
        env = mailgen.load_env(d)
        big = int(os.environ.get("IMAPFS_TEST_BIG", "10000"))
        args = [helpers.PYTHON, os.path.join(helpers.SCRIPTS, "gen-mail"), d, "--huge"]
        if big:
            args.append("--big=%d" % big)
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        if r.returncode != 0:
            pytest.fail("gen-mail failed:\n" + r.stdout.decode(errors="replace"))
        with open(os.path.join(d, mailgen.MANIFEST)) as f:
            env["manifest"] = json.load(f)
        env["baseline"] = _snapshot_meta(env)
        yield env
    finally:
        subprocess.run([helpers.PYTHON, script, "stop", d], timeout=30)
        if os.environ.get("IMAPFS_TEST_KEEP"):
            print("\nkept %s directory: %s" % (helpers.SERVER.capitalize(), d),
                  file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def _snapshot_meta(env):
    """{folder: {uid: {size, internaldate, flags}}} for every folder."""
    m = mailgen.connect(env)
    try:
        return {f: mailgen.fetch_meta(m, f) for f in mailgen.list_folders(m)}
    finally:
        m.logout()


@pytest.fixture(scope="session")
def manifest(dovecot):
    return dovecot["manifest"]


@pytest.fixture
def imap(dovecot):
    """A fresh imaplib connection (IMAPS) for the test; logged out after."""
    m = mailgen.connect(dovecot)
    yield m
    try:
        m.logout()
    except Exception:
        pass


@pytest.fixture(scope="session")
def small_truth(dovecot):
    """{folder: {uid: {size, internaldate, flags, sha256}}} for the small
    folders that no test modifies (everything but Scratch), via imaplib."""
    out = {}
    m = mailgen.connect(dovecot)
    try:
        for f in dovecot["manifest"]["small_folders"]:
            if f == "Scratch":
                continue
            meta = mailgen.fetch_meta(m, f)
            for uid, rec in meta.items():
                rec["sha256"] = helpers.sha256(mailgen.fetch_body(m, uid))
            out[f] = meta
    finally:
        m.logout()
    return out


# -- mounting ------------------------------------------------------------------

def stop_mounts(mounts):
    """Unmounts every mount a fixture made (each checked: exit 0, no
    sanitizer reports) and fails the test with all the problems at once."""
    errors = []
    for m in mounts:
        try:
            m.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))


def url_for(env, kind, host=None, user=None, port=None):
    host = host or env["HOST"]
    user = user or env["USER"]
    if kind == "imaps":
        return "imaps://%s@%s:%s" % (user, host, port or env["IMAPS_PORT"])
    if kind == "starttls":
        return "imap://%s@%s:%s" % (user, host, port or env["IMAP_PORT"])
    raise ValueError(kind)


def default_opts(env, cache_dir=None):
    o = ["ca_file=" + env["CA_FILE"], "password_file=" + env["PASSWORD_FILE"]]
    if cache_dir:
        o.append("cache_dir=" + cache_dir)   # keep tests out of ~/.cache
    return o


@pytest.fixture
def mounter(imapfs_bin, dovecot, tmp_path):
    """mounter(kind="imaps", opts=None, extra_opts=(), env=None) -> Mount.
    opts=None means ca_file + password_file.  Unmounted (and checked: exit 0,
    no sanitizer reports) at the end of the test."""
    mounts = []

    def make(kind="imaps", opts=None, extra_opts=(), env=None, url=None):
        n = len(mounts)
        mnt = str(tmp_path / ("mnt%d" % n))
        o = (default_opts(dovecot, str(tmp_path / ("cache%d" % n)))
             if opts is None else list(opts))
        o += list(extra_opts)
        m = helpers.Mount(imapfs_bin, url or url_for(dovecot, kind), mnt, o, env=env,
                          logdir=str(tmp_path), name="imapfs%d" % n)
        mounts.append(m)
        return m.start()

    yield make
    stop_mounts(mounts)


@pytest.fixture(scope="session", params=["imaps", "starttls"])
def shared_mount(request, imapfs_bin, dovecot, tmp_path_factory):
    """One long-lived mount per flavour (imaps://, imap://+STARTTLS), default
    options, shared by the read-only content tests."""
    d = str(tmp_path_factory.mktemp("shared-" + request.param))
    m = helpers.Mount(imapfs_bin, url_for(dovecot, request.param),
                      os.path.join(d, "mnt"),
                      default_opts(dovecot, os.path.join(d, "cache")), logdir=d,
                      name="imapfs-" + request.param)
    m.start()
    m.kind = request.param
    yield m
    m.stop()


# -- scripted fake IMAP server ----------------------------------------------------

@pytest.fixture
def fake_server(tmp_path):
    """fake_server(mode, *args, lifetime=30) -> (port, conversation log path):
    a scripts/fake-imap-server.py on 127.0.0.1; stopped after the test."""
    procs = []

    def start(mode, *args, lifetime=30):
        log = str(tmp_path / ("fake-%d.log" % len(procs)))
        p = subprocess.Popen([helpers.PYTHON, os.path.join(helpers.SCRIPTS,
                                                           "fake-imap-server.py"),
                              "--mode", mode, "--lifetime", str(lifetime),
                              "--log", log] + list(args),
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(p)
        line = p.stdout.readline()    # the port, printed first
        assert line.strip().isdigit(), "fake server did not start: %r" % line
        return int(line), log

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


@pytest.fixture
def rnd():
    return random.Random(4242)


# -- write tests: private Dovecot instances, mounts on them, fault proxy ---------
# (the session `dovecot` stays read-only: write tests never touch it)

def _scratch(no_move, extra_args=()):
    import write_helpers
    s = write_helpers.ScratchServer(no_move=no_move, extra_args=extra_args)
    try:
        s.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    return s


@pytest.fixture(scope="module")
def scratch_dovecot():
    """A private Dovecot (with MOVE) for one test module: write_helpers.ScratchServer
    (.env, .connect(), .url(), .opts(cache_dir), .stop(), .restart())."""
    s = _scratch(False)
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def scratch_dovecot_nomove():
    """Like scratch_dovecot, but the server does not announce MOVE."""
    s = _scratch(True)
    yield s
    s.cleanup()


@pytest.fixture
def scratch_server():
    """scratch_server(no_move=False, extra_args=()) -> a fresh private Dovecot
    for this test only (for tests that stop/restart it or need an empty
    account); extra_args go to dovecot-env start (e.g. "--quota=10M")."""
    servers = []

    def make(no_move=False, extra_args=()):
        servers.append(_scratch(no_move, extra_args))
        return servers[-1]

    yield make
    for s in servers:
        s.cleanup()


@pytest.fixture
def scratch_mounter(imapfs_bin, tmp_path):
    """scratch_mounter(server, extra_opts=(), url=None, opts=None) -> Mount on
    a ScratchServer (imaps://, ca_file + password_file + a private cache_dir
    unless opts is given).  Unmounted and checked at the end of the test."""
    mounts = []

    def make(server, extra_opts=(), url=None, opts=None):
        n = len(mounts)
        mnt = str(tmp_path / ("wmnt%d" % n))
        o = server.opts(str(tmp_path / ("wcache%d" % n))) if opts is None else list(opts)
        o += list(extra_opts)
        m = helpers.Mount(imapfs_bin, url or server.url(), mnt, o,
                          logdir=str(tmp_path), name="imapfs-w%d" % n)
        mounts.append(m)
        return m.start()

    yield make
    stop_mounts(mounts)


@pytest.fixture
def fault_proxy(tmp_path):
    """fault_proxy(target_port, cut_on=None, cut_when="response", cut_count=1,
    lifetime=120, refuse_code=None, arm_on=None) -> (port, log path):
    scripts/fault-proxy.py on 127.0.0.1, stopped after the test."""
    procs = []

    def start(target_port, cut_on=None, cut_when="response", cut_count=1,
              lifetime=120, refuse_code=None, arm_on=None):
        log = str(tmp_path / ("proxy-%d.log" % len(procs)))
        args = [helpers.PYTHON, os.path.join(helpers.SCRIPTS, "fault-proxy.py"),
                str(target_port), "--cut-when", cut_when, "--cut-count",
                str(cut_count), "--lifetime", str(lifetime), "--log", log]
        if cut_on:
            args += ["--cut-on", cut_on]
        if refuse_code:
            args += ["--refuse-code", refuse_code]
        if arm_on:
            args += ["--arm-on", arm_on]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(p)
        line = p.stdout.readline()
        assert line.strip().isdigit(), "fault proxy did not start: %r" % line
        return int(line), log

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# -- receive folders (test_rfolders_*.py) ------------------------------------------

@pytest.fixture
def rf_mounter(imapfs_bin, tmp_path):
    """rf_mounter(server, extra_opts=(), state=None, cache=None) -> Mount on a
    ScratchServer whose environment has XDG_STATE_HOME=`state` (default: one
    directory per test, tmp_path/"state", so a remount in the same test sees
    the same local receive-folder table and no test touches ~/.local/state).
    `cache` defaults to a fresh cache_dir per mount.  mount.state_home is
    set.  Unmounted and checked (exit 0, sanitizer-clean) after the test."""
    mounts = []

    def make(server, extra_opts=(), state=None, cache=None):
        n = len(mounts)
        state = state or str(tmp_path / "state")
        os.makedirs(state, exist_ok=True)
        mnt = str(tmp_path / ("rfmnt%d" % n))
        o = server.opts(cache or str(tmp_path / ("rfcache%d" % n)))
        o += list(extra_opts)
        env = dict(os.environ, XDG_STATE_HOME=state)
        m = helpers.Mount(imapfs_bin, server.url(), mnt, o, env=env,
                          logdir=str(tmp_path), name="imapfs-rf%d" % n)
        m.state_home = state
        mounts.append(m)
        return m.start()

    yield make
    stop_mounts(mounts)


@pytest.fixture
def scratch_metadata_server():
    """A fresh private Dovecot with RFC 5464 METADATA (dovecot-env start
    --metadata) for this test only: write_helpers.MetadataScratchServer."""
    import write_helpers
    s = write_helpers.MetadataScratchServer()
    try:
        s.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield s
    s.cleanup()
