#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS]      # default 30 s per target
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); installs
# cargo-fuzz if it is missing. New corpus entries go to fuzz/corpus/TARGET
# (seeded from fuzz/seeds/TARGET); a crash leaves its input in
# fuzz/artifacts/TARGET/ and makes the script exit non-zero after every
# target has run. Reproduce one with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-30}
case $SECONDS_PER_TARGET in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: a nightly toolchain is required (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
targets=$(cargo +nightly fuzz list)
echo "== building fuzz targets: $(echo $targets)"
cargo +nightly fuzz build

failed=()
for t in $targets; do
  echo
  echo "== $t: ${SECONDS_PER_TARGET}s"
  mkdir -p "corpus/$t"
  dict=()
  case $t in request_bodies | token_claims) dict=(-dict=json.dict) ;; esac
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  # -rss_limit_mb: a target allocating without bound is a finding too.
  if ! cargo +nightly fuzz run "$t" "corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}"; then
    failed+=("$t")
  fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings (${SECONDS_PER_TARGET}s per target)"
