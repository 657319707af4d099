#!/usr/bin/env bash
# Tests the running server against its own description: starts `leasehold dev` (with its
# own redis-server) on a free loopback port and a temporary data directory, and runs
# schemathesis with every check against GET /openapi.json. Any failure fails the script.
#
# Requests carry a real API key (a key file made with `leasehold keygen`), so they take
# the path `serve` takes. `dev` also accepts requests without a key, and its description
# says so (the key is optional there), so the ignored_auth check has nothing to enforce
# here; tests/api/openapi.rs checks that `serve` describes the key as required, and
# tests/api/tenants.rs that it refuses requests without one.
#
# SCHEMATHESIS_MAX_EXAMPLES (default 30) bounds the test cases per operation and phase;
# SCHEMATHESIS_MAX_TIME (default 100) is the seconds the whole run takes (fuzzing and
# stateful testing go on with new examples until it is spent). Further arguments go to
# `schemathesis run` (such as --seed N to repeat a run).
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$version"; then
  echo "== installing schemathesis $version in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

scripts/ensure-redis.sh
cargo build --locked --quiet --bin leasehold
leasehold="${CARGO_TARGET_DIR:-target}/debug/leasehold"

work=$(mktemp -d)
pid=
stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

"$leasehold" keygen --tenant schemathesis >"$work/key"
sed -n 2p "$work/key" >"$work/api-keys"
LEASEHOLD_SCHEMATHESIS_KEY=$(sed -n 1p "$work/key")
export LEASEHOLD_SCHEMATHESIS_KEY

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$leasehold" dev --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --api-keys "$work/api-keys" >"$work/leasehold.log" 2>&1 &
pid=$!

python3 - "$base/readyz" <<'EOF' || { cat "$work/leasehold.log"; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("leasehold dev did not become ready within 30 s")
    time.sleep(0.1)
EOF

# One worker: with two, schemathesis's generator can trip CPython 3.11's "AST constructor
# recursion depth mismatch" (an interpreter fault with concurrent parsing, fixed in later
# releases), which ends the run with an error instead of a verdict.
echo "== schemathesis $version against $base/openapi.json"
started=$SECONDS
status=0
# Every check is on: scripts/schemathesis.toml says so (rather than --checks all, which
# would also override its one per-operation exception).
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml --no-color run "$base/openapi.json" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-100}" \
  --workers 1 \
  "$@" || status=$?
echo "== schemathesis took $((SECONDS - started)) s"
if [ "$status" -ne 0 ]; then
  echo "== the server's log:"
  tail -n 50 "$work/leasehold.log"
fi
exit "$status"
