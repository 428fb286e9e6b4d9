//! Seeded randomness for the simulator: one ChaCha stream per concern
//! (network, workload, byzantine, each engine), all derived from the run seed,
//! so adding a draw in one concern never shifts another concern's draws.
//! Integer arithmetic only: a seed replays identically on every platform.
//! Must never touch a global or OS random source.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// One million: probabilities are given in parts per million.
pub const PPM: u32 = 1_000_000;

/// The stream for `concern` (e.g. `"network"`, `"engine/7"`) of run `seed`.
pub fn concern_rng(seed: u64, concern: &str) -> ChaCha20Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"timecoin sim v1");
    h.update(&seed.to_le_bytes());
    h.update(concern.as_bytes());
    ChaCha20Rng::from_seed(*h.finalize().as_bytes())
}

/// A 64-bit seed for `concern`, for components that take a seed rather than an RNG.
pub fn concern_seed(seed: u64, concern: &str) -> u64 {
    concern_rng(seed, concern).next_u64()
}

/// Uniform in `0..n` (`0` when `n == 0`), by 128-bit multiply: no floats, no
/// platform-dependent rounding; the bias is below 2^-64·n.
pub fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// True with probability `ppm / 1_000_000`.
pub fn chance(rng: &mut impl RngCore, ppm: u32) -> bool {
    below(rng, u64::from(PPM)) < u64::from(ppm)
}

/// `0..n` in a random order (Fisher–Yates).
pub fn shuffled(rng: &mut impl RngCore, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, below(rng, i as u64 + 1) as usize);
    }
    order
}

/// An exponentially distributed delay with mean `mean_ms`, in integers.
///
/// `-ln(u)` for uniform `u` is `ln 2 · -log2(u)`; `-log2(u)` is the count of
/// leading zero bits plus the log of the mantissa, which is approximated
/// linearly (error < 0.09 of one doubling). The tail shape is what matters
/// for a network model, and this one replays bit-for-bit everywhere.
pub fn exponential_ms(rng: &mut impl RngCore, mean_ms: u64) -> u64 {
    let r = rng.next_u64() | 1;
    let zeros = u64::from(r.leading_zeros());
    // The 32 bits after the leading one: the mantissa's fraction f in [0, 1).
    let frac = ((u128::from(r) << (zeros + 1)) >> 32) as u64 & 0xFFFF_FFFF;
    // -log2(u) ≈ zeros + 1 - f, in 32.32 fixed point.
    let neg_log2 = ((zeros + 1) << 32) - frac;
    let ln2_millis: u128 = 693;
    (u128::from(mean_ms) * ln2_millis * u128::from(neg_log2) / (1000u128 << 32)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concerns_are_independent_streams() {
        let mut a = concern_rng(7, "network");
        let mut b = concern_rng(7, "workload");
        let mut a2 = concern_rng(7, "network");
        let first = a.next_u64();
        assert_ne!(first, b.next_u64());
        assert_eq!(first, a2.next_u64());
        assert_ne!(first, concern_rng(8, "network").next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = concern_rng(1, "t");
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = below(&mut rng, 10);
            assert!(v < 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(below(&mut rng, 0), 0);
    }

    #[test]
    fn exponential_has_roughly_the_requested_mean() {
        let mut rng = concern_rng(3, "t");
        let n = 20_000u64;
        let sum: u64 = (0..n).map(|_| exponential_ms(&mut rng, 100)).sum();
        let mean = sum / n;
        assert!((90..=110).contains(&mean), "mean {mean}");
    }

    #[test]
    fn chance_extremes() {
        let mut rng = concern_rng(4, "t");
        assert!((0..100).all(|_| !chance(&mut rng, 0)));
        assert!((0..100).all(|_| chance(&mut rng, PPM)));
    }
}
