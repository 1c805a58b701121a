#!/usr/bin/env bash
# Runs a release binary as it will run on the device, under qemu-user:
#   scripts/qemu-smoke.sh dist/engine-auth-aarch64-unknown-linux-musl qemu-aarch64-static
# Start on an empty data dir, wait for health, log in as the seeded admin,
# create a user, log in as that user, stop with SIGTERM (must exit 0), start
# again, log in again. Any failed step fails the script.
set -euo pipefail
bin=${1:?usage: qemu-smoke.sh BINARY [QEMU]}
qemu=${2:-}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
say() { printf '[qemu-smoke %s] %s\n' "$(basename "$bin")" "$*"; }

start() {
  $qemu "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" >>"$dir/log" 2>&1 &
  pid=$!
  local t0=$SECONDS
  until curl -fsS "$base/health" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; say "daemon died"; exit 1; }
    [ $((SECONDS - t0)) -lt 60 ] || { cat "$dir/log"; say "no health after 60 s"; exit 1; }
    sleep 0.2
  done
  say "healthy after $((SECONDS - t0)) s"
}
post() { # path json [token] -> body; fails on non-200
  local auth=()
  [ -n "${3:-}" ] && auth=(-H "Authorization: Bearer $3")
  curl -fsS "$base/api/v1/auth/$1" -H 'Content-Type: application/json' "${auth[@]}" -d "$2"
}
token() { python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }

start
admin_pw=$(cat "$dir/data/initial-admin-password")
tok=$(post login "{\"username\":\"admin\",\"password\":\"$admin_pw\"}" | token)
say "admin logged in"
post user '{"username":"pi@example.com","password":"raspberry-pi-4","roles":{"admin":false,"flows":true,"configure":false,"subscribe":true,"write":true,"read":true}}' "$tok" >/dev/null
say "user created"
post login '{"username":"pi@example.com","password":"raspberry-pi-4"}' | token >/dev/null
say "user logged in"
kill -TERM "$pid"
if wait "$pid"; then say "stopped cleanly on SIGTERM"; else say "exit status $? after SIGTERM"; exit 1; fi
pid=
start
post login '{"username":"pi@example.com","password":"raspberry-pi-4"}' | token >/dev/null
post login "{\"username\":\"admin\",\"password\":\"$admin_pw\"}" | token >/dev/null
say "both log in after restart"
kill -TERM "$pid"; wait "$pid"; pid=
# The store's offline upkeep under emulation too: the full scan, and
# compaction (redb's copy, verification and atomic swap).
$qemu "$bin" check --data-dir "$dir/data" >"$dir/check" 2>&1 || { cat "$dir/check"; say "check failed"; exit 1; }
grep -qx consistent "$dir/check" || { cat "$dir/check"; say "check did not say consistent"; exit 1; }
say "check: consistent"
$qemu "$bin" compact --data-dir "$dir/data" >"$dir/compact" 2>&1 || { cat "$dir/compact"; say "compact failed"; exit 1; }
say "$(head -n1 "$dir/compact")"
start
post login '{"username":"pi@example.com","password":"raspberry-pi-4"}' | token >/dev/null
say "the user logs in after compaction"
kill -TERM "$pid"; wait "$pid"; pid=
say "PASS"
