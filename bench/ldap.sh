#!/usr/bin/env bash
# LDAP benchmark: two fresh slapd instances on 127.0.0.1; homebase provisions
# the 1,200 example staff into one, `ldapadd` loads an equivalent LDIF into the
# other (the same entries: containers, accounts, groups with their members,
# exported from the first). Ends with one line:
#   RESULT homebase_per_s=… ldapadd_per_s=… ratio=…
#
# homebase runs with a directory-only configuration (one profile: account,
# groups, first password; no VPN, devices, seats or letters), so both sides do
# the same work: accounts into a directory. A run of the full shipped workplace
# (WireGuard file, stock, seats, bundles with letters and QR codes) is timed
# too and printed for context.
#
# The servers' databases are on disk (mktemp -d), synced as slapd does by
# default. homebase's own folder (state store, the bundles with the first
# passwords) is on /dev/shm when there is one, as if homebase ran on another
# machine than the directory: on one ext4 filesystem, creating 1,200 bundle
# folders while slapd syncs its database costs homebase seconds of kernel
# time (inode allocation waits on the journal). The same run with homebase's
# folder beside the databases is printed too.
# Each side runs ROUNDS times (default 5) into a fresh server and counts with
# its median: one run is ~0.6 s, and single runs swing ±10 %.
#
#   bench/ldap.sh [--no-full]        ROUNDS=5
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/examples.sh
. "$root/bench/lib/examples.sh"
full=1
[ "${1:-}" = "--no-full" ] && full=0
ROUNDS=${ROUNDS:-5}

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/homebase"
work=$(mktemp -d)
a="$work/slapd-homebase"
b="$work/slapd-ldapadd"
c="$work/slapd-full"
cleanup() {
  for d in "$a" "$b" "$c" "$work/slapd-same-disk" "$work"/round-*; do
    [ -d "$d" ] && { "$root/tests/servers/slapd.sh" stop "$d" || true; }
  done
  rm -rf "$work"
}
trap cleanup EXIT

SLAPD_PORT=3890 SLAPD_TLS_PORT=6360 "$root/tests/servers/slapd.sh" start "$a"
SLAPD_PORT=3892 SLAPD_TLS_PORT=6362 "$root/tests/servers/slapd.sh" start "$b"
# shellcheck disable=SC1091
. "$a/env"
suffix=$LDAP_SUFFIX

client=$work
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  client=$(mktemp -d /dev/shm/homebase-bench.XXXXXX)
fi
cleanup_client() { [ "$client" = "$work" ] || rm -rf "$client"; }
trap 'cleanup_client; cleanup' EXIT

# --- homebase, directory only
ws="$client/homebase"
mkdir -p "$ws/profiles"
example_staff "$ws/staff.csv"
cat >"$ws/homebase.yaml" <<YAML
organisation:
  name: Benchmark
  domain: musterstadt.example
default_profile: staff
profiles: profiles
targets:
  directory:
    kind: ldap
    url: ldap://127.0.0.1:3890
    bind_dn: $LDAP_ROOTDN
    bind_password_env: BENCH_LDAP_PASSWORD
    base_dn: $suffix
YAML
cat >"$ws/profiles/staff.yaml" <<'YAML'
description: Directory account only
account:
  username: "{{ given_name[:1] }}{{ family_name }}"
  ou: ou=Benutzer
  groups: [staff, homeoffice]
  expiry_days: 365
  must_change_password: true
YAML

seconds() { # run "$@" and print its wall seconds
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/out.txt" 2>"$work/err.txt" || { cat "$work/err.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  calc "$end - $start"
}
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

export BENCH_LDAP_PASSWORD=$LDAP_ROOTPW
hb_s=$(cd "$ws" && seconds "$bin" apply staff.csv --yes --no-progress)
count=$(ldapsearch -x -LLL -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" -b "$suffix" \
  -E pr=1000/noprompt '(employeeNumber=*)' 1.1 | grep -c '^dn:')
[ "$count" = 1200 ] || { echo "homebase created $count accounts, not 1200" >&2; exit 1; }

# --- the same entries, by ldapadd
dump() {
  ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" \
    -b "$suffix" -E pr=1000/noprompt "$1" '*'
}
{
  dump '(&(objectClass=organizationalUnit)(!(ou=Policies)))'
  dump '(employeeNumber=*)'
  dump '(objectClass=groupOfNames)'
} >"$work/equivalent.ldif"
entries=$(grep -c '^dn:' "$work/equivalent.ldif")
# shellcheck disable=SC1091
. "$b/env"
ldapadd_s=$(seconds ldapadd -x -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" -f "$work/equivalent.ldif")

# --- more rounds, each side into a fresh server; the medians count
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
hb_times=("$hb_s")
add_times=("$ldapadd_s")
for r in $(seq 2 "$ROUNDS"); do
  "$root/tests/servers/slapd.sh" stop "$a" >/dev/null 2>&1 || true
  "$root/tests/servers/slapd.sh" stop "$b" >/dev/null 2>&1 || true
  a="$work/round-$r-homebase"
  b="$work/round-$r-ldapadd"
  SLAPD_PORT=3890 SLAPD_TLS_PORT=6360 "$root/tests/servers/slapd.sh" start "$a"
  SLAPD_PORT=3892 SLAPD_TLS_PORT=6362 "$root/tests/servers/slapd.sh" start "$b"
  rm -rf "$ws/.homebase" "$ws/out"
  hb_times+=("$(cd "$ws" && seconds "$bin" apply staff.csv --yes --no-progress)")
  add_times+=("$(seconds ldapadd -x -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" -f "$work/equivalent.ldif")")
done
printf 'homebase runs: %s s; ldapadd runs: %s s\n' "${hb_times[*]}" "${add_times[*]}"
hb_s=$(printf '%s\n' "${hb_times[@]}" | median)
ldapadd_s=$(printf '%s\n' "${add_times[@]}" | median)

hb_per_s=$(calc "1200 / $hb_s")
ldapadd_per_s=$(calc "1200 / $ldapadd_s")
ratio=$(calc "$hb_per_s / $ldapadd_per_s")
printf 'homebase apply (directory only): %.2f s for 1200 accounts (median)\n' "$hb_s"
printf 'ldapadd of the same %d entries: %.2f s (median)\n' "$entries" "$ldapadd_s"

# --- for context: homebase's folder on the databases' filesystem
d="$work/slapd-same-disk"
SLAPD_PORT=3896 SLAPD_TLS_PORT=6366 "$root/tests/servers/slapd.sh" start "$d"
wd="$work/homebase-same-disk"
cp -r "$ws" "$wd"
rm -rf "$wd/.homebase" "$wd/out"
sed -i "s#url: ldap://127.0.0.1:3890#url: ldap://127.0.0.1:3896#" "$wd/homebase.yaml"
same_s=$(cd "$wd" && seconds "$bin" apply staff.csv --yes --no-progress)
"$root/tests/servers/slapd.sh" stop "$d"
printf 'homebase apply (directory only, its folder on the servers'"'"' disk): %.2f s = %.0f accounts/s\n' \
  "$same_s" "$(calc "1200 / $same_s")"

if [ "$full" = 1 ]; then
  # --- for context: the shipped workplace, with VPN, stock, seats and bundles
  SLAPD_PORT=3894 SLAPD_TLS_PORT=6364 "$root/tests/servers/slapd.sh" start "$c"
  # shellcheck disable=SC1091
  . "$c/env"
  wf="$client/full"
  mkdir -p "$wf/examples"
  example_staff "$wf/examples/staff.csv"
  cp "$root/examples/inventory.csv" "$wf/examples/"
  sed -e "/^  directory:/,/^  wg0:/{/^  wg0:/!d}" "$root/homebase.yaml" |
    sed -e "s#^  wg0:#  directory:\n    kind: ldap\n    url: $LDAP_URL\n    bind_dn: $LDAP_ROOTDN\n    bind_password_env: BENCH_LDAP_PASSWORD\n    base_dn: $suffix\n  wg0:#" \
      >"$wf/homebase.yaml"
  full_s=$(cd "$wf" && seconds "$bin" apply examples/staff.csv --yes --no-progress)
  printf 'homebase apply (full workplace: LDAP, WireGuard, stock, seats, bundles): %.2f s = %.0f persons/s\n' \
    "$full_s" "$(calc "1200 / $full_s")"
fi
printf 'RESULT homebase_per_s=%.1f ldapadd_per_s=%.1f ratio=%.2f\n' "$hb_per_s" "$ldapadd_per_s" "$ratio"
