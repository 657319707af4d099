-- add_items: add many items at once; ids that exist already are left untouched.
-- Creates the pool with default settings if it does not exist.
-- KEYS: the eleven pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, then per item three values:
--       id, priority, data (JSON object text).
-- Returns {ok = {created = [ids], existing = [ids]}}.
if #ARGV < 5 or (#ARGV - 2) % 3 ~= 0 then bad_arg(#ARGV, 'items come as id, priority, data') end
for i = 3, #ARGV, 3 do
  id_arg(i)
  int_arg(i + 1, -PRIORITY, PRIORITY)
  data_arg(i + 2)
end
ensure_pool()
local created, existing = {}, {}
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HEXISTS', K_ITEMS, id) == 1 then
    existing[#existing + 1] = id
  else
    local it = {s = 'available', p = tonumber(ARGV[i + 1]), v = 1, a = 0, d = ARGV[i + 2],
      c = NOW, u = NOW, q = next_seq()}
    index(id, it)
    save(id, it)
    event('added', id, it)
    created[#created + 1] = id
  end
end
return finish({ok = {created = created, existing = existing}})
