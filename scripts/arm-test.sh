#!/usr/bin/env bash
# Builds dockhand for an ARM gateway with Debian 12's Rust toolchain — no Docker needed — runs the
# unit tests of `dockhand` and `firmware-bridge` under qemu-user, builds the release binary and
# runs it under qemu-user too (--version, check-config on the shipped configs, the demo daemon
# for 20 s).
#
#   scripts/arm-test.sh aarch64   # 64-bit ARM (Raspberry Pi 3/4/5 64-bit OS, most gateways)
#   scripts/arm-test.sh armv7     # 32-bit ARMv7 hard-float (Raspberry Pi OS armhf, older boards)
#   scripts/arm-test.sh armv7 --build-only   # only the release binary (scripts/package.sh --all)
#
# qemu runs the binaries against Debian's multiarch libraries (`-L /`). Pointing it at the
# cross toolchain's sysroot instead (`-L /usr/aarch64-linux-gnu`) loads that sysroot's older
# ld.so with the multiarch libc.so.6; the two disagree on the loader's internal layout, and the
# first pthread_create then loops forever in glibc's stack cache — which is why threaded programs
# (the test harness, the daemon) seemed to hang under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  aarch64) T=aarch64-unknown-linux-gnu; DEB=arm64; GNU=aarch64-linux-gnu; QEMU=qemu-aarch64-static ;;
  armv7) T=armv7-unknown-linux-gnueabihf; DEB=armhf; GNU=arm-linux-gnueabihf; QEMU=qemu-arm-static ;;
  *) echo "usage: $0 aarch64|armv7" >&2; exit 2 ;;
esac
ARCH=$1
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! dpkg -s "libstd-rust-web-dev:$DEB" "libc6:$DEB" qemu-user-static "gcc-$GNU" >/dev/null 2>&1; then
  echo "== installing Debian's Rust toolchain for $DEB and qemu-user"
  $SUDO dpkg --add-architecture "$DEB"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rustc-web cargo-web "libstd-rust-web-dev:$DEB" \
    "libc6:$DEB" "gcc-$GNU" "libc6-dev-$DEB-cross" qemu-user-static >/dev/null
fi
TU=$(echo "$T" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${TU}_LINKER=$GNU-gcc"
export "CC_${T//-/_}=$GNU-gcc"
# Debian's cargo and rustc (they carry the ARM standard library); the rustup toolchain stays
# first on PATH for everything else.
export RUSTC=/usr/bin/rustc
# A target folder of its own, kept between runs (and between clones): the dependencies are
# compiled once per toolchain, and a build here never waits for the lock of the host's
# `cargo test` in target/ (scripts/test.sh runs both at once). The binary is copied to
# target/$T/release/, where scripts/package.sh looks for it.
export CARGO_TARGET_DIR="${DOCKHAND_CROSS_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dockhand/cross-target}"
run() { "$QEMU" -L / "$@"; }
export "CARGO_TARGET_${TU}_RUNNER=$QEMU -L /"
if [ "${2:-}" = --build-only ]; then
  /usr/bin/cargo build --target "$T" --release -p dockhand
  mkdir -p "target/$T/release"
  cp "$CARGO_TARGET_DIR/$T/release/dockhand" "target/$T/release/dockhand"
  exit 0
fi
echo "== unit tests for $ARCH, under qemu-user"
/usr/bin/cargo test --target "$T" -p dockhand -p firmware-bridge --lib
echo "== release binary for $ARCH"
/usr/bin/cargo build --target "$T" --release -p dockhand
mkdir -p "target/$T/release"
cp "$CARGO_TARGET_DIR/$T/release/dockhand" "target/$T/release/dockhand"
bin="target/$T/release/dockhand"
ls -l "$bin"
echo "== the $ARCH binary under qemu-user"
run "$bin" --version
run "$bin" --config config/demo.toml check-config
run "$bin" --config config/dockhand.example.toml check-config
set +e
run "$bin" --config config/nonexistent.toml check-config >/dev/null 2>&1
code=$?
set -e
[ "$code" = 78 ] || { echo "expected exit 78 for a missing config, got $code"; exit 1; }
echo "== the $ARCH daemon runs the demo under qemu-user for 20 s (embedded broker, simulated handhelds, file sink)"
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
mkdir -p "$demo/config"
# Its own port for the page and /metrics, so a daemon already running here does not clash.
sed 's/^\[gateway\]/[web]\nlisten = "127.0.0.1:0"\n\n[gateway]/' config/demo.toml >"$demo/config/demo.toml"
set +e
timeout -s TERM 20 "$QEMU" -L / "$bin" --config "$demo/config/demo.toml" run >"$demo/log" 2>&1 &
runner=$!
# The peak resident memory of the qemu process: the daemon plus qemu's own translation cache, an
# upper bound of what the daemon needs on a real board.
peak=0
while kill -0 "$runner" 2>/dev/null; do
  pid=$(pgrep -f -n "$QEMU -L / $bin --config $demo/config/demo.toml run" || true)
  if [ -n "$pid" ]; then
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
  fi
  sleep 0.5
done
wait "$runner"
set -e
delivered=$(wc -l <"$demo/target/demo/events.ndjson" 2>/dev/null || echo 0)
grep -q "dockhand is ready." "$demo/log" || { cat "$demo/log"; echo "the $ARCH daemon did not become ready"; exit 1; }
[ "$delivered" -gt 0 ] || { cat "$demo/log"; echo "the $ARCH daemon delivered nothing"; exit 1; }
grep -q "dockhand stopped." "$demo/log" || { cat "$demo/log"; echo "the $ARCH daemon did not stop cleanly on SIGTERM"; exit 1; }
echo "$ARCH demo: $delivered events delivered to the file sink in 20 s, clean stop on SIGTERM; peak RSS under qemu $((peak / 1024)) MiB"
echo "$ARCH: built, $(stat -c %s "$bin") bytes stripped; unit tests pass and the daemon runs under qemu"
