#!/usr/bin/env bash
# bench/run.sh: the whole benchmark in one command (issue 5, "The benchmark").
#
#   bench/run.sh
#
# Installs what is missing (Debian packages: redis-server, wrk, postgresql, gnuplot-nox),
# builds the release binary, starts its own redis-server, `leasehold serve` and a
# PostgreSQL 15 temp cluster on loopback ports it picks, preloads the pools and the table,
# measures, prints one table, writes it into docs/benchmarks.md (between the markers) with
# a chart docs/benchmarks-claim.png, and stops everything it started by pid (also on
# Ctrl-C or failure). Runs in about 3-6 minutes on 2 cores.
#
# Knobs (environment):
#   BENCH_ITEMS=1000000   items in each throughput pool and in the PostgreSQL table
#   BENCH_SECONDS=8       seconds per throughput point
#   BENCH_CONNS="1 64 256" concurrencies
#   BENCH_GROWTH_CLAIMS=300 claims per growth point (c=1; 3 rounds, median)
#   BENCH_DOC=docs/benchmarks.md  where the table goes ('' = print only)
#   BENCH_KEEP=1          keep the temp dir (logs) at the end
#   CARGO_TARGET_DIR      as for cargo (default: target/ in the repo)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
ITEMS=${BENCH_ITEMS:-1000000}
SECS=${BENCH_SECONDS:-8}
read -r -a CONNS <<< "${BENCH_CONNS:-1 64 256}"
GROWTH_CLAIMS=${BENCH_GROWTH_CLAIMS:-300}
GROWTH_ROUNDS=3
DOC=${BENCH_DOC-$ROOT/docs/benchmarks.md}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LEASE_MS=600000 # no lease expires during a run: claims never trigger reclaim work
TENANT=dev
T0=$(date +%s)
COMMAND="${BENCH_ITEMS:+BENCH_ITEMS=$BENCH_ITEMS }${BENCH_SECONDS:+BENCH_SECONDS=$BENCH_SECONDS }${BENCH_CONNS:+BENCH_CONNS='$BENCH_CONNS' }bench/run.sh"

log() { printf '[bench %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d /tmp/leasehold-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()      # long-running servers we started, stopped in reverse order
CUR=""       # the load generator running in the foreground, if any
PGDATA=""
PG_AS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$CUR" ]] && kill "$CUR" 2>/dev/null || true
  if [[ -n "$PGDATA" && -f "$PGDATA/postmaster.pid" ]]; then
    local pgpid
    pgpid=$(head -n 1 "$PGDATA/postmaster.pid")
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 20 stop >/dev/null 2>&1 ||
      kill -9 "$pgpid" 2>/dev/null || true
  fi
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 50); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  if [[ "${BENCH_KEEP:-}" == 1 || $rc -ne 0 ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a load generator in the background and waits for it, so a signal stops it too.
fg() { "$@" & CUR=$!; local rc=0; wait "$CUR" || rc=$?; CUR=""; return $rc; }

USED_PORTS=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q . &&
       ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "; echo "$p"; return
    fi
  done
}

# ---------------------------------------------------------------- install and build
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v wrk >/dev/null || need+=(wrk)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v curl >/dev/null || need+=(curl)
command -v ss >/dev/null || need+=(iproute2)
ls /usr/lib/postgresql/15/bin/pgbench >/dev/null 2>&1 || need+=(postgresql-15)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  SUDO=(); [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
  "${SUDO[@]}" apt-get update -qq >"$WORK/apt.log" 2>&1 || die "apt-get update (see $WORK/apt.log)"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${need[@]}" \
    >>"$WORK/apt.log" 2>&1 || die "apt-get install ${need[*]} (see $WORK/apt.log)"
fi
PG_BIN=/usr/lib/postgresql/15/bin
if [[ $(id -u) -eq 0 ]]; then PG_AS=(runuser -u postgres --); fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log "building the release binary (CARGO_TARGET_DIR=$TARGET_DIR)"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --bin leasehold -q) ||
  die "cargo build"
BIN=$TARGET_DIR/release/leasehold

# ---------------------------------------------------------------- Redis and Leasehold
RP=$(free_port)
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$RP" --save "" --appendonly no \
  --maxmemory-policy noeviction --protected-mode no --dir "$WORK/redis" \
  --logfile "$WORK/redis/redis.log" --daemonize no &
PIDS+=($!)
rcli() { redis-cli -h 127.0.0.1 -p "$RP" "$@"; }
for _ in $(seq 100); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli PING >/dev/null || die "redis-server did not start"

HP=$(free_port)
LEASEHOLD_LOG=warn "$BIN" serve --listen "127.0.0.1:$HP" --redis "redis://127.0.0.1:$RP" \
  --allow-anonymous >"$WORK/leasehold.log" 2>&1 &
LH_PID=$!
PIDS+=("$LH_PID")
URL=http://127.0.0.1:$HP
for _ in $(seq 100); do curl -sf "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$URL/readyz" >/dev/null || die "leasehold serve did not become ready ($WORK/leasehold.log)"
log "redis-server on :$RP, leasehold serve on :$HP"

# Key names and script SHAs come from the binary (`leasehold bench`), which takes them from
# the store's own key layout and script registry.
lh_bench() { "$BIN" bench "$@"; }
FN_CLAIM=$(lh_bench function --redis "redis://127.0.0.1:$RP" claim_next)
FN_CTR=$(lh_bench function --redis "redis://127.0.0.1:$RP" counter_next)
pool_keys() { lh_bench keys --tenant "$TENANT" --pool "$1"; }
pool_key() { lh_bench keys --tenant "$TENANT" --pool "$1" --key "$2"; }
avail() { rcli ZCARD "$(pool_key "$1" avail)"; }
used_memory() { rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }

declare -A R # every figure, by name

# Loads pool $1 with $2 items through the store's add_items, 1000 a call (4 in flight);
# prints the seconds it took.
load_pool() {
  local pool=$1 n=$2 secs
  secs=$(lh_bench load --redis "redis://127.0.0.1:$RP" --tenant "$TENANT" --pool "$pool" \
    --items "$n") || die "loading $pool"
  [[ $(avail "$pool") -eq $n ]] || die "pool $pool has $(avail "$pool") items, not $n"
  echo "$secs"
}

# ---------------------------------------------------------------- preload
log "loading pool bench-http with $ITEMS items (leasehold bench load: add_items, 1000 a call)"
m0=$(used_memory)
R[load_redis_s]=$(load_pool bench-http "$ITEMS")
m1=$(used_memory)
R[bytes_avail_1m]=$(((m1 - m0) / ITEMS))
log "  ${R[load_redis_s]} s, $(((m1 - m0) / 1048576)) MiB"
log "loading pool bench-raw with $ITEMS items"
R[load_redis2_s]=$(load_pool bench-raw "$ITEMS")
log "  ${R[load_redis2_s]} s"

log "loading the growth pools (1,000 and 100,000 items; one of the 100,000 over HTTP)"
load_pool g1k-http 1000 >/dev/null
load_pool g1k-raw 1000 >/dev/null
mkdir -p "$WORK/bodies"
awk -v dir="$WORK/bodies" -v n=100000 -v batch=1000 -f "$BENCH/items_json.awk"
t=$(now)
find "$WORK/bodies" -name 'body-*.json' -print0 | sort -z |
  xargs -0 -P 4 -I{} curl -sf -o /dev/null -H 'content-type: application/json' \
    --data-binary @{} "$URL/v1/pools/g100k-http/items" || die "HTTP bulk load"
R[load_http_s]=$(elapsed "$t")
[[ $(avail g100k-http) -eq 100000 ]] || die "g100k-http has $(avail g100k-http) items"
log "  HTTP bulk 100,000 items (100 requests of 1000, 4 in parallel): ${R[load_http_s]} s"
g0=$(used_memory)
load_pool g100k-raw 100000 >/dev/null
g1=$(used_memory)
R[bytes_avail_100k]=$(((g1 - g0) / 100000))

# ---------------------------------------------------------------- PostgreSQL
PP=$(free_port)
PGDATA=$WORK/pg/data
PGSOCK=$WORK/pg/sock
mkdir -p "$PGDATA" "$PGSOCK"
[[ ${#PG_AS[@]} -gt 0 ]] && chown -R postgres "$WORK/pg"
log "PostgreSQL 15: initdb and start on :$PP (socket in $PGSOCK)"
"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 \
  >"$WORK/pg/initdb.log" 2>&1 || die "initdb ($WORK/pg/initdb.log)"
"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/server.log" -w -t 60 start \
  -o "-c port=$PP -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGSOCK \
      -c max_connections=300 -c shared_buffers=256MB -c synchronous_commit=off" \
  >/dev/null || die "pg_ctl start ($WORK/pg/server.log)"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PP" -U postgres)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench' || die "createdb"
t=$(now)
"${PSQL[@]}" -d bench -v items="$ITEMS" -f "$BENCH/schema.sql" >/dev/null || die "schema"
R[load_pg_s]=$(elapsed "$t")
log "  table items with $ITEMS rows, index, VACUUM ANALYZE: ${R[load_pg_s]} s"
pg_avail() { "${PSQL[@]}" -d bench -tAc "SELECT count(*) FROM items WHERE state = 'available'"; }

# ---------------------------------------------------------------- measuring helpers
# wrk: name conns seconds path body [limit] -> R[name_rps|p50|p99] (ms), checks errors.
run_wrk() {
  local name=$1 c=$2 d=$3 path=$4 body=$5 limit=${6:-0} threads=2 line
  ((c < 2)) && threads=1
  fg wrk -t "$threads" -c "$c" -d "${d}s" --timeout 10s -s "$BENCH/claim.lua" "$URL" \
    -- "$path" "$body" "$limit" >"$WORK/wrk-$name.txt" 2>&1 || die "wrk $name"
  line=$(grep '^RESULT' "$WORK/wrk-$name.txt") || die "wrk $name: $(cat "$WORK/wrk-$name.txt")"
  read -r _ n _ rps p50 p99 non2xx sockerr empty <<< "$line"
  ((non2xx == 0 && sockerr == 0)) || die "wrk $name: $non2xx non-2xx answers, $sockerr socket errors"
  ((empty == 0)) || die "wrk $name: $empty claims found the pool empty (raise BENCH_ITEMS)"
  R[${name}_rps]=$rps R[${name}_n]=$n
  R[${name}_p50]=$(awk -v x="$p50" 'BEGIN {printf "%.3f", x / 1000}')
  R[${name}_p99]=$(awk -v x="$p99" 'BEGIN {printf "%.3f", x / 1000}')
}

# redis-benchmark: name requests conns command... -> R[name_rps|p50|p99] (ms).
run_rb() {
  local name=$1 n=$2 c=$3 line
  shift 3
  fg timeout 300 redis-benchmark -h 127.0.0.1 -p "$RP" -c "$c" -n "$n" -P 1 --csv "$@" \
    >"$WORK/rb-$name.txt" 2>&1 || die "redis-benchmark $name: $(tail -3 "$WORK/rb-$name.txt")"
  line=$(tail -n 1 "$WORK/rb-$name.txt")
  R[${name}_rps]=$(awk -F'"' '{print $4}' <<< "$line")
  R[${name}_p50]=$(awk -F'"' '{print $10}' <<< "$line")
  R[${name}_p99]=$(awk -F'"' '{print $14}' <<< "$line")
  R[${name}_n]=$n
  [[ -n "${R[${name}_rps]}" ]] || die "redis-benchmark $name: $line"
}

# A redis-benchmark point of about SECS seconds: a short calibration run first.
run_rb_timed() {
  local name=$1 c=$2 cap=$3 cal n
  shift 3
  cal=$((c == 1 ? 2000 : 20000))
  run_rb "$name-cal" "$cal" "$c" "$@"
  n=$(awk -v r="${R[$name-cal_rps]}" -v s="$SECS" 'BEGIN {printf "%d", r * s}')
  ((n > cap)) && n=$cap
  ((n < 1000)) && n=1000
  run_rb "$name" "$n" "$c" "$@"
}

# pgbench: name conns seconds -> R[name_rps|p50|p99] (ms) from the per-transaction log.
run_pg() {
  local name=$1 c=$2 d=$3 threads=2
  ((c < 2)) && threads=1
  mkdir -p "$WORK/pgb-$name"
  fg pgbench -n -h "$PGSOCK" -p "$PP" -U postgres -c "$c" -j "$threads" -T "$d" -M prepared \
    -f "$BENCH/claim.sql" -l --log-prefix="$WORK/pgb-$name/log" bench \
    >"$WORK/pgb-$name.txt" 2>&1 || die "pgbench $name: $(tail -5 "$WORK/pgb-$name.txt")"
  R[${name}_rps]=$(awk '/^tps = / {printf "%.1f", $3}' "$WORK/pgb-$name.txt")
  R[${name}_n]=$(awk '/number of transactions actually processed/ {print $NF}' "$WORK/pgb-$name.txt")
  if grep -q 'number of failed transactions: [1-9]' "$WORK/pgb-$name.txt"; then
    die "pgbench $name: $(grep 'failed transactions' "$WORK/pgb-$name.txt")"
  fi
  read -r R[${name}_p50] R[${name}_p99] < <(cat "$WORK/pgb-$name"/log* | awk '{print $3}' |
    sort -n | awk '{v[NR] = $1} END {
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
      printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }')
  rm -rf "$WORK/pgb-$name"
}

claim_body() { printf '{"holder":"%s","count":1,"lease_ms":%d}' "$1" "$LEASE_MS"; }

# ---------------------------------------------------------------- 5. growth
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
log "growth: $GROWTH_ROUNDS rounds of $GROWTH_CLAIMS claims at 1 connection from pools of 1k, 100k, $ITEMS items"
for round in $(seq "$GROWTH_ROUNDS"); do
  for g in 1k:g1k 100k:g100k 1m:bench; do
    label=${g%%:*} pool=${g#*:}
    run_wrk "grow_http_${label}_$round" 1 2 "/v1/pools/$pool-http/claim" "$(claim_body grower)" \
      "$GROWTH_CLAIMS"
    # shellcheck disable=SC2046
    run_rb "grow_raw_${label}_$round" "$GROWTH_CLAIMS" 1 FCALL "$FN_CLAIM" 12 \
      $(pool_keys "$pool-raw") '' '' grower 1 "$LEASE_MS"
  done
done
for label in 1k 100k 1m; do
  for sys in http raw; do
    for q in p50 p99; do
      vals=()
      for round in $(seq "$GROWTH_ROUNDS"); do vals+=("${R[grow_${sys}_${label}_${round}_$q]}"); done
      R[grow_${sys}_${label}_$q]=$(median "${vals[@]}")
    done
  done
  log "  $label: HTTP p50 ${R[grow_http_${label}_p50]} ms, FCALL p50 ${R[grow_raw_${label}_p50]} ms (median of $GROWTH_ROUNDS)"
done

# With K leases outstanding that have expired: each claim also reclaims up to 64 of them.
# The leases are taken for 2 s (shorter ones would be reclaimed by the setup's own claims),
# then the run waits for them to expire.
log "growth: claims with 1, 100, 10,000 expired leases outstanding"
for k in 1 100 10000; do
  for sys in http raw; do
    load_pool "exp$k-$sys" $((k + 2 * GROWTH_CLAIMS)) >/dev/null
    per=$((k < 100 ? k : 100))
    # shellcheck disable=SC2046
    run_rb "expset_${k}_$sys" $((k / per)) 1 FCALL "$FN_CLAIM" 12 $(pool_keys "exp$k-$sys") \
      '' '' sleeper "$per" 2000
  done
done
sleep 2.1
for k in 1 100 10000; do
  for sys in http raw; do
    n=$(rcli ZCOUNT "$(pool_key "exp$k-$sys" leased)" -inf "($(($(date +%s%N) / 1000000))")
    [[ $n -eq $k ]] || die "exp$k-$sys: $n expired leases, not $k"
  done
  run_wrk "exp_http_$k" 1 2 "/v1/pools/exp$k-http/claim" "$(claim_body grower)" "$GROWTH_CLAIMS"
  # shellcheck disable=SC2046
  run_rb "exp_raw_$k" "$GROWTH_CLAIMS" 1 FCALL "$FN_CLAIM" 12 $(pool_keys "exp$k-raw") \
    '' '' grower 1 "$LEASE_MS"
  R[exp_left_$k]=$(rcli ZCOUNT "$(pool_key "exp$k-http" leased)" -inf "($(($(date +%s%N) / 1000000))")
  log "  $k expired: HTTP p50 ${R[exp_http_${k}_p50]} ms, FCALL p50 ${R[exp_raw_${k}_p50]} ms"
done

# ---------------------------------------------------------------- 6. bytes per leased item
log "memory: leasing every item of g100k-raw (count 100 a call)"
# shellcheck disable=SC2046
run_rb lease_all 1000 4 FCALL "$FN_CLAIM" 12 $(pool_keys g100k-raw) '' '' worker-1 100 "$LEASE_MS"
[[ $(avail g100k-raw) -eq 0 ]] || die "g100k-raw still has $(avail g100k-raw) available"
g2=$(used_memory)
R[bytes_leased_100k]=$(((g2 - g0) / 100000))

# ---------------------------------------------------------------- 1-3. claim-next
for c in "${CONNS[@]}"; do
  log "claim-next at $c connection(s): HTTP (wrk), FCALL (redis-benchmark), SKIP LOCKED (pgbench)"
  run_wrk "http_$c" "$c" "$SECS" /v1/pools/bench-http/claim "$(claim_body "wrk")"
  # shellcheck disable=SC2046
  run_rb_timed "raw_$c" "$c" $(($(avail bench-raw) / 3)) FCALL "$FN_CLAIM" 12 \
    $(pool_keys bench-raw) '' '' rb 1 "$LEASE_MS"
  run_pg "pg_$c" "$c" "$SECS"
  log "  HTTP ${R[http_${c}_rps]}/s, FCALL ${R[raw_${c}_rps]}/s, PostgreSQL ${R[pg_${c}_rps]}/s"
  [[ $(avail bench-http) -gt 0 && $(avail bench-raw) -gt 0 ]] || die "a pool ran dry"
done
R[left_http]=$(avail bench-http)
R[left_raw]=$(avail bench-raw)
R[left_pg]=$(pg_avail)
((R[left_pg] > 0)) || die "the PostgreSQL table ran dry"

# ---------------------------------------------------------------- 4. counters
read -r -a CTR_KEYS <<< "$(lh_bench keys --tenant "$TENANT" --counter bench-raw)"
read -r INCR_KEY _ <<< "$(lh_bench keys --tenant "$TENANT" --counter bench-incr)"
for c in "${CONNS[@]}"; do
  log "counters at $c connection(s): HTTP next, FCALL counter_next, INCR"
  run_wrk "ctr_http_$c" "$c" "$SECS" /v1/counters/bench-http/next '{"period":"none"}'
  run_rb_timed "ctr_raw_$c" "$c" 100000000 FCALL "$FN_CTR" 4 "${CTR_KEYS[@]}" \
    '' '' 1 '' '' '' '' '' 3024000000
  run_rb_timed "incr_$c" "$c" 100000000 INCR "$INCR_KEY"
  log "  HTTP ${R[ctr_http_${c}_rps]}/s, FCALL ${R[ctr_raw_${c}_rps]}/s, INCR ${R[incr_${c}_rps]}/s"
done

# ---------------------------------------------------------------- 7. the event log's cost
# claim_next on a pool with the default log (appending its event, keeping the cap) against
# one whose max_events is 0 (no log: event() returns before its XADD), two pools loaded
# alike, in alternating rounds at 1 and 64 connections; median of the rounds. Then the
# memory a pool's full log takes (MEMORY USAGE of the stream ÷ XLEN).
EV_ROUNDS=3
EV_N1=$((SECS * 1000)) EV_N64=$((SECS * 6000))
EV_ITEMS=$((EV_ROUNDS * (EV_N1 + EV_N64) + 1000))
log "event log: loading ev-on and ev-off with $EV_ITEMS items each"
load_pool ev-on "$EV_ITEMS" >/dev/null
load_pool ev-off "$EV_ITEMS" >/dev/null
curl -sf -X PUT "$URL/v1/pools/ev-off" -H 'content-type: application/json' \
  -d '{"max_events":0}' >/dev/null || die "could not set ev-off's max_events to 0"
[[ $(rcli XLEN "$(pool_key ev-off events)") -eq 0 ]] || die "ev-off's log was not trimmed"
for round in $(seq "$EV_ROUNDS"); do
  for c in 1 64; do
    n=$((c == 1 ? EV_N1 : EV_N64))
    # shellcheck disable=SC2046
    run_rb "ev_on_${c}_$round" "$n" "$c" FCALL "$FN_CLAIM" 12 $(pool_keys ev-on) \
      '' '' rb 1 "$LEASE_MS"
    # shellcheck disable=SC2046
    run_rb "ev_off_${c}_$round" "$n" "$c" FCALL "$FN_CLAIM" 12 $(pool_keys ev-off) \
      '' '' rb 1 "$LEASE_MS"
  done
done
[[ $(rcli XLEN "$(pool_key ev-off events)") -eq 0 ]] ||
  die "claims on a pool with max_events 0 still appended events"
for c in 1 64; do
  for sys in on off; do
    for q in rps p50 p99; do
      vals=()
      for round in $(seq "$EV_ROUNDS"); do vals+=("${R[ev_${sys}_${c}_${round}_$q]}"); done
      R[ev_${sys}_${c}_$q]=$(median "${vals[@]}")
    done
  done
  log "  $c conn(s): with the event ${R[ev_on_${c}_rps]}/s, without ${R[ev_off_${c}_rps]}/s"
done
R[ev_xlen]=$(rcli XLEN "$(pool_key ev-on events)")
R[ev_bytes]=$(rcli MEMORY USAGE "$(pool_key ev-on events)" SAMPLES 0)
R[ev_bytes_each]=$((R[ev_bytes] / R[ev_xlen]))
log "  a full log: ${R[ev_xlen]} events, $((R[ev_bytes] / 1024)) KiB (${R[ev_bytes_each]} bytes an event)"

# ---------------------------------------------------------------- 6. RSS at 1,000 connections
rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$LH_PID/status"; }
R[rss_idle]=$(rss_kib)
log "leasehold RSS at 1,000 connections (wrk -c 1000, 5 s)"
wrk -t 2 -c 1000 -d 5s --timeout 10s -s "$BENCH/claim.lua" "$URL" \
  -- /v1/counters/bench-rss/next '{"period":"none"}' 0 >"$WORK/wrk-rss.txt" 2>&1 &
CUR=$!
max=0
while kill -0 "$CUR" 2>/dev/null; do
  r=$(rss_kib); ((r > max)) && max=$r
  sleep 0.2
done
wait "$CUR" || die "wrk at 1,000 connections: $(cat "$WORK/wrk-rss.txt")"
CUR=""
R[rss_1000]=$max
read -r _ _ _ R[rss_rps] R[rss_p50] R[rss_p99] R[rss_non2xx] R[rss_sockerr] _ < <(grep '^RESULT' "$WORK/wrk-rss.txt")
R[rss_hwm]=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$LH_PID/status")
log "  RSS idle $((R[rss_idle] / 1024)) MiB, at 1,000 connections $((R[rss_1000] / 1024)) MiB"

# ---------------------------------------------------------------- the table
f() { awk -v x="$1" 'BEGIN {printf "%.0f", x}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

TABLE=$WORK/table.md
# One table row at $1 connections: three systems' rps/p50/p99 (result prefixes $2 $3 $4),
# then the first one's throughput as a ratio of each other's.
side_by_side() {
  local c=$1 a=$2 b=$3 d=$4
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** | **%s** |\n' "$c" \
    "$(f "${R[${a}_${c}_rps]}")" "${R[${a}_${c}_p50]}" "${R[${a}_${c}_p99]}" \
    "$(f "${R[${b}_${c}_rps]}")" "${R[${b}_${c}_p50]}" "${R[${b}_${c}_p99]}" \
    "$(f "${R[${d}_${c}_rps]}")" "${R[${d}_${c}_p50]}" "${R[${d}_${c}_p99]}" \
    "$(ratio "${R[${a}_${c}_rps]}" "${R[${b}_${c}_rps]}")" \
    "$(ratio "${R[${a}_${c}_rps]}" "${R[${d}_${c}_rps]}")"
}

{
  echo "**Claim-next** (one item per request; throughput in requests/s, latency in ms)"
  echo
  echo "| conns | HTTP claim/s | p50 | p99 | FCALL claim_next/s | p50 | p99 | PG SKIP LOCKED/s | p50 | p99 | HTTP ÷ FCALL | HTTP ÷ PG |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${CONNS[@]}"; do side_by_side "$c" http raw pg; done
  echo
  echo "**Counters** (one value per request)"
  echo
  echo "| conns | HTTP next/s | p50 | p99 | FCALL counter_next/s | p50 | p99 | INCR/s | p50 | p99 | HTTP ÷ FCALL | HTTP ÷ INCR |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${CONNS[@]}"; do side_by_side "$c" ctr_http ctr_raw incr; done
  echo
  echo "**Growth**: claim-next latency at 1 connection from a pool of N items, $GROWTH_CLAIMS claims a point, median of $GROWTH_ROUNDS rounds (ms)"
  echo
  echo "| items in pool | HTTP p50 | HTTP p99 | FCALL p50 | FCALL p99 |"
  echo "|---:|---:|---:|---:|---:|"
  for g in 1k:1,000 100k:100,000 1m:$ITEMS; do
    l=${g%%:*}
    printf '| %s | %s | %s | %s | %s |\n' "${g#*:}" "${R[grow_http_${l}_p50]}" \
      "${R[grow_http_${l}_p99]}" "${R[grow_raw_${l}_p50]}" "${R[grow_raw_${l}_p99]}"
  done
  echo
  echo "**Expiring leases**: claim-next at 1 connection, $GROWTH_CLAIMS claims, right after K leases of the pool expired (each claim first returns up to 64 of them to the pool) (ms)"
  echo
  echo "| expired leases K | HTTP p50 | HTTP p99 | FCALL p50 | FCALL p99 | expired left after the HTTP claims |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for k in 1 100 10000; do
    printf '| %s | %s | %s | %s | %s | %s |\n' "$k" "${R[exp_http_${k}_p50]}" \
      "${R[exp_http_${k}_p99]}" "${R[exp_raw_${k}_p50]}" "${R[exp_raw_${k}_p99]}" "${R[exp_left_$k]}"
  done
  echo
  echo "**The event log's cost**: FCALL claim_next on a pool with the default log (\`max_events\` 10000: appending its event, keeping the cap) and on one with \`max_events\` 0 (no log), two pools loaded alike, alternating rounds of $EV_N1 (1 conn) / $EV_N64 (64 conns) claims, median of $EV_ROUNDS"
  echo
  echo "| conns | with the event/s | p50 | p99 | without/s | p50 | p99 | with ÷ without |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in 1 64; do
    printf '| %s | %s | %s | %s | %s | %s | %s | **%s** |\n' "$c" \
      "$(f "${R[ev_on_${c}_rps]}")" "${R[ev_on_${c}_p50]}" "${R[ev_on_${c}_p99]}" \
      "$(f "${R[ev_off_${c}_rps]}")" "${R[ev_off_${c}_p50]}" "${R[ev_off_${c}_p99]}" \
      "$(ratio "${R[ev_on_${c}_rps]}" "${R[ev_off_${c}_rps]}")"
  done
  echo
  echo "**Memory and loading**"
  echo
  echo "| figure | value |"
  echo "|---|---:|"
  echo "| Redis bytes per available item, no data (used_memory delta, pool of $ITEMS) | ${R[bytes_avail_1m]} |"
  echo "| Redis bytes per available item, no data (pool of 100,000) | ${R[bytes_avail_100k]} |"
  echo "| Redis bytes per leased item, no data (the same 100,000, all leased) | ${R[bytes_leased_100k]} |"
  echo "| a pool's full event log: events kept (XLEN), Redis bytes (MEMORY USAGE), bytes an event | ${R[ev_xlen]}, ${R[ev_bytes]}, ${R[ev_bytes_each]} |"
  echo "| leasehold RSS idle after the runs (MiB) | $(mib "${R[rss_idle]}") |"
  echo "| leasehold RSS at 1,000 open connections, peak while wrk -c 1000 ran counters (MiB) | $(mib "${R[rss_1000]}") |"
  echo "| leasehold peak RSS over the whole run, VmHWM (MiB) | $(mib "${R[rss_hwm]}") |"
  echo "| HTTP counter next at 1,000 connections: requests/s, p50 / p99 ms | $(f "${R[rss_rps]}"), $(awk -v a="${R[rss_p50]}" -v b="${R[rss_p99]}" 'BEGIN {printf "%.2f / %.2f", a/1000, b/1000}') |"
  echo "| load $ITEMS items into a pool, add_items 1000 a call, 4 in flight (leasehold bench load) (s) | ${R[load_redis_s]} |"
  echo "| load 100,000 items over HTTP, POST .../items of 1000, 4 curl in parallel (s) | ${R[load_http_s]} |"
  echo "| load $ITEMS rows into PostgreSQL, with index and VACUUM ANALYZE (s) | ${R[load_pg_s]} |"
  echo "| items left after the claim runs: HTTP pool / FCALL pool / PG table | ${R[left_http]} / ${R[left_raw]} / ${R[left_pg]} |"
} >"$TABLE"

TARGETS=$WORK/targets.txt
# target LABEL A B OP LIMIT UNIT: PASS when A / B (B = 1: A itself) OP LIMIT, on the raw figures.
target() {
  awk -v label="$1" -v a="$2" -v b="$3" -v op="$4" -v lim="$5" -v unit="$6" 'BEGIN {
    r = a / b; ok = (op == ">=") ? (r >= lim) : (r <= lim)
    printf "%s  %s: %s%s\n", (ok ? "PASS " : "BELOW"), label, (b == 1 ? sprintf("%g", r) : sprintf("%.4f", r)), unit }'
}
{
  target "HTTP claim-next ≥ 0.5 × FCALL at 64 connections" "${R[http_64_rps]}" "${R[raw_64_rps]}" ">=" 0.5 " ×"
  target "HTTP claim-next ≥ 7 × PostgreSQL SKIP LOCKED at 64 connections" "${R[http_64_rps]}" "${R[pg_64_rps]}" ">=" 7 " ×"
  target "HTTP claim-next p50 at $ITEMS items ≤ 1.5 × p50 at 1,000 items" "${R[grow_http_1m_p50]}" "${R[grow_http_1k_p50]}" "<=" 1.5 " × (FCALL: $(ratio "${R[grow_raw_1m_p50]}" "${R[grow_raw_1k_p50]}") ×)"
  target "≤ 250 bytes of Redis memory per available item without data" "${R[bytes_avail_1m]}" 1 "<=" 250 " bytes"
  target "coordinator RSS ≤ 64 MiB at 1,000 connections" "$(mib "${R[rss_1000]}")" 1 "<=" 64 " MiB"
  target "the event log (default max_events) costs claim-next ≤ 15 % of Redis throughput at 64 connections" "${R[ev_on_64_rps]}" "${R[ev_off_64_rps]}" ">=" 0.85 " ×"
} >"$TARGETS"

# ---------------------------------------------------------------- chart
CHART=""
if [[ -n "$DOC" ]] && command -v gnuplot >/dev/null; then
  CHART=$(dirname "$DOC")/benchmarks-claim.png
  for c in "${CONNS[@]}"; do
    echo "$c ${R[http_${c}_rps]} ${R[raw_${c}_rps]} ${R[pg_${c}_rps]}"
  done >"$WORK/chart.dat"
  gnuplot <<EOF || { log "gnuplot failed; no chart"; CHART=""; }
set terminal pngcairo size 800,480 noenhanced font ",10"
set output "$CHART"
set title "claim-next throughput vs concurrency (one run, $(nproc) cores)"
set xlabel "concurrent connections"
set ylabel "claims per second"
set logscale x 2
set xrange [0.7:400]
set xtics ($(IFS=,; echo "${CONNS[*]}"))
set yrange [0:*]
set key top left
set grid
plot "$WORK/chart.dat" using 1:3 with linespoints lw 2 title "Redis FCALL claim_next (redis-benchmark)", \
     "$WORK/chart.dat" using 1:2 with linespoints lw 2 title "Leasehold HTTP (wrk)", \
     "$WORK/chart.dat" using 1:4 with linespoints lw 2 title "PostgreSQL SKIP LOCKED (pgbench)"
EOF
fi

TOTAL=$(($(date +%s) - T0))
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
FACTS="$(nproc) cores ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, \
Linux $(uname -r); Redis $(redis-server --version | awk '{print $3}' | tr -d 'v='), \
PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}'); \
load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(cd "$ROOT" && git status --porcelain -- src lua Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
  COMMIT="$COMMIT (with uncommitted changes to the code)"
fi

echo
cat "$TABLE"
echo
cat "$TARGETS"
echo
echo "machine: $FACTS"
echo "code: $COMMIT; run took ${TOTAL} s"

if [[ -n "$DOC" ]]; then
  {
    echo "<!-- BEGIN bench/run.sh: everything down to END is written by the benchmark -->"
    echo "Produced by \`$COMMAND\` on $(date -u '+%Y-%m-%d %H:%M UTC'), code at $COMMIT, in ${TOTAL} s."
    echo
    echo "Machine: $FACTS."
    echo
    cat "$TABLE"
    echo
    echo "Targets (issue 5; the event log's, issue 7):"
    echo
    echo '```'
    cat "$TARGETS"
    echo '```'
    if [[ -n "$CHART" ]]; then
      echo
      echo "![claim-next throughput vs concurrency]($(basename "$CHART"))"
    fi
    echo "<!-- END bench/run.sh -->"
  } >"$WORK/generated.md"
  if [[ -f "$DOC" ]] && grep -q '^<!-- BEGIN bench/run.sh' "$DOC"; then
    awk -v gen="$WORK/generated.md" '
      /^<!-- BEGIN bench\/run.sh/ {while ((getline l < gen) > 0) print l; skip = 1; next}
      /^<!-- END bench\/run.sh/ {skip = 0; next}
      !skip {print}' "$DOC" >"$WORK/doc.md"
  else
    { echo "# Benchmarks"; echo; cat "$WORK/generated.md"; } >"$WORK/doc.md"
  fi
  cp "$WORK/doc.md" "$DOC"
  log "wrote $DOC${CHART:+ and $CHART}"
fi
log "done in ${TOTAL} s"
