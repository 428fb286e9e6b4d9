//! The chain state as the block thread reads and indexes it in LMDB:
//! [`StoreChainView`] implements `chain::ChainView` over one `ReadView`
//! snapshot, positioned at the block a candidate must extend; the stored
//! proofs a block builder takes; the order in which txs learned from a
//! block can be committed; the facts `Store::apply_block` indexes.
//!
//! Positioned at the tip, "archived" means archived by any block. For a
//! rival of an adopted block it is positioned at that block's parent, and
//! only txs archived at or below the parent's height count, so the
//! entries the rival would re-archive after the undo are not refused.
//! A member's standing is the registry's (final blocks) plus the evidence
//! the parent and its ancestors above the registry carry, so it depends on
//! the chain only, not on how far this node's registry has got.
//! Read-only: nothing here writes, and a thread holding a view must drop
//! it before it writes the store.

use super::block_thread::heartbeats::HeartbeatPool;
use crate::chain::reward::payout_address;
use crate::chain::{
    Block, ChainTip, ChainView, ChainViewError, Heartbeat, SlotClock, Standing, MAX_BLOCK_BYTES,
};
use crate::finality::{FinalityProof, ValidatorSet};
use crate::ledger::UtxoState;
use crate::masternode::{CommitteeBook, Registry};
use crate::store::schema::PROOFS;
use crate::store::{BlockCommit, ReadView, StoreError, TxStatus};
use crate::time::Timestamp;
use crate::types::encoding::{decode, encode};
use crate::types::{Address, Amount, ChainId, Hash, OutPoint, PublicKeyBytes, Tx};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashSet};

pub struct StoreChainView<'s> {
    pub read: ReadView<'s>,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    /// Recent epochs' sets: a block's producer and reward are checked
    /// against its epoch's set, proofs against their epoch's committee.
    pub committees: &'s CommitteeBook,
    /// The genesis set: the endorsers of every epoch.
    pub endorsers: &'s ValidatorSet,
    /// The registry over the final blocks applied so far.
    pub registry: &'s Registry,
    /// The heartbeats this node verified from gossip.
    pub(in crate::node) heartbeats: &'s HeartbeatPool,
    /// The block a candidate must extend.
    pub parent: ChainTip,
    pub now: Timestamp,
    pub slot_clock: SlotClock,
    /// Offenders slashed by `parent` and its ancestors the registry has not
    /// applied, with the lowest such height: read once, when first asked.
    pub slashed_above_registry: OnceCell<BTreeMap<PublicKeyBytes, u64>>,
    /// [`carried_certified`] of `parent`: read once, when first asked.
    pub certified: OnceCell<Option<u64>>,
}

/// The highest height a certificate carried by the branch ending at block
/// `hash` (height `height`) covers: walking down from it, the first block
/// that carries its parent's certificate (0, the genesis, if none). Chain
/// data only, so every node reads the same for one branch.
pub fn carried_certified(
    read: &ReadView<'_>,
    hash: Hash,
    height: u64,
) -> Result<u64, ChainViewError> {
    let (mut hash, mut height) = (hash, height);
    while height > 0 {
        let bytes = read.block(&hash).map_err(view_error)?.ok_or_else(|| {
            ChainViewError(format!("block {hash} at height {height} is not stored"))
        })?;
        let header = Block::decode_header(&bytes)
            .map_err(|e| ChainViewError(format!("block {hash} does not decode: {e}")))?;
        if header.parent_certificate != Hash::ZERO {
            return Ok(height - 1);
        }
        hash = header.prev_hash;
        height -= 1;
    }
    Ok(0)
}

impl StoreChainView<'_> {
    /// Walks from `parent` down to the registry's last applied block,
    /// decoding only blocks whose header commits to evidence.
    fn read_slashed_above_registry(&self) -> Result<BTreeMap<PublicKeyBytes, u64>, ChainViewError> {
        let applied = self.registry.next_height().saturating_sub(1);
        let (mut hash, mut height) = (self.parent.hash, self.parent.height);
        let mut slashed = BTreeMap::new();
        while height > applied {
            let bytes = self.read.block(&hash).map_err(view_error)?.ok_or_else(|| {
                ChainViewError(format!("block {hash} at height {height} is not stored"))
            })?;
            let undecodable = |e| ChainViewError(format!("block {hash} does not decode: {e}"));
            let header = Block::decode_header(&bytes).map_err(undecodable)?;
            if header.evidence != Hash::ZERO {
                let block = Block::decode(&bytes, MAX_BLOCK_BYTES).map_err(undecodable)?;
                // Walking down: the lowest height is inserted last.
                for evidence in &block.evidence {
                    slashed.insert(evidence.offender(), height);
                }
            }
            hash = header.prev_hash;
            height -= 1;
        }
        Ok(slashed)
    }
}

fn view_error(e: StoreError) -> ChainViewError {
    ChainViewError(e.to_string())
}

impl ChainView for StoreChainView<'_> {
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    fn tip(&self) -> ChainTip {
        self.parent
    }

    fn epoch_of(&self, height: u64) -> u64 {
        self.registry.rules().epoch_of(height)
    }

    fn producers(&self) -> Option<&ValidatorSet> {
        let certified = self.certified.get_or_init(|| {
            carried_certified(&self.read, self.parent.hash, self.parent.height)
                .map_err(|e| {
                    log::warn!(
                        "cannot read the certified prefix of {}: {e}",
                        self.parent.hash
                    )
                })
                .ok()
        });
        let height = self.parent.height.saturating_add(1);
        self.committees
            .producers_at(self.registry.rules(), height, (*certified)?)
    }

    /// A producer of a decided epoch registered in a final block, which
    /// the registry has applied.
    fn payout_address(&self, identity: &PublicKeyBytes) -> Result<Address, ChainViewError> {
        Ok(self
            .registry
            .member(identity)
            .map_or_else(|| payout_address(identity), |m| m.payout))
    }

    fn committee_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.committees.get(epoch)
    }

    fn endorsers_for_epoch(&self, _epoch: u64) -> Option<&ValidatorSet> {
        Some(self.endorsers)
    }

    /// Byte-equal to the proof stored at finalization (read errors: no).
    fn holds_proof(&self, txid: &Hash, proof: &FinalityProof) -> bool {
        matches!(self.read.proof(txid), Ok(Some(stored)) if stored == encode(proof))
    }

    fn holds_heartbeat(&self, heartbeat: &Heartbeat) -> bool {
        self.heartbeats.holds_verified(heartbeat)
    }

    fn is_archived(&self, txid: &Hash) -> Result<bool, ChainViewError> {
        let record = self.read.tx(txid).map_err(view_error)?;
        Ok(matches!(
            record.map(|r| r.status),
            Some(TxStatus::Archived { height, .. }) if height <= self.parent.height
        ))
    }

    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError> {
        self.read
            .fee_of(tx)
            .map_err(|e| ChainViewError(e.to_string()))
    }

    fn standing(&self, identity: &PublicKeyBytes) -> Result<Standing, ChainViewError> {
        let above = match self.slashed_above_registry.get() {
            Some(above) => above,
            None => {
                let read = self.read_slashed_above_registry()?;
                self.slashed_above_registry.get_or_init(|| read)
            }
        };
        match above.get(identity) {
            Some(&height) => Ok(Standing::Slashed { height }),
            None => Ok(self.registry.standing(identity, self.parent.height)),
        }
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn slot_clock(&self) -> SlotClock {
        self.slot_clock
    }
}

/// What the store indexes of a validated `block` (its bytes `encoded`,
/// its entries' txids `archived`), with its reward spendable
/// `reward_maturity_blocks` after it.
pub fn block_commit<'a>(
    block: &'a Block,
    encoded: &'a [u8],
    archived: &'a [Hash],
    reward_maturity_blocks: u64,
) -> BlockCommit<'a> {
    let h = &block.header;
    BlockCommit {
        hash: block.hash(),
        height: h.height,
        slot: h.slot,
        prev_hash: h.prev_hash,
        encoded,
        archived,
        reward_id: block.reward.id(),
        reward_outputs: &block.reward.outputs,
        matures_at_height: h.height.saturating_add(reward_maturity_blocks),
    }
}

/// The stored proof of a finalized tx; a missing or corrupt one is logged
/// and skipped (the tx is not archived until it is readable).
pub(crate) fn stored_proof(
    read: &ReadView<'_>,
    txid: &Hash,
) -> Result<Option<FinalityProof>, StoreError> {
    let Some(bytes) = read.proof(txid)? else {
        log::warn!("finalized tx {txid} has no stored proof; not archiving it");
        return Ok(None);
    };
    match decode(&bytes, PROOFS.max_value_bytes, "finality proof") {
        Ok(proof) => Ok(Some(proof)),
        Err(e) => {
            log::error!("stored proof of {txid} is corrupt ({e}); not archiving it");
            Ok(None)
        }
    }
}

/// `proofs` in an order the store can commit them in one batch: each tx
/// after the txs whose outputs it spends; a tx whose inputs are neither
/// unspent here nor created by another of them is left out (its parent
/// is unknown here, or it conflicts with a finalized spend).
pub(crate) fn spending_order<'p>(
    read: &ReadView<'_>,
    proofs: Vec<&'p FinalityProof>,
) -> Result<Vec<&'p FinalityProof>, StoreError> {
    let mut created: HashSet<OutPoint> = HashSet::new();
    let mut ordered = Vec::with_capacity(proofs.len());
    let mut pending = proofs;
    loop {
        let before = pending.len();
        let mut still = Vec::new();
        for proof in pending {
            let mut spendable = true;
            for input in &proof.tx.inputs {
                if created.contains(&input.prev) {
                    continue;
                }
                let unspent = read
                    .utxo(&input.prev)?
                    .is_some_and(|e| !matches!(e.state, UtxoState::Spent { .. }));
                if !unspent {
                    spendable = false;
                    break;
                }
            }
            if spendable {
                let txid = proof.tx.txid();
                created.extend((0..proof.tx.outputs.len()).filter_map(|vout| {
                    u32::try_from(vout).ok().map(|vout| OutPoint { txid, vout })
                }));
                ordered.push(proof);
            } else {
                still.push(proof);
            }
        }
        if still.is_empty() || still.len() == before {
            for proof in &still {
                log::warn!(
                    "a block archives {} whose inputs are unknown or spent here; not learning it",
                    proof.tx.txid()
                );
            }
            return Ok(ordered);
        }
        pending = still;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChainConfig;
    use crate::genesis::devnet_wallet_key;
    use crate::store::{Store, StoreOptions};
    use crate::types::{Address, Network, TxOut};
    use crate::wallet::{build_transfer, Spendable};

    /// A transfer of 1 TIME out of `coin`, change back to the wallet.
    fn spend(coin: (OutPoint, Amount), chain_id: ChainId) -> Tx {
        let key = devnet_wallet_key();
        let wallet = Address::from_pubkey(&key.public());
        let out = TxOut {
            value: Amount::from_time(1).unwrap(),
            address: wallet,
        };
        let input = Spendable {
            outpoint: coin.0,
            value: coin.1,
            key: &key,
        };
        build_transfer(&[input], &[out], Amount(100_000), wallet, chain_id).unwrap()
    }

    fn proof_of(tx: &Tx) -> FinalityProof {
        FinalityProof {
            tx: tx.clone(),
            votes: Vec::new(),
        }
    }

    #[test]
    fn learned_txs_commit_parents_first_and_orphans_not_at_all() {
        let spec = ChainConfig::builtin(Network::Devnet).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &spec, StoreOptions::default()).unwrap();
        let wallet = Address::from_pubkey(&devnet_wallet_key().public());
        let (outpoint, genesis) = spec
            .genesis_outputs()
            .into_iter()
            .find(|(_, o)| o.address == wallet)
            .unwrap();
        let parent = spend((outpoint, genesis.value), spec.chain_id());
        let change = (parent.outpoint(1), parent.outputs[1].value);
        let child = spend(change, spec.chain_id());
        let orphan = spend(
            (
                OutPoint {
                    txid: Hash::digest(b"unknown"),
                    vout: 0,
                },
                genesis.value,
            ),
            spec.chain_id(),
        );
        let proofs = [proof_of(&child), proof_of(&orphan), proof_of(&parent)];
        let read = store.read().unwrap();
        let ordered = spending_order(&read, proofs.iter().collect()).unwrap();
        let txids: Vec<Hash> = ordered.iter().map(|p| p.tx.txid()).collect();
        assert_eq!(txids, vec![parent.txid(), child.txid()]);
    }
}
