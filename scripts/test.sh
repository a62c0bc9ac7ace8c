#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: install what the tests
# need (WireGuard tools for the real-parser checks), then lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wg >/dev/null 2>&1 || need+=(wireguard-tools)
command -v wireguard-go >/dev/null 2>&1 || need+=(wireguard-go)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]}: install them (as root) for the WireGuard tests" >&2
  fi
fi

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# The WireGuard tests refuse to skip when this is set (CI has the tools).
export HOMEBASE_REQUIRE_WG=${HOMEBASE_REQUIRE_WG:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
cargo test --all-targets
