-- POST the same JSON body with a bearer token.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.body = os.getenv("BENCH_BODY")
