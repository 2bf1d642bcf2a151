#!/usr/bin/env python3
"""Drives `plinth serve` (release build) with wrk and prints, per scenario:
scenario rps p50_ms p99_ms ratio_to_baseline peak_rss_mb — and writes target/bench/http.json.

The baseline is GET /healthz of the same process, measured in the same run, so ratios stay
meaningful on noisy shared machines. Standard library only."""

import json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "plinth")
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
USERS = int(os.environ.get("BENCH_USERS", "64"))
PASSWORD = "benchmark passphrase long enough"
LUA = os.path.join(ROOT, "scripts", "wrk")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def rss_peak_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def parse_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, script=None, env=None):
    cmd = ["wrk", "--latency", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s"]
    if script:
        cmd += ["-s", os.path.join(LUA, script)]
    env = {**os.environ, "BENCH_THREADS": str(THREADS), **(env or {})}
    out = subprocess.run(cmd + [url], capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = parse_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = parse_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    return rps, p50, p99, errors


def run(backend, database_url):
    data = tempfile.mkdtemp(prefix="plinth-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PLINTH_DATA_DIR": data,
        "PLINTH_LOG": "warn",
        "PLINTH_REQUIRE_ADMIN_MFA": "false",
        "PLINTH_RATE_LIMIT_LOGIN": "1000000",
        "PLINTH_LOCKOUT_THRESHOLD": "1000000",
        "PLINTH_DATABASE_MAX_CONNECTIONS": "16",
    }
    if database_url:
        env["PLINTH_DATABASE_URL"] = database_url
    # Seed accounts (administrators, created through the CLI as an operator would).
    for i in range(USERS):
        subprocess.run([BIN, "admin", "create-superadmin", "--email", f"bench{i}@example.com", "--password-stdin"],
                       input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True)
    # The demo's tenants, members and owners serve the tenant-scoped scenarios.
    subprocess.run([BIN, "demo"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        sessions = [call(base, "POST", "/api/v1/auth/login", {"email": f"bench{i % USERS}@example.com", "password": PASSWORD})
                    for i in range(CONNECTIONS * 2)]
        access = sessions[0]["access_token"]
        refresh_tokens = ",".join(s["refresh_token"] for s in sessions[1:])
        results = []

        def scenario(name, path, script=None, extra=None):
            rps, p50, p99, errors = wrk(base + path, script, extra)
            results.append({"backend": backend, "scenario": name, "rps": rps, "p50_ms": p50, "p99_ms": p99,
                            "errors": errors, "peak_rss_mb": round(rss_peak_mb(server.pid), 1)})

        scenario("baseline GET /healthz", "/healthz")
        scenario("login (argon2id)", "/api/v1/auth/login", "login.lua", {"BENCH_USERS": str(USERS), "BENCH_PASSWORD": PASSWORD})
        scenario("token refresh (rotating)", "/api/v1/auth/refresh", "refresh.lua", {"BENCH_REFRESH_TOKENS": refresh_tokens})
        scenario("introspection", "/api/v1/auth/introspect", "introspect.lua", {"BENCH_TOKEN": access})
        scenario("authenticated GET /api/v1/me", "/api/v1/me", "bearer.lua", {"BENCH_TOKEN": access})
        owner = call(base, "POST", "/api/v1/auth/login", {"email": "olivia@acme.example", "password": "plinth demo password"})["access_token"]
        check = json.dumps({"action": "members:invite", "resource": {"tenant": "acme"}})
        scenario("authz check API", "/api/v1/authz/check", "post_json.lua", {"BENCH_TOKEN": owner, "BENCH_BODY": check})
        scenario("tenant member list (limit 20)", "/api/v1/tenants/acme/members?limit=20", "bearer.lua", {"BENCH_TOKEN": owner})
        scenario("write: create workspace", "/api/v1/tenants/acme/workspaces", "workspace.lua", {"BENCH_TOKEN": owner})
        baseline = results[0]["rps"]
        for r in results:
            r["ratio_to_baseline"] = round(r["rps"] / baseline, 3) if baseline else 0.0
        return results
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


def main():
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release -p plinth")
    runs = [("sqlite", None)]
    pg = os.environ.get("PLINTH_TEST_POSTGRES_URL")
    if pg:
        name = f"plinth_bench_{os.getpid()}"
        admin = pg
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        runs.append(("postgres", re.sub(r"/[^/]*$", f"/{name}", pg) + "?sslmode=disable"))
    results = []
    try:
        for backend, url in runs:
            results += run(backend, url)
    finally:
        if pg:
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
    cores = os.cpu_count()
    print(f"# {cores} cores, {SECONDS}s per scenario, {CONNECTIONS} connections, wrk -t{THREADS}")
    print(f"{'backend':<9} {'scenario':<32} {'rps':>10} {'p50_ms':>8} {'p99_ms':>8} {'ratio':>7} {'peak_rss_mb':>11} {'errors':>6}")
    for r in results:
        print(f"{r['backend']:<9} {r['scenario']:<32} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['ratio_to_baseline']:>7.3f} {r['peak_rss_mb']:>11.1f} {r['errors']:>6}")
    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "bench", "http.json"), "w") as f:
        json.dump({"cores": cores, "seconds": SECONDS, "connections": CONNECTIONS, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
