#!/usr/bin/env bash
# Sets up and runs the tests: unit tests and the integration suite against a real
# redis-server that the tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo test --locked "$@"
