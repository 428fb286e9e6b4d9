//! Stake-weighted sampling of distinct validators without replacement
//! (`P(i) = w_i / Σw` for each draw among those not yet drawn).
//!
//! Integer arithmetic only and randomness only from the injected RNG, so a
//! seed reproduces the same samples on every platform. Never reads a global RNG.

use rand_core::RngCore;

/// Draws samples from fixed weights; reuses its scratch space between polls.
#[derive(Clone, Debug)]
pub struct Sampler {
    weights: Vec<u64>,
    total: u64,
    drawn: Vec<bool>,
}

impl Sampler {
    /// Weights must sum to at most `u64::MAX` (a `ValidatorSet` guarantees it).
    pub fn new(weights: Vec<u64>) -> Sampler {
        let total = weights.iter().fold(0u64, |a, w| a.saturating_add(*w));
        let drawn = vec![false; weights.len()];
        Sampler {
            weights,
            total,
            drawn,
        }
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Writes `min(k, n)` distinct indices into `out` (cleared first), in draw order.
    pub fn sample_into(&mut self, rng: &mut impl RngCore, k: usize, out: &mut Vec<usize>) {
        out.clear();
        self.drawn.iter_mut().for_each(|d| *d = false);
        let mut remaining = self.total;
        for _ in 0..k.min(self.weights.len()) {
            if remaining == 0 {
                break;
            }
            let mut r = uniform_below(rng, remaining);
            let picked = self
                .weights
                .iter()
                .zip(self.drawn.iter())
                .position(|(&w, &drawn)| {
                    if drawn {
                        return false;
                    }
                    if r < w {
                        return true;
                    }
                    r -= w;
                    false
                });
            let Some(i) = picked else { break };
            if let Some(d) = self.drawn.get_mut(i) {
                *d = true;
            }
            remaining -= self.weights.get(i).copied().unwrap_or(0);
            out.push(i);
        }
    }
}

/// Uniform integer in `0..n` (`n > 0`), unbiased (Lemire's multiply-shift
/// with rejection).
fn uniform_below(rng: &mut impl RngCore, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn samples_are_distinct_and_capped_at_n() {
        let mut s = Sampler::new(vec![5, 1, 1, 100, 3]);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut out = Vec::new();
        for k in 0..8 {
            s.sample_into(&mut rng, k, &mut out);
            assert_eq!(out.len(), k.min(5));
            let mut sorted = out.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), out.len());
        }
    }

    #[test]
    fn same_seed_same_samples() {
        let run = |seed| {
            let mut s = Sampler::new(vec![1, 2, 3, 4, 5, 6]);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            (0..50)
                .map(|_| {
                    s.sample_into(&mut rng, 3, &mut out);
                    out.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
