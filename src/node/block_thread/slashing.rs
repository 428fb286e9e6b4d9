//! Slashing in the block thread (DESIGN §7): the equivocation evidence this
//! node stored (its own catches and its peers' gossip) offered to the
//! blocks it builds. The chain rules (`chain::slashing`) decide what a
//! block may carry; the registry slashes once the block is final (see
//! `epochs`). Evidence against a voter already slashed is skipped by its
//! key, never decoded again.

use super::StoreChainView;
use crate::chain::{select_evidence, ChainView, Equivocation, SlashingEvidence, Standing};
use crate::finality::{WindowEquivocation, MAX_WINDOW_EVIDENCE_PER_VOTER};
use crate::store::{EvidenceKind, StoreError};
use crate::types::encoding::DecodeError;

/// Most accused voters read per kind of evidence for one block: far above
/// any set's size.
const ACCUSED_READ_MAX: usize = 4_096;
/// Pieces read per accused voter: one that verifies is enough, a few more
/// cover pieces of epochs no longer held here.
const PIECES_PER_VOTER: usize = MAX_WINDOW_EVIDENCE_PER_VOTER;

/// The evidence our block on `view`'s tip carries: stored pieces against
/// members not yet slashed, as the chain rules select them. None (logged)
/// if the chain state cannot tell who is slashed already.
pub(super) fn evidence_to_carry(
    view: &StoreChainView<'_>,
) -> Result<Vec<SlashingEvidence>, StoreError> {
    let mut candidates = Vec::new();
    for kind in [EvidenceKind::Endorsement, EvidenceKind::Window] {
        for voter in view.read.accused_voters(kind, ACCUSED_READ_MAX)? {
            match view.standing(&voter) {
                Ok(Standing::Member) => {}
                Ok(_) => continue,
                Err(e) => {
                    log::warn!(
                        "cannot tell whether {voter:?} is slashed already ({e}); our block \
                         carries no evidence"
                    );
                    return Ok(Vec::new());
                }
            }
            for bytes in view.read.evidence_against(kind, &voter, PIECES_PER_VOTER)? {
                match decode(kind, &bytes) {
                    Ok(evidence) => candidates.push(evidence),
                    Err(e) => log::warn!("stored evidence against {voter:?} does not decode: {e}"),
                }
            }
        }
    }
    match select_evidence(candidates, view, |vote| vote.verify_signature().is_ok()) {
        Ok(chosen) => Ok(chosen),
        Err(e) => {
            log::warn!("cannot select evidence for our block ({e}); it carries none");
            Ok(Vec::new())
        }
    }
}

/// A stored piece, as the table of its kind holds it.
fn decode(kind: EvidenceKind, bytes: &[u8]) -> Result<SlashingEvidence, DecodeError> {
    match kind {
        EvidenceKind::Endorsement => Equivocation::decode(bytes).map(SlashingEvidence::Endorsement),
        EvidenceKind::Window => WindowEquivocation::decode(bytes).map(SlashingEvidence::Window),
    }
}
