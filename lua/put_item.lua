-- put_item: create an item or replace its data (and priority) under preconditions. PATCH
-- runs this too, with the version it merged from as a base: if the item changed since,
-- the script answers {retry} (not stored) and the caller merges again.
-- Creates the pool with default settings if it does not exist.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 data (JSON object text),
--       5 priority ('' = unchanged, 0 for a new item), 6 If-Match versions (''),
--       7 If-None-Match versions (''), 8 expected_version (''), 9 Lease-Token (''),
--       10 base version ('' for PUT; for PATCH, the version the data was merged from),
--       11 base created_at (PATCH: with the version, tells the same item from one deleted and
--       created again since, which starts again at version 1), 12 max_items_per_pool,
--       13 max_pool_bytes, 14 '1' when the pool's name is reserved (ask_reservation).
-- Returns {ok = {item = view, created}}, {retry = 0}, or {err = not_found |
-- precondition_required | precondition_failed | version_conflict | lease_lost, current}, or
-- {err = quota_exceeded} when a new item, or data grown, would take the pool past a limit.
local id, priority = id_arg(3), int_arg(5, -PRIORITY, PRIORITY, true)
local base = ARGV[10]
local data = data_arg(4, base ~= '')
versions_arg(6)
versions_arg(7)
int_arg(8, 0, TOKEN, true)
int_arg(9, 0, TOKEN, true)
int_arg(10, 0, TOKEN, true)
local base_created = int_arg(11, 0, TOKEN, true)
local max_items, max_bytes = int_arg(12, 0, TOKEN), int_arg(13, 0, TOKEN)

local cfg = pool_config()
local it = touch(id, cfg)
local refusal = check_preconditions(it, cfg, ARGV[6], ARGV[7], ARGV[8], ARGV[9])
if refusal then return refusal end

if base ~= '' then
  if not it then return finish(missing(id)) end
  if it.v ~= tonumber(base) or it.c ~= base_created then
    return read_reply({retry = 0})
  end
end

local quota = over_quota(it and 0 or 1, #id + #data - data_size(id, it), max_items, max_bytes)
  or ask_reservation(ARGV[14] == '1')
if quota then return quota end

ensure_pool()
local created = it == nil
if created then
  it = {s = 'available', p = 0, v = 0, a = 0, c = NOW, q = next_seq()}
end
update(id, it, created and 'added' or 'written', function()
  if priority then it.p = priority end
  it.d = data
end)
return finish({ok = {item = view(id, it), created = created}})
