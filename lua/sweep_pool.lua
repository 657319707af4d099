-- sweep_pool: what time alone does to a pool nobody calls on: expired leases and finished
-- delays applied, done and dead items past their keep_*_ms removed, expired stored
-- answers removed, items of a pool made by an older version counted; at most `limit` of
-- each, oldest first. Replicas call it on every pool
-- in turn (one replica at a time), so an idle pool shrinks too.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '' (no idempotency), 3 limit (1..10000).
-- Returns {ok = {more}, due}: more is true when more is due than this call did; due, when
-- the pool's next lease expiry or delay end is (ms).
local limit = int_arg(3, 1, 10000)
if not pool_exists() then return read_reply({ok = {more = false}}) end
local cfg = pool_config()
DUE_TOUCHED = true
reclaim(cfg)
local more = retire(limit)
if count_items(limit) then more = true end
local freed, purged = idem_purge(K_ANSWERS, K_ANSWER_EXP, NOW, int_text(limit))
if freed ~= 0 then redis.call('HINCRBY', K_POOL, 'answer_bytes', int_text(-freed)) end
if purged == limit then more = true end
return read_reply({ok = {more = more}})
