#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: install what the tests
# need (WireGuard tools for the real-parser checks, Python's venv for the SCIM
# server from PyPI, node and npm for the second SCIM server, slapd, Samba AD and
# 389-ds for the ldap target, openvpn and easy-rsa for the openvpn target and
# its bench, PostgreSQL 15 for the shared state store, chromium and
# chromedriver for the HTML review), then lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wg >/dev/null 2>&1 || need+=(wireguard-tools)
command -v wireguard-go >/dev/null 2>&1 || need+=(wireguard-go)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The tunnel tests ping through WireGuard between network namespaces.
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Debian's python3 imports venv without python3-venv but cannot create one.
if command -v dpkg >/dev/null 2>&1; then
  dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
else
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
fi
# The second SCIM server (tests/servers/scimmy.sh) runs on node from npm packages.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v slapd >/dev/null 2>&1 || need+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need+=(ldap-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v openvpn >/dev/null 2>&1 || need+=(openvpn)
[ -x /usr/share/easy-rsa/easyrsa ] || need+=(easy-rsa)
# The PostgreSQL state store tests start their own server (tests/servers/postgres.sh).
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client-15)
# The browser test of the HTML review drives Debian's chromium through chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# Encrypted bundles are opened with Debian's age; the letters PDF is read back
# with poppler's pdfinfo/pdftotext/pdffonts/pdftoppm.
command -v age >/dev/null 2>&1 || need+=(age)
# The encrypted-bundle test makes an ssh-ed25519 recipient with ssh-keygen.
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
# Samba's AD DC needs all four, or provisioning fails.
command -v samba >/dev/null 2>&1 || need+=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules)
# 389 Directory Server for the `flavour: 389ds` tests (tests/servers/389ds.sh).
command -v dscreate >/dev/null 2>&1 || need+=(389-ds-base)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    # Installed packages must not start their system services (slapd, smbd).
    if [ ! -x /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]}: install them (as root) for the WireGuard, SCIM and LDAP tests" >&2
  fi
fi
# scim2-server from PyPI into a venv under target/ (quick when it is there).
if [ "$(id -u)" = 0 ]; then
  tests/servers/scim.sh install
  tests/servers/scimmy.sh install
else
  tests/servers/scim.sh install || echo "no scim2-server: the SCIM tests will skip" >&2
  tests/servers/scimmy.sh install || echo "no SCIMMY server: its SCIM tests will skip" >&2
fi

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# The WireGuard, SCIM, LDAP, 389-ds, OpenVPN, PostgreSQL and browser tests refuse to skip when these are set (CI has the tools).
root=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
export HOMEBASE_REQUIRE_WG=${HOMEBASE_REQUIRE_WG:-$root}
export HOMEBASE_REQUIRE_SCIM=${HOMEBASE_REQUIRE_SCIM:-$root}
export HOMEBASE_REQUIRE_LDAP=${HOMEBASE_REQUIRE_LDAP:-$root}
export HOMEBASE_REQUIRE_OPENVPN=${HOMEBASE_REQUIRE_OPENVPN:-$root}
export HOMEBASE_REQUIRE_PG=${HOMEBASE_REQUIRE_PG:-$root}
export HOMEBASE_REQUIRE_389DS=${HOMEBASE_REQUIRE_389DS:-$root}
export HOMEBASE_REQUIRE_CHROMIUM=${HOMEBASE_REQUIRE_CHROMIUM:-$root}
export HOMEBASE_REQUIRE_AGE=${HOMEBASE_REQUIRE_AGE:-$root}
export HOMEBASE_REQUIRE_POPPLER=${HOMEBASE_REQUIRE_POPPLER:-$root}
# One integration-test binary: three at a time, since the Snipe-IT tests
# mostly wait out real one-minute rate windows while the others work.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-3}
cargo test --all-targets
# The suite above replays every fuzz target's seeds on stable and feeds
# each target its seeds mutated at random for 1.5 s (tests/it/fuzz_corpus.rs:
# a mutation loop without coverage feedback), and runs one chaos round
# (tests/it/chaos.rs). libFuzzer itself runs only when asked
# (HOMEBASE_CI_FUZZ_SECONDS=3): its build of the fuzz crate is a second build
# of every dependency with coverage instrumentation (even the quickest, a
# stable debug build: 550 s of CPU, 14.5 min on a busy 2-core machine),
# which is the build used here: no nightly, no cargo-fuzz.
if [ "${HOMEBASE_CI_FUZZ_SECONDS:-0}" -gt 0 ]; then
  HOMEBASE_FUZZ_BUILD=${HOMEBASE_FUZZ_BUILD:-dev} bench/fuzz.sh "$HOMEBASE_CI_FUZZ_SECONDS"
fi
