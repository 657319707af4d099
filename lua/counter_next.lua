-- counter_next: draw `count` contiguous values from a counter, in the period that Redis's
-- clock says it is. The caller names the period it expects now and the one after it (so a
-- call made just before midnight still lands), each with its key and bounds; if Redis's
-- time is in neither, the script answers {retry = now} and changes nothing.
-- KEYS: 1 counter key of period A, 2 counter key of period B, 3 the counter's stored
--       answers, 4 their expiry index (lib/idempotency.lua). Both expire with the newest
--       answer, so a counter no longer drawn from keeps none.
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 count, 4 A start ms,
--       5 A end ms ('' = no periods: A never ends), 6 A label, 7 B end ms, 8 B label,
--       9 how long a period's counter is kept after its end, ms.
-- Returns {ok = {period = label, first, last}} or {retry = now_ms}.
local now = now_ms()
local replay = idem_replay(KEYS[3], now)
if replay then return replay end

local count = int_arg(3, 1, 1000)
int_arg(9, 0, TOKEN)
local key, label, ends
if ARGV[5] == '' then
  key, label = KEYS[1], ARGV[6]
elseif now >= tonumber(ARGV[4]) and now < tonumber(ARGV[5]) then
  key, label, ends = KEYS[1], ARGV[6], tonumber(ARGV[5])
elseif now >= tonumber(ARGV[5]) and now < tonumber(ARGV[7]) then
  key, label, ends = KEYS[2], ARGV[8], tonumber(ARGV[7])
else
  return {cjson.encode({retry = now}), 0}
end

local last = redis.call('INCRBY', key, count)
-- Keys are shared by every time zone whose date has this label, so the expiry is only
-- ever raised: the key lives until the latest of those days has ended, plus retention.
if ends then
  local expires_at = ends + int_arg(9, 0, TOKEN)
  if redis.call('PEXPIRETIME', key) < expires_at then
    redis.call('PEXPIREAT', key, expires_at)
  end
end
local json = cjson.encode({ok = {period = label, first = last - count + 1, last = last}})
idem_purge(KEYS[3], KEYS[4], now, '16')
if IDEM_FP ~= '' then
  idem_store(KEYS[3], KEYS[4], json, now)
  idem_keep_for_ttl(KEYS[3], KEYS[4])
end
return {json, 0}
