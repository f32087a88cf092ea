#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh Debian machine that has
# only the Rust toolchain, then runs formatting, lints and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
# The MQTT interop tests and the soak fail, rather than skip, when mosquitto is missing or the
# soak cannot mount its small disk.
export DOCKHAND_REQUIRE_MOSQUITTO=1 DOCKHAND_REQUIRE_SOAK=1
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

# Each step's duration, so the CI budget (docs/PERFORMANCE.md) can be watched step by step.
started=$SECONDS
took() { echo "== $1 took $((SECONDS - started)) s"; started=$SECONDS; }
echo "== cargo fmt --check"
cargo fmt --all -- --check
took "cargo fmt --check"
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
took "cargo clippy"
echo "== cargo test --workspace"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace "$@" 2>&1 | tee "$log"
took "cargo test --workspace"
echo "== aarch64: Debian 12's toolchain, unit tests and the daemon under qemu-user"
scripts/arm-test.sh aarch64 2>&1 | tee -a "$log"
took "aarch64"
echo "== armv7 (32-bit, armhf): Debian 12's toolchain, unit tests and the daemon under qemu-user"
scripts/arm-test.sh armv7 2>&1 | tee -a "$log"
took "armv7"
echo "== the .deb: contents, lintian, install/upgrade/purge in a throwaway Debian 12 root"
scripts/deb-test.sh
took "the .deb"
# One closing line for the whole run, x86_64, aarch64 and armv7 together (cargo prints one per test
# binary, the last often a 0-test doc run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
