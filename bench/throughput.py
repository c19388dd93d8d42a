#!/usr/bin/env python3
"""Cold-scan throughput: neardup against czkawka_cli, side by side, plus the floor.

    python3 bench/throughput.py [--corpus DIR] [--count 300] [--runs 1] [--skip-plain]

Prints numbers, asserts nothing about speed:
  1. photos/s of a cold `neardup scan` (no cache) and a cold `czkawka_cli image`
     (its cache in a fresh temporary folder) on the same corpus, their ratio,
     neardup's seconds per stage (from `--timings`) and the peak RSS of both;
  2. the floor: decoding the corpus at the scale neardup uses, and bare model
     inference as many times, both on every core (examples/floor.rs), and how
     far the pipeline is from decode + inference;
  3. fast path against plain decode: the groups of `neardup scan` with the
     reduced-scale JPEG decode and with `--plain-decode` (every pixel, the
     same decoder) on ../shared/bench/synth-dev, holidays-dev and the camera
     corpus, which must be the same groups, and the largest change of a
     pair's distance.

The corpus (300 camera-sized 12 MP JPEGs by default) is made once with
../shared/bench/make_camera_corpus.py (needs `pip install pillow numpy`) and
kept in /tmp/neardup-camera-<count> between runs. czkawka_cli is installed
with `cargo install czkawka_cli --locked` when absent.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "neardup")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "floor")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "bench")


def run(cmd, env=None, stdout=subprocess.DEVNULL):
    """Run cmd; return (seconds, peak RSS in MB, stdout bytes or None)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    out = p.stdout.read() if p.stdout else None
    if os.waitstatus_to_exitcode(status) not in (0,):
        sys.exit(f"failed: {' '.join(cmd)}")
    return dt, usage.ru_maxrss / 1024.0, out


def ensure_corpus(path, count):
    if os.path.isdir(path) and len(os.listdir(path)) >= count:
        return
    try:
        import numpy  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pillow", "numpy"], check=True)
    subprocess.run([sys.executable, os.path.join(SHARED, "make_camera_corpus.py"),
                    os.path.join(SHARED, "synth-dev", "images"), path, "--count", str(count)], check=True)


def ensure_czkawka():
    cz = shutil.which("czkawka_cli") or os.path.expanduser("~/.cargo/bin/czkawka_cli")
    if not os.path.exists(cz):
        print("installing czkawka_cli (cargo install czkawka_cli --locked) ...", flush=True)
        subprocess.run(["cargo", "install", "czkawka_cli", "--locked"], check=True)
    return cz


def groups_of(report_path):
    with open(report_path) as f:
        r = json.load(f)
    return sorted(sorted(g["files"]) for g in r["groups"])


def distances_of(report_path):
    with open(report_path) as f:
        r = json.load(f)
    return {tuple(sorted((p["a"], p["b"]))): p["distance"] for g in r["groups"] for p in g["pairs"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--runs", type=int, default=1, help="cold runs of each tool (the best is kept)")
    ap.add_argument("--skip-plain", action="store_true", help="skip the fast-vs-plain decode check")
    a = ap.parse_args()
    corpus = a.corpus or f"/tmp/neardup-camera-{a.count}"
    ensure_corpus(corpus, a.count)
    n = sum(len(f) for _, _, f in os.walk(corpus))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "neardup", "--example", "floor"],
                   cwd=ROOT, check=True)
    cz = ensure_czkawka()
    work = tempfile.mkdtemp(prefix="neardup-throughput-")
    try:
        # Warm the page cache so that both tools read from memory.
        for dirpath, _, files in os.walk(corpus):
            for f in files:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    while fh.read(1 << 20):
                        pass
        nd, czk = [], []
        report = os.path.join(work, "report.json")
        for i in range(a.runs):
            nd.append(run([BIN, "scan", "--no-cache", "--timings", "--quiet", "--format", "json",
                           "-o", report, corpus]))
            env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, f"czkawka-cache-{i}"),
                       XDG_CONFIG_HOME=os.path.join(work, f"czkawka-config-{i}"))
            czk.append(run([cz, "image", "-d", corpus], env))
        with open(report) as f:
            stats = json.load(f)["stats"]
        t_nd, rss_nd, _ = min(nd)
        t_cz, rss_cz, _ = min(czk)
        print(f"corpus: {corpus} ({n} files), {os.cpu_count()} cores")
        print(f"neardup scan (cold, no cache): {t_nd:7.2f} s  {n / t_nd:6.1f} photos/s  peak RSS {rss_nd:6.0f} MB")
        print(f"czkawka_cli image (cold)     : {t_cz:7.2f} s  {n / t_cz:6.1f} photos/s  peak RSS {rss_cz:6.0f} MB")
        print(f"neardup / czkawka photos/s   : {t_cz / t_nd:5.2f}x")
        s = stats.get("seconds") or {}
        print("neardup stages (s): " + "  ".join(f"{k} {v:.3f}" for k, v in s.items()))
        # The floor.
        _, _, out = run([FLOOR, corpus], stdout=subprocess.PIPE)
        fl = json.loads(out)
        floor = fl["decode_seconds"] + fl["inference_seconds"]
        print(f"floor: decode only {fl['decode_seconds']:.2f} s ({fl['decoded'] / fl['decode_seconds']:.1f} photos/s), "
              f"bare inference x{fl['inference_runs']} {fl['inference_seconds']:.2f} s, "
              f"sum {floor:.2f} s on {fl['threads']} threads")
        print(f"pipeline / floor: {t_nd / floor:5.2f}x")
        if not a.skip_plain:
            sets = [(name, os.path.join(SHARED, name, "images")) for name in ("synth-dev", "holidays-dev")]
            sets.append(("the camera corpus", corpus))
            for name, images in sets:
                fast, plain = os.path.join(work, "fast.json"), os.path.join(work, "plain.json")
                tf, _, _ = run([BIN, "scan", "--no-cache", "--quiet", "--format", "json", "-o", fast, images])
                tp, _, _ = run([BIN, "scan", "--no-cache", "--plain-decode", "--quiet", "--format", "json",
                                "-o", plain, images])
                gf, gp = groups_of(fast), groups_of(plain)
                df, dp = distances_of(fast), distances_of(plain)
                common = set(df) & set(dp)
                drift = max((abs(df[k] - dp[k]) for k in common), default=0.0)
                same = "identical groups" if gf == gp else "DIFFERENT groups"
                print(f"fast vs plain decode on {name}: {same} ({len(gf)} vs {len(gp)} groups; "
                      f"{len(common)} pairs in both, largest distance change {drift:.4f}; "
                      f"{tf:.1f} s vs {tp:.1f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
