#!/usr/bin/env bash
# OpenVPN issuing benchmark: client certificates and configs for the 1,200
# example staff with homebase (release build, `apply` on a temp site made by
# `init --ca`, every profile switched to OpenVPN), and the same number of
# client certificates with easy-rsa (`build-client-full NAME nopass`), both
# ECDSA P-256, in the same run. Ends with one RESULT line.
#   bench/openvpn.sh
# homebase's time is the whole apply: certificates, keys, inline .ovpn files,
# welcome letters and handover sheets, accounts, devices, the CRL and the
# client-config-dir. easy-rsa's is only `init-pki`, `build-ca` and the
# certificates (no configs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/examples.sh
. "$root/bench/lib/examples.sh"
easyrsa=${EASYRSA:-/usr/share/easy-rsa/easyrsa}
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/homebase"
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
trap 'rm -rf "$work"' EXIT

# homebase
mkdir "$work/hb" && cd "$work/hb"
"$bin" init . --ca >/dev/null 2>&1
example_staff examples/staff.csv
# OpenVPN instead of WireGuard in every profile; end dates of the examples stay.
sed -i '/^  wg0:$/,/^    address: 10.20.0.1\/16$/d' homebase.yaml
sed -i -e 's/kind: wireguard/kind: openvpn/' -e 's/target: wg0/target: ovpn/' \
  -e 's/pool: 10\.20\./pool: 10.30./' -e 's/dns: \[10.20.0.1\]/dns: [10.30.0.1]/' \
  -e 's/wireguard\.conf\.j2/openvpn.ovpn.j2/' profiles/*.yaml
start=$(date +%s.%N)
"$bin" apply examples/staff.csv --yes --no-progress >/dev/null 2>hb.err || { cat hb.err >&2; exit 1; }
end=$(date +%s.%N)
homebase_s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
n=$(find out -name openvpn.ovpn | wc -l)
[ "$n" -gt 0 ] || { echo "homebase wrote no .ovpn files" >&2; exit 1; }

# easy-rsa: the same number of clients, same algorithm.
mkdir "$work/er" && cd "$work/er"
export EASYRSA_BATCH=1 EASYRSA_ALGO=ec EASYRSA_CURVE=prime256v1 EASYRSA_PKI="$work/er/pki"
start=$(date +%s.%N)
"$easyrsa" init-pki >/dev/null 2>&1
EASYRSA_REQ_CN="Bench CA" "$easyrsa" build-ca nopass >/dev/null 2>&1
for i in $(seq 1 "$n"); do
  "$easyrsa" build-client-full "client$i" nopass >/dev/null 2>&1
done
end=$(date +%s.%N)
easyrsa_s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
m=$(find pki/issued -name 'client*.crt' | wc -l)
[ "$m" -eq "$n" ] || { echo "easy-rsa issued $m of $n certificates" >&2; exit 1; }

echo "$n clients · homebase ${homebase_s}s (whole apply) · easy-rsa ${easyrsa_s}s · load $(cut -d' ' -f1 /proc/loadavg)"
speedup=$(awk -v h="$homebase_s" -v e="$easyrsa_s" 'BEGIN { printf "%.1f", e / h }')
echo "RESULT homebase_s=$homebase_s easyrsa_s=$easyrsa_s speedup=$speedup"
