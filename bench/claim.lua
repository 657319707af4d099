-- wrk script for bench/run.sh: POST <path> with a JSON body, one request per response.
-- Arguments after `--`: path, body, and optionally a request limit per thread (0 = none),
-- after which the thread stops (used to take a fixed number of claims from a small pool).
-- Prints one line: RESULT <requests> <seconds> <rps> <p50 us> <p99 us> <non-2xx>
--   <socket errors> <empty claims> (a 2xx claim answer with "leases":[]: the pool ran dry).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local path, body = args[1], args[2]
  limit = tonumber(args[3] or "0") or 0
  seen, empty = 0, 0
  req = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

function request()
  return req
end

function response(status, headers, body)
  seen = seen + 1
  if status == 200 and string.find(body, '"leases":[]', 1, true) then
    empty = empty + 1
  end
  if limit > 0 and seen >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local empty_total = 0
  for _, t in ipairs(threads) do
    empty_total = empty_total + (t:get("empty") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %.1f %d %d %d %d %d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, empty_total))
end
