-- unlist_pool: the index's side of a pool's creation or removal: `created` clears the
-- name's reservation and makes sure the name is there (a deletion of the same name that
-- ran meanwhile may have removed it); `gone` removes the name (its pool was deleted, or
-- never came).
-- KEYS: the three tenant index keys (lib/tenant.lua).
-- ARGV: 1 pool name, 2 'created' | 'gone'.
-- Returns {ok = {}}.
local name = ARGV[1]
redis.call('HDEL', K_PENDING, name)
if ARGV[2] == 'gone' then
  redis.call('ZREM', K_NAMES, name)
else
  redis.call('ZADD', K_NAMES, '0', name)
end
return {cjson.encode({ok = {}}), 0}
