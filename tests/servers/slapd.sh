#!/usr/bin/env bash
# A private OpenLDAP server for the tests and the benchmark, on 127.0.0.1 only.
#
#   tests/servers/slapd.sh start DIR   config, certificates, database and server in DIR
#                                      (a DIR that has a database is started as
#                                      it is: a restart keeps the entries)
#   tests/servers/slapd.sh stop DIR    stop the server of DIR by its PID file
#
# Environment: SLAPD_PORT (3890), SLAPD_TLS_PORT (6360), SLAPD_SUFFIX
# (dc=example,dc=org), SLAPD_ROOTPW (secret). `start` writes DIR/env with what
# clients need: LDAP_URL, LDAPS_URL, LDAP_CA, LDAP_SUFFIX, LDAP_ROOTDN, LDAP_ROOTPW.
#
# The database has the suffix entry and a default password policy: the ppolicy
# overlay hashes cleartext userPassword values, refuses binds of locked
# accounts (pwdAccountLockedTime) and holds reset ones (pwdReset) to changing
# their password.
set -euo pipefail

cmd=${1:?usage: slapd.sh start|stop DIR}
dir=${2:?usage: slapd.sh start|stop DIR}
port=${SLAPD_PORT:-3890}
tls_port=${SLAPD_TLS_PORT:-6360}
suffix=${SLAPD_SUFFIX:-dc=example,dc=org}
rootpw=${SLAPD_ROOTPW:-secret}
rootdn="cn=admin,$suffix"

stop() {
  local pidfile="$dir/slapd.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -f "$pidfile"
}

certificates() {
  # A CA, and a certificate for 127.0.0.1 signed by it (rustls does not take
  # a self-signed CA certificate as the server's own).
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=homebase test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/key.pem" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3 -extfile "$dir/server.ext" -out "$dir/cert.pem" 2>/dev/null
}

configure() {
  local hash
  hash=$(slappasswd -s "$rootpw")
  cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
TLSCACertificateFile $dir/ca.pem
TLSCertificateFile $dir/cert.pem
TLSCertificateKeyFile $dir/key.pem

database mdb
maxsize 104857600
suffix "$suffix"
rootdn "$rootdn"
rootpw $hash
directory $dir/db
index objectClass eq
index uid,employeeNumber,member eq
sortvals member
overlay ppolicy
ppolicy_default "cn=default,ou=Policies,$suffix"
ppolicy_hash_cleartext
CONF
  slaptest -u -f "$dir/slapd.conf" >/dev/null 2>&1
}

init_database() {
  local dc=${suffix%%,*}
  dc=${dc#*=}
  # Without a default policy ppolicy ignores pwdAccountLockedTime and pwdReset.
  slapadd -f "$dir/slapd.conf" <<LDIF
dn: $suffix
objectClass: dcObject
objectClass: organization
dc: $dc
o: $dc

dn: ou=Policies,$suffix
objectClass: organizationalUnit
ou: Policies

dn: cn=default,ou=Policies,$suffix
objectClass: pwdPolicy
objectClass: device
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMustChange: TRUE
LDIF
}

start() {
  mkdir -p "$dir/db"
  dir=$(cd "$dir" && pwd)
  stop
  [ -f "$dir/cert.pem" ] || certificates
  [ -f "$dir/slapd.conf" ] || configure
  [ -f "$dir/db/data.mdb" ] || init_database
  # -d keeps slapd in the foreground, so $! is its PID.
  slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tls_port/" \
    -d 0 >"$dir/slapd.log" 2>&1 &
  echo $! >"$dir/slapd.pid"
  for _ in $(seq 1 200); do
    if ldapsearch -x -H "ldap://127.0.0.1:$port" -s base -b "" >/dev/null 2>&1; then
      cat >"$dir/env" <<ENV
LDAP_URL=ldap://127.0.0.1:$port
LDAPS_URL=ldaps://127.0.0.1:$tls_port
LDAP_CA=$dir/ca.pem
LDAP_SUFFIX=$suffix
LDAP_ROOTDN=$rootdn
LDAP_ROOTPW=$rootpw
ENV
      return 0
    fi
    if ! kill -0 "$(cat "$dir/slapd.pid")" 2>/dev/null; then
      echo "slapd did not start; its log:" >&2
      cat "$dir/slapd.log" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "slapd did not answer on 127.0.0.1:$port within 10 s" >&2
  stop
  return 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: slapd.sh start|stop DIR" >&2; exit 2 ;;
esac
