#!/usr/bin/env bash
# Release build for a gateway target with cross-rs (needs Docker or Podman):
#   scripts/cross-build.sh aarch64-unknown-linux-musl
# Targets: aarch64-unknown-linux-{gnu,musl}, armv7-unknown-linux-{gnueabihf,musleabihf},
#          arm-unknown-linux-{gnueabihf,musleabihf}, x86_64-unknown-linux-{gnu,musl}.
# Then: scripts/package.sh TARGET  (a .deb for that architecture).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/cross-build.sh TARGET}
export CROSS_CONFIG=cross.toml
command -v cross >/dev/null || cargo install cross --locked
cross build --release --target "$target" -p dockhand
ls -l "target/$target/release/dockhand"
