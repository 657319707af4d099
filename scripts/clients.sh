#!/usr/bin/env bash
# The clients, each against real `leasehold dev` servers (their own redis-server, free
# loopback ports): the conformance suite (clients/conformance) through the Rust client,
# which must also catch every deliberately wrong scenario in must-fail/; then the
# TypeScript client's suite (npm ci from its lockfile, tsc, node --test) and the Python
# client's (a virtualenv, mypy --strict, pytest), each of which runs the same conformance
# suite through its client, installs its packed package into a fresh project outside the
# repository, and runs its examples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh

command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "clients: Node.js 18 or later with npm is needed" >&2; exit 1; }
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ] \
  || { echo "clients: Node.js 18 or later is needed (found $(node --version))" >&2; exit 1; }
command -v python3 >/dev/null || { echo "clients: python3 (3.10 or later) is needed" >&2; exit 1; }

cargo build --locked --quiet --bin leasehold
cargo build --locked --quiet -p leasehold-client --example conformance
bin="$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)"
export LEASEHOLD_BIN="$bin/leasehold"
unset LEASEHOLD_URL

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/start-dev.sh
. scripts/lib/start-dev.sh
fail() {
  echo "clients: $*" >&2
  echo "--- leasehold's log" >&2
  cat "$work/leasehold.log" >&2 || true
  exit 1
}

echo "== the conformance suite through the Rust client"
start_dev "$LEASEHOLD_BIN" "$work"
"$bin/examples/conformance" --url "$url" || fail "the Rust client failed the conformance suite"
echo "-- and each must-fail scenario caught"
"$bin/examples/conformance" --url "$url" --expect-failure clients/conformance/must-fail/*.json \
  || fail "the Rust runner passed a scenario that must fail"
kill "$pid" && wait "$pid" 2>/dev/null || true
pid=""

echo "== the TypeScript client"
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npm test)

echo "== the Python client"
clients/python/test.sh
