//! Why a peer's consensus message was provably invalid (DESIGN §8): the
//! engine reports it as [`super::Output::Misbehaved`] and the driver hands
//! it to the net layer's misbehaviour score.
//!
//! Only what an honest peer never sends is a fault: every node checks a
//! window or proof before relaying it, so a bad signature, a stranger's
//! vote or a failing proof is the sender's doing. Stale, duplicate,
//! over-budget or merely unwanted data (an epoch we do not know yet, a
//! message over a size limit another configuration may allow) is never a
//! fault; it is dropped and counted.

use crate::finality::{EvidenceError, ProofError, WindowError};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Misbehaviour {
    #[error("window vote signature does not verify")]
    ForgedWindow,
    #[error("malformed window vote: {0}")]
    MalformedWindow(WindowError),
    #[error("window vote by a key outside the validator set")]
    OutsiderWindow,
    #[error("window vote for another chain or genesis")]
    WrongChainWindow,
    #[error("invalid finality proof: {0}")]
    InvalidProof(ProofError),
    #[error("invalid window evidence: {0}")]
    InvalidEvidence(EvidenceError),
    #[error("message lists {len} items, over the limit of {max}")]
    Oversized { len: usize, max: usize },
}

impl Misbehaviour {
    /// Whether the sender deserves a penalty (it sent what no honest node sends).
    pub fn is_fault(&self) -> bool {
        match self {
            Misbehaviour::InvalidProof(ProofError::UnknownEpoch { .. }) => false,
            Misbehaviour::Oversized { .. } => false,
            Misbehaviour::InvalidEvidence(e) => e.is_peer_fault(),
            Misbehaviour::ForgedWindow
            | Misbehaviour::MalformedWindow(_)
            | Misbehaviour::OutsiderWindow
            | Misbehaviour::WrongChainWindow
            | Misbehaviour::InvalidProof(_) => true,
        }
    }

    /// A short fixed label for logs and the net layer's "last reason".
    pub fn label(&self) -> &'static str {
        match self {
            Misbehaviour::ForgedWindow => "forged window vote",
            Misbehaviour::MalformedWindow(_) => "malformed window vote",
            Misbehaviour::OutsiderWindow => "window vote by a non-validator",
            Misbehaviour::WrongChainWindow => "window vote for another chain",
            Misbehaviour::InvalidProof(_) => "invalid finality proof",
            Misbehaviour::InvalidEvidence(_) => "invalid window evidence",
            Misbehaviour::Oversized { .. } => "oversized consensus message",
        }
    }
}
