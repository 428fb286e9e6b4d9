//! Slashing evidence a block carries (DESIGN §7): proof that one validator
//! signed both sides of a choice, two window votes over conflicting spends
//! or two endorsements of one height. Once a block carrying it is final,
//! the registry marks the offender slashed: its collateral burns and it
//! leaves the set of the effective epoch, on every node alike, because the
//! evidence is in the chain itself.
//!
//! Pure: each piece is checked offline against the sets the view holds for
//! the epochs its votes name, and the offender's standing comes from the
//! view (the registry as of the parent), never from the evidence.

use super::block::MAX_BLOCK_BYTES;
use super::certificate::{CertificateError, Equivocation};
use super::validity::{endorsement_context, ChainView, ChainViewError};
use crate::finality::{max_evidence_bytes, EvidenceError, FinalityVote, WindowEquivocation};
use crate::types::tx::MAX_TX_BYTES_HARD;
use crate::types::PublicKeyBytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most pieces of evidence one block carries (one per offender); the rest
/// wait for the next block.
pub const MAX_BLOCK_EVIDENCE: usize = 16;
/// Most bytes of evidence one block carries: an eighth of the block, so
/// entries keep most of it, yet room for a piece whose two transactions
/// are at the hard size limit.
pub const MAX_BLOCK_EVIDENCE_BYTES: usize = MAX_BLOCK_BYTES / 8;
const _: () = assert!(max_evidence_bytes(MAX_TX_BYTES_HARD) < MAX_BLOCK_EVIDENCE_BYTES);

/// One validator's equivocation, as a block carries it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SlashingEvidence {
    /// Two window votes covering two transactions that spend one outpoint.
    Window(WindowEquivocation),
    /// Two endorsements of different blocks at one height.
    Endorsement(Equivocation),
}

/// Where an identity stands in the masternode registry as of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Never registered (or registered above that block).
    NotAMember,
    /// Registered (or in the genesis), deregistered or not: its collateral
    /// is still bonded, so it can still be slashed.
    Member,
    /// Evidence against it is in the block at `height`.
    Slashed { height: u64 },
}

/// Why a piece of evidence does not prove an equivocation on this chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvidence {
    #[error("window-vote evidence: {0}")]
    Window(EvidenceError),
    #[error("endorsement evidence: {0}")]
    Endorsement(CertificateError),
}

impl InvalidEvidence {
    /// Whether a block carrying it is provably wrong: always, but for
    /// votes of an epoch whose set is not decided here yet.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            InvalidEvidence::Window(EvidenceError::UnknownEpoch(_))
                | InvalidEvidence::Endorsement(CertificateError::UnknownEpoch { .. })
        )
    }
}

impl SlashingEvidence {
    /// The validator it proves equivocated.
    pub fn offender(&self) -> PublicKeyBytes {
        match self {
            SlashingEvidence::Window(e) => e.first.vote.voter,
            SlashingEvidence::Endorsement(e) => e.first.voter,
        }
    }

    /// Checks it offline against the sets `view` holds for the epochs its
    /// votes name: window votes against that epoch's finality committee
    /// (their signatures through `signature_ok`, so a node can use its
    /// cache), endorsements against their height's epoch's endorsers.
    pub fn verify(
        &self,
        view: &impl ChainView,
        signature_ok: impl FnMut(&FinalityVote) -> bool,
    ) -> Result<(), InvalidEvidence> {
        match self {
            SlashingEvidence::Window(e) => e
                .verify_with(
                    view.chain_id(),
                    view.genesis_hash(),
                    |epoch| view.committee_for_epoch(epoch),
                    signature_ok,
                )
                .map(|_| ())
                .map_err(InvalidEvidence::Window),
            SlashingEvidence::Endorsement(e) => endorsement_context(view, e.first.height)
                .and_then(|context| e.verify(&context))
                .map_err(InvalidEvidence::Endorsement),
        }
    }
}

/// What a block built on `view`'s tip may carry out of `candidates` (any
/// order, any number): pieces that verify against a member not yet
/// slashed, the first such per offender, at most [`MAX_BLOCK_EVIDENCE`],
/// ascending by offender. The builder keeps what fits the block's bytes.
pub fn select_evidence(
    candidates: impl IntoIterator<Item = SlashingEvidence>,
    view: &impl ChainView,
    mut signature_ok: impl FnMut(&FinalityVote) -> bool,
) -> Result<Vec<SlashingEvidence>, ChainViewError> {
    let mut chosen: BTreeMap<PublicKeyBytes, SlashingEvidence> = BTreeMap::new();
    for evidence in candidates {
        if chosen.len() >= MAX_BLOCK_EVIDENCE {
            break;
        }
        let offender = evidence.offender();
        if chosen.contains_key(&offender) || view.standing(&offender)? != Standing::Member {
            continue;
        }
        if evidence.verify(view, &mut signature_ok).is_ok() {
            chosen.insert(offender, evidence);
        }
    }
    Ok(chosen.into_values().collect())
}
