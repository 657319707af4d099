-- list_leases: the leases a holder has now, with their tokens (to recover after a restart).
-- KEYS: the ten pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '', 3 holder.
-- Returns {ok = {leases = [view...]}}.
local cfg = pool_config()
local leases = {}
for _, id in ipairs(holder_lease_ids(id_arg(3), cfg)) do
  leases[#leases + 1] = view(id, load(id))
end
return {cjson.encode({ok = {leases = leases}}), 0}
