#!/usr/bin/env bash
# A private scim2-server (PyPI) for the tests and the benchmark.
#
#   tests/servers/scim.sh install            create the venv (cached; quick when done)
#   tests/servers/scim.sh start DIR [ARG..]  start on a free 127.0.0.1 port with a random
#                                            bearer token; writes DIR/url, DIR/token,
#                                            DIR/pid, DIR/log. ARGs go to scim2-server.
#   tests/servers/scim.sh restart DIR [ARG..] start again on DIR's port and token (empty)
#   tests/servers/scim.sh stop DIR           stop the server started in DIR (by its PID)
#
# The venv lives in $HOMEBASE_SCIM_VENV (default: target/scim-venv). Needs
# python3 with venv (Debian: python3-venv; scripts/test.sh installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${HOMEBASE_SCIM_VENV:-$root/target/scim-venv}
# Pinned: the tests know this version's behaviour (see TEST-SERVERS.md).
package=${HOMEBASE_SCIM_PACKAGE:-scim2-server==0.8.3}

install() {
  mkdir -p "$(dirname "$venv")"
  # Tests start servers in parallel: one installs, the others wait for it.
  # In a subshell, so that the lock's descriptor is closed again (a server
  # started later must not inherit it and hold the lock forever).
  (
    exec 9>"$venv.lock"
    flock 9
    if [ -x "$venv/bin/scim2-server" ] && [ "$(cat "$venv/.package" 2>/dev/null)" = "$package" ]; then
      exit 0
    fi
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      echo "scim.sh: python3 -m venv failed; install python3-venv (Debian) first" >&2
      rm -rf "$venv"
      exit 1
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package" >&2
    echo "$package" >"$venv/.package"
  )
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1
  shift
  install
  mkdir -p "$dir"
  umask 077
  # `restart` (after a crash) keeps the address and the token.
  [ -n "${SCIM_SAME_PORT:-}" ] || python3 -c 'import secrets; print(secrets.token_hex(24))' >"$dir/token"
  local token attempt port pid
  token=$(cat "$dir/token")
  for attempt in 1 2 3; do
    port=${SCIM_SAME_PORT:-$(free_port)}
    # The command line of scim2-server, with one change: Python's socketserver
    # listens with a backlog of 5, so more than 5 clients connecting at once
    # (every request is a new connection: HTTP/1.0) lose SYNs and wait the
    # kernel's 1 s retransmission. Any real server queues more.
    "$venv/bin/python3" -c '
import socketserver, sys
socketserver.TCPServer.request_queue_size = 256
from scim2_server.testserver.cli import main
sys.argv[0] = "scim2-server"
sys.exit(main())
' --hostname 127.0.0.1 --port "$port" --bearer-token "$token" "$@" \
      >"$dir/log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pid"
    # Ready when the port accepts connections (the app is built before it listens).
    for _ in $(seq 1 150); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "http://127.0.0.1:$port/v2" >"$dir/url"
        echo "scim2-server pid $pid on http://127.0.0.1:$port/v2" >&2
        return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    echo "scim.sh: try $attempt: the server did not come up on port $port:" >&2
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
  start) [ $# -ge 2 ] || { echo "usage: $0 start DIR [ARG..]" >&2; exit 2; }; shift; start "$@" ;;
  # The same port and token as the server DIR had (the data is gone: the
  # server keeps it in memory), e.g. after it was killed.
  restart) [ $# -ge 2 ] || { echo "usage: $0 restart DIR [ARG..]" >&2; exit 2; }; shift
    port=$(sed -E 's#.*:([0-9]+)/v2$#\1#' "$1/url"); SCIM_SAME_PORT=$port start "$@" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 install | start DIR [ARG..] | restart DIR [ARG..] | stop DIR" >&2; exit 2 ;;
esac
