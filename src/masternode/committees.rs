//! Each epoch's sets (DESIGN §5 "Bigger sets", §6, §7): the decided set
//! weighs block producers and rewards; its finality committee, drawn with
//! a seed the certified chain fixed before the epoch began (so every node
//! and every offline verifier draws the same one), weighs proof votes.
//! Pure: callers read the set and the deciding block.

use super::EpochRules;
use crate::chain::producing_epoch;
use crate::config::ChainSpec;
use crate::consensus::EpochCommittee;
use crate::finality::{draw_committee, epoch_seed, ValidatorSet};
use crate::types::Hash;
use std::collections::BTreeMap;

/// What drawing an epoch's committee takes from the chain config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitteeRules {
    pub genesis_hash: Hash,
    pub seats: u32,
    pub epochs: EpochRules,
}

impl CommitteeRules {
    pub fn of(spec: &ChainSpec) -> CommitteeRules {
        CommitteeRules {
            genesis_hash: spec.genesis_hash(),
            seats: spec.config.consensus.finality_committee_seats,
            epochs: spec.epoch_rules,
        }
    }

    /// The height whose final block decided `epoch`'s set (the last of
    /// epoch `e − 2`) and seeds its committee; `None` for the genesis set's
    /// epochs 0 and 1.
    pub fn deciding_height(&self, epoch: u64) -> Option<u64> {
        let previous = epoch.checked_sub(1).filter(|e| *e >= 1)?;
        self.epochs.first_height(previous).checked_sub(1)
    }

    /// The committee of `epoch` drawn from its `set`, seeded by the hash of
    /// the block at [`Self::deciding_height`] (`None` for epochs 0 and 1).
    pub fn committee(
        &self,
        epoch: u64,
        set: &ValidatorSet,
        deciding_block: Option<Hash>,
    ) -> EpochCommittee {
        let seed = epoch_seed(self.genesis_hash, epoch, deciding_block);
        EpochCommittee {
            epoch,
            committee: draw_committee(set, &seed, self.seats),
        }
    }

    /// `epoch`'s decided `set` with its committee (see [`Self::committee`]).
    pub fn sets(&self, epoch: u64, set: ValidatorSet, deciding_block: Option<Hash>) -> EpochSets {
        let committee = self.committee(epoch, &set, deciding_block);
        EpochSets { set, committee }
    }

    /// The epoch a node is in once the final chain reaches `final_height`:
    /// the one of the next block to certify.
    pub fn current_epoch(&self, final_height: u64) -> u64 {
        self.epochs.epoch_of(final_height.saturating_add(1))
    }
}

/// One decided epoch's sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochSets {
    /// The whole decided set: who produces blocks, by weight, and who
    /// shares their rewards.
    pub set: ValidatorSet,
    /// Its finality committee: whose votes proofs count.
    pub committee: EpochCommittee,
}

/// Recent epochs' sets, as a node's chain decided them: what blocks'
/// producers, rewards and proofs are checked against. Holds the genesis
/// sets (epochs 0 and 1) and the [`COMMITTEES_KEPT`] newest others.
#[derive(Clone, Debug)]
pub struct CommitteeBook {
    genesis: EpochSets,
    later: BTreeMap<u64, EpochSets>,
}

/// Later epochs' sets a [`CommitteeBook`] keeps: the blocks a node checks
/// are of its last few epochs (older ones it already holds).
pub const COMMITTEES_KEPT: usize = 8;

impl CommitteeBook {
    pub fn new(genesis: EpochSets) -> CommitteeBook {
        CommitteeBook {
            genesis,
            later: BTreeMap::new(),
        }
    }

    fn sets(&self, epoch: u64) -> Option<&EpochSets> {
        match epoch {
            0 | 1 => Some(&self.genesis),
            _ => self.later.get(&epoch),
        }
    }

    /// `epoch`'s finality committee.
    pub fn get(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.sets(epoch).map(|s| &s.committee.committee)
    }

    /// `epoch`'s whole set: its block producers.
    pub fn producers(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.sets(epoch).map(|s| &s.set)
    }

    /// The producers of a block at `height` on a branch whose carried
    /// certificates reach `certified` (see [`producing_epoch`]).
    pub fn producers_at(
        &self,
        rules: &EpochRules,
        height: u64,
        certified: u64,
    ) -> Option<&ValidatorSet> {
        self.producers(producing_epoch(height, certified, |h| rules.epoch_of(h)))
    }

    /// Adds a decided epoch's sets, forgetting the oldest beyond the cap.
    pub fn insert(&mut self, sets: EpochSets) {
        let epoch = sets.committee.epoch;
        if epoch <= 1 {
            return;
        }
        self.later.insert(epoch, sets);
        while self.later.len() > COMMITTEES_KEPT {
            self.later.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::types::{Validator, VrfPublicBytes};

    fn set(n: usize) -> ValidatorSet {
        ValidatorSet::new(
            (0..n)
                .map(|i| {
                    let id = Keypair::from_seed_label(&format!("committees {i}")).public();
                    Validator {
                        id,
                        vrf_key: VrfPublicBytes(id.0),
                        weight: 10,
                    }
                })
                .collect(),
        )
        .unwrap()
    }

    fn rules(seats: u32) -> CommitteeRules {
        CommitteeRules {
            genesis_hash: Hash::digest(b"genesis"),
            seats,
            epochs: EpochRules::new(10, 2, 3).unwrap(),
        }
    }

    #[test]
    fn an_epochs_set_is_decided_by_the_last_block_two_epochs_before() {
        let r = rules(128);
        assert_eq!(r.deciding_height(0), None);
        assert_eq!(r.deciding_height(1), None);
        assert_eq!(r.deciding_height(2), Some(9));
        assert_eq!(r.deciding_height(5), Some(39));
        assert_eq!(r.current_epoch(0), 0);
        assert_eq!(r.current_epoch(8), 0);
        assert_eq!(r.current_epoch(9), 1, "block 10 is epoch 1's");
    }

    #[test]
    fn a_large_sets_committee_depends_on_its_deciding_block() {
        let (r, big) = (rules(16), set(40));
        let a = r.committee(2, &big, Some(Hash::digest(b"a")));
        let b = r.committee(2, &big, Some(Hash::digest(b"b")));
        assert_ne!(a.committee, b.committee);
        assert_eq!(a, r.committee(2, &big, Some(Hash::digest(b"a"))));
        assert_eq!(
            r.committee(0, &big, None).committee,
            r.committee(1, &big, None).committee
        );
    }

    #[test]
    fn the_book_keeps_the_genesis_and_the_newest_epochs() {
        let r = rules(128);
        let mut book = CommitteeBook::new(r.sets(0, set(3), None));
        for epoch in 2..20 {
            book.insert(r.sets(epoch, set(4), Some(Hash::digest(b"x"))));
        }
        assert!(book.get(0).is_some() && book.get(1).is_some());
        assert_eq!(book.producers(1), Some(&set(3)));
        assert_eq!(book.get(11), None);
        assert!(book.get(12).is_some() && book.producers(19).is_some());
        assert_eq!(book.get(20), None);
        assert_eq!(book.producers(20), None);
    }
}
