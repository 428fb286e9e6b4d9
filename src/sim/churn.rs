//! Validator churn across epochs (DESIGN §7, issue 14's churn runs): the
//! simulated pool is larger than the active set, and at every epoch change
//! some members leave and as many benched validators join, honest or
//! Byzantine alike. Each epoch's finality committee is drawn from its set as
//! a node would draw it, and every node enters the epoch at its own moment
//! within a skew after the boundary, as nodes learn at different times that
//! the chain certified an epoch's last block.
//!
//! Pure: the schedule is a function of the seed and config.

use super::rng::{below, shuffled};
use crate::consensus::EpochCommittee;
use crate::finality::{draw_committee, epoch_seed, ValidatorSet, ValidatorSetError};
use crate::types::{Hash, Validator};
use rand_chacha::ChaCha20Rng;

/// How validators come and go (`None` in a run's config: one epoch, the
/// whole pool active, as before epochs existed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChurnConfig {
    /// Virtual time per epoch.
    pub epoch_ms: u64,
    /// Members that leave, and benched validators that join, at each change.
    pub swaps: usize,
    /// A node enters each epoch up to this long after its boundary.
    pub skew_ms: u64,
}

/// The committees of every epoch of a run, and when each node enters each.
#[derive(Clone, Debug)]
pub struct EpochSchedule {
    pub committees: Vec<EpochCommittee>,
    /// `entries[e][node]`: when `node` enters epoch `e` (epoch 0: at 0).
    pub entries: Vec<Vec<u64>>,
}

impl EpochSchedule {
    /// One epoch for the whole run: the committee drawn from the whole pool.
    pub fn single(
        pool: &[Validator],
        genesis_hash: Hash,
        seats: u32,
    ) -> Result<Self, ValidatorSetError> {
        let set = ValidatorSet::new(pool.to_vec())?;
        Ok(EpochSchedule {
            committees: vec![EpochCommittee {
                epoch: 0,
                committee: draw_committee(&set, &genesis_hash, seats),
            }],
            entries: vec![vec![0; pool.len()]],
        })
    }

    /// Epochs of `churn.epoch_ms` until `end_ms`. Epoch 0's set is the pool
    /// less `churn.swaps` benched validators; each later set swaps that many.
    pub fn churning(
        pool: &[Validator],
        churn: ChurnConfig,
        end_ms: u64,
        genesis_hash: Hash,
        seats: u32,
        rng: &mut ChaCha20Rng,
    ) -> Result<Self, ValidatorSetError> {
        let n = pool.len();
        let swaps = churn.swaps.min(n.saturating_sub(1) / 2);
        let order = shuffled(rng, n);
        let (mut benched, mut active): (Vec<usize>, Vec<usize>) =
            (order[..swaps].to_vec(), order[swaps..].to_vec());
        let epochs = end_ms / churn.epoch_ms.max(1) + 1;
        let mut committees = Vec::new();
        let mut entries = Vec::new();
        for epoch in 0..epochs {
            if epoch > 0 {
                for _ in 0..swaps {
                    let leave = below(rng, active.len() as u64) as usize;
                    let join = below(rng, benched.len() as u64) as usize;
                    std::mem::swap(&mut active[leave], &mut benched[join]);
                }
            }
            let mut members = active.clone();
            members.sort_unstable();
            let set = ValidatorSet::new(members.iter().map(|&i| pool[i]).collect())?;
            // No blocks in the simulator: every epoch draws from its number.
            let seed = epoch_seed(genesis_hash, epoch, None);
            committees.push(EpochCommittee {
                epoch,
                committee: draw_committee(&set, &seed, seats),
            });
            let start = epoch * churn.epoch_ms;
            entries.push(
                (0..n)
                    .map(|_| match epoch {
                        0 => 0,
                        _ => start + below(rng, churn.skew_ms + 1),
                    })
                    .collect(),
            );
        }
        Ok(EpochSchedule {
            committees,
            entries,
        })
    }

    /// The committee of `epoch`, if the run has it.
    pub fn committee(&self, epoch: u64) -> Option<&EpochCommittee> {
        usize::try_from(epoch)
            .ok()
            .and_then(|e| self.committees.get(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::sim::rng::concern_rng;
    use crate::types::VrfPublicBytes;

    fn pool(n: usize) -> Vec<Validator> {
        (0..n)
            .map(|i| {
                let id = Keypair::from_seed_label(&format!("churn {i}")).public();
                Validator {
                    id,
                    vrf_key: VrfPublicBytes(id.0),
                    weight: 10,
                }
            })
            .collect()
    }

    #[test]
    fn each_change_swaps_as_many_members_in_as_out_and_nodes_enter_within_the_skew() {
        let churn = ChurnConfig {
            epoch_ms: 1_000,
            swaps: 2,
            skew_ms: 50,
        };
        let rng = &mut concern_rng(7, "churn");
        let s = EpochSchedule::churning(&pool(10), churn, 5_500, Hash::ZERO, 128, rng).unwrap();
        assert_eq!(s.committees.len(), 6);
        for pair in s.committees.windows(2) {
            let (a, b) = (&pair[0].committee, &pair[1].committee);
            assert_eq!((a.len(), b.len()), (8, 8));
            let left = a.validators().iter().filter(|v| !b.contains(&v.id)).count();
            assert!(left <= 2, "at most the swaps leave");
        }
        let changed = s.committees.windows(2).filter(|p| p[0] != p[1]).count();
        assert!(changed >= 4, "the set changes from epoch to epoch");
        for (e, at) in s.entries.iter().enumerate().skip(1) {
            let start = e as u64 * 1_000;
            assert!(at.iter().all(|&t| (start..=start + 50).contains(&t)));
        }
    }
}
