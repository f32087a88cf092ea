#!/usr/bin/env bash
# Builds dockhand for aarch64 (64-bit ARM gateways) with Debian 12's Rust toolchain — no Docker
# needed — runs the unit tests of `dockhand` and `firmware-bridge` under qemu-user, builds the
# release binary and runs it under qemu-user too (--version, check-config on the shipped configs).
#
# qemu runs the binaries against Debian's arm64 multiarch libraries (`-L /`). Pointing it at the
# cross toolchain's sysroot instead (`-L /usr/aarch64-linux-gnu`) loads that sysroot's older
# ld.so with the multiarch libc.so.6; the two disagree on the loader's internal layout, and the
# first pthread_create then loops forever in glibc's stack cache — which is why threaded programs
# (the test harness, the daemon) seemed to hang under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
T=aarch64-unknown-linux-gnu
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! dpkg -s libstd-rust-web-dev:arm64 libc6:arm64 qemu-user-static gcc-aarch64-linux-gnu >/dev/null 2>&1; then
  echo "== installing Debian's Rust toolchain for arm64 and qemu-user"
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rustc-web cargo-web libstd-rust-web-dev:arm64 \
    libc6:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static >/dev/null
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
# Debian's cargo and rustc (they carry the arm64 standard library); the rustup toolchain stays
# first on PATH for everything else.
export RUSTC=/usr/bin/rustc
run() { qemu-aarch64-static -L / "$@"; }
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /"
echo "== unit tests for aarch64, under qemu-user"
/usr/bin/cargo test --target "$T" -p dockhand -p firmware-bridge --lib
echo "== release binary for aarch64"
/usr/bin/cargo build --target "$T" --release -p dockhand
bin="target/$T/release/dockhand"
ls -l "$bin"
echo "== the aarch64 binary under qemu-user"
run "$bin" --version
run "$bin" --config config/demo.toml check-config
run "$bin" --config config/dockhand.example.toml check-config
set +e
run "$bin" --config config/nonexistent.toml check-config >/dev/null 2>&1
code=$?
set -e
[ "$code" = 78 ] || { echo "expected exit 78 for a missing config, got $code"; exit 1; }
echo "== the aarch64 daemon runs the demo under qemu-user for 20 s (embedded broker, simulated handhelds, file sink)"
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
mkdir -p "$demo/config"
cp config/demo.toml "$demo/config/"
set +e
timeout -s TERM 20 qemu-aarch64-static -L / "$bin" --config "$demo/config/demo.toml" run >"$demo/log" 2>&1
set -e
delivered=$(wc -l <"$demo/target/demo/events.ndjson" 2>/dev/null || echo 0)
grep -q "dockhand is ready." "$demo/log" || { cat "$demo/log"; echo "the aarch64 daemon did not become ready"; exit 1; }
[ "$delivered" -gt 0 ] || { cat "$demo/log"; echo "the aarch64 daemon delivered nothing"; exit 1; }
grep -q "dockhand stopped." "$demo/log" || { cat "$demo/log"; echo "the aarch64 daemon did not stop cleanly on SIGTERM"; exit 1; }
echo "aarch64 demo: $delivered events delivered to the file sink in 20 s, clean stop on SIGTERM"
echo "aarch64: built, $(stat -c %s "$bin") bytes stripped; unit tests pass and the daemon runs under qemu"
