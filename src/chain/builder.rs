//! Producing a checkpoint block: choose the evidence, the heartbeats and
//! the entries, pay the reward, draw the VRF ticket and sign.
//!
//! Pure: the caller passes the finalized-not-archived proofs with their
//! fees, the evidence `select_evidence` chose, the heartbeats of the
//! block's epoch, the keys and `now`. It must never build a block that
//! `validate_block` would refuse on the same view.

use super::block::{
    certificate_digest, encoded_len, entries_root, evidence_digest, Block, BlockHeader, RewardTx,
    BLOCK_VERSION, MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES,
};
use super::certificate::Certificate;
use super::heartbeat::{heartbeats_digest, Heartbeat, MAX_BLOCK_HEARTBEATS};
use super::reward::{expected_reward, Payouts};
use super::slashing::{SlashingEvidence, MAX_BLOCK_EVIDENCE, MAX_BLOCK_EVIDENCE_BYTES};
use super::slot::SlotClock;
use super::validity::ChainTip;
use crate::crypto::vrf::{SortitionInput, VrfKeypair};
use crate::crypto::Keypair;
use crate::finality::{FinalityProof, ValidatorSet};
use crate::time::Timestamp;
use crate::types::{
    Address, Amount, ChainId, Hash, OutPoint, PublicKeyBytes, SignatureBytes, TxOut,
};
use std::collections::HashSet;

/// Where and when a block is built.
#[derive(Clone, Copy, Debug)]
pub struct BlockTemplate<'a> {
    pub chain_id: ChainId,
    /// The block to extend.
    pub parent: ChainTip,
    pub slot: u64,
    pub now: Timestamp,
    pub slot_clock: SlotClock,
    /// The decided set of the block's epoch: its producers.
    pub validators: &'a ValidatorSet,
    /// Where the members' reward shares go.
    pub payouts: &'a Payouts,
    /// The parent's certificate, when this node holds one: the block
    /// carries it so the chain records who endorsed the parent.
    pub parent_certificate: Option<&'a Certificate>,
    /// Equivocation evidence to carry, as `select_evidence` chose it for
    /// `parent` (verified, against members not yet slashed).
    pub evidence: &'a [SlashingEvidence],
    /// Heartbeats to carry: of the block's epoch, verified, by members of
    /// `validators` or registered members outside it (the validity rule).
    pub heartbeats: &'a [Heartbeat],
    /// Byte budget (e.g. to fit the network's frame limit); never above
    /// [`MAX_BLOCK_BYTES`].
    pub max_block_bytes: usize,
}

/// Why this node cannot build a block for the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("this node's identity key is not a validator in slot {slot}")]
    NotAValidator { slot: u64 },
    #[error("this node's VRF key is not the one registered for its identity")]
    WrongVrfKey,
    #[error("slot {slot} is not after the parent's slot {parent_slot}")]
    SlotNotAfterParent { slot: u64, parent_slot: u64 },
    #[error("the fees of the selected entries overflow")]
    FeeOverflow,
}

/// Builds and signs the block for `template.slot` on `template.parent`.
///
/// `finalized` are the finalized, not yet archived proofs with their fees,
/// in any order. The block takes them by ascending txid, skipping
/// duplicates and any that would conflict with one already taken, until
/// [`MAX_BLOCK_ENTRIES`] or the byte budget is reached; the rest wait for
/// a later block.
pub fn build_block(
    template: &BlockTemplate<'_>,
    vrf_key: &VrfKeypair,
    identity: &Keypair,
    finalized: impl IntoIterator<Item = (FinalityProof, Amount)>,
) -> Result<Block, BuildError> {
    let t = template;
    let producer = identity.public();
    let registered = t
        .validators
        .index_of(&producer)
        .and_then(|i| t.validators.validators().get(i))
        .ok_or(BuildError::NotAValidator { slot: t.slot })?;
    if registered.vrf_key != vrf_key.public() {
        return Err(BuildError::WrongVrfKey);
    }
    if t.slot <= t.parent.slot {
        return Err(BuildError::SlotNotAfterParent {
            slot: t.slot,
            parent_slot: t.parent.slot,
        });
    }
    let input = SortitionInput {
        chain_id: t.chain_id,
        prev_hash: t.parent.hash,
        slot: t.slot,
    };
    let (vrf_output, vrf_proof) = vrf_key.sign_slot(&input);
    let height = t.parent.height.saturating_add(1);
    let mut block = Block {
        header: BlockHeader {
            version: BLOCK_VERSION,
            chain_id: t.chain_id,
            height,
            slot: t.slot,
            prev_hash: t.parent.hash,
            producer,
            vrf_output,
            vrf_proof,
            entries_root: Hash::ZERO,
            parent_certificate: certificate_digest(t.parent_certificate),
            evidence: Hash::ZERO,
            heartbeats: Hash::ZERO,
            timestamp_ms: block_timestamp_ms(t.slot_clock, t.slot, t.now),
        },
        producer_sig: SignatureBytes([0; 64]),
        entries: Vec::new(),
        reward: RewardTx {
            height,
            outputs: Vec::new(),
        },
        parent_certificate: t.parent_certificate.cloned(),
        evidence: Vec::new(),
        heartbeats: Vec::new(),
    };
    let budget = t.max_block_bytes.min(MAX_BLOCK_BYTES);
    let room = budget.saturating_sub(skeleton_len(&block, t.validators));
    block.evidence = take_evidence(t.evidence, room);
    block.header.evidence = evidence_digest(&block.evidence);
    let room = budget.saturating_sub(skeleton_len(&block, t.validators));
    block.heartbeats = take_heartbeats(t.heartbeats, room);
    block.header.heartbeats = heartbeats_digest(&block.heartbeats);
    let (entries, fees) = select_entries(&block, t, finalized)?;
    block.entries = entries;
    let payout = |id: &PublicKeyBytes| Ok::<_, BuildError>(t.payouts.address_of(id));
    block.reward = expected_reward(height, &producer, t.validators, fees, payout)?
        .ok_or(BuildError::FeeOverflow)?;
    let txids: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
    block.header.entries_root = entries_root(&txids, block.reward.id());
    block.sign(identity);
    Ok(block)
}

/// `now`, clamped into the slot so the block's timestamp is always valid.
fn block_timestamp_ms(clock: SlotClock, slot: u64, now: Timestamp) -> u64 {
    let start = clock.slot_start_ms(slot);
    let last = clock.slot_end_ms(slot).saturating_sub(1).max(start);
    now.as_millis().clamp(start, last)
}

/// `evidence` ascending by offender, one piece each, within
/// [`MAX_BLOCK_EVIDENCE`] and `room` (at most [`MAX_BLOCK_EVIDENCE_BYTES`]):
/// a piece too large is skipped, as a smaller one after it may still fit.
fn take_evidence(evidence: &[SlashingEvidence], room: usize) -> Vec<SlashingEvidence> {
    let mut sorted: Vec<&SlashingEvidence> = evidence.iter().collect();
    sorted.sort_by_key(|e| e.offender());
    sorted.dedup_by_key(|e| e.offender());
    let max_bytes = room.min(MAX_BLOCK_EVIDENCE_BYTES);
    let mut bytes = encoded_len(&Vec::<SlashingEvidence>::new());
    let mut kept = Vec::new();
    for piece in sorted {
        if kept.len() >= MAX_BLOCK_EVIDENCE {
            break;
        }
        let len = encoded_len(piece);
        if bytes.saturating_add(len) > max_bytes {
            continue;
        }
        bytes += len;
        kept.push(piece.clone());
    }
    kept
}

/// `heartbeats` ascending by validator, one each, within
/// [`MAX_BLOCK_HEARTBEATS`] and `room` (they are all of one size).
fn take_heartbeats(heartbeats: &[Heartbeat], room: usize) -> Vec<Heartbeat> {
    let mut sorted: Vec<&Heartbeat> = heartbeats.iter().collect();
    sorted.sort_by_key(|h| h.validator);
    sorted.dedup_by_key(|h| h.validator);
    let each = sorted.first().map_or(1, |h| encoded_len(*h)).max(1);
    let fit = room
        .saturating_sub(encoded_len(&Vec::<Heartbeat>::new()))
        .checked_div(each)
        .unwrap_or_default();
    sorted
        .into_iter()
        .take(fit.min(MAX_BLOCK_HEARTBEATS))
        .cloned()
        .collect()
}

/// Entries by ascending txid within the limits, and the sum of their fees.
fn select_entries(
    skeleton: &Block,
    t: &BlockTemplate<'_>,
    finalized: impl IntoIterator<Item = (FinalityProof, Amount)>,
) -> Result<(Vec<FinalityProof>, Amount), BuildError> {
    let mut candidates: Vec<(Hash, FinalityProof, Amount)> = finalized
        .into_iter()
        .map(|(proof, fee)| (proof.tx.txid(), proof, fee))
        .collect();
    candidates.sort_by_key(|(txid, _, _)| *txid);
    candidates.dedup_by_key(|(txid, _, _)| *txid);

    let budget = t.max_block_bytes.min(MAX_BLOCK_BYTES);
    let mut bytes = skeleton_len(skeleton, t.validators);
    let mut spent: HashSet<OutPoint> = HashSet::new();
    let mut fees = Amount::ZERO;
    let mut entries = Vec::new();
    for (_, proof, fee) in candidates {
        if entries.len() >= MAX_BLOCK_ENTRIES {
            break;
        }
        if proof.tx.inputs.iter().any(|i| spent.contains(&i.prev)) {
            continue;
        }
        let len = encoded_len(&proof);
        if bytes.saturating_add(len) > budget {
            break;
        }
        bytes += len;
        fees = fees.checked_add(fee).ok_or(BuildError::FeeOverflow)?;
        spent.extend(proof.tx.inputs.iter().map(|i| i.prev));
        entries.push(proof);
    }
    Ok((entries, fees))
}

/// Encoded length of `skeleton` (with its evidence and heartbeats) with
/// no entries and the largest reward the set can produce (one output per
/// validator plus the producer).
fn skeleton_len(skeleton: &Block, set: &ValidatorSet) -> usize {
    let widest = TxOut {
        value: Amount(0),
        address: Address([0; 20]),
    };
    let reward = RewardTx {
        height: skeleton.reward.height,
        outputs: vec![widest; set.len() + 1],
    };
    encoded_len(&skeleton.header)
        + encoded_len(&skeleton.producer_sig)
        + encoded_len(&Vec::<FinalityProof>::new())
        + encoded_len(&reward)
        + encoded_len(&skeleton.parent_certificate)
        + encoded_len(&skeleton.evidence)
        + encoded_len(&skeleton.heartbeats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_clamped_into_the_slot() {
        let clock = SlotClock::new(1_000, 100).unwrap();
        assert_eq!(block_timestamp_ms(clock, 5, Timestamp(4_900)), 5_000);
        assert_eq!(block_timestamp_ms(clock, 5, Timestamp(5_500)), 5_500);
        assert_eq!(block_timestamp_ms(clock, 5, Timestamp(9_000)), 5_999);
    }
}
