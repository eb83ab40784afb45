#!/usr/bin/env bash
# Runs every fuzz target of pimg's readers for SECONDS each (default 60) with cargo-fuzz
# (libFuzzer, with AddressSanitizer unless FUZZ_SANITIZER=none), from seeds built with pimg's
# own writers. The readers are safe Rust, so a short run finds what it can find (a panic, a
# hang, unbounded memory) without the sanitizer too, and builds and runs faster that way.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]      e.g. scripts/fuzz.sh 30   (CI), scripts/fuzz.sh 600
#
# Prints one line per target with the executions run and the outcome, and keeps the corpus
# in fuzz/corpus/ and any crashing input in fuzz/artifacts/<target>/. Exits 1 on a finding
# (panic, timeout, out-of-memory), 0 otherwise. Works on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its unstable sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# One instrumented build for all targets, then seeds: small valid images and archives
# written by pimg itself, by its plain release build (`cargo test --release` has built the
# example already; without the sanitizer, an instrumented program would not even link).
cargo fuzz build --sanitizer "${FUZZ_SANITIZER:-address}"
bin_dir="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
# Without RUSTC_BOOTSTRAP, which cargo fingerprints: with it, the release build is redone.
env -u RUSTC_BOOTSTRAP cargo run --quiet --release --locked --example fuzz_seeds -- fuzz/corpus

declare -A max_len=([fat]=262144 [partitions]=524288 [diff_archives]=65536)
status=0
summary=()
for t in "${targets[@]}"; do
    log="fuzz/artifacts/$t.log"
    mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
    len="${max_len[$t]:-65536}"
    set +e
    # The binary `cargo fuzz build` made, run as `cargo fuzz run` would run it: `cargo fuzz
    # run` builds again with other flags, recompiling pimg twice for every target.
    "$bin_dir/$t" -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" \
        -max_total_time="$secs" -max_len="$len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ "$rc" -eq 0 ]; then
        outcome="no findings"
    else
        outcome="FINDING (exit $rc): see $log and fuzz/artifacts/$t/"
        status=1
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | head -5 || true
    fi
    summary+=("$(printf '%-14s %10s executions in %ss: %s' "$t" "${runs:-?}" "$secs" "$outcome")")
done
printf '%s\n' "${summary[@]}"
exit "$status"
