//! A window vote as it travels (DESIGN §5): the signed vote and the sorted
//! txids under its root, broadcast once by the voter and relayed once by
//! every node, so each node can credit every listed txid with the voter's
//! weight and build that txid's Merkle path locally.
//! Pure: checks shape and root; the signature is the caller's cached check.

use super::vote::{FinalityVote, VoteScope};
use crate::crypto::merkle::{MerklePath, MerkleTree};
use crate::crypto::Keypair;
use crate::types::{Hash, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most txids one window may list: a window closes at `max_window_txs`
/// (configurable up to this), and a received one over it is refused whole.
pub const MAX_WINDOW_TXS: usize = 4_096;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WindowVote {
    pub vote: FinalityVote,
    /// Strictly ascending: the leaves of `vote.root`.
    pub txids: Vec<Hash>,
}

/// Why a received window vote is malformed. Always the sender's (or the
/// voter's) fault; the signature is checked apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("window lists no txids")]
    Empty,
    #[error("window lists {count} txids, over the limit of {max}")]
    TooMany { count: usize, max: usize },
    #[error("window txids are not strictly ascending")]
    Unsorted,
    #[error("window txids do not hash to the signed root")]
    WrongRoot,
}

impl WindowVote {
    /// Signs the window holding `txids` (sorted and deduplicated here).
    pub fn sign(keypair: &Keypair, scope: VoteScope, seq: u64, txids: Vec<Hash>) -> Self {
        Arc::unwrap_or_clone(WindowTree::sign(keypair, scope, seq, txids).window)
    }

    /// `(voter, seq)`: what relays deduplicate and missing windows are asked by.
    pub fn key(&self) -> (PublicKeyBytes, u64) {
        (self.vote.voter, self.vote.seq)
    }

    /// Count, order and root; returns the tree, from which each listed
    /// txid's path is taken (built once per window per node).
    pub fn check_shape(&self) -> Result<MerkleTree, WindowError> {
        let count = self.txids.len();
        if count == 0 {
            return Err(WindowError::Empty);
        }
        if count > MAX_WINDOW_TXS {
            return Err(WindowError::TooMany {
                count,
                max: MAX_WINDOW_TXS,
            });
        }
        if !self.txids.windows(2).all(|w| w[0] < w[1]) {
            return Err(WindowError::Unsorted);
        }
        let tree = MerkleTree::new(&self.txids);
        if tree.root() != self.vote.root {
            return Err(WindowError::WrongRoot);
        }
        Ok(tree)
    }

    /// Where `txid` sits among the leaves, if listed.
    pub fn position(&self, txid: &Hash) -> Option<usize> {
        self.txids.binary_search(txid).ok()
    }
}

/// A window vote with the Merkle tree of its txids, built once and matched
/// against the signed root (the signature is checked apart). Every listed
/// txid's path is read from it without hashing again, and vote tallies
/// hold it by `Arc`: one copy per window, not a vote and a path per txid.
#[derive(Debug)]
pub struct WindowTree {
    window: Arc<WindowVote>,
    tree: MerkleTree,
}

impl WindowTree {
    /// Checks `window`'s shape and root ([`WindowVote::check_shape`]).
    pub fn check(window: Arc<WindowVote>) -> Result<WindowTree, WindowError> {
        let tree = window.check_shape()?;
        Ok(WindowTree { window, tree })
    }

    /// Signs the window holding `txids` (sorted and deduplicated here);
    /// the signer takes its own paths without hashing the leaves again.
    pub fn sign(keypair: &Keypair, scope: VoteScope, seq: u64, mut txids: Vec<Hash>) -> Self {
        txids.sort_unstable();
        txids.dedup();
        let tree = MerkleTree::new(&txids);
        let vote = FinalityVote::sign_root(keypair, scope, seq, tree.root());
        WindowTree {
            window: Arc::new(WindowVote { vote, txids }),
            tree,
        }
    }

    pub fn window(&self) -> &Arc<WindowVote> {
        &self.window
    }

    pub fn vote(&self) -> &FinalityVote {
        &self.window.vote
    }

    pub fn txids(&self) -> &[Hash] {
        &self.window.txids
    }

    /// The path of the txid at `leaf` under the signed root.
    pub fn path(&self, leaf: usize) -> Option<MerklePath> {
        self.tree.path(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChainId;

    fn scope() -> VoteScope {
        VoteScope {
            chain_id: ChainId(3),
            genesis_hash: Hash::digest(b"g"),
            epoch: 0,
        }
    }

    #[test]
    fn a_signed_window_checks_and_proves_each_listed_txid() {
        let key = Keypair::from_seed_label("v");
        let txids: Vec<Hash> = (0u8..9).map(|i| Hash::digest(&[i])).collect();
        let window = WindowVote::sign(&key, scope(), 4, txids.iter().rev().copied().collect());
        let tree = window.check_shape().unwrap();
        let mut sorted = txids.clone();
        sorted.sort_unstable();
        assert_eq!(window.txids, sorted);
        assert_eq!(window.vote.root, crate::crypto::merkle::root(&sorted));
        for txid in &txids {
            let index = window.position(txid).unwrap();
            assert!(tree.path(index).unwrap().proves(txid, &window.vote.root));
        }
        assert_eq!(window.key(), (key.public(), 4));
    }

    #[test]
    fn malformed_windows_are_refused() {
        let key = Keypair::from_seed_label("v");
        let window = WindowVote::sign(
            &key,
            scope(),
            1,
            vec![Hash::digest(b"a"), Hash::digest(b"b")],
        );
        let mut unsorted = window.clone();
        unsorted.txids.reverse();
        assert_eq!(unsorted.check_shape().err(), Some(WindowError::Unsorted));
        let mut swapped = window.clone();
        swapped.txids[1] = Hash([0xff; 32]);
        assert_eq!(swapped.check_shape().err(), Some(WindowError::WrongRoot));
        let empty = WindowVote {
            txids: Vec::new(),
            ..window.clone()
        };
        assert_eq!(empty.check_shape().err(), Some(WindowError::Empty));
        let many = WindowVote {
            txids: vec![Hash::ZERO; MAX_WINDOW_TXS + 1],
            ..window
        };
        assert!(matches!(
            many.check_shape(),
            Err(WindowError::TooMany { .. })
        ));
    }
}
