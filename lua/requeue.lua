-- requeue: put a done or dead item back to available with a fresh count of attempts;
-- on an available or delayed item it makes the item available now with the new priority.
-- With a time in the future, the item is delayed until then instead (snoozed).
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 priority ('' = unchanged),
--       5 when it becomes available ('' now, '+<ms>' or '=<ms>').
-- Returns {ok = view} or {err = not_found | already_leased, current}.
local id, priority = id_arg(3), int_arg(4, -PRIORITY, PRIORITY, true)
local at = when_arg(5, NOW)

local cfg = pool_config()
local it = touch(id, cfg)
if not it then return finish(missing(id)) end
if it.s == 'leased' then return refuse('already_leased', it) end
if it.s == 'available' and not at and (not priority or priority == it.p) then
  return finish({ok = view(id, it)})
end

update(id, it, 'requeued', function()
  if priority then it.p = priority end
  if it.s == 'done' or it.s == 'dead' then it.a = 0 end
  make_available(it)
  if at then
    it.s = 'delayed'
    it.r = at
  end
end)
return finish({ok = view(id, it)})
