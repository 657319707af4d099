-- Shared prelude: idempotent replay, stored in the same script as the effect.
--
-- Every mutating script takes ARGV[1] = '' when the request carried no Idempotency-Key,
-- else '<answer field> <request fingerprint>' (the field is the SHA-256 of the key), and
-- ARGV[2] = how long to keep the answer, in milliseconds. Answers live in one hash per
-- pool or counter (the caller passes it and its expiry index in KEYS):
--   answers      hash: field -> '<expires at ms>\n<fingerprint>\n<reply json>'
--   answer_exp   zset: field by expiry time, to remove expired answers oldest first
-- so that deleting a pool deletes its answers with one UNLINK, and a pool can count the
-- bytes they hold. An answer past its expiry is never replayed, even before it is removed.
--
-- Replies travel as JSON strings. A script returns {reply_json, replayed} where replayed
-- is 1 when the reply is a stored answer to an earlier request with the same key.

local IDEM_FIELD, IDEM_FP, IDEM_TTL = '', '', nil

-- Reads this call's idempotency arguments (ARGV 1 and 2): run first by every call.
local function idem_begin()
  IDEM_FIELD, IDEM_FP = '', ''
  local sep = string.find(ARGV[1], ' ', 1, true)
  if sep then IDEM_FIELD, IDEM_FP = string.sub(ARGV[1], 1, sep - 1), string.sub(ARGV[1], sep + 1) end
  IDEM_TTL = tonumber(ARGV[2])
end

-- Returns the script's return value when this request is a replay (or a key reused for a
-- different request), nil when the script should run.
local function idem_replay(k_answers, now)
  if IDEM_FP == '' then return nil end
  local stored = redis.call('HGET', k_answers, IDEM_FIELD)
  if not stored then return nil end
  local first = string.find(stored, '\n', 1, true)
  if tonumber(string.sub(stored, 1, first - 1)) <= now then return nil end
  local second = string.find(stored, '\n', first + 1, true)
  if string.sub(stored, first + 1, second - 1) ~= IDEM_FP then
    return {cjson.encode({err = 'idempotency_key_reused'}), 0}
  end
  return {string.sub(stored, second + 1), 1}
end

-- The bytes an answer takes: its field and its value.
local function idem_size(k_answers, field)
  local len = redis.call('HSTRLEN', k_answers, field)
  if len == 0 then return 0 end
  return #field + len
end

-- Stores this request's answer (when it has a key); returns how many bytes the answers
-- grew by (an expired answer under the same key is replaced).
local function idem_store(k_answers, k_exp, json, now)
  if IDEM_FP == '' then return 0 end
  local expires = string.format('%d', now + IDEM_TTL)
  local before = idem_size(k_answers, IDEM_FIELD)
  local value = expires .. '\n' .. IDEM_FP .. '\n' .. json
  redis.call('HSET', k_answers, IDEM_FIELD, value)
  redis.call('ZADD', k_exp, expires, IDEM_FIELD)
  return #IDEM_FIELD + #value - before
end

-- Makes a hash of answers (and its index) live at least as long as the answer just stored:
-- for answers that no script would otherwise ever remove (a counter no longer drawn from,
-- a deleted pool).
local function idem_keep_for_ttl(k_answers, k_exp)
  for _, key in ipairs({k_answers, k_exp}) do
    if redis.call('PTTL', key) < IDEM_TTL then
      redis.call('PEXPIRE', key, string.format('%d', IDEM_TTL))
    end
  end
end

-- Removes up to `limit` expired answers, oldest first; returns the bytes they held, and how
-- many there were.
local function idem_purge(k_answers, k_exp, now, limit)
  local fields = redis.call('ZRANGE', k_exp, '-inf', string.format('%d', now), 'BYSCORE',
    'LIMIT', '0', limit)
  local freed = 0
  for _, field in ipairs(fields) do
    freed = freed + idem_size(k_answers, field)
    redis.call('HDEL', k_answers, field)
  end
  if #fields > 0 then redis.call('ZREM', k_exp, unpack(fields)) end
  return freed, #fields
end

-- Argument checks, run before a script's first write. A failure is a caller's bug, so it
-- is a real error reply, not an outcome.
local function bad_arg(i, rule)
  error({err = 'ERR leasehold: ARGV[' .. i .. '] ' .. rule})
end

-- An integer in min..max; nil for '' (or a missing argument) when optional.
local function int_arg(i, min, max, optional)
  local v = ARGV[i]
  if (v == nil or v == '') and optional then return nil end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < min or n > max then
    bad_arg(i, 'must be an integer in ' .. min .. '..' .. max)
  end
  return n
end

-- An item id or holder: ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$ ('' allowed when optional).
local function id_arg(i, optional)
  local v = ARGV[i]
  if v == '' and optional then return v end
  if #v > 128 or not string.match(v, '^%w[%w%._:@%-]*$') then
    bad_arg(i, 'must be an id or holder name')
  end
  return v
end

-- JSON object text ('' allowed when optional).
local function data_arg(i, optional)
  local v = ARGV[i]
  if v == '' and optional then return v end
  if string.sub(v, 1, 1) ~= '{' then bad_arg(i, 'must be a JSON object') end
  return v
end

-- When an item becomes available, as the caller gives it: '' (now), '+<ms>' (that long
-- from now) or '=<ms>' (that time, ms since the epoch). Returns the time in ms, or nil for
-- now (also for a time already past).
local function when_arg(i, now)
  local v = ARGV[i]
  if v == nil or v == '' then return nil end
  local sign, digits = string.sub(v, 1, 1), string.sub(v, 2)
  local n = tonumber(digits)
  if not n or n ~= math.floor(n) or n < 0 or (sign ~= '+' and sign ~= '=') then
    bad_arg(i, 'must be empty, +<ms> or =<ms>')
  end
  local at = sign == '+' and now + n or n
  if at <= now then return nil end
  return at
end

-- A precondition list as built by the caller: '', '*', or comma-separated versions.
local function versions_arg(i)
  local v = ARGV[i]
  if v ~= '' and v ~= '*' and v ~= 'x' and not string.match(v, '^[%d,]+$') then
    bad_arg(i, 'must be *, x or versions')
  end
  return v
end

local MAX_MS = 2592000000
local PRIORITY = 1000000
local TOKEN = 9007199254740991

-- An integer as decimal text. Redis turns a Lua number argument into text with %.17g, a
-- slow floating-point path: hot calls pass integers as text made here (or literal strings).
local function int_text(n) return string.format('%d', n) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

