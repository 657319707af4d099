-- get_pool: a pool's settings, its items counted by state and its statistics. Expired
-- leases and finished delays are reclaimed first (a bounded number), so counts are current.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 '' , 2 '' (no idempotency for reads).
-- Returns {ok = pool view} or {err = not_found}.
if not pool_exists() then return read_reply(missing(nil)) end
local cfg = pool_config()
reclaim(cfg)
return read_reply({ok = pool_view(cfg)})
