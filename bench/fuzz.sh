#!/usr/bin/env bash
# Fuzzing: every target of fuzz/ (one per reader of outside data) runs for
# SECONDS (default 60) on a copy of its seed corpus (fuzz/corpus/TARGET),
# one after the other (the machines have 2 cores). Prints a line per target
# and ends with one line:
#   RESULT targets=… execs=… crashes=… timeouts=…
# A crash or timeout leaves its input in fuzz/artifacts/TARGET/; replay it
# with `cargo +nightly fuzz run -O -s none TARGET FILE` (from fuzz/).
#
# Built without a sanitizer (`-s none`): homebase is safe Rust, so a crash is
# a panic, an abort or a timeout, which libFuzzer catches without ASan; the
# build is then a plain optimised one with coverage counters, minutes shorter
# on 2 cores.
#
#   bench/fuzz.sh [SECONDS]        TARGETS="config ldif" limits the targets
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
fuzz="$root/fuzz"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cd "$fuzz"
started=$(date +%s)
cargo +nightly fuzz build -O -s none 2>&1 | grep -v '^\s*Compiling' || true
echo "build: $(($(date +%s) - started)) s"

targets=${TARGETS:-$(cargo +nightly fuzz list)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

total_targets=0 total_execs=0 crashes=0 timeouts=0
for target in $targets; do
  total_targets=$((total_targets + 1))
  mkdir -p "$work/$target" "$fuzz/artifacts/$target"
  log="$work/$target.log"
  touch "$work/$target.stamp"
  # New inputs go to the scratch corpus (first folder), the seeds stay as
  # they are in git. 10 s for one input is a hang: the slowest reader
  # takes milliseconds on the largest seed.
  status=0
  cargo +nightly fuzz run -O -s none "$target" "$work/$target" "$fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  crash=0 timeout=0
  for f in $(find "$fuzz/artifacts/$target" -type f -newer "$work/$target.stamp" 2>/dev/null); do
    case "$(basename "$f")" in
      timeout-*) timeout=$((timeout + 1)) ;;
      crash-* | oom-* | leak-*) crash=$((crash + 1)) ;;
    esac
  done
  if [ "$status" -ne 0 ] && [ $((crash + timeout)) -eq 0 ]; then
    # Failed without an input to show: a build or libFuzzer problem.
    crash=1
    tail -20 "$log" >&2
  fi
  if [ $((crash + timeout)) -ne 0 ]; then
    grep -m1 -A12 -E "panicked at|ERROR: libFuzzer" "$log" >&2 || true
  fi
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
  corpus=$(find "$work/$target" -type f | wc -l)
  printf '%-18s execs=%-9s execs_per_s=%-7s cov=%-6s new_inputs=%-5s crashes=%s timeouts=%s\n' \
    "$target" "$execs" "$((execs / (seconds > 0 ? seconds : 1)))" "${cov:-?}" "$corpus" "$crash" "$timeout"
  total_execs=$((total_execs + execs))
  crashes=$((crashes + crash))
  timeouts=$((timeouts + timeout))
done
echo "RESULT targets=$total_targets execs=$total_execs crashes=$crashes timeouts=$timeouts"
# A finding fails the run (CI runs this script for a few seconds a target).
[ $((crashes + timeouts)) -eq 0 ]
