#!/usr/bin/env bash
# Sets up and runs Leasehold on its embedded default: its own redis-server, data in ./.leasehold.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo run --release --locked --bin leasehold -- dev "$@"
