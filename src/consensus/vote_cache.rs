//! Finality votes whose signature checked out, remembered by vote hash so a
//! vote repeated across proofs, gossip and blocks costs one ed25519 check.
//! One vote signs the Merkle root of every txid of a `Votes` response, so a
//! block's proofs repeat each vote once per txid it covers.
//!
//! Bounded (oldest forgotten first): a forgotten vote is only checked
//! again, never trusted without a check.

use crate::finality::FinalityVote;
use crate::mempool::RecentMap;
use crate::types::Hash;

pub struct VerifiedVotes {
    seen: RecentMap<Hash, ()>,
    /// Signatures actually checked (cache misses).
    checked: u64,
}

impl VerifiedVotes {
    pub fn new(capacity: usize) -> VerifiedVotes {
        VerifiedVotes {
            seen: RecentMap::new(capacity),
            checked: 0,
        }
    }

    /// Whether `vote`'s signature verifies, checking it only if this vote
    /// was not verified before.
    pub fn check(&mut self, vote: &FinalityVote) -> bool {
        let key = vote.vote_hash();
        if self.seen.contains(&key) {
            return true;
        }
        self.checked += 1;
        let ok = vote.verify_signature().is_ok();
        if ok {
            self.seen.insert(key, ());
        }
        ok
    }

    /// Remembers a vote this node signed itself: it needs no check.
    pub fn insert_own(&mut self, vote: &FinalityVote) {
        self.seen.insert(vote.vote_hash(), ());
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }
}
