//! Heartbeats (DESIGN §7, liveness): a member of an epoch's set that does
//! not endorse blocks (every member but the genesis endorsers) signs one
//! [`Heartbeat`] per epoch, and a block of that epoch carries it, so the
//! final chain sees an idle member live as surely as one that produces or
//! votes. Without it a low-weight member in a quiet network would be
//! dropped as inactive while running.
//!
//! Pure: signing, the signature check and the body digest; which block may
//! carry which heartbeat is `validity`'s rule.

use crate::crypto::{signing_message, Domain, Keypair, PublicKey, SignatureError};
use crate::types::{ChainId, Hash, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

/// Most heartbeats one block may carry: one per member of a set, as many
/// as a certificate may carry votes.
pub const MAX_BLOCK_HEARTBEATS: usize = super::certificate::MAX_CERTIFICATE_VOTES;

/// `validator`'s statement that it runs in `epoch`: `sig` signs
/// `H(chain_id, genesis_hash, epoch, validator)` in domain
/// [`Domain::Heartbeat`]. The chain and genesis are not carried: every
/// block and peer that holds one is of a single chain.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub epoch: u64,
    pub validator: PublicKeyBytes,
    pub sig: SignatureBytes,
}

impl Heartbeat {
    pub fn sign(identity: &Keypair, chain: (ChainId, Hash), epoch: u64) -> Heartbeat {
        let mut heartbeat = Heartbeat {
            epoch,
            validator: identity.public(),
            sig: SignatureBytes([0; 64]),
        };
        heartbeat.sig = identity.sign(&heartbeat.signing_message(chain));
        heartbeat
    }

    /// The exact bytes the validator signs.
    pub fn signing_message(&self, (chain_id, genesis_hash): (ChainId, Hash)) -> [u8; 52] {
        let body = Hash::of(&(chain_id, genesis_hash, self.epoch, self.validator));
        signing_message(Domain::Heartbeat, chain_id, &body)
    }

    /// `verify_strict` of the signature by `validator`; says nothing of
    /// membership.
    pub fn verify_signature(&self, chain: (ChainId, Hash)) -> Result<(), SignatureError> {
        PublicKey::parse(&self.validator)?.verify(&self.signing_message(chain), &self.sig)
    }
}

/// The header's `heartbeats`: the hash of the heartbeats the body carries,
/// or zero when it carries none.
pub fn heartbeats_digest(heartbeats: &[Heartbeat]) -> Hash {
    if heartbeats.is_empty() {
        Hash::ZERO
    } else {
        Hash::of(heartbeats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: (ChainId, Hash) = (ChainId(7), Hash::ZERO);

    #[test]
    fn a_heartbeat_verifies_only_for_its_chain_epoch_and_signer() {
        let key = Keypair::from_seed_label("heartbeat");
        let heartbeat = Heartbeat::sign(&key, CHAIN, 5);
        assert!(heartbeat.verify_signature(CHAIN).is_ok());
        assert!(heartbeat
            .verify_signature((ChainId(8), Hash::ZERO))
            .is_err());
        let genesis = Hash::digest(b"another genesis");
        assert!(heartbeat.verify_signature((ChainId(7), genesis)).is_err());
        let moved = Heartbeat {
            epoch: 6,
            ..heartbeat.clone()
        };
        assert!(moved.verify_signature(CHAIN).is_err());
        let claimed = Heartbeat {
            validator: Keypair::from_seed_label("other").public(),
            ..heartbeat
        };
        assert!(claimed.verify_signature(CHAIN).is_err());
    }

    #[test]
    fn no_heartbeats_digest_to_zero() {
        let key = Keypair::from_seed_label("heartbeat");
        assert_eq!(heartbeats_digest(&[]), Hash::ZERO);
        assert_ne!(
            heartbeats_digest(&[Heartbeat::sign(&key, CHAIN, 1)]),
            Hash::ZERO
        );
    }
}
