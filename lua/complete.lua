-- complete: finish a leased item (state done), optionally replacing its data.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency, 2 idempotency ttl ms, 3 id, 4 holder, 5 token,
--       6 data (JSON object text, '' = unchanged), 7 max_pool_bytes.
-- Returns {ok = view}, {err = not_found | lease_lost, current}, or {err = quota_exceeded}
-- when larger data would take the pool past its limit (the lease is kept).
local id, holder, token, data = id_arg(3), id_arg(4), int_arg(5, 0, TOKEN), data_arg(6, true)
local max_bytes = int_arg(7, 0, TOKEN)

local cfg = pool_config()
local it = touch(id, cfg)
if not it then return finish(missing(id)) end
if not lease_valid(it, holder, token) then return refuse('lease_lost', it) end
-- Larger data is held to the pool's bytes, unless the item goes as it is done.
if data ~= '' and keep_ms('done') ~= 0 then
  local quota = over_quota(0, #data - #it.d, 0, max_bytes)
  if quota then return quota end
end

update(id, it, 'completed', function()
  clear_lease(it)
  it.s = 'done'
  if data ~= '' then it.d = data end
end)
return finish({ok = view(id, it)})
