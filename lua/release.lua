-- release: give a leased item back to the pool, now or after a delay, optionally with a
-- new priority. An item that has used up max_attempts becomes dead instead.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 holder, 5 token,
--       6 delay_ms ('' or 0 = none), 7 priority ('' = unchanged).
-- Returns {ok = view} or {err = not_found | lease_lost, current}.
local id, holder, token = id_arg(3), id_arg(4), int_arg(5, 0, TOKEN)
local delay_ms = int_arg(6, 0, MAX_MS, true) or 0
local priority = int_arg(7, -PRIORITY, PRIORITY, true)

local cfg = pool_config()
local it = touch(id, cfg)
if not it then return finish(missing(id)) end
if not lease_valid(it, holder, token) then return refuse('lease_lost', it) end

update(id, it, 'released', function()
  if priority then it.p = priority end
  end_lease(it, cfg, delay_ms)
end)
return finish({ok = view(id, it)})
