#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a short time (a smoke run, not a
# campaign). Works on the stable toolchain: see docs/FUZZING.md for why RUSTC_BOOTSTRAP=1.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
#
# SECONDS per target defaults to 60; TARGETs default to every target (`cargo fuzz list`).
# Environment:
#   FUZZ_SANITIZER    address (default) or none (about twice as many executions, finds only
#                     panics, aborts and hangs, not memory errors in C or unsafe code)
#   CARGO_BUILD_JOBS  parallel rustc jobs for the build (default 1: the machine is shared)
#   FUZZ_RSS_LIMIT_MB libFuzzer -rss_limit_mb (default 2048)
#
# Run one target by hand (the same build): see docs/FUZZING.md, e.g.
#   RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=fuzz/target cargo fuzz run --fuzz-dir fuzz gs1 -- -max_total_time=60
#
# Each target starts from the committed seed corpus fuzz/corpus/<target> (read only) and a working
# corpus fuzz/target/corpus/<target> (git-ignored; new inputs go there and are reused by the next
# run), crash inputs go to fuzz/artifacts/<target>/, the libFuzzer log to
# fuzz/target/smoke/<target>.log. To fold what a run found into the committed corpus, see
# docs/FUZZING.md ("The corpus").
# Prints one line per target (executions, exec/s, corpus size, crash) and exits 1 when any
# target crashed (panic, sanitizer report, timeout or out-of-memory), 2 when the build failed.
set -uo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS] [TARGET...]" >&2
  exit 64
fi
shift $(( $# > 0 ? 1 : 0 ))

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
# cargo-fuzz passes -Zsanitizer and other unstable rustc flags; RUSTC_BOOTSTRAP=1 lets the stable
# compiler accept them (there is no nightly toolchain on these machines).
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$fuzz_dir/target"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
rss_limit="${FUZZ_RSS_LIMIT_MB:-2048}"
logs="$CARGO_TARGET_DIR/smoke"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz || { echo "cannot install cargo-fuzz" >&2; exit 2; }
fi

cd "$root" || exit 2
common=(--fuzz-dir "$fuzz_dir" --target-dir "$CARGO_TARGET_DIR" --sanitizer "$sanitizer")

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets found in $fuzz_dir" >&2
  exit 2
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer, jobs: $CARGO_BUILD_JOBS)" >&2
build_start=$(date +%s)
if ! cargo fuzz build "${common[@]}"; then
  echo "fuzz build failed" >&2
  exit 2
fi
echo "== built in $(( $(date +%s) - build_start )) s" >&2

bin_dir="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release"
mkdir -p "$logs"
crashed=()
printf '%-16s %8s %12s %10s %8s  %s\n' target seconds executions exec/s corpus result
for t in "${targets[@]}"; do
  seeds="$fuzz_dir/corpus/$t"
  corpus="$CARGO_TARGET_DIR/corpus/$t"
  artifacts="$fuzz_dir/artifacts/$t"
  mkdir -p "$seeds" "$corpus" "$artifacts"
  log="$logs/$t.log"
  before=$(find "$artifacts" -type f | wc -l)
  start=$(date +%s)
  # The binaries from the build above are run directly (what `cargo fuzz run` does after its own
  # build): every target then runs the same build, and the time is fuzzing time only, even while
  # someone else edits agent/ or firmware-bridge/.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0" RUST_BACKTRACE=1 \
    "$bin_dir/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss_limit" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  size=$(find "$corpus" -type f | wc -l)
  after=$(find "$artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    written=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    result="CRASH (exit $rc) ${written:-see $log}"
    crashed+=("$t")
  else
    result="ok"
  fi
  # A crash ends the run early; without final stats fall back to the last status line.
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  fi
  printf '%-16s %8s %12s %10s %8s  %s\n' "$t" "$elapsed" "${execs:-?}" "${rate:-?}" "$size" "$result"
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "crashes in: ${crashed[*]} (logs in $logs)" >&2
  exit 1
fi
echo "no crashes" >&2
