-- Shared prelude: idempotent replay, stored in the same script as the effect.
--
-- Every mutating script takes ARGV[1] = request fingerprint ('' when the request carried
-- no Idempotency-Key) and ARGV[2] = how long to keep the answer, in milliseconds. The key
-- that holds the answer is passed in KEYS by the caller (IDEM_KEY below).
--
-- Replies travel as JSON strings. A script returns {reply_json, replayed} where replayed
-- is 1 when the reply is a stored answer to an earlier request with the same key.

local IDEM_FP = ARGV[1]
local IDEM_TTL = ARGV[2]

-- Returns the script's return value when this request is a replay (or a key reused for a
-- different request), nil when the script should run.
local function idem_replay(idem_key)
  if IDEM_FP == '' then return nil end
  local stored = redis.call('GET', idem_key)
  if not stored then return nil end
  local sep = string.find(stored, '\n', 1, true)
  if not sep or string.sub(stored, 1, sep - 1) ~= IDEM_FP then
    return {cjson.encode({err = 'idempotency_key_reused'}), 0}
  end
  return {string.sub(stored, sep + 1), 1}
end

-- Encodes the reply, stores it under the idempotency key when there is one, returns it.
local function idem_finish(idem_key, reply)
  local json = cjson.encode(reply)
  if IDEM_FP ~= '' then
    redis.call('SET', idem_key, IDEM_FP .. '\n' .. json, 'PX', IDEM_TTL)
  end
  return {json, 0}
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

