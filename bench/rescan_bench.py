#!/usr/bin/env python3
"""Rescans of a library: unchanged, after adding photos, after removing them.

Times `neardup scan` on LIBRARY with one cache (default mode, --timings) and
prints each run's wall-clock seconds and stages, the neighbour search's
method (`update` when the stored index was brought up to date, the same as
the first scan's when it was remembered whole), and whether the report is
the same bytes as the first scan's of the same photos. Numbers, not
assertions; a shared machine is noisy, so the warm runs are repeated.

    python3 bench/rescan_bench.py LIBRARY NEW [--cache DB] [--runs N] [--bin NEARDUP]

LIBRARY is made with ../shared/bench/make_library.py (for example 10,000
photos); NEW is a folder of other photos (for example the same script's
next 100), copied into LIBRARY/zz-new for the "added" scans and removed
again afterwards. With --cache, an existing cache is used (a cold scan of
LIBRARY already in it saves its decode and embed); without, a cold scan
comes first.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "neardup")


def scan(binary, db, library, out):
    t = time.perf_counter()
    subprocess.run([binary, "scan", "--quiet", "--timings", "--cache", db, "-o", out, library],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    with open(out) as f:
        report = json.load(f)
    return wall, report


def without_timings(path):
    with open(path) as f:
        r = json.load(f)
    r["stats"].pop("seconds", None)
    return json.dumps(r, sort_keys=True)


def line(name, wall, report):
    s = report["stats"]["seconds"]
    ns = report["stats"].get("neighbour_search") or {}
    print(f"{name:<22} {wall:7.2f} s  walk {s['walk']:.2f}  decode+embed {s['decode_embed']:.2f}  "
          f"index {s['index']:.2f}  verify {s['verify']:.2f}  group {s['group']:.2f}  "
          f"| {report['stats']['photos_embedded']} photos, {report['stats']['geometric_checks']} "
          f"checks, method {ns.get('method')}, {ns.get('distances')} distances, "
          f"{report['stats']['groups']} groups")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("new")
    ap.add_argument("--cache", help="the cache to use (default: a new one, cold scan first)")
    ap.add_argument("--runs", type=int, default=3, help="warm runs to take the median of")
    ap.add_argument("--bin", default=BIN)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="neardup-rescan-bench-")
    db = a.cache or os.path.join(work, "cache.sqlite")
    added = os.path.join(a.library, "zz-new")
    if os.path.exists(added):
        sys.exit(f"{added} exists: remove it first")
    try:
        first = os.path.join(work, "first.json")
        wall, r = scan(a.bin, db, a.library, first)
        line("first scan", wall, r)
        warm = []
        for k in range(a.runs):
            out = os.path.join(work, f"warm{k}.json")
            wall, r = scan(a.bin, db, a.library, out)
            same = without_timings(out) == without_timings(first)
            line(f"unchanged #{k + 1}", wall, r)
            print(f"{'':<22} same report as the first scan: {same}")
            warm.append(wall)
        print(f"unchanged: median {statistics.median(warm):.2f} s")
        shutil.copytree(a.new, added)
        out = os.path.join(work, "added.json")
        wall, r = scan(a.bin, db, a.library, out)
        n_new = r["stats"]["photos_embedded"] - json.load(open(first))["stats"]["photos_embedded"]
        line(f"{n_new} added", wall, r)
        embed = r["stats"]["seconds"]["decode_embed"]
        print(f"{'':<22} without their decode+embed: {wall - embed:.2f} s")
        out2 = os.path.join(work, "added2.json")
        wall, r = scan(a.bin, db, a.library, out2)
        line(f"{n_new} added, again", wall, r)
        print(f"{'':<22} same report as the scan that added them: "
              f"{without_timings(out2) == without_timings(out)}")
        shutil.rmtree(added)
        out = os.path.join(work, "removed.json")
        wall, r = scan(a.bin, db, a.library, out)
        line(f"{n_new} removed", wall, r)
        print(f"{'':<22} same groups as the first scan: "
              f"{json.load(open(out))['groups'] == json.load(open(first))['groups']}")
    finally:
        if os.path.exists(added):
            shutil.rmtree(added)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
