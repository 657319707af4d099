-- claim_next: grant the best available items of a pool to a holder.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 holder, 4 count (1..100),
--       5 lease_ms ('' = the pool's), 6 '1' when the caller will wait (long-poll) if
--       nothing is granted now, 7 '1' when a pool that does not exist is as good as an
--       empty one (the caller waits for it to be created).
-- Returns {ok = {leases = [item view...]}}, best first (possibly none), or
-- {err = 'holder_at_capacity'}, or {err = 'not_found'} for a pool that does not exist. O(count * log N), plus a bounded reclaim of expired leases.
-- A waiting caller that is granted nothing gets, instead of a stored answer (its
-- Idempotency-Key stays free for the grant it waits for), {ok = {leases = [], next_in =
-- ms}}: how long until the first lease expires or delay ends here (none: no next_in).
local holder, count = id_arg(3), int_arg(4, 1, 100)
int_arg(5, 0, MAX_MS, true)
local waiting = ARGV[6] == '1'
local may_not_exist = ARGV[7] == '1'

-- How long until time alone may make an item available (the first lease expiry or the
-- first delay end), or nil when nothing is leased with an expiry or delayed.
local function next_in()
  local due = next_due()
  if due then return int_text(math.max(due - NOW, 0)) end
  return nil
end

if not pool_exists() then
  if not may_not_exist then return read_reply(missing(nil)) end
  return read_reply({ok = {leases = {}}})
end
local cfg = pool_config()
local lease_ms = lease_ms_or_default(ARGV[5], cfg)
reclaim(cfg)
-- A paused pool grants nothing (kept for no replay: a retry after the resume may be granted).
if cfg.paused == 1 then return read_reply({ok = {leases = {}, paused = true}}) end

local room = holder_room(holder, cfg)
if room <= 0 then return capacity_refusal(holder, cfg) end
if room < count then count = room end

local leases = {}
for _, member in ipairs(redis.call('ZRANGE', K_AVAIL, '0', int_text(count - 1))) do
  local id = avail_id(member)
  local it = load(id)
  update(id, it, 'claimed', function() grant(it, holder, lease_ms) end)
  leases[#leases + 1] = view(id, it)
end
if waiting and #leases == 0 then return read_reply({ok = {leases = {}, next_in = next_in()}}) end
return finish({ok = {leases = leases}})
