-- wrk script: POST /token with grant_type=client_credentials and HTTP Basic auth.
--
--   wrk -s bench/token.lua http://127.0.0.1:PORT/token -- "Basic <base64(id:secret)>" [BODY]
--
-- BODY is the url-encoded form (default "grant_type=client_credentials"). The request
-- is formatted once per thread: wrk.init builds it right after init() returns.

function init(args)
  if args[1] == nil or args[1] == "" then
    error("token.lua needs the Authorization header value as its first argument")
  end
  wrk.method = "POST"
  wrk.body = args[2] or "grant_type=client_credentials"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Accept"] = "application/json"
end
