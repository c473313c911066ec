"""The source tree's rules, checked: scripts/check-includes passes on src/
and fails on a tree that breaks an edge, names a missing header, hides a
folder in an include, or declares a cycle; no file in src/ is over 800
lines; tests/unit mirrors src/'s folders."""

import os
import subprocess

import helpers

CHECK = os.path.join(helpers.SCRIPTS, "check-includes")
MAX_LINES = 800
SRC = os.path.join(helpers.REPO, "src")


def run_check(src):
    return subprocess.run([helpers.PYTHON, CHECK, src], capture_output=True, text=True, timeout=60)


def test_src_follows_its_edges():
    r = run_check(SRC)
    assert r.returncode == 0, r.stdout + r.stderr


def _tree(tmp_path, files, edges):
    src = tmp_path / "src"
    for rel, text in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (src / "README").write_text("BEGIN EDGES\n%s\nEND EDGES\n" % edges)
    return str(src)


EDGES = "main -> *\nmodel -> util\nutil -> nothing"


def test_forbidden_edge_fails(tmp_path):
    src = _tree(tmp_path, {"main.c": '#include "model/m.h"\n', "model/m.h": "",
                           "util/u.c": '#include "model/m.h"\n'}, EDGES)
    r = run_check(src)
    assert r.returncode == 1 and "util may not include model/m.h" in r.stdout, r.stdout


def test_missing_header_and_bare_name_fail(tmp_path):
    src = _tree(tmp_path, {"model/m.c": '#include "u.h"\n#include "util/gone.h"\n',
                           "util/u.h": ""}, EDGES)
    r = run_check(src)
    assert r.returncode == 1, r.stdout
    assert '#include "u.h" names no file of src/' in r.stdout, r.stdout
    assert '#include "util/gone.h" names no file of src/' in r.stdout, r.stdout


def test_cycle_in_edges_fails(tmp_path):
    src = _tree(tmp_path, {"model/m.c": ""}, "main -> *\nmodel -> util\nutil -> model")
    r = run_check(src)
    assert r.returncode == 1 and "cycle" in r.stdout, r.stdout


def test_no_source_file_over_800_lines():
    long = []
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith((".c", ".h")):
                p = os.path.join(root, n)
                with open(p, encoding="utf-8", errors="replace") as f:
                    lines = sum(1 for _ in f)
                if lines > MAX_LINES:
                    long.append("%s: %d" % (os.path.relpath(p, helpers.REPO), lines))
    assert not long, "over %d lines: %s" % (MAX_LINES, ", ".join(long))


def test_unit_tests_mirror_src():
    folders = {d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d))}
    unit = os.path.join(helpers.REPO, "tests", "unit")
    for d in os.listdir(unit):
        p = os.path.join(unit, d)
        if os.path.isdir(p) and any(n.startswith("test_") for n in os.listdir(p)):
            assert d in folders, "tests/unit/%s has no src/%s" % (d, d)
    loose = [n for n in os.listdir(unit) if n.endswith(".c")]
    assert not loose, "unit tests outside a folder: %s" % loose


def test_code_is_formatted():
    """The C code is as .clang-format writes it (clang-format -i fixes it)."""
    files = []
    for top in ("src", os.path.join("tests", "unit"), os.path.join("tests", "fuzz")):
        for root, _, names in os.walk(os.path.join(helpers.REPO, top)):
            files += [os.path.join(root, n) for n in names if n.endswith((".c", ".h"))]
    r = subprocess.run(["clang-format", "--dry-run", "--Werror"] + sorted(files),
                       cwd=helpers.REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "not formatted (run clang-format -i):\n" + r.stderr[-3000:]
