-- wrk script: POST /introspect (RFC 7662) with HTTP Basic of a resource-server client.
--
--   wrk -s bench/introspect.lua http://127.0.0.1:PORT/introspect -- "Basic <b64>" "token=<AT>"
--
-- Answers without "active":true are counted and printed at the end (an inactive token
-- is a 200 too, so wrk's non-2xx count alone would not notice).

inactive = 0  -- global: done() reads it from each thread with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if args[1] == nil or args[2] == nil then
    error("introspect.lua needs the Authorization header value and the form body")
  end
  wrk.method = "POST"
  wrk.body = args[2]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Accept"] = "application/json"
end

function response(status, headers, body)
  if not string.find(body, '"active":%s*true') then
    inactive = inactive + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("inactive") or 0)
  end
  io.write(string.format("Inactive answers: %d\n", total))
end
