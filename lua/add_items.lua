-- add_items: add many items at once; ids that exist already are left untouched.
-- Creates the pool with default settings if it does not exist.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency, 2 idempotency ttl ms, 3 max_items_per_pool, 4 max_pool_bytes,
--       5 '1' when the pool's name is reserved (lib/pool.lua, ask_reservation), then per
--       item four values: id, priority, data (JSON object text), and when it becomes
--       available ('' now, '+<ms>' or '=<ms>': delayed until then).
-- Returns {ok = {created = [ids], existing = [ids]}}, or {err = quota_exceeded} (nothing
-- added) when the new items would take the pool past a limit.
local max_items, max_bytes = int_arg(3, 0, TOKEN), int_arg(4, 0, TOKEN)
if #ARGV < 9 or (#ARGV - 5) % 4 ~= 0 then
  bad_arg(#ARGV, 'items come as id, priority, data, when')
end
local new_items, grown, seen = 0, 0, {}
for i = 6, #ARGV, 4 do
  local id = id_arg(i)
  int_arg(i + 1, -PRIORITY, PRIORITY)
  data_arg(i + 2)
  when_arg(i + 3, NOW)
  if not seen[id] and redis.call('HEXISTS', K_ITEMS, id) == 0 then
    new_items = new_items + 1
    grown = grown + #id + #ARGV[i + 2]
  end
  seen[id] = true
end
local refusal = over_quota(new_items, grown, max_items, max_bytes)
  or ask_reservation(ARGV[5] == '1')
if refusal then return refusal end
ensure_pool()
local created, existing = {}, {}
for i = 6, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HEXISTS', K_ITEMS, id) == 1 then
    existing[#existing + 1] = id
  else
    local it = {s = 'available', p = tonumber(ARGV[i + 1]), v = 1, a = 0, d = ARGV[i + 2], k = 1,
      c = NOW, u = NOW, q = next_seq()}
    local at = when_arg(i + 3, NOW)
    if at then
      it.s = 'delayed'
      it.r = at
    end
    index(id, it)
    save(id, it)
    DATA_DELTA = DATA_DELTA + data_size(id, it)
    event('added', id, it)
    created[#created + 1] = id
  end
end
return finish({ok = {created = created, existing = existing}})
