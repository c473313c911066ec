"""Local hardening (audit of 26d6294): what imapfs keeps on the local disk
and the secrets it holds, against other users of the same machine.

- the cache directory is opened once, refused when it is a symbolic link,
  not ours or writable by others; nothing under it (blocks, listings, the
  folder directories, blocks/ and folders/ themselves) is reached through a
  planted symbolic link, and a FIFO in a block's place does not hang a read;
  the state directory of the receive-folder table likewise;
- every file imapfs makes is 0600 and every directory 0700, whatever the
  umask and whatever mode an earlier run (or the user) gave them;
- the accounts file and a CA file are refused (ssh-like) when others can
  write to them or they are not the user's (root's, for a CA file);
- IMAPFS_PASSWORD leaves the daemon's environment, /proc/PID/environ
  included, and no core file can be written; the password prompt gives the
  terminal its echo back when interrupted;
- relative paths in options still mean the working directory once the
  daemon has changed to /.

Tests run as root: "another user" is `nobody` (chown)."""

import errno
import os
import pwd
import re
import select
import shutil
import signal
import stat
import subprocess
import termios
import time
import types

import pytest

import helpers
import write_helpers as wh
from test_cache import seed_folder, read_all_and_compare, walk_modes, block_files
from test_failures import refused, one_line_error

pytestmark = pytest.mark.deadline(180)

NOBODY = pwd.getpwnam("nobody").pw_uid


def snapshot(top):
    """{relative path: (type, mode, content or link target)} of everything
    under top, links not followed."""
    out = {}
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what = ("link", 0, os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    what = ("file", stat.S_IMODE(st.st_mode), f.read())
            else:
                what = ("dir", stat.S_IMODE(st.st_mode), None)
            out[os.path.relpath(p, top)] = what
    return out


def outside_tree(tmp_path):
    """Files of the user outside the cache, which imapfs must never touch."""
    out = tmp_path / "outside"
    (out / "dir").mkdir(parents=True)
    for name, text in (("victim", "the user's own file\n"), ("listing-victim", "do not truncate\n"),
                       ("tmp-victim", "not a temporary file\n"),
                       ("dir/precious.txt", "keep me\n"), ("dir/junk", "keep me too\n")):
        (out / name).write_text(text)
        (out / name).chmod(0o644)
    return str(out)


def cache_mount(server, imapfs_bin, tmp_path, cache, name, env=None, binary=None):
    m = helpers.Mount(binary or imapfs_bin, server.url(), str(tmp_path / ("mnt-" + name)),
                      server.opts(cache), env=env, logdir=str(tmp_path), name="imapfs-" + name)
    return m.start()


# -- the cache directory itself ---------------------------------------------------------

@pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "fg"])
def test_cache_dir_symlink_refused(scratch_dovecot, imapfs_bin, tmp_path, foreground):
    """cache_dir naming a symbolic link (to a directory of the user's) is
    refused at mount time; the directory it points at is left as it was."""
    real = tmp_path / "real"
    real.mkdir()
    real.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(real)
    r = refused(imapfs_bin, tmp_path, scratch_dovecot.url(),
                scratch_dovecot.opts(str(link)), foreground=foreground)
    one_line_error(r, r"symbolic link")
    assert str(link) in r.stderr, r.stderr
    assert os.listdir(str(real)) == []
    assert stat.S_IMODE(os.stat(str(real)).st_mode) == 0o755, "chmod followed the link"


def test_cache_dir_of_another_user_refused(scratch_dovecot, imapfs_bin, tmp_path):
    cache = tmp_path / "theirs"
    cache.mkdir()
    cache.chmod(0o700)
    os.chown(str(cache), NOBODY, -1)
    r = refused(imapfs_bin, tmp_path, scratch_dovecot.url(), scratch_dovecot.opts(str(cache)))
    one_line_error(r, r"belongs to uid %d, not to you" % NOBODY)
    assert os.listdir(str(cache)) == []
    st = os.stat(str(cache))
    assert st.st_uid == NOBODY and stat.S_IMODE(st.st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o1777], ids=["group", "sticky-world"])
def test_cache_dir_writable_by_others_refused(scratch_dovecot, imapfs_bin, tmp_path, mode):
    """Others could have planted anything in it already: refused, with the
    chmod that fixes it."""
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(mode)
    r = refused(imapfs_bin, tmp_path, scratch_dovecot.url(), scratch_dovecot.opts(str(cache)))
    one_line_error(r, r"writable by group or others; run chmod 700")
    assert os.listdir(str(cache)) == []


def test_default_cache_dir_under_home_checked(scratch_dovecot, imapfs_bin, tmp_path):
    """Without cache_dir, $XDG_CACHE_HOME/imapfs gets the same checks."""
    xdg = tmp_path / "xdg-cache"
    xdg.mkdir()
    os.symlink(str(tmp_path), str(xdg / "imapfs"))
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg))
    opts = [o for o in scratch_dovecot.opts("x") if not o.startswith("cache_dir=")]
    r = refused(imapfs_bin, tmp_path, scratch_dovecot.url(), opts, env=env)
    one_line_error(r, r"symbolic link")


# -- links and FIFOs planted inside the cache --------------------------------------------

def plant_files(cache, outside):
    """Links in place of a segment file of blocks, of every saved listing,
    of the temporary name a listing is written to, and of an older
    imapfs's folder directory of blocks."""
    blocks = block_files(cache)
    assert blocks, "the first mount wrote no block file"
    victim = sorted(blocks.values())[0]
    os.unlink(victim)
    os.symlink(os.path.join(outside, "victim"), victim)
    listings = os.path.join(cache, "folders")
    names = [n for n in os.listdir(listings) if re.match(r"^[0-9a-f]{16}$", n)]
    assert names, "the first mount saved no listing"
    for n in names:
        os.unlink(os.path.join(listings, n))
        os.symlink(os.path.join(outside, "listing-victim"), os.path.join(listings, n))
        os.symlink(os.path.join(outside, "tmp-victim"), os.path.join(listings, n + ".tmp"))
    os.symlink(os.path.join(outside, "dir"), os.path.join(cache, "blocks", "00000000deadbeef"))


def plant_dirs(cache, outside):
    """blocks/ and folders/ themselves replaced by links to a directory."""
    for sub in ("blocks", "folders"):
        p = os.path.join(cache, sub)
        for root, dirs, files in os.walk(p, topdown=False):
            for n in files:
                os.unlink(os.path.join(root, n))
            for n in dirs:
                os.rmdir(os.path.join(root, n))
        os.rmdir(p)
        os.symlink(os.path.join(outside, "dir"), p)


@pytest.mark.parametrize("plant", [plant_files, plant_dirs], ids=["files", "dirs"])
def test_planted_links_not_followed(scratch_dovecot, imapfs_bin, tmp_path, plant):
    """A second mount over a cache where links replace files and
    directories reads the server's bytes, and the files the links point at
    are exactly as they were (not read as cache data, not truncated, not
    deleted, not chmod'ed)."""
    server = scratch_dovecot
    folder = wh.unique_folder("Planted")
    bodies = seed_folder(server, folder, [2000, 300 * 1024, 50])
    cache = str(tmp_path / "cache")
    m = cache_mount(server, imapfs_bin, tmp_path, cache, "first")
    try:
        read_all_and_compare(m, folder, bodies)
    finally:
        m.stop()
    outside = outside_tree(tmp_path)
    before = snapshot(outside)
    plant(cache, outside)

    m = cache_mount(server, imapfs_bin, tmp_path, cache, "second")
    try:
        read_all_and_compare(m, folder, bodies)
        read_all_and_compare(m, folder, bodies)
    finally:
        m.stop()
    assert snapshot(outside) == before, "a file outside the cache was changed"
    if plant is plant_files:
        assert not os.path.lexists(os.path.join(cache, "blocks", "00000000deadbeef"))
        for root, dirs, files in os.walk(os.path.join(cache, "blocks")):
            for n in files:
                assert not os.path.islink(os.path.join(root, n)), "link left: %s" % n


def test_fifo_in_cache_does_not_hang(scratch_dovecot, imapfs_bin, tmp_path):
    """A FIFO in a segment file's place is removed, never opened for
    reading (which would wait for a writer forever)."""
    server = scratch_dovecot
    folder = wh.unique_folder("Fifo")
    bodies = seed_folder(server, folder, [3000, 200 * 1024])
    cache = str(tmp_path / "cache")
    m = cache_mount(server, imapfs_bin, tmp_path, cache, "first")
    try:
        read_all_and_compare(m, folder, bodies)
    finally:
        m.stop()
    for p in set(block_files(cache).values()):
        os.unlink(p)
        os.mkfifo(p, 0o600)
    m = cache_mount(server, imapfs_bin, tmp_path, cache, "second")
    try:
        read_all_and_compare(m, folder, bodies)
    finally:
        m.stop()


def test_state_dir_planted_link_not_followed(scratch_dovecot, rf_mounter, tmp_path):
    """The receive-folder table kept in $XDG_STATE_HOME/imapfs (server
    without METADATA): a link planted at the name it is written through
    does not make imapfs write into the file it points at."""
    server = scratch_dovecot
    state = str(tmp_path / "state")
    a = rf_mounter(server, state=state)
    wh.rf_set(a.path, "IPM.Note.First INBOX")
    a.stop()
    sdir = os.path.join(state, "imapfs")
    tables = [n for n in os.listdir(sdir) if n.startswith("receive-folders.")]
    assert len(tables) == 1, os.listdir(sdir)
    outside = outside_tree(tmp_path)
    before = snapshot(outside)
    os.symlink(os.path.join(outside, "tmp-victim"), os.path.join(sdir, tables[0] + ".tmp"))
    b = rf_mounter(server, state=state)
    assert "ipm.note.first" in wh.rf_map(b.path)
    wh.rf_set(b.path, "IPM.Note.Second INBOX")
    b.stop()
    assert snapshot(outside) == before, "a file outside the state directory was changed"
    with open(os.path.join(sdir, tables[0]), "rb") as f:
        assert b"IPM.Note.Second" in f.read()


def test_state_dir_symlink_not_used(scratch_dovecot, rf_mounter, tmp_path):
    """A state directory that is a link is not used: the mount works and
    says why, a change of the table fails with EIO (it cannot be kept), and
    nothing is written where the link points."""
    state = tmp_path / "state"
    state.mkdir()
    outside = outside_tree(tmp_path)
    before = snapshot(outside)
    os.symlink(os.path.join(outside, "dir"), str(state / "imapfs"))
    a = rf_mounter(scratch_dovecot, state=str(state))
    werr, cerr = wh.rf_write(a.path, "IPM.Note.Nowhere INBOX\n")
    assert errno.EIO in (werr, cerr), (werr, cerr)
    a.stop()
    assert snapshot(outside) == before
    assert "symbolic link" in a.stderr(), a.stderr()


# -- modes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o000, 0o277], ids=["umask000", "umask277"])
def test_private_modes_whatever_the_umask(scratch_dovecot, imapfs_bin, tmp_path, umask):
    """Directories 0700 and files 0600 under the cache and state
    directories, with a umask that adds bits (000) or takes them away
    (277), and over subdirectories an earlier run left 0755/0777."""
    server = scratch_dovecot
    folder = wh.unique_folder("Modes")
    bodies = seed_folder(server, folder, [2000, 300 * 1024, 50])
    cache = tmp_path / "cache"
    for sub, mode in (("", 0o700), ("blocks", 0o755), ("folders", 0o777)):
        (cache / sub).mkdir(exist_ok=True)
        (cache / sub).chmod(mode)
    state = tmp_path / "state"
    state.mkdir()
    wrapper = str(tmp_path / "imapfs-umask")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\numask %03o\nexec "%s" "$@"\n' % (umask, imapfs_bin))
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, XDG_STATE_HOME=str(state))
    m = cache_mount(server, imapfs_bin, tmp_path, str(cache), "umask", env=env, binary=wrapper)
    try:
        with open("/proc/%d/status" % m.proc.pid) as f:
            got = re.search(r"^Umask:\s*(\d+)", f.read(), re.M)
        assert got and int(got.group(1), 8) == umask, got
        read_all_and_compare(m, folder, bodies)
        wh.rf_set(m.path, "IPM.Note.Modes INBOX")   # saved in the state directory
        with open(os.path.join(m.path, folder, "new.eml"), "wb") as f:
            f.write(wh.make_msg("modes", 1)["raw"])    # an upload staging file
    finally:
        m.stop()
    entries = walk_modes(str(cache)) + walk_modes(str(state / "imapfs"))
    assert any(re.search(r"/blocks/[0-9a-f]{16}-[0-9a-f]{16}$", p) for p, d, mode in entries), \
        entries
    assert any(os.path.basename(p).startswith("receive-folders.") for p, d, mode in entries), \
        entries
    bad = ["%s %s %03o" % ("dir " if d else "file", os.path.relpath(p, str(tmp_path)), mode)
           for p, d, mode in entries if mode != (0o700 if d else 0o600)]
    assert not bad, "not private (want dirs 0700, files 0600):\n" + "\n".join(bad)


# -- the accounts file and CA files (they can run commands and decide whom to trust) -------

def test_config_file_writable_by_others_refused(scratch_dovecot, imapfs_bin, tmp_path):
    from test_config_file import _config
    env = _config(tmp_path, scratch_dovecot.env, "password_command = echo owned\n")
    config = os.path.join(env["XDG_CONFIG_HOME"], "imapfs", "config")
    for mode in (0o664, 0o646):
        os.chmod(config, mode)
        r = refused(imapfs_bin, tmp_path, "work", ["cache_dir=" + str(tmp_path / "c")], env=env)
        one_line_error(r, r"bad owner or permissions on the config file %s: others can write "
                       r"to it; run chmod go-w" % re.escape(config))


def test_config_file_of_another_user_refused(scratch_dovecot, imapfs_bin, tmp_path):
    from test_config_file import _config
    env = _config(tmp_path, scratch_dovecot.env)
    config = os.path.join(env["XDG_CONFIG_HOME"], "imapfs", "config")
    os.chmod(config, 0o644)
    os.chown(config, NOBODY, -1)
    r = refused(imapfs_bin, tmp_path, "work", ["cache_dir=" + str(tmp_path / "c")], env=env)
    one_line_error(r, r"bad owner or permissions on the config file .*belongs to uid %d" % NOBODY)


def _own_ca(server, tmp_path, mode, owner=None):
    ca = tmp_path / "ca.pem"
    with open(server.env["CA_FILE"], "rb") as f:
        ca.write_bytes(f.read())
    ca.chmod(mode)
    if owner is not None:
        os.chown(str(ca), owner, -1)
    return str(ca)


def test_ca_file_writable_by_others_refused(scratch_dovecot, imapfs_bin, tmp_path):
    """On the command line and in the accounts file alike."""
    from test_config_file import _config
    server = scratch_dovecot
    ca = _own_ca(server, tmp_path, 0o666)
    opts = ["ca_file=" + ca, "password_file=" + server.env["PASSWORD_FILE"],
            "cache_dir=" + str(tmp_path / "c")]
    r = refused(imapfs_bin, tmp_path, server.url(), opts)
    one_line_error(r, r"bad owner or permissions on the CA file %s: others can write" % re.escape(ca))
    env = _config(tmp_path, dict(server.env, CA_FILE=ca))
    r = refused(imapfs_bin, tmp_path, "work", ["cache_dir=" + str(tmp_path / "c")], env=env)
    one_line_error(r, r"bad owner or permissions on the CA file")


def test_ca_file_of_another_user_refused(scratch_dovecot, imapfs_bin, tmp_path):
    server = scratch_dovecot
    ca = _own_ca(server, tmp_path, 0o644, owner=NOBODY)
    opts = ["ca_file=" + ca, "password_file=" + server.env["PASSWORD_FILE"],
            "cache_dir=" + str(tmp_path / "c")]
    r = refused(imapfs_bin, tmp_path, server.url(), opts)
    one_line_error(r, r"bad owner or permissions on the CA file .*belongs to uid %d, not to you "
                   r"or root" % NOBODY)


def test_ca_file_of_root_accepted(scratch_dovecot, scratch_mounter, tmp_path):
    """Root's CA file, 0644 (as in /etc/ssl), is fine for any user."""
    server = scratch_dovecot
    ca = _own_ca(server, tmp_path, 0o644, owner=0)
    m = scratch_mounter(server, opts=["ca_file=" + ca, "password_file=" + server.env["PASSWORD_FILE"],
                                      "cache_dir=" + str(tmp_path / "c")])
    assert "INBOX" in os.listdir(m.path)


# -- secrets ---------------------------------------------------------------------------------

def _daemon(binary, server, tmp_path, opts, env):
    """imapfs without -f; returns (mountpoint, daemon pid), tracked."""
    mnt = str(tmp_path / "dmnt")
    os.makedirs(mnt, exist_ok=True)
    r = helpers.run_imapfs(binary, ["-o", ",".join(opts), server.url(), mnt], mountpoint=mnt,
                           env=env, workdir=str(tmp_path), timeout=20)
    assert r.returncode == 0, r
    assert helpers.wait_for(lambda: helpers.is_mounted(mnt), 15), r
    pids = helpers.pids_for_mountpoint(mnt)
    assert len(pids) == 1, pids
    helpers.track(("daemon", pids[0]), pids[0], mnt)
    return mnt, pids[0]


def _stop_daemon(mnt, pid):
    try:
        u = subprocess.run(["fusermount3", "-u", mnt], timeout=10, capture_output=True, text=True)
        assert u.returncode == 0, u.stderr
        assert not helpers.wait_no_process(mnt, 10), "daemon still running after unmount"
    finally:
        helpers.cleanup_mountpoint(mnt)
        helpers.untrack(("daemon", pid))


def test_password_not_in_daemon_environment(scratch_dovecot, imapfs_bin, tmp_path):
    """IMAPFS_PASSWORD is read, then gone from the daemon's environment:
    not in /proc/PID/environ (the bytes the kernel copied at exec are
    overwritten), not for grep -a either; and no core dumps."""
    server = scratch_dovecot
    pw = server.env["PASSWORD"]
    env = dict(os.environ, IMAPFS_PASSWORD=pw, IMAPFS_TEST_MARKER="still-here")
    opts = ["ca_file=" + server.env["CA_FILE"], "cache_dir=" + str(tmp_path / "c")]
    mnt, pid = _daemon(imapfs_bin, server, tmp_path, opts, env)
    try:
        assert "INBOX" in os.listdir(mnt)     # it did log in with that password
        with open("/proc/%d/environ" % pid, "rb") as f:
            environ = f.read()
        assert b"IMAPFS_TEST_MARKER=still-here" in environ     # the file is the right one
        assert pw.encode() not in environ, "the password is in /proc/%d/environ" % pid
        g = subprocess.run(["grep", "-a", "-c", "-F", pw, "/proc/%d/environ" % pid],
                           capture_output=True, timeout=10)
        assert g.returncode == 1 and g.stdout.strip() == b"0", g
        with open("/proc/%d/limits" % pid) as f:
            core = [line for line in f if line.startswith("Max core file size")]
        assert core and core[0].split()[4:6] == ["0", "0"], core
    finally:
        _stop_daemon(mnt, pid)


def test_password_command_does_not_see_imapfs_password(scratch_dovecot, mounter, tmp_path):
    """With password_command, an IMAPFS_PASSWORD set as well is not handed
    to the command (it is taken out of the environment first)."""
    server = scratch_dovecot
    seen = tmp_path / "seen-env"
    script = tmp_path / "pw.sh"
    script.write_text("#!/bin/sh\nenv > '%s'\ncat '%s'\n" % (seen, server.env["PASSWORD_FILE"]))
    script.chmod(0o700)
    env = dict(os.environ, IMAPFS_PASSWORD="decoy-secret-%d" % os.getpid())
    m = mounter(url=server.url(), env=env,
                opts=["ca_file=" + server.env["CA_FILE"], "password_command=" + str(script),
                      "cache_dir=" + str(tmp_path / "c")])
    assert "INBOX" in os.listdir(m.path)
    text = seen.read_text()
    assert "PATH=" in text and "IMAPFS_PASSWORD" not in text, text


CTTY = ("import fcntl, os, sys, termios\n"
        "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n")


@pytest.mark.deadline(60)
@pytest.mark.parametrize("sig", ["ctrl-c", "SIGTERM", "SIGHUP"])
def test_prompt_restores_echo_when_interrupted(imapfs_bin, tmp_path, sig):
    """At the password prompt (echo off), Ctrl-C or a signal ends imapfs by
    that signal, and the terminal has its echo back."""
    master, slave = os.openpty()
    home = tmp_path / "home"
    home.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("IMAPFS_PASSWORD", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)      # no ~/.netrc: the prompt it is
    args = [helpers.PYTHON, "-c", CTTY, imapfs_bin, "-o", "cache_dir=" + str(tmp_path / "c"),
            "imaps://someone@127.0.0.1:9", str(mnt)]
    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    helpers.track(("prompt", p.pid), p, None)
    try:
        out = b""
        deadline = time.monotonic() + 15
        while b"Password for someone@127.0.0.1" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                out += os.read(master, 4096)
        assert b"Password for" in out, out
        off = helpers.wait_for(lambda: not termios.tcgetattr(slave)[3] & termios.ECHO, 10, 0.05)
        assert off, "echo was never turned off at the prompt"
        if sig == "ctrl-c":
            os.write(master, b"\x03")
            want = signal.SIGINT
        else:
            want = getattr(signal, sig)
            p.send_signal(want)
        rc = p.wait(10)
        assert rc == -want, "imapfs exited with %r, not by %s" % (rc, sig)
        assert termios.tcgetattr(slave)[3] & termios.ECHO, "the terminal was left without echo"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        helpers.untrack(("prompt", p.pid))
        os.close(master)
        os.close(slave)


# -- relative paths and the daemon -------------------------------------------------------

def test_relative_paths_in_daemon_mode(scratch_dovecot, imapfs_bin, tmp_path):
    """-o cache_dir=relative/dir (and relative password_file, ca_file)
    from a working directory, without -f: the cache is written there, not
    under / where the daemon runs."""
    server = scratch_dovecot
    folder = wh.unique_folder("Relative")
    bodies = seed_folder(server, folder, [1500, 200 * 1024])
    top = "h12-rel-%d-%d" % (os.getpid(), time.monotonic_ns() % 100000)
    assert not os.path.exists("/" + top)
    work = tmp_path / "work"
    work.mkdir()
    for key in ("CA_FILE", "PASSWORD_FILE"):
        with open(server.env[key], "rb") as f:
            (work / key.lower()).write_bytes(f.read())
        (work / key.lower()).chmod(0o600)
    wrapper = str(tmp_path / "imapfs-in-work")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\ncd "%s" && exec "%s" "$@"\n' % (work, imapfs_bin))
    os.chmod(wrapper, 0o755)
    opts = ["cache_dir=%s/cache" % top, "ca_file=ca_file", "password_file=./password_file"]
    try:
        mnt, pid = _daemon(wrapper, server, tmp_path, opts, None)
        try:
            read_all_and_compare(types.SimpleNamespace(path=mnt), folder, bodies)
        finally:
            _stop_daemon(mnt, pid)
        cache = work / top / "cache"
        assert block_files(str(cache)), "no block file under %s: %s" % (
            cache, snapshot(str(work)).keys())
        assert os.listdir(str(cache / "folders")), "no saved listing under %s" % cache
        assert not os.path.exists("/" + top), "the daemon wrote its cache under /%s" % top
    finally:
        shutil.rmtree("/" + top, ignore_errors=True)
