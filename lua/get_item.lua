-- get_item: one item as it is now (an expired lease is ended first).
-- KEYS: the twelve pool keys (lib/pool.lua).
-- ARGV: 1 '', 2 '', 3 id.
-- Returns {ok = view} or {err = not_found}.
local id = id_arg(3)
local it = touch(id, nil)
if not it then return read_reply(missing(id)) end
return read_reply({ok = view(id, it)})
