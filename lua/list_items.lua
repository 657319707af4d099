-- list_items: a page of a pool's items, by state or by holder. Without a state filter the
-- states are walked in the order available (claim order), delayed, leased (by expiry),
-- done, dead. The cursor is a position in one of those indexes; items are touched as they
-- are listed (an expired lease ends), and the next position accounts for the entries that
-- left the index on this page, so nothing that stays put is skipped. Items that change
-- state while a listing goes on may be missed or seen twice, as with SCAN.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '', 3 state ('' = all), 4 holder ('' = any), 5 cursor index (1..5; with a
--       holder, the holder index), 6 cursor offset, 7 limit (1..1000).
-- Returns {ok = {items = [view...], next = {index, offset} or nil on the last page}}.
local state, holder = ARGV[3], id_arg(4, true)
local si, offset, limit = int_arg(5, 1, 5), int_arg(6, 0, TOKEN), int_arg(7, 1, 1000)
local cfg = pool_config()
local items = {}

-- Touches and maybe lists one item; true when it is still in the index being paged.
local function visit(id, still_there)
  local it = touch(id, cfg)
  if not it then return false end
  if (state == '' or it.s == state) and (holder == '' or it.h == holder) then
    items[#items + 1] = view(id, it)
  end
  return still_there(it)
end

local function reply(next_si, next_offset)
  local next = nil
  if next_si then next = {next_si, next_offset} end
  return read_reply({ok = {items = items, next = next}})
end

-- Pages through one index from `offset`; returns the next offset if the page is full.
local function page(key, want, to_id, still_there)
  local members = redis.call('ZRANGE', key, offset, offset + want - 1)
  local left = 0
  for _, m in ipairs(members) do
    if not visit(to_id(m), still_there) then left = left + 1 end
  end
  if #members == want then return offset + want - left end
  return nil
end

local function same(m) return m end

if holder ~= '' then
  local lo, hi = holder_range(holder)
  local members = redis.call('ZRANGE', K_HOLDERS, lo, hi, 'BYLEX', 'LIMIT', offset, limit)
  local left = 0
  for _, m in ipairs(members) do
    local stays = visit(holder_entry_id(holder, m), function(it)
      return it.s == 'leased' and it.h == holder
    end)
    if not stays then left = left + 1 end
  end
  if #members == limit then return reply(si, offset + limit - left) end
  return reply(nil)
end

local order = {
  {'available', K_AVAIL, avail_id}, {'delayed', K_DELAYED, same}, {'leased', K_LEASED, same},
  {'done', K_DONE, same}, {'dead', K_DEAD, same},
}
while si <= #order do
  local name, key, to_id = order[si][1], order[si][2], order[si][3]
  if state == '' or name == state then
    local next_offset = page(key, limit - #items, to_id, function(it) return it.s == name end)
    if next_offset then return reply(si, next_offset) end
  end
  si = si + 1
  offset = 0
end
return reply(nil)
