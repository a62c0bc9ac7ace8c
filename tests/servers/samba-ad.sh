#!/usr/bin/env bash
# A private Samba Active Directory domain controller for the tests, on 127.0.0.1.
#
#   tests/servers/samba-ad.sh start DIR   provision (first time) and start in DIR
#   tests/servers/samba-ad.sh stop DIR    stop the DC of DIR by its PID file
#
# Realm TEST.LAN, domain TEST, base DC=test,DC=lan. The ports are Samba's fixed
# ones (389, 636, 88, 464, 135, 3268/3269): run one DC at a time. LDAPS uses a
# certificate for IP:127.0.0.1 signed by a CA in DIR (Samba's own has no SAN
# for it). `start` writes DIR/env: AD_URL, AD_LDAPS_URL, AD_CA, AD_BASE,
# AD_BIND_DN, AD_PASSWORD.
set -euo pipefail

cmd=${1:?usage: samba-ad.sh start|stop DIR}
dir=${2:?usage: samba-ad.sh start|stop DIR}
password=${SAMBA_ADMIN_PASSWORD:-Homebase-Test-Pass-1}
base="DC=test,DC=lan"

stop() {
  local pidfile="$dir/samba.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -f "$pidfile"
}

certificates() {
  mkdir -p "$dir/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=homebase test AD CA" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.test.lan" \
    -keyout "$dir/tls/key.pem" -out "$dir/tls/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:dc1.test.lan\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$dir/tls/server.ext"
  openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" \
    -CAcreateserial -days 3 -extfile "$dir/tls/server.ext" -out "$dir/tls/cert.pem" 2>/dev/null
  chmod 600 "$dir/tls/key.pem"
}

provision() {
  mkdir -p "$dir/run"
  : >"$dir/empty.conf"
  samba-tool domain provision -s "$dir/empty.conf" --targetdir="$dir" \
    --use-rfc2307 --realm=TEST.LAN --domain=TEST --server-role=dc \
    --dns-backend=NONE --adminpass="$password" --host-name=dc1 --host-ip=127.0.0.1 \
    --option="interfaces=lo" --option="bind interfaces only=yes" \
    --option="server services=ldap cldap kdc rpc" \
    --option="pid directory=$dir/run" --option="ncalrpc dir=$dir/run/ncalrpc" \
    --option="log file=$dir/log.%m" >"$dir/provision.log" 2>&1 || {
      cat "$dir/provision.log" >&2
      return 1
    }
  # Simple binds over ldap:// (StartTLS tests) and our certificate for LDAPS.
  sed -i "/^\[global\]/a\\
\tldap server require strong auth = no\\
\ttls enabled = yes\\
\ttls keyfile = $dir/tls/key.pem\\
\ttls certfile = $dir/tls/cert.pem\\
\ttls cafile = $dir/tls/ca.pem" "$dir/etc/smb.conf"
}

start() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  stop
  [ -f "$dir/tls/cert.pem" ] || certificates
  [ -f "$dir/etc/smb.conf" ] || provision
  samba -s "$dir/etc/smb.conf" -i -M single >"$dir/samba.log" 2>&1 &
  echo $! >"$dir/samba.pid"
  for _ in $(seq 1 600); do
    if LDAPTLS_CACERT="$dir/tls/ca.pem" ldapsearch -x -H ldaps://127.0.0.1 \
      -D "CN=Administrator,CN=Users,$base" -w "$password" -b "$base" -s base dn >/dev/null 2>&1; then
      cat >"$dir/env" <<ENV
AD_URL=ldap://127.0.0.1
AD_LDAPS_URL=ldaps://127.0.0.1
AD_CA=$dir/tls/ca.pem
AD_BASE=$base
AD_BIND_DN=CN=Administrator,CN=Users,$base
AD_PASSWORD=$password
ENV
      return 0
    fi
    if ! kill -0 "$(cat "$dir/samba.pid")" 2>/dev/null; then
      echo "samba did not start; its log:" >&2
      tail -50 "$dir/samba.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "samba did not answer LDAPS on 127.0.0.1:636 within 60 s" >&2
  tail -50 "$dir/samba.log" >&2
  stop
  return 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: samba-ad.sh start|stop DIR" >&2; exit 2 ;;
esac
