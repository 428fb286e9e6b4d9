//! [`Store::check_chain_consistency`]: reads the chain tables from one
//! snapshot and checks that the tip, the heights, the blocks and their
//! records, the archival state of every finalized tx and the reward
//! outputs tell one story. Run after a crash (tests) and by `verifychain`.
//!
//! It only reads, and reports the first disagreement as
//! [`StoreError::Corrupt`] naming the table and key; it never repairs.

use super::lmdb::ReadView;
use super::schema::{self, BlockRecord, ChainTip, TxStatus};
use super::{ChainSummary, Store, StoreError};
use crate::ledger::UtxoState;
use crate::types::{Hash, OutPoint};
use std::collections::BTreeSet;

impl Store {
    /// Checks, from one snapshot and in one pass over the chain:
    /// * `heights` holds exactly `0..=tip.height`, the genesis at 0 and the
    ///   tip's hash at the top;
    /// * every block above the genesis has its bytes and a record of its
    ///   height whose parent is the block below it; `blocks` and
    ///   `block_records` hold nothing else;
    /// * every tx a block archives records that block and height; every
    ///   other finalized tx is `Finalized` and listed in `unarchived`, and
    ///   `unarchived` lists nothing else;
    /// * every block's reward outputs exist, immature until the block's
    ///   maturity height or spent, and no other output is immature or
    ///   belongs to a reward tx.
    ///
    /// Reads every tx record and output: a full scan, not for hot paths.
    pub fn check_chain_consistency(&self) -> Result<ChainSummary, StoreError> {
        let view = self.read()?;
        let tip = view.tip()?;
        let chain = check_blocks(&view, &tip)?;
        let unarchived = check_archival(&view, chain.archived)?;
        check_rewards(&view, &chain)?;
        Ok(ChainSummary {
            tip,
            archived: chain.archived,
            unarchived,
            reward_outputs: chain.reward_outputs,
        })
    }
}

/// What the walk up the chain collected for the table-wide checks.
struct Walked {
    archived: u64,
    reward_ids: BTreeSet<Hash>,
    reward_outputs: u64,
}

fn check_blocks(view: &ReadView<'_>, tip: &ChainTip) -> Result<Walked, StoreError> {
    let t = view.tables();
    let genesis: Hash = view.get_meta(schema::META_GENESIS_HASH)?;
    let mut walked = Walked {
        archived: 0,
        reward_ids: BTreeSet::new(),
        reward_outputs: 0,
    };
    let mut below: Option<ChainTip> = None;
    for item in view.scan_heights(None)? {
        let (height, hash) = item?;
        let key = schema::height_key(height);
        let expected = below.map_or(0, |b| b.height + 1);
        if height != expected {
            let reason = format!("height {height} follows height {expected}: the chain has a gap");
            return Err(StoreError::corrupt(t.heights.name(), &key, reason));
        }
        let Some(parent) = below else {
            if hash != genesis {
                let reason = format!("height 0 holds {hash}, not the genesis {genesis}");
                return Err(StoreError::corrupt(t.heights.name(), &key, reason));
            }
            // The genesis' slot is stored only in the tip record (and in
            // block 1's parent), so it is taken as is.
            below = Some(ChainTip {
                hash,
                height: 0,
                slot: tip.slot,
            });
            continue;
        };
        let record = view.block_record(&hash)?.ok_or_else(|| {
            let reason = format!("the block at height {height} has no record");
            StoreError::corrupt(t.block_records.name(), &hash.0, reason)
        })?;
        check_record(&record, height, &parent, &hash)?;
        if view.block(&hash)?.is_none() {
            let reason = format!("missing, yet it is the block at height {height}");
            return Err(StoreError::corrupt(t.blocks.name(), &hash.0, reason));
        }
        check_archived_by(view, &record, &hash)?;
        check_reward_outputs(view, &record, &hash)?;
        if !walked.reward_ids.insert(record.reward_id) {
            let reason = format!("a second block pays reward tx {}", record.reward_id);
            return Err(StoreError::corrupt(t.block_records.name(), &hash.0, reason));
        }
        walked.archived += record.archived.len() as u64;
        walked.reward_outputs += u64::from(record.reward_outputs);
        below = Some(ChainTip {
            hash,
            height,
            slot: record.slot,
        });
    }
    if below != Some(*tip) {
        let reason = format!("the tip is {tip:?}, but the chain ends at {below:?}");
        return Err(StoreError::corrupt(t.meta.name(), schema::META_TIP, reason));
    }
    for table in [t.blocks, t.block_records] {
        let count = view.count(table)?;
        if count != tip.height {
            let reason = format!(
                "{count} records, but the chain has {} blocks above the genesis",
                tip.height
            );
            return Err(StoreError::corrupt(table.name(), &[], reason));
        }
    }
    Ok(walked)
}

/// A block's record must be at its height and name the block below it.
fn check_record(
    record: &BlockRecord,
    height: u64,
    below: &ChainTip,
    hash: &Hash,
) -> Result<(), StoreError> {
    let disagree =
        |reason: String| StoreError::corrupt(schema::BLOCK_RECORDS.name, &hash.0, reason);
    if record.height != height {
        return Err(disagree(format!(
            "record says height {}, heights says {height}",
            record.height
        )));
    }
    let parent_matches = record.parent.hash == below.hash
        && record.parent.height == below.height
        // The genesis' slot is stored only as the tip (or block 1's parent).
        && (below.height == 0 || record.parent.slot == below.slot);
    if !parent_matches {
        return Err(disagree(format!(
            "its parent is {:?}, but the block below it is {below:?}",
            record.parent
        )));
    }
    if record.slot <= record.parent.slot {
        return Err(disagree(format!(
            "slot {} does not follow its parent's slot {}",
            record.slot, record.parent.slot
        )));
    }
    Ok(())
}

/// Every tx the block archives records it as its archiving block.
fn check_archived_by(
    view: &ReadView<'_>,
    record: &BlockRecord,
    hash: &Hash,
) -> Result<(), StoreError> {
    let txs = view.tables().txs;
    let expected = TxStatus::Archived {
        height: record.height,
        block: *hash,
    };
    for txid in &record.archived {
        let status = view.tx(txid)?.map(|tx| tx.status);
        if status != Some(expected) {
            let reason = format!("block {hash} archives it, but its status is {status:?}");
            return Err(StoreError::corrupt(txs.name(), &txid.0, reason));
        }
    }
    Ok(())
}

/// Archived statuses number exactly the blocks' archived txids (so each
/// one was checked by its block), and `unarchived` lists exactly the
/// `Finalized` txs. Returns how many those are.
fn check_archival(view: &ReadView<'_>, archived: u64) -> Result<u64, StoreError> {
    let t = view.tables();
    let (mut archived_found, mut finalized) = (0u64, 0u64);
    for item in view.scan_txs()? {
        let (txid, record) = item?;
        match record.status {
            TxStatus::Archived { .. } => archived_found += 1,
            TxStatus::Finalized => {
                if !view.contains(t.unarchived, &schema::sequenced_key(record.sequence, &txid))? {
                    let reason = "finalized and archived by no block, yet not listed";
                    return Err(StoreError::corrupt(t.unarchived.name(), &txid.0, reason));
                }
                finalized += 1;
            }
        }
    }
    if archived_found != archived {
        let reason = format!(
            "{archived_found} txs say they are archived, but the blocks archive {archived}"
        );
        return Err(StoreError::corrupt(t.txs.name(), &[], reason));
    }
    let listed = view.count(t.unarchived)?;
    if listed != finalized {
        let reason = format!("{listed} entries, but {finalized} txs are finalized and unarchived");
        return Err(StoreError::corrupt(t.unarchived.name(), &[], reason));
    }
    Ok(finalized)
}

/// A block's reward outputs are `reward_id:0..n`, each immature until the
/// block's maturity height or spent; `reward_id:n` does not exist.
fn check_reward_outputs(
    view: &ReadView<'_>,
    record: &BlockRecord,
    hash: &Hash,
) -> Result<(), StoreError> {
    let utxos = view.tables().utxos;
    for vout in 0..=record.reward_outputs {
        let outpoint = OutPoint {
            txid: record.reward_id,
            vout,
        };
        let state = view.utxo(&outpoint)?.map(|entry| entry.state);
        let fits = match state {
            None => vout == record.reward_outputs,
            Some(UtxoState::Spent { .. }) => vout < record.reward_outputs,
            Some(UtxoState::Immature { matures_at }) => {
                vout < record.reward_outputs && matures_at == record.matures_at_height
            }
            Some(UtxoState::Unspent) => false,
        };
        if !fits {
            let reason = format!(
                "block {hash} pays {} reward outputs maturing at height {}, but this one is {state:?}",
                record.reward_outputs, record.matures_at_height
            );
            return Err(StoreError::corrupt(
                utxos.name(),
                &schema::outpoint_key(&outpoint),
                reason,
            ));
        }
    }
    Ok(())
}

/// No output is immature but the chain's rewards, and the outputs of
/// reward txs number what the blocks pay (each block's were checked).
fn check_rewards(view: &ReadView<'_>, walked: &Walked) -> Result<(), StoreError> {
    let utxos = view.tables().utxos;
    let mut found = 0;
    for item in view.scan_utxos()? {
        let (outpoint, entry) = item?;
        let is_reward = walked.reward_ids.contains(&outpoint.txid);
        if matches!(entry.state, UtxoState::Immature { .. }) && !is_reward {
            return Err(StoreError::corrupt(
                utxos.name(),
                &schema::outpoint_key(&outpoint),
                "immature, but no block of the chain pays it as a reward",
            ));
        }
        found += u64::from(is_reward);
    }
    if found != walked.reward_outputs {
        let reason = format!(
            "{found} outputs belong to reward txs, but the blocks pay {}",
            walked.reward_outputs
        );
        return Err(StoreError::corrupt(utxos.name(), &[], reason));
    }
    Ok(())
}
