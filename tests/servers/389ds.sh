#!/usr/bin/env bash
# A private 389 Directory Server (Debian's 389-ds-base) for the tests, on
# 127.0.0.1 only, with everything it writes below DIR.
#
#   tests/servers/389ds.sh start DIR   create the instance in DIR (dscreate
#                                      from-file) and start it; a DIR that has
#                                      an instance is started as it is
#   tests/servers/389ds.sh stop DIR    stop the server of DIR by its PID file
#   tests/servers/389ds.sh remove DIR  stop it and delete DIR's instance
#
# Environment: DS389_PORT (required: a free port), DS389_SUFFIX
# (dc=example,dc=org), DS389_ROOTPW (Secret-389-admin). `start` writes DIR/env
# with what clients need: LDAP_URL, LDAP_SUFFIX, LDAP_ROOTDN, LDAP_ROOTPW.
#
# How it is kept private (see docs/389ds.md):
# - lib389 (dscreate, dsconf) takes its paths from PREFIX/share/dirsrv/inf/
#   defaults.inf when PREFIX is set: a copy whose /etc, /var, /run and /dev/shm
#   paths point into DIR/prefix, so nothing lands in /etc/dirsrv or /var/lib.
# - dscreate starts and checks the server through `systemctl` (Debian builds
#   lib389 with systemd), which these machines do not run: a stand-in named
#   systemctl, first on PATH for dscreate only, starts ns-slapd directly and
#   answers is-active from its PID file. Likewise systemd-detect-virt says
#   "container", which makes dscreate keep the database environment in the
#   instance's db directory instead of /dev/shm.
# - The server runs as the package's `dirsrv` user, so DIR is opened for it
#   (DIR gets 0755, parents of mode 0700 such as temp dirs get 0711).
# - The password policy at cn=config has passwordMustChange: on, as an admin
#   sets it for "users must change the password an admin set"; the access
#   log is written unbuffered, so tests can count the operations in it.
set -euo pipefail

cmd=${1:?usage: 389ds.sh start|stop|remove DIR}
dir=${2:?usage: 389ds.sh start|stop|remove DIR}
suffix=${DS389_SUFFIX:-dc=example,dc=org}
rootpw=${DS389_ROOTPW:-Secret-389-admin}
rootdn="cn=Directory Manager"
name=hb$$

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
prefix="$dir/prefix"

instance_name() {
  local conf
  conf=$(ls -d "$prefix"/etc/dirsrv/slapd-* 2>/dev/null | head -1)
  [ -n "$conf" ] && basename "$conf" | sed 's/^slapd-//'
}

pidfile() {
  echo "$prefix/run/dirsrv/slapd-$1.pid"
}

stop() {
  local inst pid
  inst=$(instance_name) || return 0
  [ -n "$inst" ] || return 0
  [ -f "$(pidfile "$inst")" ] || return 0
  pid=$(cat "$(pidfile "$inst")")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -f "$(pidfile "$inst")"
}

# The stand-ins dscreate calls instead of systemd's tools.
shims() {
  mkdir -p "$dir/shim"
  cat >"$dir/shim/systemctl" <<SHIM
#!/usr/bin/env bash
# Stand-in for systemctl while dscreate runs (tests/servers/389ds.sh).
set -eu
verb=\$1
[ "\$verb" = "is-active" ] && shift
[ "\${1:-}" = "--quiet" ] && shift
[ "\$verb" = "is-active" ] || shift
unit=\${1:-}
inst=\${unit#dirsrv@}
conf="$prefix/etc/dirsrv/slapd-\$inst"
pidfile="$prefix/run/dirsrv/slapd-\$inst.pid"
running() { [ -f "\$pidfile" ] && kill -0 "\$(cat "\$pidfile")" 2>/dev/null; }
case "\$verb" in
  start)
    running && exit 0
    /usr/sbin/ns-slapd -D "\$conf" -i "\$pidfile"
    for _ in \$(seq 1 600); do running && exit 0; sleep 0.1; done
    exit 1 ;;
  stop)
    running || exit 0
    kill -TERM "\$(cat "\$pidfile")"
    for _ in \$(seq 1 600); do running || exit 0; sleep 0.1; done
    exit 1 ;;
  is-active) running ;;
  enable|disable|daemon-reload) exit 0 ;;
  *) echo "systemctl stand-in: \$verb not supported" >&2; exit 1 ;;
esac
SHIM
  printf '#!/bin/sh\n# Stand-in (tests/servers/389ds.sh): keep the db environment on disk.\necho container-other\n' \
    >"$dir/shim/systemd-detect-virt"
  chmod 755 "$dir/shim/systemctl" "$dir/shim/systemd-detect-virt"
}

create() {
  local port=${DS389_PORT:?DS389_PORT: a free port on 127.0.0.1}
  # The server runs as dirsrv: it must reach its files below DIR.
  chmod 755 "$dir"
  local up
  up=$(dirname "$dir")
  while [ "$up" != / ]; do
    [ "$(stat -c %a "$up")" = 700 ] && chmod 711 "$up"
    up=$(dirname "$up")
  done
  mkdir -p "$prefix/share/dirsrv/inf" "$prefix/etc/dirsrv" "$prefix/etc/default" \
    "$prefix/etc/tmpfiles.d" "$prefix/var/lib/dirsrv" "$prefix/var/log/dirsrv" \
    "$prefix/run/dirsrv" "$prefix/run/lock/dirsrv" "$prefix/dev/shm"
  cp -r /etc/dirsrv/config /etc/dirsrv/schema "$prefix/etc/dirsrv/"
  sed -E -e "s#^prefix = .*#prefix = $prefix#" \
    -e "s#^([a-z_]+ = )(/etc|/var|/run|/dev/shm)#\\1$prefix\\2#" \
    /usr/share/dirsrv/inf/defaults.inf >"$prefix/share/dirsrv/inf/defaults.inf"
  chown -R dirsrv:dirsrv "$prefix/run" "$prefix/var" "$prefix/dev"
  shims
  cat >"$dir/instance.inf" <<INF
[general]
config_version = 2
full_machine_name = localhost
strict_host_checking = False
selinux = False
start = True

[slapd]
instance_name = $name
port = $port
root_password = $rootpw
self_sign_cert = False

[backend-userroot]
suffix = $suffix
create_suffix_entry = True
sample_entries = no
INF
  if ! PREFIX="$prefix" PATH="$dir/shim:$PATH" dscreate from-file "$dir/instance.inf" \
    >"$dir/dscreate.log" 2>&1; then
    echo "dscreate failed; its output:" >&2
    cat "$dir/dscreate.log" >&2
    return 1
  fi
  echo "$port" >"$dir/port"
  # Must-change after an admin set the password, as an admin would set it
  # for homebase; 389's default size limit, said; an access log tests read.
  ldapmodify -x -H "ldap://127.0.0.1:$port" -D "$rootdn" -w "$rootpw" >/dev/null <<LDIF
dn: cn=config
changetype: modify
replace: passwordMustChange
passwordMustChange: on
-
replace: nsslapd-sizelimit
nsslapd-sizelimit: 2000
-
replace: nsslapd-accesslog-logbuffering
nsslapd-accesslog-logbuffering: off
LDIF
  # The staff id is what homebase looks accounts up by (389 indexes uid and
  # member, not employeeNumber); a new index on an empty database needs no
  # reindexing.
  ldapadd -x -H "ldap://127.0.0.1:$port" -D "$rootdn" -w "$rootpw" >/dev/null <<LDIF
dn: cn=employeeNumber,cn=index,cn=userRoot,cn=ldbm database,cn=plugins,cn=config
objectClass: top
objectClass: nsIndex
cn: employeeNumber
nsSystemIndex: false
nsIndexType: eq
nsIndexType: pres
LDIF
}

start() {
  if [ -z "$(instance_name)" ]; then
    create
  else
    stop
    shims
    local inst
    inst=$(instance_name)
    PATH="$dir/shim:$PATH" systemctl start "dirsrv@$inst"
  fi
  local port inst
  port=$(cat "$dir/port")
  inst=$(instance_name)
  for _ in $(seq 1 200); do
    if ldapsearch -x -H "ldap://127.0.0.1:$port" -s base -b "" >/dev/null 2>&1; then
      cat >"$dir/env" <<ENV
LDAP_URL=ldap://127.0.0.1:$port
LDAP_SUFFIX=$suffix
LDAP_ROOTDN=$rootdn
LDAP_ROOTPW=$rootpw
DS389_INSTANCE=$inst
ENV
      return 0
    fi
    sleep 0.05
  done
  echo "389-ds did not answer on 127.0.0.1:$port within 10 s; its error log:" >&2
  cat "$prefix"/var/log/dirsrv/slapd-*/errors >&2 || true
  stop
  return 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  remove) stop; rm -rf "$prefix" "$dir/shim" "$dir/env" "$dir/port" ;;
  *) echo "usage: 389ds.sh start|stop|remove DIR" >&2; exit 2 ;;
esac
