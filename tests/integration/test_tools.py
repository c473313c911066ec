"""Ordinary tools over the whole tree: find, grep."""

import os
import subprocess

import pytest

import helpers
from helpers import mailgen


@pytest.mark.slow
@pytest.mark.deadline(120)
@pytest.mark.parametrize("shared_mount", ["imaps"], indirect=True)   # once is enough
def test_find_counts_every_message(shared_mount, imap):
    total = 0
    for f in mailgen.list_folders(imap):
        typ, data = imap.status(mailgen.qmbox(f), "(MESSAGES)")
        total += int(data[0].rsplit(b"MESSAGES ", 1)[1].rstrip(b")"))
    # every message, and nothing else but the control files .receive-folders and .status
    r = subprocess.run("find %s -type f -name '*.eml' | wc -l" % _q(shared_mount.path), shell=True,
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == total
    r = subprocess.run("find %s -type f ! -name '*.eml'" % _q(shared_mount.path), shell=True,
                       capture_output=True, text=True, timeout=100)
    assert sorted(r.stdout.splitlines()) == [shared_mount.path + "/.receive-folders",
                                             shared_mount.path + "/.status"], r.stdout


@pytest.mark.slow
@pytest.mark.deadline(300)
@pytest.mark.parametrize("shared_mount", ["imaps"], indirect=True)   # once is enough
def test_grep_finds_the_token(shared_mount, manifest):
    token = manifest["token"]
    k = manifest["known"]["token"]
    r = subprocess.run(["grep", "-rl", "--", token, shared_mount.path],
                       capture_output=True, text=True, timeout=280)
    # test_live modifies Scratch; a (default 10 s) cached listing may still
    # show a message expunged there, so read errors are tolerated in Scratch only
    errors = [ln for ln in r.stderr.splitlines()
              if os.path.join(shared_mount.path, "Scratch") not in ln]
    assert r.returncode == 0 or (r.returncode == 2 and not errors), r.stderr
    found = r.stdout.splitlines()
    assert len(found) == 1, found
    rel = os.path.relpath(found[0], shared_mount.path)
    assert os.path.dirname(rel) == os.path.join(*k["folder"].split("/"))
    assert helpers.uid_of(os.path.basename(rel)) == k["uid"]


def _q(s):
    import shlex
    return shlex.quote(s)
