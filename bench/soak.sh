#!/usr/bin/env bash
# The retention soak: items flowing through add → claim → complete (one in a hundred
# released once and so dead) on a pool of a real `leasehold serve`, while Redis's
# used_memory is sampled every 10 s. Run twice, each on a fresh redis-server:
#   1. keep_done_ms = keep_dead_ms = 10 s (and answers kept 10 s): memory must stay flat,
#      the last sample at most 1.1 × the one after the first minute;
#   2. the control, items kept for ever: memory grows with the items through.
# SOAK_ITEMS (default 1,000,000) items each; SOAK_WORKERS (16) concurrent workers.
# Installs redis-server if missing and builds the release binary. Prints both runs and
# their verdicts; exits 1 if the first is not flat or the control does not grow.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ITEMS=${SOAK_ITEMS:-1000000}
WORKERS=${SOAK_WORKERS:-16}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
PIDS=()
log() { printf '== %s\n' "$*"; }
die() { printf 'soak: %s\n' "$*" >&2; exit 1; }
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() { local rc=$?; stop_all; rm -rf "$WORK"; exit "$rc"; }
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

"$ROOT/scripts/ensure-redis.sh"
log "building the release binary"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --bin leasehold -q)
BIN=$TARGET_DIR/release/leasehold

# One run: a fresh redis-server and leasehold serve, the soak, then both stopped.
run() {
  local keep=$1 out=$2 rp hp
  rp=$(free_port)
  mkdir -p "$WORK/redis-$rp"
  redis-server --bind 127.0.0.1 --port "$rp" --save "" --appendonly no \
    --maxmemory-policy noeviction --protected-mode no --dir "$WORK/redis-$rp" \
    --logfile "$WORK/redis-$rp/redis.log" --daemonize no &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$rp" PING >/dev/null 2>&1 && break; sleep 0.1; done
  hp=$(free_port)
  LEASEHOLD_LOG=warn "$BIN" serve --listen "127.0.0.1:$hp" --redis "redis://127.0.0.1:$rp" \
    --allow-anonymous --idempotency-ttl-secs 10 --sweep-interval-secs 10 \
    >"$WORK/leasehold-$hp.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  "$BIN" bench soak --url "http://127.0.0.1:$hp" --redis "redis://127.0.0.1:$rp" \
    --items "$ITEMS" --workers "$WORKERS" --keep-ms "$keep" | tee "$out"
  stop_all
}

log "retention on: keep_done_ms = keep_dead_ms = 10000, $ITEMS items"
run 10000 "$WORK/on.txt"
log "the control: kept for ever, $ITEMS items"
run forever "$WORK/off.txt"

ratio() { sed -n 's/.*= \([0-9.]*\)$/\1/p' "$1"; }
on=$(ratio "$WORK/on.txt")
off=$(ratio "$WORK/off.txt")
[[ -n "$on" && -n "$off" ]] || die "a run ended before its first minute: raise SOAK_ITEMS"
log "last / after the first minute: retention on $on, kept for ever $off"
awk -v on="$on" -v off="$off" 'BEGIN { exit !(on <= 1.1 && off > 1.1) }' ||
  die "expected flat with retention (≤ 1.1) and growth without (> 1.1)"
log "flat with retention, growing without"
