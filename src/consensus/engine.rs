//! The consensus engine. Placeholder bodies; API stable.

use super::messages::{ConsensusMessage, NodeId, Output, TxStatusReport};
use super::params::SnowballParams;
use crate::config::ChainSpec;
use crate::crypto::Keypair;
use crate::finality::ValidatorSet;
use crate::ledger::{TxError, UtxoView, ValidationParams};
use crate::mempool::MempoolError;
use crate::time::Timestamp;
use crate::types::{Hash, OutPoint, Tx};
use std::collections::VecDeque;

/// Caps on everything a peer can make the engine remember.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineLimits {
    /// Polls in flight over all transactions.
    pub max_outstanding_polls: usize,
    pub max_orphans: usize,
    pub max_orphans_per_peer: usize,
    /// Transactions being fetched (`GetTxs`) after answering `Unknown`.
    pub max_fetches: usize,
    pub max_fetches_per_peer: usize,
    /// Competing spends of one outpoint held in the mempool.
    pub max_conflicts_per_outpoint: usize,
    /// Settled txids remembered (answers after they leave the mempool).
    pub settled_txs: usize,
    /// Proof txids remembered so a proof is relayed once.
    pub seen_proofs: usize,
    /// Verified finality votes remembered so each signature is checked once.
    pub verified_votes: usize,
}

impl Default for EngineLimits {
    fn default() -> EngineLimits {
        EngineLimits {
            max_outstanding_polls: 65_536,
            max_orphans: 1_024,
            max_orphans_per_peer: 64,
            max_fetches: 8_192,
            max_fetches_per_peer: 512,
            max_conflicts_per_outpoint: 8,
            settled_txs: 200_000,
            seen_proofs: 200_000,
            verified_votes: 65_536,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub validation: ValidationParams,
    pub snowball: SnowballParams,
    pub limits: EngineLimits,
    /// Length of a slot: finality votes name the slot of their snapshot.
    pub slot_duration_ms: u64,
    /// Seeds the sampling RNG: the same seed and inputs give the same outputs.
    pub rng_seed: u64,
}

impl EngineConfig {
    pub fn from_spec(spec: &ChainSpec, rng_seed: u64) -> EngineConfig {
        EngineConfig {
            validation: spec.validation_params(),
            snowball: SnowballParams::from(&spec.config.consensus),
            limits: EngineLimits::default(),
            slot_duration_ms: spec
                .config
                .ledger
                .block_interval_secs
                .saturating_mul(1000)
                .max(1),
            rng_seed,
        }
    }
}

/// Counters for operators and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineMetrics {
    pub txs_admitted: u64,
    pub txs_refused: u64,
    pub polls_started: u64,
    pub polls_succeeded: u64,
    pub polls_failed: u64,
    pub queries_sent: u64,
    pub queries_answered: u64,
    /// Per-txid verdicts received and counted.
    pub verdicts_processed: u64,
    /// `Votes` for a request id the sender was not asked (or was asked, but too late).
    pub votes_dropped: u64,
    pub finality_votes_signed: u64,
    /// ed25519 verifications of finality votes (each vote at most once).
    pub signatures_verified: u64,
    pub bad_finality_votes: u64,
    pub proofs_assembled: u64,
    pub proofs_received: u64,
    pub proofs_invalid: u64,
    pub fetches_sent: u64,
    pub fetches_refused: u64,
    pub messages_oversized: u64,
    pub safety_violations: u64,
}

/// Why a locally submitted transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxError),
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    #[error("outpoint {outpoint} is locked by pending transaction {by}; wait until it finalizes or expires")]
    OutpointLocked { outpoint: OutPoint, by: Hash },
    #[error("outpoint {outpoint} is already decided for transaction {winner}")]
    ConflictDecided { outpoint: OutPoint, winner: Hash },
    #[error("transaction {0} was rejected by the network")]
    Rejected(Hash),
    #[error("transaction {0} is already finalized")]
    AlreadyFinalized(Hash),
}

/// The sans-IO Snowball engine of one node.
pub struct Engine {
    config: EngineConfig,
    validators: ValidatorSet,
    identity: Option<Keypair>,
    outputs: VecDeque<Output>,
    metrics: EngineMetrics,
    last_now: Timestamp,
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        validators: ValidatorSet,
        identity: Option<Keypair>,
        now: Timestamp,
    ) -> Engine {
        Engine {
            config,
            validators,
            identity,
            outputs: VecDeque::new(),
            metrics: EngineMetrics::default(),
            last_now: now,
        }
    }

    pub fn handle_submit(
        &mut self,
        now: Timestamp,
        tx: Tx,
        view: &impl UtxoView,
    ) -> Result<Hash, SubmitError> {
        let _ = (now, view, &self.config, &self.validators, &self.identity);
        Ok(tx.txid())
    }

    pub fn handle_message(
        &mut self,
        now: Timestamp,
        from: NodeId,
        msg: ConsensusMessage,
        view: &impl UtxoView,
    ) {
        let _ = (now, from, msg, view);
    }

    pub fn handle_timeout(&mut self, now: Timestamp, view: &impl UtxoView) {
        let _ = (now, view);
    }

    pub fn handle_durable(&mut self, now: Timestamp, txids: &[Hash]) {
        let _ = (now, txids);
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let _ = self.last_now;
        None
    }

    pub fn tx_status(&self, txid: &Hash) -> Option<TxStatusReport> {
        let _ = txid;
        None
    }

    pub fn metrics(&self) -> &EngineMetrics {
        &self.metrics
    }
}
