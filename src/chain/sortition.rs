//! Stake-weighted sortition (DESIGN §6): a validator's chance to win a slot
//! is proportional to its weight.
//!
//! Each ticket's VRF score is read as a uniform `u` in (0, 1] and ranked by
//! `-ln(u) / w`, `w` the producer's weight in the validator set (never a
//! value from the block). That rank is an exponential variable of rate `w`,
//! and the least of independent exponentials falls to each with
//! probability `w / Σw`. Consensus arithmetic, so integers only: `-ln(u)`
//! is computed in Q.60 fixed point ([`ln_q60`]) and divided by the weight,
//! and every node computes the identical rank.

use super::fixed_point::{ln_q60, FRAC_BITS, LN2_Q60};
use crate::crypto::vrf::SortitionScore;
use crate::finality::ValidatorSet;
use crate::types::PublicKeyBytes;

/// Bits of the score read as `u`: 63, so `u · 2^63` fits the `u64` that
/// [`ln_q60`] takes.
const U_BITS: u32 = 63;

/// A slot ticket's place in the lottery: lower wins. Ordered by the
/// weighted rank, then by the raw score (equal ranks are rare and the score
/// is unique per key), so the order is total.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Ticket {
    /// `-ln(u) / w` in Q.60; `u128::MAX` for a producer outside the set.
    pub rank: u128,
    pub score: SortitionScore,
}

impl Ticket {
    /// The ticket of `producer`'s `score`, weighted by its weight in `set`.
    pub fn new(score: SortitionScore, producer: &PublicKeyBytes, set: &ValidatorSet) -> Ticket {
        Ticket::of_weight(score, set.weight_of(producer).unwrap_or(0))
    }

    /// The ticket of `score` for a producer of `weight` (0: outside the set).
    pub fn of_weight(score: SortitionScore, weight: u64) -> Ticket {
        Ticket {
            rank: weighted_rank(&score, weight),
            score,
        }
    }

    /// The best possible ticket (the genesis's placeholder; nothing beats it).
    pub const BEST: Ticket = Ticket {
        rank: 0,
        score: SortitionScore([0; 32]),
    };
}

/// `-ln(u) / weight` in Q.60, with `u = (2^63 − ⌊score / 2^193⌋) / 2^63`
/// in (0, 1]: a lower score is a larger `u` and a better rank, as in the
/// unweighted lottery. Weight 0 never wins (`u128::MAX`).
pub fn weighted_rank(score: &SortitionScore, weight: u64) -> u128 {
    if weight == 0 {
        return u128::MAX;
    }
    let x = (1u64 << U_BITS) - (score.top_u64() >> (64 - U_BITS));
    // ln(2^63) is exact in `ln_q60` and ln is increasing, so this never
    // goes below zero; saturating keeps it so even if truncation differs.
    let neg_ln_u = (u128::from(U_BITS) * LN2_Q60).saturating_sub(ln_q60(x));
    neg_ln_u / u128::from(weight)
}

/// How long a producer waits into the slot before publishing: its ticket's
/// expected rank among the set, `rank · total_weight` (the best of all
/// tickets has `rank · total_weight` of mean 1), times `step_ms`, capped
/// below `n_validators · step_ms` so every rank publishes within the slot.
/// A set that outgrew `slot_ms / step_ms` ranks (masternodes joined since
/// the configuration was checked against the genesis set) gets a shorter
/// step, so that still holds.
/// The best possible ticket waits 0 ms, so the likely winner publishes at
/// once and worse tickets only publish if it stayed silent. The rank is not
/// rounded, so two tickets of one whole rank do not publish at one moment.
/// A lone validator has no rival to wait for.
pub fn publish_delay_ms(ticket: &Ticket, set: &ValidatorSet, step_ms: u64, slot_ms: u64) -> u64 {
    let n = u64::try_from(set.len()).unwrap_or(u64::MAX);
    if n <= 1 {
        return 0;
    }
    let step_ms = step_ms.min(slot_ms.saturating_sub(1) / n);
    let cap = n.saturating_mul(step_ms).saturating_sub(1);
    let spread = u128::from(set.total_weight()).saturating_mul(u128::from(step_ms));
    let delay = ticket.rank.saturating_mul(spread) >> FRAC_BITS;
    u64::try_from(delay).unwrap_or(u64::MAX).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Validator, VrfPublicBytes};

    fn set(weights: &[u64]) -> ValidatorSet {
        let validators = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Validator {
                id: PublicKeyBytes([i as u8 + 1; 32]),
                vrf_key: VrfPublicBytes([i as u8 + 1; 32]),
                weight,
            })
            .collect();
        ValidatorSet::new(validators).unwrap()
    }

    /// A seeded stand-in for each validator's VRF score in each slot.
    fn score(slot: u64, validator: usize) -> SortitionScore {
        let mut h = blake3::Hasher::new();
        h.update(b"sortition-test");
        h.update(&slot.to_le_bytes());
        h.update(&(validator as u64).to_le_bytes());
        SortitionScore(*h.finalize().as_bytes())
    }

    /// How many of `slots` each validator wins, lowest `key` winning.
    fn wins<K: Ord>(set: &ValidatorSet, slots: u64, key: impl Fn(Ticket) -> K) -> Vec<u64> {
        let mut wins = vec![0u64; set.len()];
        for slot in 0..slots {
            let winner = set
                .validators()
                .iter()
                .enumerate()
                .min_by_key(|(i, v)| key(Ticket::new(score(slot, *i), &v.id, set)))
                .map(|(i, _)| i)
                .unwrap();
            wins[winner] += 1;
        }
        wins
    }

    #[test]
    fn win_share_is_proportional_to_weight_within_three_sigma() {
        let set = set(&[1, 3, 6, 10, 80]);
        let slots = 20_000u64;
        let total = set.total_weight() as f64;
        for (v, won) in set.validators().iter().zip(wins(&set, slots, |t| t)) {
            let p = v.weight as f64 / total;
            let expected = p * slots as f64;
            let sigma = (slots as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (won as f64 - expected).abs() <= 3.0 * sigma,
                "weight {} won {won} of {slots} slots, expected {expected:.0} ± {:.0}",
                v.weight,
                3.0 * sigma
            );
        }
    }

    #[test]
    fn the_unweighted_rule_fails_the_share_test() {
        // Ranking by the raw score (the old rule) gives every validator an
        // equal share: the heavy one wins about half, not 1000/1001.
        let set = set(&[1, 1_000]);
        let old = wins(&set, 2_000, |t| t.score);
        let new = wins(&set, 2_000, |t| t);
        assert!(old[0] > 800, "the old rule: {old:?}");
        assert!(new[0] < 10, "weighted: {new:?}");
    }

    #[test]
    fn rank_is_exact_integer_math_and_falls_with_weight() {
        let best = SortitionScore([0; 32]);
        assert_eq!(weighted_rank(&best, 1), 0, "u = 1: -ln(u) = 0");
        let worst = SortitionScore([0xff; 32]);
        assert_eq!(weighted_rank(&worst, 1), 63 * LN2_Q60);
        assert_eq!(weighted_rank(&worst, 3), 63 * LN2_Q60 / 3);
        assert_eq!(weighted_rank(&worst, 0), u128::MAX);
        let mut half = [0u8; 32];
        half[0] = 0x80;
        // u = 1/2: -ln(u) = ln 2.
        assert_eq!(weighted_rank(&SortitionScore(half), 1), LN2_Q60);
    }

    #[test]
    fn publish_delay_grows_with_rank_and_stays_in_the_slot() {
        let set = set(&[1, 1, 1, 1]);
        let id = PublicKeyBytes([1; 32]);
        let best = Ticket::new(SortitionScore([0; 32]), &id, &set);
        assert_eq!(publish_delay_ms(&best, &set, 100, 2_000), 0);
        let mut half = [0u8; 32];
        half[0] = 0x80;
        let middle = Ticket::new(SortitionScore(half), &id, &set);
        // ln 2 · 4 · 100 ms = 277.26 ms.
        assert_eq!(publish_delay_ms(&middle, &set, 100, 2_000), 277);
        let worst = Ticket::new(SortitionScore([0xff; 32]), &id, &set);
        assert_eq!(publish_delay_ms(&worst, &set, 100, 2_000), 399);
        let alone = self::set(&[5]);
        assert_eq!(publish_delay_ms(&worst, &alone, 100, 2_000), 0);
        // Four ranks of 100 ms do not fit a 300 ms slot: the step is 74 ms.
        assert_eq!(publish_delay_ms(&middle, &set, 100, 300), 205);
        assert_eq!(publish_delay_ms(&worst, &set, 100, 300), 295);
    }
}
