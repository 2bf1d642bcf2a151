local token = os.getenv("BENCH_TOKEN")
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. token
wrk.body = '{"token":"' .. token .. '"}'
