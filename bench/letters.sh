#!/usr/bin/env bash
# Letters benchmark: apply the 1,200 example staff on the embedded defaults
# in a temp dir, then time `homebase letters` (plan, bundles read, 1,200
# letters and handover sheets laid out into one A4 PDF with embedded fonts)
# and report wall seconds, peak RSS and CPU seconds (/usr/bin/time -v; on a
# shared machine user+sys varies less than wall time). Ends with:
#   RESULT letters_s=… letters_mib=… pages=… user_s=… sys_s=…
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/homebase"
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/examples"
cp "$root/examples/staff.csv" "$root/examples/inventory.csv" "$work/examples/"
cd "$work"
"$bin" apply examples/staff.csv --yes --no-progress >/dev/null 2>err.txt || { cat err.txt >&2; exit 1; }
/usr/bin/time -v -o time.txt "$bin" letters examples/staff.csv --out letters.pdf >/dev/null 2>err.txt \
  || { cat err.txt >&2; exit 1; }
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' time.txt)
kib=$(awk -F': ' '/Maximum resident set size/ { print $2 }' time.txt)
user=$(awk -F': ' '/User time \(seconds\)/ { print $2 }' time.txt)
sys=$(awk -F': ' '/System time \(seconds\)/ { print $2 }' time.txt)
pages=$(pdfinfo letters.pdf 2>/dev/null | awk '/^Pages:/ { print $2 }' || echo "?")
size=$(du -k letters.pdf | cut -f1)
echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $(tail -1 err.txt)"
echo "letters.pdf: ${pages} pages, ${size} KiB"
echo "RESULT letters_s=$wall letters_mib=$((kib / 1024)) pages=$pages user_s=$user sys_s=$sys"
