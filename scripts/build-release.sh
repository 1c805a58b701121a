#!/usr/bin/env bash
# Builds a stripped, statically linked release binary without docker:
#   scripts/build-release.sh TARGET   ->  dist/engine-auth-TARGET
# TARGET: aarch64-unknown-linux-musl | armv7-unknown-linux-gnueabihf |
#         armv7-unknown-linux-musleabihf (if its std can be installed) |
#         x86_64-unknown-linux-musl
# Fails unless the result is static (no interpreter, no NEEDED entries).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/build-release.sh TARGET}

case "$target" in
  *-linux-musl*)
    # rust-lld ships with rustup; musl's libc is bundled with the target.
    linker=rust-lld ;;
  armv7-unknown-linux-gnueabihf)
    # Debian: gcc-arm-linux-gnueabihf libc6-dev-armhf-cross. +crt-static
    # comes from .cargo/config.toml.
    linker=arm-linux-gnueabihf-gcc ;;
  *) echo "unsupported target $target" >&2; exit 2 ;;
esac
if [ "$linker" != rust-lld ] && ! command -v "$linker" >/dev/null; then
  echo "missing linker $linker (apt-get install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)" >&2
  exit 2
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

var=$(echo "$target" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${var}_LINKER=$linker"
# ring (rustls' crypto provider) has C and assembly: give cc-rs a compiler for
# the target. Its code is freestanding, so glibc-flavoured gcc is fine for musl.
case "$target" in
  aarch64-unknown-linux-musl) cc=aarch64-linux-gnu-gcc ;;
  x86_64-unknown-linux-musl) cc=gcc ;;
  armv7-unknown-linux-*) cc=arm-linux-gnueabihf-gcc ;;
esac
command -v "$cc" >/dev/null || { echo "missing C compiler $cc (apt-get install gcc-aarch64-linux-gnu / gcc-arm-linux-gnueabihf)" >&2; exit 2; }
export "CC_$(echo "$target" | tr '-' '_')=$cc"
cargo build --release --locked --target "$target"

mkdir -p dist
out="dist/engine-auth-$target"
cp "${CARGO_TARGET_DIR:-target}/$target/release/engine-auth" "$out"

# Proof of static linking.
if readelf -lW "$out" | grep -q 'INTERP'; then
  echo "FAIL: $out has a program interpreter (dynamically linked)" >&2; exit 1
fi
if readelf -dW "$out" 2>/dev/null | grep -q 'NEEDED'; then
  echo "FAIL: $out needs shared libraries:" >&2; readelf -dW "$out" | grep NEEDED >&2; exit 1
fi
file "$out"
size=$(stat -c %s "$out")
awk -v f="$out" -v s="$size" 'BEGIN { printf "%s: %d bytes (%.2f MiB), static, stripped\n", f, s, s / 1048576 }'
