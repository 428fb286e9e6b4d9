//! The consensus engine's own cost, without networking:
//! * `engine/verdicts`: `Votes` responses of 64 txids (no finality vote, so no
//!   signature checks) into an engine with 4,096 txs in flight across 20
//!   validators, including the polls each completion starts. Throughput is
//!   per-txid verdicts. The engine is one of the validators (only they poll).
//! * `finality/window_vote_256`: one validator's window vote of 256 txids
//!   into an observer holding those txs: shape, root, one signature, and a
//!   Merkle path credited per txid. Throughput is txids.
//! * `finality/verify_proof`: a proof with 14 of 20 equal-weight votes (the
//!   ⌈0.67·20⌉ minimum), all signatures checked.
//!
//! Run: `cargo bench --bench consensus`
#![allow(clippy::disallowed_methods)] // benchmarks measure wall-clock time

#[path = "../tests/consensus_support/mod.rs"]
mod consensus_support;

use consensus_support::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timecoin::consensus::{ConsensusMessage, Engine, NodeId, Output, SnowballParams, Verdict};
use timecoin::finality::{verify_proof, WindowVote};
use timecoin::time::MonoTime;

const TXS_IN_FLIGHT: usize = 4_096;
const VALIDATORS: usize = 20;

/// Answers the engine's queries with `Valid` one `Votes` response at a time;
/// `beta` is out of reach so every tx keeps being polled.
fn verdicts(c: &mut Criterion) {
    let params = SnowballParams {
        beta: u32::MAX,
        ..devnet_params()
    };
    let (keys, set) = validator_set(&[10; VALIDATORS]);
    let wallet = Wallet::funded(TXS_IN_FLIGHT);
    let now = MonoTime(1_000_000);
    let me = keys.first().cloned();
    let mut engine = Engine::new(engine_config(params, 1), set, me, now);
    for i in 0..TXS_IN_FLIGHT {
        engine
            .handle_submit(now, wallet.pay(i, "payee"), &wallet.utxos)
            .unwrap();
    }
    let mut responses: Vec<(NodeId, ConsensusMessage)> = Vec::new();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(params.max_txs_per_query as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("verdicts", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                if responses.is_empty() {
                    let start = Instant::now();
                    engine.handle_timeout(now, &wallet.utxos);
                    elapsed += start.elapsed();
                    responses = answers(drain(&mut engine));
                    assert!(!responses.is_empty(), "the engine keeps polling");
                }
                let (from, msg) = responses.pop().unwrap();
                let start = Instant::now();
                engine.handle_message(now, from, msg, &wallet.utxos);
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    group.finish();
    let m = engine.metrics();
    assert_eq!(m.signatures_verified, 0);
    assert!(m.verdicts_processed > 0);
}

/// A `Valid` response for each query in `outputs`.
fn answers(outputs: Vec<Output>) -> Vec<(NodeId, ConsensusMessage)> {
    outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg:
                    ConsensusMessage::Query {
                        request_id, txids, ..
                    },
            } => Some((
                to,
                ConsensusMessage::Votes {
                    request_id,
                    verdicts: txids.into_iter().map(|t| (t, Verdict::Valid)).collect(),
                },
            )),
            _ => None,
        })
        .collect()
}

fn proof_verification(c: &mut Criterion) {
    let (keys, set) = validator_set(&[1; VALIDATORS]);
    let tx = Wallet::funded(1).pay(0, "payee");
    let need = set.required_weight() as usize;
    let others: Vec<_> = (0..63u32)
        .map(|i| timecoin::types::Hash::digest(&i.to_le_bytes()))
        .collect();
    let proof = signed_proof(&tx, &keys[..need], 1, &others);
    let txid = tx.txid();
    let mut group = c.benchmark_group("finality");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("verify_proof_14_of_20", |b| {
        b.iter(|| {
            assert_eq!(
                verify_proof(&proof, CHAIN, GENESIS, |_| Some(&set)),
                Ok(txid)
            )
        })
    });
    group.finish();
}

const WINDOW_TXS: usize = 256;

/// A fresh observer per window (so every vote is new), holding the txs.
fn window_vote(c: &mut Criterion) {
    let (keys, set) = validator_set(&[1; VALIDATORS]);
    let wallet = Wallet::funded(WINDOW_TXS);
    let now = MonoTime(1_000_000);
    let txs: Vec<_> = (0..WINDOW_TXS).map(|i| wallet.pay(i, "payee")).collect();
    let txids: Vec<_> = txs.iter().map(|tx| tx.txid()).collect();
    let mut group = c.benchmark_group("finality");
    group.throughput(Throughput::Elements(WINDOW_TXS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("window_vote_256", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for i in 0..iters {
                let config = engine_config(devnet_params(), 1);
                let mut engine = Engine::new(config, set.clone(), None, now);
                for tx in &txs {
                    engine
                        .handle_submit(now, tx.clone(), &wallet.utxos)
                        .unwrap();
                }
                drain(&mut engine);
                let window = WindowVote::sign(&keys[1], scope(0), i, txids.clone());
                let msg = ConsensusMessage::WindowVote(Arc::new(window));
                let start = Instant::now();
                engine.handle_message(now, keys[1].public(), msg, &wallet.utxos);
                elapsed += start.elapsed();
                assert_eq!(engine.tx_status(&txids[0]).unwrap().proof_weight, 1);
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, verdicts, proof_verification, window_vote);
criterion_main!(benches);
