-- list_pools: a page of a tenant's pool names, after a name, and how many it has.
-- KEYS: the three tenant index keys (lib/tenant.lua).
-- ARGV: 1 list after this name ('' = from the first), 2 how many (1..1000).
-- Returns {ok = {names = [name...], total, pending = {name = reserved at ms}}}: names in
-- order; `pending` has those of the page whose pool is still being created.
local after, limit = ARGV[1], ARGV[2]
local from = after == '' and '-' or '(' .. after
local names = redis.call('ZRANGE', K_NAMES, from, '+', 'BYLEX', 'LIMIT', '0', limit)
local pending = {}
if #names > 0 then
  local at = redis.call('HMGET', K_PENDING, unpack(names))
  for i, name in ipairs(names) do
    if at[i] then pending[name] = tonumber(at[i]) end
  end
end
return {cjson.encode({ok = {names = names, total = redis.call('ZCARD', K_NAMES),
  pending = pending, now = tenant_now()}}), 0}
