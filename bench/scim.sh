#!/usr/bin/env bash
# SCIM benchmark: homebase against scim2-server on this machine, in one run.
#
#  1. homebase's requests/s: the 1,200 example staff provisioned into a fresh
#     scim2-server (release build, default settings or -j $J) through a pass-through proxy that counts
#     and records every request. rps = requests / wall time of `homebase apply`
#     (start-up, planning and the bundles included); the rate over the SCIM phase
#     alone (first to last request) is printed too.
#  2. The server's own limit for the same requests: the recording replayed by wrk
#     against fresh servers with 1, 2, 4, 8 and 16 connections (WRK_C); the best
#     rate counts. Groups are created there first and their new ids put into the
#     recorded paths.
#  3. Latency: a third fresh server behind the proxy adding ${LATENCY_MS:-20} ms to
#     every request, `homebase -j ${LATENCY_J:-32} apply`; wall time against the
#     ideal requests × 20 ms / 32.
#
# Ends with one line:
#   RESULT homebase_rps=… server_rps=… ratio=… latency_wall_s=… ideal_s=…
#
#   bench/scim.sh                 J= WRK_C="1 2 4 8 16" LATENCY_J=32 LATENCY_MS=20 BULK=false PIN=1
#
# Mode `requests`: requests per created person at two staff sizes, counted by
# the pass-through proxy (discovery, the plan's paged read, creations, group
# changes and the read-back), against SCIMMY without filter support by default
# (SCIM_SERVER=scim2-server for the other; SCIM_SERVER_ARGS="on 50" with filters):
#   bench/scim.sh requests        SIZES="100 1200" BENCH_PROFILE=debug
# Ends with one line:
#   RESULT requests_per_person_100=… requests_per_person_1200=…
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Requests of a proxy log by method and path (ids folded).
mix() { awk '{ p = $2; sub(/\?.*/, "", p); sub(/\/Users\/[0-9a-f]+/, "/Users/ID", p); sub(/\/Groups\/[0-9a-f]+/, "/Groups/ID", p); n[$1 " " p]++ } END { for (k in n) printf "    %6d  %s\n", n[k], k }' "$1" | sort -rn; }
if [ "${1:-}" = requests ]; then
  # Counts, not speed: the debug build does (BENCH_PROFILE=release to use that).
  export SCIM_SERVER=${SCIM_SERVER:-scimmy} BENCH_PROFILE=${BENCH_PROFILE:-debug}
  . "$root/bench/lib/scim.sh"
  result="RESULT"
  for n in ${SIZES:-100 1200}; do
    server "n$n"
    proxy "p$n" "$(hostport "n$n")" --log "$work/p$n.log"
    workspace "$work/w$n" "http://127.0.0.1:$(cat "$work/p$n.port")/v2" "n$n"
    head -n "$((n + 1))" "$work/w$n/staff.csv" >"$work/w$n/keep.csv"
    mv "$work/w$n/keep.csv" "$work/w$n/staff.csv"
    t=$(apply "$work/w$n")
    count=$(wc -l <"$work/p$n.log")
    per=$(awk -v c="$count" -v n="$n" 'BEGIN { printf "%.2f", c / n }')
    echo "== $n persons on $SCIM_SERVER ${server_args[*]}: $count requests in ${t}s, $per per person"
    mix "$work/p$n.log"
    result="$result requests_per_person_$n=$per"
  done
  echo "$result"
  exit 0
fi
J=${J:-}
WRK_C=${WRK_C:-1 2 4 8 16}
LJ=${LATENCY_J:-32}
LAT_MS=${LATENCY_MS:-20}
BULK=${BULK:-false}
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "bench/scim.sh needs wrk (apt-get install wrk)" >&2
    exit 1
  fi
fi
. "$root/bench/lib/scim.sh"

# Share of the SCIM phase in which at least one request was in flight: whether
# homebase kept the server busy.
busy() {
  python3 - "$1" <<'PY'
import sys
spans = sorted((float(f[4]) - float(f[3]) / 1000, float(f[4])) for f in (l.split() for l in open(sys.argv[1])))
covered, (start, end) = 0.0, spans[0]
first, last = spans[0][0], max(e for _, e in spans)
for s, e in spans[1:]:
    if s > end:
        covered += end - start
        start, end = s, e
    else:
        end = max(end, e)
covered += end - start
print(f"{100 * covered / (last - first):.0f}")
PY
}

echo "== 0. $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); PIN=$PIN BULK=$BULK"
echo "== 1. homebase ${J:+-j $J }(default: adaptive) against scim2-server (pass-through proxy counting requests)"
server a
proxy p1 "$(hostport a)" --log "$work/p1.log" --record "$work/rec.jsonl"
workspace "$work/w1" "http://127.0.0.1:$(cat "$work/p1.port")/v2" a
t1=$(apply "$work/w1" ${J:+-j "$J"})
n1=$(wc -l <"$work/p1.log")
p1=$(phase "$work/p1.log")
mix "$work/p1.log"
homebase_rps=$(awk -v n="$n1" -v t="$t1" 'BEGIN { printf "%.1f", n / t }')
phase_rps=$(awk -v n="$n1" -v t="$p1" 'BEGIN { printf "%.1f", n / t }')
echo "  $n1 requests; apply ${t1}s → $homebase_rps req/s (SCIM phase ${p1}s → $phase_rps req/s, a request in flight $(busy "$work/p1.log") % of it); server CPU $(cpu a)s"

# replay NAME C: a fresh server NAME, the recorded groups created on it, the
# other recorded requests replayed by wrk with C connections; prints the rate.
replay() {
  server "$1"
  python3 - "$work/rec.jsonl" "$(cat "$work/srv-$1/url")" "$(cat "$work/srv-$1/token")" "$work/replay-$1.lua" >&2 <<'PY'
import json, sys, urllib.request
rec, base, token, out = sys.argv[1:5]
records = [json.loads(line) for line in open(rec)]
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"}
ids = {}
for r in records:
    if r["method"] == "POST" and r["target"].endswith("/Groups") and r["status"] == 201:
        old = json.loads(r["response"])["id"]
        req = urllib.request.Request(base + "/Groups", data=r["body"].encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req) as f:
            ids[old] = json.load(f)["id"]
def lua(s):
    level = 0
    while "]" + "=" * level + "]" in s:
        level += 1
    return "[" + "=" * level + "[" + s + "]" + "=" * level + "]"
with open(out, "w") as f:
    f.write('local headers = {["Authorization"] = %s, ["Content-Type"] = "application/scim+json"}\n' % lua("Bearer " + token))
    f.write("local reqs = {\n")
    n = 0
    for r in records:
        if r["method"] == "POST" and r["target"].endswith("/Groups"):
            continue
        target = r["target"]
        for old, new in ids.items():
            target = target.replace(old, new)
        body = lua(r["body"]) if r["body"] else "nil"
        f.write("  {%s, %s, %s},\n" % (lua(r["method"]), lua(target), body))
        n += 1
    f.write("}\n")
    f.write("""
-- wrk runs for its whole -d however early the thread stops: time the replay
-- here (first request to last response) and end the process when it is done.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } hb_timeval;
int gettimeofday(hb_timeval *tv, void *tz);
]]
local function now()
  local tv = ffi.new("hb_timeval")
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end
local i, done, total, t0, errors = 0, 0, #reqs, nil, 0
request = function()
  if t0 == nil then t0 = now() end
  i = math.min(i + 1, total)
  local r = reqs[i]
  return wrk.format(r[1], r[2], headers, r[3])
end
response = function(status, headers, body)
  done = done + 1
  if status >= 400 then errors = errors + 1 end
  if done == total then
    local s = now() - t0
    io.write(string.format("REPLAY requests=%d seconds=%.3f rps=%.1f errors=%d\\n", total, s, total / s, errors))
    io.flush()
    os.exit(0)
  end
end
""")
print(f"    {n} requests to replay ({len(ids)} groups created first)")
PY

  "${on_client[@]}" wrk -t1 -c"$2" -d600s --timeout 30s -s "$work/replay-$1.lua" "http://$(hostport "$1")" >"$work/wrk-$1.txt"
  sed 's/^/    /' "$work/wrk-$1.txt" >&2
  echo "    server CPU $(cpu "$1")s" >&2
  awk '/^REPLAY/ { split($4, a, "="); printf "%.1f", a[2] }' "$work/wrk-$1.txt"
}

echo "== 2. the same requests replayed by wrk against fresh servers, -c ${WRK_C// /, }: the best is the server's limit"
server_rps=0
for c in $WRK_C; do
  echo "  wrk -c $c" >&2
  rps=$(replay "r$c" "$c")
  [ -n "$rps" ] || { echo "the replay did not finish" >&2; exit 1; }
  if awk -v a="$rps" -v b="$server_rps" 'BEGIN { exit !(a > b) }'; then
    server_rps=$rps
    server_c=$c
  fi
done
echo "  server limit: $server_rps req/s (wrk -c $server_c)"

echo "== 3. homebase -j $LJ with ${LAT_MS} ms added to every request"
server c
proxy p3 "$(hostport c)" --log "$work/p3.log" --latency-ms "$LAT_MS"
workspace "$work/w3" "http://127.0.0.1:$(cat "$work/p3.port")/v2" c
t3=$(apply "$work/w3" -j "$LJ")
n3=$(wc -l <"$work/p3.log")
p3=$(phase "$work/p3.log")
ideal=$(awk -v n="$n3" -v ms="$LAT_MS" -v j="$LJ" 'BEGIN { printf "%.2f", n * ms / 1000 / j }')
echo "  $n3 requests; apply ${t3}s (SCIM phase ${p3}s); ideal $n3 × ${LAT_MS} ms / $LJ = ${ideal}s; server CPU $(cpu c)s"

ratio=$(awk -v a="$homebase_rps" -v b="$server_rps" 'BEGIN { printf "%.2f", a / b }')
echo "RESULT homebase_rps=$homebase_rps server_rps=$server_rps ratio=$ratio latency_wall_s=$t3 ideal_s=$ideal"
