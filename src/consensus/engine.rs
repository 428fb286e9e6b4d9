//! The consensus engine of one node, quinn-style: `handle_submit`,
//! `handle_message`, `handle_timeout`, `handle_durable`,
//! `handle_acceptance_durable` take input with `now`; `poll_output` and
//! `poll_timeout` say what to send and when to call back. It owns the
//! mempool, every poll (validators only), our window votes, the tallies of
//! everyone's window votes and proof assembly.
//!
//! It must never finalize on a timer or on local knowledge: a transaction is
//! finalized only by verified window votes (or a proof) whose weight, read
//! from the `ValidatorSet` snapshot, reaches `ceil(0.67 · total)`. It must
//! never sign a window covering a transaction whose local acceptance the
//! driver has not yet made durable, so a crash cannot make it forget what
//! it signed and sign a conflict (slashing protection). No clocks, sockets,
//! threads or global RNG; a seed and the same inputs replay the same outputs.

use super::epochs::{Committees, EpochCommittee, EpochError};
use super::fetches::Fetches;
use super::messages::{
    ConsensusMessage, Event, NodeId, Output, RejectReason, TxStatusReport, Verdict,
};
use super::misbehaviour::Misbehaviour;
use super::orphan_proofs::OrphanProofs;
use super::params::{SampleSize, SnowballParams};
use super::polls::{Poll, PollSlots, Polls, Request};
use super::sampler::{Drawn, Sampler};
use super::signed_spends::SignedSpends;
use super::snowball::{self, PollEffect, SnowballState};
use super::unproven::{Unproven, UnprovenLimits};
use super::vote_cache::{SharedVerdicts, VerifiedVotes};
use super::windows::{OwnWindow, SharedTrees, WindowBook, WindowLimits};
use super::work_budget::{leaves_cost, query_cost, PeerWork, WorkBudgetParams, WorkBudgets};
use crate::config::ChainSpec;
use crate::crypto::Keypair;
use crate::finality::{
    verify_proof_with, EvidenceError, FinalityProof, ProofBuilder, ProofError, SignedSpend,
    ValidatorSet, VoteAdded, VoteScope, WindowEquivocation, WindowTree, WindowVote,
    MAX_WINDOW_EVIDENCE_PER_VOTER,
};
use crate::ledger::{
    check_structure, validate, validate_with, TxError, UtxoView, ValidTx, ValidationParams,
};
use crate::mempool::{
    Deadlines, Entry, Mempool, MempoolError, OrphanPool, OverlayView, RecentMap, TxStatus,
};
use crate::time::MonoTime;
use crate::types::{Hash, OutPoint, Tx};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

mod stuck;

/// Caps on everything a peer can make the engine remember.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineLimits {
    /// Polls in flight over all transactions.
    pub max_outstanding_polls: usize,
    pub max_orphans: usize,
    pub max_orphans_per_peer: usize,
    /// Missing parents whose children's verified proofs wait here.
    pub orphan_proof_parents: usize,
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
    /// Window votes remembered as seen `(voter, seq)`, so each is relayed once.
    pub windows_seen: usize,
    /// Whole recent windows kept to answer peers that missed one.
    pub windows_kept: usize,
    /// Txids whose window votes are being collected.
    pub vote_tallies: usize,
    /// Outpoints whose signers (voter and window per signed txid) are
    /// remembered, to catch a voter signing two spends of one.
    pub signed_spends: usize,
    /// Window evidence keys `(voter, outpoint)` remembered, so each piece
    /// is verified, stored and relayed once.
    pub evidence_seen: usize,
    /// Poll queries in flight to one validator before further ones wait
    /// for an answer, and then go together.
    pub poll_queries_in_flight: u32,
    /// Signature checks and Merkle work each peer may make us do.
    pub work_budget: WorkBudgetParams,
    /// Accepted-but-unproven txs: how many, and how often re-asked.
    pub unproven: UnprovenLimits,
}

impl Default for EngineLimits {
    fn default() -> EngineLimits {
        EngineLimits {
            max_outstanding_polls: 65_536,
            max_orphans: 1_024,
            max_orphans_per_peer: 64,
            orphan_proof_parents: 256,
            max_fetches: 8_192,
            max_fetches_per_peer: 512,
            max_conflicts_per_outpoint: 8,
            settled_txs: 65_536,
            seen_proofs: 16_384,
            verified_votes: 16_384,
            windows_seen: 65_536,
            windows_kept: 512,
            vote_tallies: 16_384,
            signed_spends: 8_192,
            evidence_seen: 1_024,
            poll_queries_in_flight: 1,
            work_budget: WorkBudgetParams::default(),
            unproven: UnprovenLimits::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub validation: ValidationParams,
    pub snowball: SnowballParams,
    pub limits: EngineLimits,
    /// Binds our window votes to this chain; its epoch is the one the
    /// engine starts in (the driver moves it on with `enter_epoch`).
    pub scope: VoteScope,
    pub window: WindowParams,
    /// Test knob: a non-validator that polls as a validator would (it still
    /// signs nothing), so a test can play every validator. Nodes leave it
    /// off: only validators poll (DESIGN §5).
    pub observer_polls: bool,
    /// This incarnation's seq session, made durable by the driver before
    /// the engine starts (see [`super::windows::SEQS_PER_SESSION`]).
    pub window_session: u32,
    /// Seeds the sampling RNG: the same seed and inputs give the same outputs.
    pub rng_seed: u64,
}

/// When a validator's window closes (DESIGN §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowParams {
    pub vote_window_ms: u64,
    pub max_window_txs: usize,
}

impl EngineConfig {
    pub fn from_spec(spec: &ChainSpec, rng_seed: u64) -> EngineConfig {
        EngineConfig {
            validation: spec.validation_params(),
            snowball: SnowballParams::from(&spec.config.consensus),
            limits: EngineLimits::default(),
            scope: VoteScope {
                chain_id: spec.chain_id(),
                genesis_hash: spec.genesis_hash(),
                epoch: 0,
            },
            window: WindowParams {
                vote_window_ms: spec.config.consensus.vote_window_ms,
                max_window_txs: spec.config.consensus.max_window_txs as usize,
            },
            observer_polls: false,
            window_session: 0,
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
    /// Window votes we signed.
    pub finality_votes_signed: u64,
    /// Window votes received that were new and valid (each relayed once).
    pub windows_received: u64,
    /// Window votes received again (relay copies), dropped unchecked.
    pub windows_duplicate: u64,
    /// Missing windows asked for by `(voter, seq)`.
    pub windows_fetched: u64,
    /// Conflicting txids under one voter's window votes.
    pub equivocations: u64,
    /// Window evidence that did not verify (received, or caught here
    /// without the first window or tx still at hand: then only counted).
    pub evidence_invalid: u64,
    pub evidence_incomplete: u64,
    /// ed25519 verifications of finality votes (each vote at most once).
    pub signatures_verified: u64,
    /// ed25519 verifications of transaction inputs (one per input of every
    /// tx that reached the signature check).
    pub tx_signatures_verified: u64,
    pub bad_finality_votes: u64,
    pub proofs_assembled: u64,
    pub proofs_received: u64,
    pub proofs_invalid: u64,
    /// Proofs of an epoch whose committee is not held (older than the
    /// previous epoch, or not decided here yet): dropped, not a fault.
    pub proofs_other_epoch: u64,
    pub fetches_sent: u64,
    pub fetches_refused: u64,
    /// Transactions in `Txs` that were not asked of that peer.
    pub txs_unsolicited: u64,
    /// Valid proofs whose tx does not apply here yet (e.g. unknown parent).
    pub proofs_unapplied: u64,
    /// Of those, proofs kept until their tx's parent finalizes here.
    pub proofs_orphaned: u64,
    /// Proofs of txs already final here (memory or store), dropped unchecked.
    pub proofs_stale: u64,
    /// Old windows (at or below the voter's highest seq) listing only
    /// txids final here, dropped unchecked.
    pub windows_stale: u64,
    /// Work units charged to peers' budgets, and messages dropped over budget.
    pub work_charged: u64,
    pub work_dropped: u64,
    /// Messages over a size limit (`max_txs_per_query`), dropped whole.
    pub messages_oversized: u64,
    /// `Output::Misbehaved` reports (faults or not).
    pub misbehaviours_reported: u64,
    /// Re-asks of accepted-but-unproven txs (txids, each to the validators
    /// whose votes are missing), and admissions refused at their cap.
    pub unproven_reasked: u64,
    pub txs_refused_unproven: u64,
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
    /// Only for peers' transactions: the sender's work budget is spent.
    #[error("the sending peer's work budget is spent; transaction dropped unchecked")]
    OverBudget,
    /// Too many locally accepted txs wait for their proofs (see `stuck`).
    #[error("{held} locally accepted transactions are waiting for their finality proofs (the cap is {max}); retry once some finalize")]
    UnprovenBacklog { held: usize, max: usize },
}

/// Consensus state of one transaction, carried in its mempool entry.
#[derive(Clone, Debug, Default)]
struct TxState {
    snowball: SnowballState,
    polls_outstanding: u32,
    /// When its next poll is due (its key in `poll_schedule`).
    next_poll_at: Option<MonoTime>,
    /// The driver recorded our acceptance durably: our vote may cover it.
    acceptance_durable: bool,
    locally_accepted_at: Option<MonoTime>,
    finalized_at: Option<MonoTime>,
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
    /// The finality committees of the previous, current and next epoch.
    committees: Committees,
    sampler: Sampler,
    rng: ChaCha20Rng,
    /// Our key, only while it sits on the current committee (then we answer
    /// our own samples inline and sign finality votes).
    signer: Option<Keypair>,
    /// Our key whatever the committee: an epoch change may seat or unseat it.
    identity: Option<Keypair>,
    mempool: Mempool<TxState>,
    orphans: OrphanPool,
    orphan_proofs: OrphanProofs,
    /// Accepted-but-unproven txs and their re-ask timers.
    unproven: Unproven,
    polls: Polls,
    fetches: Fetches,
    poll_schedule: Deadlines<Hash>,
    /// Our window (validators only).
    own_window: OwnWindow,
    windows: WindowBook,
    /// Who signed which spend of each outpoint (equivocation evidence).
    signed_spends: SignedSpends,
    /// The simulator's process-wide window trees (see [`SharedTrees`]).
    shared_trees: Option<SharedTrees>,
    seen_proofs: RecentMap<Hash, ()>,
    verified_votes: VerifiedVotes,
    work: WorkBudgets,
    evidence_seen: RecentMap<(NodeId, OutPoint), ()>,
    /// Pieces of window evidence per voter (set members only, so bounded
    /// by the set), at most [`MAX_WINDOW_EVIDENCE_PER_VOTER`] each.
    evidence_per_voter: HashMap<NodeId, usize>,
    /// Set by a safety violation (or restored from the store at start):
    /// nothing is finalized or signed any more.
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
        _now: MonoTime,
    ) -> Engine {
        let params = config.snowball;
        let limits = config.limits;
        let weights: Vec<u64> = validators.validators().iter().map(|v| v.weight).collect();
        let sample_size = params.sample_size(validators.len());
        Engine {
            sample_size,
            sampler: Sampler::new(&weights, sample_size.k),
            rng: ChaCha20Rng::seed_from_u64(config.rng_seed),
            signer: identity
                .clone()
                .filter(|k| validators.contains(&k.public())),
            identity,
            mempool: Mempool::new(
                params.mempool_max_txs as usize,
                limits.max_conflicts_per_outpoint,
                limits.settled_txs,
            ),
            orphans: OrphanPool::new(limits.max_orphans, limits.max_orphans_per_peer),
            orphan_proofs: OrphanProofs::new(limits.orphan_proof_parents),
            unproven: Unproven::new(limits.unproven),
            polls: Polls::default(),
            fetches: Fetches::new(limits.max_fetches, limits.max_fetches_per_peer),
            poll_schedule: Deadlines::new(),
            own_window: OwnWindow::new(config.window_session),
            windows: WindowBook::new(WindowLimits {
                seen: limits.windows_seen,
                kept: limits.windows_kept,
                tallies: limits.vote_tallies,
            }),
            signed_spends: SignedSpends::new(limits.signed_spends, validators.len()),
            shared_trees: None,
            seen_proofs: RecentMap::new(limits.seen_proofs),
            verified_votes: VerifiedVotes::new(limits.verified_votes),
            work: WorkBudgets::new(limits.work_budget),
            evidence_seen: RecentMap::new(limits.evidence_seen),
            evidence_per_voter: HashMap::new(),
            halted: false,
            outputs: VecDeque::new(),
            metrics: EngineMetrics::default(),
            sample_scratch: Vec::new(),
            committees: Committees::new(EpochCommittee {
                epoch: config.scope.epoch,
                committee: validators,
            }),
            config,
        }
    }

    /// A transaction from the local wallet or RPC. Unlike gossip, it may not
    /// spend an outpoint a pending transaction already locks.
    pub fn handle_submit(
        &mut self,
        now: MonoTime,
        tx: Tx,
        view: &impl UtxoView,
    ) -> Result<Hash, SubmitError> {
        self.unproven_room(&tx.txid(), Origin::Local)?;
        self.admit(now, tx, Origin::Local, view)
    }

    pub fn handle_message(
        &mut self,
        now: MonoTime,
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
            ConsensusMessage::Query { request_id, txids } => {
                self.on_query(now, from, request_id, &txids)
            }
            ConsensusMessage::Votes {
                request_id,
                verdicts,
            } => self.on_votes(now, from, request_id, &verdicts),
            ConsensusMessage::WindowVote(window) => self.on_window_vote(now, from, window, view),
            ConsensusMessage::GetWindowVote { voter, seq } => self.on_get_window(from, voter, seq),
            ConsensusMessage::Proof(proof) => self.on_proof(now, from, proof, view),
            ConsensusMessage::WindowEvidence(evidence) => self.on_evidence(now, from, evidence),
        }
    }

    /// Runs everything due at `now`: request deadlines (missing answers
    /// count as not `Valid`), fetch and orphan deadlines, mempool expiry,
    /// our window if it is due, and then every poll due. Polls start only here, so all
    /// txids due at one instant (e.g. after a burst of input) share one
    /// `Query` per validator: call it whenever `poll_timeout() <= now`.
    pub fn handle_timeout(&mut self, now: MonoTime, view: &impl UtxoView) {
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
        if self.window_due_at().is_some_and(|at| at <= now) {
            self.close_window(now, view);
        }
        self.reask_unproven(now);
        self.start_due_work(now);
    }

    /// The ledger committed these finalized transactions: the UTXO view
    /// passed from now on shows them, so the overlay forgets them.
    pub fn handle_durable(&mut self, _now: MonoTime, txids: &[Hash]) {
        for txid in txids {
            self.windows.forget(txid);
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
            self.unproven.remove(txid);
        }
    }

    /// The driver recorded these local acceptances durably (the vote-safety
    /// record): our next window vote covers them.
    pub fn handle_acceptance_durable(&mut self, now: MonoTime, txids: &[Hash]) {
        for txid in txids {
            let Some(entry) = self.mempool.get_mut(txid) else {
                continue;
            };
            if !matches!(
                entry.status,
                TxStatus::LocallyAccepted | TxStatus::Finalized
            ) || entry.state.acceptance_durable
            {
                continue;
            }
            entry.state.acceptance_durable = true;
            if self.signer.is_some() && !self.halted {
                self.own_window.push(now, *txid);
            }
        }
    }

    /// Brings back a transaction this node had locally accepted before a
    /// restart, from the driver's vote-safety record: it is
    /// `LocallyAccepted` again at once (never `Sampling`), pending conflicts
    /// are rejected and later ones refused, so our vote can only ever cover
    /// it; it collects votes until its proof completes. Call it before
    /// reloading pending transactions.
    pub fn restore_accepted(
        &mut self,
        now: MonoTime,
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
        self.handle_acceptance_durable(now, &[txid]);
        Ok(txid)
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` must be called next (possibly already past:
    /// then call it at once). `None`: nothing is pending.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        let poll_due = (self.polls.outstanding_polls() < self.config.limits.max_outstanding_polls)
            .then(|| self.poll_schedule.next_at())
            .flatten();
        // Held poll slots whose validator answered may go at once.
        let released = self.polls.has_releasable().then_some(MonoTime(0));
        let others = [
            poll_due,
            released,
            self.window_due_at(),
            self.polls.next_deadline(),
            self.fetches.next_deadline(),
            self.mempool.next_expiry(),
            self.orphans.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min();
        others.into_iter().chain(self.unproven_wake(others)).min()
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
                proof_weight: self.windows.tally(txid).map_or(0, ProofBuilder::weight),
                proof_needed: self.committees.current().required_weight(),
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
            proof_weight: self.windows.tally(txid).map_or(0, ProofBuilder::weight),
            proof_needed: self.committees.current().required_weight(),
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
        let work = self.work.total();
        EngineMetrics {
            signatures_verified: self.verified_votes.checked(),
            work_charged: work.charged,
            work_dropped: work.dropped,
            ..self.metrics
        }
    }

    /// What each remembered peer's messages cost (work budgets).
    pub fn peer_work(&self) -> impl Iterator<Item = (NodeId, PeerWork)> + '_ {
        self.work.peers()
    }

    /// Whether a safety violation stopped finalization on this node.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Halts at start: the store holds a safety violation no operator has
    /// cleared yet (DESIGN §5: the halt outlives a restart).
    pub fn restore_halt(&mut self) {
        self.halted = true;
    }

    // ---- epochs ----

    /// Whether our key sits on the current committee (we poll and sign).
    pub fn signs(&self) -> bool {
        self.signer.is_some()
    }

    /// The epoch whose committee polls and signs now.
    pub fn epoch(&self) -> u64 {
        self.committees.epoch()
    }

    /// The chain decided the committee of the next epoch: early votes of
    /// its members (from nodes that crossed the boundary first) count.
    pub fn learn_next_epoch(&mut self, next: EpochCommittee) -> Result<(), EpochError> {
        self.committees.learn_next(next)?;
        self.signed_spends.set_members(self.committees.voter_span());
        Ok(())
    }

    /// The chain reached epoch `to` (DESIGN §7): its committee polls and
    /// signs from now on, which may seat or unseat our key. Seated, we sign
    /// again under the new epoch every txid we accepted that has no proof
    /// yet, so its quorum forms in the new committee (tallies hold one
    /// epoch's votes); newly seated, we start polling what we hold.
    pub fn enter_epoch(&mut self, now: MonoTime, to: EpochCommittee) -> Result<(), EpochError> {
        self.committees.advance(to)?;
        self.signed_spends.set_members(self.committees.voter_span());
        self.config.scope.epoch = self.committees.epoch();
        let committee = self.committees.current();
        let weights: Vec<u64> = committee.validators().iter().map(|v| v.weight).collect();
        self.sample_size = self.config.snowball.sample_size(committee.len());
        self.sampler = Sampler::new(&weights, self.sample_size.k);
        let was_seated = self.signer.is_some();
        self.signer = self
            .identity
            .clone()
            .filter(|k| committee.contains(&k.public()));
        if self.signer.is_none() || self.halted {
            return Ok(());
        }
        // Sorted: the map's order must not reach what we sign or send.
        let mut held: Vec<(Hash, TxStatus, bool)> = self
            .mempool
            .iter()
            .map(|(txid, e)| (*txid, e.status, e.state.acceptance_durable))
            .collect();
        held.sort_unstable_by_key(|(txid, ..)| *txid);
        let accepted = held
            .iter()
            .filter(|(_, status, durable)| *status == TxStatus::LocallyAccepted && *durable)
            .map(|(txid, ..)| *txid);
        self.own_window.push_again(now, accepted);
        if !was_seated && !self.config.observer_polls {
            for (txid, status, _) in &held {
                if *status == TxStatus::Sampling {
                    self.schedule_poll(*txid, now);
                }
            }
        }
        Ok(())
    }

    /// Takes window-vote and tx signature verdicts from `shared` (the simulator's
    /// one-per-process cache); each check is still counted as made here.
    pub fn share_signature_verdicts(&mut self, shared: SharedVerdicts) {
        self.verified_votes.share_verdicts(shared);
    }

    /// Takes checked window trees from `shared` (the simulator's
    /// one-per-process cache) instead of hashing each window's txids here.
    pub fn share_window_trees(&mut self, shared: SharedTrees) {
        self.shared_trees = Some(shared);
    }

    /// The current epoch's finality committee: who polls and signs.
    pub fn validators(&self) -> &ValidatorSet {
        self.committees.current()
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
        now: MonoTime,
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
        now: MonoTime,
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
        if let Origin::Peer(from) = origin {
            self.unproven_room(&txid, origin)?;
            // Signatures run last in `validate`: one unit per input.
            if !self.charge(now, from, tx.inputs.len() as u64) {
                return Err(SubmitError::OverBudget);
            }
        }
        let overlay = OverlayView {
            pool: &self.mempool,
            base: view,
        };
        match (
            validate_counted(
                &mut self.metrics,
                &tx,
                &overlay,
                &params,
                self.verified_votes.shared(),
            ),
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
        // Only validators poll (DESIGN §5): others finalize from window votes.
        if self.signer.is_some() || self.config.observer_polls {
            self.schedule_poll(txid, now);
        }
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
        // Window votes may have reached the quorum before the tx reached us.
        self.finalize_if_voted(now, txid, origin_peer(origin), view);
        Ok(txid)
    }

    // ---- messages ----

    fn oversized(&mut self, from: NodeId, len: usize) -> bool {
        let max = self.config.snowball.max_txs_per_query as usize;
        let over = len > max;
        if over {
            self.metrics.messages_oversized += 1;
            self.misbehaved(from, Misbehaviour::Oversized { len, max });
        }
        over
    }

    fn on_get_txs(&mut self, from: NodeId, txids: &[Hash]) {
        if self.oversized(from, txids.len()) {
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

    fn on_txs(&mut self, now: MonoTime, from: NodeId, txs: Vec<Tx>, view: &impl UtxoView) {
        if self.oversized(from, txs.len()) {
            return;
        }
        for tx in txs {
            let txid = tx.txid();
            if !self.fetches.take(&txid, &from) {
                self.metrics.txs_unsolicited += 1;
            } else if let Some(proof) = self.voted_proof(&txid, &tx) {
                // Fetched because its votes are complete: it needs no admission.
                self.metrics.proofs_assembled += 1;
                self.apply_proof(now, proof, view);
            } else {
                // Asked for on demand: an expiry here no longer keeps it out.
                self.mempool.forget_expired(&txid);
                let _ = self.admit(now, tx, Origin::Peer(from), view);
            }
        }
    }

    fn on_query(&mut self, now: MonoTime, from: NodeId, request_id: u64, txids: &[Hash]) {
        // Over budget, no answer: to the asker, a missed poll.
        if self.oversized(from, txids.len()) || !self.charge(now, from, query_cost(txids.len())) {
            return;
        }
        let verdicts = self.answer_query(txids);
        self.metrics.queries_answered += 1;
        self.fetch_unknown(now, from, &verdicts);
        self.send(
            from,
            ConsensusMessage::Votes {
                request_id,
                verdicts,
            },
        );
    }

    fn on_votes(
        &mut self,
        now: MonoTime,
        from: NodeId,
        request_id: u64,
        verdicts: &[(Hash, Verdict)],
    ) {
        if self.oversized(from, verdicts.len()) || request_id == stuck::REASK_REQUEST_ID {
            return;
        }
        let Some(request) = self.polls.take_answered(request_id, &from) else {
            self.metrics.votes_dropped += 1;
            return;
        };
        self.count_verdicts(now, &request, verdicts);
    }

    // ---- responder ----

    fn answer_query(&self, txids: &[Hash]) -> Vec<(Hash, Verdict)> {
        txids.iter().map(|t| (*t, self.local_verdict(t))).collect()
    }

    /// The responder rule (DESIGN §4): `Valid` iff locally valid and
    /// preferred on every input; `Invalid` iff invalid or a conflicting tx
    /// is preferred; `Unknown` iff we lack it.
    fn local_verdict(&self, txid: &Hash) -> Verdict {
        match self.mempool.get(txid) {
            Some(e) => match e.status {
                TxStatus::LocallyAccepted | TxStatus::Finalized => Verdict::Valid,
                TxStatus::Sampling if self.preferred_everywhere(txid, e) => Verdict::Valid,
                TxStatus::Sampling => Verdict::Invalid,
                _ => Verdict::Unknown,
            },
            None => match self.mempool.settled(txid) {
                Some(TxStatus::Finalized) => Verdict::Valid,
                Some(TxStatus::Rejected) => Verdict::Invalid,
                _ => Verdict::Unknown,
            },
        }
    }

    // ---- window votes ----

    /// When our open window must close, if we have one.
    fn window_due_at(&self) -> Option<MonoTime> {
        // Unseated by an epoch change, or halted: nothing is signed, so an
        // open window must not keep the engine waking.
        if self.signer.is_none() || self.halted {
            return None;
        }
        let w = self.config.window;
        self.own_window
            .due_at(w.vote_window_ms, w.max_window_txs.max(1))
    }

    /// Signs our window over every txid whose acceptance became durable
    /// since our previous vote, broadcasts it once and counts it here too.
    /// Only durably accepted txs enter a window, and acceptance rejects
    /// every conflict, so an honest validator never signs two conflicting
    /// transactions, crashes included.
    fn close_window(&mut self, now: MonoTime, view: &impl UtxoView) {
        let max_txs = self.config.window.max_window_txs.max(1);
        let Some(signer) = self.signer.as_ref() else {
            return;
        };
        if self.halted {
            return;
        }
        let Some((seq, txids)) = self.own_window.close(now, max_txs) else {
            log::error!(
                "this node signed 2^32 window votes since it started and can sign no more; \
                 restart it to take a new vote sequence and sign again"
            );
            return;
        };
        let me = signer.public();
        let window = Arc::new(WindowTree::sign(signer, self.config.scope, seq, txids));
        self.metrics.finality_votes_signed += 1;
        // Our own signature needs no check.
        self.verified_votes.insert_own(window.vote());
        self.outputs.push_back(Output::Broadcast {
            msg: ConsensusMessage::WindowVote(Arc::clone(window.window())),
            skip: Vec::new(),
        });
        self.windows.record(&window);
        self.tally_window(now, me, &window, view);
    }

    /// A window vote from a peer: checked once (dedupe by `(voter, seq)`,
    /// shape, root, membership, signature), relayed once, counted for every
    /// txid it lists; a gap in the voter's seqs is asked of the sender.
    fn on_window_vote(
        &mut self,
        now: MonoTime,
        from: NodeId,
        window: Arc<WindowVote>,
        view: &impl UtxoView,
    ) {
        let key = window.key();
        if self.windows.is_seen(&key) {
            self.metrics.windows_duplicate += 1;
            return;
        }
        let Some(checked) = self.check_window(now, from, window, view) else {
            return;
        };
        self.metrics.windows_received += 1;
        let missing = self.windows.record(&checked);
        for seq in missing {
            self.metrics.windows_fetched += 1;
            self.send(from, ConsensusMessage::GetWindowVote { voter: key.0, seq });
        }
        // The voter sends its window to every peer, and validators hold
        // slots for each other (DESIGN §8): one that came from its voter
        // goes on to observers only, or every validator would relay every
        // window (n² messages per window). One that came another way (a
        // relay, a fetch) may have missed validators too: it goes to all.
        let msg = ConsensusMessage::WindowVote(Arc::clone(checked.window()));
        let skip = vec![from, key.0];
        self.outputs.push_back(if from == key.0 {
            Output::RelayToObservers { msg, skip }
        } else {
            Output::Broadcast { msg, skip }
        });
        self.tally_window(now, from, &checked, view);
    }

    /// Scope and membership (free), then, charged to `from`: whether an old
    /// window only lists txids final here (then it is dropped unchecked),
    /// shape and signature. What no honest relay sends is reported; `None`
    /// drops the window.
    fn check_window(
        &mut self,
        now: MonoTime,
        from: NodeId,
        window: Arc<WindowVote>,
        view: &impl UtxoView,
    ) -> Option<Arc<WindowTree>> {
        let vote = &window.vote;
        let scope = self.config.scope;
        let fault = if (vote.chain_id, vote.genesis_hash) != (scope.chain_id, scope.genesis_hash) {
            Some(Misbehaviour::WrongChainWindow)
        } else {
            match self.committees.get(vote.epoch) {
                // Of an epoch not held: older than the previous one (the
                // long-range rule) or early; honest relays send those
                // across a boundary, so not a fault.
                None => {
                    self.metrics.bad_finality_votes += 1;
                    return None;
                }
                Some(set) if !set.contains(&vote.voter) => Some(Misbehaviour::OutsiderWindow),
                Some(_) => None,
            }
        };
        if let Some(fault) = fault {
            self.metrics.bad_finality_votes += 1;
            self.misbehaved(from, fault);
            return None;
        }
        if !self.charge(now, from, leaves_cost(window.txids.len())) {
            return None;
        }
        let old = self
            .windows
            .highest(&vote.voter)
            .is_some_and(|highest| vote.seq <= highest);
        if old
            && window
                .txids
                .iter()
                .all(|t| self.is_final_here(t) || durably_final(view, t))
        {
            self.metrics.windows_stale += 1;
            return None;
        }
        let shaped = match &self.shared_trees {
            Some(shared) => shared.check(window),
            None => WindowTree::check(window).map(Arc::new),
        };
        let checked = match shaped {
            Err(e) => Err(Misbehaviour::MalformedWindow(e)),
            Ok(checked) => {
                let vote = checked.vote();
                if !self.verified_votes.is_verified(vote) && !self.charge(now, from, 1) {
                    return None;
                }
                if self.verified_votes.check(vote) {
                    Ok(checked)
                } else {
                    Err(Misbehaviour::ForgedWindow)
                }
            }
        };
        checked
            .map_err(|fault| {
                self.metrics.bad_finality_votes += 1;
                self.misbehaved(from, fault);
            })
            .ok()
    }

    /// Answers a peer that missed a window we still keep.
    fn on_get_window(&mut self, from: NodeId, voter: NodeId, seq: u64) {
        if let Some(window) = self.windows.kept(&voter, seq) {
            let msg = ConsensusMessage::WindowVote(Arc::clone(window.window()));
            self.send(from, msg);
        }
    }

    /// Credits `window`'s voter on every listed txid not yet final here,
    /// notes each spend it signed (two for one outpoint: equivocation),
    /// and finalizes the txids whose tally reaches the quorum.
    fn tally_window(
        &mut self,
        now: MonoTime,
        from: NodeId,
        window: &Arc<WindowTree>,
        view: &impl UtxoView,
    ) {
        // Checked by `check_window` (or our own key): a member of the
        // committee of its epoch, which is held.
        let (epoch, voter) = (window.vote().epoch, window.vote().voter);
        let member = self
            .committees
            .get(epoch)
            .and_then(|set| set.index_of(&voter));
        let (Some(member), Some(voter_id)) = (member, self.committees.voter_id(&voter)) else {
            return;
        };
        let mut complete = Vec::new();
        for (index, txid) in window.txids().iter().enumerate() {
            self.note_spends(window, voter_id, index);
            if self.is_final_here(txid) {
                continue;
            }
            let Some(set) = self.committees.get(epoch) else {
                return;
            };
            let Some(tally) = self
                .windows
                .tally_mut(*txid, epoch, || ProofBuilder::new(*txid, set))
            else {
                continue;
            };
            if tally.is_complete() || tally.has_voted(member) {
                continue;
            }
            if let Ok(VoteAdded::Complete) = tally.add_member(set, member, window, index) {
                complete.push(*txid);
            }
        }
        for txid in complete {
            self.finalize_if_voted(now, txid, Some(from), view);
        }
    }

    /// Records the outpoints the voter of `window` signed a spend of with
    /// its txid at `index`, if we hold that tx; a second txid for one
    /// outpoint is equivocation, reported with its evidence.
    fn note_spends(&mut self, window: &WindowTree, voter_id: u32, index: usize) {
        let (voter, seq) = window.window().key();
        let Some(txid) = window.txids().get(index).copied() else {
            return;
        };
        // Every voter's window passes here for every txid: the tx is
        // copied only for evidence.
        let conflicts: Vec<(OutPoint, Hash, u64)> = match self.mempool.get(&txid) {
            None => return,
            Some(entry) => entry
                .tx
                .inputs
                .iter()
                .filter_map(|input| {
                    let (first, first_seq) =
                        self.signed_spends.record(voter_id, input.prev, txid, seq)?;
                    Some((input.prev, first, first_seq))
                })
                .collect(),
        };
        if conflicts.is_empty() {
            return;
        }
        let Some(tx) = self.mempool.get(&txid).map(|e| e.tx.clone()) else {
            return;
        };
        for (outpoint, first, first_seq) in conflicts {
            self.metrics.equivocations += 1;
            log::warn!(
                "validator {voter:?} signed window votes for conflicting txs {first} and {txid} (both spend {outpoint})"
            );
            self.emit(Event::Equivocation {
                voter,
                outpoint,
                first,
                second: txid,
            });
            let second = SignedSpend::from_window(window, tx.clone());
            match self.signed_spend_of(voter, first_seq, &first).zip(second) {
                Some((first, second)) => {
                    self.keep_evidence(Box::new(WindowEquivocation { first, second }), None)
                }
                None => {
                    self.metrics.evidence_incomplete += 1;
                    log::warn!(
                        "cannot build evidence of that equivocation: window {first_seq} or tx \
                         {first} is no longer held here"
                    );
                }
            }
        }
    }

    /// `voter`'s signature over `txid` in its window `seq`, with the path
    /// and the tx, while that window and the tx are still held here.
    fn signed_spend_of(&self, voter: NodeId, seq: u64, txid: &Hash) -> Option<SignedSpend> {
        let window = self.windows.kept(&voter, seq)?;
        let tx = self.mempool.get(txid)?.tx.clone();
        SignedSpend::from_window(window, tx)
    }

    /// Window evidence from a peer: verified once (dedupe by its key, at
    /// most [`MAX_WINDOW_EVIDENCE_PER_VOTER`] per voter), then kept and
    /// relayed; evidence that does not hold is the sender's fault.
    fn on_evidence(&mut self, now: MonoTime, from: NodeId, evidence: Box<WindowEquivocation>) {
        let Some(key) = evidence.key() else {
            let fault = EvidenceError::NoConflict {
                first: evidence.first.tx.txid(),
                second: evidence.second.tx.txid(),
            };
            self.evidence_refused(from, fault);
            return;
        };
        if self.evidence_seen.contains(&key) || self.evidence_full(&key.0) {
            return;
        }
        // Two paths and two signatures.
        if !self.charge(now, from, 2) {
            return;
        }
        let committees = &self.committees;
        let cache = &mut self.verified_votes;
        match evidence.verify_with(
            self.config.scope.chain_id,
            self.config.scope.genesis_hash,
            |epoch| committees.get(epoch),
            |vote| cache.check(vote),
        ) {
            Ok(_) => self.keep_evidence(evidence, Some(from)),
            Err(e) if e.is_peer_fault() => {
                log::warn!("refused window evidence from {from:?}: {e}");
                self.evidence_refused(from, e);
            }
            Err(e) => log::debug!("ignored window evidence from {from:?}: {e}"),
        }
    }

    fn evidence_refused(&mut self, peer: NodeId, fault: EvidenceError) {
        self.metrics.evidence_invalid += 1;
        self.misbehaved(peer, Misbehaviour::InvalidEvidence(fault));
    }

    fn evidence_full(&self, voter: &NodeId) -> bool {
        self.evidence_per_voter.get(voter).copied().unwrap_or(0) >= MAX_WINDOW_EVIDENCE_PER_VOTER
    }

    /// Verified evidence (ours or a peer's): handed to the driver to store
    /// and gossip, once per key and within the per-voter cap.
    fn keep_evidence(&mut self, evidence: Box<WindowEquivocation>, from: Option<NodeId>) {
        let Some(key) = evidence.key() else {
            return;
        };
        if self.evidence_seen.contains(&key) || self.evidence_full(&key.0) {
            return;
        }
        self.evidence_seen.insert(key, ());
        *self.evidence_per_voter.entry(key.0).or_default() += 1;
        self.emit(Event::WindowEvidence { evidence, from });
    }

    fn is_final_here(&self, txid: &Hash) -> bool {
        self.seen_proofs.contains(txid)
            || self.mempool.settled(txid) == Some(TxStatus::Finalized)
            || self
                .mempool
                .get(txid)
                .is_some_and(|e| e.status == TxStatus::Finalized)
    }

    /// The proof of `tx` if its window votes reached the quorum.
    fn voted_proof(&self, txid: &Hash, tx: &Tx) -> Option<FinalityProof> {
        self.windows
            .tally(txid)
            .filter(|t| t.is_complete())
            .map(|t| t.to_proof(tx))
    }

    /// Finalizes `txid` if its votes are complete and we hold the tx; if
    /// we lack it, fetches it from `from` (who relayed the deciding vote).
    fn finalize_if_voted(
        &mut self,
        now: MonoTime,
        txid: Hash,
        from: Option<NodeId>,
        view: &impl UtxoView,
    ) {
        if self.is_final_here(&txid) || self.halted {
            return;
        }
        if !self
            .windows
            .tally(&txid)
            .is_some_and(ProofBuilder::is_complete)
        {
            return;
        }
        let Some(tx) = self.mempool.get(&txid).map(|e| e.tx.clone()) else {
            let Some(from) = from.filter(|f| Some(*f) != self.signer.as_ref().map(Keypair::public))
            else {
                return;
            };
            let deadline = now.plus_ms(self.config.snowball.poll_timeout_ms);
            if self.fetches.request(txid, from, deadline) {
                self.metrics.fetches_sent += 1;
                self.send(from, ConsensusMessage::GetTxs { txids: vec![txid] });
            } else {
                self.metrics.fetches_refused += 1;
            }
            return;
        };
        let Some(proof) = self.voted_proof(&txid, &tx) else {
            return;
        };
        self.metrics.proofs_assembled += 1;
        self.apply_proof(now, proof, view);
    }

    /// Fetches, from the peer that polled us, the txids we answered `Unknown`
    /// because we lack them (within the fetch limits).
    fn fetch_unknown(&mut self, now: MonoTime, from: NodeId, verdicts: &[(Hash, Verdict)]) {
        if !self.may_fetch_unknown() {
            return;
        }
        let deadline = now.plus_ms(self.config.snowball.poll_timeout_ms);
        let mut wanted = Vec::new();
        for (txid, verdict) in verdicts {
            // A tx that expired here is fetched again: a validator still
            // polling it means the network may yet decide it.
            let lacking = *verdict == Verdict::Unknown
                && !self.mempool.contains(txid)
                && !self.orphans.contains(txid)
                && matches!(self.mempool.settled(txid), None | Some(TxStatus::Expired));
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

    /// Counts one validator's verdicts into the polls of `request`. A txid
    /// the answer leaves out counts as not `Valid`; extra or repeated
    /// verdicts are ignored.
    fn count_verdicts(&mut self, now: MonoTime, request: &Request, verdicts: &[(Hash, Verdict)]) {
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
    fn complete_poll(&mut self, now: MonoTime, poll: Poll) {
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
        self.mempool
            .get(txid)
            .is_some_and(|e| self.preferred_everywhere(txid, e))
    }

    /// Whether pool member `txid` is its every conflict set's preferred
    /// member (at once if it never had a conflict).
    fn preferred_everywhere(&self, txid: &Hash, entry: &Entry<TxState>) -> bool {
        !entry.contested
            || entry
                .tx
                .inputs
                .iter()
                .all(|i| self.preferred_on(&i.prev) == Some(*txid))
    }

    /// Local acceptance: every conflict is rejected; once the driver made it
    /// durable, our next window covers it.
    fn accept(&mut self, now: MonoTime, txid: Hash) {
        self.mempool.set_status(&txid, TxStatus::LocallyAccepted);
        let Some(entry) = self.mempool.get_mut(&txid) else {
            return;
        };
        entry.state.locally_accepted_at = Some(now);
        if let Some(at) = entry.state.next_poll_at.take() {
            self.poll_schedule.remove(&(at, txid));
        }
        let tx = entry.tx.clone();
        self.note_unproven(now, txid);
        self.emit(Event::LocallyAccepted { txid });
        for loser in self.mempool.conflicts_of(&txid, &tx) {
            self.reject(loser, RejectReason::ConflictAccepted { winner: txid });
        }
    }

    fn reject(&mut self, txid: Hash, reason: RejectReason) {
        self.unproven.remove(&txid);
        if let Some(entry) = self.mempool.remove(&txid, TxStatus::Rejected) {
            self.unschedule(&txid, &entry.state);
            self.emit(Event::Rejected { txid, reason });
        }
    }

    /// Marks `txid` finalized with `proof`, reports it, and admits orphans
    /// that were waiting for its outputs. The proof is not gossiped: every
    /// node assembles its own from the window votes it relays.
    fn finalize(&mut self, now: MonoTime, txid: Hash, proof: FinalityProof, view: &impl UtxoView) {
        if self.halted {
            return;
        }
        self.mempool.set_status(&txid, TxStatus::Finalized);
        self.unproven.remove(&txid);
        let Some(entry) = self.mempool.get_mut(&txid) else {
            return;
        };
        entry.state.finalized_at = Some(now);
        let tx = entry.tx.clone();
        self.seen_proofs.insert(txid, ());
        self.emit(Event::Finalized { tx, proof });
        for (child, from) in self.orphans.take_children(&txid) {
            let _ = self.admit(now, child, Origin::Peer(from), view);
        }
        for proof in self.orphan_proofs.take_children(&txid) {
            self.apply_proof(now, proof, view);
        }
    }

    /// A proof from a peer (catch-up) finalizes its tx without sampling, if
    /// it verifies against our snapshot and its tx applies.
    fn on_proof(
        &mut self,
        now: MonoTime,
        from: NodeId,
        proof: FinalityProof,
        view: &impl UtxoView,
    ) {
        let txid = proof.tx.txid();
        if self.halted {
            return;
        }
        // Replays of old proofs cost a lookup, never a signature check.
        if self.is_final_here(&txid) || durably_final(view, &txid) {
            self.metrics.proofs_stale += 1;
            // Durable here already (e.g. from a block): its pending
            // conflicts lose now, not at expiry; no check is needed for that.
            self.reject_conflicts_of_finalized(txid, &proof.tx);
            return;
        }
        self.metrics.proofs_received += 1;
        // The structure and paths, and the tx's input signatures if it applies.
        if !self.charge(now, from, 1 + proof.tx.inputs.len() as u64) {
            return;
        }
        let validator = self.committees.holds(&from);
        let committees = &self.committees;
        let cache = &mut self.verified_votes;
        let work = &mut self.work;
        let mut unpaid = false;
        let verified = verify_proof_with(
            &proof,
            self.config.scope.chain_id,
            self.config.scope.genesis_hash,
            |epoch| committees.get(epoch),
            |vote| {
                if cache.is_verified(vote) || work.charge(now, from, validator, 1) {
                    cache.check(vote)
                } else {
                    unpaid = true;
                    false
                }
            },
        );
        if unpaid {
            return;
        }
        if let Err(ProofError::UnknownEpoch { .. }) = verified {
            self.metrics.proofs_other_epoch += 1;
            return;
        }
        if let Err(e) = verified {
            self.metrics.proofs_invalid += 1;
            self.misbehaved(from, Misbehaviour::InvalidProof(e));
            return;
        }
        self.apply_proof(now, proof, view);
    }

    /// Finalizes the tx of a verified `proof` if it applies here; a proof
    /// for a tx conflicting with a finalized one is a safety violation.
    fn apply_proof(&mut self, now: MonoTime, proof: FinalityProof, view: &impl UtxoView) {
        let txid = proof.tx.txid();
        if self.is_final_here(&txid) || self.halted {
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
                    self.safety_violation(input.prev, finalized, proof);
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
        if !known {
            let validation = &self.config.validation;
            let shared = self.verified_votes.shared();
            match validate_counted(&mut self.metrics, &proof.tx, &overlay, validation, shared) {
                Ok(_) => {}
                // Its parent is on its way: applied when the parent finalizes.
                Err(TxError::UnknownOutpoint { outpoint, .. }) => {
                    self.metrics.proofs_unapplied += 1;
                    if self.orphan_proofs.insert(outpoint.txid, proof) {
                        self.metrics.proofs_orphaned += 1;
                    }
                    return;
                }
                // Valid votes but not applicable here: block sync settles it.
                Err(_) => {
                    self.metrics.proofs_unapplied += 1;
                    return;
                }
            }
        }
        if !known {
            self.mempool
                .insert_finalized(txid, proof.tx.clone(), now, TxState::default());
        }
        self.reject_conflicts_of_finalized(txid, &proof.tx);
        self.finalize(now, txid, proof, view);
    }

    /// Every pending spend that conflicts with finalized `tx` loses.
    fn reject_conflicts_of_finalized(&mut self, txid: Hash, tx: &Tx) {
        for loser in self.mempool.conflicts_of(&txid, tx) {
            self.reject(loser, RejectReason::ConflictFinalized { winner: txid });
        }
    }

    fn safety_violation(&mut self, outpoint: OutPoint, finalized: Hash, proof: FinalityProof) {
        let conflicting = proof.tx.txid();
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
            conflicting_proof: Box::new(proof),
        });
    }

    // ---- scheduling and sending ----

    /// Starts every poll that is due, batched per validator, then answers
    /// the queries addressed to ourselves.
    fn start_due_work(&mut self, now: MonoTime) {
        let mut own = Vec::new();
        self.start_due_polls(now, &mut own);
        for request in own {
            let verdicts = self.answer_query(&request.txids);
            self.count_verdicts(now, &request, &verdicts);
        }
    }

    /// One new poll per due transaction (at most `max_concurrent_polls`
    /// outstanding each, `max_outstanding_polls` in all), `k'` stake slots
    /// each; our own slots are answered at once, the others' wait in
    /// [`Polls::hold`] until their validator has room for another query.
    fn start_due_polls(&mut self, now: MonoTime, own: &mut Vec<Request>) {
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
                let committee = self.committees.current().validators();
                let Some(to) = committee.get(drawn.member).map(|v| v.id) else {
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

    /// Sends `txids` to validator `to` in queries of at most
    /// `max_txs_per_query`. Queries to ourselves go to `own`, to be answered inline.
    fn send_queries(
        &mut self,
        now: MonoTime,
        to: NodeId,
        txids: &[Hash],
        polls: &[PollSlots],
        own: &mut Vec<Request>,
    ) {
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
                },
            );
        }
    }

    /// Due at `at`, or earlier if already due earlier.
    fn schedule_poll(&mut self, txid: Hash, at: MonoTime) {
        if let Some(entry) = self.mempool.get_mut(&txid) {
            reschedule(
                &mut self.poll_schedule,
                &mut entry.state.next_poll_at,
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
    }

    fn send(&mut self, to: NodeId, msg: ConsensusMessage) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    /// Charges `units` of work to `peer` (a validator's bucket is the larger).
    fn charge(&mut self, now: MonoTime, peer: NodeId, units: u64) -> bool {
        let validator = self.committees.holds(&peer);
        self.work.charge(now, peer, validator, units)
    }

    fn misbehaved(&mut self, peer: NodeId, reason: Misbehaviour) {
        self.metrics.misbehaviours_reported += 1;
        self.outputs.push_back(Output::Misbehaved { peer, reason });
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// The peer a transaction came from, if any.
fn origin_peer(origin: Origin) -> Option<NodeId> {
    match origin {
        Origin::Local => None,
        Origin::Peer(from) => Some(from),
    }
}

/// [`validate`], counting the input signatures it checked (signatures
/// run last, so only a valid tx or a bad signature got that far); with
/// `shared`, their verdict comes from the simulator's process-wide cache.
fn validate_counted(
    metrics: &mut EngineMetrics,
    tx: &Tx,
    view: &impl UtxoView,
    params: &ValidationParams,
    shared: Option<&SharedVerdicts>,
) -> Result<ValidTx, TxError> {
    let result = match shared {
        Some(shared) => validate_with(tx, view, params, |tx, txid, chain_id| {
            shared.verify_tx(tx, txid, chain_id)
        }),
        None => validate(tx, view, params),
    };
    metrics.tx_signatures_verified += match &result {
        Ok(_) => tx.inputs.len() as u64,
        Err(TxError::BadSignature { index, .. }) => *index as u64 + 1,
        Err(_) => 0,
    };
    result
}

/// Whether `txid` is committed in the store: its first output exists
/// there, spent or not (every tx has one). A store error says no: the
/// caller then does the checked work.
fn durably_final(view: &impl UtxoView, txid: &Hash) -> bool {
    let first = OutPoint {
        txid: *txid,
        vout: 0,
    };
    matches!(view.utxo(&first), Ok(Some(_)))
}

/// Moves `txid`'s timer in `schedule` to `at` unless it is already due earlier.
fn reschedule(
    schedule: &mut Deadlines<Hash>,
    due: &mut Option<MonoTime>,
    txid: Hash,
    at: MonoTime,
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
