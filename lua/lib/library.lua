-- The Functions library's opening: what every operation's function shares.
--
-- Leasehold's operations are one Redis Functions library (`FUNCTION LOAD`, called with
-- `FCALL`), assembled from lua/ when the server is built (src/store/scripts.rs): this
-- opening, then one block per set of helpers (lib/idempotency.lua and lib/pool.lua for the
-- pool operations, lib/tenant.lua for the tenant's index, lib/idempotency.lua alone for
-- counters, none for the rate limiter), each with the operations that use it. Every
-- lua/<op>.lua is the body of one function, registered as `lh_<version>_<op>`. The
-- helpers are defined once, when the library loads, not on every call; what belongs to
-- one call (its keys, its time, what it changed) is set by the block's `*_begin` before
-- the body runs. Redis runs one function at a time, so that state is never shared.
--
-- The line before this one (added by the server) names the library `leasehold_<version>`
-- and sets VERSION: a hash of everything below it, so replicas of two versions call their
-- own library side by side during a rolling upgrade.

-- This call's keys and arguments, as EVAL gave them to a script.
local KEYS, ARGV = {}, {}

-- The reads, and the rate limiter every request passes. Redis refuses a function that may
-- write, before it runs, while it is out of memory (at maxmemory under noeviction); a read
-- may write too (a lease that ran out, a finished item past its keep time), so these are
-- marked `allow-oom`: a full Redis still answers what is in it (their few writes mostly
-- free memory; the limiter's is one small key per tenant).
local READS = {get_pool = true, get_item = true, list_items = true, list_leases = true,
  list_events = true, list_pools = true, rate_limit = true}

-- Registers `body` as the function `lh_<version>_<name>`: `begin` (if any) runs first and
-- may answer for the body (a replayed answer).
local function register(name, body, begin)
  redis.register_function{
    function_name = 'lh_' .. VERSION .. '_' .. name,
    callback = function(keys, args)
      KEYS, ARGV = keys, args
      if begin then
        local early = begin()
        if early then return early end
      end
      return body()
    end,
    flags = READS[name] and {'allow-oom'} or {},
  }
end
