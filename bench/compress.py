#!/usr/bin/env python3
"""What COMPRESS=DEFLATE buys and costs, over simulated links: the measurement
behind -o compress=auto (README, "Compression").

    IMAPFS_BIN=./imapfs python3 bench/compress.py [--keep] [--profiles a,b,...]

Starts a private Dovecot with imap_zlib (scripts/dovecot-env --compress),
fills it with scripts/gen-mail (folder Big: 2000 text messages, 8 MB; Huge:
one 20 MB message, mostly a base64 attachment), and for each link profile
and each of -o compress=no / yes mounts imapfs (imaps://, fresh cache) through
tests/integration/link_helpers.Link -- a relay on 127.0.0.1 that delays each
direction by RTT/2 and paces it to the profile's bandwidth -- and times:

    list    ls -l Big                 (2000 messages' listing data)
    read    cat of 300 messages of Big
    huge    cat of the 20 MB message

It also prints the bytes that crossed the link, imapfs's CPU seconds, and
the round trip imapfs measured at login (CAPABILITY, as -o compress=auto
sees it).  "loopback" is imapfs straight on Dovecot, no relay.  Not part of
`make check`; takes a few minutes."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import link_helpers  # noqa: E402
import mailgen  # noqa: E402

# name: (rtt ms, Mbit/s); None = no relay
PROFILES = {
    "loopback": None,
    "relay": (0, None),
    "lan": (0.5, 1000),
    "lan100": (1, 100),
    "wlan": (2, 300),
    "wifi": (3, 100),
    "metro": (6, 300),
    "cable": (12, 50),
    "fastwan": (20, 500),
    "dsl": (20, 20),
    "far": (80, 8),
}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def measure(imapfs, env, work, profile, mode):
    spec = PROFILES[profile]
    link = None
    port = env["IMAPS_PORT"]
    if spec is not None:
        link = link_helpers.Link(port, rtt_ms=spec[0], mbit=spec[1])
        port = link.port
    mnt = tempfile.mkdtemp(dir=work, prefix="mnt-")
    cache = tempfile.mkdtemp(dir=work, prefix="cache-")
    errp = os.path.join(work, "imapfs-%s-%s.stderr" % (profile, mode))
    opts = "ca_file=%s,password_file=%s,cache_dir=%s,compress=%s" % (
        env["CA_FILE"], env["PASSWORD_FILE"], cache, mode)
    ef = open(errp, "wb")
    p = subprocess.Popen([imapfs, "-d", "-o", opts, "imaps://alice@localhost:%d" % port, mnt],
                         stdout=ef, stderr=ef, stdin=subprocess.DEVNULL)
    out = {}
    try:
        deadline = time.monotonic() + 60
        while not os.path.ismount(mnt):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mount failed: " + open(errp, errors="replace").read()[-2000:])
            time.sleep(0.05)
        big = os.path.join(mnt, "Big")
        t = time.perf_counter()
        names = sorted(os.listdir(big))
        for n in names:
            os.stat(os.path.join(big, n))
        out["list"] = time.perf_counter() - t
        t = time.perf_counter()
        for n in names[:300]:
            with open(os.path.join(big, n), "rb") as f:
                while f.read(1 << 20):
                    pass
        out["read"] = time.perf_counter() - t
        huge = os.path.join(mnt, "Huge")
        h = os.path.join(huge, os.listdir(huge)[0])
        t = time.perf_counter()
        with open(h, "rb") as f:
            while f.read(1 << 20):
                pass
        out["huge"] = time.perf_counter() - t
        out["cpu"] = cpu_seconds(p.pid)
    finally:
        subprocess.run(["fusermount3", "-u", mnt], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        ef.close()
        if link:
            out["down"], out["up"] = link.counts()
            link.close()
        shutil.rmtree(cache, ignore_errors=True)
    text = open(errp, errors="replace").read()
    rtts = re.findall(r"round trip ([0-9.]+) ms", text)
    out["rtt"] = float(rtts[0]) if rtts else None
    out["compressed"] = "compressing the connections" in text
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    imapfs = os.path.abspath(os.environ.get("IMAPFS_BIN", os.path.join(REPO, "imapfs")))
    base = tempfile.mkdtemp(prefix="imapfs-bench-compress-")
    os.chmod(base, 0o711)
    d = os.path.join(base, "dovecot")
    try:
        run([sys.executable, os.path.join(REPO, "scripts", "dovecot-env"), "start", d, "--compress"])
        run([sys.executable, os.path.join(REPO, "scripts", "gen-mail"), d, "--big=2000", "--huge", "-q"],
            timeout=600)
        env = mailgen.load_env(d)
        print("%-9s %-4s %7s %7s %7s %8s %8s %6s %8s" % (
            "profile", "mode", "list s", "read s", "huge s", "down MB", "up KB", "cpu s", "rtt ms"))
        for prof in a.profiles.split(","):
            for mode in ("no", "yes"):
                r = measure(imapfs, env, base, prof, mode)
                print("%-9s %-4s %7.2f %7.2f %7.2f %8s %8s %6.2f %8s" % (
                    prof, mode, r["list"], r["read"], r["huge"],
                    "%.1f" % (r["down"] / 1e6) if "down" in r else "-",
                    "%.0f" % (r["up"] / 1e3) if "up" in r else "-", r["cpu"],
                    "%.2f" % r["rtt"] if r["rtt"] is not None else "-"), flush=True)
    finally:
        subprocess.run([sys.executable, os.path.join(REPO, "scripts", "dovecot-env"), "stop", d])
        if a.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
