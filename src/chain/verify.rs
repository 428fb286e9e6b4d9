//! `verifychain`: replays the archived chain from the genesis to the tip and
//! reports the first block that breaks a rule, with its height and a named
//! reason. Each block must decode within the limits, sit under the hash the
//! height index gives it, link to the block below, pass every rule of
//! [`validate_block`](super::validate_block) against its parent (VRF,
//! producer signature, entries sorted and archived once, every proof valid
//! against the validator set, the reward exactly `expected_reward`), agree
//! with the facts the store indexed beside it, and be named as the
//! archiving block by the record of each transaction it archives.
//!
//! Pure: the archive is read through [`ArchiveView`] (the store implements
//! it in `rpc::archive`; tests may use memory), `now` is passed in. It only
//! reads and never repairs. Memory is bounded by one block: nothing is
//! carried from block to block but the parent's tip and the offenders
//! slashed so far (one entry per member at most), so a transaction
//! archived twice is caught by its record, which can name only one block.

use super::block::{Block, MAX_BLOCK_BYTES};
use super::slashing::Standing;
use super::slot::SlotClock;
use super::validity::{
    producing_epoch, validate_block_with, BlockRejection, ChainTip, ChainView, ChainViewError,
};
use crate::finality::ValidatorSet;
use crate::time::Timestamp;
use crate::types::encoding::DecodeError;
use crate::types::{Address, Amount, ChainId, Hash, PublicKeyBytes, Tx};
use std::collections::{BTreeMap, HashSet};

/// Where the archive says a finalized transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxLocation {
    /// No record of it.
    Unknown,
    /// Finalized, archived by no block yet.
    Finalized,
    /// Archived by `block` at `height`.
    Archived { height: u64, block: Hash },
}

impl std::fmt::Display for TxLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxLocation::Unknown => write!(f, "no record"),
            TxLocation::Finalized => write!(f, "finalized, not archived"),
            TxLocation::Archived { height, block } => {
                write!(f, "archived by block {block} at height {height}")
            }
        }
    }
}

/// What the store indexed beside a block's bytes (its block record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedFacts {
    pub slot: u64,
    pub reward_id: Hash,
    pub reward_outputs: u32,
    pub matures_at_height: u64,
    /// The txids the store believes the block archives, in order.
    pub archived: Vec<Hash>,
}

/// A block as the archive holds it at one height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedBlock {
    /// The hash the height index names.
    pub hash: Hash,
    /// The bytes stored under that hash (undecoded: they are checked here).
    pub encoded: Vec<u8>,
    pub indexed: IndexedFacts,
}

/// The read-only archive `verifychain` replays.
pub trait ArchiveView {
    fn chain_id(&self) -> ChainId;
    /// The genesis (height 0) as the chain config defines it: the replay's
    /// root of trust, never read from the archive.
    fn genesis(&self) -> ChainTip;
    /// The tip the archive claims.
    fn tip(&self) -> Result<ChainTip, ChainViewError>;
    /// The block at `height` on the chain; `None` if the height index, the
    /// bytes or the record is missing.
    fn block_at(&self, height: u64) -> Result<Option<ArchivedBlock>, ChainViewError>;
    /// Where the transaction record of `txid` says it is.
    fn tx_location(&self, txid: &Hash) -> Result<TxLocation, ChainViewError>;
    /// Inputs minus outputs of `tx`; `None` if an input is unknown.
    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError>;
    /// The epoch that holds `height`.
    fn epoch_of(&self, height: u64) -> u64;
    /// The decided set of `epoch`: its block producers.
    fn producers_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet>;
    /// The finality committee of `epoch`: its proof votes are checked
    /// against it.
    fn committee_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet>;
    /// Whose endorsements of `epoch`'s blocks count (see
    /// [`ChainView::endorsers_for_epoch`]).
    fn endorsers_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet>;
    /// The payout address `identity` registered (its identity's address
    /// for a genesis member).
    fn payout_address(&self, identity: &PublicKeyBytes) -> Result<Address, ChainViewError>;
    /// The height of the block that registered `identity` (0: the
    /// genesis), if the archive's masternode registry knows it.
    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ChainViewError>;
}

/// The chain rules the replay needs beyond the archive.
#[derive(Clone, Copy, Debug)]
pub struct VerifyParams {
    /// Local time: no archived block may be from the future.
    pub now: Timestamp,
    pub slot_clock: SlotClock,
    /// Rewards of the block at `h` mature at `h + reward_maturity_blocks`.
    pub reward_maturity_blocks: u64,
}

/// The height from which the reward outputs of the block at `height` may be
/// spent.
pub fn reward_matures_at(height: u64, reward_maturity_blocks: u64) -> u64 {
    height.saturating_add(reward_maturity_blocks)
}

/// Why an archived block fails the replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error("no complete block is stored at this height (height index, bytes or record missing)")]
    MissingBlock,
    #[error("the stored block does not decode: {0}")]
    Undecodable(DecodeError),
    #[error(
        "the stored block's header hashes to {computed}, but the height index names {indexed}"
    )]
    HashMismatch { indexed: Hash, computed: Hash },
    #[error("the block says height {found}, but it is stored at height {expected}")]
    WrongHeight { found: u64, expected: u64 },
    #[error("the block builds on {prev_hash}, but the block below it is {parent}")]
    BrokenLink { prev_hash: Hash, parent: Hash },
    #[error("the block breaks a rule: {0}")]
    Rejected(BlockRejection),
    #[error("the store's record of the block disagrees with its bytes: {what}")]
    IndexMismatch { what: &'static str },
    #[error("entry {index} (txid {txid}): its transaction record says {found}, not this block")]
    TxRecordMismatch {
        index: usize,
        txid: Hash,
        found: TxLocation,
    },
    #[error("the tip record names {claimed:?}, but the chain replayed to {replayed:?}")]
    TipMismatch {
        claimed: ChainTip,
        replayed: ChainTip,
    },
    #[error(transparent)]
    View(#[from] ChainViewError),
}

impl ChainFault {
    /// A stable snake_case name for scripts and tests.
    pub fn reason(&self) -> &'static str {
        match self {
            ChainFault::MissingBlock => "missing_block",
            ChainFault::Undecodable(_) => "undecodable_block",
            ChainFault::HashMismatch { .. } => "hash_mismatch",
            ChainFault::WrongHeight { .. } => "wrong_height",
            ChainFault::BrokenLink { .. } => "broken_link",
            ChainFault::Rejected(rejection) => rejection_reason(rejection),
            ChainFault::IndexMismatch { .. } => "index_mismatch",
            ChainFault::TxRecordMismatch { .. } => "tx_record_mismatch",
            ChainFault::TipMismatch { .. } => "tip_mismatch",
            ChainFault::View(_) => "read_failed",
        }
    }
}

fn rejection_reason(rejection: &BlockRejection) -> &'static str {
    use BlockRejection as R;
    match rejection {
        R::WrongVersion { .. } => "wrong_version",
        R::WrongChain { .. } => "wrong_chain",
        R::PrevNotTip { .. } => "broken_link",
        R::WrongHeight { .. } => "wrong_height",
        R::SlotNotAfterParent { .. } => "slot_not_after_parent",
        R::FutureSlot { .. } => "future_slot",
        R::TimestampOutsideSlot { .. } => "timestamp_outside_slot",
        R::FutureTimestamp { .. } => "future_timestamp",
        R::UnknownValidatorSet { .. } => "unknown_validator_set",
        R::NotAValidator { .. } => "not_a_validator",
        R::TooManyEntries { .. } => "too_many_entries",
        R::TooLarge { .. } => "too_large",
        R::EntriesNotSorted { .. } => "entries_not_sorted",
        R::EntriesRootMismatch { .. } => "entries_root_mismatch",
        R::ConflictingEntries { .. } => "conflicting_entries",
        R::AlreadyArchived { .. } => "already_archived",
        R::UnknownFee { .. } => "unknown_fee",
        R::FeeOverflow => "fee_overflow",
        R::WrongRewardHeight { .. } => "wrong_reward_height",
        R::WrongReward { .. } => "wrong_reward",
        R::BadVrf { .. } => "bad_vrf",
        R::BadProducerSignature { .. } => "bad_producer_signature",
        R::InvalidProof { .. } => "invalid_proof",
        R::CertificateDigestMismatch { .. } => "certificate_digest_mismatch",
        R::CertificateNotOfParent { .. } => "certificate_not_of_parent",
        R::InvalidParentCertificate(_) => "invalid_parent_certificate",
        R::TooMuchEvidence { .. } => "too_much_evidence",
        R::EvidenceTooLarge { .. } => "evidence_too_large",
        R::EvidenceNotSorted { .. } => "evidence_not_sorted",
        R::DuplicateEvidence { .. } => "duplicate_evidence",
        R::EvidenceDigestMismatch { .. } => "evidence_digest_mismatch",
        R::OffenderNotAMember { .. } => "offender_not_a_member",
        R::OffenderAlreadySlashed { .. } => "offender_already_slashed",
        R::InvalidEvidence { .. } => "invalid_evidence",
        R::TooManyHeartbeats { .. } => "too_many_heartbeats",
        R::HeartbeatsNotSorted { .. } => "heartbeats_not_sorted",
        R::HeartbeatsDigestMismatch { .. } => "heartbeats_digest_mismatch",
        R::HeartbeatWrongEpoch { .. } => "heartbeat_wrong_epoch",
        R::HeartbeatNotAMember { .. } => "heartbeat_not_a_member",
        R::BadHeartbeatSignature { .. } => "bad_heartbeat_signature",
        R::View(_) => "read_failed",
    }
}

/// The first block that failed, where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    pub height: u64,
    /// The hash the height index names, if there was one.
    pub block: Option<Hash>,
    pub fault: ChainFault,
}

/// What a replay checked, and the first failure if any. Counts cover the
/// blocks that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The tip the archive claims (the genesis if it could not be read).
    pub tip: ChainTip,
    pub blocks: u64,
    /// Archived transactions, each with its finality proof.
    pub txs: u64,
    /// Distinct vote signatures verified (a vote covers up to a batch of txids).
    pub votes: u64,
    pub failure: Option<VerifyFailure>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Replays the chain from the genesis to the archive's tip, stopping at the
/// first failure.
pub fn verify_chain(archive: &impl ArchiveView, params: &VerifyParams) -> VerifyReport {
    let genesis = archive.genesis();
    let mut report = VerifyReport {
        tip: genesis,
        blocks: 0,
        txs: 0,
        votes: 0,
        failure: None,
    };
    let fail = |height, block, fault| {
        Some(VerifyFailure {
            height,
            block,
            fault,
        })
    };
    let claimed = match archive.tip() {
        Ok(tip) => tip,
        Err(e) => {
            report.failure = fail(0, None, e.into());
            return report;
        }
    };
    report.tip = claimed;
    let mut parent = genesis;
    let mut certified = 0;
    let mut slashed = BTreeMap::new();
    for height in 1..=claimed.height {
        let on = Replayed {
            parent: &parent,
            certified,
        };
        match verify_block(archive, params, on, &mut slashed, height) {
            Ok(checked) => {
                report.blocks += 1;
                report.txs += checked.txs;
                report.votes += checked.votes;
                parent = checked.tip;
                if checked.carries_certificate {
                    certified = height - 1;
                }
            }
            Err(failure) => {
                report.failure = Some(*failure);
                return report;
            }
        }
    }
    if parent != claimed {
        let fault = ChainFault::TipMismatch {
            claimed,
            replayed: parent,
        };
        report.failure = fail(claimed.height, Some(claimed.hash), fault);
    }
    report
}

/// What one block added to the replay.
struct Checked {
    tip: ChainTip,
    txs: u64,
    votes: u64,
    /// It carries its parent's certificate.
    carries_certificate: bool,
}

/// The replayed chain a block extends.
#[derive(Clone, Copy)]
struct Replayed<'a> {
    parent: &'a ChainTip,
    /// The highest height a certificate carried by the chain covers.
    certified: u64,
}

/// Checks the block at `height` on `parent`; `slashed` holds the offenders
/// the blocks below slashed, and gains this block's.
fn verify_block(
    archive: &impl ArchiveView,
    params: &VerifyParams,
    Replayed { parent, certified }: Replayed<'_>,
    slashed: &mut BTreeMap<PublicKeyBytes, u64>,
    height: u64,
) -> Result<Checked, Box<VerifyFailure>> {
    let failure = |block, fault| {
        Box::new(VerifyFailure {
            height,
            block,
            fault,
        })
    };
    let stored = archive
        .block_at(height)
        .map_err(|e| failure(None, e.into()))?
        .ok_or_else(|| failure(None, ChainFault::MissingBlock))?;
    let hash = stored.hash;
    let fail = |fault: ChainFault| failure(Some(hash), fault);
    let block = Block::decode(&stored.encoded, MAX_BLOCK_BYTES)
        .map_err(|e| fail(ChainFault::Undecodable(e)))?;
    let computed = block.hash();
    if computed != hash {
        return Err(fail(ChainFault::HashMismatch {
            indexed: hash,
            computed,
        }));
    }
    let h = &block.header;
    if h.height != height {
        return Err(fail(ChainFault::WrongHeight {
            found: h.height,
            expected: height,
        }));
    }
    if h.prev_hash != parent.hash {
        return Err(fail(ChainFault::BrokenLink {
            prev_hash: h.prev_hash,
            parent: parent.hash,
        }));
    }
    let txids: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
    check_indexed(&stored.indexed, &block, &txids, params).map_err(fail)?;
    let tip = ChainTip {
        hash,
        height,
        slot: h.slot,
    };
    let offenders: Vec<PublicKeyBytes> = block.evidence.iter().map(|e| e.offender()).collect();
    let carries_certificate = block.parent_certificate.is_some();
    let on_parent = ReplayView {
        archive,
        parent: *parent,
        certified,
        params,
        slashed,
    };
    // Votes cover batches of txids: verify each distinct one once per block.
    let mut verified: HashSet<Hash> = HashSet::new();
    validate_block_with(block, &on_parent, |vote| {
        let vote_hash = vote.vote_hash();
        verified.contains(&vote_hash)
            || (vote.verify_signature().is_ok() && verified.insert(vote_hash))
    })
    .map_err(|rejection| fail(ChainFault::Rejected(rejection)))?;
    for offender in offenders {
        slashed.insert(offender, height);
    }
    let here = TxLocation::Archived {
        height,
        block: hash,
    };
    for (index, txid) in txids.iter().enumerate() {
        let found = archive
            .tx_location(txid)
            .map_err(|e| fail(ChainFault::View(e)))?;
        if found != here {
            return Err(fail(ChainFault::TxRecordMismatch {
                index,
                txid: *txid,
                found,
            }));
        }
    }
    Ok(Checked {
        tip,
        txs: txids.len() as u64,
        votes: verified.len() as u64,
        carries_certificate,
    })
}

/// The store's record must describe these very bytes.
fn check_indexed(
    indexed: &IndexedFacts,
    block: &Block,
    txids: &[Hash],
    params: &VerifyParams,
) -> Result<(), ChainFault> {
    let mismatch = |what| Err(ChainFault::IndexMismatch { what });
    if indexed.slot != block.header.slot {
        return mismatch("slot");
    }
    if indexed.archived != txids {
        return mismatch("archived txids");
    }
    if indexed.reward_id != block.reward.id() {
        return mismatch("reward txid");
    }
    if usize::try_from(indexed.reward_outputs).ok() != Some(block.reward.outputs.len()) {
        return mismatch("reward output count");
    }
    let matures_at = reward_matures_at(block.header.height, params.reward_maturity_blocks);
    if indexed.matures_at_height != matures_at {
        return mismatch("reward maturity height");
    }
    Ok(())
}

/// The archive as it stood when the block at `parent.height + 1` was
/// added: its tip is `parent`, a tx counts as archived only if an
/// ancestor archived it, and a member as slashed only if an ancestor
/// carried evidence against it.
struct ReplayView<'a, A> {
    archive: &'a A,
    parent: ChainTip,
    /// The highest height a certificate carried by `parent`'s branch covers.
    certified: u64,
    params: &'a VerifyParams,
    slashed: &'a BTreeMap<PublicKeyBytes, u64>,
}

impl<A: ArchiveView> ChainView for ReplayView<'_, A> {
    fn chain_id(&self) -> ChainId {
        self.archive.chain_id()
    }

    fn genesis_hash(&self) -> Hash {
        self.archive.genesis().hash
    }

    fn tip(&self) -> ChainTip {
        self.parent
    }

    fn epoch_of(&self, height: u64) -> u64 {
        self.archive.epoch_of(height)
    }

    fn producers(&self) -> Option<&ValidatorSet> {
        let height = self.parent.height.saturating_add(1);
        let epoch = producing_epoch(height, self.certified, |h| self.archive.epoch_of(h));
        self.archive.producers_for_epoch(epoch)
    }

    fn payout_address(&self, identity: &PublicKeyBytes) -> Result<Address, ChainViewError> {
        self.archive.payout_address(identity)
    }

    fn committee_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.archive.committee_for_epoch(epoch)
    }

    fn endorsers_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.archive.endorsers_for_epoch(epoch)
    }

    fn is_archived(&self, txid: &Hash) -> Result<bool, ChainViewError> {
        Ok(matches!(
            self.archive.tx_location(txid)?,
            TxLocation::Archived { height, .. } if height <= self.parent.height
        ))
    }

    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError> {
        self.archive.fee_of(tx)
    }

    fn standing(&self, identity: &PublicKeyBytes) -> Result<Standing, ChainViewError> {
        if let Some(&height) = self.slashed.get(identity) {
            return Ok(Standing::Slashed { height });
        }
        Ok(match self.archive.registered_at(identity)? {
            Some(at) if at <= self.parent.height => Standing::Member,
            _ => Standing::NotAMember,
        })
    }

    fn now(&self) -> Timestamp {
        self.params.now
    }

    fn slot_clock(&self) -> SlotClock {
        self.params.slot_clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::block::{BlockHeader, RewardTx, BLOCK_VERSION};
    use crate::types::validator::{VrfOutputBytes, VrfProofBytes};
    use crate::types::{PublicKeyBytes, SignatureBytes};
    use std::collections::BTreeMap;

    /// An archive in memory: blocks by height, no transactions.
    struct MemArchive {
        genesis: ChainTip,
        tip: ChainTip,
        blocks: BTreeMap<u64, ArchivedBlock>,
    }

    impl ArchiveView for MemArchive {
        fn chain_id(&self) -> ChainId {
            ChainId(3)
        }
        fn genesis(&self) -> ChainTip {
            self.genesis
        }
        fn tip(&self) -> Result<ChainTip, ChainViewError> {
            Ok(self.tip)
        }
        fn block_at(&self, height: u64) -> Result<Option<ArchivedBlock>, ChainViewError> {
            Ok(self.blocks.get(&height).cloned())
        }
        fn tx_location(&self, _: &Hash) -> Result<TxLocation, ChainViewError> {
            Ok(TxLocation::Unknown)
        }
        fn fee_of(&self, _: &Tx) -> Result<Option<Amount>, ChainViewError> {
            Ok(None)
        }
        fn epoch_of(&self, _: u64) -> u64 {
            0
        }
        fn producers_for_epoch(&self, _: u64) -> Option<&ValidatorSet> {
            None
        }
        fn committee_for_epoch(&self, _: u64) -> Option<&ValidatorSet> {
            None
        }
        fn endorsers_for_epoch(&self, _: u64) -> Option<&ValidatorSet> {
            None
        }
        fn payout_address(&self, id: &PublicKeyBytes) -> Result<Address, ChainViewError> {
            Ok(Address::from_pubkey(id))
        }
        fn registered_at(&self, _: &PublicKeyBytes) -> Result<Option<u64>, ChainViewError> {
            Ok(None)
        }
    }

    fn genesis() -> ChainTip {
        ChainTip {
            hash: Hash::digest(b"verify test genesis"),
            height: 0,
            slot: 10,
        }
    }

    fn params() -> VerifyParams {
        VerifyParams {
            now: Timestamp(1_000_000),
            slot_clock: SlotClock::new(1_000, 1_000).unwrap(),
            reward_maturity_blocks: 10,
        }
    }

    /// An unsigned block at `height` on `prev_hash`: enough to reach the
    /// checks that run before the rules.
    fn block(height: u64, prev_hash: Hash) -> Block {
        Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                chain_id: ChainId(3),
                height,
                slot: 10 + height,
                prev_hash,
                producer: PublicKeyBytes([1; 32]),
                vrf_output: VrfOutputBytes([2; 32]),
                vrf_proof: VrfProofBytes([3; 64]),
                entries_root: Hash::ZERO,
                parent_certificate: Hash::ZERO,
                evidence: Hash::ZERO,
                heartbeats: Hash::ZERO,
                timestamp_ms: (10 + height) * 1_000,
            },
            producer_sig: SignatureBytes([4; 64]),
            entries: Vec::new(),
            reward: RewardTx {
                height,
                outputs: Vec::new(),
            },
            parent_certificate: None,
            evidence: Vec::new(),
            heartbeats: Vec::new(),
        }
    }

    fn archived(hash: Hash, block: &Block) -> ArchivedBlock {
        ArchivedBlock {
            hash,
            encoded: block.encode(),
            indexed: IndexedFacts {
                slot: block.header.slot,
                reward_id: block.reward.id(),
                reward_outputs: 0,
                matures_at_height: block.header.height + 10,
                archived: Vec::new(),
            },
        }
    }

    /// An archive claiming `tip` and holding `blocks` from height 1 up.
    fn archive(tip: ChainTip, blocks: Vec<ArchivedBlock>) -> MemArchive {
        MemArchive {
            genesis: genesis(),
            tip,
            blocks: (1..).zip(blocks).collect(),
        }
    }

    fn first_failure(archive: &MemArchive) -> (u64, ChainFault) {
        let failure = verify_chain(archive, &params()).failure.unwrap();
        (failure.height, failure.fault)
    }

    #[test]
    fn a_chain_at_its_genesis_verifies() {
        let report = verify_chain(&archive(genesis(), Vec::new()), &params());
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.blocks, 0);
    }

    #[test]
    fn a_tip_off_the_replayed_chain_is_a_tip_mismatch() {
        let tip = ChainTip {
            hash: Hash::digest(b"elsewhere"),
            ..genesis()
        };
        let (height, fault) = first_failure(&archive(tip, Vec::new()));
        assert_eq!(height, 0);
        assert_eq!(fault.reason(), "tip_mismatch");
    }

    #[test]
    fn a_missing_block_is_named_at_its_height() {
        let tip = ChainTip {
            height: 1,
            ..genesis()
        };
        let (height, fault) = first_failure(&archive(tip, Vec::new()));
        assert_eq!((height, fault), (1, ChainFault::MissingBlock));
    }

    #[test]
    fn bytes_under_another_hash_are_a_hash_mismatch() {
        let first = block(1, genesis().hash);
        let indexed = Hash::digest(b"indexed");
        let tip = ChainTip {
            hash: indexed,
            height: 1,
            slot: 11,
        };
        let (height, fault) = first_failure(&archive(tip, vec![archived(indexed, &first)]));
        assert_eq!(height, 1);
        assert_eq!(
            fault,
            ChainFault::HashMismatch {
                indexed,
                computed: first.hash()
            }
        );
    }

    #[test]
    fn linkage_is_checked_before_any_rule() {
        let misplaced = block(2, genesis().hash);
        let tip = ChainTip {
            hash: misplaced.hash(),
            height: 1,
            slot: 12,
        };
        let (_, fault) = first_failure(&archive(tip, vec![archived(misplaced.hash(), &misplaced)]));
        assert_eq!(fault.reason(), "wrong_height");

        let orphan = block(1, Hash::digest(b"another parent"));
        let tip = ChainTip {
            hash: orphan.hash(),
            ..tip
        };
        let (_, fault) = first_failure(&archive(tip, vec![archived(orphan.hash(), &orphan)]));
        assert_eq!(fault.reason(), "broken_link");
    }
}
