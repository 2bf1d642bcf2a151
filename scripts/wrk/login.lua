-- Signs in as bench0..benchN-1 in turn.
local users = tonumber(os.getenv("BENCH_USERS"))
local password = os.getenv("BENCH_PASSWORD")
local counter = 0
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
function request()
  counter = counter + 1
  local body = string.format('{"email":"bench%d@example.com","password":"%s"}', counter % users, password)
  return wrk.format(nil, nil, nil, body)
end
