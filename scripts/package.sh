#!/usr/bin/env bash
# Builds the .deb for this machine's architecture, or for TARGET (after its release binary was
# built, e.g. by scripts/cross-build.sh TARGET or scripts/aarch64-test.sh):
#   scripts/package.sh [TARGET]
# cargo-deb is pinned: a newer one may lay the package out differently than scripts/deb-test.sh
# proves.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.6.0
if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
if [ $# -ge 1 ]; then
    cargo deb -p dockhand --target "$1" --no-build
else
    cargo deb -p dockhand
fi
