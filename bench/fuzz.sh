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
# HOMEBASE_FUZZ_BUILD=dev builds on stable Rust without cargo-fuzz: a debug
# build with the coverage instrumentation cargo-fuzz asks rustc for (all of
# it stable flags when no sanitizer is wanted), a quicker build for slower
# runs. The targets are then run as programs, as cargo-fuzz would run them.
#
#   bench/fuzz.sh [SECONDS]        TARGETS="config ldif" limits the targets
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
fuzz="$root/fuzz"
build=${HOMEBASE_FUZZ_BUILD:-release}

cd "$fuzz"
started=$(date +%s)
if [ "$build" = dev ]; then
  triple=$(rustc -vV | sed -n 's/^host: //p')
  # --target keeps these flags off build scripts and proc macros.
  RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions" \
    cargo build --quiet --target "$triple" --bins
  bin="$fuzz/target/$triple/debug"
  all=$(sed -n 's/^path = "fuzz_targets\/\(.*\)\.rs"/\1/p' Cargo.toml)
else
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
  fi
  cargo +nightly fuzz build -O -s none 2>&1 | grep -v '^\s*Compiling' || true
  all=$(cargo +nightly fuzz list)
fi
echo "build ($build): $(($(date +%s) - started)) s"

# One target on its corpora, libFuzzer's flags after them.
run() {
  local target=$1
  shift
  if [ "$build" = dev ]; then
    "$bin/$target" -artifact_prefix="$fuzz/artifacts/$target/" "$@"
  else
    local corpora=()
    while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
      corpora+=("$1")
      shift
    done
    cargo +nightly fuzz run -O -s none "$target" "${corpora[@]}" -- "$@"
  fi
}

targets=${TARGETS:-$all}
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
  run "$target" "$work/$target" "$fuzz/corpus/$target" \
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
