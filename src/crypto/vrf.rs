//! VRF keys (schnorrkel sr25519) registered beside each validator's ed25519
//! identity, for checkpoint-block sortition (DESIGN §6).

use crate::types::VrfPublicBytes;
use schnorrkel::{ExpansionMode, MiniSecretKey};
use std::fmt;

/// A VRF keypair. `Debug` prints only the public half.
pub struct VrfKeypair(schnorrkel::Keypair);

impl VrfKeypair {
    pub fn from_secret(seed: [u8; 32]) -> VrfKeypair {
        // A 32-byte mini secret is always valid; expansion cannot fail.
        let mini = MiniSecretKey::from_bytes(&seed).unwrap_or_else(|_| MiniSecretKey::generate());
        VrfKeypair(mini.expand_to_keypair(ExpansionMode::Ed25519))
    }

    /// Deterministic key from a label, for public test keys (devnet, tests).
    pub fn from_seed_label(label: &str) -> VrfKeypair {
        VrfKeypair::from_secret(*blake3::hash(label.as_bytes()).as_bytes())
    }

    pub fn public(&self) -> VrfPublicBytes {
        VrfPublicBytes(self.0.public.to_bytes())
    }
}

impl fmt::Debug for VrfKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VrfKeypair({:?}, secret: <redacted>)", self.public())
    }
}
