#!/usr/bin/env python3
"""Cold scan vs warm rescan vs rescan after a move, with the embedding cache.

Prints wall-clock seconds and ratios measured side by side in one run, and
czkawka_cli's cold and warm runs on the same corpus when it is installed
(`cargo install czkawka_cli --locked`). Numbers, not assertions.

    python3 bench/cache_bench.py [CORPUS] [--runs N] [--bin NEARDUP] [--before OTHER]

--bin times that binary instead of building target/release/neardup; --before
times a second binary (another build) on the same corpus, each with its own
cache, warm runs interleaved, and prints both and their ratio.

CORPUS defaults to /tmp/neardup-camera, made with
../shared/bench/make_camera_corpus.py (300 camera-sized JPEGs) when absent.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "neardup")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "bench")


def timed(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default="/tmp/neardup-camera")
    ap.add_argument("--runs", type=int, default=3, help="warm runs to take the median of")
    ap.add_argument("--bin", help="the neardup binary to time (default: build target/release)")
    ap.add_argument("--before", help="another neardup binary, timed side by side")
    a = ap.parse_args()
    if not os.path.isdir(a.corpus):
        subprocess.run([sys.executable, os.path.join(SHARED, "make_camera_corpus.py"),
                        os.path.join(SHARED, "synth-dev", "images"), a.corpus, "--count", "300"], check=True)
    if a.bin is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = a.bin or BIN
    n = sum(len(f) for _, _, f in os.walk(a.corpus))
    work = tempfile.mkdtemp(prefix="neardup-cache-bench-")
    if a.before:
        try:
            side_by_side(a, binary, n, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        db = os.path.join(work, "cache.sqlite")
        scan = lambda root: timed([binary, "scan", "--quiet", "--format", "json", "--cache", db, root])
        cold = scan(a.corpus)
        warm = statistics.median(scan(a.corpus) for _ in range(a.runs))
        moved_to = os.path.join(work, "moved")
        shutil.move(a.corpus, moved_to)
        try:
            moved = scan(moved_to)
        finally:
            shutil.move(moved_to, a.corpus)
        print(f"corpus: {a.corpus} ({n} files)")
        print(f"neardup cold scan          : {cold:8.3f} s  ({n / cold:6.1f} photos/s)")
        print(f"neardup warm rescan        : {warm:8.3f} s  (median of {a.runs}; cold/warm = {cold / warm:6.1f}x)")
        print(f"neardup rescan after a move: {moved:8.3f} s  (cold/moved = {cold / moved:6.1f}x)")
        cz = shutil.which("czkawka_cli")
        if cz:
            env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "czkawka-cache"))
            cmd = [cz, "image", "-d", a.corpus]
            czc = timed(cmd, env)
            czw = statistics.median(timed(cmd, env) for _ in range(a.runs))
            print(f"czkawka_cli cold           : {czc:8.3f} s  ({n / czc:6.1f} photos/s)")
            print(f"czkawka_cli warm           : {czw:8.3f} s  (neardup warm / czkawka warm = {warm / czw:5.2f})")
        else:
            print("czkawka_cli: not installed (cargo install czkawka_cli --locked), not timed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def side_by_side(a, binary, n, work):
    """Warm rescans of two builds, interleaved, each with its own cache."""
    bins = {"before": a.before, "after": binary}
    dbs = {k: os.path.join(work, f"{k}.sqlite") for k in bins}
    scan = lambda k: timed([bins[k], "scan", "--quiet", "--format", "json", "--cache", dbs[k], a.corpus])
    cold = {k: scan(k) for k in bins}
    warm = {k: [] for k in bins}
    for _ in range(a.runs):
        for k in bins:
            warm[k].append(scan(k))
    print(f"corpus: {a.corpus} ({n} files)")
    for k in bins:
        w = statistics.median(warm[k])
        print(f"{k:6} {bins[k]}: cold {cold[k]:8.3f} s, warm rescan {w:8.3f} s "
              f"(median of {a.runs}; min {min(warm[k]):.3f} s)")
    ratio = statistics.median(warm["after"]) / statistics.median(warm["before"])
    print(f"warm rescan after / before = {ratio:5.3f}")


if __name__ == "__main__":
    main()
