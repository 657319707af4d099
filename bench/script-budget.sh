#!/usr/bin/env bash
# How long Leasehold's scripts hold Redis at most: starts a fresh redis-server (logging
# every call in its SLOWLOG) and `leasehold serve` (sweeping every second) on free loopback
# ports, makes the heaviest requests the API takes (adds of 1,000 items of 1.9 KB, claims
# of 100 completed with data, pages of 1,000, an event log of 100,000 cut to 50,000 and
# to none, a sweep of 2,000 finished items, a pool of 100,000 items deleted), and prints
# the slowest call of each script. Compare with Redis's busy-reply-threshold (5 s).
set -euo pipefail
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
  --allow-anonymous --sweep-interval-secs 1 >"$WORK/leasehold.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" bench budget --url "http://127.0.0.1:$hp" --redis "redis://127.0.0.1:$rp"
