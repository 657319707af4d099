-- delete_pool: remove a pool and all its items. The keys are unlinked, so Redis frees
-- large ones in the background and this script does a constant amount of work however
-- many items the pool holds. Its events and stored answers go with it; the fencing
-- counter stays, so tokens never go back. This deletion's own answer is kept (for a
-- retry) and expires by itself unless the pool is created again.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms.
-- Returns {ok = {deleted = true}} or {err = not_found}.
if not pool_exists() then return finish(missing(nil)) end
redis.call('UNLINK', K_POOL, K_ITEMS, K_AVAIL, K_LEASED, K_DELAYED, K_DONE, K_DEAD, K_HOLDERS,
  K_EVENTS, K_ANSWERS, K_ANSWER_EXP)
local json = cjson.encode({ok = {deleted = true}})
if IDEM_FP ~= '' then
  idem_store(K_ANSWERS, K_ANSWER_EXP, json, NOW)
  idem_keep_for_ttl(K_ANSWERS, K_ANSWER_EXP)
end
return {json, 0}
