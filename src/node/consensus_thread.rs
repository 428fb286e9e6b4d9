//! The consensus thread: a thin driver around the sans-IO [`Engine`]
//! (quinn-style). It waits on its inbox, the ledger's durable reports and the
//! engine's next timeout; drains every ready input as one batch against one
//! store snapshot; then routes the engine's outputs: messages to the
//! [`NetSink`], finalized transactions, local acceptances and mempool
//! changes to the ledger. What the ledger reports durable goes back to the
//! engine (finalized txs, acceptances our vote may now cover) and to the
//! wallets waiting on a submission (answered only once their tx is durable).
//!
//! It never writes the store while it holds a batch's `ReadView` (a thread
//! holding one must not call `Store` writes); its only writes are the rare
//! records of broken promises (window evidence, a safety halt), made while
//! routing outputs, after the view is dropped. It never blocks on anything but
//! its `select`: ledger commands that do not fit the channel wait in a
//! bounded backlog, so the ledger can never deadlock against it.

use super::channels::{
    ConsensusInfo, ConsensusQuery, Durable, FinalityTimings, LedgerCommand, MempoolSnapshot,
    NetSink, NodeEvent, SubmitRefused, TxStatusAnswer, FINALITY_TIMINGS_KEPT, MAX_LEDGER_BACKLOG,
    MAX_MEMPOOL_LISTING, MAX_SUBMITS_AWAITING_DURABLE,
};
use crate::consensus::{
    ConsensusMessage, Engine, EpochCommittee, Event, Misbehaviour, NodeId, Output,
};
use crate::finality::WindowEquivocation;
use crate::mempool::RecentMap;
use crate::metrics::{Channel, Metrics};
use crate::net::peer::INVALID_CONSENSUS_PENALTY;
use crate::net::{Message, NetEvent};
use crate::store::{FinalizedTx, ReadView, SafetyViolationRecord, Store, StoreError};
use crate::time::{Clock, MonoTime};
use crate::types::encoding::encode;
use crate::types::{Hash, Tx};
use crossbeam_channel::{Receiver, Select, Sender, TrySendError};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ConsensusThreadError {
    #[error("cannot read the chain state")]
    Store(#[from] StoreError),
    #[error("the ledger thread stopped; finalized transactions can no longer be made durable")]
    LedgerStopped,
}

pub struct ConsensusThread<C: Clock, N: NetSink> {
    engine: Engine,
    store: Arc<Store>,
    inbox: Receiver<NodeEvent>,
    durable: Receiver<Durable>,
    ledger: Sender<LedgerCommand>,
    /// Messages from peers (`crossbeam_channel::never()` without a network).
    net_events: Receiver<NetEvent>,
    /// The net thread ended: stop selecting on its (disconnected) outbox.
    net_stopped: bool,
    net: N,
    metrics: Arc<Metrics>,
    clock: C,
    /// Ledger commands waiting for room in the ledger channel, in order.
    backlog: VecDeque<LedgerCommand>,
    /// Admitted txs whose mempool record is not durable yet, with the
    /// submitters waiting for it (bounded by the mempool and the ledger's
    /// pace; waiters by [`MAX_SUBMITS_AWAITING_DURABLE`]).
    awaiting_durable: HashMap<Hash, Vec<SubmitReply>>,
    submits_waiting: usize,
    mempool_reloaded: usize,
    /// Step times of recently durable transactions, for `gettxstatus`.
    timings: RecentMap<Hash, FinalityTimings>,
}

/// Where a submission's outcome goes (a bounded(1) channel of one RPC worker).
type SubmitReply = Sender<Result<Hash, SubmitRefused>>;

/// The consensus thread's ends of its channels.
pub struct ConsensusChannels {
    pub inbox: Receiver<NodeEvent>,
    pub durable: Receiver<Durable>,
    pub ledger: Sender<LedgerCommand>,
    /// The net thread's consensus outbox.
    pub net_events: Receiver<NetEvent>,
}

/// What one batch of input asked for besides engine work.
#[derive(Default)]
struct Batch {
    events: Vec<NodeEvent>,
    net_events: Vec<NetEvent>,
    durable: Vec<Durable>,
    shutdown: bool,
}

impl<C: Clock, N: NetSink> ConsensusThread<C, N> {
    pub fn new(
        engine: Engine,
        store: Arc<Store>,
        channels: ConsensusChannels,
        net: N,
        metrics: Arc<Metrics>,
        clock: C,
    ) -> Self {
        ConsensusThread {
            engine,
            store,
            inbox: channels.inbox,
            durable: channels.durable,
            ledger: channels.ledger,
            net_events: channels.net_events,
            net_stopped: false,
            net,
            metrics,
            clock,
            backlog: VecDeque::new(),
            awaiting_durable: HashMap::new(),
            submits_waiting: 0,
            mempool_reloaded: 0,
            timings: RecentMap::new(FINALITY_TIMINGS_KEPT),
        }
    }

    /// Restores the local acceptances of the vote-safety record, then
    /// resubmits the other transactions persisted in the datadir's mempool
    /// (call before `run`). Pending ones no longer admissible (a conflict of
    /// an accepted one among them) are dropped from the mempool table; an
    /// acceptance that cannot be restored keeps its record, which goes with
    /// the durable spend of its outpoints.
    pub fn reload_mempool(
        &mut self,
        accepted: Vec<Tx>,
        pending: Vec<Tx>,
    ) -> Result<(), ConsensusThreadError> {
        let now = self.clock.mono();
        let store = Arc::clone(&self.store);
        let view = store.read()?;
        let mut restored = BTreeSet::new();
        for tx in accepted {
            let txid = tx.txid();
            match self.engine.restore_accepted(now, tx, &view) {
                Ok(_) => {
                    restored.insert(txid);
                }
                Err(e) => log::warn!("cannot restore locally accepted tx {txid}: {e}"),
            }
        }
        self.mempool_reloaded += restored.len();
        for tx in pending {
            let txid = tx.txid();
            if restored.contains(&txid) {
                continue;
            }
            match self.engine.handle_submit(now, tx, &view) {
                Ok(_) => self.mempool_reloaded += 1,
                Err(e) => {
                    log::info!("dropping persisted mempool tx {txid}: {e}");
                    self.backlog.push_back(LedgerCommand::MempoolRemove(txid));
                }
            }
        }
        drop(view);
        log::info!(
            "reloaded {} pending transactions ({} locally accepted)",
            self.mempool_reloaded,
            restored.len()
        );
        self.route_outputs();
        Ok(())
    }

    pub fn run(mut self) -> Result<(), ConsensusThreadError> {
        loop {
            let batch = self.wait_for_input()?;
            let shutdown = batch.shutdown;
            self.process(batch)?;
            self.flush_backlog()?;
            self.mirror_metrics();
            if shutdown {
                break;
            }
        }
        // Durable reports are of no use any more; dropping their receiver
        // makes the ledger's sends fail fast instead of blocking it, so the
        // blocking hand-over below cannot deadlock.
        let ConsensusThread {
            durable,
            ledger,
            backlog,
            ..
        } = self;
        drop(durable);
        for command in backlog {
            ledger
                .send(command)
                .map_err(|_| ConsensusThreadError::LedgerStopped)?;
        }
        Ok(())
    }

    /// Blocks until input arrives, the ledger channel has room for the
    /// backlog, or the engine's timeout passes; then drains what is ready.
    fn wait_for_input(&mut self) -> Result<Batch, ConsensusThreadError> {
        let mut batch = Batch::default();
        let now = self.clock.mono();
        let wait = self
            .engine
            .poll_timeout()
            .map(|at| at.saturating_since(now));
        let mut select = Select::new();
        let inbox = select.recv(&self.inbox);
        let durable = select.recv(&self.durable);
        let net_events = (!self.net_stopped).then(|| select.recv(&self.net_events));
        let ledger = (!self.backlog.is_empty()).then(|| select.send(&self.ledger));
        let selected = match wait {
            Some(wait) => select.select_timeout(wait).ok(),
            None => Some(select.select()),
        };
        if let Some(operation) = selected {
            let index = operation.index();
            if index == inbox {
                match operation.recv(&self.inbox) {
                    Ok(event) => batch.events.push(event),
                    // Every sender gone: nobody can ask anything any more.
                    Err(_) => batch.shutdown = true,
                }
            } else if index == durable {
                let report = operation
                    .recv(&self.durable)
                    .map_err(|_| ConsensusThreadError::LedgerStopped)?;
                batch.durable.push(report);
            } else if Some(index) == net_events {
                match operation.recv(&self.net_events) {
                    Ok(event) => batch.net_events.push(event),
                    // The net thread stopped (shutdown under way): no more peers.
                    Err(_) => self.net_stopped = true,
                }
            } else if Some(index) == ledger {
                // Non-empty: `select.send` was registered only then.
                let command = self.backlog.pop_front();
                if let Some(command) = command {
                    operation
                        .send(&self.ledger, command)
                        .map_err(|_| ConsensusThreadError::LedgerStopped)?;
                }
            }
        }
        let ready = self.inbox.len();
        batch.events.extend(self.inbox.try_iter().take(ready));
        let ready = self.durable.len();
        batch.durable.extend(self.durable.try_iter().take(ready));
        let ready = self.net_events.len();
        batch
            .net_events
            .extend(self.net_events.try_iter().take(ready));
        Ok(batch)
    }

    /// Runs one batch against one fresh snapshot (opened after the input
    /// arrived, so it shows every commit a durable report names).
    fn process(&mut self, mut batch: Batch) -> Result<(), ConsensusThreadError> {
        let now = self.clock.mono();
        let store = Arc::clone(&self.store);
        let view = store.read()?;
        for report in &batch.durable {
            self.on_durable(now, report);
        }
        let mut admitted = Vec::new();
        for event in batch.events.drain(..) {
            match event {
                NodeEvent::Submit { tx, reply } => match self.submit(now, tx, &view) {
                    Ok(txid) => admitted.push((txid, reply)),
                    // The RPC worker may have timed out and gone: nothing to tell.
                    Err(refused) => {
                        let _ = reply.try_send(Err(refused));
                    }
                },
                NodeEvent::Query(query) => self.answer(query),
                NodeEvent::PeerProof { from, proof } => {
                    let msg = ConsensusMessage::Proof(*proof);
                    self.engine.handle_message(now, from, msg, &view);
                }
                NodeEvent::Epoch { current, next } => self.enter_epoch(now, current, next),
                NodeEvent::Shutdown => batch.shutdown = true,
            }
        }
        for event in batch.net_events.drain(..) {
            self.on_net_event(now, event, &view);
        }
        if self.engine.poll_timeout().is_some_and(|at| at <= now) {
            self.engine.handle_timeout(now, &view);
        }
        drop(view);
        self.route_outputs();
        for (txid, reply) in admitted {
            self.answer_when_durable(txid, reply);
        }
        Ok(())
    }

    /// Moves the engine to the chain's new epoch; a repeat or an older one
    /// only adds what it may not know yet (the next committee).
    fn enter_epoch(
        &mut self,
        now: MonoTime,
        current: EpochCommittee,
        next: Option<EpochCommittee>,
    ) {
        let epoch = current.epoch;
        if epoch > self.engine.epoch() {
            let (members, weight) = (current.committee.len(), current.committee.total_weight());
            match self.engine.enter_epoch(now, current) {
                Ok(()) => log::info!(
                    "epoch {epoch}: a committee of {members} validators, weight {weight}; this node {}",
                    if self.engine.signs() { "votes" } else { "observes" }
                ),
                Err(e) => log::warn!("not entering epoch {epoch}: {e}"),
            }
        }
        if let Some(next) = next {
            // Refused only when it is not the one after the current epoch.
            let _ = self.engine.learn_next_epoch(next);
        }
    }

    /// Answers a submitter once its admitted tx is durable in the mempool
    /// table (at once if it already is, e.g. a resubmission).
    fn answer_when_durable(&mut self, txid: Hash, reply: SubmitReply) {
        let Some(waiters) = self.awaiting_durable.get_mut(&txid) else {
            let _ = reply.try_send(Ok(txid));
            return;
        };
        if self.submits_waiting >= MAX_SUBMITS_AWAITING_DURABLE {
            // Admitted all the same; a retry is answered once it is durable.
            let _ = reply.try_send(Err(SubmitRefused::LedgerBehind {
                backlog: self.submits_waiting,
            }));
            return;
        }
        waiters.push(reply);
        self.submits_waiting += 1;
    }

    /// A peer's consensus message goes to the engine; lifecycle events are
    /// logged and counted (the engine samples from the validator set, not
    /// from connections). Catch-up is the catch-up thread's: a connection
    /// costs this thread no store read.
    fn on_net_event(&mut self, now: MonoTime, event: NetEvent, view: &ReadView<'_>) {
        match event {
            NetEvent::Message {
                from,
                msg: Message::Consensus(msg),
            } => {
                self.metrics.peer_messages.fetch_add(1, Relaxed);
                self.engine.handle_message(now, from, msg, view);
            }
            NetEvent::Message { from, msg } => {
                log::debug!("ignoring a non-consensus message from {from:?}: {msg:?}");
            }
            NetEvent::PeerConnected {
                node_id,
                addr,
                inbound,
                ..
            } => {
                self.metrics.peer_connects.fetch_add(1, Relaxed);
                let direction = if inbound { "inbound" } else { "outbound" };
                log::info!("peer {node_id:?} connected ({direction}, {addr})");
            }
            NetEvent::PeerDisconnected { node_id } => {
                self.metrics.peer_disconnects.fetch_add(1, Relaxed);
                log::info!("peer {node_id:?} disconnected");
            }
        }
    }

    fn submit(
        &mut self,
        now: MonoTime,
        tx: Tx,
        view: &ReadView<'_>,
    ) -> Result<Hash, SubmitRefused> {
        if self.engine.is_halted() {
            return Err(SubmitRefused::Halted);
        }
        if self.backlog.len() >= MAX_LEDGER_BACKLOG {
            return Err(SubmitRefused::LedgerBehind {
                backlog: self.backlog.len(),
            });
        }
        self.metrics.txs_submitted.fetch_add(1, Relaxed);
        Ok(self.engine.handle_submit(now, tx, view)?)
    }

    /// Records finality latency (admission to durable) and step times,
    /// lets the engine forget the committed transactions and sign for the
    /// recorded acceptances, and answers the submitters of admitted ones.
    fn on_durable(&mut self, now: MonoTime, report: &Durable) {
        for txid in &report.finalized {
            let Some(status) = self.engine.tx_status(txid) else {
                continue;
            };
            let Some(first_seen) = status.first_seen else {
                continue;
            };
            let latency = report.at.saturating_since(first_seen).as_millis();
            self.metrics
                .finality_latency
                .observe_ms(u64::try_from(latency).unwrap_or(u64::MAX));
            self.timings.insert(
                *txid,
                FinalityTimings {
                    first_seen,
                    locally_accepted_at: status.locally_accepted_at,
                    finalized_at: status.finalized_at,
                    durable_at: report.at,
                },
            );
        }
        self.engine.handle_durable(report.at, &report.finalized);
        self.engine.handle_acceptance_durable(now, &report.accepted);
        for txid in &report.admitted {
            for reply in self.awaiting_durable.remove(txid).unwrap_or_default() {
                self.submits_waiting = self.submits_waiting.saturating_sub(1);
                let _ = reply.try_send(Ok(*txid));
            }
        }
    }

    fn answer(&self, query: ConsensusQuery) {
        // Replies go to bounded(1) channels owned by one waiting worker;
        // a worker that timed out has dropped its receiver.
        match query {
            ConsensusQuery::TxStatus { txid, reply } => {
                let _ = reply.try_send(TxStatusAnswer {
                    report: self.engine.tx_status(&txid),
                    timings: self.timings.get(&txid).copied(),
                });
            }
            ConsensusQuery::Info { reply } => {
                let _ = reply.try_send(self.info());
            }
            ConsensusQuery::Mempool { reply } => {
                let _ = reply.try_send(self.mempool_snapshot());
            }
            ConsensusQuery::PeerWork { reply } => {
                let _ = reply.try_send(self.engine.peer_work().collect());
            }
        }
    }

    fn info(&self) -> ConsensusInfo {
        let engine = &self.engine;
        let validators = engine.validators();
        let metrics = engine.metrics();
        let sample = engine.sample_size();
        ConsensusInfo {
            epoch: engine.epoch(),
            validators: validators.len(),
            total_weight: validators.total_weight(),
            required_weight: validators.required_weight(),
            sample_k: sample.k,
            sample_alpha: sample.alpha,
            is_validator: self.engine.signs(),
            halted: engine.is_halted(),
            mempool_txs: engine.mempool_len(),
            mempool_reloaded: self.mempool_reloaded,
            polls_started: metrics.polls_started,
            polls_succeeded: metrics.polls_succeeded,
            polls_failed: metrics.polls_failed,
            proofs_assembled: metrics.proofs_assembled,
            finality_votes_signed: metrics.finality_votes_signed,
            next_timeout: engine.poll_timeout(),
        }
    }

    fn mempool_snapshot(&self) -> MempoolSnapshot {
        let mut txids: Vec<Hash> = self.engine.mempool_txids().copied().collect();
        txids.sort_unstable();
        txids.truncate(MAX_MEMPOOL_LISTING);
        let bytes = txids
            .iter()
            .filter_map(|t| self.engine.mempool_tx(t))
            .map(Tx::encoded_len)
            .sum();
        MempoolSnapshot {
            size: self.engine.mempool_len(),
            txids,
            bytes,
        }
    }

    /// Sends what the engine produced where it belongs.
    fn route_outputs(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Send { to, msg } => self.net.send(to, msg),
                Output::Broadcast { msg, skip } => self.net.broadcast(msg, skip),
                Output::RelayToObservers { msg, skip } => self.net.relay_to_observers(msg, skip),
                Output::Event(event) => self.on_event(event),
                Output::Misbehaved { peer, reason } => self.on_misbehaved(peer, &reason),
            }
        }
    }

    /// A fault goes to the net layer's score (two ban); anything else is
    /// only logged, the engine counted it.
    fn on_misbehaved(&mut self, peer: NodeId, reason: &Misbehaviour) {
        if reason.is_fault() {
            log::info!("peer {peer:?} misbehaved: {reason}");
            self.metrics.consensus_misbehaviours.fetch_add(1, Relaxed);
            self.net
                .penalize(peer, INVALID_CONSENSUS_PENALTY, reason.label());
        } else {
            log::debug!("peer {peer:?} sent unusable data: {reason}");
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Accepted { txid } => {
                if let Some(tx) = self.engine.mempool_tx(&txid) {
                    let tx = tx.clone();
                    self.backlog.push_back(LedgerCommand::MempoolPut(tx));
                    self.awaiting_durable.entry(txid).or_default();
                }
            }
            Event::LocallyAccepted { txid } => {
                log::debug!("tx {txid} locally accepted");
                // Only a voter needs the vote-safety record. A tx gone
                // already (a conflict finalized in the same batch) was never
                // signed, so there is nothing to record either.
                let tx = self
                    .engine
                    .mempool_tx(&txid)
                    .filter(|_| self.engine.signs());
                if let Some(tx) = tx {
                    let tx = tx.clone();
                    self.backlog.push_back(LedgerCommand::Accepted(tx));
                }
            }
            Event::Finalized { tx, proof } => {
                log::debug!("tx {} finalized", tx.txid());
                self.backlog
                    .push_back(LedgerCommand::Finalized(FinalizedTx {
                        tx,
                        proof: encode(&proof),
                        // A date users read (Bitcoin's `time`): wall clock.
                        finalized_at_ms: self.clock.wall().as_millis(),
                    }));
            }
            Event::Rejected { txid, reason } => {
                log::info!("tx {txid} rejected: {reason:?}");
                self.metrics.txs_rejected.fetch_add(1, Relaxed);
                self.backlog.push_back(LedgerCommand::MempoolRemove(txid));
            }
            Event::Expired { txid } => {
                log::info!("tx {txid} expired without a quorum");
                self.metrics.txs_expired.fetch_add(1, Relaxed);
                self.backlog.push_back(LedgerCommand::MempoolRemove(txid));
            }
            // The engine logged it with both txids; its evidence follows.
            Event::Equivocation { .. } => {
                self.metrics.equivocations.fetch_add(1, Relaxed);
            }
            Event::WindowEvidence { evidence, from } => self.keep_evidence(*evidence, from),
            Event::SafetyViolation {
                outpoint,
                finalized,
                conflicting,
                conflicting_proof,
            } => {
                log::error!(
                    "SAFETY VIOLATION on {outpoint}: {finalized} and {conflicting} both have \
                     valid finality proofs; finalization halted until an operator clears it \
                     (timed --clear-safety-halt)"
                );
                self.metrics.safety_violations.fetch_add(1, Relaxed);
                self.metrics.finality_halted.store(1, Relaxed);
                self.persist_halt(SafetyViolationRecord {
                    outpoint,
                    finalized,
                    conflicting,
                    finalized_proof: None,
                    conflicting_proof: encode(&*conflicting_proof),
                    detected_at_ms: self.clock.wall().as_millis(),
                });
            }
        }
    }

    /// Verified window evidence: stored in one write, then gossiped once to
    /// every peer but the one it came from. Held already (or the voter's
    /// cap reached): nothing more to do.
    fn keep_evidence(&mut self, evidence: WindowEquivocation, from: Option<NodeId>) {
        let Some((voter, outpoint)) = evidence.key() else {
            return;
        };
        match self
            .store
            .put_window_evidence(&voter, &outpoint, &evidence.encode())
        {
            Ok(true) => {
                log::warn!(
                    "equivocation: validator {voter:?} signed window votes for {} and {}, both \
                     spending {outpoint}; evidence stored and gossiped",
                    evidence.first.tx.txid(),
                    evidence.second.tx.txid()
                );
                let skip = from.into_iter().collect();
                let msg = ConsensusMessage::WindowEvidence(Box::new(evidence));
                self.net.broadcast(msg, skip);
            }
            Ok(false) => {}
            Err(e) => log::error!("cannot store window evidence against {voter:?}: {e}"),
        }
    }

    /// Persists a safety violation and the halt in one write, with the
    /// stored proof of the finalized side if it is durable already. A
    /// failed write is logged: the engine stays halted in memory anyway.
    fn persist_halt(&mut self, mut record: SafetyViolationRecord) {
        match self.store.proof(&record.finalized) {
            Ok(proof) => record.finalized_proof = proof,
            Err(e) => log::error!("cannot read the proof of {}: {e}", record.finalized),
        }
        if let Err(e) = self.store.put_safety_halt(&record) {
            log::error!(
                "cannot persist the safety halt ({e}); this node is halted until it stops, \
                 and after a restart only if the violation is seen again"
            );
        }
    }

    /// Hands the backlog to the ledger until its channel is full.
    fn flush_backlog(&mut self) -> Result<(), ConsensusThreadError> {
        while let Some(command) = self.backlog.pop_front() {
            match self.ledger.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Full(command)) => {
                    self.backlog.push_front(command);
                    self.metrics.count_backpressure(Channel::Ledger);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(ConsensusThreadError::LedgerStopped)
                }
            }
        }
        Ok(())
    }

    fn mirror_metrics(&self) {
        let engine = self.engine.metrics();
        let m = &self.metrics;
        m.polls_started.store(engine.polls_started, Relaxed);
        m.polls_succeeded.store(engine.polls_succeeded, Relaxed);
        m.polls_failed.store(engine.polls_failed, Relaxed);
        m.vote_signatures_verified
            .store(engine.signatures_verified, Relaxed);
        m.tx_signatures_verified
            .store(engine.tx_signatures_verified, Relaxed);
        m.mempool_txs
            .store(self.engine.mempool_len() as u64, Relaxed);
        m.consensus_work_charged.store(engine.work_charged, Relaxed);
        m.consensus_work_dropped.store(engine.work_dropped, Relaxed);
    }
}
