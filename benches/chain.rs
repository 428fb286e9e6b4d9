//! The pure CPU cost of checkpoint blocks (the store's part is measured in
//! `benches/store.rs`), with four bronze validators, proofs of 3 votes each,
//! one vote per 64 txids as validators sign them:
//! * `chain/build/N`: select, reward, VRF ticket and sign a block of N entries.
//! * `chain/validate/N`: every rule, each distinct vote signature verified
//!   once (as with the node's verified-vote cache starting cold).
//! * `chain/validate_every_vote/1000`: every vote of every proof verified.
//!
//! Run: `cargo bench --bench chain`
#![allow(clippy::disallowed_methods)] // benchmarks measure wall-clock time

#[path = "../tests/consensus_support/mod.rs"]
mod consensus_support;

#[path = "../tests/chain_support/mod.rs"]
mod chain_support;

use chain_support::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::collections::HashSet;
use std::time::Duration;
use timecoin::chain::{build_block, validate_block, validate_block_with};

const SIZES: [usize; 2] = [1_000, 10_000];

fn blocks(c: &mut Criterion) {
    let f = Fixture::new(SIZES[1]);
    let mut group = c.benchmark_group("chain");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for n in SIZES {
        let finalized = f.finalized(&f.payments(0..n));
        let block = f.build(0, GENESIS_SLOT + 1, &f.payments(0..n));
        assert_eq!(block.entries.len(), n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("build/{n}"), |b| {
            b.iter_batched(
                || finalized.clone(),
                |finalized| {
                    build_block(
                        &f.chain.template(GENESIS_SLOT + 1),
                        &f.validators.vrfs[0],
                        &f.validators.ids[0],
                        finalized,
                    )
                    .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(format!("validate/{n}"), |b| {
            b.iter_batched(
                || block.clone(),
                |block| {
                    let mut verified = HashSet::new();
                    validate_block_with(block, &f.chain, |vote| {
                        verified.contains(&vote.vote_hash())
                            || (vote.verify_signature().is_ok()
                                && verified.insert(vote.vote_hash()))
                    })
                    .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
        if n == SIZES[0] {
            group.bench_function(format!("validate_every_vote/{n}"), |b| {
                b.iter_batched(
                    || block.clone(),
                    |block| validate_block(block, &f.chain).unwrap(),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, blocks);
criterion_main!(benches);
