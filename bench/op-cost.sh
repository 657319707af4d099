#!/usr/bin/env bash
# What each operation costs Redis: starts a fresh redis-server and `leasehold serve` (no
# sweeper, no rate limit: nothing else runs scripts) on free loopback ports, makes CALLS
# calls (default 2000) of each operation through the HTTP API one at a time (each write
# with its own Idempotency-Key, as the clients send them), and reads the mean execution
# time of its script from `INFO commandstats` (`cmdstat_evalsha`, reset before each
# operation); then times, the same way on the same Redis, a minimal script that makes the
# same writes (for claim_next: ZPOPMIN + INCR + HSET + ZADD; for the others the item,
# index and event-log writes, see `MINIMAL` in src/bench.rs). Prints a Markdown table of
# both and their ratio.
set -euo pipefail
CALLS=${CALLS:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

"$ROOT/scripts/ensure-redis.sh"
echo "== building the release binary"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --bin leasehold -q)
BIN=$TARGET_DIR/release/leasehold

rp=$(free_port)
redis-server --bind 127.0.0.1 --port "$rp" --save "" --appendonly no \
  --maxmemory-policy noeviction --protected-mode no --dir "$WORK" \
  --logfile "$WORK/redis.log" --daemonize no &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$rp" PING >/dev/null 2>&1 && break; sleep 0.1; done
hp=$(free_port)
LEASEHOLD_LOG=warn "$BIN" serve --listen "127.0.0.1:$hp" --redis "redis://127.0.0.1:$rp" \
  --allow-anonymous --sweep-interval-secs 0 >"$WORK/leasehold.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" bench cost --url "http://127.0.0.1:$hp" --redis "redis://127.0.0.1:$rp" --calls "$CALLS"
