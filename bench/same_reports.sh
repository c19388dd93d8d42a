#!/usr/bin/env bash
# Byte identity of the JSON reports of two builds (a refactor must not change
# one byte): scans the sample album and the three shared benchmarks with each
# binary, with default flags and with `--mode edits --mirror`, --no-cache, one
# seal key, and compares the reports with cmp.
#
#   bash bench/same_reports.sh OLD_BINARY NEW_BINARY [SET...]
#   (SET: album synth-dev holidays-dev overlap-dev; default all four)
set -uo pipefail
OLD=$1; NEW=$2; shift 2
SETS=${*:-album synth-dev holidays-dev overlap-dev}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d)
export NEARDUP_SEAL_KEY="$OUT/seal.key"
printf 'neardup same-reports seal key!!!' > "$NEARDUP_SEAL_KEY"
fail=0
for s in $SETS; do
  if [ "$s" = album ]; then d="$ROOT/samples/album"; else d="$ROOT/../shared/bench/$s/images"; fi
  for flags in "" "--mode edits --mirror"; do
    name="$s${flags:+-edits-mirror}"
    # shellcheck disable=SC2086
    "$OLD" scan "$d" --no-cache $flags -o "$OUT/$name.old.json" 2>/dev/null || { echo "FAIL: old scan of $name"; fail=1; continue; }
    # shellcheck disable=SC2086
    "$NEW" scan "$d" --no-cache $flags -o "$OUT/$name.new.json" 2>/dev/null || { echo "FAIL: new scan of $name"; fail=1; continue; }
    if cmp -s "$OUT/$name.old.json" "$OUT/$name.new.json"; then
      echo "same:      $name"
    else
      echo "DIFFERENT: $name (diff $OUT/$name.old.json $OUT/$name.new.json)"; fail=1
    fi
  done
done
[ $fail = 0 ] && echo "BYTE-IDENTICAL" || echo "FAIL"
exit $fail
