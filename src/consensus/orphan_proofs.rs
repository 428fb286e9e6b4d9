//! Verified proofs whose transaction spends an output this node does not
//! know yet (its parent is still on its way): kept briefly, keyed by the
//! missing parent's txid, and applied when that parent finalizes here, so
//! a proof that arrived first is not lost until block sync.
//!
//! Bounded: at most `parents` missing parents (the oldest forgotten
//! first) and [`PROOFS_PER_PARENT`] proofs waiting on each. Only verified
//! proofs enter, so filling it costs a peer its work budget.

use crate::finality::FinalityProof;
use crate::mempool::RecentMap;
use crate::types::Hash;

/// Proofs kept waiting on one missing parent.
pub const PROOFS_PER_PARENT: usize = 4;

pub struct OrphanProofs {
    by_parent: RecentMap<Hash, Vec<FinalityProof>>,
}

impl OrphanProofs {
    pub fn new(parents: usize) -> OrphanProofs {
        OrphanProofs {
            by_parent: RecentMap::new(parents),
        }
    }

    /// Keeps `proof` until `parent` finalizes; `false` if that parent's
    /// list is full (the proof is dropped).
    pub fn insert(&mut self, parent: Hash, proof: FinalityProof) -> bool {
        let waiting = self.by_parent.get_or_insert_with(parent, Vec::new);
        if waiting.len() >= PROOFS_PER_PARENT || waiting.contains(&proof) {
            return false;
        }
        waiting.push(proof);
        true
    }

    /// The proofs that waited for `parent`, which just finalized.
    pub fn take_children(&mut self, parent: &Hash) -> Vec<FinalityProof> {
        self.by_parent.remove(parent).unwrap_or_default()
    }
}
