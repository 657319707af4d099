-- list_events: a page of a pool's events, oldest first: every change to one of its items
-- (added, claimed, renewed, released, completed, expired, delay_over, assigned, unassigned,
-- written, requeued, deleted), with the state and version it left, and the holder and
-- token it concerned. The stream keeps about the pool's last max_events (lib/pool.lua).
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '', 3 the id of the first event to return ('-' = the oldest kept; the
--       caller passes the id just after the last one it saw), 4 limit (1..1000).
-- Returns {ok = {events = [{id, type, item, state, version, holder?, token?}...],
-- trimmed_through = id, last = id}} or {err = not_found}. `trimmed_through` is the newest
-- event the cap has dropped ('0-0' if none): a caller that had not seen it has missed
-- events. `last` is the newest event ('0-0' if none yet).
local start, limit = ARGV[3], int_arg(4, 1, 1000)
if not pool_exists() then return read_reply(missing(nil)) end
-- Leases and delays that have ended are applied first (a bounded number), as GET pool
-- does: the log then says `expired` and `delay_over` when they happen, not only when
-- something next touches the item. A live stream reads every half second, so they reach
-- followers promptly.
reclaim(pool_config())

local trimmed_through = redis.call('HGET', K_POOL, 'events_trimmed') or '0-0'
local newest = redis.call('XREVRANGE', K_EVENTS, '+', '-', 'COUNT', '1')
local last = newest[1] and newest[1][1] or '0-0'

local events = {}
for _, entry in ipairs(redis.call('XRANGE', K_EVENTS, start, '+', 'COUNT', int_text(limit))) do
  local event, fields = {id = entry[1]}, entry[2]
  -- Every field stays text (version and token too: cjson would round numbers past 1e14).
  for i = 1, #fields, 2 do event[fields[i]] = fields[i + 1] end
  events[#events + 1] = event
end
return read_reply({ok = {events = events, trimmed_through = trimmed_through, last = last}})
