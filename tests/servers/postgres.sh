#!/usr/bin/env bash
# A private PostgreSQL 15 server for the tests and the benchmark, on 127.0.0.1
# only, with password authentication (scram-sha-256) and TLS from a CA this
# script makes.
#
#   tests/servers/postgres.sh start DIR   cluster, certificates and server in DIR
#                                         (a DIR with a cluster is started as it is)
#   tests/servers/postgres.sh stop DIR    stop the server of DIR (pg_ctl, by its data folder)
#
# Environment: PG_PORT (55432), PG_PASSWORD (a random one, kept in DIR/pw),
# PG_FSYNC (on; the tests turn it off: durability is not what they test).
# `start` writes DIR/env with what clients need: PG_URL (no password in it),
# PG_CA, PG_PASSWORD_FILE, PGPASSWORD, PG_PORT.
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the
# `postgres` user (initdb and pg_ctl through runuser), DIR made readable to it.
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}
port=${PG_PORT:-55432}
bin=/usr/lib/postgresql/15/bin

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop() {
  [ -d "$dir/data" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

certificates() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=homebase test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
}

init_cluster() {
  local password=${PG_PASSWORD:-$(openssl rand -hex 16)}
  umask 077
  printf '%s\n' "$password" >"$dir/pw"
  umask 022
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir" "$dir/pw"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -A scram-sha-256 --pwfile="$dir/pw" -U homebase \
    --no-sync >"$dir/initdb.log" 2>&1
  cp "$dir/server.crt" "$dir/server.key" "$dir/data/"
  chmod 600 "$dir/data/server.key"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir/data/server.crt" "$dir/data/server.key"
  fi
  # Loopback only, every connection with a password.
  cat >"$dir/data/pg_hba.conf" <<HBA
host all all 127.0.0.1/32 scram-sha-256
HBA
}

start() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The postgres user must reach DIR (a test's temp folder is 0700 by default).
  chmod 755 "$dir"
  stop
  [ -f "$dir/server.crt" ] || certificates
  [ -d "$dir/data" ] || init_cluster
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=${PG_FSYNC:-on} -c max_connections=200" \
    start >/dev/null || { echo "postgres did not start; its log:" >&2; cat "$dir/log" >&2; return 1; }
  local password
  password=$(cat "$dir/pw")
  cat >"$dir/env" <<ENV
PG_URL=postgres://homebase@127.0.0.1:$port/postgres?sslmode=verify-full
PG_CA=$dir/ca.pem
PG_PASSWORD_FILE=$dir/pw
PGPASSWORD=$password
PG_PORT=$port
ENV
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
