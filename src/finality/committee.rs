//! The per-epoch finality committee (DESIGN §5 "Bigger sets"): seats drawn
//! by stake from the epoch's validator set and seed, so the signers whose
//! window votes finalize a tx stay a bounded number however large the set
//! grows. A member's weight is its seat count; the quorum is 67 % of the
//! seats. A set with no more members than seats is its own committee, with
//! its own weights, so small sets behave exactly as without a committee.
//!
//! Only finality (polls, window votes, proofs) uses the committee: block
//! certification (§6 `BlockVote`) stays on the whole set.
//!
//! Pure and deterministic: every node and every offline verifier draws the
//! same committee from the same set, seed and seat count. It must never
//! take a seed or seat count from a message.

use super::validator_set::ValidatorSet;
use crate::types::{Hash, Validator};

/// Most seats a chain may configure: a proof carries at most one vote per
/// member, and `MAX_PROOF_VOTES` must cover every member.
pub const MAX_COMMITTEE_SEATS: u32 = 4_096;

/// Seats when the chain config names none: the measured trade-off of
/// BENCHMARKS.md "Finality committee" (signature checks and messages per
/// tx grow with the members; the chance of a ⅓-Byzantine committee falls
/// with the seats).
pub const DEFAULT_COMMITTEE_SEATS: u32 = 128;

/// The seed committees of `epoch` are drawn from: the genesis hash for the
/// genesis set's epochs (0 and 1, or every epoch without a deciding block),
/// else a hash of the genesis, the epoch and the certified block that
/// decided the epoch's set (the last of epoch `e − 2`), fixed by the chain
/// before the epoch starts. That block's producer could grind it among the
/// blocks it may build; a VRF beacon would not let it.
pub fn epoch_seed(genesis_hash: Hash, epoch: u64, deciding_block: Option<Hash>) -> Hash {
    if epoch <= 1 && deciding_block.is_none() {
        return genesis_hash;
    }
    Hash::of(&(
        "timecoin/committee-seed/1",
        genesis_hash,
        epoch,
        deciding_block,
    ))
}

/// The finality committee of `set` for `seed`: `seats` draws with
/// replacement, draw `i` picking the validator whose cumulative-weight
/// interval holds `blake3(seed ‖ i) mod total` (a 64×64-bit multiply-shift,
/// so no validator is favoured by more than 2⁻⁶⁴ of the weight). The drawn
/// validators, in the set's order, weigh their seat counts. With `set.len()
/// ≤ seats` the set itself is the committee.
pub fn draw_committee(set: &ValidatorSet, seed: &Hash, seats: u32) -> ValidatorSet {
    if set.len() <= seats as usize {
        return set.clone();
    }
    let cumulative: Vec<u64> = set
        .validators()
        .iter()
        .scan(0u64, |sum, v| {
            // The set's total fits in u64 (ValidatorSet checks), so no prefix overflows.
            *sum += v.weight;
            Some(*sum)
        })
        .collect();
    let total = set.total_weight();
    let mut seat_counts = vec![0u64; set.len()];
    for draw in 0..u64::from(seats.max(1)) {
        let point = pick_point(seed, draw, total);
        let member = cumulative.partition_point(|&end| end <= point);
        if let Some(count) = seat_counts.get_mut(member) {
            *count += 1;
        }
    }
    let members: Vec<Validator> = set
        .validators()
        .iter()
        .zip(&seat_counts)
        .filter(|(_, &seats)| seats > 0)
        .map(|(v, &seats)| Validator {
            weight: seats,
            ..*v
        })
        .collect();
    // Distinct members of a valid set, each with 1..=seats seats: always a valid set.
    ValidatorSet::new(members).expect("a drawn committee is a valid validator set")
}

/// A point in `[0, total)`: the top 64 bits of `blake3(seed ‖ draw) · total`.
fn pick_point(seed: &Hash, draw: u64, total: u64) -> u64 {
    let mut material = [0u8; 40];
    material[..32].copy_from_slice(seed.as_bytes());
    material[32..].copy_from_slice(&draw.to_le_bytes());
    let digest = Hash::digest(&material);
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest.as_bytes()[..8]);
    let uniform = u64::from_le_bytes(head);
    ((u128::from(uniform) * u128::from(total)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PublicKeyBytes, VrfPublicBytes};

    fn set(weights: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| {
                    let mut id = [0u8; 32];
                    id[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    Validator {
                        id: PublicKeyBytes(id),
                        vrf_key: VrfPublicBytes(id),
                        weight,
                    }
                })
                .collect(),
        )
        .unwrap()
    }

    fn seed(n: u64) -> Hash {
        Hash::digest(&n.to_le_bytes())
    }

    #[test]
    fn a_set_no_larger_than_the_seats_is_its_own_committee() {
        let small = set(&[10, 100, 1000, 10]);
        assert_eq!(draw_committee(&small, &seed(1), 4), small);
        assert_eq!(draw_committee(&small, &seed(1), 128), small);
    }

    #[test]
    fn the_same_set_seed_and_seats_draw_the_same_committee() {
        let big = set(&vec![10; 1000]);
        let a = draw_committee(&big, &seed(7), 128);
        assert_eq!(a, draw_committee(&big, &seed(7), 128));
        assert_ne!(a, draw_committee(&big, &seed(8), 128));
        assert_eq!(a.total_weight(), 128);
        assert!(a.validators().iter().all(|v| big.contains(&v.id)));
    }

    #[test]
    fn seats_follow_stake_within_binomial_bounds() {
        // 200 validators: the first 20 hold half the stake (Gold against Bronze-ish).
        let mut weights = vec![1000u64; 20];
        weights.extend(vec![1000 / 9; 180]);
        let big = set(&weights);
        let heavy: Vec<PublicKeyBytes> = big.validators()[..20].iter().map(|v| v.id).collect();
        let share = 20_000.0 / big.total_weight() as f64;
        let (seats, runs) = (128u32, 400u64);
        let mut heavy_seats = 0u64;
        for s in 0..runs {
            let c = draw_committee(&big, &seed(s), seats);
            assert_eq!(c.total_weight(), u64::from(seats));
            heavy_seats += heavy.iter().filter_map(|id| c.weight_of(id)).sum::<u64>();
        }
        // 51,200 draws at p ≈ 0.5: sd ≈ 113 seats; allow 5 sd.
        let draws = f64::from(seats) * runs as f64;
        let expected = draws * share;
        let sd = (draws * share * (1.0 - share)).sqrt();
        let got = heavy_seats as f64;
        assert!(
            (got - expected).abs() < 5.0 * sd,
            "heavy validators got {got} seats, expected {expected:.0} ± {:.0}",
            5.0 * sd
        );
    }

    #[test]
    fn every_validator_can_be_drawn_and_none_outside_the_set() {
        let big = set(&[1, 1, 1, 1, 1, 1, 1, 1, 1, u64::MAX / 2]);
        let mut seen = vec![false; big.len()];
        for s in 0..20_000u64 {
            for v in draw_committee(&big, &seed(s), 9).validators() {
                seen[big.index_of(&v.id).unwrap()] = true;
            }
        }
        // Weight 1 against 2^63: never drawn in practice; the heavy one always is.
        assert!(seen[9]);
        let light = set(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let mut seen = vec![false; light.len()];
        for s in 0..200u64 {
            for v in draw_committee(&light, &seed(s), 3).validators() {
                seen[light.index_of(&v.id).unwrap()] = true;
            }
        }
        assert!(
            seen.iter().all(|&s| s),
            "every weight > 0 is drawable: {seen:?}"
        );
    }

    #[test]
    fn zero_seats_draw_one_seat_not_an_empty_set() {
        let big = set(&[5, 5, 5]);
        assert_eq!(draw_committee(&big, &seed(3), 0).total_weight(), 1);
    }

    #[test]
    fn the_genesis_epochs_draw_from_the_genesis_hash_and_later_ones_from_their_block() {
        let genesis = seed(42);
        assert_eq!(epoch_seed(genesis, 0, None), genesis);
        assert_eq!(epoch_seed(genesis, 1, None), genesis);
        let later = epoch_seed(genesis, 2, Some(seed(1)));
        assert_ne!(later, genesis);
        assert_ne!(
            later,
            epoch_seed(genesis, 2, Some(seed(2))),
            "the block seeds it"
        );
        assert_ne!(
            later,
            epoch_seed(genesis, 3, Some(seed(1))),
            "so does the epoch"
        );
    }
}
