//! Binary Merkle tree over 32-byte leaves (txids), used for finality-vote roots
//! and block `entries_root`. Leaves and inner nodes are hashed under different
//! prefixes (no second-preimage by reinterpreting a node as a leaf), and an odd
//! node is promoted unchanged rather than duplicated (no CVE-2012-2459 twins).

use crate::types::Hash;
use serde::{Deserialize, Serialize};

/// Most levels a path may have: 2^32 leaves is far above any real vote or block.
pub const MAX_DEPTH: usize = 32;

fn leaf_hash(leaf: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0]);
    h.update(leaf.as_bytes());
    Hash(*h.finalize().as_bytes())
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[1]);
    h.update(left.as_bytes());
    h.update(right.as_bytes());
    Hash(*h.finalize().as_bytes())
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [single] => *single,
            _ => Hash::ZERO,
        })
        .collect()
}

/// Root of `leaves` in the given order; `Hash::ZERO` for no leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves.iter().map(leaf_hash).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level.first().copied().unwrap_or(Hash::ZERO)
}

/// Proof that one leaf sits at `index` of a tree with `leaf_count` leaves.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct MerklePath {
    pub index: u32,
    pub leaf_count: u32,
    pub siblings: Vec<Hash>,
}

/// The root and a path for `leaves[index]`; `None` if `index` is out of range.
pub fn root_and_path(leaves: &[Hash], index: usize) -> Option<(Hash, MerklePath)> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level: Vec<Hash> = leaves.iter().map(leaf_hash).collect();
    let mut i = index;
    while level.len() > 1 {
        if let Some(sib) = level.get(i ^ 1) {
            siblings.push(*sib);
        }
        level = next_level(&level);
        i /= 2;
    }
    let path = MerklePath {
        index: index as u32,
        leaf_count: leaves.len() as u32,
        siblings,
    };
    Some((level[0], path))
}

/// Every level of a tree, so many paths cost one tree build (a finality
/// vote's root yields a path for each txid it covers).
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaf hashes, the last level the root.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new(leaves: &[Hash]) -> MerkleTree {
        let mut levels = vec![leaves.iter().map(leaf_hash).collect::<Vec<_>>()];
        while let Some(top) = levels.last().filter(|l| l.len() > 1) {
            let next = next_level(top);
            levels.push(next);
        }
        MerkleTree { levels }
    }

    /// Same as [`root`] of the leaves.
    pub fn root(&self) -> Hash {
        match self.levels.last().map(Vec::as_slice) {
            Some([root]) => *root,
            _ => Hash::ZERO,
        }
    }

    /// Same as [`root_and_path`]'s path; `None` if `index` is out of range.
    pub fn path(&self, index: usize) -> Option<MerklePath> {
        let leaf_count = self.levels.first()?.len();
        if index >= leaf_count {
            return None;
        }
        let (_root, below_root) = self.levels.split_last()?;
        let mut i = index;
        let mut siblings = Vec::with_capacity(below_root.len());
        for level in below_root {
            if let Some(sib) = level.get(i ^ 1) {
                siblings.push(*sib);
            }
            i /= 2;
        }
        Some(MerklePath {
            index: index as u32,
            leaf_count: leaf_count as u32,
            siblings,
        })
    }
}

impl MerklePath {
    /// The root this path proves `leaf` under, or `None` if the path is malformed.
    pub fn compute_root(&self, leaf: &Hash) -> Option<Hash> {
        let (mut i, mut count) = (self.index as u64, self.leaf_count as u64);
        if i >= count || self.siblings.len() > MAX_DEPTH {
            return None;
        }
        let mut acc = leaf_hash(leaf);
        let mut sibs = self.siblings.iter();
        while count > 1 {
            let sib_index = i ^ 1;
            if sib_index < count {
                let sib = sibs.next()?;
                acc = if i % 2 == 0 {
                    node_hash(&acc, sib)
                } else {
                    node_hash(sib, &acc)
                };
            }
            i /= 2;
            count = count.div_ceil(2);
        }
        // Every sibling must have been used: no padding.
        sibs.next().is_none().then_some(acc)
    }

    pub fn proves(&self, leaf: &Hash, root: &Hash) -> bool {
        self.compute_root(leaf).as_ref() == Some(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| Hash::digest(&i.to_le_bytes())).collect()
    }

    #[test]
    fn every_leaf_of_every_size_proves() {
        for n in 1..=17 {
            let ls = leaves(n);
            let r = root(&ls);
            for (i, leaf) in ls.iter().enumerate() {
                let (r2, path) = root_and_path(&ls, i).unwrap();
                assert_eq!(r, r2);
                assert!(path.proves(leaf, &r), "n={n} i={i}");
                assert!(!path.proves(&Hash::digest(b"other"), &r));
            }
        }
    }

    #[test]
    fn tampered_paths_fail() {
        let ls = leaves(5);
        let (r, path) = root_and_path(&ls, 2).unwrap();
        let mut p = path.clone();
        p.index = 3;
        assert!(!p.proves(&ls[2], &r));
        let mut p = path.clone();
        p.siblings.push(Hash::ZERO);
        assert!(!p.proves(&ls[2], &r));
        let mut p = path.clone();
        p.leaf_count = 4;
        assert!(!p.proves(&ls[2], &r));
        let mut p = path;
        p.index = 99;
        assert_eq!(p.compute_root(&ls[2]), None);
    }

    #[test]
    fn tree_paths_match_single_paths() {
        for n in 0..=9 {
            let ls = leaves(n);
            let tree = MerkleTree::new(&ls);
            assert_eq!(tree.root(), root(&ls));
            for i in 0..ls.len() {
                assert_eq!(tree.path(i), root_and_path(&ls, i).map(|(_, p)| p));
            }
            assert_eq!(tree.path(ls.len()), None);
        }
    }

    #[test]
    fn odd_duplication_does_not_collide() {
        let ls = leaves(3);
        let mut dup = ls.clone();
        dup.push(ls[2]);
        assert_ne!(root(&ls), root(&dup));
    }
}
