#!/usr/bin/env bash
# Builds the .deb for this machine's architecture, or for TARGET (after scripts/cross-build.sh
# TARGET has built the binary): scripts/package.sh [TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
if [ $# -ge 1 ]; then
    cargo deb -p dockhand --target "$1" --no-build
else
    cargo deb -p dockhand
fi
ls -l target/*/debian/*.deb target/debian/*.deb 2>/dev/null || true
