#!/usr/bin/env bash
# Adaptive concurrency benchmark: the 1,200 example staff into fresh
# scim2-server instances, each run through a pass-through proxy that logs
# every request (method, status, duration, end time).
#
#  1. Fixed: `adaptive: false` with -j 1, 2, 4, 8, 16, 32; then the default
#     (adaptive, no -j). rps = requests / wall time of `homebase apply`.
#  2. Latency: the proxy adds ${LATENCY_MS:-20} ms to every request; adaptive,
#     no -j. Requests in flight as the proxy saw them, wall time against the
#     ideal requests × 20 ms / 32, and the server's CPU seconds (its own floor).
#  3. Burst: from ${BURST_AFTER_MS:-1500} ms after the first request, for
#     ${BURST_MS:-1500} ms, the proxy answers half the requests 503 or 429
#     (Retry-After: 1). In-flight and rate timeline around the burst; the run
#     must end with exit 0.
#
# Ends with one line:
#   RESULT adaptive_rps=… best_fixed_rps=… best_fixed_j=… ratio=…
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
LAT_MS=${LATENCY_MS:-20}
. "$root/bench/lib/scim.sh"

# rate LOG WALL: requests per second of wall time
rate() { awk -v n="$(wc -l <"$1")" -v t="$2" 'BEGIN { printf "%.1f", n / t }'; }

# timeline LOG STEP_S: per step from the first request, the most requests in
# flight at the proxy, how many ended, and how many of those were refused.
timeline() {
  python3 - "$1" "$2" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
step = float(sys.argv[2])
spans = [(float(r[4]) - float(r[3]) / 1000, float(r[4]), r[2]) for r in rows]
t0 = min(s for s, _, _ in spans)
events = sorted([(s - t0, 1) for s, _, _ in spans] + [(e - t0, -1) for _, e, _ in spans])
end = max(e for _, e, _ in spans) - t0
peak, level, i, t = [], 0, 0, 0.0
while t < end:
    top = level
    while i < len(events) and events[i][0] < t + step:
        level += events[i][1]
        top = max(top, level)
        i += 1
    ended = [c for s, e, c in spans if t <= e - t0 < t + step]
    refused = sum(1 for c in ended if c in ("429", "503"))
    print(f"    {t:5.2f}s  in flight ≤ {top:3d}  {len(ended) / step:6.0f} req/s  {refused:4d} refused")
    t += step
PY
}
peak() { timeline "$1" 100 | awk '{ gsub(/≤/, ""); print $4 }' | sort -n | tail -1; }
settled() { grep -o 'settled at [0-9.]*' "$1/err.txt" | awk '{ print $3 }'; }

echo "== 0. $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); PIN=$PIN"
echo "== 1. fixed -j against the adaptive default"
best_rps=0
best_j=0
for j in 1 2 4 8 16 32; do
  server "f$j"
  proxy "pf$j" "$(hostport "f$j")" --log "$work/pf$j.log"
  workspace "$work/wf$j" "http://127.0.0.1:$(cat "$work/pf$j.port")/v2" "f$j" "adaptive: false"
  t=$(apply "$work/wf$j" -j "$j")
  rps=$(rate "$work/pf$j.log" "$t")
  echo "  fixed -j $j: $(wc -l <"$work/pf$j.log") requests, ${t}s → $rps req/s; server CPU $(cpu "f$j")s"
  if awk -v a="$rps" -v b="$best_rps" 'BEGIN { exit !(a > b) }'; then
    best_rps=$rps
    best_j=$j
  fi
done
server a
proxy pa "$(hostport a)" --log "$work/pa.log"
workspace "$work/wa" "http://127.0.0.1:$(cat "$work/pa.port")/v2" a
t=$(apply "$work/wa")
adaptive_rps=$(rate "$work/pa.log" "$t")
echo "  adaptive:   $(wc -l <"$work/pa.log") requests, ${t}s → $adaptive_rps req/s; settled at $(settled "$work/wa"), at most $(peak "$work/pa.log") in flight at the proxy; server CPU $(cpu a)s"

echo "== 2. adaptive with ${LAT_MS} ms added to every request"
server l
proxy pl "$(hostport l)" --log "$work/pl.log" --latency-ms "$LAT_MS"
workspace "$work/wl" "http://127.0.0.1:$(cat "$work/pl.port")/v2" l
t=$(apply "$work/wl")
n=$(wc -l <"$work/pl.log")
ideal=$(awk -v n="$n" -v ms="$LAT_MS" 'BEGIN { printf "%.2f", n * ms / 1000 / 32 }')
echo "  $n requests; apply ${t}s (SCIM phase $(phase "$work/pl.log")s); ideal $n × ${LAT_MS} ms / 32 = ${ideal}s; server CPU $(cpu l)s"
echo "  settled at $(settled "$work/wl"); at most $(peak "$work/pl.log") in flight at the proxy"
timeline "$work/pl.log" 0.5

echo "== 3. adaptive through a burst of 503/429"
server b
proxy pb "$(hostport b)" --log "$work/pb.log" --retry-after 1 \
  --burst-after-ms "${BURST_AFTER_MS:-1500}" --burst-ms "${BURST_MS:-1500}" --burst-p 0.5
workspace "$work/wb" "http://127.0.0.1:$(cat "$work/pb.port")/v2" b
t=$(apply "$work/wb")
echo "  exit 0 after ${t}s; $(grep -c . "$work/pb.log") requests, $(awk '$3 == 429 || $3 == 503' "$work/pb.log" | wc -l) refused; $(grep -o 'settled at.*' "$work/wb/err.txt")"
timeline "$work/pb.log" 0.25

ratio=$(awk -v a="$adaptive_rps" -v b="$best_rps" 'BEGIN { printf "%.2f", a / b }')
echo "RESULT adaptive_rps=$adaptive_rps best_fixed_rps=$best_rps best_fixed_j=$best_j ratio=$ratio"
