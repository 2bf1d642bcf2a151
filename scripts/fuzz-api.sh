#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with schemathesis (PyPI), signed
# in as a tenant owner and as a platform super-admin, on SQLite and, when
# PLINTH_TEST_POSTGRES_URL is set, on PostgreSQL. Fails on any 5xx and on any response
# that contradicts the document (status code, content type, headers, body schema).
#
#   scripts/fuzz-api.sh                    # uses target/debug/plinth
#   FUZZ_MAX_EXAMPLES=100 scripts/fuzz-api.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${PLINTH_BIN:-target/debug/plinth}"
EXAMPLES="${FUZZ_MAX_EXAMPLES:-10}"
PASSWORD="plinth demo password"
WORK="$(mktemp -d)"
SERVER_PID=""
PG_DB=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then psql -q "$PLINTH_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v st >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN is missing: build it first (cargo build -p plinth)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

sign_in() {
  curl -fsS "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# One run of schemathesis as one caller. Schemathesis reuses ids it saw in responses,
# so routes that end sessions would end the caller's own halfway through (sign-out, a
# session's revocation, an administrator revoking a user's sessions); the Rust tests
# cover them.
fuzz_as() {
  local who="$1" token="$2"
  echo "-- schemathesis as $who on $DB_NAME ($EXAMPLES examples per operation)"
  # From the scratch directory: schemathesis keeps a cache where it runs.
  (cd "$WORK" && st --config-file "$WORK/schemathesis.toml" run "$BASE/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$EXAMPLES" \
    --seed 19 \
    --workers 2 \
    --exclude-path /api/v1/auth/logout \
    --exclude-path /api/v1/auth/logout-all \
    --exclude-path '/api/v1/me/sessions/{id}' \
    --exclude-path '/api/v1/users/{id}/sessions/revoke' \
    --request-timeout 30 \
    --generation-database none \
    --no-color)
}

run_on() {
  DB_NAME="$1"
  local url="$2" data="$WORK/$1"
  mkdir -p "$data"
  export PLINTH_DATA_DIR="$data" PLINTH_DATABASE_URL="$url" PLINTH_LOG=warn
  export PLINTH_BIND="127.0.0.1:$(free_port)"
  export PLINTH_REQUIRE_ADMIN_MFA=false
  # Every request comes from 127.0.0.1: budgets meant for one attacker would throttle
  # the fuzzer into a wall of 429s.
  export PLINTH_RATE_LIMIT_LOGIN=1000000 PLINTH_RATE_LIMIT_MFA=1000000 \
         PLINTH_RATE_LIMIT_SIGNUP=1000000 PLINTH_RATE_LIMIT_FORGOT_PASSWORD=1000000
  "$BIN" demo >/dev/null
  "$BIN" serve >"$data/server.log" 2>&1 &
  SERVER_PID=$!
  BASE="http://$PLINTH_BIND"
  for _ in $(seq 1 100); do curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$BASE/readyz" >/dev/null

  fuzz_as "tenant owner" "$(sign_in olivia@acme.example)"
  fuzz_as "super-admin" "$(sign_in operator@plinth.example)"

  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  if grep -q 'panicked' "$data/server.log"; then
    echo "the server panicked while being fuzzed on $DB_NAME:" >&2
    grep -B2 -A10 'panicked' "$data/server.log" >&2
    exit 1
  fi
}

# Tenant routes aim at the demo tenant, so they reach their handlers instead of ending
# at "not found".
cat >"$WORK/schemathesis.toml" <<'TOML'
[parameters]
"path.tenant" = "acme"
TOML

run_on sqlite "sqlite://$WORK/sqlite/plinth.db"
if [ -n "${PLINTH_TEST_POSTGRES_URL:-}" ]; then
  PG_DB="plinth_fuzz_$$"
  psql -q "$PLINTH_TEST_POSTGRES_URL" -c "CREATE DATABASE $PG_DB"
  run_on postgres "$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PLINTH_TEST_POSTGRES_URL" "$PG_DB")"
else
  echo "skipped PostgreSQL: PLINTH_TEST_POSTGRES_URL not set"
fi
echo "fuzzing found nothing"
