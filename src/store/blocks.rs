//! Checkpoint blocks in the store: applying a block on the tip and undoing
//! the tip block, each in ONE write transaction that moves blocks, heights,
//! the tip, the archival state of the block's txs and its reward outputs
//! together; and the chain's reads (tip, blocks by hash and height, the
//! finalized txs no block archives yet).
//!
//! It never decodes a block nor judges one: the caller validated it and
//! hands over the facts to index ([`BlockCommit`]). It refuses only what
//! would break the chain tables: a block off the tip, an archived txid
//! that is not finalized or already archived, an undo of anything but the
//! tip, or one that would unspend a finalized spend.

use super::lmdb::{
    create_output, decode_value, delete, get, get_decoded, get_utxo, put, put_checked, ReadView,
    Table, Tables,
};
use super::schema::{self, BlockRecord, ChainTip, TxRecord, TxStatus};
use super::{BlockCommit, BlockReport, StoreError, StoredBlock};
use crate::ledger::UtxoState;
use crate::types::encoding::encode;
use crate::types::{Hash, OutPoint};
use ::lmdb::{RwTransaction, WriteFlags};

impl super::Store {
    /// Makes `block` the new tip in one write transaction: its bytes, record
    /// and height, the tip, each archived tx's status (`Archived` here) and
    /// its leaving `unarchived`, and its reward outputs (immature until
    /// `matures_at_height`). Any refusal writes nothing.
    pub fn apply_block(&self, block: &BlockCommit<'_>) -> Result<BlockReport, StoreError> {
        check_block_len(block, "encoding", block.encoded.len(), schema::BLOCKS)?;
        let outputs = block.reward_outputs.len();
        let reward_outputs = u32::try_from(outputs).map_err(|_| StoreError::BlockTooLarge {
            hash: block.hash,
            what: "reward output count",
            len: outputs,
            max: u32::MAX as usize,
        })?;
        let (report, grown) =
            self.write_with_growth(|txn, t| apply_block_in(txn, t, block, reward_outputs))?;
        Ok(BlockReport {
            map_grown_to_bytes: grown,
            ..report
        })
    }

    /// Undoes the tip block, which must be `expected`, in one write
    /// transaction: its reward outputs go, its archived txs are `Finalized`
    /// and `unarchived` again, its bytes, record and height go, and its
    /// parent becomes the tip. Refused, with nothing written, if a reward
    /// output was spent (finality never moves).
    pub fn undo_tip(&self, expected: &Hash) -> Result<BlockReport, StoreError> {
        let (report, grown) = self.write_with_growth(|txn, t| undo_tip_in(txn, t, expected))?;
        Ok(BlockReport {
            map_grown_to_bytes: grown,
            ..report
        })
    }

    /// The tip block (the genesis until a block is applied): one lookup.
    pub fn tip(&self) -> Result<ChainTip, StoreError> {
        self.read()?.tip()
    }

    /// A block's bytes, as given to [`Self::apply_block`].
    pub fn block(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read()?.block(hash)
    }

    /// The hash of the block at `height` on the chain (0: the genesis).
    pub fn block_hash_at(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        self.read()?.block_hash_at(height)
    }

    pub fn block_record(&self, hash: &Hash) -> Result<Option<BlockRecord>, StoreError> {
        self.read()?.block_record(hash)
    }

    /// Finalized txids no block archives yet, oldest finalized first, at most `limit`.
    pub fn unarchived(&self, limit: usize) -> Result<Vec<Hash>, StoreError> {
        self.read()?.unarchived(limit)
    }

    /// Up to `max` blocks from `height` up (the genesis has no bytes and is
    /// skipped), in chain order: what a syncing peer asks for.
    pub fn blocks_from(&self, height: u64, max: usize) -> Result<Vec<StoredBlock>, StoreError> {
        self.read()?.scan_blocks_from(height)?.take(max).collect()
    }
}

impl ReadView<'_> {
    pub fn tip(&self) -> Result<ChainTip, StoreError> {
        self.get_meta(schema::META_TIP)
    }

    pub fn block(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_opaque(self.tables().blocks, &hash.0)
    }

    pub fn block_hash_at(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        self.get_decoded(self.tables().heights, &schema::height_key(height))
    }

    pub fn block_record(&self, hash: &Hash) -> Result<Option<BlockRecord>, StoreError> {
        self.get_decoded(self.tables().block_records, &hash.0)
    }

    pub fn unarchived(&self, limit: usize) -> Result<Vec<Hash>, StoreError> {
        self.scan(self.tables().unarchived, None, |key, _| {
            schema::sequenced_from_key(key)
                .map(|(_, txid): (u64, Hash)| txid)
                .ok_or_else(|| "key is not sequence ‖ txid".to_string())
        })?
        .take(limit)
        .collect()
    }

    /// The chain from `height` up to the tip, in order, each block read
    /// from `blocks` by its `heights` entry (the genesis has no bytes and
    /// is skipped): the input of a replay from genesis.
    pub fn scan_blocks_from(
        &self,
        height: u64,
    ) -> Result<impl Iterator<Item = Result<StoredBlock, StoreError>> + '_, StoreError> {
        let from = schema::height_key(height.max(1));
        let blocks = self.tables().blocks;
        Ok(self
            .scan_heights(Some(&from))?
            .map(move |item| -> Result<StoredBlock, StoreError> {
                let (height, hash) = item?;
                let encoded = self.block(&hash)?.ok_or_else(|| {
                    StoreError::corrupt(
                        blocks.name(),
                        &hash.0,
                        format!("missing, yet it is the block at height {height}"),
                    )
                })?;
                Ok(StoredBlock {
                    height,
                    hash,
                    encoded,
                })
            }))
    }

    /// `heights` entries in height order, from `from` (or 0).
    pub(super) fn scan_heights(
        &self,
        from: Option<&[u8]>,
    ) -> Result<super::Scan<'_, (u64, Hash)>, StoreError> {
        let heights = self.tables().heights;
        self.scan(heights, from, move |key, value| {
            let key: [u8; 8] = key
                .try_into()
                .map_err(|_| "key is not a height".to_string())?;
            let hash = decode_value(heights, value).map_err(|e| e.to_string())?;
            Ok((u64::from_be_bytes(key), hash))
        })
    }
}

/// The tip meta record, which every initialized store has.
fn stored_tip(txn: &RwTransaction<'_>, t: &Tables) -> Result<ChainTip, StoreError> {
    get_decoded(txn, t.meta, schema::META_TIP)?
        .ok_or_else(|| StoreError::corrupt(t.meta.name(), schema::META_TIP, "missing"))
}

fn apply_block_in(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    block: &BlockCommit<'_>,
    reward_outputs: u32,
) -> Result<BlockReport, StoreError> {
    let hash = block.hash;
    let tip = stored_tip(txn, t)?;
    if block.prev_hash != tip.hash || tip.height.checked_add(1) != Some(block.height) {
        return Err(StoreError::BlockNotOnTip {
            height: block.height,
            prev_hash: block.prev_hash,
            tip_hash: tip.hash,
            tip_height: tip.height,
        });
    }
    let record = BlockRecord {
        height: block.height,
        slot: block.slot,
        parent: tip,
        reward_id: block.reward_id,
        reward_outputs,
        matures_at_height: block.matures_at_height,
        archived: block.archived.to_vec(),
    };
    let record_bytes = encode(&record);
    check_block_len(
        block,
        "record (archived txids)",
        record_bytes.len(),
        schema::BLOCK_RECORDS,
    )?;
    let mut writes = 0;
    for txid in block.archived {
        let mut tx: TxRecord =
            get_decoded(txn, t.txs, &txid.0)?.ok_or(StoreError::ArchivesUnfinalized {
                block: hash,
                txid: *txid,
            })?;
        if let TxStatus::Archived { height, block: by } = tx.status {
            return Err(StoreError::AlreadyArchived {
                block: hash,
                txid: *txid,
                by,
                height,
            });
        }
        tx.status = TxStatus::Archived {
            height: block.height,
            block: hash,
        };
        put(txn, t.txs, &txid.0, &encode(&tx))?;
        let listed = schema::sequenced_key(tx.sequence, txid);
        delete_existing(txn, t.unarchived, &listed, "a finalized tx is not listed")?;
        writes += 2;
    }
    let matures = UtxoState::Immature {
        matures_at: block.matures_at_height,
    };
    for (vout, output) in (0..).zip(block.reward_outputs) {
        let outpoint = OutPoint {
            txid: block.reward_id,
            vout,
        };
        if get(txn, t.utxos, &schema::outpoint_key(&outpoint))?.is_some() {
            return Err(StoreError::RewardExists {
                block: hash,
                outpoint,
            });
        }
        create_output(txn, t, &outpoint, output, matures)?;
        writes += 2;
    }
    put_new(txn, t.blocks, &hash.0, block.encoded)?;
    put_new(txn, t.block_records, &hash.0, &record_bytes)?;
    put_new(
        txn,
        t.heights,
        &schema::height_key(block.height),
        &encode(&hash),
    )?;
    let new_tip = ChainTip {
        hash,
        height: block.height,
        slot: block.slot,
    };
    put(txn, t.meta, schema::META_TIP, &encode(&new_tip))?;
    writes += 4;
    super::certified::raise_final_height(txn, t, block.height, &hash)?;
    Ok(BlockReport {
        tip: new_tip,
        writes,
        map_grown_to_bytes: None,
    })
}

fn undo_tip_in(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    expected: &Hash,
) -> Result<BlockReport, StoreError> {
    let tip = stored_tip(txn, t)?;
    if tip.hash != *expected {
        return Err(StoreError::UndoNotTip {
            expected: *expected,
            tip,
        });
    }
    if tip.height == 0 {
        return Err(StoreError::UndoGenesis { genesis: tip.hash });
    }
    let final_height: u64 = get_decoded(txn, t.meta, schema::META_FINAL_HEIGHT)?.unwrap_or(0);
    if tip.height <= final_height {
        return Err(StoreError::UndoFinal {
            block: tip.hash,
            height: tip.height,
            final_height,
        });
    }
    let hash = tip.hash;
    let corrupt = |table: Table, key: &[u8], reason: &str| {
        StoreError::corrupt(table.name(), key, format!("{reason} (undoing tip {hash})"))
    };
    let record: BlockRecord = get_decoded(txn, t.block_records, &hash.0)?
        .ok_or_else(|| corrupt(t.block_records, &hash.0, "the tip block has no record"))?;
    if record.height != tip.height || record.parent.height.checked_add(1) != Some(tip.height) {
        return Err(corrupt(
            t.block_records,
            &hash.0,
            "the record's heights disagree with the tip",
        ));
    }
    let mut writes = 0;
    for vout in 0..record.reward_outputs {
        let outpoint = OutPoint {
            txid: record.reward_id,
            vout,
        };
        let key = schema::outpoint_key(&outpoint);
        let entry = get_utxo(txn, t.utxos, &key)?
            .ok_or_else(|| corrupt(t.utxos, &key, "a reward output of the tip is missing"))?;
        if let UtxoState::Spent { by } = entry.state {
            return Err(StoreError::RewardSpent {
                block: hash,
                outpoint,
                by,
            });
        }
        delete_existing(txn, t.utxos, &key, "a reward output of the tip is missing")?;
        let index_key = schema::addr_utxo_key(&entry.output.address, &outpoint);
        delete_existing(
            txn,
            t.addr_utxos,
            &index_key,
            "an unspent reward output is missing from the address index",
        )?;
        writes += 2;
    }
    for txid in &record.archived {
        let mut tx: TxRecord = get_decoded(txn, t.txs, &txid.0)?
            .ok_or_else(|| corrupt(t.txs, &txid.0, "an archived tx is missing"))?;
        let archived_here = TxStatus::Archived {
            height: tip.height,
            block: hash,
        };
        if tx.status != archived_here {
            return Err(corrupt(
                t.txs,
                &txid.0,
                "the tip archives this tx, but its record says otherwise",
            ));
        }
        tx.status = TxStatus::Finalized;
        put(txn, t.txs, &txid.0, &encode(&tx))?;
        put(
            txn,
            t.unarchived,
            &schema::sequenced_key(tx.sequence, txid),
            &[],
        )?;
        writes += 2;
    }
    let missing = "the tip block is missing here";
    delete_existing(txn, t.blocks, &hash.0, missing)?;
    delete_existing(txn, t.block_records, &hash.0, missing)?;
    delete_existing(txn, t.heights, &schema::height_key(tip.height), missing)?;
    put(txn, t.meta, schema::META_TIP, &encode(&record.parent))?;
    writes += 4;
    Ok(BlockReport {
        tip: record.parent,
        writes,
        map_grown_to_bytes: None,
    })
}

/// Refuses a block whose `what` is over `table`'s limit.
fn check_block_len(
    block: &BlockCommit<'_>,
    what: &'static str,
    len: usize,
    table: schema::TableSpec,
) -> Result<(), StoreError> {
    if len > table.max_value_bytes {
        return Err(StoreError::BlockTooLarge {
            hash: block.hash,
            what,
            len,
            max: table.max_value_bytes,
        });
    }
    Ok(())
}

/// Puts a record that must not exist yet: one that does means the chain
/// tables disagree with the tip.
fn put_new(
    txn: &mut RwTransaction<'_>,
    table: Table,
    key: &[u8],
    value: &[u8],
) -> Result<(), StoreError> {
    let reason = "already present above the tip";
    put_checked(txn, table, (key, value), WriteFlags::NO_OVERWRITE, reason)
}

/// Deletes a record that must exist; `reason` says what its absence means.
fn delete_existing(
    txn: &mut RwTransaction<'_>,
    table: Table,
    key: &[u8],
    reason: &str,
) -> Result<(), StoreError> {
    if delete(txn, table, key)? {
        Ok(())
    } else {
        Err(StoreError::corrupt(table.name(), key, reason))
    }
}
