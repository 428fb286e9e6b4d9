//! The consensus engine's own cost, without networking:
//! * `engine/verdicts`: `Votes` responses of 64 txids (no finality vote, so no
//!   signature checks) into an engine with 4,096 txs in flight across 20
//!   validators, including the polls each completion starts. Throughput is
//!   per-txid verdicts.
//! * `finality/verify_proof`: a proof with 14 of 20 equal-weight votes (the
//!   ⌈0.67·20⌉ minimum), all signatures checked.
//!
//! Run: `cargo bench --bench consensus`

#[path = "../tests/consensus_support/mod.rs"]
mod consensus_support;

use consensus_support::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};
use timecoin::consensus::{ConsensusMessage, Engine, NodeId, Output, SnowballParams, Verdict};
use timecoin::finality::verify_proof;
use timecoin::time::Timestamp;

const TXS_IN_FLIGHT: usize = 4_096;
const VALIDATORS: usize = 20;

/// Answers the engine's queries with `Valid` one `Votes` response at a time;
/// `beta` is out of reach so every tx keeps being polled.
fn verdicts(c: &mut Criterion) {
    let params = SnowballParams {
        beta: u32::MAX,
        ..devnet_params()
    };
    let (_, set) = validator_set(&[10; VALIDATORS]);
    let wallet = Wallet::funded(TXS_IN_FLIGHT);
    let now = Timestamp(1_000_000);
    let mut engine = Engine::new(engine_config(params, 1), set, None, now);
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
                    finality_vote: None,
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
        b.iter(|| assert_eq!(verify_proof(&proof, CHAIN, |_| Some(&set)), Ok(txid)))
    });
    group.finish();
}

criterion_group!(benches, verdicts, proof_verification);
criterion_main!(benches);
