# Shared by bench/scim.sh and bench/adaptive.sh (sourced, not run): fresh
# scim2-server instances, the fault proxy in front of them, workspaces with the
# 1,200 example staff, and timed applies. Expects $root; sets $work, $bin.
#
# With PIN=1 (the default on 2+ cores) every server runs on CPU 0 and homebase,
# the proxy and wrk on the others: homebase writes bundles (QR codes, PNGs)
# while it provisions, and on a 2-core machine that CPU would otherwise be
# taken from the single-threaded server. PIN=0 shares all.
# shellcheck source=examples.sh
. "$root/bench/lib/examples.sh"

PIN=${PIN:-$([ "$(nproc)" -ge 2 ] && echo 1 || echo 0)}
if [ "$PIN" = 1 ]; then
  on_server=(taskset -c 0)
  on_client=(taskset -c "1-$(($(nproc) - 1))")
else
  on_server=()
  on_client=()
fi

# BENCH_PROFILE=debug for counts that do not depend on speed (requests per
# person): no release build needed.
profile=${BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin homebase --example scim-fault-proxy
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" --bin homebase --example scim-fault-proxy
fi
bin="$root/target/$profile/homebase"
proxy_bin="$root/target/$profile/examples/scim-fault-proxy"
# SCIM_SERVER=scimmy: the second implementation (SCIMMY, npm) instead, with
# the arguments in SCIM_SERVER_ARGS (default: filters off, pages of 50).
if [ "${SCIM_SERVER:-scim2-server}" = scimmy ]; then
  servers="$root/tests/servers/scimmy.sh"
  read -r -a server_args <<<"${SCIM_SERVER_ARGS:-off 50}"
else
  servers="$root/tests/servers/scim.sh"
  server_args=()
fi
"$servers" install

# homebase's folder (state store, bundles) on /dev/shm where there is one
# (BENCH_DIR overrides): these benches measure the talk with the server, and on
# a long-used ext4 creating the 8,400 bundle files costs seconds of kernel time
# (the inode allocator skipping recently deleted inodes) on the CPU homebase
# shares with the proxy. bench/scale.sh measures the files on disk.
work=$(mktemp -d -p "${BENCH_DIR:-$([ -d /dev/shm ] && echo /dev/shm || echo /tmp)}")
proxies=()
cleanup() {
  for p in "${proxies[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "$work"/srv-*; do [ -d "$d" ] && "$servers" stop "$d"; done
  rm -rf "$work"
}
trap cleanup EXIT

# server NAME: a fresh scim2-server
server() { "${on_server[@]}" "$servers" start "$work/srv-$1" "${server_args[@]}" 2>/dev/null; }
hostport() { sed -E 's#http://([^/]+)/v2#\1#' "$work/srv-$1/url"; }
# CPU seconds the server NAME has used so far (user + system).
cpu() { awk '{ printf "%.1f", ($14 + $15) / 100 }' "/proc/$(cat "$work/srv-$1/pid")/stat"; }

# proxy NAME UPSTREAM ARGS… : start, wait for its port (written to NAME.port)
proxy() {
  local name=$1 upstream=$2
  shift 2
  "${on_client[@]}" "$proxy_bin" --upstream "$upstream" "$@" >"$work/$name.port" &
  proxies+=($!)
  for _ in $(seq 1 100); do
    [ -s "$work/$name.port" ] && return 0
    sleep 0.05
  done
  echo "the proxy did not start" >&2
  exit 1
}

# workspace DIR URL SERVER [LINE…]: the example inputs and a homebase.yaml for
# URL; each LINE is added to the directory target (e.g. "adaptive: false").
workspace() {
  local dir=$1 url=$2 srv=$3
  shift 3
  mkdir -p "$dir"
  example_staff "$dir/staff.csv"
  cp "$root/examples/inventory.csv" "$dir/"
  {
    cat <<EOF2
organisation:
  name: Stadtverwaltung Musterstadt
  domain: musterstadt.example
licenses:
  office-suite: {seats: 1400}
  vpn-client: {seats: 1300}
targets:
  directory:
    kind: scim
    url: $url
    token_file: $work/srv-$srv/token
    bulk: ${BULK:-false}
EOF2
    for line in "$@"; do echo "    $line"; done
    cat <<EOF2
  wg0:
    kind: wireguard-file
    endpoint: vpn.musterstadt.example:51820
    address: 10.20.0.1/16
  stock:
    kind: csv
    stock: inventory.csv
EOF2
  } >"$dir/homebase.yaml"
}

# apply DIR [ARG…]: provision the staff (ARGs before `apply`, e.g. -j 4);
# prints the wall seconds; homebase's stderr stays in DIR/err.txt.
apply() {
  local dir=$1
  shift
  (
    cd "$dir"
    /usr/bin/time -f "%e %U %S" -o time.txt "${on_client[@]}" "$bin" "$@" apply staff.csv --yes --no-progress >out.txt 2>err.txt ||
      { tail -20 err.txt >&2; exit 1; }
    read -r wall user sys <time.txt
    echo "  homebase used $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }') CPU seconds" >&2
    echo "$wall"
  )
}

# The SCIM phase of a proxy log (lines METHOD TARGET STATUS MS END_S): seconds
# from the first request's start to the last one's end.
phase() { awk '{ s = $5 - $4 / 1000; if (NR == 1 || s < a) a = s; if ($5 > b) b = $5 } END { printf "%.3f", b - a }' "$1"; }
