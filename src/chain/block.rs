//! Checkpoint blocks (DESIGN §6): the header, the body of finalized
//! transactions with their proofs, the reward transaction, the parent's
//! certificate, slashing evidence and heartbeats (§7), and their one canonical
//! encoding with its byte limit.
//!
//! Plain data and hashing only: it never judges validity (see
//! `chain::validity`) and never reads a clock.

use super::certificate::Certificate;
use super::heartbeat::Heartbeat;
use super::slashing::SlashingEvidence;
use crate::crypto::vrf::{SortitionInput, SortitionScore};
use crate::crypto::{merkle, signing_message, Domain, Keypair};
use crate::finality::FinalityProof;
use crate::types::encoding::{self, DecodeError};
use crate::types::validator::{VrfOutputBytes, VrfProofBytes};
use crate::types::{ChainId, Hash, OutPoint, PublicKeyBytes, SignatureBytes, TxOut};
use serde::{Deserialize, Serialize};

/// The only block version this node creates and accepts.
pub const BLOCK_VERSION: u32 = 1;
/// Most entries (finalized transactions) one block may archive.
pub const MAX_BLOCK_ENTRIES: usize = 10_000;
/// Most bytes one encoded block may take: room for [`MAX_BLOCK_ENTRIES`]
/// entries whose proofs carry a few votes each (~1.5 KB per entry), under the
/// 64 MiB decode backstop.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024 * 1024;

/// Tag in front of a reward's hashed body: no transaction body starts with
/// these bytes, so a reward id can never equal a txid.
const REWARD_TAG: [u8; 16] = *b"timecoin/reward1";

/// Everything the block hash commits to. The body is committed through
/// `entries_root`, `parent_certificate`, `evidence` and `heartbeats`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockHeader {
    pub version: u32,
    pub chain_id: ChainId,
    pub height: u64,
    pub slot: u64,
    pub prev_hash: Hash,
    /// ed25519 identity of the validator that won the slot's lottery.
    pub producer: PublicKeyBytes,
    /// The producer's VRF output over `(chain_id, prev_hash, slot)`.
    pub vrf_output: VrfOutputBytes,
    pub vrf_proof: VrfProofBytes,
    /// Merkle root over the entries' txids in order, then the reward id.
    pub entries_root: Hash,
    /// Digest of the parent's certificate the body carries
    /// ([`certificate_digest`]; zero when it carries none).
    pub parent_certificate: Hash,
    /// Digest of the slashing evidence the body carries
    /// ([`evidence_digest`]; zero when it carries none).
    pub evidence: Hash,
    /// Digest of the heartbeats the body carries
    /// ([`heartbeats_digest`](super::heartbeat::heartbeats_digest); zero
    /// when it carries none).
    pub heartbeats: Hash,
    /// When the producer built the block; must lie in the slot (± skew).
    pub timestamp_ms: u64,
}

impl BlockHeader {
    /// The block hash: BLAKE3 of the header's canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(self)
    }

    /// What the VRF was evaluated over.
    pub fn sortition_input(&self) -> SortitionInput {
        SortitionInput {
            chain_id: self.chain_id,
            prev_hash: self.prev_hash,
            slot: self.slot,
        }
    }

    /// The lottery value of this block's ticket (lower wins).
    pub fn score(&self) -> SortitionScore {
        SortitionScore::of(&self.vrf_output)
    }

    /// The exact bytes the producer signs.
    pub fn signing_message(&self) -> [u8; 52] {
        signing_message(Domain::Block, self.chain_id, &self.hash())
    }
}

/// The block's one coinbase-like transaction: the slot reward plus fees,
/// split between the producer and the validator set.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RewardTx {
    /// Height of the block that carries it (part of the id).
    pub height: u64,
    pub outputs: Vec<TxOut>,
}

impl RewardTx {
    /// `H(tag, height, outputs)`: including the height means two blocks that
    /// pay the same split still create distinct outpoints.
    pub fn id(&self) -> Hash {
        Hash::of(&(REWARD_TAG, self.height, &self.outputs))
    }

    pub fn outpoint(&self, vout: u32) -> OutPoint {
        OutPoint {
            txid: self.id(),
            vout,
        }
    }
}

/// A checkpoint block.
///
/// The producer signs the header hash with its ed25519 identity key. The VRF
/// ticket alone proves who won the slot, but not what they built: without
/// the signature anyone could copy a winning header's ticket onto a body of
/// their own and claim the slot. The signature is outside the hash, so it
/// cannot change the block hash.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub producer_sig: SignatureBytes,
    /// Finalized transactions with their proofs, strictly ascending by txid.
    pub entries: Vec<FinalityProof>,
    pub reward: RewardTx,
    /// The certificate of the parent block, if the producer held one. Its
    /// signers are the endorsements the chain itself records, so every node
    /// that applies this block credits the same validators as live (DESIGN
    /// §7), whatever certificates it happens to hold itself.
    pub parent_certificate: Option<Certificate>,
    /// Equivocation evidence (DESIGN §7), strictly ascending by offender:
    /// once this block is final, each offender is slashed.
    pub evidence: Vec<SlashingEvidence>,
    /// Heartbeats (DESIGN §7) of the block's epoch by registered members,
    /// seated or not, strictly ascending by validator: once this block is
    /// final, each is seen live in that epoch.
    pub heartbeats: Vec<Heartbeat>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a block of at most `max_len` (and [`MAX_BLOCK_BYTES`]) bytes.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Block, DecodeError> {
        encoding::decode(bytes, max_len.min(MAX_BLOCK_BYTES), "block")
    }

    /// The header of an encoded block, without decoding the body.
    pub fn decode_header(bytes: &[u8]) -> Result<BlockHeader, DecodeError> {
        encoding::decode_prefix(bytes, "block header").map(|(header, _)| header)
    }

    /// Length of [`Block::encode`] without building it.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }

    /// Signs the header with the producer's identity key.
    pub fn sign(&mut self, identity: &Keypair) {
        self.producer_sig = identity.sign(&self.header.signing_message());
    }
}

/// The `entries_root` of a body: txids in order, then the reward id.
pub fn entries_root(entry_txids: &[Hash], reward_id: Hash) -> Hash {
    let mut leaves = Vec::with_capacity(entry_txids.len() + 1);
    leaves.extend_from_slice(entry_txids);
    leaves.push(reward_id);
    merkle::root(&leaves)
}

/// The header's `parent_certificate`: the hash of the certificate the body
/// carries, or zero.
pub fn certificate_digest(certificate: Option<&Certificate>) -> Hash {
    certificate.map_or(Hash::ZERO, Hash::of)
}

/// The header's `evidence`: the hash of the evidence the body carries, or
/// zero when it carries none.
pub fn evidence_digest(evidence: &[SlashingEvidence]) -> Hash {
    if evidence.is_empty() {
        Hash::ZERO
    } else {
        Hash::of(evidence)
    }
}

/// Canonical encoded length of `value`, counted without allocating it.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    encoding::encode_into(value, &mut counter);
    counter.0
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Address, Amount};

    fn sample() -> Block {
        Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                chain_id: ChainId(3),
                height: 1,
                slot: 7,
                prev_hash: Hash::digest(b"genesis"),
                producer: PublicKeyBytes([1; 32]),
                vrf_output: VrfOutputBytes([2; 32]),
                vrf_proof: VrfProofBytes([3; 64]),
                entries_root: Hash::ZERO,
                parent_certificate: Hash::ZERO,
                evidence: Hash::ZERO,
                heartbeats: Hash::ZERO,
                timestamp_ms: 35_000,
            },
            producer_sig: SignatureBytes([4; 64]),
            entries: Vec::new(),
            reward: RewardTx {
                height: 1,
                outputs: vec![TxOut {
                    value: Amount(5),
                    address: Address([6; 20]),
                }],
            },
            parent_certificate: None,
            evidence: Vec::new(),
            heartbeats: Vec::new(),
        }
    }

    #[test]
    fn signature_does_not_change_the_hash() {
        let a = sample();
        let mut b = a.clone();
        b.producer_sig = SignatureBytes([9; 64]);
        assert_eq!(a.hash(), b.hash());
        b.header.timestamp_ms += 1;
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn encoding_round_trips_within_its_limit() {
        let block = sample();
        let bytes = block.encode();
        assert_eq!(block.encoded_len(), bytes.len());
        assert_eq!(Block::decode_header(&bytes), Ok(block.header.clone()));
        assert_eq!(Block::decode(&bytes, bytes.len()), Ok(block));
        assert!(matches!(
            Block::decode(&bytes, bytes.len() - 1),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn reward_ids_differ_by_height() {
        let a = sample().reward;
        let b = RewardTx {
            height: 2,
            ..a.clone()
        };
        assert_ne!(a.id(), b.id());
        assert_eq!(a.outpoint(0).txid, a.id());
    }
}
