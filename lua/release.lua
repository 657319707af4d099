-- release: give a leased item back to the pool, now or after a delay, optionally with a
-- new priority. An item that has used up max_attempts becomes dead instead.
-- KEYS: the nine pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 holder, 5 token,
--       6 delay_ms ('' or 0 = none), 7 priority ('' = unchanged).
-- Returns {ok = view} or {err = not_found | lease_lost, current}.
local id, holder, token = ARGV[3], ARGV[4], tonumber(ARGV[5])
local delay_ms, priority = tonumber(ARGV[6]) or 0, tonumber(ARGV[7])

local cfg = pool_config()
local it = touch(id, cfg)
if not it then return refuse('not_found', nil) end
if not lease_valid(it, holder, token) then return refuse('lease_lost', it) end

unindex(id, it)
if priority then it.p = priority end
end_lease(it, cfg, delay_ms)
changed(it)
index(id, it)
save(id, it)
return finish({ok = view(id, it)})
