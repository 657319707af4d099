-- list_leases: a page of the leases a holder has now, with their tokens (to recover after a
-- restart), in id order. Each is touched first, so expired leases drop out.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '', 3 holder, 4 the last id of the previous page ('' = from the start),
--       5 limit (1..1000).
-- Returns {ok = {leases = [view...], next = last id, or nil on the last page}}.
local holder, after, limit = id_arg(3), id_arg(4, true), int_arg(5, 1, 1000)
local cfg = pool_config()
local lo, hi = holder_range(holder)
if after ~= '' then lo = '(' .. holder .. '/' .. after end

local members = redis.call('ZRANGE', K_HOLDERS, lo, hi, 'BYLEX', 'LIMIT', 0, limit)
local leases = {}
for _, m in ipairs(members) do
  local id = holder_entry_id(holder, m)
  local it = touch(id, cfg)
  if it and it.s == 'leased' and it.h == holder then leases[#leases + 1] = view(id, it) end
end
local next = nil
if #members == limit then next = holder_entry_id(holder, members[#members]) end
return read_reply({ok = {leases = leases, next = next}})
