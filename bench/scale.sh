#!/usr/bin/env bash
# Scale benchmark: generate N staff (default 10,000) with enough stock, then
# time `plan` and `apply` on the embedded defaults in a temp dir and report
# wall seconds and peak RSS. Ends with one RESULT line.
#   bench/scale.sh [N]
set -euo pipefail
N=${1:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/homebase"
# BENCH_DIR=/dev/shm separates homebase's own cost from the disk's file-creation cost.
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" init . >/dev/null 2>&1
python3 "$root/scripts/gen_staff.py" --count "$N" --seed 7 --reference-date "$(date +%F)" --out staff.csv --inventory examples/inventory.csv >/dev/null
# Room for N: the admin pool (a /24 in the shipped profile) and the seat pools.
sed -i 's#pool: 10.20.192.0/24#pool: 10.20.192.0/20#' profiles/admin.yaml
sed -i -e "s/seats: 1400/seats: $((N * 2))/" -e "s/seats: 1300/seats: $((N * 2))/" homebase.yaml

measure() { # prints "wall_seconds mib cpu_seconds"
  /usr/bin/time -f '%e %M %U %S' -o time.txt "$@" >/dev/null 2>err.txt || { cat err.txt >&2; exit 1; }
  read -r secs kib user sys < time.txt
  echo "$secs $((kib / 1024)) $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
}
read -r plan_s plan_mib plan_cpu < <(measure "$bin" plan staff.csv --format json)
read -r apply_s apply_mib apply_cpu < <(measure "$bin" apply staff.csv --yes --no-progress)
read -r again_s again_mib again_cpu < <(measure "$bin" plan staff.csv --detailed-exitcode)
echo "N=$N in $work · load $(cut -d' ' -f1 /proc/loadavg)"
echo "plan: ${plan_s}s wall, ${plan_cpu}s CPU, ${plan_mib} MiB · apply: ${apply_s}s wall, ${apply_cpu}s CPU, ${apply_mib} MiB · second plan: ${again_s}s wall, ${again_mib} MiB"
echo "RESULT plan_s=$plan_s plan_mib=$plan_mib apply_s=$apply_s apply_mib=$apply_mib"
