//! Checkpoint blocks end to end against a real LMDB store, with four bronze
//! validators and real finality proofs (3 votes each, one vote per 64
//! txids, as validators sign them):
//! * `blocks/build_and_commit/N`: what a producer does for a block of N
//!   finalized txs (of 10,000 unarchived): read N unarchived txids, their
//!   proofs and fees from one snapshot, build (select, reward, VRF ticket,
//!   sign), encode, and `Store::apply_block` (durable: one fsync). Each
//!   iteration's block is undone, untimed, so the next builds it again.
//! * `blocks/verifychain/B_blocks_T_txs`: `rpc::archive::verify_store` over
//!   a chain of B blocks archiving T txs in all: the replay from the genesis
//!   (decode, linkage, every rule and proof, each distinct vote signature
//!   once per block, the tx records) plus the store's table check.
//!   Throughput is in blocks; tx/s is printed beside blocks/s.
//!
//! The tip load at startup (`Store::open` + `tip()` with 10,000 blocks) is
//! measured by `benches/store.rs` (`store/open_and_tip_of_10000_blocks`):
//! one lookup, whatever the blocks hold.
//!
//! Run: `cargo bench --bench blocks`
#![allow(clippy::disallowed_methods)] // benchmarks measure wall-clock time

#[path = "../tests/consensus_support/mod.rs"]
mod consensus_support;

#[path = "../tests/chain_support/mod.rs"]
mod chain_support;

#[path = "../tests/store_support/mod.rs"]
mod store_support;

#[path = "../tests/archive_support/mod.rs"]
mod archive_support;

use archive_support::ArchiveChain;
use criterion::{Criterion, Throughput};
use std::time::{Duration, Instant};
use timecoin::finality::ValidatorSet;
use timecoin::rpc::archive::verify_store;

const UNARCHIVED: usize = 10_000;
const BLOCK_SIZES: [usize; 2] = [1_000, 10_000];
/// Chains replayed by `verifychain`: (blocks, txs per block).
const CHAINS: [(usize, usize); 2] = [(100, 100), (1_000, 0)];

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args()
}

fn build_and_commit(c: &mut Criterion) {
    let mut chain = ArchiveChain::new("blocks bench build", 1_024);
    chain.finalize(UNARCHIVED);
    let mut group = c.benchmark_group("blocks");
    for n in BLOCK_SIZES {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("build_and_commit/{n}"), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let block = chain.build_on(chain.tip(), 0, chain.candidates(n));
                    chain.apply(&block);
                    elapsed += start.elapsed();
                    assert_eq!(block.entries.len(), n);
                    chain.store.undo_tip(&block.hash()).unwrap();
                }
                elapsed
            })
        });
    }
    group.finish();
}

fn verifychain(c: &mut Criterion) {
    let mut group = c.benchmark_group("blocks");
    for (blocks, per_block) in CHAINS {
        let mut chain = ArchiveChain::new("blocks bench verify", 256);
        chain.extend(blocks, per_block);
        let validators = ValidatorSet::new(chain.spec().validators.clone()).unwrap();
        let params = chain.replay_params();
        let txs = (blocks * per_block) as u64;
        group.throughput(Throughput::Elements(blocks as u64));
        let mut runs = (0u32, Duration::ZERO);
        group.bench_function(format!("verifychain/{blocks}_blocks_{txs}_txs"), |b| {
            b.iter(|| {
                let start = Instant::now();
                let found =
                    verify_store(&chain.store, chain.spec(), validators.clone(), &params).unwrap();
                runs.0 += 1;
                runs.1 += start.elapsed();
                assert!(found.is_ok(), "{found:?}");
                assert_eq!(found.replay.blocks, blocks as u64);
            })
        });
        let per_run = runs.1.as_secs_f64() / f64::from(runs.0.max(1));
        println!(
            "verifychain over {blocks} blocks / {txs} txs: {:.0} blocks/s, {:.0} tx/s \
             ({:.1} ms per run, mean of {} runs)",
            blocks as f64 / per_run,
            txs as f64 / per_run,
            per_run * 1e3,
            runs.0
        );
    }
    group.finish();
}

fn main() {
    let mut c = criterion();
    build_and_commit(&mut c);
    verifychain(&mut c);
    c.final_summary();
}
