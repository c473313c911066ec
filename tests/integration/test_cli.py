"""Command line: help, version, bad usage.  No server needed."""

import pytest

import helpers


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_exits_zero(imapfs_bin, tmp_path, flag):
    r = helpers.run_imapfs(imapfs_bin, [flag], workdir=str(tmp_path), timeout=10)
    assert r.returncode == 0, r
    out = r.stdout + r.stderr
    assert "imapfs" in out.lower() or "usage" in out.lower(), r
    # the documented options are mentioned
    for word in ("password_file", "ca_file"):
        assert word in out, "%s not in --help output\n%r" % (word, r)


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_exits_zero(imapfs_bin, tmp_path, flag):
    r = helpers.run_imapfs(imapfs_bin, [flag], workdir=str(tmp_path), timeout=10)
    assert r.returncode == 0, r
    assert (r.stdout + r.stderr).strip(), r


def _assert_usage_failure(r, mnt):
    assert r.returncode not in (0, "timeout"), r
    assert r.stderr.strip(), "no message on stderr\n%r" % r
    assert r.elapsed < 10, r
    assert not r.mounted, r
    assert not r.leftover, r


@pytest.mark.parametrize("args", [
    [],                                        # nothing at all
    ["MNT"],                                   # no URL
    ["imaps://alice@localhost:1"],             # no mountpoint
    ["http://alice@localhost:993", "MNT"],     # bad scheme
    ["imaps//alice@localhost", "MNT"],         # not a URL
    ["imaps://localhost:993", "MNT"],          # no user
    ["imaps://alice@localhost:notaport", "MNT"],
    ["-o", "names=bogus", "imaps://alice@localhost:993", "MNT"],
], ids=["no-args", "no-url", "no-mountpoint", "http-scheme", "not-a-url",
        "no-user", "bad-port", "bad-names"])
def test_bad_usage(imapfs_bin, tmp_path, args):
    mnt = str(tmp_path / "mnt")
    (tmp_path / "mnt").mkdir()
    argv = [mnt if a == "MNT" else a for a in args]
    try:
        r = helpers.run_imapfs(imapfs_bin, argv, mountpoint=mnt, timeout=10)
        _assert_usage_failure(r, mnt)
    finally:
        helpers.cleanup_mountpoint(mnt)


def test_missing_mountpoint_dir(imapfs_bin, dovecot, tmp_path):
    mnt = str(tmp_path / "does-not-exist")
    from conftest import url_for, default_opts
    r = helpers.run_imapfs(imapfs_bin, ["-o", ",".join(default_opts(dovecot)),
                                        url_for(dovecot, "imaps"), mnt],
                           mountpoint=mnt, workdir=str(tmp_path), timeout=15)
    try:
        assert r.returncode not in (0, "timeout"), r
        assert r.stderr.strip(), r
        assert not r.mounted and not r.leftover, r
    finally:
        helpers.cleanup_mountpoint(mnt)
