#!/usr/bin/env python3
"""Two `neardup apply --action delete --execute` at once on crossed plans.

The issue's case: GROUPS groups of two byte-identical photos
(`root/pNNNN/x.bmp`, `y.bmp`), scanned with `--mode copies` into plan A; plan
B is A with every keeper swapped. Each round restores the files (same bytes
and mtimes), starts both applies at the same time and counts the groups that
lost both files. Numbers, not assertions: prints lost groups per round.

    python3 bench/apply_race.py [--bin target/debug/neardup] [--groups 500] [--rounds 8]

The photos are small random-noise BMPs written here (no image library
needed; the race is about files, not formats). The seal key and the cache
go to the temporary folder, never the user's.
"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bmp(w, h, rng):
    row = (w * 3 + 3) & ~3
    pixels = b"".join(bytes(rng.getrandbits(8) for _ in range(w * 3)) + b"\0" * (row - w * 3) for _ in range(h))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "neardup"))
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    rng = random.Random(7)
    work = tempfile.mkdtemp(prefix="neardup-race-")
    env = dict(os.environ)
    env["NEARDUP_SEAL_KEY"] = os.path.join(work, "seal.key")
    env["XDG_CACHE_HOME"] = os.path.join(work, "cache")
    pristine = os.path.join(work, "pristine")
    root = os.path.join(work, "root")
    for g in range(args.groups):
        d = os.path.join(pristine, "p%04d" % g)
        os.makedirs(d)
        data = bmp(48, 48, rng)
        for name in ("x.bmp", "y.bmp"):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    shutil.copytree(pristine, root)
    plan_a = os.path.join(work, "a.json")
    subprocess.run([args.bin, "scan", "--mode", "copies", "--no-cache", "-q", "-o", plan_a, root],
                   check=True, env=env)
    with open(plan_a) as f:
        plan = json.load(f)
    assert len(plan["groups"]) == args.groups, len(plan["groups"])
    for g in plan["groups"]:
        others = [m["path"] for m in g["members"] if m["path"] != g["keeper"]]
        g["keeper"] = others[0]
    plan_b = os.path.join(work, "b.json")
    with open(plan_b, "w") as f:
        json.dump(plan, f)
    print(f"{args.groups} groups, {args.rounds} rounds, {args.bin}")
    total = 0
    for r in range(args.rounds):
        shutil.rmtree(root)
        shutil.copytree(pristine, root)  # copy2: bytes and mtimes kept
        procs = [
            subprocess.Popen([args.bin, "apply", p, "--action", "delete", "--execute", "--json",
                              "--journal", os.path.join(work, f"{n}{r}.jsonl")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            for n, p in (("a", plan_a), ("b", plan_b))
        ]
        codes = [p.wait() for p in procs]
        lost = 0
        for g in range(args.groups):
            d = os.path.join(root, "p%04d" % g)
            if not any(os.path.isfile(os.path.join(d, n)) for n in ("x.bmp", "y.bmp")):
                lost += 1
        total += lost
        print(f"round {r + 1}: {lost} groups lost both files (exit codes {codes[0]}, {codes[1]})")
        sys.stdout.flush()
    print(f"total: {total} groups lost in {args.rounds} rounds")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
