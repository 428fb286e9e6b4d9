//! Ledger hot paths, in one run so the figures share a machine state:
//! raw ed25519 `verify_strict` (key parsed once), `validate()` of a signed
//! 2-in/2-out transfer against a 100k-entry UTXO set, the canonical encode +
//! decode round trip and the txid. It ends by printing how close validation
//! comes to the raw signature rate: validate() does little besides checking
//! signatures, so its per-signature rate should be ≥ 80 % of the raw rate.
//!
//! Run: `cargo bench --bench ledger`
#![allow(clippy::disallowed_methods)] // benchmarks measure wall-clock time

#[path = "../tests/common/mod.rs"]
mod common;

use common::{add_filler_utxos, TestChain};
use criterion::{black_box, criterion_group, criterion_main, Bencher, Criterion};
use std::cell::Cell;
use std::time::{Duration, Instant};
use timecoin::crypto::{signing_message, Domain, PublicKey};
use timecoin::ledger::validate;
use timecoin::types::Tx;

const FILLER_UTXOS: usize = 100_000;
const TARGET_SHARE: f64 = 0.80;

/// What criterion measured for one benchmark, kept for the summary: the mean
/// over all its samples and its fastest sample. Other processes on a shared
/// host only ever add time, so the fastest sample is the steadier figure.
struct Tally {
    iterations: Cell<u64>,
    elapsed: Cell<Duration>,
    fastest_secs_per_iter: Cell<f64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            iterations: Cell::new(0),
            elapsed: Cell::new(Duration::ZERO),
            fastest_secs_per_iter: Cell::new(f64::INFINITY),
        }
    }

    fn bench<R>(&self, b: &mut Bencher<'_>, mut routine: impl FnMut() -> R) {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(routine());
            }
            let took = start.elapsed();
            self.iterations.set(self.iterations.get() + iterations);
            self.elapsed.set(self.elapsed.get() + took);
            let per_iter = took.as_secs_f64() / iterations as f64;
            self.fastest_secs_per_iter
                .set(self.fastest_secs_per_iter.get().min(per_iter));
            took
        });
    }

    /// (mean, fastest sample) in runs per second.
    fn rates(&self) -> (f64, f64) {
        let mean = self.iterations.get() as f64 / self.elapsed.get().as_secs_f64();
        (mean, 1.0 / self.fastest_secs_per_iter.get())
    }
}

fn ledger(c: &mut Criterion) {
    let chain = TestChain::devnet();
    let tx = chain.two_in_two_out();
    let params = chain.params();
    let mut utxos = chain.utxos();
    add_filler_utxos(&mut utxos, FILLER_UTXOS, 0x1ed9e7);
    let key = PublicKey::parse(&tx.inputs[0].pubkey).expect("wallet key parses");
    let message = signing_message(Domain::Tx, chain.chain_id(), &tx.txid());
    let signature = tx.inputs[0].sig;
    let encoded = tx.encode();
    assert!(validate(&tx, &utxos, &params).is_ok());

    let (verify, validation) = (Tally::new(), Tally::new());
    let mut group = c.benchmark_group("ledger");
    group.bench_function("verify_strict", |b| {
        verify.bench(b, || key.verify(black_box(&message), black_box(&signature)))
    });
    group.bench_function("validate_2in_2out_100k_utxos", |b| {
        validation.bench(b, || validate(black_box(&tx), &utxos, &params))
    });
    group.bench_function("tx_encode_decode", |b| {
        b.iter(|| Tx::decode(&black_box(&tx).encode(), params.max_tx_bytes))
    });
    group.bench_function("tx_decode", |b| {
        b.iter(|| Tx::decode(black_box(&encoded), params.max_tx_bytes))
    });
    group.bench_function("txid", |b| b.iter(|| black_box(&tx).txid()));
    group.finish();

    let signatures_per_tx = tx.inputs.len() as f64;
    let (verify_mean, verify_fastest) = verify.rates();
    let (validate_mean, validate_fastest) = validation.rates();
    println!();
    for (label, raw, tx_rate) in [
        ("fastest sample", verify_fastest, validate_fastest),
        ("mean", verify_mean, validate_mean),
    ] {
        let share = signatures_per_tx * tx_rate / raw;
        println!(
            "{label:>14}: raw verify_strict {raw:.0} sig/s; validate() {tx_rate:.0} tx/s \
             = {:.0} sig/s = {:.1} % of raw (target ≥ {:.0} %: {})",
            signatures_per_tx * tx_rate,
            share * 100.0,
            TARGET_SHARE * 100.0,
            if share >= TARGET_SHARE {
                "met"
            } else {
                "NOT met"
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = ledger
}
criterion_main!(benches);
