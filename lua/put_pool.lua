-- put_pool: create a pool or change its settings; settings not given keep their value
-- (or the default, for a new pool).
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 lease_ms, 4 max_leases_per_holder,
--       5 max_attempts, 6 require_if_match (0/1), 7 max_events (0..100000), 8 keep_done_ms,
--       9 keep_dead_ms (-1: for ever), 10 paused (0/1); each '' = unchanged, 11 '1' when the
--       pool's name is reserved (lib/pool.lua, ask_reservation).
--       Pausing or resuming is recorded in the events (`paused`, `resumed`); resuming wakes
--       as many waiting claims as there are items available.
--       A smaller max_events trims the log to it at once; a shorter keep_*_ms removes (a
--       bounded number of) the finished items past it at once, the rest on later calls.
-- Returns {ok = {pool = pool view, pool_created}}.
int_arg(3, 0, MAX_MS, true)
int_arg(4, 0, 1000000, true)
int_arg(5, 0, 1000000, true)
int_arg(6, 0, 1, true)
int_arg(7, 0, 100000, true)
int_arg(8, -1, MAX_MS, true)
int_arg(9, -1, MAX_MS, true)
int_arg(10, 0, 1, true)
local ask = ask_reservation(ARGV[11] == '1')
if ask then return ask end
local pool_created = ensure_pool()
local was_paused = redis.call('HGET', K_POOL, 'paused') == '1'
local fields = {'lease_ms', 'max_leases_per_holder', 'max_attempts', 'require_if_match',
  'max_events', 'keep_done_ms', 'keep_dead_ms', 'paused'}
for i, field in ipairs(fields) do
  local value = ARGV[i + 2]
  if value ~= '' then redis.call('HSET', K_POOL, field, value) end
end
redis.call('HSET', K_POOL, 'updated_at', NOW)
local cfg = pool_config()
trim_events(cfg.max_events, 1)
retire(RETIRE_LIMIT)
if ARGV[10] == '1' and not was_paused then pool_event('paused') end
if ARGV[10] == '0' and was_paused then
  pool_event('resumed')
  MADE_AVAILABLE = MADE_AVAILABLE + redis.call('ZCARD', K_AVAIL)
end
return finish({ok = {pool = pool_view(cfg), pool_created = pool_created}})
