//! Blocks this node undid, kept a while in memory. Undo deletes a block's
//! bytes, yet the votes certifying it can arrive after it lost: a node
//! endorses the first block it adopts at a height, a better-ranked rival
//! then replaces it everywhere, and the endorsements of the first still
//! reach a quorum. Then no peer's chain holds the certified block, no sync
//! can fetch it, and nobody produces below it: the chain stops. The block
//! thread re-adopts such a branch from here instead (see
//! `BlockThread::readopt_certified`).

use crate::chain::Block;
use crate::types::Hash;
use std::collections::{HashMap, VecDeque};

/// Undone blocks kept, the oldest forgotten first: a certificate comes
/// within a few slots of its block, and at most
/// `max_uncertified_blocks` are undone at once.
const UNDONE_BLOCKS_KEPT: usize = 64;

/// Their bytes at most (the newest one is kept whatever its size).
const UNDONE_BYTES_KEPT: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub(super) struct UndoneBlocks {
    blocks: HashMap<Hash, Block>,
    /// Insertion order, for eviction.
    order: VecDeque<Hash>,
    bytes: usize,
}

impl UndoneBlocks {
    /// Keeps `block`, forgetting the oldest beyond the bounds.
    pub(super) fn insert(&mut self, block: Block) {
        let hash = block.hash();
        let len = block.encoded_len();
        if self.blocks.insert(hash, block).is_none() {
            self.order.push_back(hash);
            self.bytes = self.bytes.saturating_add(len);
        }
        while self.blocks.len() > UNDONE_BLOCKS_KEPT
            || (self.bytes > UNDONE_BYTES_KEPT && self.blocks.len() > 1)
        {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.forget(&old);
        }
    }

    /// Takes the kept blocks that lead from `tip` (exclusive) up to
    /// `target`, lowest first; `None`, taking nothing, if `target` is not
    /// kept or its branch does not reach `tip` through kept blocks.
    pub(super) fn take_branch(&mut self, tip: Hash, target: Hash) -> Option<Vec<Block>> {
        let mut hashes = Vec::new();
        let mut at = target;
        while at != tip {
            // A chain of kept blocks is at most as long as what is kept.
            if hashes.len() >= self.blocks.len() {
                return None;
            }
            let block = self.blocks.get(&at)?;
            hashes.push(at);
            at = block.header.prev_hash;
        }
        let branch = hashes
            .iter()
            .rev()
            .filter_map(|hash| self.forget(hash))
            .collect();
        self.order.retain(|hash| self.blocks.contains_key(hash));
        Some(branch)
    }

    fn forget(&mut self, hash: &Hash) -> Option<Block> {
        let block = self.blocks.remove(hash)?;
        self.bytes = self.bytes.saturating_sub(block.encoded_len());
        Some(block)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::block_at;
    use super::*;

    /// A block at `height` on `prev`, told apart by `salt`.
    fn child(prev: Hash, height: u64, salt: u64) -> Block {
        let mut block = block_at(height);
        block.header.prev_hash = prev;
        block.header.timestamp_ms = salt;
        block
    }

    #[test]
    fn a_branch_is_taken_lowest_first_only_when_it_reaches_the_tip() {
        let tip = Hash([7; 32]);
        let a = child(tip, 5, 0);
        let b = child(a.hash(), 6, 0);
        let rival = child(tip, 5, 1);
        let mut undone = UndoneBlocks::default();
        undone.insert(b.clone());
        undone.insert(rival.clone());
        assert_eq!(undone.take_branch(tip, b.hash()), None, "a is missing");
        assert_eq!(undone.len(), 2, "a failed walk takes nothing");
        undone.insert(a.clone());
        let taken = undone.take_branch(tip, b.hash()).unwrap();
        assert_eq!(taken, vec![a, b]);
        assert_eq!(undone.take_branch(Hash([8; 32]), rival.hash()), None);
        assert_eq!(undone.take_branch(tip, rival.hash()), Some(vec![rival]));
        assert_eq!((undone.len(), undone.order.len(), undone.bytes), (0, 0, 0));
    }

    #[test]
    fn the_oldest_blocks_go_beyond_the_cap() {
        let tip = Hash([7; 32]);
        let mut undone = UndoneBlocks::default();
        let blocks: Vec<Block> = (0..UNDONE_BLOCKS_KEPT as u64 + 2)
            .map(|salt| child(tip, 5, salt))
            .collect();
        for block in &blocks {
            undone.insert(block.clone());
        }
        assert_eq!(undone.len(), UNDONE_BLOCKS_KEPT);
        assert_eq!(undone.take_branch(tip, blocks[1].hash()), None, "evicted");
        let newest = blocks.last().unwrap();
        assert!(undone.take_branch(tip, newest.hash()).is_some());
    }
}
