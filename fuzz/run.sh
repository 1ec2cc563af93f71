#!/usr/bin/env bash
# Builds every fuzz target (fuzz/*_fuzz.cpp) and runs each for N seconds
# (default 20) on a scratch copy of its committed seed corpus
# fuzz/corpus/<name>/, so the committed seeds stay as they are. Crashes are
# written to fuzz/out/<name>/ and make the script fail; so does a unit
# slower than 10 s.
#   fuzz/run.sh [seconds]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-20}"

"$root/fuzz/build.sh"

status=0
for src in fuzz/*_fuzz.cpp; do
  name="$(basename "$src" _fuzz.cpp)"
  work="$root/fuzz/out/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "fuzz/corpus/$name" ]; then cp -r "fuzz/corpus/$name/." "$work/corpus/"; fi
  echo "run.sh: $name for ${seconds}s"
  if ! "$root/build-fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" 2>"$work/log"; then
    status=1
    echo "run.sh: $name FAILED; see $work/log and $work/artifacts/" >&2
  fi
  grep -E '^(#[0-9]+ *DONE|Done [0-9]+ runs|stat::number_of_executed_units)' "$work/log" || true
  tail -n 1 "$work/log"
done
exit $status
