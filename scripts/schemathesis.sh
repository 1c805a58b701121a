#!/usr/bin/env bash
# Fuzzes the running daemon from its own OpenAPI document with schemathesis
# (PyPI): no 5xx, no response that violates the documented schemas, and
# the daemon still up afterwards.
#
#   scripts/schemathesis.sh [MAX_SECONDS]      # default 150 s of fuzzing
#
# Builds the debug binary, starts it on a free port with a temporary data
# dir, fuzzes http://127.0.0.1:PORT/api/v1/docs/json with an admin bearer
# token (scripts/schemathesis/hooks.py logs in again every 2 s, from
# 127.0.0.2, because fuzzed calls such as `POST /logout {"all": true}`
# revoke it), then checks /health and the daemon's log for panics.
# schemathesis lives in a venv under target/. Reports (JUnit, and a pytest
# file reproducing any failure) go to target/schemathesis-report/.
# SCHEMATHESIS_CHECKS=all adds the stricter contract checks (undocumented
# statuses, schema-valid data refused, Allow on 405).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_SECONDS=${1:-150}
case $MAX_SECONDS in
  '' | *[!0-9]*) echo "usage: $0 [MAX_SECONDS]" >&2; exit 2 ;;
esac
ROOT=$PWD
VENV=$ROOT/target/schemathesis-venv
REPORT=$ROOT/target/schemathesis-report
# schemathesis keeps a cache of past failures (replayed first) in
# ./.schemathesis: run it from here, not from the repository's root.
RUN_DIR=$ROOT/target/schemathesis-run
# What must hold: no 5xx; every documented response matches its schema,
# content type and headers. SCHEMATHESIS_CHECKS overrides (e.g. "all").
CHECKS=${SCHEMATHESIS_CHECKS:-not_a_server_error,response_schema_conformance,content_type_conformance,response_headers_conformance}

step() { printf '== %s (%ss)\n' "$*" "$SECONDS"; }

step "schemathesis in $VENV"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
fi
"$VENV/bin/schemathesis" --version

step "build"
cargo build --quiet --bin engine-auth
BIN=target/debug/engine-auth

WORK=$(mktemp -d)
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADMIN_PASSWORD=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))')
BASE="http://127.0.0.1:$PORT"
LOG="$WORK/engine-auth.log"
PID=
cleanup() {
  status=$?
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$LOG" ]; then
    echo "-- last lines of the daemon's log:"
    tail -n 40 "$LOG"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "start engine-auth on $BASE"
# Cheap argon2 (the fuzzer logs in a lot; hashing cost is not under test),
# two workers as on a Pi, a long access-token lifetime so a token never
# expires mid-run. Throttling stays at its defaults: the fuzzer's failed
# logins get its address throttled, and 429 is part of the contract.
ENGINE_AUTH_ADMIN_PASSWORD=$ADMIN_PASSWORD RUST_LOG=${RUST_LOG:-warn} \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --argon2-memory-kib 256 --argon2-iterations 1 --workers 2 \
  --access-ttl-secs 3600 >"$LOG" 2>&1 &
PID=$!
health() {
  "$VENV/bin/python" - "$BASE/health" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.exit(0 if r.status == 200 and b'"ok"' in r.read() else 1)
except Exception:
    sys.exit(1)
EOF
}
for _ in $(seq 100); do
  health && break
  kill -0 "$PID" 2>/dev/null || { echo "engine-auth exited before it was ready"; exit 1; }
  sleep 0.1
done
health || { echo "engine-auth not ready"; exit 1; }

step "schemathesis run (at most ${MAX_SECONDS}s)"
mkdir -p "$REPORT" "$RUN_DIR"
st_status=0
(cd "$RUN_DIR" && ENGINE_AUTH_FUZZ_PORT=$PORT ENGINE_AUTH_FUZZ_ADMIN_PASSWORD=$ADMIN_PASSWORD \
  PYTHONPATH="$ROOT/scripts/schemathesis" SCHEMATHESIS_HOOKS=hooks \
  "$VENV/bin/schemathesis" run "$BASE/api/v1/docs/json" \
  --url "$BASE" \
  --checks "$CHECKS" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples 100 \
  --max-time "$MAX_SECONDS" \
  --workers 2 \
  --request-timeout 10 \
  --suppress-health-check too_slow \
  --report junit,pytest --report-dir "$REPORT") \
  || st_status=$?

step "after the run"
if ! kill -0 "$PID" 2>/dev/null; then
  echo "FAIL: engine-auth is no longer running"
  exit 1
fi
if ! health; then
  echo "FAIL: /health does not answer after the run"
  exit 1
fi
echo "/health: ok"
if grep -n -E 'panicked|internal error' "$LOG"; then
  echo "FAIL: the daemon logged a panic or an internal error (above)"
  exit 1
fi
if [ "$st_status" -ne 0 ]; then
  echo "FAIL: schemathesis found problems (exit $st_status); see $REPORT/"
  exit "$st_status"
fi
echo "schemathesis: no failures; daemon healthy"
