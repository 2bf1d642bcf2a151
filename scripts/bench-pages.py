#!/usr/bin/env python3
"""Latency of a list's first, middle and last page: seeds 10,000 workspaces in the demo
tenant `acme`, collects every cursor of the list with pages of 50, then times each page
400 times over one keep-alive connection and prints the medians and the last/first ratio
(the baseline is the first page, measured in the same run).

    plinth demo && plinth serve &     # any database
    scripts/bench-pages.py 8080
"""
import http.client
import json
import statistics
import sys
import time

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
COUNT = 10_000
conn = http.client.HTTPConnection("127.0.0.1", PORT)


def call(method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else None)


status, signed_in = call("POST", "/api/v1/auth/login",
                         {"email": "olivia@acme.example", "password": "plinth demo password"})
assert status == 200, signed_in
token = signed_in["access_token"]
started = time.time()
for i in range(COUNT):
    status, _ = call("POST", "/api/v1/tenants/acme/workspaces", {"slug": f"w{i:05d}", "name": f"W {i}"}, token)
    assert status == 201, status
print(f"seeded {COUNT} workspaces in {time.time() - started:.1f} s")

cursors, cursor = [None], None
while True:
    status, page = call("GET", "/api/v1/tenants/acme/workspaces?limit=50" + (f"&cursor={cursor}" if cursor else ""),
                        token=token)
    assert status == 200
    cursor = page.get("next_cursor")
    if not cursor:
        break
    cursors.append(cursor)
print(f"{len(cursors)} pages of 50")


def median_ms(cursor, runs=400):
    path = "/api/v1/tenants/acme/workspaces?limit=50" + (f"&cursor={cursor}" if cursor else "")
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        status, _ = call("GET", path, token=token)
        samples.append((time.perf_counter() - t) * 1000)
        assert status == 200
    return statistics.median(samples)


for _ in range(2):
    first, middle, last = median_ms(None), median_ms(cursors[len(cursors) // 2]), median_ms(cursors[-1])
    print(f"median ms: first {first:.3f}  middle {middle:.3f}  last {last:.3f}  last/first {last / first:.2f}")
