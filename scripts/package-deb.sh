#!/usr/bin/env bash
# Packages a binary built by scripts/build-release.sh as a .deb:
#   scripts/package-deb.sh aarch64-unknown-linux-musl     -> dist/engine-auth_VERSION_arm64.deb
#   scripts/package-deb.sh armv7-unknown-linux-gnueabihf  -> dist/engine-auth_VERSION_armhf.deb
# Needs cargo-deb (cargo install cargo-deb --locked).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/package-deb.sh TARGET}
[ -x "${CARGO_TARGET_DIR:-target}/$target/release/engine-auth" ] || scripts/build-release.sh "$target"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
mkdir -p dist
# --no-build: package the static binary as built; --no-strip: it is already
# stripped (and the host's strip cannot read ARM binaries).
cargo deb --target "$target" --no-build --no-strip --output dist/
