wrk.headers["authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
