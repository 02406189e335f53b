-- wrk script: refresh-token rotation where every connection follows its own chain.
--
--   wrk -tN -cN -s bench/rotate.lua http://127.0.0.1:PORT/token \
--       -- "Basic <b64>" TOKENS_FILE ["&resource=..."]
--
-- Run it with as many threads as connections: each wrk thread then owns one connection
-- and one chain, whose first refresh token is line N of TOKENS_FILE (N = the thread's
-- number). Every answer must be 200 with an access token, an ID token and a refresh
-- token different from the one presented; the next request presents that new one. The
-- first answer that is not stops the thread (presenting the old token again would be
-- a replay and revoke the chain). Prints "Rotations: R" and "Failures: F" at the end.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("index", count)
  table.insert(threads, thread)
end

function init(args)
  auth = args[1]
  extra = args[3] or ""
  if auth == nil or args[2] == nil then
    error("rotate.lua needs the Authorization header value and the tokens file")
  end
  local n = 0
  for line in io.lines(args[2]) do
    n = n + 1
    if n == index then token = line end
  end
  if token == nil then
    error("no refresh token for thread " .. index .. " in " .. args[2])
  end
  rotations = 0
  failures = 0
  failure = ""
end

function request()
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
    ["Accept"] = "application/json",
  }, "grant_type=refresh_token&refresh_token=" .. token .. extra)
end

function response(status, headers, body)
  local new = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if status == 200 and new ~= nil and new ~= token
      and string.find(body, '"access_token"%s*:%s*"')
      and string.find(body, '"id_token"%s*:%s*"') then
    token = new
    rotations = rotations + 1
  else
    failures = failures + 1
    failure = status .. " " .. string.sub(body, 1, 200)
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local rotated, failed, example = 0, 0, ""
  for _, t in ipairs(threads) do
    rotated = rotated + (t:get("rotations") or 0)
    failed = failed + (t:get("failures") or 0)
    if example == "" then example = t:get("failure") or "" end
  end
  io.write(string.format("Rotations: %d\nFailures: %d\n", rotated, failed))
  if example ~= "" then io.write("First failure: " .. example .. "\n") end
end
