#!/usr/bin/env bash
# CI's fuzz step: builds every cargo-fuzz target (unoptimized, no
# sanitizer: the code under test is safe Rust, and the build is most of the
# cost) and runs each for FUZZ_SECONDS on its checked-in corpus. A crash
# fails CI and leaves its input in fuzz/artifacts/<target>/.
# The long campaigns (SECURITY.md) use `cargo +nightly fuzz run -O`.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-5}

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs nightly rustc flags; without a nightly toolchain, let
# stable accept them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
flags=(--dev -s none)
host=$(rustc -vV | sed -n 's/^host: //p')

"${fuzz[@]}" build "${flags[@]}"
mkdir -p artifacts
for target in $("${fuzz[@]}" list); do
    mkdir -p "artifacts/$target"
    echo "-- $target (${seconds}s)"
    # A scratch copy: CI's runs must not grow the checked-in corpus.
    scratch=$(mktemp -d)
    cp -r "corpus/$target/." "$scratch/" 2>/dev/null || true
    log="$scratch.log"
    status=0
    # The binary itself: `cargo fuzz run` would re-check the build each time.
    "target/$host/debug/$target" "$scratch" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^Done|stat::number_of_executed_units|panicked|ERROR|SUMMARY' "$log" || true
    if [[ $status -ne 0 ]]; then tail -n 40 "$log"; fi
    rm -rf "$scratch" "$log"
    if [[ $status -ne 0 ]]; then
        echo "fuzz target $target failed (exit $status); input in fuzz/artifacts/$target/"
        exit 1
    fi
done
