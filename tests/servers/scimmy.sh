#!/usr/bin/env bash
# A private SCIMMY server (npm: scimmy + scimmy-routers + express) for the
# tests and the benchmark: a second SCIM implementation beside scim2-server.
#
#   tests/servers/scimmy.sh install               install the npm packages (cached)
#   tests/servers/scimmy.sh start DIR [on|off] [MAX]
#                                                 start on a free 127.0.0.1 port with a
#                                                 random bearer token, filters on or off
#                                                 (default off), pages of at most MAX
#                                                 (default 50); writes DIR/url, DIR/token,
#                                                 DIR/pid, DIR/log
#   tests/servers/scimmy.sh stop DIR              stop the server started in DIR (by its PID)
#
# The packages live in $HOMEBASE_SCIMMY_DIR (default: target/scimmy-node).
# Needs node and npm (Debian: nodejs, npm; scripts/test.sh installs them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${HOMEBASE_SCIMMY_DIR:-$root/target/scimmy-node}
# Pinned: the tests know these versions' behaviour (see docs/scim.md).
packages="scimmy@1.3.5 scimmy-routers@1.3.2 express@4.22.1"

install() {
  mkdir -p "$prefix"
  (
    exec 9>"$prefix.lock"
    flock 9
    if [ "$(cat "$prefix/.packages" 2>/dev/null)" = "$packages" ]; then
      exit 0
    fi
    if ! command -v npm >/dev/null; then
      echo "scimmy.sh: npm is missing; install nodejs and npm (Debian) first" >&2
      exit 1
    fi
    # shellcheck disable=SC2086
    npm install --prefix "$prefix" --no-audit --no-fund --no-save --silent $packages >&2
    echo "$packages" >"$prefix/.packages"
  )
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 filter=${2:-off} max=${3:-50}
  install
  mkdir -p "$dir"
  umask 077
  python3 -c 'import secrets; print(secrets.token_hex(24))' >"$dir/token"
  local attempt port pid
  for attempt in 1 2 3; do
    port=$(free_port)
    NODE_PATH="$prefix/node_modules" node "$here/scimmy/server.cjs" "$port" "$dir/token" "$filter" "$max" \
      >"$dir/log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pid"
    for _ in $(seq 1 150); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "http://127.0.0.1:$port/v2" >"$dir/url"
        echo "scimmy pid $pid on http://127.0.0.1:$port/v2 (filter $filter)" >&2
        return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    echo "scimmy.sh: try $attempt: the server did not come up on port $port:" >&2
    tail -n 20 "$dir/log" >&2 || true
  done
  return 1
}

stop() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
}

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 2 ] || { echo "usage: $0 start DIR [on|off] [MAX]" >&2; exit 2; }; shift; start "$@" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 install | start DIR [on|off] [MAX] | stop DIR" >&2; exit 2 ;;
esac
