"""Local hardening (audit of 26d6294): what imapfs keeps on the local disk
and the secrets it holds, against other users of the same machine.

- the cache directory is opened once, refused when it is a symbolic link,
  not ours or writable by others; nothing under it (blocks, listings, the
  folder directories, blocks/ and folders/ themselves) is reached through a
  planted symbolic link, and a FIFO in a block's place does not hang a read;
  the state directory of the receive-folder table likewise;
- every file imapfs makes is 0600 and every directory 0700, whatever the
  umask and whatever mode an earlier run (or the user) gave them.

Tests run as root: "another user" is `nobody` (chown)."""

import errno
import os
import pwd
import re
import stat

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
    """Links in place of a block file, of every saved listing, of the
    temporary name a listing is written to, and of a folder's block
    directory."""
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
    """A FIFO in a block file's place is removed, never opened for reading
    (which would wait for a writer forever)."""
    server = scratch_dovecot
    folder = wh.unique_folder("Fifo")
    bodies = seed_folder(server, folder, [3000, 200 * 1024])
    cache = str(tmp_path / "cache")
    m = cache_mount(server, imapfs_bin, tmp_path, cache, "first")
    try:
        read_all_and_compare(m, folder, bodies)
    finally:
        m.stop()
    for p in block_files(cache).values():
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
    assert any(re.search(r"/\d+-\d+-\d+$", p) for p, d, mode in entries), entries
    assert any(os.path.basename(p).startswith("receive-folders.") for p, d, mode in entries), \
        entries
    bad = ["%s %s %03o" % ("dir " if d else "file", os.path.relpath(p, str(tmp_path)), mode)
           for p, d, mode in entries if mode != (0o700 if d else 0o600)]
    assert not bad, "not private (want dirs 0700, files 0600):\n" + "\n".join(bad)
