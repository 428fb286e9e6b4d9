//! The consensus engine of one node, quinn-style: `handle_submit`,
//! `handle_message`, `handle_timeout`, `handle_durable`,
//! `handle_acceptance_durable` take input with `now`; `poll_output` and
//! `poll_timeout` say what to send and when to call back. It owns the
//! mempool, every poll, vote collection and proof assembly.
//!
//! It must never finalize on a timer or on local knowledge: a transaction is
//! finalized only by a proof whose weight, read from the `ValidatorSet`
//! snapshot, reaches `ceil(0.67 · total)`. It must never sign a finality
//! vote for a transaction whose local acceptance (or finalization) the
//! driver has not yet made durable, so a crash cannot make it forget what
//! it signed and sign a conflict (slashing protection). No clocks, sockets,
//! threads or global RNG; a seed and the same inputs replay the same outputs.

use super::fetches::Fetches;
use super::messages::{
    ConsensusMessage, Event, NodeId, Output, RejectReason, TxStatusReport, Verdict,
};
use super::params::{SampleSize, SnowballParams};
use super::polls::{Poll, PollSlots, Polls, Request};
use super::sampler::{Drawn, Sampler};
use super::snowball::{self, PollEffect, SnowballState};
use super::vote_cache::VerifiedVotes;
use crate::config::ChainSpec;
use crate::crypto::merkle::MerkleTree;
use crate::crypto::Keypair;
use crate::finality::{
    verify_proof_with, FinalityProof, FinalityVote, ProofBuilder, ValidatorSet, VoteAdded,
};
use crate::ledger::{check_structure, validate, TxError, UtxoView, ValidTx, ValidationParams};
use crate::mempool::{Mempool, MempoolError, OrphanPool, OverlayView, RecentMap, TxStatus};
use crate::time::Timestamp;
use crate::types::{Hash, OutPoint, Tx};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{BTreeSet, VecDeque};

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
    /// Poll queries (and, apart, vote requests) in flight to one validator
    /// before further ones wait for an answer, and then go together.
    pub poll_queries_in_flight: u32,
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
            settled_txs: 65_536,
            seen_proofs: 16_384,
            verified_votes: 16_384,
            poll_queries_in_flight: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub validation: ValidationParams,
    pub snowball: SnowballParams,
    pub limits: EngineLimits,
    /// Length of a slot: finality votes name the slot of their snapshot.
    /// The engine holds one snapshot, used for every slot, until validator
    /// registration (DESIGN §7 "Later") brings a snapshot per slot.
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
    /// Conflict sets whose counters restarted after every member stalled.
    pub stuck_conflicts_restarted: u64,
    pub queries_sent: u64,
    pub queries_answered: u64,
    /// Per-txid verdicts received and counted.
    pub verdicts_processed: u64,
    /// `Votes` for a request id the sender was not asked (or was asked, but too late).
    pub votes_dropped: u64,
    pub finality_votes_signed: u64,
    /// ed25519 verifications of finality votes (each vote at most once).
    pub signatures_verified: u64,
    /// ed25519 verifications of transaction inputs (one per input of every
    /// tx that reached the signature check).
    pub tx_signatures_verified: u64,
    pub bad_finality_votes: u64,
    pub proofs_assembled: u64,
    pub proofs_received: u64,
    pub proofs_invalid: u64,
    pub fetches_sent: u64,
    pub fetches_refused: u64,
    /// Transactions in `Txs` that were not asked of that peer.
    pub txs_unsolicited: u64,
    /// Valid proofs whose tx does not apply here yet (e.g. unknown parent).
    pub proofs_unapplied: u64,
    /// Messages over a size limit (`max_txs_per_query`), dropped whole.
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
    #[error("transaction {0} expired here recently without reaching a quorum")]
    RecentlyExpired(Hash),
}

/// Consensus state of one transaction, carried in its mempool entry.
#[derive(Clone, Debug, Default)]
struct TxState {
    snowball: SnowballState,
    polls_outstanding: u32,
    /// When its next poll is due (its key in `poll_schedule`).
    next_poll_at: Option<Timestamp>,
    /// When its next vote-collection round is due (its key in `vote_schedule`).
    next_vote_round_at: Option<Timestamp>,
    /// Votes collected since local acceptance.
    proof: Option<ProofBuilder>,
    /// The driver recorded our acceptance durably: our vote may cover it.
    acceptance_durable: bool,
    locally_accepted_at: Option<Timestamp>,
    finalized_at: Option<Timestamp>,
}

/// The sans-IO Snowball engine of one node.
///
/// Driver loop: feed input with `handle_submit`/`handle_message`/
/// `handle_durable`/`handle_acceptance_durable`; whenever `poll_timeout()`
/// is at or before `now`, call `handle_timeout(now)`; send everything
/// `poll_output()` yields. At start, `restore_accepted` what the vote-safety
/// record holds before resubmitting pending transactions.
pub struct Engine {
    config: EngineConfig,
    sample_size: SampleSize,
    validators: ValidatorSet,
    sampler: Sampler,
    rng: ChaCha20Rng,
    /// Our key, only if it is a member of the validator set (then we answer
    /// our own samples inline and sign finality votes).
    signer: Option<Keypair>,
    mempool: Mempool<TxState>,
    orphans: OrphanPool,
    polls: Polls,
    fetches: Fetches,
    poll_schedule: BTreeSet<(Timestamp, Hash)>,
    vote_schedule: BTreeSet<(Timestamp, Hash)>,
    seen_proofs: RecentMap<Hash, ()>,
    verified_votes: VerifiedVotes,
    /// Set by a safety violation: nothing is finalized or signed any more.
    halted: bool,
    outputs: VecDeque<Output>,
    metrics: EngineMetrics,
    sample_scratch: Vec<Drawn>,
}

/// Where an admitted transaction came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The local wallet or RPC: may not spend a locked outpoint.
    Local,
    /// A peer's gossip or fetch answer: may join a conflict set, may be orphaned.
    Peer(NodeId),
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        validators: ValidatorSet,
        identity: Option<Keypair>,
        _now: Timestamp,
    ) -> Engine {
        let params = config.snowball;
        let limits = config.limits;
        let weights: Vec<u64> = validators.validators().iter().map(|v| v.weight).collect();
        let sample_size = params.sample_size(validators.len());
        Engine {
            sample_size,
            sampler: Sampler::new(&weights, sample_size.k),
            rng: ChaCha20Rng::seed_from_u64(config.rng_seed),
            signer: identity.filter(|k| validators.contains(&k.public())),
            mempool: Mempool::new(
                params.mempool_max_txs as usize,
                limits.max_conflicts_per_outpoint,
                limits.settled_txs,
            ),
            orphans: OrphanPool::new(limits.max_orphans, limits.max_orphans_per_peer),
            polls: Polls::default(),
            fetches: Fetches::new(limits.max_fetches, limits.max_fetches_per_peer),
            poll_schedule: BTreeSet::new(),
            vote_schedule: BTreeSet::new(),
            seen_proofs: RecentMap::new(limits.seen_proofs),
            verified_votes: VerifiedVotes::new(limits.verified_votes),
            halted: false,
            outputs: VecDeque::new(),
            metrics: EngineMetrics::default(),
            sample_scratch: Vec::new(),
            validators,
            config,
        }
    }

    /// A transaction from the local wallet or RPC. Unlike gossip, it may not
    /// spend an outpoint a pending transaction already locks.
    pub fn handle_submit(
        &mut self,
        now: Timestamp,
        tx: Tx,
        view: &impl UtxoView,
    ) -> Result<Hash, SubmitError> {
        self.admit(now, tx, Origin::Local, view)
    }

    pub fn handle_message(
        &mut self,
        now: Timestamp,
        from: NodeId,
        msg: ConsensusMessage,
        view: &impl UtxoView,
    ) {
        match msg {
            ConsensusMessage::Tx(tx) => {
                // Refusals of peers' transactions are counted, not reported.
                let _ = self.admit(now, tx, Origin::Peer(from), view);
            }
            ConsensusMessage::GetTxs { txids } => self.on_get_txs(from, &txids),
            ConsensusMessage::Txs { txs } => self.on_txs(now, from, txs, view),
            ConsensusMessage::Query {
                request_id,
                txids,
                want_votes,
            } => self.on_query(now, from, request_id, &txids, want_votes),
            ConsensusMessage::Votes {
                request_id,
                verdicts,
                finality_vote,
            } => self.on_votes(now, from, request_id, &verdicts, finality_vote, view),
            ConsensusMessage::Proof(proof) => self.on_proof(now, from, proof, view),
        }
    }

    /// Runs everything due at `now`: request deadlines (missing answers
    /// count as not `Valid`), fetch and orphan deadlines, mempool expiry, and
    /// then every poll and vote round due. Polls start only here, so all
    /// txids due at one instant (e.g. after a burst of input) share one
    /// `Query` per validator: call it whenever `poll_timeout() <= now`.
    pub fn handle_timeout(&mut self, now: Timestamp, view: &impl UtxoView) {
        while let Some(request) = self.polls.take_expired(now) {
            for poll in request.polls {
                if let Some(done) = self.polls.record(poll, None) {
                    self.complete_poll(now, done);
                }
            }
        }
        self.fetches.expire(now);
        self.orphans.expire(now);
        while let Some(txid) = self.mempool.pop_expired(now) {
            if let Some(entry) = self.mempool.remove(&txid, TxStatus::Expired) {
                self.unschedule(&txid, &entry.state);
                self.emit(Event::Expired { txid });
            }
        }
        self.start_due_work(now, view);
    }

    /// The ledger committed these finalized transactions: the UTXO view
    /// passed from now on shows them, so the overlay forgets them.
    pub fn handle_durable(&mut self, _now: Timestamp, txids: &[Hash]) {
        for txid in txids {
            let Some(tx) = self.mempool.get(txid).map(|e| e.tx.clone()) else {
                self.mempool.remember(*txid, TxStatus::Finalized);
                continue;
            };
            // Committed by the ledger (with its proof): whatever we thought, it is final.
            for loser in self.mempool.conflicts_of(txid, &tx) {
                self.reject(loser, RejectReason::ConflictFinalized { winner: *txid });
            }
            if let Some(entry) = self.mempool.remove(txid, TxStatus::Finalized) {
                self.unschedule(txid, &entry.state);
            }
        }
    }

    /// The driver recorded these local acceptances durably (the vote-safety
    /// record): our finality vote may cover them from now on, and we cast
    /// it for our own proofs at once.
    pub fn handle_acceptance_durable(
        &mut self,
        now: Timestamp,
        txids: &[Hash],
        view: &impl UtxoView,
    ) {
        let me = self.signer.as_ref().map(Keypair::public);
        let mut own_vote_due = Vec::new();
        for txid in txids {
            let Some(entry) = self.mempool.get_mut(txid) else {
                continue;
            };
            if !matches!(
                entry.status,
                TxStatus::LocallyAccepted | TxStatus::Finalized
            ) {
                continue;
            }
            entry.state.acceptance_durable = true;
            let wants_our_vote = entry.state.proof.as_ref().is_some_and(|b| {
                !b.is_complete() && me.is_some_and(|me| !b.has_voted(&self.validators, &me))
            });
            if wants_our_vote {
                own_vote_due.push(*txid);
            }
        }
        self.vote_own(now, own_vote_due, view);
    }

    /// Brings back a transaction this node had locally accepted before a
    /// restart, from the driver's vote-safety record: it is
    /// `LocallyAccepted` again at once (never `Sampling`), pending conflicts
    /// are rejected and later ones refused, so our vote can only ever cover
    /// it; it collects votes until its proof completes. Call it before
    /// reloading pending transactions.
    pub fn restore_accepted(
        &mut self,
        now: Timestamp,
        tx: Tx,
        view: &impl UtxoView,
    ) -> Result<Hash, SubmitError> {
        let txid = tx.txid();
        // The record wins over anything pending: we may have signed it.
        for loser in self.mempool.conflicts_of(&txid, &tx) {
            self.reject(loser, RejectReason::ConflictAccepted { winner: txid });
        }
        self.admit(now, tx, Origin::Local, view)?;
        if self.mempool.get(&txid).map(|e| e.status) == Some(TxStatus::Sampling) {
            self.accept(now, txid);
        }
        self.handle_acceptance_durable(now, &[txid], view);
        Ok(txid)
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` must be called next (possibly already past:
    /// then call it at once). `None`: nothing is pending.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let poll_due = (self.polls.outstanding_polls() < self.config.limits.max_outstanding_polls)
            .then(|| self.poll_schedule.first().map(|(at, _)| *at))
            .flatten();
        // Held poll slots whose validator answered may go at once.
        let released = self.polls.has_releasable().then_some(Timestamp(0));
        [
            poll_due,
            released,
            self.vote_schedule.first().map(|(at, _)| *at),
            self.polls.next_deadline(),
            self.fetches.next_deadline(),
            self.mempool.next_expiry(),
            self.orphans.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn tx_status(&self, txid: &Hash) -> Option<TxStatusReport> {
        if let Some(entry) = self.mempool.get(txid) {
            let s = &entry.state;
            return Some(TxStatusReport {
                status: entry.status,
                durable: false,
                confidence: s.snowball.confidence,
                counter: s.snowball.counter,
                polls_completed: s.snowball.polls_completed,
                polls_outstanding: s.polls_outstanding,
                proof_weight: s.proof.as_ref().map_or(0, ProofBuilder::weight),
                proof_needed: self.validators.required_weight(),
                first_seen: Some(entry.first_seen),
                locally_accepted_at: s.locally_accepted_at,
                finalized_at: s.finalized_at,
                expires_at: entry.expires_at,
            });
        }
        let status = if self.orphans.contains(txid) {
            TxStatus::Seen
        } else {
            self.mempool.settled(txid)?
        };
        Some(TxStatusReport {
            status,
            durable: status == TxStatus::Finalized,
            confidence: 0,
            counter: 0,
            polls_completed: 0,
            polls_outstanding: 0,
            proof_weight: 0,
            proof_needed: self.validators.required_weight(),
            first_seen: None,
            locally_accepted_at: None,
            finalized_at: None,
            expires_at: None,
        })
    }

    /// Transactions held in the mempool (pending, or finalized but not yet durable).
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Txids held in the mempool, in no particular order.
    pub fn mempool_txids(&self) -> impl Iterator<Item = &Hash> {
        self.mempool.iter().map(|(txid, _)| txid)
    }

    /// A transaction held in the mempool.
    pub fn mempool_tx(&self, txid: &Hash) -> Option<&Tx> {
        self.mempool.get(txid).map(|entry| &entry.tx)
    }

    pub fn metrics(&self) -> EngineMetrics {
        EngineMetrics {
            signatures_verified: self.verified_votes.checked(),
            ..self.metrics
        }
    }

    /// Whether a safety violation stopped finalization on this node.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// `k'`/`alpha'` in use for this validator set.
    pub fn sample_size(&self) -> SampleSize {
        self.sample_size
    }

    // ---- admission ----

    /// Admits `tx` to the mempool as `Sampling`, gossips it and schedules its
    /// first poll. Cheap checks first, signatures (in `validate`) last.
    fn admit(
        &mut self,
        now: Timestamp,
        tx: Tx,
        origin: Origin,
        view: &impl UtxoView,
    ) -> Result<Hash, SubmitError> {
        let result = self.try_admit(now, tx, origin, view);
        if result.is_err() {
            self.metrics.txs_refused += 1;
        }
        result
    }

    fn try_admit(
        &mut self,
        now: Timestamp,
        tx: Tx,
        origin: Origin,
        view: &impl UtxoView,
    ) -> Result<Hash, SubmitError> {
        let params = self.config.validation;
        check_structure(&tx, &params)?;
        let txid = tx.txid();
        if self.mempool.contains(&txid) || self.orphans.contains(&txid) {
            return Ok(txid);
        }
        match self.mempool.settled(&txid) {
            Some(TxStatus::Finalized) => return Err(SubmitError::AlreadyFinalized(txid)),
            Some(TxStatus::Rejected) => return Err(SubmitError::Rejected(txid)),
            // A wallet may resubmit an expired tx; peers' echoes of it are dropped.
            Some(TxStatus::Expired) if origin != Origin::Local => {
                return Err(SubmitError::RecentlyExpired(txid))
            }
            _ => {}
        }
        for input in &tx.inputs {
            for other in self.mempool.conflict_set(&input.prev) {
                let decided = self.mempool.get(other).is_some_and(|e| {
                    matches!(e.status, TxStatus::LocallyAccepted | TxStatus::Finalized)
                });
                if decided {
                    return Err(SubmitError::ConflictDecided {
                        outpoint: input.prev,
                        winner: *other,
                    });
                }
                if origin == Origin::Local {
                    return Err(SubmitError::OutpointLocked {
                        outpoint: input.prev,
                        by: *other,
                    });
                }
            }
        }
        let overlay = OverlayView {
            pool: &self.mempool,
            base: view,
        };
        match (
            validate_counted(&mut self.metrics, &tx, &overlay, &params),
            origin,
        ) {
            (Ok(_), _) => {}
            (Err(TxError::UnknownOutpoint { outpoint, index }), Origin::Peer(from)) => {
                // Its parent may still be pending here: hold it until that finalizes.
                let expires_at = now.plus_ms(self.config.snowball.mempool_expiry_ms);
                if self
                    .orphans
                    .insert(txid, tx, from, outpoint.txid, expires_at)
                {
                    return Ok(txid);
                }
                return Err(TxError::UnknownOutpoint { index, outpoint }.into());
            }
            (Err(e), _) => return Err(e.into()),
        }
        let expires_at = now.plus_ms(self.config.snowball.mempool_expiry_ms);
        self.mempool
            .insert(txid, tx.clone(), now, expires_at, TxState::default())?;
        self.metrics.txs_admitted += 1;
        self.schedule_poll(txid, now);
        self.emit(Event::Accepted { txid });
        // Not back to the peer it came from.
        let skip = match origin {
            Origin::Local => Vec::new(),
            Origin::Peer(from) => vec![from],
        };
        self.outputs.push_back(Output::Broadcast {
            msg: ConsensusMessage::Tx(tx),
            skip,
        });
        Ok(txid)
    }

    // ---- messages ----

    fn oversized(&mut self, len: usize) -> bool {
        let over = len > self.config.snowball.max_txs_per_query as usize;
        if over {
            self.metrics.messages_oversized += 1;
        }
        over
    }

    fn on_get_txs(&mut self, from: NodeId, txids: &[Hash]) {
        if self.oversized(txids.len()) {
            return;
        }
        let txs: Vec<Tx> = txids
            .iter()
            .filter_map(|t| self.mempool.get(t).map(|e| e.tx.clone()))
            .collect();
        if !txs.is_empty() {
            self.send(from, ConsensusMessage::Txs { txs });
        }
    }

    fn on_txs(&mut self, now: Timestamp, from: NodeId, txs: Vec<Tx>, view: &impl UtxoView) {
        if self.oversized(txs.len()) {
            return;
        }
        for tx in txs {
            if self.fetches.take(&tx.txid(), &from) {
                let _ = self.admit(now, tx, Origin::Peer(from), view);
            } else {
                self.metrics.txs_unsolicited += 1;
            }
        }
    }

    fn on_query(
        &mut self,
        now: Timestamp,
        from: NodeId,
        request_id: u64,
        txids: &[Hash],
        want_votes: bool,
    ) {
        if self.oversized(txids.len()) {
            return;
        }
        let (verdicts, finality_vote) = self.answer_query(now, txids, want_votes);
        self.metrics.queries_answered += 1;
        self.fetch_unknown(now, from, &verdicts);
        self.send(
            from,
            ConsensusMessage::Votes {
                request_id,
                verdicts,
                finality_vote,
            },
        );
    }

    fn on_votes(
        &mut self,
        now: Timestamp,
        from: NodeId,
        request_id: u64,
        verdicts: &[(Hash, Verdict)],
        finality_vote: Option<FinalityVote>,
        view: &impl UtxoView,
    ) {
        if self.oversized(verdicts.len()) {
            return;
        }
        let Some(request) = self.polls.take_answered(request_id, &from) else {
            self.metrics.votes_dropped += 1;
            return;
        };
        self.apply_response(now, from, request, verdicts, finality_vote, view);
    }

    // ---- responder ----

    /// Our verdicts on `txids` and, for a vote request, our signature over
    /// the ones we answered `Valid`.
    fn answer_query(
        &mut self,
        now: Timestamp,
        txids: &[Hash],
        want_votes: bool,
    ) -> (Vec<(Hash, Verdict)>, Option<FinalityVote>) {
        let verdicts: Vec<(Hash, Verdict)> = txids
            .iter()
            .map(|t| (*t, self.local_verdict(t, want_votes)))
            .collect();
        let vote = if want_votes {
            self.sign_vote(now, &verdicts)
        } else {
            None
        };
        (verdicts, vote)
    }

    /// The responder rule (DESIGN §4). `Valid` iff locally valid and
    /// preferred on every input (for a vote request: and we may sign it,
    /// see [`Self::may_sign`]); `Invalid` iff invalid or a conflicting tx is
    /// preferred; `Unknown` iff we lack it (or, for a vote request, have not
    /// decided yet or not durably).
    fn local_verdict(&self, txid: &Hash, want_votes: bool) -> Verdict {
        match self.mempool.get(txid).map(|e| e.status) {
            Some(TxStatus::LocallyAccepted | TxStatus::Finalized)
                if want_votes && !self.may_sign(txid) =>
            {
                Verdict::Unknown
            }
            Some(TxStatus::LocallyAccepted | TxStatus::Finalized) => Verdict::Valid,
            Some(TxStatus::Sampling) => match (self.is_preferred_everywhere(txid), want_votes) {
                (false, _) => Verdict::Invalid,
                (true, false) => Verdict::Valid,
                (true, true) => Verdict::Unknown,
            },
            Some(_) => Verdict::Unknown,
            None => match self.mempool.settled(txid) {
                Some(TxStatus::Finalized) => Verdict::Valid,
                Some(TxStatus::Rejected) => Verdict::Invalid,
                _ => Verdict::Unknown,
            },
        }
    }

    /// Signs once over the sorted txids answered `Valid`. Only txs we may
    /// sign (durably accepted or durably finalized) are ever `Valid` in a
    /// vote request, and acceptance rejects every conflict, so an honest
    /// validator never signs two conflicting transactions, crashes included.
    fn sign_vote(&mut self, now: Timestamp, verdicts: &[(Hash, Verdict)]) -> Option<FinalityVote> {
        if self.halted {
            return None;
        }
        let mut valid: Vec<Hash> = verdicts
            .iter()
            .filter(|(_, v)| *v == Verdict::Valid)
            .map(|(t, _)| *t)
            .collect();
        if valid.is_empty() {
            return None;
        }
        if let Some(txid) = valid.iter().find(|t| !self.may_sign(t)) {
            log::error!("refusing to sign a finality vote covering {txid}: not durably accepted");
            return None;
        }
        let signer = self.signer.as_ref()?;
        valid.sort_unstable();
        valid.dedup();
        let slot = now.as_millis() / self.config.slot_duration_ms.max(1);
        self.metrics.finality_votes_signed += 1;
        let vote = FinalityVote::sign(signer, self.config.validation.chain_id, slot, &valid);
        // Our own signature needs no check when it comes back in a proof.
        self.verified_votes.insert_own(&vote);
        Some(vote)
    }

    /// Whether our finality vote may cover `txid`: only once a crash can no
    /// longer make us forget it: its local acceptance is recorded durably
    /// (`handle_acceptance_durable`), or its finalization is durable.
    fn may_sign(&self, txid: &Hash) -> bool {
        match self.mempool.get(txid) {
            Some(entry) => entry.state.acceptance_durable,
            None => self.mempool.settled(txid) == Some(TxStatus::Finalized),
        }
    }

    /// Adds our own finality vote to the proofs of `txids` (answered inline,
    /// as a vote request to ourselves would be).
    fn vote_own(&mut self, now: Timestamp, txids: Vec<Hash>, view: &impl UtxoView) {
        let Some(me) = self.signer.as_ref().map(Keypair::public) else {
            return;
        };
        if txids.is_empty() {
            return;
        }
        let (verdicts, vote) = self.answer_query(now, &txids, true);
        let request = Request {
            to: me,
            deadline: now,
            txids,
            polls: Vec::new(),
            want_votes: true,
        };
        self.apply_response(now, me, request, &verdicts, vote, view);
    }

    /// Fetches, from the peer that polled us, the txids we answered `Unknown`
    /// because we lack them (within the fetch limits).
    fn fetch_unknown(&mut self, now: Timestamp, from: NodeId, verdicts: &[(Hash, Verdict)]) {
        let deadline = now.plus_ms(self.config.snowball.poll_timeout_ms);
        let mut wanted = Vec::new();
        for (txid, verdict) in verdicts {
            let lacking = *verdict == Verdict::Unknown
                && !self.mempool.contains(txid)
                && !self.orphans.contains(txid)
                && self.mempool.settled(txid).is_none();
            if !lacking {
                continue;
            }
            if self.fetches.request(*txid, from, deadline) {
                wanted.push(*txid);
            } else {
                self.metrics.fetches_refused += 1;
            }
        }
        if !wanted.is_empty() {
            self.metrics.fetches_sent += 1;
            self.send(from, ConsensusMessage::GetTxs { txids: wanted });
        }
    }

    // ---- requester: polls ----

    fn apply_response(
        &mut self,
        now: Timestamp,
        from: NodeId,
        request: Request,
        verdicts: &[(Hash, Verdict)],
        finality_vote: Option<FinalityVote>,
        view: &impl UtxoView,
    ) {
        if request.want_votes {
            self.collect_votes(now, from, &request, verdicts, finality_vote, view);
        } else {
            self.count_verdicts(now, &request, verdicts);
        }
    }

    /// Counts one validator's verdicts into the polls of `request`. A txid
    /// the answer leaves out counts as not `Valid`; extra or repeated
    /// verdicts are ignored.
    fn count_verdicts(&mut self, now: Timestamp, request: &Request, verdicts: &[(Hash, Verdict)]) {
        for (i, (txid, poll)) in request.txids.iter().zip(&request.polls).enumerate() {
            let verdict = match verdicts.get(i) {
                Some((t, v)) if t == txid => Some(*v),
                _ => verdicts.iter().find(|(t, _)| t == txid).map(|(_, v)| *v),
            };
            if verdict.is_some() {
                self.metrics.verdicts_processed += 1;
            }
            if let Some(done) = self.polls.record(*poll, verdict) {
                self.complete_poll(now, done);
            }
        }
    }

    /// Applies a completed poll (DESIGN §4 "Update", "Local acceptance").
    fn complete_poll(&mut self, now: Timestamp, poll: Poll) {
        let txid = poll.txid;
        let params = self.config.snowball;
        let Some(entry) = self.mempool.get_mut(&txid) else {
            return;
        };
        let state = &mut entry.state;
        state.polls_outstanding = state.polls_outstanding.saturating_sub(1);
        if entry.status != TxStatus::Sampling {
            return;
        }
        // A failed poll (no quorum, often missing answers from an
        // overloaded or partitioned peer) waits one pipeline step before
        // the next: repolling at once turns overload into a retry storm.
        let next_poll_at = match state
            .snowball
            .record_poll(poll.tally, self.sample_size.alpha)
        {
            PollEffect::Succeeded => {
                self.metrics.polls_succeeded += 1;
                now
            }
            PollEffect::Failed => {
                self.metrics.polls_failed += 1;
                now.plus_ms(params.poll_interval_ms())
            }
        };
        let snowball = state.snowball;
        if snowball.is_rejected_by_quorum(params.beta) {
            self.reject(txid, RejectReason::InvalidQuorum);
        } else if snowball.is_confident(params.beta) && self.is_preferred_everywhere(&txid) {
            self.accept(now, txid);
        } else {
            if snowball.is_stalled(params.beta) {
                self.restart_stuck_conflicts(&txid);
            }
            self.schedule_poll(txid, next_poll_at);
        }
    }

    /// A conflict set whose every member went `beta` polls without a
    /// `Valid` quorum is stuck: typically validators split evenly between
    /// two sides, each side with one early success, and a sample that asks
    /// everyone (`k' = |AVS|` with equal weights) never varies to break the
    /// tie. Its counters restart at 0, so every honest node falls back to
    /// the shared tie-break (lowest txid) and the next polls can succeed.
    /// Only preference moves: acceptance still needs `beta` real quorums.
    fn restart_stuck_conflicts(&mut self, txid: &Hash) {
        let beta = self.config.snowball.beta;
        let Some(entry) = self.mempool.get(txid) else {
            return;
        };
        let mut stuck = Vec::new();
        for input in &entry.tx.inputs {
            let members = self.mempool.conflict_set(&input.prev);
            let all_stalled = members.len() > 1
                && members.iter().all(|m| {
                    self.mempool
                        .get(m)
                        .is_some_and(|e| e.state.snowball.is_stalled(beta))
                });
            if all_stalled {
                stuck.extend_from_slice(members);
            }
        }
        if stuck.is_empty() {
            return;
        }
        self.metrics.stuck_conflicts_restarted += 1;
        for member in stuck {
            if let Some(e) = self.mempool.get_mut(&member) {
                e.state.snowball.restart_counter();
            }
        }
    }

    /// The conflict set's preferred member: highest counter, then lowest txid.
    fn preferred_on(&self, outpoint: &OutPoint) -> Option<Hash> {
        match self.mempool.conflict_set(outpoint) {
            [only] => Some(*only),
            members => snowball::preferred(
                members
                    .iter()
                    .filter_map(|t| self.mempool.get(t).map(|e| (*t, e.state.snowball.counter))),
            ),
        }
    }

    fn is_preferred_everywhere(&self, txid: &Hash) -> bool {
        self.mempool.get(txid).is_some_and(|e| {
            e.tx.inputs
                .iter()
                .all(|i| self.preferred_on(&i.prev) == Some(*txid))
        })
    }

    /// Local acceptance: every conflict is rejected, vote collection starts.
    fn accept(&mut self, now: Timestamp, txid: Hash) {
        self.mempool.set_status(&txid, TxStatus::LocallyAccepted);
        let Some(entry) = self.mempool.get_mut(&txid) else {
            return;
        };
        entry.state.locally_accepted_at = Some(now);
        entry.state.proof = Some(ProofBuilder::new(txid, &self.validators));
        if let Some(at) = entry.state.next_poll_at.take() {
            self.poll_schedule.remove(&(at, txid));
        }
        let tx = entry.tx.clone();
        self.emit(Event::LocallyAccepted { txid });
        for loser in self.mempool.conflicts_of(&txid, &tx) {
            self.reject(loser, RejectReason::ConflictAccepted { winner: txid });
        }
        self.schedule_vote_round(txid, now);
    }

    fn reject(&mut self, txid: Hash, reason: RejectReason) {
        if let Some(entry) = self.mempool.remove(&txid, TxStatus::Rejected) {
            self.unschedule(&txid, &entry.state);
            self.emit(Event::Rejected { txid, reason });
        }
    }

    // ---- requester: finality votes ----

    /// Adds a validator's finality vote to the proofs of the txids it covers.
    /// The vote must come from the validator itself, be a member's, sign the
    /// root of exactly the txids answered `Valid`, and verify.
    fn collect_votes(
        &mut self,
        now: Timestamp,
        from: NodeId,
        request: &Request,
        verdicts: &[(Hash, Verdict)],
        finality_vote: Option<FinalityVote>,
        view: &impl UtxoView,
    ) {
        // A validator that has not locally accepted a txid yet (typically
        // milliseconds behind us) is asked again after one pipeline step,
        // not a whole poll timeout: that wait was the p90 of finality.
        let retry_at = now.plus_ms(self.config.snowball.poll_interval_ms());
        let Some(vote) = finality_vote else {
            self.retry_vote_rounds(&request.txids, retry_at);
            return;
        };
        if vote.voter != from
            || vote.chain_id != self.config.validation.chain_id
            || !self.validators.contains(&vote.voter)
        {
            self.metrics.bad_finality_votes += 1;
            return;
        }
        let mut valid: Vec<Hash> = verdicts
            .iter()
            .filter(|(_, v)| *v == Verdict::Valid)
            .map(|(t, _)| *t)
            .collect();
        valid.sort_unstable();
        valid.dedup();
        let unvoted = request
            .txids
            .iter()
            .filter(|t| valid.binary_search(t).is_err());
        self.retry_vote_rounds(unvoted, retry_at);
        let tree = MerkleTree::new(&valid);
        if tree.root() != vote.root || !self.verified_votes.check(&vote) {
            self.metrics.bad_finality_votes += 1;
            return;
        }
        let mut complete = Vec::new();
        for txid in &request.txids {
            let Ok(index) = valid.binary_search(txid) else {
                continue;
            };
            let Some(entry) = self.mempool.get_mut(txid) else {
                continue;
            };
            let Some(builder) = entry.state.proof.as_mut() else {
                continue;
            };
            if entry.status != TxStatus::LocallyAccepted
                || builder.has_voted(&self.validators, &vote.voter)
            {
                continue;
            }
            let Some(path) = tree.path(index) else {
                continue;
            };
            if let Ok(VoteAdded::Complete) = builder.add(&self.validators, vote.clone(), path) {
                complete.push(*txid);
            }
        }
        for txid in complete {
            let Some(entry) = self.mempool.get(&txid) else {
                continue;
            };
            let Some(proof) = entry.state.proof.as_ref().map(|b| b.to_proof(&entry.tx)) else {
                continue;
            };
            self.metrics.proofs_assembled += 1;
            self.finalize(now, txid, proof, None, view);
        }
    }

    /// Brings the next vote round of each still-unproven `txids` forward to `at`.
    fn retry_vote_rounds<'a>(&mut self, txids: impl IntoIterator<Item = &'a Hash>, at: Timestamp) {
        for txid in txids {
            let collecting = self
                .mempool
                .get(txid)
                .is_some_and(|e| e.status == TxStatus::LocallyAccepted);
            if collecting {
                self.schedule_vote_round(*txid, at);
            }
        }
    }

    /// Marks `txid` finalized with `proof`, reports it, gossips the proof
    /// once, and admits orphans that were waiting for its outputs.
    /// `from`: the peer whose proof finalized it, which needs no copy back.
    fn finalize(
        &mut self,
        now: Timestamp,
        txid: Hash,
        proof: FinalityProof,
        from: Option<NodeId>,
        view: &impl UtxoView,
    ) {
        if self.halted {
            return;
        }
        self.mempool.set_status(&txid, TxStatus::Finalized);
        let Some(entry) = self.mempool.get_mut(&txid) else {
            return;
        };
        entry.state.finalized_at = Some(now);
        let tx = entry.tx.clone();
        let state = std::mem::take(&mut entry.state.next_vote_round_at);
        if let Some(at) = state {
            self.vote_schedule.remove(&(at, txid));
        }
        self.seen_proofs.insert(txid, ());
        // To its voters too: most would finish their own proof only after
        // one more vote round (measured: p50 finality 23 → 62 ms at 500 tx/s).
        self.outputs.push_back(Output::Broadcast {
            msg: ConsensusMessage::Proof(proof.clone()),
            skip: from.into_iter().collect(),
        });
        self.emit(Event::Finalized { tx, proof });
        for (child, from) in self.orphans.take_children(&txid) {
            let _ = self.admit(now, child, Origin::Peer(from), view);
        }
    }

    /// A proof by gossip finalizes its tx without sampling, if it verifies
    /// against our snapshot and its tx applies; a proof for a tx conflicting
    /// with a finalized one is a safety violation.
    fn on_proof(
        &mut self,
        now: Timestamp,
        from: NodeId,
        proof: FinalityProof,
        view: &impl UtxoView,
    ) {
        let txid = proof.tx.txid();
        let already_final = self.seen_proofs.contains(&txid)
            || self.mempool.settled(&txid) == Some(TxStatus::Finalized)
            || self
                .mempool
                .get(&txid)
                .is_some_and(|e| e.status == TxStatus::Finalized);
        if already_final || self.halted {
            return;
        }
        self.metrics.proofs_received += 1;
        let validators = &self.validators;
        let cache = &mut self.verified_votes;
        let verified = verify_proof_with(
            &proof,
            self.config.validation.chain_id,
            |_slot| Some(validators),
            |vote| cache.check(vote),
        );
        if verified.is_err() {
            self.metrics.proofs_invalid += 1;
            return;
        }
        let overlay = OverlayView {
            pool: &self.mempool,
            base: view,
        };
        for input in &proof.tx.inputs {
            match overlay.finalized_spender(&input.prev) {
                Ok(Some(by)) if by == txid => {
                    // Durable already (e.g. learned from a block): its
                    // pending conflicts here lose now, not at expiry.
                    self.reject_conflicts_of_finalized(txid, &proof.tx);
                    return;
                }
                Ok(Some(finalized)) => {
                    self.safety_violation(input.prev, finalized, txid);
                    return;
                }
                Ok(None) => {}
                Err(_) => {
                    self.metrics.proofs_unapplied += 1;
                    return;
                }
            }
        }
        // A pool member was validated on admission, and would have been
        // rejected had a conflict finalized since; only newcomers are checked.
        let known = self.mempool.contains(&txid);
        if !known
            && validate_counted(
                &mut self.metrics,
                &proof.tx,
                &overlay,
                &self.config.validation,
            )
            .is_err()
        {
            // Valid votes but not applicable here (e.g. its parent is unknown
            // yet): block sync brings both; a later relay may retry.
            self.metrics.proofs_unapplied += 1;
            return;
        }
        if !known {
            self.mempool
                .insert_finalized(txid, proof.tx.clone(), now, TxState::default());
        }
        self.reject_conflicts_of_finalized(txid, &proof.tx);
        self.finalize(now, txid, proof, Some(from), view);
    }

    /// Every pending spend that conflicts with finalized `tx` loses.
    fn reject_conflicts_of_finalized(&mut self, txid: Hash, tx: &Tx) {
        for loser in self.mempool.conflicts_of(&txid, tx) {
            self.reject(loser, RejectReason::ConflictFinalized { winner: txid });
        }
    }

    fn safety_violation(&mut self, outpoint: OutPoint, finalized: Hash, conflicting: Hash) {
        log::error!(
            "SAFETY VIOLATION: valid finality proofs for conflicting transactions \
             {finalized} and {conflicting} (both spend {outpoint}); finalization halted"
        );
        self.halted = true;
        self.metrics.safety_violations += 1;
        self.emit(Event::SafetyViolation {
            outpoint,
            finalized,
            conflicting,
        });
    }

    // ---- scheduling and sending ----

    /// Starts every poll and vote round that is due, batched per validator,
    /// then answers the queries addressed to ourselves.
    fn start_due_work(&mut self, now: Timestamp, view: &impl UtxoView) {
        let mut own = Vec::new();
        self.start_due_polls(now, &mut own);
        self.start_due_vote_rounds(now, &mut own);
        let Some(me) = self.signer.as_ref().map(Keypair::public) else {
            return;
        };
        for request in own {
            let (verdicts, vote) = self.answer_query(now, &request.txids, request.want_votes);
            self.apply_response(now, me, request, &verdicts, vote, view);
        }
    }

    /// One new poll per due transaction (at most `max_concurrent_polls`
    /// outstanding each, `max_outstanding_polls` in all), `k'` stake slots
    /// each; our own slots are answered at once, the others' wait in
    /// [`Polls::hold`] until their validator has room for another query.
    fn start_due_polls(&mut self, now: Timestamp, own: &mut Vec<Request>) {
        let params = self.config.snowball;
        let limits = self.config.limits;
        let me = self.signer.as_ref().map(Keypair::public);
        let (mut own_txids, mut own_polls) = (Vec::new(), Vec::new());
        while self.polls.outstanding_polls() < self.config.limits.max_outstanding_polls {
            let Some(&(at, txid)) = self.poll_schedule.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.poll_schedule.pop_first();
            let Some(entry) = self.mempool.get_mut(&txid) else {
                continue;
            };
            entry.state.next_poll_at = None;
            let max_concurrent = params.max_concurrent_polls.max(1);
            if entry.status != TxStatus::Sampling || entry.state.polls_outstanding >= max_concurrent
            {
                continue;
            }
            self.sampler
                .sample_into(&mut self.rng, &mut self.sample_scratch);
            let slots = self.sample_scratch.iter().map(|d| d.slots).sum();
            let poll = self.polls.start(txid, slots, self.sample_size.alpha);
            entry.state.polls_outstanding += 1;
            let pipeline_open = entry.state.polls_outstanding < max_concurrent;
            for drawn in &self.sample_scratch {
                let Some(to) = self.validators.validators().get(drawn.member).map(|v| v.id) else {
                    continue;
                };
                let at = PollSlots {
                    poll,
                    slots: drawn.slots,
                };
                if me == Some(to) {
                    own_txids.push(txid);
                    own_polls.push(at);
                } else {
                    self.polls.hold(to, txid, at, limits.max_outstanding_polls);
                }
            }
            self.metrics.polls_started += 1;
            if pipeline_open {
                self.schedule_poll(txid, now.plus_ms(params.poll_interval_ms()));
            }
        }
        if let Some(me) = me {
            self.send_queries(now, me, &own_txids, &own_polls, own);
        }
        for release in self.polls.release(limits.poll_queries_in_flight) {
            self.send_queries(now, release.to, &release.txids, &release.polls, own);
        }
    }

    /// Asks every validator that has not voted for a locally accepted,
    /// still unproven transaction; repeats every `poll_timeout` until complete.
    fn start_due_vote_rounds(&mut self, now: Timestamp, own: &mut Vec<Request>) {
        let me = self.signer.as_ref().map(Keypair::public);
        let mut own_txids = Vec::new();
        while let Some(&(at, txid)) = self.vote_schedule.first() {
            if at > now {
                break;
            }
            self.vote_schedule.pop_first();
            let Some(entry) = self.mempool.get_mut(&txid) else {
                continue;
            };
            entry.state.next_vote_round_at = None;
            let Some(builder) = entry.state.proof.as_ref() else {
                continue;
            };
            if entry.status != TxStatus::LocallyAccepted || builder.is_complete() {
                continue;
            }
            for v in self.validators.validators() {
                if builder.has_voted(&self.validators, &v.id) {
                    continue;
                }
                if me == Some(v.id) {
                    own_txids.push(txid);
                } else {
                    self.polls.hold_vote_request(v.id, txid);
                }
            }
            self.schedule_vote_round(txid, now.plus_ms(self.config.snowball.poll_timeout_ms));
        }
        if let Some(me) = me {
            self.send_queries(now, me, &own_txids, &[], own);
        }
        let limit = self.config.limits.poll_queries_in_flight;
        for (to, mut txids) in self.polls.release_vote_requests(limit) {
            txids.retain(|txid| self.needs_vote_from(txid, &to));
            self.send_queries(now, to, &txids, &[], own);
        }
    }

    /// `txid` is locally accepted, its proof short, and `voter` not in it.
    fn needs_vote_from(&self, txid: &Hash, voter: &NodeId) -> bool {
        self.mempool.get(txid).is_some_and(|entry| {
            entry.status == TxStatus::LocallyAccepted
                && entry
                    .state
                    .proof
                    .as_ref()
                    .is_some_and(|b| !b.is_complete() && !b.has_voted(&self.validators, voter))
        })
    }

    /// Sends `txids` to validator `to` in queries of at most
    /// `max_txs_per_query`; `polls` empty means a vote request. Queries to
    /// ourselves go to `own`, to be answered inline.
    fn send_queries(
        &mut self,
        now: Timestamp,
        to: NodeId,
        txids: &[Hash],
        polls: &[PollSlots],
        own: &mut Vec<Request>,
    ) {
        let want_votes = polls.is_empty();
        let per_query = (self.config.snowball.max_txs_per_query as usize).max(1);
        let deadline = now.plus_ms(self.config.snowball.poll_timeout_ms);
        let me = self.signer.as_ref().map(Keypair::public);
        for (i, chunk) in txids.chunks(per_query).enumerate() {
            let start = i * per_query;
            let chunk_polls = polls
                .get(start..start + chunk.len())
                .unwrap_or_default()
                .to_vec();
            let request = Request {
                to,
                deadline,
                txids: chunk.to_vec(),
                polls: chunk_polls,
                want_votes,
            };
            if me == Some(to) {
                own.push(request);
                continue;
            }
            let request_id = self.polls.send(request);
            self.metrics.queries_sent += 1;
            self.send(
                to,
                ConsensusMessage::Query {
                    request_id,
                    txids: chunk.to_vec(),
                    want_votes,
                },
            );
        }
    }

    /// Due at `at`, or earlier if already due earlier.
    fn schedule_poll(&mut self, txid: Hash, at: Timestamp) {
        if let Some(entry) = self.mempool.get_mut(&txid) {
            reschedule(
                &mut self.poll_schedule,
                &mut entry.state.next_poll_at,
                txid,
                at,
            );
        }
    }

    fn schedule_vote_round(&mut self, txid: Hash, at: Timestamp) {
        if let Some(entry) = self.mempool.get_mut(&txid) {
            reschedule(
                &mut self.vote_schedule,
                &mut entry.state.next_vote_round_at,
                txid,
                at,
            );
        }
    }

    /// Drops a removed transaction's pending timers.
    fn unschedule(&mut self, txid: &Hash, state: &TxState) {
        if let Some(at) = state.next_poll_at {
            self.poll_schedule.remove(&(at, *txid));
        }
        if let Some(at) = state.next_vote_round_at {
            self.vote_schedule.remove(&(at, *txid));
        }
    }

    fn send(&mut self, to: NodeId, msg: ConsensusMessage) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// [`validate`], counting the input signatures it checked (signatures
/// run last, so only a valid tx or a bad signature got that far).
fn validate_counted(
    metrics: &mut EngineMetrics,
    tx: &Tx,
    view: &impl UtxoView,
    params: &ValidationParams,
) -> Result<ValidTx, TxError> {
    let result = validate(tx, view, params);
    metrics.tx_signatures_verified += match &result {
        Ok(_) => tx.inputs.len() as u64,
        Err(TxError::BadSignature { index, .. }) => *index as u64 + 1,
        Err(_) => 0,
    };
    result
}

/// Moves `txid`'s timer in `schedule` to `at` unless it is already due earlier.
fn reschedule(
    schedule: &mut BTreeSet<(Timestamp, Hash)>,
    due: &mut Option<Timestamp>,
    txid: Hash,
    at: Timestamp,
) {
    if let Some(current) = *due {
        if current <= at {
            return;
        }
        schedule.remove(&(current, txid));
    }
    *due = Some(at);
    schedule.insert((at, txid));
}
