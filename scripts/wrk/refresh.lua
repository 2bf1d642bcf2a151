-- Each refresh token works once: every thread keeps a queue of live tokens, takes one per
-- request and puts back the token each response returns.
local all = {}
for token in string.gmatch(os.getenv("BENCH_REFRESH_TOKENS"), "[^,]+") do
  table.insert(all, token)
end
local next_thread = 0
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")

-- Runs once per thread, in the main state: give the thread its share of the tokens.
function setup(thread)
  local mine = {}
  for i, token in ipairs(all) do
    if (i % threads) == next_thread then table.insert(mine, token) end
  end
  thread:set("tokens_csv", table.concat(mine, ","))
  next_thread = next_thread + 1
end

local tokens = {}
function init(args)
  for token in string.gmatch(tokens_csv, "[^,]+") do
    table.insert(tokens, token)
  end
end

wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
function request()
  local token = table.remove(tokens, 1) or "exhausted"
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(tokens, token) end
end
