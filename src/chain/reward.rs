//! Block rewards (DESIGN §6): `100 TIME · (1 + ln N)` for a set of `N`
//! validators, plus the block's fees; 10 % to the producer, 90 % split by
//! weight over the block's epoch's set, each share to the payout address
//! its member registered.
//!
//! Consensus arithmetic, so integers only: it must never use floating
//! point (libm's `ln` is not guaranteed bit-identical across platforms, and
//! validators that disagree by one unit reject each other's blocks).
//!
//! Rounding, the one agreed rule:
//! * `ln N` is computed in Q.60 fixed point (error below 1e-16), and the
//!   reward is floored to base units;
//! * the producer's 10 % is `floor(total / 10)`;
//! * each validator's share of the remaining 90 % is
//!   `floor(pool · weight / total_weight)`;
//! * the dust those floors leave goes to the producer, so the outputs sum
//!   to exactly `total`.

use super::block::RewardTx;
use super::fixed_point::{ln_q60, FRAC_BITS, ONE};
use crate::finality::ValidatorSet;
use crate::types::amount::UNITS_PER_TIME;
use crate::types::{Address, Amount, PublicKeyBytes, TxOut};
use std::collections::BTreeMap;

/// The base reward before the `(1 + ln N)` factor.
pub const BASE_REWARD: Amount = Amount(100 * UNITS_PER_TIME);

/// `100 TIME · (1 + ln N)`, floored to base units. An empty set counts as 1.
pub fn block_reward(n_validators: usize) -> Amount {
    let n = u64::try_from(n_validators).unwrap_or(u64::MAX);
    let factor = ONE + ln_q60(n);
    // factor < 2^67 and the base < 2^34: no overflow; the result < 2^40.
    let units = (u128::from(BASE_REWARD.units()) * factor) >> FRAC_BITS;
    Amount(u64::try_from(units).unwrap_or(u64::MAX))
}

/// Where a genesis validator's reward goes: the address of its identity
/// key (a registered masternode names its own).
pub fn payout_address(id: &PublicKeyBytes) -> Address {
    Address::from_pubkey(id)
}

/// The payout addresses of a set's members, as a builder pays them: a
/// member missing here is paid at its identity's address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payouts(BTreeMap<PublicKeyBytes, Address>);

impl Payouts {
    /// `set`'s members' addresses, as `payout` gives them.
    pub fn of<E>(
        set: &ValidatorSet,
        mut payout: impl FnMut(&PublicKeyBytes) -> Result<Address, E>,
    ) -> Result<Payouts, E> {
        let mut addresses = BTreeMap::new();
        for v in set.validators() {
            addresses.insert(v.id, payout(&v.id)?);
        }
        Ok(Payouts(addresses))
    }

    pub fn address_of(&self, id: &PublicKeyBytes) -> Address {
        self.0
            .get(id)
            .copied()
            .unwrap_or_else(|| payout_address(id))
    }
}

/// Splits `total` between `producer` (10 % plus the rounding dust) and the
/// set by weight (90 %), each share to `payout(member)`. One output per
/// address, ascending by address, no zero outputs; the values sum to
/// exactly `total`. `payout`'s first error is returned.
pub fn split_reward<E>(
    total: Amount,
    producer: &PublicKeyBytes,
    set: &ValidatorSet,
    mut payout: impl FnMut(&PublicKeyBytes) -> Result<Address, E>,
) -> Result<Vec<TxOut>, E> {
    let total = total.units();
    let producer_cut = total / 10;
    let pool = total - producer_cut;
    let total_weight = u128::from(set.total_weight());
    let mut payouts: BTreeMap<Address, u64> = BTreeMap::new();
    let mut paid: u64 = 0;
    for v in set.validators() {
        let share = (u128::from(pool) * u128::from(v.weight))
            .checked_div(total_weight)
            .unwrap_or(0);
        // weight ≤ total_weight, so share ≤ pool, and the shares sum to ≤ pool.
        let share = u64::try_from(share).unwrap_or(0);
        paid = paid.saturating_add(share);
        let entry = payouts.entry(payout(&v.id)?).or_default();
        *entry = entry.saturating_add(share);
    }
    let dust = pool.saturating_sub(paid);
    let entry = payouts.entry(payout(producer)?).or_default();
    *entry = entry.saturating_add(producer_cut + dust);
    Ok(payouts
        .into_iter()
        .filter(|&(_, units)| units > 0)
        .map(|(address, units)| TxOut {
            value: Amount(units),
            address,
        })
        .collect())
}

/// The reward transaction a block at `height` by `producer` must carry:
/// `block_reward(|set|) + fees`, split by [`split_reward`]. `None` if the
/// sum overflows (only absurd fees can do that).
pub fn expected_reward<E>(
    height: u64,
    producer: &PublicKeyBytes,
    set: &ValidatorSet,
    fees: Amount,
    payout: impl FnMut(&PublicKeyBytes) -> Result<Address, E>,
) -> Result<Option<RewardTx>, E> {
    let Some(total) = block_reward(set.len()).checked_add(fees) else {
        return Ok(None);
    };
    Ok(Some(RewardTx {
        height,
        outputs: split_reward(total, producer, set, payout)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_validator_earns_the_base_reward() {
        assert_eq!(block_reward(1), BASE_REWARD);
        assert_eq!(block_reward(0), BASE_REWARD);
        // 100 · (1 + ln 4) = 238.62943611198906 TIME.
        assert_eq!(block_reward(4), Amount(23_862_943_611));
        assert!(block_reward(usize::MAX) > block_reward(1 << 40));
    }
}
