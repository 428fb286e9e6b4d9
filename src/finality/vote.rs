//! A validator's finality vote: one ed25519 signature per `Votes` response,
//! over the Merkle root of the sorted txids it attests in that response.
//! Pure: signing needs a key passed in, verification reads nothing but the vote.

use crate::crypto::{merkle, signing_message, Domain, Keypair, PublicKey, SignatureError};
use crate::types::{ChainId, Hash, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

/// `sig` signs `H(chain_id, slot, voter, root)` in domain [`Domain::FinalityVote`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FinalityVote {
    pub chain_id: ChainId,
    /// Slot whose validator-set snapshot the voter belongs to.
    pub slot: u64,
    pub voter: PublicKeyBytes,
    /// Merkle root of the sorted txids this vote attests.
    pub root: Hash,
    pub sig: SignatureBytes,
}

/// The signed part of a vote.
#[derive(Serialize)]
struct VoteBody<'a> {
    chain_id: ChainId,
    slot: u64,
    voter: &'a PublicKeyBytes,
    root: &'a Hash,
}

impl FinalityVote {
    /// Signs the root of `valid_txids_sorted` (ascending, no duplicates: the
    /// order every verifier rebuilds the tree in).
    pub fn sign(
        keypair: &Keypair,
        chain_id: ChainId,
        slot: u64,
        valid_txids_sorted: &[Hash],
    ) -> FinalityVote {
        debug_assert!(valid_txids_sorted.windows(2).all(|w| w[0] < w[1]));
        Self::sign_root(keypair, chain_id, slot, merkle::root(valid_txids_sorted))
    }

    /// Signs an already computed root.
    pub fn sign_root(keypair: &Keypair, chain_id: ChainId, slot: u64, root: Hash) -> FinalityVote {
        let voter = keypair.public();
        let body = body_hash(chain_id, slot, &voter, &root);
        let sig = keypair.sign(&signing_message(Domain::FinalityVote, chain_id, &body));
        FinalityVote {
            chain_id,
            slot,
            voter,
            root,
            sig,
        }
    }

    /// Hash of the signed body (everything but the signature).
    pub fn body_hash(&self) -> Hash {
        body_hash(self.chain_id, self.slot, &self.voter, &self.root)
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
        let message = signing_message(Domain::FinalityVote, self.chain_id, &self.body_hash());
        key.verify(&message, &self.sig)
    }
}

fn body_hash(chain_id: ChainId, slot: u64, voter: &PublicKeyBytes, root: &Hash) -> Hash {
    Hash::of(&VoteBody {
        chain_id,
        slot,
        voter,
        root,
    })
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
        let vote = FinalityVote::sign(&key, ChainId(3), 9, &sorted);
        assert_eq!(vote.root, merkle::root(&sorted));
        assert_eq!(vote.verify_signature(), Ok(()));
        for tampered in [
            FinalityVote {
                slot: 10,
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
