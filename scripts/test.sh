#!/usr/bin/env bash
# Sets up and runs the tests: unit tests and the integration suite against a real
# redis-server that the tests start on free loopback ports (the dashboard's in headless
# Chromium), the client examples against `leasehold dev`, the TypeScript and Python clients
# and the conformance suite all three clients run (scripts/clients.sh), the contract suite
# again against a real Redis Cluster of three primaries and three replicas, and
# schemathesis against the OpenAPI description of a running `leasehold dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
scripts/ensure-chromium.sh
cargo test --locked --workspace "$@"
scripts/examples.sh  # the client examples, run against a real `leasehold dev`
scripts/clients.sh   # the three clients' conformance suite, and the TypeScript and Python clients
echo "== the contract suite again, on a Redis Cluster"
# (tests that bring their own servers skip themselves there: `skipped_on_topology_rerun`)
LEASEHOLD_TEST_TOPOLOGY=cluster cargo test --locked --test api
scripts/schemathesis.sh
