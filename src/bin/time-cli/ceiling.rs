//! The machine's ceiling for a bench run, measured right after the load on
//! the same host: (a) CPU, every core running batched ed25519 verification,
//! divided by the signatures the nodes verified per finalized tx; (b) disk,
//! the raw durable LMDB put rate divided by the puts the nodes committed per
//! finalized tx. The lower one binds; the run's finalized tx/s is reported
//! as a share of it. Both divisors come from the nodes' own `/metrics`.
//!
//! The micro-benchmarks run after the load so they never steal its CPU,
//! best of three rounds each, and they use only this process and a scratch
//! directory it deletes.

use crate::bench::now as clock;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use lmdb::{DatabaseFlags, Environment, Transaction, WriteFlags};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Signatures per `verify_batch` call: where dalek's batch gain levels off.
const VERIFY_BATCH: usize = 64;
/// Puts per durable commit in the disk probe: the ledger commits in
/// batches, so the probe does too.
const PUTS_PER_COMMIT: usize = 1_000;
/// How long each probe round runs.
const PROBE: Duration = Duration::from_secs(2);
/// Rounds of each probe; the best one counts. Right after the load the
/// kernel may still be writing the nodes' pages back, and neighbours on a
/// shared host come and go: a ceiling is what the machine can do, so the
/// fastest round is the estimate.
const PROBE_ROUNDS: usize = 3;
/// Value size of the disk probe (keys are 32-byte hashes, like txids).
const VALUE_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CeilingError {
    #[error("cannot use {dir} for the disk probe: {source}")]
    ScratchDir { dir: String, source: std::io::Error },
    #[error("disk probe (LMDB in {dir}): {source}")]
    Lmdb { dir: String, source: lmdb::Error },
    #[error("batched signature verification failed on freshly signed data")]
    Verify,
}

/// What the nodes spent per finalized transaction (sums over all nodes).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CostPerTx {
    pub signatures: f64,
    pub puts: f64,
}

#[derive(Serialize)]
pub struct Ceiling {
    pub cores: usize,
    pub batched_verify_per_core_per_sec: f64,
    pub durable_puts_per_sec: f64,
    pub cost_per_tx: CostPerTx,
    pub cpu_tx_per_sec: f64,
    pub disk_tx_per_sec: f64,
    /// `"cpu"` or `"disk"`: the lower of the two.
    pub binding: &'static str,
    pub ceiling_tx_per_sec: f64,
    /// The run's finalized tx/s as a percentage of the ceiling.
    pub reached_percent: f64,
}

/// Measures both probes and relates `finalized_per_sec` to the ceiling.
pub fn measure(
    scratch_parent: &Path,
    cost: CostPerTx,
    finalized_per_sec: f64,
) -> Result<Ceiling, CeilingError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let verify = best_of(batched_verify_rate)?;
    let puts = best_of(|| durable_put_rate(scratch_parent))?;
    let cpu_tx_per_sec = cores as f64 * verify / cost.signatures.max(f64::EPSILON);
    let disk_tx_per_sec = puts / cost.puts.max(f64::EPSILON);
    let (binding, ceiling) = if cpu_tx_per_sec <= disk_tx_per_sec {
        ("cpu", cpu_tx_per_sec)
    } else {
        ("disk", disk_tx_per_sec)
    };
    Ok(Ceiling {
        cores,
        batched_verify_per_core_per_sec: verify,
        durable_puts_per_sec: puts,
        cost_per_tx: cost,
        cpu_tx_per_sec,
        disk_tx_per_sec,
        binding,
        ceiling_tx_per_sec: ceiling,
        reached_percent: 100.0 * finalized_per_sec / ceiling.max(f64::EPSILON),
    })
}

/// The best of [`PROBE_ROUNDS`] rounds of `probe`.
fn best_of(mut probe: impl FnMut() -> Result<f64, CeilingError>) -> Result<f64, CeilingError> {
    let mut best = 0.0_f64;
    for _ in 0..PROBE_ROUNDS {
        best = best.max(probe()?);
    }
    Ok(best)
}

/// Signatures per second one core verifies in batches of [`VERIFY_BATCH`].
fn batched_verify_rate() -> Result<f64, CeilingError> {
    let messages: Vec<[u8; 32]> = (0..VERIFY_BATCH)
        .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
        .collect();
    let keys: Vec<SigningKey> = messages.iter().map(SigningKey::from_bytes).collect();
    let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let publics: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    let slices: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    let started = clock();
    let mut verified = 0usize;
    while started.elapsed() < PROBE {
        ed25519_dalek::verify_batch(&slices, &signatures, &publics)
            .map_err(|_| CeilingError::Verify)?;
        verified += VERIFY_BATCH;
    }
    Ok(verified as f64 / started.elapsed().as_secs_f64())
}

/// Random puts per second into a fresh LMDB environment, each commit durable
/// (fsync), [`PUTS_PER_COMMIT`] puts per commit.
fn durable_put_rate(parent: &Path) -> Result<f64, CeilingError> {
    let dir = parent.join(format!(".ceiling-probe-{}", std::process::id()));
    let shown = dir.display().to_string();
    let scratch = |source| CeilingError::ScratchDir {
        dir: shown.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(scratch)?;
    let result = put_loop(&dir).map_err(|source| CeilingError::Lmdb {
        dir: shown.clone(),
        source,
    });
    std::fs::remove_dir_all(&dir).map_err(scratch)?;
    result
}

fn put_loop(dir: &Path) -> Result<f64, lmdb::Error> {
    let env = Environment::new().set_map_size(1 << 30).open(dir)?;
    let db = env.create_db(None, DatabaseFlags::empty())?;
    let value = [7u8; VALUE_BYTES];
    let mut seed = blake3::hash(b"ceiling probe");
    let started = clock();
    let mut puts = 0usize;
    while started.elapsed() < PROBE {
        let mut txn = env.begin_rw_txn()?;
        for _ in 0..PUTS_PER_COMMIT {
            seed = blake3::hash(seed.as_bytes());
            txn.put(db, seed.as_bytes(), &value, WriteFlags::empty())?;
        }
        txn.commit()?;
        puts += PUTS_PER_COMMIT;
    }
    Ok(puts as f64 / started.elapsed().as_secs_f64())
}
