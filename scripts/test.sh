#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: install what the tests
# need (WireGuard tools for the real-parser checks, Python's venv for the SCIM
# server from PyPI), then lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wg >/dev/null 2>&1 || need+=(wireguard-tools)
command -v wireguard-go >/dev/null 2>&1 || need+=(wireguard-go)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Debian's python3 imports venv without python3-venv but cannot create one.
if command -v dpkg >/dev/null 2>&1; then
  dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
else
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]}: install them (as root) for the WireGuard and SCIM tests" >&2
  fi
fi
# scim2-server from PyPI into a venv under target/ (quick when it is there).
if [ "$(id -u)" = 0 ]; then
  tests/servers/scim.sh install
else
  tests/servers/scim.sh install || echo "no scim2-server: the SCIM tests will skip" >&2
fi

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# The WireGuard and SCIM tests refuse to skip when these are set (CI has the tools).
export HOMEBASE_REQUIRE_WG=${HOMEBASE_REQUIRE_WG:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
export HOMEBASE_REQUIRE_SCIM=${HOMEBASE_REQUIRE_SCIM:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
cargo test --all-targets
