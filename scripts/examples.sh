#!/usr/bin/env bash
# Runs the client examples against a real `leasehold dev` (its own redis-server, a free
# loopback port, a throwaway data directory) and checks what they print: two workers
# draining a seeded pool together completed every item exactly once, and the pool's audit
# trail says who held an item and that it was completed; a worker waiting on an empty pool
# (a long-poll claim) takes an item the moment it is added; a worker stopped by SIGTERM
# gives its item back, which a following audit sees live until the pool is deleted; and
# each firm's case IDs are distinct and numbered 1..N. Each item's work outlasts its lease
# time, so only the lease guard's renewals let it complete. Stops leasehold by its own pid
# on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh

ITEMS=12
CASES=5
cargo build --locked --quiet --bin leasehold
cargo build --locked --quiet -p leasehold-client --examples
bin="${CARGO_TARGET_DIR:-target}/debug"

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
  echo "examples: $*" >&2
  echo "--- leasehold's log" >&2
  cat "$work/leasehold.log" >&2 || true
  exit 1
}

start_dev "$bin/leasehold" "$work"

# Seed a pool, then drain it with two workers at once.
pool="examples"
items="$(for i in $(seq 1 "$ITEMS"); do printf '{"id":"case-%02d","data":{"n":%d}},' "$i" "$i"; done)"
curl -fsS "$url/v1/pools/$pool/items" -H 'content-type: application/json' \
  -d "{\"items\":[${items%,}]}" >/dev/null || fail "cannot seed the pool"
for w in w1 w2; do
  timeout 60 "$bin/examples/worker" --url "$url" --pool "$pool" --holder "$w" \
    --lease-ms 300 --work-ms 400 --drain >"$work/$w.out" 2>"$work/$w.err" &
  eval "pid_$w=\$!"
done
wait "$pid_w1" || { cat "$work/w1.out" "$work/w1.err" >&2; fail "worker w1 failed"; }
wait "$pid_w2" || { cat "$work/w2.out" "$work/w2.err" >&2; fail "worker w2 failed"; }
grep -h '^worker ' "$work/w1.out" "$work/w2.out"
if grep -q '^lost ' "$work/w1.out" "$work/w2.out"; then fail "a worker lost a lease it kept renewing"; fi

completed="$(sed -n 's/^completed \([^ ]*\) .*/\1/p' "$work/w1.out" "$work/w2.out" | sort)"
expected="$(for i in $(seq 1 "$ITEMS"); do printf 'case-%02d\n' "$i"; done)"
[ "$completed" = "$expected" ] || fail "the workers did not complete each item exactly once:
$completed"
curl -fsS "$url/v1/pools/$pool" | grep -q "\"done\":$ITEMS" || fail "the pool does not show $ITEMS done"

# The audit trail of one item: who held it, under which token, and how it ended.
done_by="$(grep -l '^completed case-01 ' "$work/w1.out" "$work/w2.out" | head -n 1)"
done_by="$(basename "${done_by:-none}" .out)"
token="$(sed -n 's/^completed case-01 token \([0-9]*\)$/\1/p' "$work/w1.out" "$work/w2.out")"
timeout 60 "$bin/examples/audit" --url "$url" --pool "$pool" --item case-01 >"$work/audit.out" \
  || fail "audit failed"
cat "$work/audit.out"
grep -q ' case-01 added available v1$' "$work/audit.out" || fail "audit: case-01 was not added"
grep -q " case-01 completed done v[0-9]* $done_by token $token\$" "$work/audit.out" \
  || fail "audit: case-01 was not completed by $done_by under token $token"
grep -q "^held case-01 by $done_by token $token from .* (completed)\$" "$work/audit.out" \
  || fail "audit: no lease of $done_by ending in completion"

# A worker on an empty pool waits with a long-poll claim, and takes an item the moment
# it is added (well before its 30 s wait is over).
curl -fsS -X PUT "$url/v1/pools/later" -H 'content-type: application/json' -d '{}' >/dev/null \
  || fail "cannot create the pool later"
timeout 60 "$bin/examples/worker" --url "$url" --pool later --holder w4 --max-items 1 \
  >"$work/w4.out" 2>&1 &
pid_w4=$!
for _ in $(seq 1 300); do
  grep -q '^waiting for work in later$' "$work/w4.out" && break
  sleep 0.1
done
grep -q '^waiting for work in later$' "$work/w4.out" || fail "worker w4 never waited"
added_at="$(date +%s%3N)"
curl -fsS "$url/v1/pools/later/items" -H 'content-type: application/json' \
  -d '{"items":[{"id":"fresh"}]}' >/dev/null || fail "cannot add to the pool later"
for _ in $(seq 1 1000); do
  grep -q '^claimed fresh ' "$work/w4.out" && break
  sleep 0.01
done
claimed_ms=$(( $(date +%s%3N) - added_at ))
wait "$pid_w4" || { cat "$work/w4.out" >&2; fail "worker w4 failed"; }
grep -q '^completed fresh ' "$work/w4.out" || { cat "$work/w4.out" >&2; fail "worker w4 did not complete fresh"; }
[ "$claimed_ms" -lt 3000 ] || fail "worker w4 took ${claimed_ms} ms to claim an item added while it waited"
grep -h '^worker ' "$work/w4.out"

# SIGTERM mid-work: the worker gives its item back and exits cleanly.
curl -fsS "$url/v1/pools/stopping/items" -H 'content-type: application/json' \
  -d '{"items":[{"id":"long"}]}' >/dev/null || fail "cannot seed the second pool"
timeout 60 "$bin/examples/worker" --url "$url" --pool stopping --holder w3 --work-ms 60000 \
  >"$work/w3.out" 2>&1 &
pid_w3=$!
for _ in $(seq 1 300); do
  grep -q '^claimed long ' "$work/w3.out" && break
  sleep 0.1
done
grep -q '^claimed long ' "$work/w3.out" || fail "worker w3 never claimed"
kill -TERM "$pid_w3"
wait "$pid_w3" || { cat "$work/w3.out" >&2; fail "worker w3 did not stop cleanly on SIGTERM"; }
grep -q '^released long .*(stopping)' "$work/w3.out" || fail "worker w3 did not release its item"
grep -h '^worker ' "$work/w3.out"
curl -fsS "$url/v1/pools/stopping/items/long" | grep -q '"state":"available"' \
  || fail "the item w3 held is not available again"

# Following that pool's events: the history so far, then the end when the pool is deleted.
timeout 60 "$bin/examples/audit" --url "$url" --pool stopping --follow >"$work/follow.out" 2>&1 &
pid_follow=$!
for _ in $(seq 1 300); do
  grep -q ' long released available ' "$work/follow.out" && break
  sleep 0.1
done
grep -q ' long released available v[0-9]* w3 token ' "$work/follow.out" \
  || { cat "$work/follow.out" >&2; fail "the following audit did not see w3 release long"; }
curl -fsS -X DELETE "$url/v1/pools/stopping" || fail "cannot delete the pool stopping"
wait "$pid_follow" || { cat "$work/follow.out" >&2; fail "the following audit failed"; }
grep -q '^pool stopping is gone$' "$work/follow.out" \
  || { cat "$work/follow.out" >&2; fail "the following audit did not end with the pool"; }

# Case IDs for two firms, drawn all at once per firm.
timeout 60 "$bin/examples/case_ids" --url "$url" --count "$CASES" \
  --firm acme:Europe/Paris --firm globex:America/New_York >"$work/case_ids.out" \
  || fail "case_ids failed"
cat "$work/case_ids.out"
numbers="$(for i in $(seq 1 "$CASES"); do printf '%05d\n' "$i"; done)"
for firm in acme globex; do
  ids="$(sed -n "s/^$firm \(CASE-[0-9]\{8\}-[0-9]\{5\}\)$/\1/p" "$work/case_ids.out")"
  [ "$(printf '%s\n' "$ids" | sort -u | wc -l)" -eq "$CASES" ] || fail "$firm: not $CASES distinct ids"
  [ "$(printf '%s\n' "$ids" | cut -d- -f3)" = "$numbers" ] || fail "$firm: not numbered 1..$CASES in order"
done
echo "examples: OK ($ITEMS items, each worked on past its lease time, completed once each by two workers, as the audit trail shows; a waiting worker claimed a new item in ${claimed_ms} ms; a worker stopped by SIGTERM gave its item back, seen live by a follower that ended with the pool; $CASES case ids per firm)"
