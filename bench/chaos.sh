#!/usr/bin/env bash
# Chaos: the whole workplace against real servers (slapd, scim2-server, a live
# wireguard-go interface in a network namespace, OpenVPN with homebase's CA,
# the Snipe-IT fake) with the 1,200 example staff. Each round leaves a random
# 2.5 % of the staff out, starts `homebase apply` and SIGKILLs homebase,
# slapd, scim2-server, wireguard-go or the Snipe-IT fake (a process of its
# own with its data in a journal) at a random moment of it, starts what
# was killed again and applies until it finishes. After all rounds (and a
# last apply with everybody) it checks that every person has one account
# across the directories, every bundle's WireGuard key is its peer on the
# interface, every OpenVPN certificate verifies against the CA and matches
# its key, every device a bundle lists is checked out to its holder and
# nobody holds one their bundle does not list, and `plan --detailed-exitcode`
# exits 0. Prints the seed, a line per round (victim, kill moment) and ends
# with one line:
#   RESULT rounds=… violations=… seed=…
#
# The test is tests/it/chaos.rs (the suite runs one round of it); needs root.
#
#   bench/chaos.sh [ROUNDS]        (default 20)  HOMEBASE_CHAOS_SEED=… replays a run
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
export HOMEBASE_CHAOS_ROUNDS=$rounds
export HOMEBASE_CHAOS_PERSONS=${HOMEBASE_CHAOS_PERSONS:-1200}
export HOMEBASE_REQUIRE_SCIM=${HOMEBASE_REQUIRE_SCIM:-1}
export HOMEBASE_REQUIRE_OPENVPN=${HOMEBASE_REQUIRE_OPENVPN:-1}
export HOMEBASE_REQUIRE_WG=${HOMEBASE_REQUIRE_WG:-1}
export HOMEBASE_REQUIRE_LDAP=${HOMEBASE_REQUIRE_LDAP:-1}
status=0
cargo test --test it chaos:: -- --nocapture 2>&1 | tee /tmp/homebase-chaos.$$.log >&2 || status=$?
grep '^RESULT' /tmp/homebase-chaos.$$.log || echo "RESULT rounds=$rounds violations=? (the run failed before its checks)"
rm -f /tmp/homebase-chaos.$$.log
exit "$status"
