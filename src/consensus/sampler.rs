//! Stake-weighted sampling of the `k'` slots of a poll (DESIGN §4).
//!
//! Each validator's expected share of the slots is exactly `k'·w_i/Σw`. The
//! whole part of that share is given to it in every poll, and the `r` slots
//! left over are drawn independently (with replacement) in proportion to
//! the fractional parts, so only those `r` slots vary from poll to poll. A
//! validator is asked once and its answer fills each of its slots.
//!
//! Why not `k'` distinct validators drawn by weight: that forces light
//! validators into the sample once the heavy ones are used up, so 36 light
//! Byzantine validators with a fifth of the stake got 16 of 20 slots and
//! denied every quorum (`tests/sim_swarm.rs` `many_small_…`). Why not `k'`
//! independent draws (with replacement): the variance alone fails polls,
//! e.g. one lagging validator of four holds 7 of 20 slots one poll in five,
//! and Snowball needs `beta` successes in a row. With equal weights and
//! fewer validators than `k`, every validator fills one slot: the whole set
//! is asked, as the design's `k' = |AVS|` rule intends.
//!
//! Integer arithmetic only and randomness only from the injected RNG, so a
//! seed reproduces the same samples on every platform.

use rand_core::RngCore;

/// One sampled validator and how many of the poll's slots it fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drawn {
    /// Index into the validator set.
    pub member: usize,
    pub slots: u32,
}

/// Draws samples of a fixed size from fixed weights.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// The whole part of every validator's share: in every sample.
    fixed: Vec<Drawn>,
    /// Slots left to draw after the fixed ones.
    remainder: u32,
    /// `cumulative[i]` = fractional shares of validators `0..=i`, scaled by Σw.
    cumulative: Vec<u128>,
}

impl Sampler {
    /// A sampler of `k` slots over validators of `weights`.
    pub fn new(weights: &[u64], k: u32) -> Sampler {
        let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
        let mut fixed = Vec::new();
        let mut fraction = Vec::with_capacity(weights.len());
        let mut whole_slots = 0u128;
        for (member, w) in weights.iter().enumerate() {
            let share = u128::from(k) * u128::from(*w);
            let (whole, part) = match total {
                0 => (0, 0),
                t => (share / t, share % t),
            };
            if whole > 0 {
                fixed.push(Drawn {
                    member,
                    slots: u32::try_from(whole).unwrap_or(u32::MAX),
                });
            }
            whole_slots += whole;
            fraction.push(part);
        }
        let cumulative = fraction
            .iter()
            .scan(0u128, |sum, f| {
                *sum += f;
                Some(*sum)
            })
            .collect();
        let remainder = match total {
            0 => 0,
            _ => u32::try_from(u128::from(k).saturating_sub(whole_slots)).unwrap_or(0),
        };
        Sampler {
            fixed,
            remainder,
            cumulative,
        }
    }

    /// Writes the sampled validators into `out` (cleared first), each once
    /// with its slot count; the counts sum to `k`.
    pub fn sample_into(&self, rng: &mut impl RngCore, out: &mut Vec<Drawn>) {
        out.clear();
        out.extend_from_slice(&self.fixed);
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return;
        }
        for _ in 0..self.remainder {
            let Some(member) = self.member_holding(uniform_below(rng, total)) else {
                break;
            };
            match out.iter_mut().find(|d| d.member == member) {
                Some(d) => d.slots += 1,
                None => out.push(Drawn { member, slots: 1 }),
            }
        }
    }

    /// The validator whose fractional part holds `ticket`: the first whose
    /// cumulative part exceeds it.
    fn member_holding(&self, ticket: u128) -> Option<usize> {
        let i = self.cumulative.partition_point(|&c| c <= ticket);
        (i < self.cumulative.len()).then_some(i)
    }
}

/// Uniform integer in `0..n` (`n > 0`), unbiased (rejection sampling on
/// the smallest power-of-two range covering `n`).
fn uniform_below(rng: &mut impl RngCore, n: u128) -> u128 {
    let bits = 128 - (n - 1).leading_zeros();
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    loop {
        let x = ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())) & mask;
        if x < n {
            return x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn slots(out: &[Drawn]) -> u32 {
        out.iter().map(|d| d.slots).sum()
    }

    #[test]
    fn a_sample_fills_k_slots_with_distinct_members() {
        let weights = [5, 1, 1, 100, 3];
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut out = Vec::new();
        for k in 0..30 {
            let s = Sampler::new(&weights, k);
            s.sample_into(&mut rng, &mut out);
            assert_eq!(slots(&out), k);
            let mut members: Vec<usize> = out.iter().map(|d| d.member).collect();
            members.sort();
            members.dedup();
            assert_eq!(members.len(), out.len());
        }
    }

    #[test]
    fn equal_weights_below_k_ask_every_validator_once() {
        let s = Sampler::new(&[10; 4], 4);
        let mut out = Vec::new();
        s.sample_into(&mut ChaCha20Rng::seed_from_u64(2), &mut out);
        out.sort_by_key(|d| d.member);
        let all: Vec<(usize, u32)> = out.iter().map(|d| (d.member, d.slots)).collect();
        assert_eq!(all, vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    }

    /// With 4 validators of weight 40 and 36 of weight 1 (19.5 % of the
    /// stake) the light ones fill a fifth of the slots on average and at
    /// most the 4 slots left over by the heavy ones' whole shares, not the
    /// 16 of 20 that drawing distinct validators forced on them.
    #[test]
    fn slots_follow_stake_not_head_count() {
        let mut weights = vec![40u64; 4];
        weights.extend([1u64; 36]);
        let s = Sampler::new(&weights, 20);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut out = Vec::new();
        let mut light = 0u32;
        for _ in 0..2_000 {
            s.sample_into(&mut rng, &mut out);
            assert_eq!(slots(&out), 20);
            let light_here: u32 = out.iter().filter(|d| d.member >= 4).map(|d| d.slots).sum();
            assert!(light_here <= 4, "{out:?}");
            light += light_here;
        }
        let share = f64::from(light) / f64::from(20 * 2_000);
        assert!((0.17..0.22).contains(&share), "light share {share}");
    }

    #[test]
    fn equal_weights_above_k_are_sampled_uniformly() {
        let s = Sampler::new(&[7; 100], 20);
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut out = Vec::new();
        let mut hits = [0u32; 100];
        for _ in 0..5_000 {
            s.sample_into(&mut rng, &mut out);
            assert_eq!(slots(&out), 20);
            out.iter().for_each(|d| hits[d.member] += d.slots);
        }
        // Expected 1,000 each.
        assert!(hits.iter().all(|&h| (850..1_150).contains(&h)), "{hits:?}");
    }

    #[test]
    fn same_seed_same_samples() {
        let run = |seed| {
            let s = Sampler::new(&[1, 2, 3, 4, 5, 6], 3);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            (0..50)
                .map(|_| {
                    s.sample_into(&mut rng, &mut out);
                    out.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
