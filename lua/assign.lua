-- assign: set or clear an item's holder on someone's behalf, under a version check.
-- Assigning ends any other holder's lease and grants a new one (new token); assigning to
-- the holder that has the item already returns that lease unchanged. Unassigning a leased
-- item makes it available; unassigning an unleased item changes nothing.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 holder ('' = unassign),
--       5 lease_ms ('' = the pool's), 6 expected_version (''), 7 If-Match versions ('').
-- Returns {ok = view} or {err = not_found | precondition_required | precondition_failed |
-- version_conflict | invalid_state | holder_at_capacity, current}.
local id, holder, expected, if_match = id_arg(3), id_arg(4, true), ARGV[6], versions_arg(7)
int_arg(5, 0, MAX_MS, true)
int_arg(6, 0, TOKEN, true)

local cfg = pool_config()
local it = touch(id, cfg)
if not it then
  if if_match ~= '' then return refuse('precondition_failed', nil) end
  return finish(missing(id))
end
local refusal = check_preconditions(it, cfg, if_match, '', expected, '')
if refusal then return refusal end

if holder == '' then
  if it.s == 'leased' then
    update(id, it, 'unassigned', make_available)
  end
  return finish({ok = view(id, it)})
end

if it.s == 'leased' and it.h == holder then return finish({ok = view(id, it)}) end
if it.s == 'done' or it.s == 'dead' then return refuse('invalid_state', it) end
if holder_room(holder, cfg) <= 0 then return capacity_refusal(holder, cfg) end

update(id, it, 'assigned', function()
  grant(it, holder, lease_ms_or_default(ARGV[5], cfg))
end)
return finish({ok = view(id, it)})
