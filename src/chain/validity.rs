//! Block validity (DESIGN §6): every rule a checkpoint block must pass
//! against the chain it extends, each refused with its own
//! [`BlockRejection`].
//!
//! Pure: the chain state comes through [`ChainView`] (the store implements
//! it; tests use an in-memory one), `now` comes from the view. Cheap checks
//! run first and signatures last, so a hostile block costs little. It must
//! never take a weight, a membership, a fee or a time from the block itself.

use super::block::{
    certificate_digest, encoded_len, entries_root, evidence_digest, Block, BLOCK_VERSION,
    MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES,
};
use super::certificate::{CertificateError, VoteContext};
use super::heartbeat::{heartbeats_digest, Heartbeat, MAX_BLOCK_HEARTBEATS};
use super::reward::expected_reward;
use super::slashing::{InvalidEvidence, Standing, MAX_BLOCK_EVIDENCE, MAX_BLOCK_EVIDENCE_BYTES};
use super::slot::SlotClock;
use super::sortition::Ticket;
use crate::crypto::vrf::{verify_slot, VrfError};
use crate::crypto::PublicKey;
use crate::finality::{verify_proof_with, FinalityProof, FinalityVote, ProofError, ValidatorSet};
use crate::time::Timestamp;
use crate::types::{Address, Amount, ChainId, Hash, OutPoint, PublicKeyBytes, Tx};
use std::collections::HashMap;

/// The block a view extends: what a new block's header must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub hash: Hash,
    pub height: u64,
    pub slot: u64,
}

/// A chain-state read failed (the store's problem, not the block's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading the chain state failed: {0}")]
pub struct ChainViewError(pub String);

/// The chain state a block is validated against, positioned at the block
/// it must extend: normally the tip; when fork choice weighs a rival for
/// an adopted block, that block's parent, with archival state as of it.
pub trait ChainView {
    fn chain_id(&self) -> ChainId;
    /// Finality votes sign it (DESIGN §5): a vote of another genesis is foreign.
    fn genesis_hash(&self) -> Hash;
    /// The block the candidate must extend.
    fn tip(&self) -> ChainTip;
    /// The epoch that holds `height` (DESIGN §7).
    fn epoch_of(&self, height: u64) -> u64;
    /// The decided set of the [`producing_epoch`] of the block extending
    /// [`ChainView::tip`]: its members produce it, by weight, and share its
    /// reward; `None` while that set is not known here.
    fn producers(&self) -> Option<&ValidatorSet>;
    /// Where `identity`'s share of a reward goes: the payout address it
    /// registered (the genesis members': their identity's address).
    fn payout_address(&self, identity: &PublicKeyBytes) -> Result<Address, ChainViewError>;
    /// The finality committee of epoch `epoch` (DESIGN §5 "Bigger sets"),
    /// which proof votes of that epoch are checked against.
    fn committee_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet>;
    /// The set whose endorsements of a block of epoch `epoch` count: the
    /// genesis set, for every epoch. Certification must go on while a
    /// seated member holding over a third of the weight is down, or the
    /// epoch that removes it never arrives (DESIGN §7, liveness).
    fn endorsers_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet>;
    /// Where `identity` stands in the masternode registry once every block
    /// up to [`ChainView::tip`] is applied, final or not: a function of
    /// the chain, so every node judges a block's evidence alike.
    fn standing(&self, identity: &PublicKeyBytes) -> Result<Standing, ChainViewError>;
    /// Whether `txid` was archived by [`ChainView::tip`] or an ancestor.
    fn is_archived(&self, txid: &Hash) -> Result<bool, ChainViewError>;
    /// Inputs minus outputs of a finalized transaction; `None` if its
    /// inputs are unknown here.
    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError>;
    /// Local time, for the future-slot rule.
    fn now(&self) -> Timestamp;
    /// Block interval and the clock skew tolerated.
    fn slot_clock(&self) -> SlotClock;
    /// Whether this node finalized `txid` with exactly `proof`: a proof it
    /// verified (or assembled) then, under the same validator set, so its
    /// votes need no second check. Anything else (another proof, a tx
    /// unknown here) is checked in full.
    fn holds_proof(&self, _txid: &Hash, _proof: &FinalityProof) -> bool {
        false
    }
    /// Whether this node verified exactly `heartbeat` already (from
    /// gossip): its signature needs no second check, however many blocks
    /// carry it.
    fn holds_heartbeat(&self, _heartbeat: &Heartbeat) -> bool {
        false
    }
}

/// Why a block is not valid on the chain it claims to extend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockRejection {
    #[error("block version {found} is not supported (this node accepts version {expected})")]
    WrongVersion { found: u32, expected: u32 },
    #[error("block is for chain {found}, this node runs chain {expected}")]
    WrongChain { found: ChainId, expected: ChainId },
    #[error("block builds on {prev_hash}, which is not our tip {tip} (sync, or a stale fork)")]
    PrevNotTip { prev_hash: Hash, tip: Hash },
    #[error("block height {found} does not follow its parent (expected {expected})")]
    WrongHeight { found: u64, expected: u64 },
    #[error("block slot {slot} is not after its parent's slot {parent_slot}")]
    SlotNotAfterParent { slot: u64, parent_slot: u64 },
    #[error(
        "block slot {slot} starts at {slot_start_ms} ms, beyond our clock {now_ms} ms + the \
         {max_skew_ms} ms skew allowed (check both clocks, e.g. NTP)"
    )]
    FutureSlot {
        slot: u64,
        slot_start_ms: u64,
        now_ms: u64,
        max_skew_ms: u64,
    },
    #[error(
        "block timestamp {timestamp_ms} ms is outside slot {slot} ({slot_start_ms}..{slot_end_ms} \
         ms) widened by the {max_skew_ms} ms skew allowed"
    )]
    TimestampOutsideSlot {
        timestamp_ms: u64,
        slot: u64,
        slot_start_ms: u64,
        slot_end_ms: u64,
        max_skew_ms: u64,
    },
    #[error(
        "block timestamp {timestamp_ms} ms is beyond our clock {now_ms} ms + the {max_skew_ms} \
         ms skew allowed (check both clocks, e.g. NTP)"
    )]
    FutureTimestamp {
        timestamp_ms: u64,
        now_ms: u64,
        max_skew_ms: u64,
    },
    #[error("the validator set of height {height}'s epoch is not decided here yet")]
    UnknownValidatorSet { height: u64 },
    #[error("producer {producer:?} is not a validator in slot {slot}")]
    NotAValidator { producer: PublicKeyBytes, slot: u64 },
    #[error("block has {count} entries, more than the {max} allowed")]
    TooManyEntries { count: usize, max: usize },
    #[error("block is {bytes} bytes, more than the {max} allowed")]
    TooLarge { bytes: usize, max: usize },
    #[error(
        "entry {index} (txid {txid}) is not above the previous entry's txid: entries must be \
         strictly ascending, without duplicates"
    )]
    EntriesNotSorted { index: usize, txid: Hash },
    #[error("entries_root {found} does not match the body (computed {expected})")]
    EntriesRootMismatch { found: Hash, expected: Hash },
    #[error("entries {first} and {second} both spend {outpoint}")]
    ConflictingEntries {
        first: usize,
        second: usize,
        outpoint: OutPoint,
    },
    #[error("entry {index} (txid {txid}) is already archived by an earlier block")]
    AlreadyArchived { index: usize, txid: Hash },
    #[error("entry {index} (txid {txid}) spends inputs unknown here, so its fee is unknown")]
    UnknownFee { index: usize, txid: Hash },
    #[error("the block's fees overflow")]
    FeeOverflow,
    #[error("reward is for height {found}, the block is at height {expected}")]
    WrongRewardHeight { found: u64, expected: u64 },
    #[error(
        "reward pays {found_total} in {found_outputs} outputs; the rules give {expected_total} \
         in {expected_outputs} (100 TIME x (1 + ln N) + fees: 10% producer, 90% by weight)"
    )]
    WrongReward {
        found_total: Amount,
        found_outputs: usize,
        expected_total: Amount,
        expected_outputs: usize,
    },
    #[error("VRF ticket of producer {producer:?} is invalid: {source}")]
    BadVrf {
        producer: PublicKeyBytes,
        source: VrfError,
    },
    #[error("producer signature by {producer:?} does not verify over the header")]
    BadProducerSignature { producer: PublicKeyBytes },
    #[error("entry {index} (txid {txid}) has an invalid finality proof: {source}")]
    InvalidProof {
        index: usize,
        txid: Hash,
        source: ProofError,
    },
    #[error(
        "the header's parent_certificate {found} does not match the body (computed {expected})"
    )]
    CertificateDigestMismatch { found: Hash, expected: Hash },
    #[error("the carried certificate is for height {height} block {hash}, not the parent")]
    CertificateNotOfParent { height: u64, hash: Hash },
    #[error("the carried certificate of the parent is invalid: {0}")]
    InvalidParentCertificate(CertificateError),
    #[error("block carries {count} pieces of evidence, more than the {max} allowed")]
    TooMuchEvidence { count: usize, max: usize },
    #[error("block carries {bytes} bytes of evidence, more than the {max} allowed")]
    EvidenceTooLarge { bytes: usize, max: usize },
    #[error(
        "evidence {index} (against {offender:?}) is not above the previous one's offender: \
         evidence must be strictly ascending by offender"
    )]
    EvidenceNotSorted {
        index: usize,
        offender: PublicKeyBytes,
    },
    #[error("evidence {index} is a second piece against {offender:?}: one per offender")]
    DuplicateEvidence {
        index: usize,
        offender: PublicKeyBytes,
    },
    #[error("the header's evidence digest {found} does not match the body (computed {expected})")]
    EvidenceDigestMismatch { found: Hash, expected: Hash },
    #[error(
        "evidence {index} accuses {offender:?}, not a registered masternode as of the parent \
         (or registered in a block not final here yet)"
    )]
    OffenderNotAMember {
        index: usize,
        offender: PublicKeyBytes,
    },
    #[error(
        "evidence {index} accuses {offender:?}, already slashed by the block at height {height}"
    )]
    OffenderAlreadySlashed {
        index: usize,
        offender: PublicKeyBytes,
        height: u64,
    },
    #[error("evidence {index} (against {offender:?}) is invalid: {source}")]
    InvalidEvidence {
        index: usize,
        offender: PublicKeyBytes,
        source: InvalidEvidence,
    },
    #[error("block carries {count} heartbeats, more than the {max} allowed")]
    TooManyHeartbeats { count: usize, max: usize },
    #[error(
        "heartbeat {index} (of {validator:?}) is not above the previous one's validator: \
         heartbeats must be strictly ascending by validator, one each"
    )]
    HeartbeatsNotSorted {
        index: usize,
        validator: PublicKeyBytes,
    },
    #[error(
        "the header's heartbeats digest {found} does not match the body (computed {expected})"
    )]
    HeartbeatsDigestMismatch { found: Hash, expected: Hash },
    #[error("heartbeat {index} (of {validator:?}) names epoch {found}; the block is of epoch {expected}")]
    HeartbeatWrongEpoch {
        index: usize,
        validator: PublicKeyBytes,
        found: u64,
        expected: u64,
    },
    #[error(
        "heartbeat {index} is of {validator:?}, neither in the block's set nor a registered \
         masternode as of the parent (or registered in a block not final here yet)"
    )]
    HeartbeatNotAMember {
        index: usize,
        validator: PublicKeyBytes,
    },
    #[error("heartbeat {index} (of {validator:?}) has an invalid signature")]
    BadHeartbeatSignature {
        index: usize,
        validator: PublicKeyBytes,
    },
    #[error(transparent)]
    View(#[from] ChainViewError),
}

impl BlockRejection {
    /// Whether the peer that sent the block deserves a penalty. A block on
    /// another tip, a little early, or needing state we lack can be an
    /// honest race; everything else is provably wrong.
    pub fn is_peer_fault(&self) -> bool {
        match self {
            BlockRejection::PrevNotTip { .. }
            | BlockRejection::FutureSlot { .. }
            | BlockRejection::FutureTimestamp { .. }
            | BlockRejection::UnknownValidatorSet { .. }
            | BlockRejection::UnknownFee { .. }
            | BlockRejection::View(_)
            // A member registered in a block not final here yet.
            | BlockRejection::OffenderNotAMember { .. }
            | BlockRejection::HeartbeatNotAMember { .. } => false,
            // A proof of an epoch whose set is not decided here yet.
            BlockRejection::InvalidProof {
                source: ProofError::UnknownEpoch { .. },
                ..
            } => false,
            // A parent of an epoch whose set is not decided here yet.
            BlockRejection::InvalidParentCertificate(CertificateError::UnknownEpoch { .. }) => {
                false
            }
            BlockRejection::InvalidEvidence { source, .. } => source.is_peer_fault(),
            _ => true,
        }
    }
}

/// A block that passed every rule against the view it was checked on.
/// Only [`validate_block`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidBlock {
    block: Block,
    hash: Hash,
    ticket: Ticket,
}

impl ValidBlock {
    pub fn block(&self) -> &Block {
        &self.block
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The producer's ticket, weighted by its weight in the slot's set.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    pub fn into_block(self) -> Block {
        self.block
    }
}

/// Checks `block` against every rule, verifying every vote signature.
pub fn validate_block(block: Block, view: &impl ChainView) -> Result<ValidBlock, BlockRejection> {
    validate_block_with(block, view, |vote| vote.verify_signature().is_ok())
}

/// [`validate_block`] with the vote-signature check supplied by the caller,
/// so votes consensus already verified (a bounded cache by vote hash) are
/// not verified again.
pub fn validate_block_with(
    block: Block,
    view: &impl ChainView,
    mut signature_ok: impl FnMut(&FinalityVote) -> bool,
) -> Result<ValidBlock, BlockRejection> {
    let set = check_header(&block, view)?;
    let txids = check_body(&block, view)?;
    check_reward(&block, &txids, set, view)?;
    check_signatures(&block, set)?;
    check_parent_certificate(&block, view)?;
    check_evidence(&block, view, &mut signature_ok)?;
    check_heartbeats(&block, set, view)?;
    for (index, (proof, txid)) in block.entries.iter().zip(&txids).enumerate() {
        if view.holds_proof(txid, proof) {
            continue;
        }
        verify_proof_with(
            proof,
            view.chain_id(),
            view.genesis_hash(),
            |epoch| view.committee_for_epoch(epoch),
            &mut signature_ok,
        )
        .map_err(|source| BlockRejection::InvalidProof {
            index,
            txid: *txid,
            source,
        })?;
    }
    let hash = block.hash();
    let ticket = Ticket::new(block.header.score(), &block.header.producer, set);
    Ok(ValidBlock {
        block,
        hash,
        ticket,
    })
}

/// Header rules against the parent, the clock and the producer's
/// membership; returns the slot's validator set.
fn check_header<'v>(
    block: &Block,
    view: &'v impl ChainView,
) -> Result<&'v ValidatorSet, BlockRejection> {
    let h = &block.header;
    if h.version != BLOCK_VERSION {
        return Err(BlockRejection::WrongVersion {
            found: h.version,
            expected: BLOCK_VERSION,
        });
    }
    if h.chain_id != view.chain_id() {
        return Err(BlockRejection::WrongChain {
            found: h.chain_id,
            expected: view.chain_id(),
        });
    }
    let tip = view.tip();
    if h.prev_hash != tip.hash {
        return Err(BlockRejection::PrevNotTip {
            prev_hash: h.prev_hash,
            tip: tip.hash,
        });
    }
    let expected = tip.height.saturating_add(1);
    if h.height != expected {
        return Err(BlockRejection::WrongHeight {
            found: h.height,
            expected,
        });
    }
    if h.slot <= tip.slot {
        return Err(BlockRejection::SlotNotAfterParent {
            slot: h.slot,
            parent_slot: tip.slot,
        });
    }
    check_times(h.slot, h.timestamp_ms, view.slot_clock(), view.now())?;
    let set = view
        .producers()
        .ok_or(BlockRejection::UnknownValidatorSet { height: h.height })?;
    if !set.contains(&h.producer) {
        return Err(BlockRejection::NotAValidator {
            producer: h.producer,
            slot: h.slot,
        });
    }
    Ok(set)
}

fn check_times(
    slot: u64,
    timestamp_ms: u64,
    clock: SlotClock,
    now: Timestamp,
) -> Result<(), BlockRejection> {
    let max_skew_ms = clock.max_skew_ms();
    if clock.is_future_slot(slot, now) {
        return Err(BlockRejection::FutureSlot {
            slot,
            slot_start_ms: clock.slot_start_ms(slot),
            now_ms: now.as_millis(),
            max_skew_ms,
        });
    }
    if !clock.timestamp_in_slot(slot, timestamp_ms) {
        return Err(BlockRejection::TimestampOutsideSlot {
            timestamp_ms,
            slot,
            slot_start_ms: clock.slot_start_ms(slot),
            slot_end_ms: clock.slot_end_ms(slot),
            max_skew_ms,
        });
    }
    if timestamp_ms > clock.latest_acceptable_ms(now) {
        return Err(BlockRejection::FutureTimestamp {
            timestamp_ms,
            now_ms: now.as_millis(),
            max_skew_ms,
        });
    }
    Ok(())
}

/// Body rules that need no signature: limits, order, root and digests,
/// conflicts, archival. Returns the entries' txids.
fn check_body(block: &Block, view: &impl ChainView) -> Result<Vec<Hash>, BlockRejection> {
    let count = block.entries.len();
    if count > MAX_BLOCK_ENTRIES {
        return Err(BlockRejection::TooManyEntries {
            count,
            max: MAX_BLOCK_ENTRIES,
        });
    }
    let bytes = encoded_len(block);
    if bytes > MAX_BLOCK_BYTES {
        return Err(BlockRejection::TooLarge {
            bytes,
            max: MAX_BLOCK_BYTES,
        });
    }
    let txids: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
    for (index, pair) in txids.windows(2).enumerate() {
        if let [prev, txid] = pair {
            if txid <= prev {
                return Err(BlockRejection::EntriesNotSorted {
                    index: index + 1,
                    txid: *txid,
                });
            }
        }
    }
    let expected = entries_root(&txids, block.reward.id());
    if block.header.entries_root != expected {
        return Err(BlockRejection::EntriesRootMismatch {
            found: block.header.entries_root,
            expected,
        });
    }
    let expected = certificate_digest(block.parent_certificate.as_ref());
    if block.header.parent_certificate != expected {
        return Err(BlockRejection::CertificateDigestMismatch {
            found: block.header.parent_certificate,
            expected,
        });
    }
    check_evidence_shape(block)?;
    check_heartbeats_shape(block)?;
    let mut spenders: HashMap<OutPoint, usize> = HashMap::new();
    for (second, entry) in block.entries.iter().enumerate() {
        for input in &entry.tx.inputs {
            if let Some(&first) = spenders.get(&input.prev) {
                if first != second {
                    return Err(BlockRejection::ConflictingEntries {
                        first,
                        second,
                        outpoint: input.prev,
                    });
                }
            }
            spenders.insert(input.prev, second);
        }
    }
    for (index, txid) in txids.iter().enumerate() {
        if view.is_archived(txid)? {
            return Err(BlockRejection::AlreadyArchived { index, txid: *txid });
        }
    }
    Ok(txids)
}

/// The evidence's limits, its order (strictly ascending by offender: one
/// piece each) and the header's digest of it.
fn check_evidence_shape(block: &Block) -> Result<(), BlockRejection> {
    let count = block.evidence.len();
    if count > MAX_BLOCK_EVIDENCE {
        return Err(BlockRejection::TooMuchEvidence {
            count,
            max: MAX_BLOCK_EVIDENCE,
        });
    }
    let bytes = encoded_len(&block.evidence);
    if bytes > MAX_BLOCK_EVIDENCE_BYTES {
        return Err(BlockRejection::EvidenceTooLarge {
            bytes,
            max: MAX_BLOCK_EVIDENCE_BYTES,
        });
    }
    let offenders: Vec<PublicKeyBytes> = block.evidence.iter().map(|e| e.offender()).collect();
    for (index, pair) in offenders.windows(2).enumerate() {
        if let [prev, offender] = pair {
            let (index, offender) = (index + 1, *offender);
            if offender == *prev {
                return Err(BlockRejection::DuplicateEvidence { index, offender });
            }
            if offender < *prev {
                return Err(BlockRejection::EvidenceNotSorted { index, offender });
            }
        }
    }
    let expected = evidence_digest(&block.evidence);
    if block.header.evidence != expected {
        return Err(BlockRejection::EvidenceDigestMismatch {
            found: block.header.evidence,
            expected,
        });
    }
    Ok(())
}

/// The heartbeats' limit, their order (strictly ascending by validator:
/// one each) and the header's digest of them.
fn check_heartbeats_shape(block: &Block) -> Result<(), BlockRejection> {
    let count = block.heartbeats.len();
    if count > MAX_BLOCK_HEARTBEATS {
        return Err(BlockRejection::TooManyHeartbeats {
            count,
            max: MAX_BLOCK_HEARTBEATS,
        });
    }
    for (index, pair) in block.heartbeats.windows(2).enumerate() {
        if let [prev, next] = pair {
            if next.validator <= prev.validator {
                return Err(BlockRejection::HeartbeatsNotSorted {
                    index: index + 1,
                    validator: next.validator,
                });
            }
        }
    }
    let expected = heartbeats_digest(&block.heartbeats);
    if block.header.heartbeats != expected {
        return Err(BlockRejection::HeartbeatsDigestMismatch {
            found: block.header.heartbeats,
            expected,
        });
    }
    Ok(())
}

/// Each heartbeat is of the block's epoch, by a member of the set that
/// produces the block or a registered member outside it (one dropped as
/// inactive signs to return: DESIGN §7 "until it signs again"), lookups
/// first, and signed by it (last; unless this node verified it already).
fn check_heartbeats(
    block: &Block,
    set: &ValidatorSet,
    view: &impl ChainView,
) -> Result<(), BlockRejection> {
    let expected = view.epoch_of(block.header.height);
    for (index, heartbeat) in block.heartbeats.iter().enumerate() {
        let validator = heartbeat.validator;
        if heartbeat.epoch != expected {
            return Err(BlockRejection::HeartbeatWrongEpoch {
                index,
                validator,
                found: heartbeat.epoch,
                expected,
            });
        }
        if !set.contains(&validator) && view.standing(&validator)? != Standing::Member {
            return Err(BlockRejection::HeartbeatNotAMember { index, validator });
        }
    }
    let chain = (view.chain_id(), view.genesis_hash());
    for (index, heartbeat) in block.heartbeats.iter().enumerate() {
        if !view.holds_heartbeat(heartbeat) && heartbeat.verify_signature(chain).is_err() {
            return Err(BlockRejection::BadHeartbeatSignature {
                index,
                validator: heartbeat.validator,
            });
        }
    }
    Ok(())
}

/// Each piece accuses a member not slashed as of the parent (a lookup,
/// first) and proves its equivocation (signatures, last).
fn check_evidence(
    block: &Block,
    view: &impl ChainView,
    mut signature_ok: impl FnMut(&FinalityVote) -> bool,
) -> Result<(), BlockRejection> {
    for (index, evidence) in block.evidence.iter().enumerate() {
        let offender = evidence.offender();
        match view.standing(&offender)? {
            Standing::Member => {}
            Standing::NotAMember => {
                return Err(BlockRejection::OffenderNotAMember { index, offender })
            }
            Standing::Slashed { height } => {
                return Err(BlockRejection::OffenderAlreadySlashed {
                    index,
                    offender,
                    height,
                })
            }
        }
        evidence.verify(view, &mut signature_ok).map_err(|source| {
            BlockRejection::InvalidEvidence {
                index,
                offender,
                source,
            }
        })?;
    }
    Ok(())
}

/// The reward must be exactly what the rules give for this block's fees.
fn check_reward(
    block: &Block,
    txids: &[Hash],
    set: &ValidatorSet,
    view: &impl ChainView,
) -> Result<(), BlockRejection> {
    let h = &block.header;
    if block.reward.height != h.height {
        return Err(BlockRejection::WrongRewardHeight {
            found: block.reward.height,
            expected: h.height,
        });
    }
    let mut fees = Amount::ZERO;
    for (index, (entry, txid)) in block.entries.iter().zip(txids).enumerate() {
        let fee = view
            .fee_of(&entry.tx)?
            .ok_or(BlockRejection::UnknownFee { index, txid: *txid })?;
        fees = fees.checked_add(fee).ok_or(BlockRejection::FeeOverflow)?;
    }
    let expected = expected_reward(h.height, &h.producer, set, fees, |id| {
        view.payout_address(id)
    })?
    .ok_or(BlockRejection::FeeOverflow)?;
    if block.reward != expected {
        let total = |outputs: &[crate::types::TxOut]| {
            Amount::checked_sum(outputs.iter().map(|o| o.value)).unwrap_or(Amount(u64::MAX))
        };
        return Err(BlockRejection::WrongReward {
            found_total: total(&block.reward.outputs),
            found_outputs: block.reward.outputs.len(),
            expected_total: total(&expected.outputs),
            expected_outputs: expected.outputs.len(),
        });
    }
    Ok(())
}

/// The parent's certificate, if the block carries one: for the parent,
/// its votes naming the parent's epoch, and valid under its endorsers.
fn check_parent_certificate(block: &Block, view: &impl ChainView) -> Result<(), BlockRejection> {
    let Some(certificate) = &block.parent_certificate else {
        return Ok(());
    };
    let h = &block.header;
    if certificate.hash != h.prev_hash || certificate.height.saturating_add(1) != h.height {
        return Err(BlockRejection::CertificateNotOfParent {
            height: certificate.height,
            hash: certificate.hash,
        });
    }
    endorsement_context(view, certificate.height)
        .and_then(|context| certificate.verify(&context))
        .map(|_| ())
        .map_err(BlockRejection::InvalidParentCertificate)
}

/// The epoch whose decided set produces the block at `height` on a branch
/// that carries certificates up to height `certified` (DESIGN §7,
/// carry-over): the block's own epoch once that certified prefix decided
/// it (its deciding block, the last of epoch e − 2, is certified), else
/// the latest epoch the prefix decided. A branch that cannot certify (a
/// partition side, a quorum down) keeps producing under the last set it
/// knows, so it can heal; the rule reads only the branch, so every node
/// judges a block alike.
pub fn producing_epoch(height: u64, certified: u64, epoch_of: impl Fn(u64) -> u64) -> u64 {
    let decided = epoch_of(certified.saturating_add(1)).saturating_add(1);
    epoch_of(height).min(decided)
}

/// How endorsements of a block at `height` are judged on `view`'s chain.
pub fn endorsement_context(
    view: &impl ChainView,
    height: u64,
) -> Result<VoteContext<'_>, CertificateError> {
    VoteContext::at_height(
        (view.chain_id(), view.genesis_hash()),
        height,
        |h| view.epoch_of(h),
        |epoch| view.endorsers_for_epoch(epoch),
    )
}

/// The producer's VRF ticket, then its signature over the header: the
/// cheap proof that a validator made the block, which a node may ask
/// before any per-entry work on it.
pub fn check_signatures(block: &Block, set: &ValidatorSet) -> Result<(), BlockRejection> {
    let h = &block.header;
    let producer = h.producer;
    let vrf_key = set
        .index_of(&producer)
        .and_then(|i| set.validators().get(i))
        .map(|v| v.vrf_key)
        .ok_or(BlockRejection::NotAValidator {
            producer,
            slot: h.slot,
        })?;
    verify_slot(&vrf_key, &h.sortition_input(), &h.vrf_output, &h.vrf_proof)
        .map_err(|source| BlockRejection::BadVrf { producer, source })?;
    PublicKey::parse(&producer)
        .and_then(|key| key.verify(&h.signing_message(), &block.producer_sig))
        .map_err(|_| BlockRejection::BadProducerSignature { producer })
}
