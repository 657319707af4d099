-- Shared prelude for the scripts that keep a tenant's index of pools, in the tenant's slot:
--   KEYS 1 names    zset (all scores 0, so ordered by name): every pool of the tenant, and
--                   names reserved for a pool being created
--        2 pending  hash: name -> when it was reserved (ms), until its pool is created
--        3 legacy   set: the index as it was kept before, moved into `names` once
-- A pool is created in two steps, since it lives in another slot: its name is reserved
-- here (under the tenant's max_pools_per_tenant), then its script creates it and the
-- reservation is cleared. A reservation whose pool never came (the replica stopped in
-- between) is dropped by the next listing that meets it, once it is a minute old; a name
-- whose pool is gone (deleted, its removal from here cut short) is dropped at once.

local K_NAMES, K_PENDING, K_LEGACY

local function tenant_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Run first by every call: this call's keys, and the set an older version kept moved into
-- the index.
local function tenant_begin()
  K_NAMES, K_PENDING, K_LEGACY = KEYS[1], KEYS[2], KEYS[3]
  if redis.call('EXISTS', K_LEGACY) == 1 then
    for _, name in ipairs(redis.call('SMEMBERS', K_LEGACY)) do
      redis.call('ZADD', K_NAMES, '0', name)
    end
    redis.call('UNLINK', K_LEGACY)
  end
end
