//! The validator-set snapshot that sampling weights and proof thresholds come
//! from. Weight is only ever read from here, never from a message (DESIGN §12
//! "Self-declared weight").

use crate::types::{Hash, PublicKeyBytes, Validator};
use foldhash::{HashMap, HashMapExt};

/// Why a list of validators is not a usable set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("the validator set is empty")]
    Empty,
    #[error("validator {0:?} is listed twice")]
    Duplicate(PublicKeyBytes),
    #[error("validator {0:?} has weight 0")]
    ZeroWeight(PublicKeyBytes),
    #[error("the validators' total weight overflows u64")]
    WeightOverflow,
}

/// An immutable, weighted set of validators, indexed by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    /// foldhash: every window vote and query looks its sender up here.
    index: HashMap<PublicKeyBytes, usize>,
    total_weight: u64,
    set_hash: Hash,
}

impl ValidatorSet {
    /// A set in the given order (the order is part of `set_hash`).
    pub fn new(validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let mut index = HashMap::with_capacity(validators.len());
        let mut total_weight: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.weight == 0 {
                return Err(ValidatorSetError::ZeroWeight(v.id));
            }
            if index.insert(v.id, i).is_some() {
                return Err(ValidatorSetError::Duplicate(v.id));
            }
            total_weight = total_weight
                .checked_add(v.weight)
                .ok_or(ValidatorSetError::WeightOverflow)?;
        }
        let set_hash = Hash::of(&validators);
        Ok(ValidatorSet {
            validators,
            index,
            total_weight,
            set_hash,
        })
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    pub fn index_of(&self, id: &PublicKeyBytes) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn contains(&self, id: &PublicKeyBytes) -> bool {
        self.index.contains_key(id)
    }

    pub fn weight_of(&self, id: &PublicKeyBytes) -> Option<u64> {
        self.index_of(id)
            .and_then(|i| self.validators.get(i))
            .map(|v| v.weight)
    }

    /// Hash of the canonical encoding of the ordered list: names the snapshot.
    pub fn set_hash(&self) -> Hash {
        self.set_hash
    }

    /// Weight a finality proof needs: `ceil(0.67 · total)`, computed exactly
    /// in integers as `(67·total + 99) / 100` (u128, so it cannot overflow).
    /// Every node must use this one rounding, or they disagree on proofs.
    /// The set votes of `epoch` are checked against: this one set is epoch 0
    /// until registration (DESIGN §7) brings one set per epoch.
    pub fn for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        (epoch == 0).then_some(self)
    }

    pub fn required_weight(&self) -> u64 {
        required_weight(self.total_weight)
    }
}

/// `ceil(67 · total / 100)` without floating point.
pub fn required_weight(total_weight: u64) -> u64 {
    let need = (67u128 * total_weight as u128).div_ceil(100);
    // 0.67·u64::MAX fits in u64.
    u64::try_from(need).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::VrfPublicBytes;

    fn v(byte: u8, weight: u64) -> Validator {
        Validator {
            id: PublicKeyBytes([byte; 32]),
            vrf_key: VrfPublicBytes([byte; 32]),
            weight,
        }
    }

    #[test]
    fn required_weight_is_ceiling_of_67_percent() {
        assert_eq!(required_weight(100), 67);
        assert_eq!(required_weight(1), 1);
        assert_eq!(required_weight(3), 3); // 2.01 → 3
        assert_eq!(required_weight(200), 134);
        assert_eq!(required_weight(40), 27); // 26.8 → 27
        assert_eq!(required_weight(u64::MAX), 12_359_318_529_385_399_583);
    }

    #[test]
    fn rejects_duplicates_zero_weight_and_empty() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 1), v(1, 2)]),
            Err(ValidatorSetError::Duplicate(_))
        ));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 0)]),
            Err(ValidatorSetError::ZeroWeight(_))
        ));
        assert_eq!(
            ValidatorSet::new(vec![v(1, u64::MAX), v(2, 1)]),
            Err(ValidatorSetError::WeightOverflow)
        );
    }

    #[test]
    fn indexes_weights_and_names_the_snapshot() {
        let a = ValidatorSet::new(vec![v(1, 10), v(2, 30)]).unwrap();
        assert_eq!(a.total_weight(), 40);
        assert_eq!(a.weight_of(&PublicKeyBytes([2; 32])), Some(30));
        assert_eq!(a.weight_of(&PublicKeyBytes([3; 32])), None);
        let b = ValidatorSet::new(vec![v(1, 10), v(2, 31)]).unwrap();
        assert_ne!(a.set_hash(), b.set_hash());
    }
}
