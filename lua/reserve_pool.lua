-- reserve_pool: reserve a pool's name in its tenant's index before the pool is created,
-- under the tenant's limit on pools (reserved names count). A name there already (a pool
-- deleted, its name not yet removed) is marked pending all the same, so that no listing
-- drops it while its pool is being created.
-- KEYS: the three tenant index keys (lib/tenant.lua).
-- ARGV: 1 pool name, 2 max_pools_per_tenant.
-- Returns {ok = {}} or {err = quota_exceeded}.
local name, max = ARGV[1], tonumber(ARGV[2])
if not redis.call('ZSCORE', K_NAMES, name) then
  local pools = redis.call('ZCARD', K_NAMES)
  if pools >= max then
    return {cjson.encode({err = 'quota_exceeded', quota = 'max_pools_per_tenant', limit = max,
      usage = pools, adds = 1}), 0}
  end
  redis.call('ZADD', K_NAMES, '0', name)
end
redis.call('HSET', K_PENDING, name, string.format('%d', tenant_now()))
return {cjson.encode({ok = {}}), 0}
