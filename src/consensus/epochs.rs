//! The finality committees an engine holds across epoch changes (DESIGN
//! §7): the current epoch's, whose members poll and sign; the previous
//! one's, for late votes and proofs from nodes still crossing the boundary;
//! and the next one's once the chain decided it, for early votes from nodes
//! that crossed first. Anything older is refused (the long-range rule);
//! nothing here ever takes a set from a message, only from the driver.
//!
//! Members keep one voter number across epochs ([`Committees::voter_id`]),
//! so equivocation bookkeeping survives an epoch change even when the
//! committee's order (and so a member's index) changes.

use super::messages::NodeId;
use crate::finality::ValidatorSet;
use foldhash::{HashMap, HashMapExt};

/// One epoch's finality committee, as the certified chain decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochCommittee {
    pub epoch: u64,
    pub committee: ValidatorSet,
}

/// Why an epoch change was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error("epoch {got} is not after the current epoch {current}")]
    NotAfterCurrent { current: u64, got: u64 },
    #[error("epoch {got} is not the one after the current epoch {current}")]
    NotNext { current: u64, got: u64 },
}

/// The committees of the previous, current and next epoch.
#[derive(Clone, Debug)]
pub struct Committees {
    previous: Option<EpochCommittee>,
    current: EpochCommittee,
    next: Option<EpochCommittee>,
    /// A stable number per member of any committee held: assigned on first
    /// sight, dropped when no held committee lists the member any more.
    /// Bounded by the members of three committees.
    voter_ids: HashMap<NodeId, u32>,
    next_voter_id: u32,
}

impl Committees {
    pub fn new(current: EpochCommittee) -> Committees {
        let mut committees = Committees {
            previous: None,
            current,
            next: None,
            voter_ids: HashMap::new(),
            next_voter_id: 0,
        };
        committees.number_members();
        committees
    }

    pub fn epoch(&self) -> u64 {
        self.current.epoch
    }

    /// The current committee: who polls, signs and is sampled.
    pub fn current(&self) -> &ValidatorSet {
        &self.current.committee
    }

    /// The committee votes and proofs of `epoch` are checked against, if
    /// it is the previous, current or next epoch.
    pub fn get(&self, epoch: u64) -> Option<&ValidatorSet> {
        [
            self.previous.as_ref(),
            Some(&self.current),
            self.next.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find(|c| c.epoch == epoch)
        .map(|c| &c.committee)
    }

    /// Whether `id` sits on any committee held (it is charged as a validator).
    pub fn holds(&self, id: &NodeId) -> bool {
        self.voter_ids.contains_key(id)
    }

    /// `id`'s voter number, the same in every epoch it sits in.
    pub fn voter_id(&self, id: &NodeId) -> Option<u32> {
        self.voter_ids.get(id).copied()
    }

    /// Voter numbers handed out so far (every number is below it).
    pub fn voter_span(&self) -> usize {
        self.next_voter_id as usize
    }

    /// The chain decided the committee of the epoch after the current one.
    pub fn learn_next(&mut self, next: EpochCommittee) -> Result<(), EpochError> {
        let current = self.current.epoch;
        if next.epoch != current.saturating_add(1) {
            return Err(EpochError::NotNext {
                current,
                got: next.epoch,
            });
        }
        self.next = Some(next);
        self.number_members();
        Ok(())
    }

    /// Makes `to` current. The one it replaces stays as the previous
    /// committee only if `to` directly follows it.
    pub fn advance(&mut self, to: EpochCommittee) -> Result<(), EpochError> {
        let current = self.current.epoch;
        if to.epoch <= current {
            return Err(EpochError::NotAfterCurrent {
                current,
                got: to.epoch,
            });
        }
        let replaced = std::mem::replace(&mut self.current, to);
        let follows = replaced.epoch.checked_add(1) == Some(self.current.epoch);
        self.previous = follows.then_some(replaced);
        self.next = None;
        self.number_members();
        Ok(())
    }

    /// Numbers new members in committee order (so an engine that never
    /// changes epoch numbers its voters by their index) and forgets the
    /// members of committees no longer held.
    fn number_members(&mut self) {
        let held: Vec<&EpochCommittee> = [
            Some(&self.current),
            self.previous.as_ref(),
            self.next.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.voter_ids
            .retain(|id, _| held.iter().any(|c| c.committee.contains(id)));
        for c in held {
            for v in c.committee.validators() {
                if !self.voter_ids.contains_key(&v.id) {
                    self.voter_ids.insert(v.id, self.next_voter_id);
                    self.next_voter_id = self.next_voter_id.saturating_add(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::types::{Validator, VrfPublicBytes};

    fn key(i: usize) -> NodeId {
        Keypair::from_seed_label(&format!("epochs test {i}")).public()
    }

    fn committee(epoch: u64, members: &[usize]) -> EpochCommittee {
        let validators = members
            .iter()
            .map(|&i| Validator {
                id: key(i),
                vrf_key: VrfPublicBytes(key(i).0),
                weight: 1,
            })
            .collect();
        EpochCommittee {
            epoch,
            committee: ValidatorSet::new(validators).unwrap(),
        }
    }

    #[test]
    fn holds_previous_current_and_next_and_refuses_older() {
        let mut c = Committees::new(committee(4, &[0, 1, 2]));
        c.learn_next(committee(5, &[1, 2, 3])).unwrap();
        assert!(c.get(5).is_some_and(|s| s.contains(&key(3))));
        c.advance(committee(5, &[1, 2, 3])).unwrap();
        assert_eq!(c.epoch(), 5);
        assert!(c.get(4).is_some() && c.get(5).is_some());
        assert_eq!(c.get(6), None);
        c.advance(committee(6, &[2, 3])).unwrap();
        assert_eq!(c.get(4), None, "older than the previous epoch");
        assert!(c.get(5).is_some());
    }

    #[test]
    fn a_skipped_epoch_drops_the_previous_committee() {
        let mut c = Committees::new(committee(1, &[0, 1]));
        c.advance(committee(3, &[0, 1])).unwrap();
        assert_eq!(c.get(1), None);
        assert_eq!(
            c.advance(committee(3, &[0])),
            Err(EpochError::NotAfterCurrent { current: 3, got: 3 })
        );
        assert_eq!(
            c.learn_next(committee(5, &[0])),
            Err(EpochError::NotNext { current: 3, got: 5 })
        );
    }

    #[test]
    fn voter_numbers_survive_a_reordered_committee() {
        let mut c = Committees::new(committee(0, &[0, 1, 2]));
        let numbers: Vec<_> = (0..3).map(|i| c.voter_id(&key(i))).collect();
        assert_eq!(
            numbers,
            vec![Some(0), Some(1), Some(2)],
            "numbered in committee order"
        );
        c.advance(committee(1, &[2, 3, 1])).unwrap();
        for (i, before) in numbers.iter().enumerate() {
            assert_eq!(c.voter_id(&key(i)), *before, "member {i} kept its number");
        }
        let new = c.voter_id(&key(3)).unwrap();
        assert!(numbers.iter().all(|n| *n != Some(new)));
        c.advance(committee(2, &[3])).unwrap();
        assert_eq!(c.voter_id(&key(0)), None, "in no committee held");
        assert!(c.holds(&key(1)), "still in the previous committee");
    }
}
