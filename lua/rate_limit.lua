-- rate_limit: admit one request of a tenant under its rate limit, for every replica at
-- once. GCRA (the generic cell rate algorithm): the key holds the tenant's theoretical
-- arrival time; a request is admitted while that time, advanced by one interval, is no
-- more than `burst` intervals ahead of now. One key, one GET and at most one SET.
-- KEYS: 1 the tenant's limiter key.
-- ARGV: 1 interval between requests at the limit, in microseconds (1e6 / rate),
--       2 burst: how many requests may come at once.
-- Returns {1, 0} when admitted, or {0, microseconds until the next one would be} (and
-- writes nothing).
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
if not interval or interval < 1 or not burst or burst < 1 then
  error({err = 'ERR leasehold: ARGV must be an interval >= 1 and a burst >= 1'})
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - interval * burst - now
if wait > 0 then return {0, wait} end
-- Integers as text (%.17g would be Redis's way); the key lives until it no longer matters.
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX',
  string.format('%d', math.ceil((next_tat - now) / 1000) + 1))
return {1, 0}
