-- delete_item: remove an item (whatever its state) under preconditions.
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 idempotency fingerprint, 2 idempotency ttl ms, 3 id, 4 If-Match versions (''),
--       5 If-None-Match versions (''), 6 expected_version (''), 7 Lease-Token ('').
-- Returns {ok = {deleted = id}} or {err = not_found | precondition_required |
-- precondition_failed | version_conflict | lease_lost, current}.
local id = id_arg(3)
versions_arg(4)
versions_arg(5)
int_arg(6, 0, TOKEN, true)
int_arg(7, 0, TOKEN, true)

local cfg = pool_config()
local it = touch(id, cfg)
local refusal = check_preconditions(it, cfg, ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if refusal then return refusal end
if not it then return finish(missing(id)) end

remove_item(id, it, 'deleted')
return finish({ok = {deleted = id}})
