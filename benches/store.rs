//! Store throughput, all measured in one run on the same disk:
//! (a) raw LMDB: durable commits of 1,000 puts of random 32-byte keys with
//!     values the size of an unspent `utxos` record;
//! (b) `Store::apply_finalized` of 1,000-tx batches of 2-in/2-out transfers
//!     with 1.5 KB proofs (one commit per batch);
//! (c) raw LMDB again with 10,000 puts per commit, about the writes of one
//!     batch of (b), so fsync is amortized alike.
//! Then prints LMDB writes per tx (from `ApplyReport::writes`) and the
//! efficiency `apply tx/s ÷ (raw puts/s ÷ writes per tx)` against (a) (the
//! goal is ≥ 0.6) and against (c) (the cost of our records beyond the puts).
//!
//! Checkpoint blocks:
//! (d) `Store::apply_block` archiving 1,000 and 10,000 finalized txs (of
//!     10,000 unarchived) with 10 reward outputs, durable; each iteration
//!     is undone, untimed, so the next applies the same block again;
//! (e) reading the tip of a store holding 10,000 blocks: `Store::open` +
//!     `tip()`, and `tip()` alone. Its 10,000 blocks are built on tmpfs
//!     (`/dev/shm` when present: 10,000 fsyncs would take minutes and the
//!     tip lookup never touches them); reads come from the page cache either way.
//!
//! Run: `cargo bench --bench store`
#![allow(clippy::disallowed_methods)] // benchmarks measure wall-clock time

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use criterion::{Criterion, Throughput};
use lmdb::{DatabaseFlags, Environment, Transaction, WriteFlags};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use store_support::{finalized, reward_outputs, FundedChain, TestBlock, Wallet};
use timecoin::ledger::{UtxoEntry, UtxoState};
use timecoin::store::{FinalizedTx, Store, StoreOptions};
use timecoin::types::encoding::encode;
use timecoin::types::{Address, Amount, TxOut};

const TXS_PER_BATCH: usize = 1_000;
const PROOF_BYTES: usize = 1_500;

/// Operations done and time spent, over every iteration criterion ran.
#[derive(Default)]
struct Tally {
    ops: u64,
    writes: u64,
    elapsed: Duration,
}

impl Tally {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .configure_from_args()
}

fn raw_puts(c: &mut Criterion, puts_per_commit: u64, tally: &RefCell<Tally>) {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::new()
        .set_map_size(16 << 30)
        .open(dir.path())
        .unwrap();
    let db = env.create_db(None, DatabaseFlags::empty()).unwrap();
    let record = UtxoEntry {
        output: TxOut {
            value: Amount(1),
            address: Address([7; 20]),
        },
        state: UtxoState::Unspent,
    };
    let value = vec![0x42u8; encode(&record).len()];
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(puts_per_commit));
    let name = format!("raw_lmdb_{puts_per_commit}_puts_per_durable_commit");
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut txn = env.begin_rw_txn().unwrap();
                for _ in 0..puts_per_commit {
                    let mut key = [0u8; 32];
                    rng.fill_bytes(&mut key);
                    txn.put(db, &key, &value, WriteFlags::empty()).unwrap();
                }
                txn.commit().unwrap();
            }
            let elapsed = start.elapsed();
            let mut t = tally.borrow_mut();
            t.ops += iters * puts_per_commit;
            t.elapsed += elapsed;
            elapsed
        })
    });
    group.finish();
}

fn apply_batches(c: &mut Criterion, tally: &RefCell<Tally>) {
    let dir = tempfile::tempdir().unwrap();
    // 4,096 genesis coins: each batch spends 2,000 and creates 2,000.
    let chain = FundedChain::new("store bench", 64, 64, Amount::from_time(1_000).unwrap());
    let store = Store::open(dir.path(), &chain.spec, StoreOptions::default()).unwrap();
    let mut wallet = Wallet::from_genesis(&chain);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut clock_ms = 1_764_028_800_000;
    let mut next_batch = || -> Vec<FinalizedTx> {
        (0..TXS_PER_BATCH)
            .map(|_| {
                clock_ms += 1;
                let tx = wallet.transfer(&chain, &mut rng, (2, 2), chain.min_fee());
                finalized(&tx, PROOF_BYTES, clock_ms)
            })
            .collect()
    };
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(TXS_PER_BATCH as u64));
    group.bench_function("apply_finalized_1000_tx_2in_2out_1500b_proofs", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let batch = next_batch();
                let start = Instant::now();
                let report = store.apply_finalized(&batch).unwrap();
                elapsed += start.elapsed();
                let mut t = tally.borrow_mut();
                t.ops += report.applied as u64;
                t.writes += report.writes as u64;
            }
            tally.borrow_mut().elapsed += elapsed;
            elapsed
        })
    });
    group.finish();
}

/// A store holding `txs` finalized, unarchived 1-in/2-out transfers.
fn store_with_unarchived(dir: &std::path::Path, txs: usize) -> (FundedChain, Store) {
    let chain = FundedChain::new("block bench", 64, 64, Amount::from_time(1_000).unwrap());
    let store = Store::open(dir, &chain.spec, StoreOptions::default()).unwrap();
    let mut wallet = Wallet::from_genesis(&chain);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for batch in 0..txs.div_ceil(TXS_PER_BATCH) {
        let batch: Vec<FinalizedTx> = (0..TXS_PER_BATCH.min(txs - batch * TXS_PER_BATCH))
            .map(|i| {
                let tx = wallet.transfer(&chain, &mut rng, (1, 2), chain.min_fee());
                finalized(&tx, PROOF_BYTES, i as u64)
            })
            .collect();
        store.apply_finalized(&batch).unwrap();
    }
    (chain, store)
}

fn apply_blocks(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (chain, store) = store_with_unarchived(dir.path(), 10_000);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let rewards = reward_outputs(&chain, &mut rng, 10, Amount(1_000));
    let mut group = c.benchmark_group("store");
    for archived in [1_000usize, 10_000] {
        let tip = store.tip().unwrap();
        let txids = store.unarchived(archived).unwrap();
        let block = TestBlock::on(&tip, txids, rewards.clone(), 10, 0);
        group.throughput(Throughput::Elements(archived as u64));
        let name = format!("apply_block_{archived}_archived_10_rewards_durable");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    store.apply_block(&block.commit()).unwrap();
                    elapsed += start.elapsed();
                    store.undo_tip(&block.hash).unwrap();
                }
                elapsed
            })
        });
    }
    group.finish();
}

fn load_tip(c: &mut Criterion) {
    const BLOCKS: u64 = 10_000;
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let (chain, store) = store_with_unarchived(dir.path(), 0);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for salt in 0..BLOCKS {
        let tip = store.tip().unwrap();
        let rewards = reward_outputs(&chain, &mut rng, 3, Amount(1_000));
        let block = TestBlock::on(&tip, vec![], rewards, 10, salt);
        store.apply_block(&block.commit()).unwrap();
    }
    assert_eq!(store.tip().unwrap().height, BLOCKS);
    let mut group = c.benchmark_group("store");
    group.bench_function("tip_of_10000_blocks", |b| b.iter(|| store.tip().unwrap()));
    drop(store);
    group.bench_function("open_and_tip_of_10000_blocks", |b| {
        b.iter(|| {
            let store = Store::open(dir.path(), &chain.spec, StoreOptions::default()).unwrap();
            store.tip().unwrap()
        })
    });
    group.finish();
}

fn main() {
    let mut c = criterion();
    apply_blocks(&mut c);
    load_tip(&mut c);
    let raw = RefCell::new(Tally::default());
    let apply = RefCell::new(Tally::default());
    let raw_batch_sized = RefCell::new(Tally::default());
    raw_puts(&mut c, 1_000, &raw);
    apply_batches(&mut c, &apply);
    raw_puts(&mut c, 10_000, &raw_batch_sized);
    c.final_summary();

    let apply = apply.into_inner();
    if apply.ops == 0 {
        return; // a filter skipped it
    }
    let writes_per_tx = apply.writes as f64 / apply.ops as f64;
    println!(
        "apply_finalized: {:.0} tx/s, {writes_per_tx:.3} LMDB writes/tx",
        apply.per_second()
    );
    for (label, raw) in [
        ("1,000 puts/commit (goal >= 0.60)", raw.into_inner()),
        ("10,000 puts/commit", raw_batch_sized.into_inner()),
    ] {
        if raw.ops == 0 {
            continue;
        }
        let bound_tx_per_s = raw.per_second() / writes_per_tx;
        println!(
            "raw LMDB {label}: {:.0} puts/s -> bound {bound_tx_per_s:.0} tx/s, \
             efficiency {:.2}",
            raw.per_second(),
            apply.per_second() / bound_tx_per_s,
        );
    }
}
