#!/usr/bin/env bash
# Scale benchmark: generate N staff (default 10,000) with enough stock, then
# time `plan` and `apply` on the embedded defaults in a temp dir and report
# wall seconds and peak RSS. Ends with one RESULT line.
#   bench/scale.sh [--state postgres] [N]
#   bench/scale.sh --curve [SIZES…]   (default 1000 10000 100000)
# With --state postgres the apply runs a second time, on a fresh folder with
# the state on a private PostgreSQL 15 (tests/servers/postgres.sh: loopback,
# TLS, fsync on), and the RESULT line compares the two applies.
# --curve runs plan, apply and a second plan at each size (fresh folder
# each) and ends with the largest size's figures and `growth`: apply time
# per person at the largest size over that at the one before.
set -euo pipefail
state=sqlite
curve=()
if [ "${1:-}" = "--curve" ]; then
  shift
  curve=("${@:-1000 10000 100000}")
  # shellcheck disable=SC2206
  curve=(${curve[*]})
  set --
fi
if [ "${1:-}" = "--state" ]; then
  state=${2:?usage: scale.sh [--state postgres] [N]}
  shift 2
fi
case "$state" in sqlite|postgres) ;; *) echo "--state sqlite|postgres" >&2; exit 2 ;; esac
N=${1:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/homebase"
# BENCH_DIR=/dev/shm separates homebase's own cost from the disk's file-creation cost.
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then "$root/tests/servers/postgres.sh" stop "$pg_dir" || true; rm -rf "$pg_dir"; fi
  rm -rf "$work"
}
trap cleanup EXIT

measure() { # prints "wall_seconds mib cpu_seconds"
  /usr/bin/time -f '%e %M %U %S' -o time.txt "$@" >/dev/null 2>err.txt || { cat err.txt >&2; exit 1; }
  read -r secs kib user sys < time.txt
  echo "$secs $((kib / 1024)) $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
}

# A fresh folder with the embedded defaults and $1 generated staff, with
# room for them: address pools inside a /12 tunnel network, seats for all.
prepare() {
  local n=$1 dir=$2
  mkdir -p "$dir"
  cd "$dir"
  "$bin" init . >/dev/null 2>&1
  python3 "$root/scripts/gen_staff.py" --count "$n" --seed 7 --reference-date "$(date +%F)" --out staff.csv --inventory examples/inventory.csv >/dev/null
  sed -i 's#address: 10.20.0.1/16#address: 10.16.0.1/12#' homebase.yaml
  sed -i 's#pool: 10.20.0.0/17#pool: 10.16.0.0/14#' profiles/base.yaml
  sed -i 's#pool: 10.20.128.0/18#pool: 10.20.0.0/16#' profiles/field.yaml
  sed -i 's#pool: 10.20.192.0/24#pool: 10.21.0.0/20#' profiles/admin.yaml
  sed -i -e "s/seats: 1400/seats: $((n * 2))/" -e "s/seats: 1300/seats: $((n * 2))/" homebase.yaml
}

# plan, apply, second plan in the current folder: sets the *_s, *_mib, *_cpu.
run_size() {
  read -r plan_s plan_mib plan_cpu < <(measure "$bin" plan staff.csv --format json)
  read -r apply_s apply_mib apply_cpu < <(measure "$bin" apply staff.csv --yes --no-progress)
  read -r again_s again_mib again_cpu < <(measure "$bin" plan staff.csv --detailed-exitcode)
}

if [ ${#curve[@]} -gt 0 ]; then
  prev_n=""; prev_apply=""; growth=""
  for n in "${curve[@]}"; do
    prepare "$n" "$work/n$n"
    run_size
    echo "N=$n · load $(cut -d' ' -f1 /proc/loadavg) · plan ${plan_s}s ${plan_mib} MiB (CPU ${plan_cpu}s) · apply ${apply_s}s ${apply_mib} MiB (CPU ${apply_cpu}s) · second plan ${again_s}s ${again_mib} MiB"
    if [ -n "$prev_n" ]; then
      growth=$(awk -v a="$apply_s" -v n="$n" -v pa="$prev_apply" -v pn="$prev_n" 'BEGIN { printf "%.2f", (a / n) / (pa / pn) }')
    fi
    prev_n=$n; prev_apply=$apply_s
    cd "$work"; rm -rf "$work/n$n"
  done
  k=$((prev_n / 1000))k
  echo "RESULT plan_${k}_s=$plan_s apply_${k}_s=$apply_s replan_${k}_s=$again_s apply_${k}_mib=$apply_mib growth=${growth:-n/a}"
  exit 0
fi

prepare "$N" "$work/sqlite"
run_size
echo "N=$N in $work · load $(cut -d' ' -f1 /proc/loadavg)"
echo "plan: ${plan_s}s wall, ${plan_cpu}s CPU, ${plan_mib} MiB · apply: ${apply_s}s wall, ${apply_cpu}s CPU, ${apply_mib} MiB · second plan: ${again_s}s wall, ${again_mib} MiB"
if [ "$state" = sqlite ]; then
  echo "RESULT plan_s=$plan_s plan_mib=$plan_mib apply_s=$apply_s apply_mib=$apply_mib"
  exit 0
fi

# The same apply with the state on PostgreSQL, in a fresh folder (same staff,
# configuration and profiles), right after the SQLite one.
pg_dir=$(mktemp -d -p /tmp homebase-bench-pg.XXXXXX)
PG_PORT=${PG_PORT:-55439} "$root/tests/servers/postgres.sh" start "$pg_dir" >/dev/null
# shellcheck disable=SC1091
. "$pg_dir/env"
mkdir "$work/postgres"
cp -r "$work/sqlite/homebase.yaml" "$work/sqlite/profiles" "$work/sqlite/templates" \
  "$work/sqlite/examples" "$work/sqlite/staff.csv" "$work/postgres/" 2>/dev/null || true
cd "$work/postgres"
export HOMEBASE_STATE="$PG_URL&sslrootcert=$PG_CA&schema=bench" PGPASSWORD
read -r pg_apply_s pg_apply_mib pg_apply_cpu < <(measure "$bin" apply staff.csv --yes --no-progress)
"$bin" plan staff.csv --detailed-exitcode >/dev/null || { echo "the PostgreSQL apply left changes" >&2; exit 1; }
echo "apply with the state on PostgreSQL: ${pg_apply_s}s wall, ${pg_apply_cpu}s CPU, ${pg_apply_mib} MiB"
ratio=$(awk -v p="$pg_apply_s" -v s="$apply_s" 'BEGIN { printf "%.2f", p / s }')
echo "RESULT apply_s_sqlite=$apply_s apply_s_postgres=$pg_apply_s ratio=$ratio"
