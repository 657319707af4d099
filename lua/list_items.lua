-- list_items: a page of a pool's items, by state or by holder. Without a state filter the
-- states are walked in the order available (claim order), delayed, leased (by expiry),
-- done, dead. The cursor is a position: items that change state while a listing goes on
-- may be skipped or seen twice, as with SCAN.
-- KEYS: the ten pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '', 3 state ('' = all), 4 holder ('' = any), 5 cursor state index (1..5),
--       6 cursor offset, 7 limit.
-- Returns {ok = {items = [view...], next = {state index, offset} or nil}}.
local state, holder = ARGV[3], id_arg(4, true)
local si, offset, limit = int_arg(5, 1, 5), int_arg(6, 0, TOKEN), int_arg(7, 1, 1000)
local cfg = pool_config()
local items = {}

local function add(id)
  local it = touch(id, cfg)
  if it and (state == '' or it.s == state) and (holder == '' or it.h == holder) then
    items[#items + 1] = view(id, it)
  end
end

local function reply(next_si, next_offset)
  local next = nil
  if next_si then next = {next_si, next_offset} end
  return {cjson.encode({ok = {items = items, next = next}}), 0}
end

if holder ~= '' then
  local members = redis.call('ZRANGE', K_HOLDERS, '[' .. holder .. '/', '[' .. holder .. '/\255',
    'BYLEX', 'LIMIT', offset, limit)
  for _, m in ipairs(members) do add(string.sub(m, #holder + 2)) end
  if #members == limit then return reply(si, offset + limit) end
  return reply(nil)
end

local order = {
  {'available', K_AVAIL}, {'delayed', K_DELAYED}, {'leased', K_LEASED}, {'done', K_DONE},
  {'dead', K_DEAD},
}
while si <= #order do
  if state == '' or order[si][1] == state then
    local want = limit - #items
    local ids = redis.call('ZRANGE', order[si][2], offset, offset + want - 1)
    for _, id in ipairs(ids) do add(id) end
    if #ids == want then return reply(si, offset + want) end
  end
  si = si + 1
  offset = 0
end
return reply(nil)
