#!/usr/bin/env bash
# Where an apply's time goes on the PostgreSQL side. The apply of N persons
# (default 10,000) as in bench/scale.sh --state postgres, on a private server
# (tests/servers/postgres.sh: loopback, TLS, fsync on) that also has
# pg_stat_statements and WAL I/O timing on — for measuring only; durability
# settings stay as they are. Prints homebase's wall time beside the server's
# own: statements executed and their time, commits, WAL writes and fsyncs.
#   bench/pg_profile.sh [N]
set -euo pipefail
N=${1:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/homebase"
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
pg_dir=$(mktemp -d -p /tmp homebase-profile-pg.XXXXXX)
cleanup() {
  "$root/tests/servers/postgres.sh" stop "$pg_dir" || true
  rm -rf "$pg_dir" "$work"
}
trap cleanup EXIT
cd "$work"
"$bin" init . >/dev/null 2>&1
python3 "$root/scripts/gen_staff.py" --count "$N" --seed 7 --reference-date "$(date +%F)" --out staff.csv --inventory examples/inventory.csv >/dev/null
sed -i 's#pool: 10.20.192.0/24#pool: 10.20.192.0/20#' profiles/admin.yaml
sed -i -e "s/seats: 1400/seats: $((N * 2))/" -e "s/seats: 1300/seats: $((N * 2))/" homebase.yaml

export PG_PORT=${PG_PORT:-55440}
"$root/tests/servers/postgres.sh" start "$pg_dir" >/dev/null
# shellcheck disable=SC1091
. "$pg_dir/env"
export PGPASSWORD PGSSLMODE=verify-full PGSSLROOTCERT="$PG_CA" PGHOST=127.0.0.1 \
  PGPORT="$PG_PORT" PGUSER=homebase PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" \
  -c "ALTER SYSTEM SET track_wal_io_timing = on"
"$root/tests/servers/postgres.sh" start "$pg_dir" >/dev/null
q -c "CREATE EXTENSION pg_stat_statements" -c "SELECT pg_stat_statements_reset()" \
  -c "SELECT pg_stat_reset_shared('wal')" -c "SELECT pg_stat_reset()" >/dev/null

export HOMEBASE_STATE="$PG_URL&sslrootcert=$PG_CA&schema=bench"
/usr/bin/time -f '%e %U %S' -o time.txt "$bin" apply staff.csv --yes --no-progress >/dev/null 2>err.txt \
  || { cat err.txt >&2; exit 1; }
read -r wall user sys <time.txt
sleep 1 # the closed sessions' statistics reach the shared counters
echo "N=$N · load $(cut -d' ' -f1 /proc/loadavg)"
echo "homebase apply: ${wall}s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')s CPU"
q -F ' ' -c "SELECT 'server: ' || sum(calls) || ' statements, ' || round(sum(total_exec_time)::numeric / 1000, 2) || 's executing'
  FROM pg_stat_statements"
q -F ' ' -c "SELECT 'commits: ' || xact_commit || ', rollbacks: ' || xact_rollback FROM pg_stat_database WHERE datname = 'postgres'"
q -F ' ' -c "SELECT 'WAL: ' || wal_records || ' records, ' || pg_size_pretty(wal_bytes) || ', ' || wal_write || ' writes ('
  || round(wal_write_time::numeric / 1000, 2) || 's), ' || wal_sync || ' fsyncs (' || round(wal_sync_time::numeric / 1000, 2) || 's)'
  FROM pg_stat_wal"
echo "slowest statements (calls, seconds, text):"
q -F ' | ' -c "SELECT calls, round(total_exec_time::numeric / 1000, 2), left(regexp_replace(query, '\s+', ' ', 'g'), 70)
  FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8"
