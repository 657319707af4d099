-- claim_next: grant the best available items of a pool to a holder.
-- KEYS: the ten pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 holder, 4 count (1..100),
--       5 lease_ms ('' = the pool's).
-- Returns {ok = {leases = [item view...]}}, best first (possibly none), or
-- {err = 'holder_at_capacity'}. O(count * log N), plus a bounded reclaim of expired leases.
local holder, count = id_arg(3), int_arg(4, 1, 100)
int_arg(5, 0, MAX_MS, true)

if not pool_exists() then return finish({ok = {leases = {}}}) end
local cfg = pool_config()
local lease_ms = lease_ms_or_default(ARGV[5], cfg)
reclaim(cfg)

local room = holder_room(holder, cfg)
if room <= 0 then return capacity_refusal(holder, cfg) end
if room < count then count = room end

local leases = {}
for _, member in ipairs(redis.call('ZRANGE', K_AVAIL, '0', int_text(count - 1))) do
  local id = avail_id(member)
  local it = load(id)
  update(id, it, function() grant(it, holder, lease_ms) end)
  leases[#leases + 1] = view(id, it)
end
return finish({ok = {leases = leases}})
