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

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

