//! Validator identities and the weighted set that proofs are checked against.

use super::amount::UNITS_PER_TIME;
use super::{Amount, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A schnorrkel (sr25519) VRF public key, used for block sortition.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrfPublicBytes(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl fmt::Debug for VrfPublicBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vrf:{}", &hex::encode(self.0)[..16])
    }
}

/// A VRF pre-output: the compressed Ristretto point `H(input)^sk` that a
/// block header carries so anyone can check it against the proof.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrfOutputBytes(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl fmt::Debug for VrfOutputBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vrfout:{}", &hex::encode(self.0)[..16])
    }
}

/// A VRF proof (schnorrkel DLEQ proof: two scalars) that the output is
/// the unique one for the key and input.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrfProofBytes(#[serde(with = "serde_bytes")] pub [u8; 64]);

impl fmt::Debug for VrfProofBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vrfproof:{}", &hex::encode(self.0)[..16])
    }
}

/// One member of the validator set: identity key, VRF key and stake weight.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Validator {
    pub id: PublicKeyBytes,
    pub vrf_key: VrfPublicBytes,
    pub weight: u64,
}

/// Collateral tiers (DESIGN §7): weight by locked collateral.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Bronze,
    Silver,
    Gold,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Bronze, Tier::Silver, Tier::Gold];

    pub fn weight(self) -> u64 {
        match self {
            Tier::Free => 1,
            Tier::Bronze => 10,
            Tier::Silver => 100,
            Tier::Gold => 1_000,
        }
    }

    /// The exact collateral a registration of this tier locks.
    pub fn collateral(self) -> Amount {
        // At most 10^5 TIME: far inside u64 units.
        Amount(self.collateral_time() * UNITS_PER_TIME)
    }

    /// Collateral in whole TIME that the tier locks.
    pub fn collateral_time(self) -> u64 {
        match self {
            Tier::Free => 0,
            Tier::Bronze => 1_000,
            Tier::Silver => 10_000,
            Tier::Gold => 100_000,
        }
    }
}
