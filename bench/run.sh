#!/usr/bin/env bash
# engine-auth performance suite: one entry point.
#
#   bench/run.sh            standard run: 15 s per load scenario, Criterion benches
#   bench/run.sh --smoke    3 s per scenario, no Criterion (CI; about 1 min after the build)
#   bench/run.sh --full     standard + 100,000-user scale rows, 1M-write disk amplification,
#                           the static aarch64 build if dist/ lacks it
#
# Builds the release binary and the hello example (examples/hello.rs, the
# ceiling), starts both on temporary stores/ports, drives them with wrk and
# the Lua scripts in bench/, and prints one table (bench/bench.py). Extra
# arguments go to bench/bench.py (e.g. --duration 30, --keep, --json FILE).
# Benchmarks print figures; they never fail because a machine is slow.
# Needs: cargo, python3 (3.9+), wrk (installed with apt-get if missing and
# possible); perf or strace for the flush count (optional).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=standard
pass=()
for a in "$@"; do
  case "$a" in
    --smoke) mode=smoke; pass+=("$a") ;;
    --full) mode=full; pass+=("$a") ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) pass+=("$a") ;;
  esac
done
export CARGO_TERM_COLOR=never
start=$SECONDS
say() { printf '[run.sh %ss] %s\n' "$((SECONDS - start))" "$*" >&2; }

# --- load generator ---------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v perf >/dev/null || command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    say "installing ${need[*]} (apt-get)"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
command -v wrk >/dev/null || { echo "bench/run.sh: wrk is required (apt-get install wrk)" >&2; exit 2; }

# --- build ------------------------------------------------------------------
# Other builds may hold the target dir's lock: cargo waits for it.
say "cargo build --release (engine-auth, examples/hello)"
cargo build --release --locked --bin engine-auth --example hello
build_done=$SECONDS

hash_ms=()
if [ "$mode" != smoke ]; then
  say "Criterion micro-benchmarks (tokens, password, store, metrics)"
  crit_log=$(mktemp)
  trap 'rm -f "$crit_log"' EXIT
  cargo bench --locked --bench tokens --bench password --bench store --bench metrics 2>&1 | tee "$crit_log" \
    | grep -E '^[a-z_0-9]+/|time:|thrpt:' >&2 || true
  mapfile -t hash_ms < <(python3 bench/criterion_figures.py "$crit_log")
  hash_ms+=(--criterion-log "$crit_log")
fi
if [ "$mode" = full ]; then
  pass+=(--build-aarch64 --space-bench)
  say "building benches/store_space.rs (bench.py runs it after the load scenarios)"
  cargo bench --locked --bench store_space --no-run
fi

# --- load scenarios ---------------------------------------------------------
say "load scenarios ($mode)"
python3 bench/bench.py "${hash_ms[@]}" "${pass[@]}"
say "done: $((SECONDS - build_done)) s after the build"
