#!/usr/bin/env bash
# CI's fuzz step: builds every fuzz target (unoptimized, no sanitizer: the
# code under test is safe Rust, and the build is most of the cost) and runs
# each for FUZZ_SECONDS on a scratch copy of its checked-in corpus. A crash
# fails CI and leaves its input in fuzz/artifacts/<target>/.
# The long campaigns (SECURITY.md) use `cargo +nightly fuzz build -O`.
#
# No cargo-fuzz and no nightly: this is the build `cargo fuzz build --dev
# -s none` runs (cargo-fuzz 0.13.2, src/project.rs), done with plain cargo.
# Without a sanitizer none of these flags is unstable, so any toolchain
# works, and CI saves installing cargo-fuzz.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-5}

host=$(rustc -vV | sed -n 's/^host: //p')
# Honour CARGO_TARGET_DIR (relative to where we were called from);
# otherwise fuzz/target, as cargo-fuzz uses.
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
[[ $target_dir = /* ]] || target_dir=$caller_dir/$target_dir
bin_dir=$target_dir/$host/debug

# A one-off build gains nothing from incremental caches.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
sancov=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg fuzzing
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cdebug-assertions
)
# `--target` keeps these flags off build scripts, as cargo-fuzz does.
RUSTFLAGS="${sancov[*]} ${RUSTFLAGS:-}" \
    cargo build --manifest-path Cargo.toml --locked --target "$host" \
    --target-dir "$target_dir" --bins

mkdir -p artifacts
for source in fuzz_targets/*.rs; do
    target=$(basename "$source" .rs)
    mkdir -p "artifacts/$target"
    echo "-- $target (${seconds}s)"
    # A scratch copy: CI's runs must not grow the checked-in corpus.
    scratch=$(mktemp -d)
    cp -r "corpus/$target/." "$scratch/" 2>/dev/null || true
    log="$scratch.log"
    status=0
    "$bin_dir/$target" "$scratch" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^Done|stat::number_of_executed_units|panicked|ERROR|SUMMARY' "$log" || true
    if [[ $status -ne 0 ]]; then tail -n 40 "$log"; fi
    rm -rf "$scratch" "$log"
    if [[ $status -ne 0 ]]; then
        echo "fuzz target $target failed (exit $status); input in fuzz/artifacts/$target/"
        exit 1
    fi
done
