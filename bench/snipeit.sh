#!/usr/bin/env bash
# Snipe-IT at its default API limit of 60 requests a minute, in real
# minutes: 200 persons against the fake in v7 mode (a 429 without headers),
# every window within the limit and the run within 10 % of the plan's
# estimate. About a quarter of an hour, so not part of the test suite.
# Prints `RESULT per_minute=60 … ratio=…` (span of the run / the estimate).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test it snipeit::v7_at_snipe_its_default_of_60_a_minute -- --ignored --nocapture 2>&1 |
  tee /dev/stderr | grep '^RESULT' || { echo "the paced run failed" >&2; exit 1; }
