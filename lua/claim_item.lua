-- claim_item: grant one named item to a holder; for the holder that has it already, the
-- same lease again, renewed (it runs for lease_ms from now, as a renewal would make it).
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 holder, 5 lease_ms ('' = pool's).
-- Returns {ok = view} (the existing lease, same token, renewed, when this holder has it), or
-- {err = not_found | already_leased | invalid_state | holder_at_capacity, current}.
local id, holder = id_arg(3), id_arg(4)
int_arg(5, 0, MAX_MS, true)

local cfg = pool_config()
local it = touch(id, cfg)
if not it then return finish(missing(id)) end
local lease_ms = lease_ms_or_default(ARGV[5], cfg)
if it.s == 'leased' then
  if it.h ~= holder then return refuse('already_leased', it) end
  -- Its holder claims it again (a retry, a restart): the answer is as fresh as a grant.
  update(id, it, 'renewed', function() it.e = lease_ms > 0 and NOW + lease_ms or 0 end)
  return finish({ok = view(id, it)})
end
if it.s ~= 'available' then return refuse('invalid_state', it) end
if cfg.paused == 1 then return refuse('pool_paused', it) end
if holder_room(holder, cfg) <= 0 then return capacity_refusal(holder, cfg) end

update(id, it, 'claimed', function() grant(it, holder, lease_ms) end)
return finish({ok = view(id, it)})
