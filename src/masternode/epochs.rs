//! Epoch arithmetic: which heights an epoch spans and which certified
//! heights decide its validator set.

/// The chain's epoch rules (chain config `[masternodes]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochRules {
    /// Certified blocks per epoch.
    epoch_blocks: u64,
    /// Epochs without a certified vote after which a member leaves the set.
    inactive_epochs: u64,
    /// Epochs a deregistered member's collateral stays locked after it left.
    unbonding_epochs: u64,
}

/// Why epoch rules are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochRulesError {
    #[error("epoch_blocks must be at least 1")]
    NoBlocks,
    #[error("inactive_epochs must be at least 1")]
    NoInactivityGrace,
    #[error(
        "unbonding_epochs ({0}) must exceed the one-epoch window in which old votes are \
         still accepted: at least 2"
    )]
    UnbondingTooShort(u64),
}

impl EpochRules {
    pub fn new(
        epoch_blocks: u64,
        inactive_epochs: u64,
        unbonding_epochs: u64,
    ) -> Result<EpochRules, EpochRulesError> {
        if epoch_blocks == 0 {
            return Err(EpochRulesError::NoBlocks);
        }
        if inactive_epochs == 0 {
            return Err(EpochRulesError::NoInactivityGrace);
        }
        if unbonding_epochs < 2 {
            return Err(EpochRulesError::UnbondingTooShort(unbonding_epochs));
        }
        Ok(EpochRules {
            epoch_blocks,
            inactive_epochs,
            unbonding_epochs,
        })
    }

    pub fn epoch_blocks(&self) -> u64 {
        self.epoch_blocks
    }

    pub fn inactive_epochs(&self) -> u64 {
        self.inactive_epochs
    }

    pub fn unbonding_epochs(&self) -> u64 {
        self.unbonding_epochs
    }

    /// The epoch that holds `height`: epoch `e` spans heights
    /// `e·epoch_blocks .. (e+1)·epoch_blocks`.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height / self.epoch_blocks
    }

    /// The first height of `epoch` (saturating: far epochs never arrive).
    pub fn first_height(&self, epoch: u64) -> u64 {
        epoch.saturating_mul(self.epoch_blocks)
    }

    /// Whether `height` is the last of its epoch: once it is certified, the
    /// set of the epoch after next is decided.
    pub fn ends_epoch(&self, height: u64) -> bool {
        height % self.epoch_blocks == self.epoch_blocks - 1
    }

    /// The first epoch a change certified at `height` (in epoch `e`) takes
    /// effect in: `e + 2`, whose set is decided when `e` ends (one epoch of
    /// lead time, DESIGN §7).
    pub fn effective_epoch(&self, height: u64) -> u64 {
        self.epoch_of(height).saturating_add(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_takes_effect_two_epochs_on() {
        let rules = EpochRules::new(10, 2, 3).unwrap();
        assert_eq!(rules.epoch_of(0), 0);
        assert_eq!(rules.epoch_of(9), 0);
        assert_eq!(rules.epoch_of(10), 1);
        assert!(rules.ends_epoch(9) && rules.ends_epoch(19) && !rules.ends_epoch(10));
        // Certified in epoch 1 (heights 10..20): decides epoch 3.
        assert_eq!(rules.effective_epoch(10), 3);
        assert_eq!(rules.effective_epoch(19), 3);
        assert_eq!(rules.first_height(3), 30);
    }

    #[test]
    fn rules_refuse_degenerate_values() {
        assert_eq!(EpochRules::new(0, 2, 3), Err(EpochRulesError::NoBlocks));
        assert_eq!(
            EpochRules::new(10, 0, 3),
            Err(EpochRulesError::NoInactivityGrace)
        );
        assert_eq!(
            EpochRules::new(10, 2, 1),
            Err(EpochRulesError::UnbondingTooShort(1))
        );
    }
}
