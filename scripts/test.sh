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
# The ARM and static builds (Debian's toolchains, qemu-user) run beside the tests, at the lowest
# CPU priority: the end-to-end tests spend most of their time waiting on processes, sockets and
# timers, so the builds fill the idle CPU instead of adding their minutes after the tests. They
# build in a target folder of their own (scripts/arm-test.sh), so neither waits for the other's
# lock.
log=$(mktemp)
cross_log=$(mktemp)
trap 'rm -f "$log" "$cross_log"' EXIT
(
  set -e
  cross_started=$SECONDS
  step() { local what=$1; shift; echo "== $what"; nice -n 19 "$@"; echo "== $what: done after $((SECONDS - cross_started)) s"; }
  step "aarch64: Debian 12's toolchain, unit tests and the daemon under qemu-user" scripts/arm-test.sh aarch64
  step "armv7 (32-bit, armhf): Debian 12's toolchain, unit tests and the daemon under qemu-user" scripts/arm-test.sh armv7
  step "static musl binary: x86_64" scripts/musl-test.sh x86_64
  step "static musl binary: aarch64, under qemu-user" scripts/musl-test.sh aarch64
) >"$cross_log" 2>&1 &
cross=$!
echo "== cargo test --workspace (the ARM and musl builds run beside it)"
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
tests=${PIPESTATUS[0]}
set -e
took "cargo test --workspace"
echo "== waiting for the ARM and musl builds"
set +e
wait "$cross"
cross_status=$?
set -e
tee -a "$log" <"$cross_log"
took "the rest of the ARM and musl builds"
[ "$tests" = 0 ] || { echo "cargo test failed (exit $tests)"; exit "$tests"; }
[ "$cross_status" = 0 ] || { echo "the ARM or musl builds failed (exit $cross_status)"; exit "$cross_status"; }
echo "== the .deb: contents, lintian, install/upgrade/purge in a throwaway Debian 12 root"
scripts/deb-test.sh
took "the .deb"
# One closing line for the whole run, x86_64, aarch64 and armv7 together (cargo prints one per test
# binary, the last often a 0-test doc run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
