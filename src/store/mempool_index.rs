//! Where each pending tx sits in the `mempool` table. Its keys are admission
//! sequence ‖ txid (see `schema`), so puts append and old entries leave from
//! the front; removals come by txid, so the store keeps txid → sequence in
//! memory. The map holds exactly the table's entries: it is rebuilt from the
//! keys at open and changed only after a commit succeeded.
//!
//! A write transaction stages its changes in [`MempoolKeys`]; the store
//! applies them to the [`MempoolIndex`] once the commit is durable, and drops
//! them if it aborts (a map-full retry runs the transaction body again with
//! a fresh stage).

use super::lmdb::{delete, put, ReadView, Table};
use super::schema;
use super::StoreError;
use crate::types::Hash;
use ::lmdb::RwTransaction;
use std::collections::{HashMap, HashSet};

/// txid → sequence of every `mempool` entry, and the next sequence.
#[derive(Debug, Default)]
pub(super) struct MempoolIndex {
    sequences: HashMap<Hash, u64>,
    next: u64,
}

impl MempoolIndex {
    /// Reads every key of the `mempool` table. A key that is not
    /// sequence ‖ txid, or a txid stored twice, is corruption.
    pub(super) fn load(view: &ReadView<'_>, table: Table) -> Result<MempoolIndex, StoreError> {
        let mut index = MempoolIndex::default();
        for item in view.scan(table, None, |key, _| {
            schema::sequenced_from_key(key).ok_or_else(|| "key is not sequence ‖ txid".to_string())
        })? {
            let (sequence, txid) = item?;
            if index.sequences.insert(txid, sequence).is_some() {
                let key = schema::sequenced_key(sequence, &txid);
                return Err(StoreError::corrupt(table.name(), &key, "txid stored twice"));
            }
            index.next = index.next.max(sequence.saturating_add(1));
        }
        Ok(index)
    }

    /// A stage for one write transaction.
    pub(super) fn stage(&self) -> MempoolKeys<'_> {
        MempoolKeys {
            index: self,
            added: HashMap::new(),
            removed: HashSet::new(),
            next: self.next,
        }
    }

    /// Makes a committed stage's changes visible.
    pub(super) fn apply(&mut self, changes: StagedChanges) {
        for txid in changes.removed {
            self.sequences.remove(&txid);
        }
        self.sequences.extend(changes.added);
        self.next = changes.next;
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sequences.len()
    }
}

/// The `mempool` changes of one write transaction, over the committed index.
pub(super) struct MempoolKeys<'a> {
    index: &'a MempoolIndex,
    added: HashMap<Hash, u64>,
    removed: HashSet<Hash>,
    next: u64,
}

/// What a committed [`MempoolKeys`] changed.
pub(super) struct StagedChanges {
    added: HashMap<Hash, u64>,
    removed: HashSet<Hash>,
    next: u64,
}

impl MempoolKeys<'_> {
    fn sequence_of(&self, txid: &Hash) -> Option<u64> {
        if let Some(sequence) = self.added.get(txid) {
            return Some(*sequence);
        }
        if self.removed.contains(txid) {
            return None;
        }
        self.index.sequences.get(txid).copied()
    }

    /// Stores a pending tx under the next sequence. Returns whether it wrote:
    /// a tx already stored keeps its place.
    pub(super) fn put(
        &mut self,
        txn: &mut RwTransaction<'_>,
        table: Table,
        txid: Hash,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        if self.sequence_of(&txid).is_some() {
            return Ok(false);
        }
        let sequence = self.next;
        put(txn, table, &schema::sequenced_key(sequence, &txid), bytes)?;
        self.next = sequence.saturating_add(1);
        self.added.insert(txid, sequence);
        Ok(true)
    }

    /// Removes a pending tx; returns whether it was stored.
    pub(super) fn delete(
        &mut self,
        txn: &mut RwTransaction<'_>,
        table: Table,
        txid: Hash,
    ) -> Result<bool, StoreError> {
        let Some(sequence) = self.sequence_of(&txid) else {
            return Ok(false);
        };
        let existed = delete(txn, table, &schema::sequenced_key(sequence, &txid))?;
        if self.added.remove(&txid).is_none() {
            self.removed.insert(txid);
        }
        Ok(existed)
    }

    pub(super) fn finish(self) -> StagedChanges {
        StagedChanges {
            added: self.added,
            removed: self.removed,
            next: self.next,
        }
    }
}
