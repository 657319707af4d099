# Sourced by scripts that need a running `leasehold dev`: `start_dev <bin> <dir>` starts
# one (its own redis-server, a free loopback port, data in <dir>/data, log in
# <dir>/leasehold.log), waits until it is ready, and sets `url` and `pid`. The caller stops
# it by that pid. Calls `fail` (which the caller defines) if it never becomes ready.

start_dev() {
  local bin="$1" dir="$2"
  # Port 0: the kernel picks a free port, and leasehold logs the address it got.
  NO_COLOR=1 "$bin" dev --listen 127.0.0.1:0 --data-dir "$dir/data" >"$dir/leasehold.log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 300); do
    url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$dir/leasehold.log" | head -n 1 | cut -d' ' -f3 || true)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || fail "leasehold dev exited"
    sleep 0.1
  done
  [ -n "$url" ] || fail "leasehold dev did not say where it listens"
  for _ in $(seq 1 300); do
    curl -fsS "$url/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "leasehold dev never became ready"
}
