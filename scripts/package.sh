#!/usr/bin/env bash
# Builds the .deb for this machine's architecture, or for TARGET (after its release binary was
# built, e.g. by scripts/cross-build.sh TARGET or scripts/arm-test.sh), or all three Debian
# architectures (amd64, arm64, armhf; the ARM binaries are built with scripts/arm-test.sh when
# missing):
#   scripts/package.sh [TARGET | --all]
# cargo-deb is pinned: a newer one may lay the package out differently than scripts/deb-test.sh
# proves.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.6.0
if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
if [ "${1:-}" = --all ]; then
    cargo deb -p dockhand
    for arch in aarch64:aarch64-unknown-linux-gnu armv7:armv7-unknown-linux-gnueabihf; do
        t=${arch#*:}
        [ -x "target/$t/release/dockhand" ] || scripts/arm-test.sh "${arch%%:*}" --build-only
        cargo deb -p dockhand --target "$t" --no-build
    done
    ls target/debian/*.deb target/*/debian/*.deb
elif [ $# -ge 1 ]; then
    cargo deb -p dockhand --target "$1" --no-build
else
    cargo deb -p dockhand
fi
