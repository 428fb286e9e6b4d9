//! A validator's window vote (DESIGN §5): one ed25519 signature per window
//! over the Merkle root of the sorted txids it durably accepted since its
//! previous vote. Not tied to who asks, so every node verifies each vote once
//! and assembles every proof from the same signatures.
//! Pure: signing needs a key passed in, verification reads nothing but the vote.

use crate::crypto::{merkle, signing_message, Domain, Keypair, PublicKey, SignatureError};
use crate::types::{ChainId, Hash, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

/// What every vote of one chain and validator-set epoch shares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VoteScope {
    pub chain_id: ChainId,
    /// Binds the vote to one genesis: a testnet relaunched with the same
    /// chain id cannot replay it.
    pub genesis_hash: Hash,
    /// The validator-set snapshot the voter belongs to.
    pub epoch: u64,
}

/// `sig` signs `H(chain_id, genesis_hash, epoch, voter, seq, root)` in
/// domain [`Domain::FinalityVote`].
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct FinalityVote {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub epoch: u64,
    pub voter: PublicKeyBytes,
    /// The voter's window number: increasing, never reused (dedupe key with `voter`).
    pub seq: u64,
    /// Merkle root of the sorted txids this vote attests.
    pub root: Hash,
    pub sig: SignatureBytes,
}

/// The signed part of a vote.
#[derive(Serialize)]
struct VoteBody<'a> {
    chain_id: ChainId,
    genesis_hash: &'a Hash,
    epoch: u64,
    voter: &'a PublicKeyBytes,
    seq: u64,
    root: &'a Hash,
}

impl FinalityVote {
    /// Signs the root of `valid_txids_sorted` (ascending, no duplicates: the
    /// order every verifier rebuilds the tree in).
    pub fn sign(
        keypair: &Keypair,
        scope: VoteScope,
        seq: u64,
        valid_txids_sorted: &[Hash],
    ) -> FinalityVote {
        debug_assert!(valid_txids_sorted.windows(2).all(|w| w[0] < w[1]));
        Self::sign_root(keypair, scope, seq, merkle::root(valid_txids_sorted))
    }

    /// Signs an already computed root.
    pub fn sign_root(keypair: &Keypair, scope: VoteScope, seq: u64, root: Hash) -> FinalityVote {
        let mut vote = FinalityVote {
            chain_id: scope.chain_id,
            genesis_hash: scope.genesis_hash,
            epoch: scope.epoch,
            voter: keypair.public(),
            seq,
            root,
            sig: SignatureBytes([0; 64]),
        };
        vote.sig = keypair.sign(&vote.signing_message());
        vote
    }

    pub fn scope(&self) -> VoteScope {
        VoteScope {
            chain_id: self.chain_id,
            genesis_hash: self.genesis_hash,
            epoch: self.epoch,
        }
    }

    /// Hash of the signed body (everything but the signature).
    pub fn body_hash(&self) -> Hash {
        Hash::of(&VoteBody {
            chain_id: self.chain_id,
            genesis_hash: &self.genesis_hash,
            epoch: self.epoch,
            voter: &self.voter,
            seq: self.seq,
            root: &self.root,
        })
    }

    fn signing_message(&self) -> [u8; 52] {
        signing_message(Domain::FinalityVote, self.chain_id, &self.body_hash())
    }

    /// Hash of the whole vote, signature included: the key under which a
    /// verified vote is remembered, so each is checked once.
    pub fn vote_hash(&self) -> Hash {
        Hash::of(self)
    }

    /// `verify_strict` of the signature by `voter`. Says nothing about
    /// membership or weight; proofs check those against a snapshot.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        self.verify_signature_with(&PublicKey::parse(&self.voter)?)
    }

    /// [`Self::verify_signature`] with the voter's key parsed already
    /// (another key than the voter's fails).
    pub fn verify_signature_with(&self, key: &PublicKey) -> Result<(), SignatureError> {
        if key.bytes() != self.voter {
            return Err(SignatureError::BadPublicKey);
        }
        key.verify(&self.signing_message(), &self.sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_vote_verifies_and_tampering_breaks_it() {
        let key = Keypair::from_seed_label("voter");
        let txids = [Hash::digest(b"a"), Hash::digest(b"b")];
        let mut sorted = txids;
        sorted.sort();
        let scope = VoteScope {
            chain_id: ChainId(3),
            genesis_hash: Hash::digest(b"genesis"),
            epoch: 0,
        };
        let vote = FinalityVote::sign(&key, scope, 9, &sorted);
        assert_eq!(vote.root, merkle::root(&sorted));
        assert_eq!(vote.scope(), scope);
        assert_eq!(vote.verify_signature(), Ok(()));
        for tampered in [
            FinalityVote {
                seq: 10,
                ..vote.clone()
            },
            FinalityVote {
                epoch: 1,
                ..vote.clone()
            },
            FinalityVote {
                genesis_hash: Hash::ZERO,
                ..vote.clone()
            },
            FinalityVote {
                chain_id: ChainId(1),
                ..vote.clone()
            },
            FinalityVote {
                root: Hash::ZERO,
                ..vote.clone()
            },
            FinalityVote {
                voter: Keypair::from_seed_label("other").public(),
                ..vote.clone()
            },
        ] {
            assert!(tampered.verify_signature().is_err());
            assert_ne!(tampered.vote_hash(), vote.vote_hash());
        }
    }
}
