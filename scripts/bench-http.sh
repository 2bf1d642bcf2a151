#!/usr/bin/env bash
# HTTP benchmarks: every scenario against a bare endpoint of the same binary, in one run.
# Usage: scripts/bench-http.sh        (BENCH_SECONDS=10 BENCH_CONNECTIONS=32 by default)
# With PLINTH_TEST_POSTGRES_URL set, the scenarios run on PostgreSQL as well.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk; else sudo apt-get install -y -qq wrk; fi
fi
cargo build --release -q -p plinth
exec python3 scripts/bench_http.py "$@"
