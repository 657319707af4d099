-- renew: extend a current lease; the token stays the same.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 holder, 5 token,
--       6 lease_ms ('' = the pool's; 0 = no expiry).
-- Returns {ok = view} or {err = not_found | lease_lost, current}.
local id, holder, token = id_arg(3), id_arg(4), int_arg(5, 0, TOKEN)
int_arg(6, 0, MAX_MS, true)

local cfg = pool_config()
local it = touch(id, cfg)
if not it then return finish(missing(id)) end
if not lease_valid(it, holder, token) then return refuse('lease_lost', it) end

local lease_ms = lease_ms_or_default(ARGV[6], cfg)
update(id, it, 'renewed', function() it.e = lease_ms > 0 and NOW + lease_ms or 0 end)
return finish({ok = view(id, it)})
