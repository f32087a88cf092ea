#!/usr/bin/env bash
# Static musl binaries of dockhand (no glibc needed: minimal images, any distribution), built with
# Debian 12's Rust toolchain and run: --version, check-config on the shipped configs and the demo
# daemon for 10 s (aarch64 under qemu-user).
#
#   scripts/musl-test.sh x86_64     # target/x86_64-unknown-linux-musl/release/dockhand
#   scripts/musl-test.sh aarch64    # target/aarch64-unknown-linux-musl/release/dockhand
#
# Neither rustup (unreachable here) nor Debian ships a musl standard library, so std is compiled
# from Debian's own Rust sources (rust-web-src, the same release as rustc-web) with cargo's
# -Zbuild-std, which RUSTC_BOOTSTRAP=1 unlocks on this stable compiler. Debian's musl-dev gives
# libc and the start files; musl's specs file makes gcc link against them; LLVM's libunwind (its
# .a taken from Debian's libunwind-14-dev for the target) is the unwinder std links statically.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  x86_64) T=x86_64-unknown-linux-musl; DEB=amd64; GCC=x86_64-linux-gnu-gcc; MUSL=x86_64-linux-musl; RUN="" ;;
  aarch64) T=aarch64-unknown-linux-musl; DEB=arm64; GCC=aarch64-linux-gnu-gcc; MUSL=aarch64-linux-musl; RUN=qemu-aarch64-static ;;
  *) echo "usage: $0 x86_64|aarch64" >&2; exit 2 ;;
esac
ARCH=$1
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
need=(rustc-web cargo-web rust-web-src "musl-dev:$DEB" qemu-user-static)
[ "$ARCH" = aarch64 ] && need+=(gcc-aarch64-linux-gnu)
if ! dpkg -s "${need[@]}" >/dev/null 2>&1; then
  echo "== installing Debian's Rust sources, musl and the $DEB C toolchain"
  $SUDO dpkg --add-architecture "$DEB"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
tools="target/musl-tools/$ARCH"
mkdir -p "$tools"
if [ ! -f "$tools/libunwind.a" ]; then
  echo "== LLVM's libunwind for $DEB (from Debian's libunwind-14-dev)"
  dl=$(mktemp -d)
  (cd "$dl" && apt-get download "libunwind-14-dev:$DEB" >/dev/null 2>&1)
  dpkg -x "$dl"/libunwind-14-dev_*.deb "$dl/x"
  cp "$dl/x/usr/lib/llvm-14/lib/libunwind.a" "$tools/libunwind.a"
  rm -rf "$dl"
fi
# gcc for the target, linking against musl instead of glibc. rustc links with -nodefaultlibs,
# so gcc's own runtime library is named at the end: mimalloc's C code calls its helpers
# (__popcountdi2 on x86_64 without the popcnt instruction), which Rust's compiler_builtins lacks.
cat >"$tools/cc" <<SH
#!/bin/sh
case " \$* " in *" -c "*) exec $GCC "\$@" -specs /usr/lib/$MUSL/musl-gcc.specs ;; esac
exec $GCC "\$@" -specs /usr/lib/$MUSL/musl-gcc.specs $($GCC -print-libgcc-file-name)
SH
chmod +x "$tools/cc"
TU=$(echo "$T" | tr 'a-z-' 'A-Z_')
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
# A target folder of its own, kept between runs (and between clones): the dependencies are
# compiled once per toolchain, and a build here never waits for the lock of the host's
# `cargo test` in target/ (scripts/test.sh runs both at once). The binary is copied to
# target/$T/release/, where scripts/package.sh looks for it.
export CARGO_TARGET_DIR="${DOCKHAND_CROSS_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dockhand/cross-target}"
export "CARGO_TARGET_${TU}_LINKER=$PWD/$tools/cc" "CC_${T//-/_}=$PWD/$tools/cc"
# Static, not static-pie (musl's specs link a PIE against its dynamic loader), and the start
# files from musl-dev rather than the ones rustup would bundle.
export "CARGO_TARGET_${TU}_RUSTFLAGS=-C link-self-contained=no -C target-feature=+crt-static -C relocation-model=static -L native=$PWD/$tools"
echo "== static release binary for $T (std built from Debian's sources)"
/usr/bin/cargo build -Zbuild-std=std,panic_abort --target "$T" --release -p dockhand
mkdir -p "target/$T/release"
cp "$CARGO_TARGET_DIR/$T/release/dockhand" "target/$T/release/dockhand"
bin="target/$T/release/dockhand"
file "$bin" | grep -q "statically linked" || { file "$bin"; echo "$bin is not static"; exit 1; }
run() { if [ -n "$RUN" ]; then "$RUN" "$@"; else "$@"; fi; }
echo "== the $ARCH musl binary"
run "$bin" --version
run "$bin" --config config/demo.toml check-config
run "$bin" --config config/dockhand.example.toml check-config
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
mkdir -p "$demo/config"
sed 's/^\[gateway\]/[web]\nlisten = "127.0.0.1:0"\n\n[gateway]/' config/demo.toml >"$demo/config/demo.toml"
set +e
timeout -s TERM 10 $RUN "$bin" --config "$demo/config/demo.toml" run >"$demo/log" 2>&1
set -e
delivered=$(wc -l <"$demo/target/demo/events.ndjson" 2>/dev/null || echo 0)
grep -q "dockhand stopped." "$demo/log" && [ "$delivered" -gt 0 ] || { cat "$demo/log"; echo "the $ARCH musl daemon did not run the demo"; exit 1; }
echo "$ARCH musl: static, $(stat -c %s "$bin") bytes stripped; the demo delivered $delivered events in 10 s, clean stop"
