#!/usr/bin/env bash
# Peak resident memory of `neardup scan --threads 2` over hostile and normal
# photos, one folder per case (made by bench/make_decode_memory_files.py;
# the 12 MP camera JPEGs by ../shared/bench/make_camera_corpus.py when
# CAMERA points at a folder of them).
#
#   pip install pillow numpy
#   bench/decode_memory.sh [NEARDUP ...]
#
# Each binary given is measured in turn (default: target/release/neardup),
# e.g. a build of the commit before the change, then this one. Prints, per
# case: photos embedded, skip kinds, peak RSS (MB, /usr/bin/time -v) and wall
# time. Env: WORK (default /tmp/ndmem) for the files, CAMERA for the camera
# corpus folder, THREADS (default 2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-/tmp/ndmem}
threads=${THREADS:-2}
bins=("$@")
[ ${#bins[@]} -eq 0 ] && bins=("$here/../target/release/neardup")
python3 "$here/make_decode_memory_files.py" "$work"
cases=(png-rgba-16k png-rgba-16k-x2 jpeg-progressive-444-16k jpeg-progressive-444-16k-x2
       sparse-3.9GB dev-zero-link png-panorama-20000x4000 tiff16-45mp tiff16-20000x4000)
[ -n "${CAMERA:-}" ] && cases+=("$CAMERA")
formats="$here/../tests/formats"
[ -d "$formats" ] && cases+=("$formats")
for bin in "${bins[@]}"; do
  echo "== $bin"
  printf '%-30s %7s %-40s %9s %7s\n' case photos skipped peak_MB wall_s
  for c in "${cases[@]}"; do
    dir=$c
    [ -d "$dir" ] || dir="$work/$c"
    log=$(mktemp)
    json=$(mktemp)
    start=$(date +%s.%N)
    /usr/bin/time -v "$bin" scan --no-cache --quiet --threads "$threads" --mode edits \
      --format json "$dir" >"$json" 2>"$log" || true
    end=$(date +%s.%N)
    rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$log")
    summary=$(python3 - "$json" <<'PY'
import json, sys, collections
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("- (no report)")
    sys.exit()
kinds = collections.Counter(s["kind"] for s in r["stats"]["skipped"])
photos = r["stats"]["photos_embedded"]
print(photos, ",".join(f"{k}x{n}" for k, n in sorted(kinds.items())) or "-")
PY
)
    printf '%-30s %7s %-40s %9d %7.1f\n' "$(basename "$c")" ${summary%% *} "${summary#* }" \
      $((rss_kb / 1024)) "$(echo "$end - $start" | bc)"
    rm -f "$log" "$json"
  done
done
