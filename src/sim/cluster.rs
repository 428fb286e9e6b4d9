//! The cluster: N real `consensus::Engine`s, each over its own `MemUtxoSet`,
//! driven by one priority queue of timed actions on a virtual clock (deliver
//! a message, fire an engine timer, submit a transaction, crash or restart a
//! node). This is the driver a node's consensus thread is, minus the threads.
//!
//! A crashed node loses its engine (mempool included unless mempool
//! persistence is modelled) and keeps its ledger and its record of local
//! acceptances, like a process killed over an LMDB datadir. Owns the queue, the nodes and the run digest; judges
//! nothing itself (the checkers do) and never looks inside an engine.

use super::byzantine::{Adversary, Strategy};
use super::checkers::Checkers;
use super::churn::EpochSchedule;
use super::network::Network;
use super::queue::TimedQueue;
use super::rng::{below, concern_seed};
use super::workload::Submission;
use crate::consensus::{
    ConsensusMessage, Engine, EngineConfig, EngineMetrics, EpochCommittee, Event, NodeId, Output,
    SharedTrees,
};
use crate::crypto::Keypair;
use crate::ledger::MemUtxoSet;
use crate::time::MonoTime;
use crate::types::{encoding, Hash, Tx};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Whether a node follows the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Honest,
    Byzantine(Strategy),
}

/// A node killed at `at_ms` and, if `restart_ms` is set, started again then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crash {
    pub node: usize,
    pub at_ms: u64,
    pub restart_ms: Option<u64>,
}

/// Message counts for the report (bytes are canonical encoding sizes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub delivered: u64,
    pub bytes_delivered: u64,
    /// Dropped by loss or partitions.
    pub lost: u64,
    /// Arrived at a crashed node.
    pub to_down_node: u64,
}

/// Engine counters summed over every node and every incarnation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineTotals {
    pub signatures_verified: u64,
    pub finality_votes_signed: u64,
    pub polls_started: u64,
    pub polls_succeeded: u64,
    pub polls_failed: u64,
    pub votes_dropped: u64,
    pub bad_finality_votes: u64,
    pub proofs_invalid: u64,
}

impl EngineTotals {
    fn add(&mut self, m: &EngineMetrics) {
        self.signatures_verified += m.signatures_verified;
        self.finality_votes_signed += m.finality_votes_signed;
        self.polls_started += m.polls_started;
        self.polls_succeeded += m.polls_succeeded;
        self.polls_failed += m.polls_failed;
        self.votes_dropped += m.votes_dropped;
        self.bad_finality_votes += m.bad_finality_votes;
        self.proofs_invalid += m.proofs_invalid;
    }
}

struct Node {
    key: Keypair,
    role: Role,
    /// `None` while crashed.
    engine: Option<Engine>,
    ledger: MemUtxoSet,
    /// Gossip neighbours: where a `Broadcast` goes.
    peers: Vec<usize>,
    /// The deadline a `Timer` action is queued for.
    timer_ms: Option<u64>,
    /// When `handle_timeout` last ran, to catch a timer re-armed in the past.
    fired_ms: Option<u64>,
    incarnation: u32,
    /// The epoch this node is in (kept while it is down).
    epoch: u64,
    /// Txids in this node's mempool (admitted, not yet settled): what an
    /// LMDB mempool table would hold across a restart.
    mempool: BTreeSet<Hash>,
    /// Txids this node locally accepted and has not seen finalized: its
    /// vote-safety record, which always survives a restart.
    accepted: BTreeSet<Hash>,
    /// Counters of crashed incarnations.
    retired: Vec<EngineMetrics>,
}

/// One sent message, shared by all its deliveries (broadcasts, duplicates).
struct Packet {
    msg: ConsensusMessage,
    /// Hash of its canonical encoding, for the run digest.
    hash: Hash,
    /// Length of its canonical encoding.
    bytes: u64,
}

enum Action {
    Deliver {
        from: usize,
        to: usize,
        packet: Rc<Packet>,
    },
    Timer {
        node: usize,
    },
    Submit {
        index: usize,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    EnterEpoch {
        node: usize,
        epoch: u64,
    },
}

/// What a cluster is built from.
pub struct ClusterSetup {
    pub seed: u64,
    pub roles: Vec<Role>,
    pub keys: Vec<Keypair>,
    /// Every epoch's finality committee (the whole set when small), and
    /// when each node enters each epoch.
    pub epochs: EpochSchedule,
    /// Every node's config; `rng_seed` is replaced per node and incarnation.
    pub engine: EngineConfig,
    pub genesis: MemUtxoSet,
    pub network: Network,
    pub adversary: Adversary,
    pub checkers: Checkers,
    /// Gossip degree: each node broadcasts to at least this many peers.
    pub gossip_peers: usize,
    pub persist_mempool: bool,
    pub submissions: Vec<Submission>,
    pub crashes: Vec<Crash>,
}

pub struct Cluster {
    seed: u64,
    nodes: Vec<Node>,
    ids: BTreeMap<NodeId, usize>,
    epochs: EpochSchedule,
    engine_config: EngineConfig,
    network: Network,
    adversary: Adversary,
    /// Only fed when some node is Byzantine (it costs a copy of every vote).
    has_byzantine: bool,
    checkers: Checkers,
    persist_mempool: bool,
    queue: TimedQueue<Action>,
    /// Window trees every engine shares (each built once in wall time).
    trees: SharedTrees,
    now_ms: u64,
    digest: blake3::Hasher,
    traffic: Traffic,
    submissions: Vec<Submission>,
    /// Per submission: whether its node admitted it.
    admitted: Vec<bool>,
    /// Every transaction the workload created, for mempool persistence.
    txs: BTreeMap<Hash, Tx>,
    /// `handle_submit` refusals by message, for the report.
    refusals: BTreeMap<String, usize>,
    /// Polls an honest node completed before finalizing, per finality by sampling.
    polls_to_finality: Vec<u32>,
    /// A timer re-armed at or before the instant it fired (an engine busy-loop).
    timers_rearmed_in_past: u64,
}

impl Cluster {
    pub fn new(setup: ClusterSetup) -> Cluster {
        let n = setup.roles.len();
        let peers = gossip_graph(n, setup.gossip_peers, setup.seed);
        let ids = setup
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.public(), i))
            .collect();
        let nodes = setup
            .keys
            .into_iter()
            .zip(setup.roles)
            .zip(peers)
            .map(|((key, role), peers)| Node {
                key,
                role,
                engine: None,
                ledger: setup.genesis.clone(),
                peers,
                timer_ms: None,
                fired_ms: None,
                incarnation: 0,
                epoch: 0,
                mempool: BTreeSet::new(),
                accepted: BTreeSet::new(),
                retired: Vec::new(),
            })
            .collect::<Vec<_>>();
        let has_byzantine = nodes.iter().any(|n| n.role != Role::Honest);
        let txs = setup
            .submissions
            .iter()
            .map(|s| (s.tx.txid(), s.tx.clone()))
            .collect();
        let mut cluster = Cluster {
            seed: setup.seed,
            nodes,
            ids,
            epochs: setup.epochs,
            engine_config: setup.engine,
            network: setup.network,
            adversary: setup.adversary,
            has_byzantine,
            checkers: setup.checkers,
            persist_mempool: setup.persist_mempool,
            queue: TimedQueue::default(),
            trees: SharedTrees::default(),
            now_ms: 0,
            digest: blake3::Hasher::new(),
            traffic: Traffic::default(),
            admitted: vec![false; setup.submissions.len()],
            submissions: setup.submissions,
            txs,
            refusals: BTreeMap::new(),
            polls_to_finality: Vec::new(),
            timers_rearmed_in_past: 0,
        };
        for node in 0..n {
            cluster.start_engine(node);
        }
        for index in 0..cluster.submissions.len() {
            let at_ms = cluster.submissions[index].at_ms;
            cluster.schedule(at_ms, Action::Submit { index });
        }
        let entries: Vec<(u64, usize, u64)> = (cluster.epochs.entries.iter().enumerate())
            .skip(1)
            .flat_map(|(epoch, at)| {
                at.iter()
                    .enumerate()
                    .map(move |(node, &at_ms)| (at_ms, node, epoch as u64))
            })
            .collect();
        for (at_ms, node, epoch) in entries {
            cluster.schedule(at_ms, Action::EnterEpoch { node, epoch });
        }
        for crash in setup.crashes {
            cluster.schedule(crash.at_ms, Action::Crash { node: crash.node });
            if let Some(at_ms) = crash.restart_ms {
                cluster.schedule(at_ms, Action::Restart { node: crash.node });
            }
        }
        cluster
    }

    /// Runs every action due up to and including `end_ms`.
    pub fn run_until(&mut self, end_ms: u64) {
        while let Some((at_ms, action)) = self.queue.pop_due(end_ms) {
            self.now_ms = at_ms;
            match action {
                Action::Deliver { from, to, packet } => self.deliver(from, to, packet),
                Action::Timer { node } => self.fire_timer(node, at_ms),
                Action::Submit { index } => self.submit(index),
                Action::Crash { node } => self.crash(node),
                Action::Restart { node } => self.restart(node),
                Action::EnterEpoch { node, epoch } => self.enter_epoch(node, epoch),
            }
        }
        self.now_ms = self.now_ms.max(end_ms);
    }

    fn schedule(&mut self, at_ms: u64, action: Action) {
        self.queue.push(at_ms, action);
    }

    /// Feeds one record into the run digest.
    fn record(&mut self, kind: u8, node: usize, detail: &[u8]) {
        self.digest.update(&[kind]);
        self.digest.update(&self.now_ms.to_le_bytes());
        self.digest.update(&(node as u64).to_le_bytes());
        self.digest.update(detail);
    }

    fn now(&self) -> MonoTime {
        MonoTime(self.now_ms)
    }

    fn start_engine(&mut self, node: usize) {
        let now = self.now();
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        let mut config = self.engine_config.clone();
        config.rng_seed = concern_seed(self.seed, &format!("engine/{node}/{}", n.incarnation));
        // A restart is a new seq session, as the node's store makes it.
        config.window_session = n.incarnation;
        let Some(current) = self.epochs.committee(n.epoch) else {
            return;
        };
        config.scope.epoch = current.epoch;
        let committee = current.committee.clone();
        let mut engine = Engine::new(config, committee, Some(n.key.clone()), now);
        if let Some(next) = self.epochs.committee(n.epoch + 1) {
            // Decided an epoch ahead (DESIGN §7), so never refused.
            let _ = engine.learn_next_epoch(next.clone());
        }
        engine.share_signature_verdicts(self.checkers.verdicts());
        engine.share_window_trees(self.trees.clone());
        n.engine = Some(engine);
        n.timer_ms = None;
        n.fired_ms = None;
    }

    fn deliver(&mut self, from: usize, to: usize, packet: Rc<Packet>) {
        let now = self.now();
        let Some(from_id) = self.nodes.get(from).map(|n| n.key.public()) else {
            return;
        };
        let Some(node) = self.nodes.get_mut(to) else {
            return;
        };
        let Some(engine) = node.engine.as_mut() else {
            self.traffic.to_down_node += 1;
            return;
        };
        self.traffic.delivered += 1;
        self.traffic.bytes_delivered += packet.bytes;
        let mut detail = (from as u64).to_le_bytes().to_vec();
        detail.extend_from_slice(packet.hash.as_bytes());
        // The last delivery of a packet (most are sent to one node) hands
        // over the message instead of copying its txid lists.
        let msg = Rc::try_unwrap(packet).map_or_else(|shared| shared.msg.clone(), |p| p.msg);
        engine.handle_message(now, from_id, msg, &node.ledger);
        self.record(b'D', to, &detail);
        self.drain(to);
    }

    fn fire_timer(&mut self, node: usize, at_ms: u64) {
        let now = self.now();
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.timer_ms != Some(at_ms) {
            return; // superseded by a later re-arm
        }
        n.timer_ms = None;
        n.fired_ms = Some(at_ms);
        let Some(engine) = n.engine.as_mut() else {
            return;
        };
        engine.handle_timeout(now, &n.ledger);
        self.record(b'T', node, &[]);
        self.drain(node);
    }

    fn submit(&mut self, index: usize) {
        let now = self.now();
        let Some(sub) = self.submissions.get(index) else {
            return;
        };
        let (node, tx) = (sub.node, sub.tx.clone());
        let txid = tx.txid();
        if self.has_byzantine {
            self.adversary.observe_tx(&tx);
        }
        let result = match self.nodes.get_mut(node) {
            Some(Node {
                engine: Some(engine),
                ledger,
                ..
            }) => engine
                .handle_submit(now, tx, ledger)
                .map_err(|e| e.to_string()),
            _ => Err("node is down".to_string()),
        };
        match result {
            Ok(_) => {
                if let Some(flag) = self.admitted.get_mut(index) {
                    *flag = true;
                }
            }
            Err(reason) => *self.refusals.entry(reason).or_default() += 1,
        }
        self.record(b'S', node, txid.as_bytes());
        self.drain(node);
    }

    fn crash(&mut self, node: usize) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if let Some(engine) = n.engine.take() {
            n.retired.push(engine.metrics());
        }
        n.timer_ms = None;
        if !self.persist_mempool {
            n.mempool.clear();
        }
        self.record(b'C', node, &[]);
    }

    /// A fresh engine over the kept ledger; with mempool persistence, the
    /// pending transactions are resubmitted as the node would reload them.
    fn restart(&mut self, node: usize) {
        let now = self.now();
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.engine.is_some() {
            return;
        }
        n.incarnation += 1;
        let reload: Vec<Tx> = std::mem::take(&mut n.mempool)
            .iter()
            .filter_map(|txid| self.txs.get(txid).cloned())
            .collect();
        let accepted: Vec<Tx> = std::mem::take(&mut n.accepted)
            .iter()
            .filter_map(|txid| self.txs.get(txid).cloned())
            .collect();
        self.start_engine(node);
        self.record(b'R', node, &[]);
        if let Some(Node {
            engine: Some(engine),
            ledger,
            accepted: record,
            ..
        }) = self.nodes.get_mut(node)
        {
            for tx in accepted {
                // Refused once a conflict is durable: the store drops that record.
                if let Ok(txid) = engine.restore_accepted(now, tx, ledger) {
                    record.insert(txid);
                }
            }
            for tx in reload {
                // A reloaded tx may since have been decided elsewhere: refusal is fine.
                let _ = engine.handle_submit(now, tx, ledger);
            }
        }
        self.drain(node);
    }

    /// `node` learns that the chain reached `epoch` (and decided the next
    /// epoch's set); a node that is down enters it when it restarts.
    fn enter_epoch(&mut self, node: usize, epoch: u64) {
        let now = self.now();
        let (Some(n), Some(current)) = (self.nodes.get_mut(node), self.epochs.committee(epoch))
        else {
            return;
        };
        n.epoch = epoch;
        if let Some(engine) = n.engine.as_mut() {
            // Epochs arrive in order, each once: never refused.
            let _ = engine.enter_epoch(now, current.clone());
            if let Some(next) = self.epochs.committee(epoch + 1) {
                let _ = engine.learn_next_epoch(next.clone());
            }
        }
        self.record(b'E', node, &epoch.to_le_bytes());
        self.drain(node);
    }

    /// Takes every output of `node`'s engine: events are handled, messages
    /// (rewritten if the node is Byzantine) go onto the network. Then re-arms
    /// the node's timer.
    fn drain(&mut self, node: usize) {
        loop {
            let Some(n) = self.nodes.get_mut(node) else {
                return;
            };
            let Some(output) = n.engine.as_mut().and_then(Engine::poll_output) else {
                break;
            };
            match output {
                Output::Event(event) => self.on_event(node, event),
                out => self.send(node, out),
            }
        }
        self.rearm_timer(node);
    }

    fn send(&mut self, node: usize, out: Output) {
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        let outs = match n.role {
            Role::Honest => vec![out],
            Role::Byzantine(strategy) => {
                let key = n.key.clone();
                self.adversary.rewrite(strategy, &key, out)
            }
        };
        let honest = n.role == Role::Honest;
        for out in outs {
            let (targets, msg) = match out {
                Output::Send { to, msg } => (self.ids.get(&to).copied().into_iter().collect(), msg),
                Output::Broadcast { msg, skip } => {
                    let skipped: Vec<usize> = skip
                        .iter()
                        .filter_map(|id| self.ids.get(id).copied())
                        .collect();
                    // Validators hold slots for each other (DESIGN §8): a
                    // voter's own window reaches every validator directly;
                    // relays, like all other gossip, go to gossip peers.
                    let own_window = matches!(&msg, ConsensusMessage::WindowVote(w)
                        if self.ids.get(&w.vote.voter) == Some(&node));
                    let targets = if own_window {
                        (0..self.nodes.len()).filter(|&i| i != node).collect()
                    } else {
                        let peers = self.nodes.get(node).map(|n| n.peers.as_slice());
                        peers
                            .unwrap_or_default()
                            .iter()
                            .copied()
                            .filter(|peer| !skipped.contains(peer))
                            .collect()
                    };
                    (targets, msg)
                }
                // Every simulated node is a validator (none is an observer),
                // and the simulated net keeps no scores.
                Output::RelayToObservers { .. } | Output::Event(_) | Output::Misbehaved { .. } => {
                    continue
                }
            };
            if self.has_byzantine {
                self.adversary.observe(node, honest, &msg);
            }
            self.transmit(node, targets, msg);
        }
    }

    fn transmit(&mut self, from: usize, targets: Vec<usize>, msg: ConsensusMessage) {
        // Hashed and measured as it is encoded, without a buffer.
        let mut sink = CountingHasher::default();
        encoding::encode_into(&msg, &mut sink);
        let packet = Rc::new(Packet {
            hash: Hash(*sink.hasher.finalize().as_bytes()),
            bytes: sink.bytes,
            msg,
        });
        for to in targets {
            let mut arrived = false;
            for at_ms in self.network.route(from, to, self.now_ms).times() {
                arrived = true;
                self.schedule(
                    at_ms,
                    Action::Deliver {
                        from,
                        to,
                        packet: Rc::clone(&packet),
                    },
                );
            }
            self.traffic.lost += u64::from(!arrived);
        }
    }

    fn on_event(&mut self, node: usize, event: Event) {
        let now = self.now();
        let (kind, txid) = match &event {
            Event::Accepted { txid } => (b'a', *txid),
            Event::LocallyAccepted { txid } => (b'l', *txid),
            Event::Finalized { tx, .. } => (b'f', tx.txid()),
            Event::Rejected { txid, .. } => (b'r', *txid),
            Event::Expired { txid } => (b'e', *txid),
            Event::SafetyViolation { conflicting, .. } => (b'v', *conflicting),
            Event::Equivocation { second, .. } => (b'q', *second),
            Event::WindowEvidence { evidence, .. } => (b'w', evidence.second.tx.txid()),
        };
        self.record(kind, node, txid.as_bytes());
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        match event {
            Event::Accepted { txid } => {
                n.mempool.insert(txid);
            }
            Event::LocallyAccepted { txid } => {
                // The ledger records the acceptance (vote safety), then tells the engine.
                n.accepted.insert(txid);
                if let Some(engine) = n.engine.as_mut() {
                    engine.handle_acceptance_durable(now, &[txid]);
                }
            }
            Event::Rejected { txid, .. } | Event::Expired { txid } => {
                n.mempool.remove(&txid);
            }
            // Counted by the engine (`equivocations`); punishment is §7's.
            Event::Equivocation { .. } => {}
            // The driver's part: store (nothing to store here), gossip once.
            Event::WindowEvidence { evidence, from } => {
                let msg = ConsensusMessage::WindowEvidence(evidence);
                let skip = from.into_iter().collect();
                self.send(node, Output::Broadcast { msg, skip });
            }
            Event::Finalized { tx, proof } => {
                n.mempool.remove(&txid);
                n.accepted.remove(&txid);
                if let Some(engine) = n.engine.as_mut() {
                    let polls = engine.tx_status(&txid).map_or(0, |s| s.polls_completed);
                    if polls > 0 && n.role == Role::Honest {
                        self.polls_to_finality.push(polls);
                    }
                    // The ledger commits, then tells the engine (DESIGN §5).
                    n.ledger.apply(&tx);
                    engine.handle_durable(now, &[txid]);
                }
                self.checkers.on_finalized(node, self.now_ms, &tx, &proof);
            }
            Event::SafetyViolation {
                outpoint,
                finalized,
                conflicting,
                ..
            } => self.checkers.on_conflicting_proofs(
                node,
                self.now_ms,
                outpoint,
                finalized,
                conflicting,
            ),
        }
    }

    fn rearm_timer(&mut self, node: usize) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        let Some(deadline) = n.engine.as_ref().and_then(Engine::poll_timeout) else {
            n.timer_ms = None;
            return;
        };
        let mut at_ms = deadline.0.max(self.now_ms);
        if n.fired_ms == Some(self.now_ms) && at_ms == self.now_ms {
            // Fired at this instant and wants to fire again at once: step
            // the clock so a busy engine cannot stall virtual time.
            at_ms += 1;
            self.timers_rearmed_in_past += 1;
        }
        if n.timer_ms != Some(at_ms) {
            n.timer_ms = Some(at_ms);
            self.schedule(at_ms, Action::Timer { node });
        }
    }

    /// Every epoch's committee, by epoch.
    pub fn epoch_committees(&self) -> &[EpochCommittee] {
        &self.epochs.committees
    }

    pub fn byzantine_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.role != Role::Honest)
            .map(|n| n.key.public())
            .collect()
    }

    pub fn roles(&self) -> Vec<Role> {
        self.nodes.iter().map(|n| n.role).collect()
    }

    /// Hash of every delivery, timer, submission, crash, restart and engine
    /// event so far: two runs are the same run iff their digests are equal.
    pub fn digest(&self) -> Hash {
        Hash(*self.digest.finalize().as_bytes())
    }

    pub fn checkers(&self) -> &Checkers {
        &self.checkers
    }

    pub fn checkers_mut(&mut self) -> &mut Checkers {
        &mut self.checkers
    }

    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    pub fn submissions(&self) -> &[Submission] {
        &self.submissions
    }

    pub fn admitted(&self) -> &[bool] {
        &self.admitted
    }

    pub fn refusals(&self) -> &BTreeMap<String, usize> {
        &self.refusals
    }

    pub fn polls_to_finality(&self) -> &[u32] {
        &self.polls_to_finality
    }

    pub fn timers_rearmed_in_past(&self) -> u64 {
        self.timers_rearmed_in_past
    }

    /// Nodes running now.
    pub fn up_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes.get(i).is_some_and(|n| n.engine.is_some()))
            .collect()
    }

    pub fn engine_totals(&self) -> EngineTotals {
        let mut totals = EngineTotals::default();
        for n in &self.nodes {
            let live = n.engine.as_ref().map(Engine::metrics);
            n.retired
                .iter()
                .chain(live.as_ref())
                .for_each(|m| totals.add(m));
        }
        totals
    }
}

/// Hashes the bytes written into it and counts them.
#[derive(Default)]
struct CountingHasher {
    hasher: blake3::Hasher,
    bytes: u64,
}

impl std::io::Write for CountingHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A connected gossip graph: a ring, plus random links until every node
/// has at least `degree` neighbours (everyone, if `degree ≥ n - 1`).
fn gossip_graph(n: usize, degree: usize, seed: u64) -> Vec<Vec<usize>> {
    if degree + 1 >= n {
        return (0..n)
            .map(|i| (0..n).filter(|&j| j != i).collect())
            .collect();
    }
    let mut rng: ChaCha20Rng = super::rng::concern_rng(seed, "gossip graph");
    let mut links: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    let link = |links: &mut Vec<BTreeSet<usize>>, a: usize, b: usize| {
        if a != b {
            links[a].insert(b);
            links[b].insert(a);
        }
    };
    for i in 0..n {
        link(&mut links, i, (i + 1) % n);
    }
    for i in 0..n {
        while links[i].len() < degree {
            let j = below(&mut rng, n as u64) as usize;
            link(&mut links, i, j);
        }
    }
    links.into_iter().map(|s| s.into_iter().collect()).collect()
}
