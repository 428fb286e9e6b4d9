//! The store seen as the chain archive that `verifychain` replays
//! ([`StoreArchive`], one LMDB snapshot), and [`verify_store`]: the replay,
//! the store's own consistency check of its chain tables, the check of
//! every stored certificate (signatures, weight, canonical block), and the
//! replay of the masternode registry over the final blocks
//! ([`final_block`], which the block thread feeds the registry from too).
//!
//! Reads only. The replay's root of trust is the chain config (genesis and
//! validator set), never the datadir.

use crate::chain::reward::payout_address;
use crate::chain::{
    verify_chain, ArchiveView, ArchivedBlock, Block, Certificate, CertificateError, ChainTip,
    ChainViewError, IndexedFacts, SlotClock, SlotClockError, TxLocation, VerifyParams,
    VerifyReport, VoteContext, MAX_BLOCK_BYTES,
};
use crate::config::ChainSpec;
use crate::finality::{ValidatorSet, ValidatorSetError};
use crate::masternode::{BlockEffects, CommitteeRules, EpochSets, Member, Registry, RegistryError};
use crate::store::{ChainSummary, ReadView, Store, StoreError, TxStatus};
use crate::time::Timestamp;
use crate::types::encoding::DecodeError;
use crate::types::{Address, Amount, ChainId, Hash, PublicKeyBytes, Tx};
use std::cell::OnceCell;
use std::collections::BTreeSet;

/// The genesis as the chain config defines it (the store derives its first
/// tip the same way).
pub fn genesis_tip(spec: &ChainSpec) -> ChainTip {
    ChainTip {
        hash: spec.genesis_hash(),
        height: 0,
        // `block_interval_secs` is at least 1 (config validation).
        slot: spec.config.genesis.timestamp / spec.config.ledger.block_interval_secs.max(1),
    }
}

/// The rules a replay of `spec`'s chain judges stored blocks by, at `now`.
/// The skew bound is a whole block interval: an archived block was
/// accepted under the node's own (smaller) bound, and a replay must never
/// refuse what an honest node accepted.
pub fn replay_params(spec: &ChainSpec, now: Timestamp) -> Result<VerifyParams, SlotClockError> {
    let interval_ms = spec.config.ledger.block_interval_secs.saturating_mul(1_000);
    Ok(VerifyParams {
        now,
        slot_clock: SlotClock::new(interval_ms, interval_ms)?,
        reward_maturity_blocks: u64::from(spec.config.ledger.reward_maturity_blocks),
    })
}

/// One snapshot of the store, read as the chain archive.
pub struct StoreArchive<'s> {
    view: ReadView<'s>,
    chain_id: ChainId,
    genesis: ChainTip,
    /// Blocks and proofs are judged by their epoch's sets: the genesis
    /// ones for epochs 0 and 1, later ones read from the stored sets when
    /// first asked for (`later[i]` is epoch `i + 2`'s; `None` if undecided).
    genesis_sets: EpochSets,
    later: Vec<OnceCell<Option<EpochSets>>>,
    rules: CommitteeRules,
}

impl<'s> StoreArchive<'s> {
    /// `validators`: the genesis set.
    pub fn new(
        view: ReadView<'s>,
        spec: &ChainSpec,
        validators: ValidatorSet,
    ) -> Result<Self, StoreError> {
        let decided = view.latest_epoch()?.unwrap_or(1);
        let later = (2..=decided).map(|_| OnceCell::new()).collect();
        let rules = CommitteeRules::of(spec);
        Ok(StoreArchive {
            view,
            chain_id: spec.chain_id(),
            genesis: genesis_tip(spec),
            genesis_sets: rules.sets(0, validators, None),
            later,
            rules,
        })
    }

    /// `epoch`'s sets, read once.
    fn sets(&self, epoch: u64) -> Option<&EpochSets> {
        if epoch <= 1 {
            return Some(&self.genesis_sets);
        }
        let cell = self.later.get(usize::try_from(epoch - 2).ok()?)?;
        cell.get_or_init(|| match stored_sets(&self.view, &self.rules, epoch) {
            Ok(sets) => sets,
            Err(e) => {
                log::warn!("cannot read the sets of epoch {epoch}: {e}");
                None
            }
        })
        .as_ref()
    }
}

/// Why an epoch's committee cannot be drawn from the store.
#[derive(Debug, thiserror::Error)]
pub enum EpochCommitteeError {
    #[error(transparent)]
    Block(#[from] FinalBlockError),
    #[error("the stored set of epoch {epoch} is unusable: {source}")]
    Set {
        epoch: u64,
        source: ValidatorSetError,
    },
}

/// The sets of epoch `epoch` ≥ 2 as the store decided them, `None` while
/// the final chain has not decided them.
pub fn stored_sets(
    view: &ReadView<'_>,
    rules: &CommitteeRules,
    epoch: u64,
) -> Result<Option<EpochSets>, EpochCommitteeError> {
    let Some(height) = rules.deciding_height(epoch) else {
        return Ok(None);
    };
    let Some(snapshot) = view.epoch_snapshot(epoch).map_err(FinalBlockError::from)? else {
        return Ok(None);
    };
    let block = view
        .block_hash_at(height)
        .map_err(FinalBlockError::from)?
        .ok_or(FinalBlockError::Missing { height })?;
    let set = snapshot
        .validator_set()
        .map_err(|source| EpochCommitteeError::Set { epoch, source })?;
    Ok(Some(rules.sets(epoch, set, Some(block))))
}

/// Where `identity`'s reward shares go, by the stored registry records
/// (which `verify_registry` checks against a replay): the payout address
/// it registered, or its identity's for a genesis member.
pub fn registered_payout(
    view: &ReadView<'_>,
    identity: &PublicKeyBytes,
) -> Result<Address, StoreError> {
    let member = view.masternode(identity)?;
    Ok(member.map_or_else(|| payout_address(identity), |m| m.payout))
}

fn read_failed(e: StoreError) -> ChainViewError {
    ChainViewError(e.to_string())
}

impl ArchiveView for StoreArchive<'_> {
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn genesis(&self) -> ChainTip {
        self.genesis
    }

    fn tip(&self) -> Result<ChainTip, ChainViewError> {
        let tip = self.view.tip().map_err(read_failed)?;
        Ok(ChainTip {
            hash: tip.hash,
            height: tip.height,
            slot: tip.slot,
        })
    }

    fn block_at(&self, height: u64) -> Result<Option<ArchivedBlock>, ChainViewError> {
        let Some(hash) = self.view.block_hash_at(height).map_err(read_failed)? else {
            return Ok(None);
        };
        let encoded = self.view.block(&hash).map_err(read_failed)?;
        let record = self.view.block_record(&hash).map_err(read_failed)?;
        let (Some(encoded), Some(record)) = (encoded, record) else {
            return Ok(None);
        };
        Ok(Some(ArchivedBlock {
            hash,
            encoded,
            indexed: IndexedFacts {
                slot: record.slot,
                reward_id: record.reward_id,
                reward_outputs: record.reward_outputs,
                matures_at_height: record.matures_at_height,
                archived: record.archived,
            },
        }))
    }

    fn tx_location(&self, txid: &Hash) -> Result<TxLocation, ChainViewError> {
        let record = self.view.tx(txid).map_err(read_failed)?;
        Ok(match record.map(|r| r.status) {
            None => TxLocation::Unknown,
            Some(TxStatus::Finalized) => TxLocation::Finalized,
            Some(TxStatus::Archived { height, block }) => TxLocation::Archived { height, block },
        })
    }

    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError> {
        self.view.fee_of(tx).map_err(read_failed)
    }

    fn epoch_of(&self, height: u64) -> u64 {
        self.rules.epochs.epoch_of(height)
    }

    fn producers_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.sets(epoch).map(|s| &s.set)
    }

    fn payout_address(&self, identity: &PublicKeyBytes) -> Result<Address, ChainViewError> {
        registered_payout(&self.view, identity).map_err(read_failed)
    }

    /// From the stored registry records (which `verify_registry` checks
    /// against a replay), or the genesis set before the first step.
    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ChainViewError> {
        if let Some(member) = self.view.masternode(identity).map_err(read_failed)? {
            return Ok(Some(member.registered_at));
        }
        Ok(self.genesis_sets.set.contains(identity).then_some(0))
    }

    fn committee_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.sets(epoch).map(|s| &s.committee.committee)
    }

    fn endorsers_for_epoch(&self, _epoch: u64) -> Option<&ValidatorSet> {
        Some(&self.genesis_sets.set)
    }
}

/// What [`verify_store`] found.
#[derive(Debug)]
pub struct ChainVerification {
    pub replay: VerifyReport,
    /// The store's check of its chain tables against each other.
    pub tables: Result<ChainSummary, StoreError>,
    /// How many stored certificates verified, or the first that did not.
    pub certificates: Result<u64, CertificateFault>,
    /// How many stored epoch sets the registry replay reproduced, or the
    /// first disagreement.
    pub registry: Result<u64, RegistryFault>,
}

impl ChainVerification {
    pub fn is_ok(&self) -> bool {
        self.replay.is_ok()
            && self.tables.is_ok()
            && self.certificates.is_ok()
            && self.registry.is_ok()
    }
}

/// Why a final block cannot be read for the registry.
#[derive(Debug, thiserror::Error)]
pub enum FinalBlockError {
    #[error("no block is stored at final height {height}")]
    Missing { height: u64 },
    #[error("the block stored at height {height} does not decode: {source}")]
    Undecodable { height: u64, source: DecodeError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The canonical block at `height`, if it is final (at or below the final
/// height).
pub fn final_block(view: &ReadView<'_>, height: u64) -> Result<Option<Block>, FinalBlockError> {
    if height > view.final_height()? {
        return Ok(None);
    }
    let missing = || FinalBlockError::Missing { height };
    let hash = view.block_hash_at(height)?.ok_or_else(missing)?;
    let bytes = view.block(&hash)?.ok_or_else(missing)?;
    let block = Block::decode(&bytes, MAX_BLOCK_BYTES)
        .map_err(|source| FinalBlockError::Undecodable { height, source })?;
    Ok(Some(block))
}

/// The registry at `spec`'s genesis: its validators, paid at their
/// identity's address, the set of epochs 0 and 1.
pub fn genesis_registry(spec: &ChainSpec) -> Registry {
    Registry::genesis(spec.epoch_rules, &spec.validators, payout_address)
}

/// Applies one final block to `registry`. A member shows it is live by
/// producing the block, by endorsing its parent (the certificate the block
/// carries), by a window vote one of its proofs carries or by a heartbeat
/// it carries (DESIGN §7), and
/// is slashed by the evidence the block carries: only what the block
/// itself holds, so every node derives the same statuses and sets.
pub fn apply_final_block(
    registry: &mut Registry,
    height: u64,
    block: &Block,
) -> Result<crate::masternode::Applied, RegistryError> {
    let txs: Vec<&Tx> = block.entries.iter().map(|proof| &proof.tx).collect();
    let voters = block
        .entries
        .iter()
        .flat_map(|proof| proof.votes.iter().map(|(vote, _)| vote.voter));
    let endorsers = block
        .parent_certificate
        .iter()
        .flat_map(|certificate| certificate.votes.iter().map(|vote| vote.voter));
    let heartbeats = block.heartbeats.iter().map(|h| h.validator);
    let signers: BTreeSet<PublicKeyBytes> = std::iter::once(block.header.producer)
        .chain(endorsers)
        .chain(voters)
        .chain(heartbeats)
        .collect();
    let signers: Vec<PublicKeyBytes> = signers.into_iter().collect();
    let slashed: Vec<PublicKeyBytes> = block.evidence.iter().map(|e| e.offender()).collect();
    registry.apply(&BlockEffects {
        height,
        txs: &txs,
        signers: &signers,
        slashed: &slashed,
    })
}

/// Why the stored registry is not what the final blocks decide.
#[derive(Debug, thiserror::Error)]
pub enum RegistryFault {
    #[error("the stored set of epoch {epoch} is not the one the final blocks decide")]
    SetMismatch { epoch: u64 },
    #[error("the stored masternode records are not what the final blocks leave")]
    MembersMismatch,
    #[error("registry replay: {0}")]
    Replay(#[from] RegistryError),
    #[error(transparent)]
    Block(#[from] FinalBlockError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replays the registry from the genesis over the final blocks the stored
/// registry applied, and checks every stored epoch set and member record
/// against it (DESIGN §7: `verifychain` replays the sets).
pub fn verify_registry(view: &ReadView<'_>, spec: &ChainSpec) -> Result<u64, RegistryFault> {
    let mut registry = genesis_registry(spec);
    let applied_to = view.registry_next_height()?;
    let mut epochs = 0u64;
    for height in 1..applied_to {
        let block = final_block(view, height)?.ok_or(FinalBlockError::Missing { height })?;
        let applied = apply_final_block(&mut registry, height, &block)?;
        if let Some(snapshot) = applied.snapshot {
            if view.epoch_snapshot(snapshot.epoch)?.as_ref() != Some(&snapshot) {
                return Err(RegistryFault::SetMismatch {
                    epoch: snapshot.epoch,
                });
            }
            epochs += 1;
        }
    }
    if applied_to > 1 {
        let replayed: Vec<Member> = registry.members().cloned().collect();
        if view.masternodes()? != replayed {
            return Err(RegistryFault::MembersMismatch);
        }
    }
    Ok(epochs)
}

/// Why a stored certificate fails `verifychain`.
#[derive(Debug, thiserror::Error)]
pub enum CertificateFault {
    #[error("the certificate stored at height {height} does not decode: {source}")]
    Undecodable { height: u64, source: DecodeError },
    #[error("the certificate stored at height {height} is for height {found}")]
    WrongHeight { height: u64, found: u64 },
    #[error("the certificate at height {height} is invalid: {source}")]
    Invalid {
        height: u64,
        source: CertificateError,
    },
    #[error(
        "the certificate at height {height} certifies {certified}, but the canonical block          there is {canonical}: the chain left a final block"
    )]
    NotCanonical {
        height: u64,
        certified: Hash,
        canonical: Hash,
    },
    #[error("the certificate record at height {height} disagrees with its certificate")]
    RecordMismatch { height: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CertificateFault {
    pub fn height(&self) -> Option<u64> {
        match self {
            CertificateFault::Undecodable { height, .. }
            | CertificateFault::WrongHeight { height, .. }
            | CertificateFault::Invalid { height, .. }
            | CertificateFault::NotCanonical { height, .. }
            | CertificateFault::RecordMismatch { height } => Some(*height),
            CertificateFault::Store(_) => None,
        }
    }
}

/// Checks every stored certificate: it decodes, its votes name its epoch,
/// verify and reach the weight of its endorsers, its record agrees, and at a
/// height the chain holds it certifies the canonical block (a certificate
/// above the tip is for a block not synced yet).
fn verify_certificates(archive: &StoreArchive<'_>) -> Result<u64, CertificateFault> {
    let view = &archive.view;
    let tip = view.tip()?;
    let mut checked = 0u64;
    for item in view.scan_certificates_from(0)? {
        let (height, record) = item?;
        let certificate = Certificate::decode(&record.certificate)
            .map_err(|source| CertificateFault::Undecodable { height, source })?;
        if certificate.height != height {
            return Err(CertificateFault::WrongHeight {
                height,
                found: certificate.height,
            });
        }
        let weight = VoteContext::at_height(
            (archive.chain_id, archive.genesis.hash),
            height,
            |h| archive.epoch_of(h),
            |epoch| archive.endorsers_for_epoch(epoch),
        )
        .and_then(|context| certificate.verify(&context))
        .map_err(|source| CertificateFault::Invalid { height, source })?;
        if certificate.hash != record.hash || weight != record.weight {
            return Err(CertificateFault::RecordMismatch { height });
        }
        if height <= tip.height {
            let canonical = view.block_hash_at(height)?.unwrap_or(Hash::ZERO);
            if canonical != record.hash {
                return Err(CertificateFault::NotCanonical {
                    height,
                    certified: record.hash,
                    canonical,
                });
            }
        }
        checked += 1;
    }
    Ok(checked)
}

/// Replays the chain from one snapshot, then runs the store's consistency
/// check (from its own snapshot: the replay's is dropped first, as a thread
/// holding a view must not call `Store` methods).
pub fn verify_store(
    store: &Store,
    spec: &ChainSpec,
    validators: ValidatorSet,
    params: &VerifyParams,
) -> Result<ChainVerification, StoreError> {
    let registry = verify_registry(&store.read()?, spec);
    let (certificates, replay) = {
        let archive = StoreArchive::new(store.read()?, spec, validators)?;
        (
            verify_certificates(&archive),
            verify_chain(&archive, params),
        )
    };
    Ok(ChainVerification {
        replay,
        tables: store.check_chain_consistency(),
        certificates,
        registry,
    })
}
