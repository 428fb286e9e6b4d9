//! The simulated users: transactions spending genesis outputs owned by keys
//! the workload controls, submitted to honest nodes at a steady virtual rate,
//! with a chosen share of them double-spend pairs whose two sides reach two
//! different nodes at the same virtual instant.
//!
//! Pure generation: it decides what is submitted where and when, and never
//! looks at what the engines do with it.

use super::rng::{below, PPM};
use crate::crypto::Keypair;
use crate::ledger::ValidationParams;
use crate::types::{Address, Amount, Hash, OutPoint, Tx, TxOut};
use crate::wallet::{build_transfer, Spendable};
use rand_chacha::ChaCha20Rng;

/// Every genesis output the workload spends holds this much.
pub const OUTPUT_VALUE: Amount = Amount(10 * crate::types::amount::UNITS_PER_TIME);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Transactions submitted in total, both sides of every pair included.
    pub txs: usize,
    /// Share of `txs` that are one side of a double-spend pair, in ppm.
    pub conflict_ppm: u32,
    /// Submission slots per virtual second (a pair shares one slot).
    pub rate_per_sec: u64,
    pub start_ms: u64,
    /// Distinct keys owning the genesis outputs.
    pub wallets: usize,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            txs: 40,
            conflict_ppm: 0,
            rate_per_sec: 100,
            start_ms: 100,
            wallets: 4,
        }
    }
}

/// One transaction handed to one node's `handle_submit` at `at_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub at_ms: u64,
    pub node: usize,
    pub tx: Tx,
    /// `Some(genesis output index)` when this is one side of a double spend.
    pub double_spends: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Workload {
    /// The pseudo-transaction whose outputs are the genesis allocations.
    pub genesis_txid: Hash,
    pub allocations: Vec<TxOut>,
    /// Ordered by `at_ms`.
    pub submissions: Vec<Submission>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("the workload needs at least one honest node to submit to")]
    NoHonestNode,
    #[error("rate_per_sec must be at least 1")]
    ZeroRate,
    #[error("wallets must be at least 1")]
    NoWallets,
    #[error("min_fee {0} leaves nothing of a {OUTPUT_VALUE} genesis output to pay")]
    FeeTooHigh(Amount),
    #[error("building a workload transaction failed: {0}")]
    Build(#[from] crate::wallet::BuildError),
}

impl Workload {
    /// Expands `config` into genesis outputs and submissions to `honest_nodes`.
    pub fn generate(
        config: &WorkloadConfig,
        params: &ValidationParams,
        honest_nodes: &[usize],
        rng: &mut ChaCha20Rng,
    ) -> Result<Workload, WorkloadError> {
        if honest_nodes.is_empty() {
            return Err(WorkloadError::NoHonestNode);
        }
        if config.rate_per_sec == 0 {
            return Err(WorkloadError::ZeroRate);
        }
        if config.wallets == 0 {
            return Err(WorkloadError::NoWallets);
        }
        let payment = OUTPUT_VALUE
            .checked_sub(params.min_fee)
            .filter(|p| *p > Amount::ZERO)
            .ok_or(WorkloadError::FeeTooHigh(params.min_fee))?;
        let wallets: Vec<Keypair> = (0..config.wallets)
            .map(|w| Keypair::from_seed_label(&format!("timecoin sim wallet {w}")))
            .collect();
        let pairs = (config.txs as u64 * u64::from(config.conflict_ppm) / u64::from(PPM) / 2)
            .min(config.txs as u64 / 2);
        let slots = config.txs as u64 - pairs;
        let genesis_txid = Hash::digest(b"timecoin sim genesis");
        let mut allocations = Vec::new();
        let mut submissions = Vec::new();
        let mut pairs_left = pairs;
        for slot in 0..slots {
            let key = &wallets[slot as usize % wallets.len()];
            allocations.push(TxOut {
                value: OUTPUT_VALUE,
                address: Address::from_pubkey(&key.public()),
            });
            let spendable = Spendable {
                outpoint: OutPoint {
                    txid: genesis_txid,
                    vout: slot as u32,
                },
                value: OUTPUT_VALUE,
                key,
            };
            let at_ms = config.start_ms + slot * 1000 / config.rate_per_sec;
            // Selection sampling: exactly `pairs` of the slots are pairs.
            let is_pair = below(rng, slots - slot) < pairs_left;
            let sides = if is_pair { 2 } else { 1 };
            pairs_left -= u64::from(is_pair);
            let first_node = below(rng, honest_nodes.len() as u64) as usize;
            for side in 0..sides {
                let tx = build_transfer(
                    std::slice::from_ref(&spendable),
                    &[TxOut {
                        value: payment,
                        address: recipient(slot, side),
                    }],
                    params.min_fee,
                    Address::from_pubkey(&key.public()),
                    params.chain_id,
                )?;
                let node = honest_nodes[(first_node + side as usize) % honest_nodes.len()];
                submissions.push(Submission {
                    at_ms,
                    node,
                    tx,
                    double_spends: is_pair.then_some(slot as u32),
                });
            }
        }
        Ok(Workload {
            genesis_txid,
            allocations,
            submissions,
        })
    }
}

/// A payee nobody in the simulation holds a key for.
fn recipient(slot: u64, side: u32) -> Address {
    let h = Hash::digest(&[&slot.to_le_bytes()[..], &side.to_le_bytes()[..]].concat());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{validate, MemUtxoSet};
    use crate::sim::rng::concern_rng;
    use crate::types::{ChainId, OutPoint};

    fn params() -> ValidationParams {
        ValidationParams {
            chain_id: ChainId(3),
            min_fee: Amount(100_000),
            max_tx_bytes: 16_384,
        }
    }

    fn generate(config: &WorkloadConfig) -> Workload {
        Workload::generate(config, &params(), &[1, 2, 3], &mut concern_rng(9, "w")).unwrap()
    }

    #[test]
    fn every_submission_is_valid_against_genesis() {
        let w = generate(&WorkloadConfig {
            txs: 30,
            conflict_ppm: 400_000,
            ..WorkloadConfig::default()
        });
        let mut utxos = MemUtxoSet::default();
        utxos.add_outputs(w.genesis_txid, &w.allocations);
        assert_eq!(w.submissions.len(), 30);
        for s in &w.submissions {
            validate(&s.tx, &utxos, &params()).unwrap();
            assert!([1, 2, 3].contains(&s.node));
        }
    }

    #[test]
    fn pairs_double_spend_one_outpoint_from_two_nodes_at_once() {
        let w = generate(&WorkloadConfig {
            txs: 40,
            conflict_ppm: 500_000,
            ..WorkloadConfig::default()
        });
        let pairs: Vec<&Submission> = w
            .submissions
            .iter()
            .filter(|s| s.double_spends.is_some())
            .collect();
        assert_eq!(pairs.len(), 20);
        for two in pairs.chunks(2) {
            let (a, b) = (two[0], two[1]);
            assert_eq!(a.double_spends, b.double_spends);
            assert_eq!(a.tx.inputs[0].prev, b.tx.inputs[0].prev);
            assert_ne!(a.tx.txid(), b.tx.txid());
            assert_ne!(a.node, b.node);
            assert_eq!(a.at_ms, b.at_ms);
        }
        let outpoints: std::collections::BTreeSet<OutPoint> = w
            .submissions
            .iter()
            .filter(|s| s.double_spends.is_none())
            .map(|s| s.tx.inputs[0].prev)
            .collect();
        assert_eq!(outpoints.len(), 20, "singles spend distinct outputs");
    }
}
