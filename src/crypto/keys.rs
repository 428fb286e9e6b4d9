//! ed25519 identities. Verification is always `verify_strict` (no small-order
//! keys, canonical signatures) so every node accepts exactly the same set.
//! Secret keys never appear in `Debug` output or logs.

use crate::types::{PublicKeyBytes, SignatureBytes};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::fmt;

/// A signing keypair. `Debug` prints only the public half.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Keypair {
        #[allow(clippy::disallowed_types)]
        // key generation: must be unpredictable, never replayed
        use rand_core::OsRng;
        Keypair(SigningKey::generate(&mut OsRng))
    }

    /// Deterministic key from a 32-byte secret (wallet files, tests, simulator).
    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(&secret))
    }

    /// Deterministic key derived from a label, for public test keys (devnet, tests).
    pub fn from_seed_label(label: &str) -> Keypair {
        Keypair::from_secret(*blake3::hash(label.as_bytes()).as_bytes())
    }

    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?}, secret: <redacted>)", self.public())
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key is not a valid ed25519 point")]
    BadPublicKey,
    #[error("signature does not verify")]
    BadSignature,
}

/// A parsed public key; parse once and reuse when verifying many signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(bytes: &PublicKeyBytes) -> Result<PublicKey, SignatureError> {
        let key = VerifyingKey::from_bytes(&bytes.0).map_err(|_| SignatureError::BadPublicKey)?;
        if key.is_weak() {
            return Err(SignatureError::BadPublicKey);
        }
        Ok(PublicKey(key))
    }

    pub fn verify(&self, message: &[u8], sig: &SignatureBytes) -> Result<(), SignatureError> {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| SignatureError::BadSignature)
    }

    pub fn bytes(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.0.to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bytes().fmt(f)
    }
}

/// Parses `pubkey` and verifies `sig` over `message` in one step.
pub fn verify(
    pubkey: &PublicKeyBytes,
    message: &[u8],
    sig: &SignatureBytes,
) -> Result<(), SignatureError> {
    PublicKey::parse(pubkey)?.verify(message, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_other_message() {
        let k = Keypair::from_seed_label("t");
        let sig = k.sign(b"m");
        assert_eq!(verify(&k.public(), b"m", &sig), Ok(()));
        assert_eq!(
            verify(&k.public(), b"n", &sig),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let k = Keypair::from_seed_label("t");
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode(k.secret())));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn small_order_key_is_refused() {
        // The identity point encodes as 0x01 followed by zeros: a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::parse(&PublicKeyBytes(identity)),
            Err(SignatureError::BadPublicKey)
        );
    }
}
