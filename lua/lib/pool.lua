-- Shared prelude for every script that works on one pool.
--
-- KEYS (the same twelve, in this order, for every pool script; all share the pool's hash tag):
--   1 pool      hash: config (lease_ms, max_leases_per_holder, max_attempts,
--               require_if_match, max_events, keep_done_ms and keep_dead_ms: how long
--               done and dead items are kept, -1 for ever), created_at, updated_at, the arrival
--               counter seq, stats claims, conflicts, expired, and the bytes the pool
--               holds: data_bytes (items: id + data), event_bytes (events: their fields
--               and values), answer_bytes (stored answers: lib/idempotency.lua), each kept
--               exactly by every script that adds or removes any
--   2 items     hash: item id -> MessagePack record (see below)
--   3 avail     zset: available items, score = 1e6 - priority (lowest first = highest
--               priority), member = "<arrival seq, 16 digits>:<id>", so equal scores sort
--               by arrival (Redis orders equal scores by member); see avail_member
--   4 leased    zset: leased item ids by lease expiry in ms (+inf: no expiry)
--   5 delayed   zset: delayed item ids by the time they become available, in ms
--   6 done      zset: done item ids by completion time
--   7 dead      zset: dead item ids by the time they died
--   8 holders   zset (lexicographic): "<holder>/<id>" for every leased item
--   9 fence     string: the last fencing token granted in this pool. Deleting the pool
--               keeps it, so a pool created again under the same name never hands out a
--               token lower than one a downstream system has already seen.
--  10 events    stream: one entry per change to an item (type, item, state, version,
--               holder, token), capped at about the pool's max_events entries (none when
--               0; the pool hash's events_trimmed is the newest entry the cap dropped).
--               Its name is also the
--               pub/sub channel on which a script announces items that became available,
--               which wakes long-poll claims on every replica.
--  11 answers   hash: stored answers for Idempotency-Keys (lib/idempotency.lua)
--  12 answer_exp zset: their expiry index
--
-- Item record fields: s state, p priority, v version, h holder, t token, e lease expiry
-- (ms, 0 = none), r delayed until (ms), a attempts, d data (JSON text), c created_at,
-- u updated_at, q arrival seq, k 1 when its bytes are in the pool's data_bytes (every item
-- written since the pool counts its bytes; older ones are counted by the sweeper, which
-- walks the items once, from the pool hash's count_cursor, until it is gone).
--
-- A lease whose expiry has passed is lost at that instant: `touch` applies the expiry to
-- one item before any script reads it, and `reclaim` applies it to a bounded number of
-- the oldest expired leases.

-- This call's keys and time, set by pool_begin (below) before anything else runs.
local K_POOL, K_ITEMS, K_AVAIL, K_LEASED
local K_DELAYED, K_DONE, K_DEAD, K_HOLDERS
local K_FENCE, K_EVENTS, K_ANSWERS, K_ANSWER_EXP

local NOW, NOW_TEXT
local RECLAIM_LIMIT = '64'
-- A pool keeps its last max_events events (DEFAULT_MAX_EVENTS unless set; 0: none).
local DEFAULT_MAX_EVENTS = 10000
-- Done items are kept 7 days and dead ones 30 unless the pool says otherwise (-1: for ever).
local DEFAULT_KEEP_DONE_MS = 604800000
local DEFAULT_KEEP_DEAD_MS = 2592000000
-- How many finished items one call removes at most, oldest first, once their time is up.
local RETIRE_LIMIT = 64
-- The pool's max_events, read once a call (by pool_config or the first event).
local MAX_EVENTS

-- How many leases this call ended because their time ran out: every reply says so
-- (`expired`, when not 0), for the replica's metrics.
local EXPIRED
-- How many items this call made available: announced once, at the end, on the pool's
-- channel, so replicas wake that many of their long-poll claims (not all of them).
local MADE_AVAILABLE
-- How many bytes of item data and of events this call added (negative: removed), added
-- to the pool's counts once, at the end.
local DATA_DELTA, EVENT_DELTA
-- How many expired stored answers a write removes, oldest first.
local PURGE_LIMIT = '16'

local function pool_exists() return redis.call('EXISTS', K_POOL) == 1 end

-- Whether this call scheduled something for time to do (a lease with an expiry, a delay):
-- then the reply says when the pool's next such thing is due (`due`, ms), so that the
-- replicas apply it then, even if nobody calls on the pool.
local DUE_TOUCHED

-- When the pool's first lease expiry or delay end is, in ms; nil when there is none.
local function next_due()
  local soonest
  for _, key in ipairs({K_LEASED, K_DELAYED}) do
    local first = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')
    local at = first[2] and tonumber(first[2])
    if at and at ~= math.huge and (not soonest or at < soonest) then soonest = at end
  end
  return soonest
end

local function noted(reply)
  if EXPIRED > 0 then reply.expired = EXPIRED end
  if DUE_TOUCHED then
    -- As text, as every time that may be far ahead (cjson rounds numbers past 14 digits).
    local due = next_due()
    reply.due = due and int_text(due) or nil
  end
  if MADE_AVAILABLE > 0 then redis.call('PUBLISH', K_EVENTS, int_text(MADE_AVAILABLE)) end
  if DATA_DELTA ~= 0 then redis.call('HINCRBY', K_POOL, 'data_bytes', int_text(DATA_DELTA)) end
  if EVENT_DELTA ~= 0 then
    redis.call('HINCRBY', K_POOL, 'event_bytes', int_text(EVENT_DELTA))
  end
  DATA_DELTA, EVENT_DELTA = 0, 0
  return reply
end

-- The reply of a write, stored for replay under its Idempotency-Key while the pool exists
-- (a write on a pool that does not exist changed nothing, and runs again on a retry), with
-- expired answers removed; and the reply of a read, or of a write never to be replayed.
local function finish(reply)
  local json = cjson.encode(noted(reply))
  if pool_exists() then
    local grown = idem_store(K_ANSWERS, K_ANSWER_EXP, json, NOW)
      - idem_purge(K_ANSWERS, K_ANSWER_EXP, NOW, PURGE_LIMIT)
    if grown ~= 0 then redis.call('HINCRBY', K_POOL, 'answer_bytes', int_text(grown)) end
  end
  return {json, 0}
end
local function read_reply(reply) return {cjson.encode(noted(reply)), 0} end

-- How long the pool keeps done and dead items (nil: for ever), read once a call (by
-- pool_config or the first item to finish).
local KEEP
local function keep_of(done, dead)
  local function ms(v, default)
    local n = tonumber(v) or default
    if n < 0 then return nil end
    return n
  end
  return {done = ms(done, DEFAULT_KEEP_DONE_MS), dead = ms(dead, DEFAULT_KEEP_DEAD_MS)}
end

local function pool_config()
  local v = redis.call('HMGET', K_POOL, 'lease_ms', 'max_leases_per_holder', 'max_attempts',
    'require_if_match', 'max_events', 'keep_done_ms', 'keep_dead_ms', 'paused')
  MAX_EVENTS = tonumber(v[5]) or DEFAULT_MAX_EVENTS
  KEEP = keep_of(v[6], v[7])
  return {
    lease_ms = tonumber(v[1]) or 30000,
    max_leases_per_holder = tonumber(v[2]) or 0,
    max_attempts = tonumber(v[3]) or 0,
    require_if_match = tonumber(v[4]) or 0,
    max_events = MAX_EVENTS,
    keep_done_ms = KEEP.done or -1,
    keep_dead_ms = KEEP.dead or -1,
    paused = tonumber(v[8]) or 0,
  }
end

-- How long items in `state` (done or dead) are kept, in ms; nil: for ever.
local function keep_ms(state)
  if KEEP == nil then
    local v = redis.call('HMGET', K_POOL, 'keep_done_ms', 'keep_dead_ms')
    KEEP = keep_of(v[1], v[2])
  end
  return KEEP[state]
end

local function max_events()
  if MAX_EVENTS == nil then
    MAX_EVENTS = tonumber(redis.call('HGET', K_POOL, 'max_events')) or DEFAULT_MAX_EVENTS
  end
  return MAX_EVENTS
end

-- Creates the pool with default settings if it does not exist; true when it was created.
-- Answers stored since a pool of this name was deleted (its deletion's own) count from now.
local function ensure_pool()
  if pool_exists() then return false end
  local answer_bytes = 0
  for _, field in ipairs(redis.call('HKEYS', K_ANSWERS)) do
    answer_bytes = answer_bytes + idem_size(K_ANSWERS, field)
  end
  redis.call('PERSIST', K_ANSWERS)
  redis.call('PERSIST', K_ANSWER_EXP)
  redis.call('HSET', K_POOL, 'lease_ms', 30000, 'max_leases_per_holder', 0, 'max_attempts', 0,
    'require_if_match', 0, 'max_events', DEFAULT_MAX_EVENTS,
    'keep_done_ms', DEFAULT_KEEP_DONE_MS, 'keep_dead_ms', DEFAULT_KEEP_DEAD_MS, 'created_at', NOW,
    'updated_at', NOW, 'data_bytes', '0', 'event_bytes', '0',
    'answer_bytes', int_text(answer_bytes))
  return true
end

-- A write that would create the pool runs only once the caller has reserved its name in
-- the tenant's index (lib/tenant.lua), and says so (`reserved`): else it answers {create}
-- and changes nothing, and the caller reserves the name and runs it again.
local function ask_reservation(reserved)
  if reserved or pool_exists() then return nil end
  return {cjson.encode({create = 1}), 0}
end

-- The bytes an item counts for: its id and its data.
local function data_size(id, it)
  if not it or not it.d or not it.k then return 0 end
  return #id + #it.d
end

-- The bytes the pool holds (with this call's changes so far), and its items.
local function usage()
  local v = redis.call('HMGET', K_POOL, 'data_bytes', 'event_bytes', 'answer_bytes',
    'count_cursor')
  local data = (tonumber(v[1]) or 0) + DATA_DELTA
  local events = (tonumber(v[2]) or 0) + EVENT_DELTA
  local answers = tonumber(v[3]) or 0
  return {bytes = data + events + answers, data_bytes = data, event_bytes = events,
    answer_bytes = answers, items = redis.call('HLEN', K_ITEMS), counting = v[4] ~= false}
end


-- A write that would take the pool past a limit: `new_items` more items, or `grown` more
-- bytes of item data, against the caller's limits. Refusals are not stored for replay: a
-- retry once there is room goes through. Writes that add no item data (claims, renewals,
-- releases, deletions) are never refused, so a full pool can always be drained; their
-- events and stored answers count all the same.
local function over_quota(new_items, grown, max_items, max_bytes)
  local refusal
  if new_items > 0 then
    local items = redis.call('HLEN', K_ITEMS)
    if items + new_items > max_items then
      refusal = {quota = 'max_items_per_pool', limit = max_items, usage = items, adds = new_items}
    end
  end
  if not refusal and grown > 0 then
    local used = usage().bytes
    if used + grown > max_bytes then
      refusal = {quota = 'max_pool_bytes', limit = max_bytes, usage = used, adds = grown}
    end
  end
  if not refusal then return nil end
  refusal.err = 'quota_exceeded'
  return read_reply(refusal)
end

local function bump_stat(field)
  if pool_exists() then redis.call('HINCRBY', K_POOL, field, '1') end
end

local function next_seq()
  return redis.call('HINCRBY', K_POOL, 'seq', '1')
end

-- The avail member of an item: its arrival seq, zero-padded so that lexicographic order is
-- arrival order, then its id. AVAIL_ID_AT is where the id starts.
local AVAIL_ID_AT = 18
local function avail_member(id, it) return string.format('%016d', it.q) .. ':' .. id end
local function avail_id(member) return string.sub(member, AVAIL_ID_AT) end

local function load(id)
  local raw = redis.call('HGET', K_ITEMS, id)
  if not raw then return nil end
  return cmsgpack.unpack(raw)
end

local function save(id, it) redis.call('HSET', K_ITEMS, id, cmsgpack.pack(it)) end

-- Counts, a bounded number at a time, the bytes of items written before the pool counted
-- them (see `k` above); false once every item is counted.
local function count_items(limit)
  local cursor = redis.call('HGET', K_POOL, 'count_cursor')
  if not cursor then return false end
  local scanned = redis.call('HSCAN', K_ITEMS, cursor, 'COUNT', int_text(limit))
  local found = scanned[2]
  for i = 1, #found, 2 do
    local id, it = found[i], cmsgpack.unpack(found[i + 1])
    if not it.k then
      it.k = 1
      save(id, it)
      DATA_DELTA = DATA_DELTA + data_size(id, it)
    end
  end
  if scanned[1] == '0' then
    redis.call('HDEL', K_POOL, 'count_cursor')
    return false
  end
  redis.call('HSET', K_POOL, 'count_cursor', scanned[1])
  return true
end

local function holder_member(holder, id) return holder .. '/' .. id end

local function unindex(id, it)
  local s = it.s
  if s == 'available' then redis.call('ZREM', K_AVAIL, avail_member(id, it))
  elseif s == 'leased' then
    redis.call('ZREM', K_LEASED, id)
    redis.call('ZREM', K_HOLDERS, holder_member(it.h, id))
  elseif s == 'delayed' then redis.call('ZREM', K_DELAYED, id)
  elseif s == 'done' then redis.call('ZREM', K_DONE, id)
  elseif s == 'dead' then redis.call('ZREM', K_DEAD, id)
  end
end

local function index(id, it)
  local s = it.s
  if s == 'available' then
    redis.call('ZADD', K_AVAIL, int_text(1000000 - it.p), avail_member(id, it))
    MADE_AVAILABLE = MADE_AVAILABLE + 1
  elseif s == 'leased' then
    redis.call('ZADD', K_LEASED, it.e > 0 and int_text(it.e) or '+inf', id)
    redis.call('ZADD', K_HOLDERS, '0', holder_member(it.h, id))
    if it.e > 0 then DUE_TOUCHED = true end
  elseif s == 'delayed' then
    redis.call('ZADD', K_DELAYED, int_text(it.r), id)
    DUE_TOUCHED = true
  elseif s == 'done' then redis.call('ZADD', K_DONE, NOW_TEXT, id)
  elseif s == 'dead' then redis.call('ZADD', K_DEAD, NOW_TEXT, id)
  end
end

-- The bytes an event counts for: its fields' names and values.
local function entry_size(fields)
  local n = 0
  for _, f in ipairs(fields) do n = n + #f end
  return n
end

-- Drops the pool's oldest events beyond `cap`, once `slack` or more are over, and notes
-- the newest it dropped in events_trimmed: readers tell from it whether they missed
-- events (XINFO's max-deleted-entry-id counts only XDEL's deletions, not trimming). That
-- id is found by reading the shorter side of it: min(over, cap + 1) entries.
local function trim_events(cap, slack)
  local over = redis.call('XLEN', K_EVENTS) - cap
  if over < slack then return end
  local newest_dropped
  if over <= cap + 1 then
    local dropped = redis.call('XRANGE', K_EVENTS, '-', '+', 'COUNT', int_text(over))
    newest_dropped = dropped[#dropped][1]
    for _, entry in ipairs(dropped) do EVENT_DELTA = EVENT_DELTA - entry_size(entry[2]) end
  else
    local kept_and_one = redis.call('XREVRANGE', K_EVENTS, '+', '-', 'COUNT', int_text(cap + 1))
    newest_dropped = kept_and_one[#kept_and_one][1]
    local kept = 0
    for i = 1, #kept_and_one - 1 do kept = kept + entry_size(kept_and_one[i][2]) end
    EVENT_DELTA = kept - (tonumber(redis.call('HGET', K_POOL, 'event_bytes')) or 0)
  end
  redis.call('XTRIM', K_EVENTS, 'MAXLEN', int_text(cap))
  redis.call('HSET', K_POOL, 'events_trimmed', newest_dropped)
end

-- Appends a change of an item to the pool's events (none when max_events is 0): `kind`,
-- the item's state and version after it, and the holder and token it concerns (the new
-- ones of a grant, else the ones it had: a release names who released). The oldest go
-- 1% of the cap at a time (at most 100), so most changes pay only an XLEN for the cap.
-- `at` is when the fact happened, where that is not now (a lease's end, a delay's end,
-- applied later); `expires` the lease's expiry it concerns (a grant's or renewal's new one,
-- the one that ran out).
local function event(kind, id, it, holder, token, at, expires)
  local cap = max_events()
  if cap == 0 then return end
  local fields = {'type', kind, 'item', id, 'state', it.s, 'version', int_text(it.v)}
  holder, token = it.h or holder, it.t or token
  if holder then
    fields[#fields + 1] = 'holder'
    fields[#fields + 1] = holder
  end
  if token then
    fields[#fields + 1] = 'token'
    fields[#fields + 1] = int_text(token)
  end
  if at and at ~= NOW then
    fields[#fields + 1] = 'at'
    fields[#fields + 1] = int_text(at)
  end
  if not expires and it.s == 'leased' and it.e and it.e > 0 then expires = it.e end
  if expires then
    fields[#fields + 1] = 'expires'
    fields[#fields + 1] = int_text(expires)
  end
  redis.call('XADD', K_EVENTS, '*', unpack(fields))
  EVENT_DELTA = EVENT_DELTA + entry_size(fields)
  trim_events(cap, math.max(1, math.min(100, math.floor(cap / 100))))
end

-- Appends a change to the pool itself (`paused`, `resumed`) to its events: no item.
local function pool_event(kind)
  local cap = max_events()
  if cap == 0 then return end
  local fields = {'type', kind}
  redis.call('XADD', K_EVENTS, '*', unpack(fields))
  EVENT_DELTA = EVENT_DELTA + entry_size(fields)
  trim_events(cap, math.max(1, math.min(100, math.floor(cap / 100))))
end

-- Removes an item whatever its state, recorded as an event of `kind` (with the state and
-- version it had).
local function remove_item(id, it, kind)
  unindex(id, it)
  redis.call('HDEL', K_ITEMS, id)
  DATA_DELTA = DATA_DELTA - data_size(id, it)
  event(kind, id, it)
end

-- Every change to an item goes through here: out of the index of its state, changed by
-- `change`, +1 version and a new updated_at, into the index of its (new) state, saved,
-- and recorded as an event of `kind`. An item that finished (done or dead) in a pool that
-- keeps such items 0 ms is removed at once after that (a `removed` event): then it answers
-- true, and the caller must not write the item again (it is gone).
local function update(id, it, kind, change, at, expires)
  local holder, token = it.h, it.t
  local size = data_size(id, it)
  unindex(id, it)
  change(it)
  it.k = 1
  DATA_DELTA = DATA_DELTA + data_size(id, it) - size
  it.v = it.v + 1
  it.u = NOW
  index(id, it)
  save(id, it)
  event(kind, id, it, holder, token, at, expires)
  if (it.s == 'done' or it.s == 'dead') and keep_ms(it.s) == 0 then
    remove_item(id, it, 'removed')
    return true
  end
  return false
end

-- Removes up to `limit` done and dead items each whose time in the pool is up, oldest
-- first; true when more are due than it removed.
local function retire(limit)
  local more = false
  for _, finished in ipairs({{'done', K_DONE}, {'dead', K_DEAD}}) do
    local keep = keep_ms(finished[1])
    if keep then
      local ids = redis.call('ZRANGE', finished[2], '-inf', int_text(NOW - keep), 'BYSCORE',
        'LIMIT', '0', int_text(limit))
      for _, id in ipairs(ids) do
        local it = load(id)
        if it then
          remove_item(id, it, 'removed')
        else
          redis.call('ZREM', finished[2], id)
        end
      end
      if #ids == limit then more = true end
    end
  end
  return more
end

local function clear_lease(it)
  it.h = nil
  it.t = nil
  it.e = nil
end

local function make_available(it)
  clear_lease(it)
  it.r = nil
  it.s = 'available'
  it.q = next_seq()
end

-- A lease ended without completion (expired, released, or lost to a reassignment's
-- predecessor): the item goes back to the pool, or dies once it has used its attempts.
local function end_lease(it, cfg, delay_ms)
  if cfg.max_attempts > 0 and it.a >= cfg.max_attempts then
    clear_lease(it)
    it.s = 'dead'
  elseif delay_ms and delay_ms > 0 then
    clear_lease(it)
    it.s = 'delayed'
    it.r = NOW + delay_ms
  else
    make_available(it)
  end
end

local function grant(it, holder, lease_ms)
  it.s = 'leased'
  it.h = holder
  it.t = redis.call('INCR', K_FENCE)
  it.e = lease_ms > 0 and NOW + lease_ms or 0
  it.r = nil
  it.a = it.a + 1
  redis.call('HINCRBY', K_POOL, 'claims', '1')
end

-- Loads an item and applies what time has done to it: an expired lease ends, a finished
-- delay makes it available. Returns the item as it is now (nil if there is none, also when
-- its lease ended with its last attempt in a pool that keeps dead items 0 ms).
local function touch(id, cfg)
  local it = load(id)
  if not it then return nil end
  if it.s == 'leased' and it.e > 0 and it.e <= NOW then
    local ended = it.e
    local removed = update(id, it, 'expired', function() end_lease(it, cfg or pool_config()) end,
      ended, ended)
    redis.call('HINCRBY', K_POOL, 'expired', '1')
    EXPIRED = EXPIRED + 1
    if removed then return nil end
  elseif it.s == 'delayed' and it.r <= NOW then
    update(id, it, 'delay_over', make_available, it.r)
  end
  return it
end

-- Applies expiry to at most RECLAIM_LIMIT expired leases and finished delays, oldest
-- first, and removes up to RETIRE_LIMIT finished items whose time is up.
local function reclaim(cfg)
  for _, key in ipairs({K_LEASED, K_DELAYED}) do
    local ids = redis.call('ZRANGE', key, '-inf', NOW_TEXT, 'BYSCORE', 'LIMIT', '0', RECLAIM_LIMIT)
    for _, id in ipairs(ids) do touch(id, cfg) end
  end
  retire(RETIRE_LIMIT)
end

local function lease_valid(it, holder, token)
  return it.s == 'leased' and it.h == holder and it.t == token
end

-- The lexicographic range of a holder's entries in the holders index.
local function holder_range(holder)
  return '[' .. holder .. '/', '[' .. holder .. '/\255'
end

local function holder_entry_id(holder, member) return string.sub(member, #holder + 2) end

-- How many more leases this holder may take under max_leases_per_holder (a huge number if
-- unlimited). Bounded work: the holder's entries are counted with ZLEXCOUNT; only when the
-- count reaches the limit are expired leases reclaimed (the pool's oldest first, then up to
-- RECLAIM_LIMIT of the holder's own entries) and the entries counted again. An expired
-- lease not yet reclaimed counts against its holder, so the limit is never exceeded.
local function holder_room(holder, cfg)
  local max = cfg.max_leases_per_holder
  if max == 0 then return 1e9 end
  local lo, hi = holder_range(holder)
  local held = redis.call('ZLEXCOUNT', K_HOLDERS, lo, hi)
  if held >= max then
    reclaim(cfg)
    local members = redis.call('ZRANGE', K_HOLDERS, lo, hi, 'BYLEX', 'LIMIT', '0', RECLAIM_LIMIT)
    for _, m in ipairs(members) do touch(holder_entry_id(holder, m), cfg) end
    held = redis.call('ZLEXCOUNT', K_HOLDERS, lo, hi)
  end
  return max - held
end

local function view(id, it)
  return {
    id = id, state = it.s, priority = it.p, version = it.v, holder = it.h, token = it.t,
    expires = it.e, attempts = it.a, data = it.d, created = it.c, updated = it.u,
    -- As text: cjson writes a number of more than 14 digits (a time centuries ahead) rounded.
    available = it.s == 'delayed' and int_text(it.r) or nil,
  }
end

local function pool_view(cfg)
  local v = redis.call('HMGET', K_POOL, 'claims', 'conflicts', 'expired', 'created_at',
    'updated_at')
  return {
    config = cfg,
    usage = usage(),
    counts = {
      available = redis.call('ZCARD', K_AVAIL), leased = redis.call('ZCARD', K_LEASED),
      delayed = redis.call('ZCARD', K_DELAYED), done = redis.call('ZCARD', K_DONE),
      dead = redis.call('ZCARD', K_DEAD),
    },
    stats = {claims = tonumber(v[1]) or 0, conflicts = tonumber(v[2]) or 0,
      expired = tonumber(v[3]) or 0},
    created = tonumber(v[4]), updated = tonumber(v[5]),
  }
end

local function current(it)
  if not it then return {version = 0} end
  return {version = it.v, state = it.s, holder = it.h}
end

-- An expected refusal: counted in the pool's stats, stored for replay, decoded in Rust.
local function refuse(code, it)
  if code ~= 'not_found' then bump_stat('conflicts') end
  return finish({err = code, current = current(it)})
end

-- A not_found refusal, saying what was missing: the item `id` in a pool that exists, or
-- the pool itself.
local function missing(id)
  if id and pool_exists() then return {err = 'not_found', item = id} end
  return {err = 'not_found', pool_missing = true}
end

local function capacity_refusal(holder, cfg)
  bump_stat('conflicts')
  return finish({err = 'holder_at_capacity', limit = cfg.max_leases_per_holder})
end

local function lease_ms_or_default(arg, cfg)
  if arg == '' then return cfg.lease_ms end
  return tonumber(arg)
end

local function version_in(list, version)
  if list == '*' then return true end
  for v in string.gmatch(list, '[^,]+') do
    if tonumber(v) == version then return true end
  end
  return false
end

-- The preconditions of a write (If-Match, If-None-Match, expected_version, Lease-Token, the
-- pool's require_if_match), in that order. Returns a refusal reply, or nil to go on.
local function check_preconditions(it, cfg, if_match, if_none_match, expected, lease_token)
  if cfg.require_if_match == 1 and if_match == '' and if_none_match == '' and expected == ''
      and lease_token == '' then
    return refuse('precondition_required', it)
  end
  if if_match ~= '' and (not it or not version_in(if_match, it.v)) then
    return refuse('precondition_failed', it)
  end
  if if_none_match ~= '' and it and version_in(if_none_match, it.v) then
    return refuse('precondition_failed', it)
  end
  if expected ~= '' and tonumber(expected) ~= (it and it.v or 0) then
    return refuse('version_conflict', it)
  end
  if lease_token ~= '' and not (it and it.s == 'leased' and it.t == tonumber(lease_token)) then
    return refuse('lease_lost', it)
  end
  return nil
end

-- Run first by every call of a pool: this call's keys, time and counts; then the stored
-- answer, when the request is a replay (returned as the call's reply: nothing else runs).
local function pool_begin()
  K_POOL, K_ITEMS, K_AVAIL, K_LEASED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
  K_DELAYED, K_DONE, K_DEAD, K_HOLDERS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
  K_FENCE, K_EVENTS, K_ANSWERS, K_ANSWER_EXP = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
  NOW = now_ms()
  NOW_TEXT = int_text(NOW)
  MAX_EVENTS, KEEP, DUE_TOUCHED = nil, nil, false
  EXPIRED, MADE_AVAILABLE, DATA_DELTA, EVENT_DELTA = 0, 0, 0, 0
  idem_begin()

  local replay = idem_replay(K_ANSWERS, NOW)
  if replay then return replay end

  -- A pool made before pools counted their bytes: its event log is counted now (it holds
  -- at most 100,000 entries), its items by the sweeper (count_items), from here on.
  if redis.call('HEXISTS', K_POOL, 'event_bytes') == 0 and pool_exists() then
    local events = 0
    for _, entry in ipairs(redis.call('XRANGE', K_EVENTS, '-', '+')) do
      events = events + entry_size(entry[2])
    end
    redis.call('HSET', K_POOL, 'event_bytes', int_text(events), 'data_bytes', '0',
      'answer_bytes', '0', 'count_cursor', '0')
  end
  return nil
end

