//! VRF keys (schnorrkel sr25519) registered beside each validator's ed25519
//! identity, for checkpoint-block sortition (DESIGN §6): each validator
//! evaluates the VRF over `(chain_id, prev_block_hash, slot)` and the lowest
//! [`SortitionScore`] wins the slot.
//!
//! Pure: signing is derandomized (no OS RNG), verification reads only its
//! arguments. It must never rank by anything a producer can choose freely.

use crate::types::validator::{VrfOutputBytes, VrfProofBytes};
use crate::types::{ChainId, Hash, VrfPublicBytes};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use schnorrkel::context::{attach_rng, SigningTranscript};
use schnorrkel::vrf::{VRFPreOut, VRFProof};
use schnorrkel::{signing_context, ExpansionMode, MiniSecretKey, PublicKey};
use std::fmt;

/// Context of the VRF input transcript: the domain tag of the lottery.
const SORTITION_CONTEXT: &[u8] = b"timecoin/sortition/v1";
/// Context of the proof transcript (schnorrkel's "extra" transcript).
const PROOF_CONTEXT: &[u8] = b"timecoin/sortition-proof/v1";
/// Tag hashed before the pre-output to derive the score.
const SCORE_TAG: &[u8] = b"timecoin/sortition-score/v1";

/// What a slot's lottery ticket is drawn over. Binding the previous block
/// hash makes a ticket useless on any other fork; binding the chain id makes
/// it useless on any other network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SortitionInput {
    pub chain_id: ChainId,
    pub prev_hash: Hash,
    pub slot: u64,
}

impl SortitionInput {
    /// `chain_id (u32 LE) ‖ prev_hash ‖ slot (u64 LE)`: fixed width, so injective.
    fn bytes(&self) -> [u8; 44] {
        let mut out = [0u8; 44];
        out[..4].copy_from_slice(&self.chain_id.0.to_le_bytes());
        out[4..36].copy_from_slice(self.prev_hash.as_bytes());
        out[36..].copy_from_slice(&self.slot.to_le_bytes());
        out
    }

    fn transcript(&self) -> impl SigningTranscript {
        signing_context(SORTITION_CONTEXT).bytes(&self.bytes())
    }
}

fn proof_transcript() -> impl SigningTranscript {
    signing_context(PROOF_CONTEXT).bytes(b"")
}

/// The lottery value of a VRF output; lower wins, compared as a big-endian
/// 256-bit integer (the derived `Ord`).
///
/// It is `BLAKE3(tag ‖ pre-output)` rather than the pre-output itself: the
/// pre-output is a compressed Ristretto point whose bytes are not uniform
/// (its first byte is always even, its last below 0x80), while the publish
/// delay reads the score as a uniform fraction of 2^256. The pre-output is
/// unique per key and input, so the score is too.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SortitionScore(pub [u8; 32]);

impl SortitionScore {
    pub fn of(output: &VrfOutputBytes) -> SortitionScore {
        let mut h = blake3::Hasher::new();
        h.update(SCORE_TAG);
        h.update(&output.0);
        SortitionScore(*h.finalize().as_bytes())
    }

    /// The top 64 bits: the score as a fraction of 2^64, for rank estimates.
    pub fn top_u64(&self) -> u64 {
        let mut top = [0u8; 8];
        top.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(top)
    }
}

/// Why a VRF ticket did not verify. Every variant is the producer's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VrfError {
    #[error("VRF public key is not a valid sr25519 key")]
    BadPublicKey,
    #[error("VRF proof bytes are malformed (not two canonical scalars)")]
    MalformedProof,
    #[error("VRF output does not verify for this key and (chain, previous block, slot)")]
    BadProof,
}

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

    /// This key's ticket for `input`: the output and its proof.
    ///
    /// The proof nonce is derandomized, as ed25519's is: schnorrkel keys its
    /// nonce generator with the secret nonce and the whole transcript (which
    /// binds the input), so a fixed RNG seed still gives a distinct nonce per
    /// input, and the same block is produced on every replay.
    pub fn sign_slot(&self, input: &SortitionInput) -> (VrfOutputBytes, VrfProofBytes) {
        let extra = attach_rng(proof_transcript(), ChaCha20Rng::from_seed([0; 32]));
        let (inout, proof, _) = self.0.vrf_sign_extra(input.transcript(), extra);
        (
            VrfOutputBytes(inout.to_preout().to_bytes()),
            VrfProofBytes(proof.to_bytes()),
        )
    }
}

/// Checks that `output` is `vrf_key`'s unique VRF output for `input`.
pub fn verify_slot(
    vrf_key: &VrfPublicBytes,
    input: &SortitionInput,
    output: &VrfOutputBytes,
    proof: &VrfProofBytes,
) -> Result<(), VrfError> {
    let public = PublicKey::from_bytes(&vrf_key.0).map_err(|_| VrfError::BadPublicKey)?;
    let proof = VRFProof::from_bytes(&proof.0).map_err(|_| VrfError::MalformedProof)?;
    let preout = VRFPreOut(output.0);
    public
        .vrf_verify_extra(input.transcript(), &preout, &proof, proof_transcript())
        .map(|_| ())
        .map_err(|_| VrfError::BadProof)
}

impl fmt::Debug for VrfKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VrfKeypair({:?}, secret: <redacted>)", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SortitionInput {
        SortitionInput {
            chain_id: ChainId(3),
            prev_hash: Hash::digest(b"parent"),
            slot: 42,
        }
    }

    #[test]
    fn signing_is_deterministic_and_differs_per_input() {
        let key = VrfKeypair::from_seed_label("v");
        assert_eq!(key.sign_slot(&input()), key.sign_slot(&input()));
        let next = SortitionInput {
            slot: 43,
            ..input()
        };
        assert_ne!(key.sign_slot(&input()).0, key.sign_slot(&next).0);
    }

    #[test]
    fn score_orders_as_big_endian_integer() {
        let low = SortitionScore([0; 32]);
        let mut high = [0; 32];
        high[0] = 1;
        assert!(low < SortitionScore(high));
        assert_eq!(SortitionScore(high).top_u64(), 1 << 56);
    }
}
