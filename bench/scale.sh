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
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 "$root/scripts/gen_staff.py" --count "$N" --seed 7 --out staff.csv --inventory inventory.csv >/dev/null
# The shipped configuration, pointed at this stock list and a pool that fits N.
sed -e 's#stock: examples/inventory.csv#stock: inventory.csv#' "$root/homebase.yaml" > homebase.yaml
sed -i -e "s/seats: 1400/seats: $((N * 2))/" -e "s/seats: 1300/seats: $((N * 2))/" homebase.yaml

measure() { # prints "seconds mib"
  /usr/bin/time -f '%e %M' -o time.txt "$@" >/dev/null 2>err.txt || { cat err.txt >&2; exit 1; }
  read -r secs kib < time.txt
  echo "$secs $((kib / 1024))"
}
read -r plan_s plan_mib < <(measure "$bin" plan staff.csv --format json)
read -r apply_s apply_mib < <(measure "$bin" apply staff.csv --yes --no-progress)
read -r again_s again_mib < <(measure "$bin" plan staff.csv --detailed-exitcode)
echo "N=$N plan: ${plan_s}s ${plan_mib} MiB · apply: ${apply_s}s ${apply_mib} MiB · second plan: ${again_s}s ${again_mib} MiB"
echo "RESULT plan_s=$plan_s plan_mib=$plan_mib apply_s=$apply_s apply_mib=$apply_mib"
