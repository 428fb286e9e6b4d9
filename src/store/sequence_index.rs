//! Where each entry sits in a table keyed sequence ‖ id (`mempool` by
//! txid, `accepted` by outpoint; see `schema`): puts append and old entries
//! leave from the front, but lookups and removals come by id, so the store
//! keeps id → sequence in memory. The map holds exactly the table's
//! entries: it is rebuilt from the keys at open and changed only after a
//! commit succeeded.
//!
//! A write transaction stages its changes in [`SequencedKeys`]; the store
//! applies them to the [`SequenceIndex`] once the commit is durable, and
//! drops them if it aborts (a map-full retry runs the transaction body
//! again with a fresh stage).

use super::lmdb::{delete, put, ReadView, Table};
use super::schema::{self, SequencedId};
use super::StoreError;
use ::lmdb::RwTransaction;
use std::collections::{HashMap, HashSet};

/// id → sequence of every entry of one table, and the next sequence.
#[derive(Debug)]
pub(super) struct SequenceIndex<I> {
    sequences: HashMap<I, u64>,
    next: u64,
}

impl<I> Default for SequenceIndex<I> {
    fn default() -> SequenceIndex<I> {
        SequenceIndex {
            sequences: HashMap::new(),
            next: 0,
        }
    }
}

impl<I: SequencedId> SequenceIndex<I> {
    /// Reads every key of `table`. A key that is not sequence ‖ id, or an id
    /// stored twice, is corruption.
    pub(super) fn load(view: &ReadView<'_>, table: Table) -> Result<SequenceIndex<I>, StoreError> {
        let mut index = SequenceIndex::default();
        for item in view.scan(table, None, |key, _| {
            schema::sequenced_from_key::<I>(key)
                .ok_or_else(|| "key is not sequence ‖ id".to_string())
        })? {
            let (sequence, id) = item?;
            if index.sequences.insert(id, sequence).is_some() {
                let key = schema::sequenced_key(sequence, &id);
                return Err(StoreError::corrupt(table.name(), &key, "id stored twice"));
            }
            index.next = index.next.max(sequence.saturating_add(1));
        }
        Ok(index)
    }

    /// A stage for one write transaction.
    pub(super) fn stage(&self) -> SequencedKeys<'_, I> {
        SequencedKeys {
            index: self,
            added: HashMap::new(),
            removed: HashSet::new(),
            next: self.next,
        }
    }

    /// Makes a committed stage's changes visible.
    pub(super) fn apply(&mut self, changes: StagedChanges<I>) {
        for id in changes.removed {
            self.sequences.remove(&id);
        }
        self.sequences.extend(changes.added);
        self.next = changes.next;
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sequences.len()
    }
}

/// One table's changes in one write transaction, over the committed index.
pub(super) struct SequencedKeys<'a, I> {
    index: &'a SequenceIndex<I>,
    added: HashMap<I, u64>,
    removed: HashSet<I>,
    next: u64,
}

/// What a committed [`SequencedKeys`] changed.
pub(super) struct StagedChanges<I> {
    added: HashMap<I, u64>,
    removed: HashSet<I>,
    next: u64,
}

impl<I: SequencedId> SequencedKeys<'_, I> {
    /// The key `id` is stored under, as of this transaction.
    pub(super) fn key_of(&self, id: &I) -> Option<Vec<u8>> {
        let sequence = match self.added.get(id) {
            Some(sequence) => *sequence,
            None if self.removed.contains(id) => return None,
            None => *self.index.sequences.get(id)?,
        };
        Some(schema::sequenced_key(sequence, id))
    }

    /// Stores `bytes` under the next sequence. Returns whether it wrote: an
    /// id already stored keeps its place and value.
    pub(super) fn put(
        &mut self,
        txn: &mut RwTransaction<'_>,
        table: Table,
        id: I,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        if self.key_of(&id).is_some() {
            return Ok(false);
        }
        let sequence = self.next;
        put(txn, table, &schema::sequenced_key(sequence, &id), bytes)?;
        self.next = sequence.saturating_add(1);
        self.added.insert(id, sequence);
        Ok(true)
    }

    /// Removes `id`'s entry; returns whether there was one.
    pub(super) fn delete(
        &mut self,
        txn: &mut RwTransaction<'_>,
        table: Table,
        id: I,
    ) -> Result<bool, StoreError> {
        let Some(key) = self.key_of(&id) else {
            return Ok(false);
        };
        let existed = delete(txn, table, &key)?;
        if self.added.remove(&id).is_none() {
            self.removed.insert(id);
        }
        Ok(existed)
    }

    pub(super) fn finish(self) -> StagedChanges<I> {
        StagedChanges {
            added: self.added,
            removed: self.removed,
            next: self.next,
        }
    }
}
