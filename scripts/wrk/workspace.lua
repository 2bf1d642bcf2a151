-- Creates a workspace with a fresh slug per request: a tenant-scoped write (row, audit
-- record and outbox event in one transaction).
local counter = 0
local thread_tag = ""
function setup(thread)
  thread:set("thread_tag", tostring(math.random(100000, 999999)))
end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
function request()
  counter = counter + 1
  local slug = string.format("w%s-%d", thread_tag, counter)
  return wrk.format(nil, nil, nil, '{"slug":"' .. slug .. '","name":"Bench"}')
end
