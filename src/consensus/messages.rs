//! What validators say to each other about transactions (DESIGN §4–5), and
//! what the engine hands back to its driver. Plain data: the net layer frames
//! and tags these; the engine re-checks every size limit on arrival.

use super::misbehaviour::Misbehaviour;
use crate::finality::{FinalityProof, WindowEquivocation, WindowVote};
use crate::mempool::TxStatus;
use crate::types::{Hash, OutPoint, PublicKeyBytes, Tx};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Validators are identified by their ed25519 identity key.
pub type NodeId = PublicKeyBytes;

/// A responder's answer about one txid in a Snowball poll: `Valid` iff the
/// tx is locally valid and preferred on every input's conflict set;
/// `Invalid` iff it is invalid or a conflicting tx is preferred; `Unknown`
/// iff the responder lacks it (and then fetches it). Unsigned: finality
/// comes from window votes, never from poll answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// Gossip of a transaction newly admitted to the sender's mempool.
    Tx(Tx),
    /// Fetch transactions the sender was polled about but lacks.
    GetTxs {
        txids: Vec<Hash>,
    },
    Txs {
        txs: Vec<Tx>,
    },
    /// A Snowball poll of at most `max_txs_per_query` txids (validators only).
    Query {
        request_id: u64,
        txids: Vec<Hash>,
    },
    /// The answer to `Query` `request_id`, one verdict per txid, in query order.
    Votes {
        request_id: u64,
        verdicts: Vec<(Hash, Verdict)>,
    },
    /// A validator's signed window with its txids: broadcast once by the
    /// voter, relayed once by every node (dedupe by `(voter, seq)`).
    WindowVote(Arc<WindowVote>),
    /// Asks for window `seq` of `voter`, missed (a gap in its sequence).
    GetWindowVote {
        voter: NodeId,
        seq: u64,
    },
    /// A complete finality proof (catch-up): finalizes its tx without sampling.
    Proof(FinalityProof),
    /// Window-vote equivocation evidence: verified, stored and relayed once.
    WindowEvidence(Box<WindowEquivocation>),
}

/// Something the driver must do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Output {
    Send {
        to: NodeId,
        msg: ConsensusMessage,
    },
    /// To every connected peer but those in `skip`, which have it already.
    Broadcast {
        msg: ConsensusMessage,
        skip: Vec<NodeId>,
    },
    /// To every connected peer that is not a validator (of the whole set),
    /// but those in `skip`: validators had it from its sender directly.
    RelayToObservers {
        msg: ConsensusMessage,
        skip: Vec<NodeId>,
    },
    Event(Event),
    /// `peer` sent something invalid; the net layer scores it if
    /// `reason.is_fault()`.
    Misbehaved {
        peer: NodeId,
        reason: Misbehaviour,
    },
}

/// Why a transaction left the mempool without being finalized here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RejectReason {
    /// A conflicting tx was locally accepted.
    ConflictAccepted { winner: Hash },
    /// A conflicting tx has a valid finality proof.
    ConflictFinalized { winner: Hash },
    /// `beta` consecutive polls had an `Invalid` quorum.
    InvalidQuorum,
}

/// What happened to a transaction, for the driver (ledger, RPC, logs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// Entered the mempool; sampling starts.
    Accepted {
        txid: Hash,
    },
    /// Confidence reached `beta` while preferred on every input. The driver
    /// must record it durably (vote safety), then call
    /// `Engine::handle_acceptance_durable`: our window vote covers it only then.
    LocallyAccepted {
        txid: Hash,
    },
    /// Window votes reached the quorum (or a proof arrived). The driver must
    /// persist tx and proof, then call `Engine::handle_durable`.
    Finalized {
        tx: Tx,
        proof: FinalityProof,
    },
    Rejected {
        txid: Hash,
        reason: RejectReason,
    },
    /// No local acceptance within `mempool_expiry_ms`; its locks are released.
    Expired {
        txid: Hash,
    },
    /// One validator's window votes cover two conflicting transactions
    /// (both votes verified): equivocation evidence against `voter`.
    Equivocation {
        voter: NodeId,
        outpoint: OutPoint,
        first: Hash,
        second: Hash,
    },
    /// Verified window-vote equivocation evidence new to this node (caught
    /// here, `from` `None`, or received from `from`): the driver stores it
    /// in one write, then gossips it once to every peer but `from`.
    WindowEvidence {
        evidence: Box<WindowEquivocation>,
        from: Option<NodeId>,
    },
    /// Two valid proofs for conflicting transactions: more than a third of
    /// the weight signed both. Finalization halts on this node; the driver
    /// persists the halt with `conflicting_proof` (and the stored proof of
    /// `finalized`), so it outlives a restart until an operator clears it.
    SafetyViolation {
        outpoint: OutPoint,
        finalized: Hash,
        conflicting: Hash,
        conflicting_proof: Box<FinalityProof>,
    },
}

/// What the engine knows about one transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TxStatusReport {
    pub status: TxStatus,
    /// Finalized and committed by the ledger (`handle_durable`); details are forgotten.
    pub durable: bool,
    pub confidence: u32,
    pub counter: u32,
    pub polls_completed: u32,
    pub polls_outstanding: u32,
    pub proof_weight: u64,
    pub proof_needed: u64,
    pub first_seen: Option<crate::time::MonoTime>,
    pub locally_accepted_at: Option<crate::time::MonoTime>,
    pub finalized_at: Option<crate::time::MonoTime>,
    /// When a tx still sampling leaves the mempool.
    pub expires_at: Option<crate::time::MonoTime>,
}
