//! Every message that crosses a thread boundary, and the capacities of the
//! bounded channels that carry them. A disconnected channel means the other
//! side has shut down; a full one is back-pressure, counted in metrics.
//!
//! Plain data only: no logic lives here.

use crate::consensus::{
    ConsensusMessage, EpochCommittee, NodeId, PeerWork, SubmitError, TxStatusReport,
};
use crate::finality::FinalityProof;
use crate::store::FinalizedTx;
use crate::time::MonoTime;
use crate::types::{Hash, Tx};
use crossbeam_channel::Sender;

/// RPC (and, with the net layer, peers) → consensus thread.
pub const CONSENSUS_INBOX_CAPACITY: usize = 4_096;
/// Consensus thread → ledger thread. When full, the consensus thread keeps
/// a backlog and refuses new submissions rather than block.
pub const LEDGER_CAPACITY: usize = 4_096;
/// Ledger thread → consensus thread: one report per committed batch.
pub const DURABLE_CAPACITY: usize = 1_024;

/// Input of the consensus thread. The net layer adds its `NetEvent`s here.
#[derive(Debug)]
pub enum NodeEvent {
    /// A transaction from a wallet. The outcome of admission goes to
    /// `reply`; an admission only once the tx is durable in the mempool
    /// table, so an acknowledged tx survives a crash.
    Submit {
        tx: Tx,
        reply: Sender<Result<Hash, SubmitRefused>>,
    },
    Query(ConsensusQuery),
    /// A finality proof carried by a block that `from` sent (the block
    /// thread learned a tx finalized elsewhere): handled like a gossiped
    /// `Proof`, so the mempool drops what conflicts with it.
    PeerProof {
        from: NodeId,
        proof: Box<FinalityProof>,
    },
    /// The final chain reached epoch `current.epoch` (the block thread
    /// tells, DESIGN §7): its committee polls and signs from now on, and
    /// `next`'s members' early votes count.
    Epoch {
        current: EpochCommittee,
        next: Option<EpochCommittee>,
    },
    /// Stop after this batch: hand everything pending to the ledger and exit.
    Shutdown,
}

/// Why the consensus thread did not admit a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRefused {
    #[error(transparent)]
    Engine(#[from] SubmitError),
    #[error("the node is {backlog} disk writes behind; retry in a moment")]
    LedgerBehind { backlog: usize },
    #[error("finalization is halted on this node after a safety violation; see its log")]
    Halted,
}

/// Most ledger commands the consensus thread queues while the ledger channel
/// is full; past it, submissions are refused (back-pressure to wallets).
pub const MAX_LEDGER_BACKLOG: usize = 65_536;

/// Most submissions waiting for their mempool record to become durable
/// before they are answered; past it, submissions are refused as behind.
pub const MAX_SUBMITS_AWAITING_DURABLE: usize = 4_096;

/// Questions the RPC asks the engine; each answer goes to its bounded reply channel.
#[derive(Debug)]
pub enum ConsensusQuery {
    TxStatus {
        txid: Hash,
        reply: Sender<TxStatusAnswer>,
    },
    Info {
        reply: Sender<ConsensusInfo>,
    },
    Mempool {
        reply: Sender<MempoolSnapshot>,
    },
    /// What each peer's messages cost the engine (its work budget), for `getpeerinfo`.
    PeerWork {
        reply: Sender<Vec<(NodeId, PeerWork)>>,
    },
}

/// What the engine knows of a transaction, and when it settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxStatusAnswer {
    pub report: Option<TxStatusReport>,
    /// Kept (bounded) after the engine forgets a durable transaction.
    pub timings: Option<FinalityTimings>,
}

/// When a durable transaction passed each step, on this node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalityTimings {
    pub first_seen: MonoTime,
    pub locally_accepted_at: Option<MonoTime>,
    pub finalized_at: Option<MonoTime>,
    pub durable_at: MonoTime,
}

/// How many durable transactions' timings the consensus thread remembers:
/// `gettxstatus` reads them seconds after durability (16 s at 2,000 tx/s),
/// and at ~250 bytes each the map stays near 8 MiB.
pub const FINALITY_TIMINGS_KEPT: usize = 32_768;

/// `getconsensusinfo`: the engine's parameters and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusInfo {
    /// The epoch whose committee polls and signs (DESIGN §7).
    pub epoch: u64,
    pub validators: usize,
    pub total_weight: u64,
    pub required_weight: u64,
    pub sample_k: u32,
    pub sample_alpha: u32,
    pub is_validator: bool,
    pub halted: bool,
    pub mempool_txs: usize,
    /// Transactions reloaded from the datadir's mempool at start (locally
    /// accepted ones restored from the vote-safety record included).
    pub mempool_reloaded: usize,
    pub polls_started: u64,
    pub polls_succeeded: u64,
    pub polls_failed: u64,
    pub proofs_assembled: u64,
    pub finality_votes_signed: u64,
    pub next_timeout: Option<MonoTime>,
}

/// `getmempoolinfo` / `getrawmempool`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolSnapshot {
    /// Sorted, at most [`MAX_MEMPOOL_LISTING`].
    pub txids: Vec<Hash>,
    pub size: usize,
    pub bytes: usize,
}

/// `getrawmempool` lists at most this many txids (the reply stays bounded).
pub const MAX_MEMPOOL_LISTING: usize = 100_000;

/// Input of the ledger thread, the only writer of chain state.
#[derive(Debug)]
pub enum LedgerCommand {
    /// Persist an admitted transaction so pending work survives a restart.
    MempoolPut(Tx),
    /// Record our local acceptance (the vote-safety record): until it is
    /// durable, our finality vote must not cover the tx.
    Accepted(Tx),
    /// Make a finalized transaction and its proof durable.
    Finalized(FinalizedTx),
    /// Forget a pending transaction (rejected or expired).
    MempoolRemove(Hash),
}

/// Ledger thread → consensus thread: what one committed batch made durable.
#[derive(Debug, Default)]
pub struct Durable {
    /// Finalized transactions, committed with their proofs.
    pub finalized: Vec<Hash>,
    /// Local acceptances now on record: our vote may cover them.
    pub accepted: Vec<Hash>,
    /// Admitted transactions now in the mempool table: their submitters
    /// may be answered.
    pub admitted: Vec<Hash>,
    /// When the commit finished.
    pub at: MonoTime,
}

/// Where the consensus thread's outgoing messages go. The net layer
/// implements it; `--dev` (no peers) uses [`NoNet`].
pub trait NetSink: Send {
    fn send(&mut self, to: NodeId, msg: ConsensusMessage);
    /// To every connected peer but those in `skip`.
    fn broadcast(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>);
    /// Adds to `peer`'s misbehaviour score (it sent provably invalid data).
    fn penalize(&mut self, peer: NodeId, points: u32, reason: &'static str);
    /// To every connected peer that is not a validator, but those in `skip`.
    fn relay_to_observers(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>);
}

/// Lets the node pick its sink at start (`--dev` or peers) with one thread type.
impl NetSink for Box<dyn NetSink> {
    fn send(&mut self, to: NodeId, msg: ConsensusMessage) {
        (**self).send(to, msg);
    }
    fn broadcast(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>) {
        (**self).broadcast(msg, skip);
    }
    fn penalize(&mut self, peer: NodeId, points: u32, reason: &'static str) {
        (**self).penalize(peer, points, reason);
    }

    fn relay_to_observers(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>) {
        (**self).relay_to_observers(msg, skip);
    }
}

/// A node without peers: outgoing messages are dropped (a one-validator
/// chain answers its own polls inline and sends nothing that matters).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNet;

impl NetSink for NoNet {
    fn send(&mut self, to: NodeId, msg: ConsensusMessage) {
        log::trace!("no network: dropping a message to {to:?}: {}", kind(&msg));
    }

    fn broadcast(&mut self, msg: ConsensusMessage, _skip: Vec<NodeId>) {
        log::trace!("no network: dropping a broadcast {}", kind(&msg));
    }

    fn penalize(&mut self, peer: NodeId, _points: u32, reason: &'static str) {
        log::trace!("no network: not scoring {peer:?} for {reason}");
    }

    fn relay_to_observers(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>) {
        self.broadcast(msg, skip);
    }
}

fn kind(msg: &ConsensusMessage) -> &'static str {
    match msg {
        ConsensusMessage::Tx(_) => "Tx",
        ConsensusMessage::GetTxs { .. } => "GetTxs",
        ConsensusMessage::Txs { .. } => "Txs",
        ConsensusMessage::Query { .. } => "Query",
        ConsensusMessage::Votes { .. } => "Votes",
        ConsensusMessage::Proof(_) => "Proof",
        ConsensusMessage::WindowVote(_) => "WindowVote",
        ConsensusMessage::GetWindowVote { .. } => "GetWindowVote",
        ConsensusMessage::WindowEvidence(_) => "WindowEvidence",
    }
}
