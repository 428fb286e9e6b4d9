//! Finality votes whose signature checked out, remembered by vote hash so a
//! vote repeated across proofs, gossip and blocks costs one ed25519 check.
//! One vote signs the Merkle root of every txid of a `Votes` response, so a
//! block's proofs repeat each vote once per txid it covers.
//!
//! Bounded (oldest forgotten first): a forgotten vote is only checked
//! again, never trusted without a check. Voters' keys are parsed once (a
//! point decompression, about a sixth of a verification) and kept too.

use crate::crypto::PublicKey;
use crate::finality::FinalityVote;
use crate::ledger::{verify_signatures, TxError};
use crate::mempool::RecentMap;
use crate::types::{ChainId, Hash, PublicKeyBytes, Tx};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed voter keys kept: validator sets are far smaller.
const VOTER_KEYS_KEPT: usize = 4_096;

pub struct VerifiedVotes {
    seen: RecentMap<Hash, ()>,
    voter_keys: RecentMap<PublicKeyBytes, PublicKey>,
    /// Signatures actually checked (cache misses).
    checked: u64,
    /// The simulator's process-wide verdicts (see [`SharedVerdicts`]).
    shared: Option<SharedVerdicts>,
}

/// Signature verdicts shared by every engine of one process: the
/// simulator runs a thousand engines that each check the same window and
/// tx signatures, and computes each verdict once in wall time. Each engine
/// still counts the check it makes ([`VerifiedVotes::checked`], the tx
/// signature metric), so the reported cost per node stays what a real node
/// pays. Simulator only: it grows with every distinct vote and tx of the
/// run, which a node must not do.
#[derive(Clone, Default)]
pub struct SharedVerdicts(Arc<Mutex<Verdicts>>);

#[derive(Default)]
struct Verdicts {
    /// By vote hash.
    votes: HashMap<Hash, bool>,
    /// By hash of the whole signed tx and chain id (a txid leaves the
    /// signatures out, so it cannot name a verdict).
    txs: HashMap<Hash, Result<(), TxError>>,
}

impl SharedVerdicts {
    /// Whether `vote`'s signature verifies, computed once per distinct vote.
    pub fn verify(&self, vote: &FinalityVote) -> bool {
        self.verify_hashed(vote.vote_hash(), || vote.verify_signature().is_ok())
    }

    fn verify_hashed(&self, vote_hash: Hash, check: impl FnOnce() -> bool) -> bool {
        *self.lock().votes.entry(vote_hash).or_insert_with(check)
    }

    /// [`verify_signatures`] of `tx`, computed once per distinct signed tx.
    pub fn verify_tx(&self, tx: &Tx, txid: &Hash, chain_id: ChainId) -> Result<(), TxError> {
        let key = Hash::of(&(tx, chain_id));
        let mut verdicts = self.lock();
        let verdict = verdicts
            .txs
            .entry(key)
            .or_insert_with(|| verify_signatures(tx, txid, chain_id));
        verdict.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Verdicts> {
        // A poisoned lock only means another engine panicked mid-insert: the maps are still sound.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl VerifiedVotes {
    pub fn new(capacity: usize) -> VerifiedVotes {
        VerifiedVotes {
            seen: RecentMap::new(capacity),
            voter_keys: RecentMap::new(VOTER_KEYS_KEPT),
            checked: 0,
            shared: None,
        }
    }

    /// The simulator's process-wide verdicts, if shared.
    pub fn shared(&self) -> Option<&SharedVerdicts> {
        self.shared.as_ref()
    }

    /// Whether `vote` was verified before (a check would cost nothing).
    pub fn is_verified(&self, vote: &FinalityVote) -> bool {
        self.seen.contains(&vote.vote_hash())
    }

    /// Takes signature verdicts from `shared` instead of computing them
    /// (still counting each check); the simulator's wall-time saver.
    pub fn share_verdicts(&mut self, shared: SharedVerdicts) {
        self.shared = Some(shared);
    }

    /// Whether `vote`'s signature verifies, checking it only if this vote
    /// was not verified before.
    pub fn check(&mut self, vote: &FinalityVote) -> bool {
        let vote_hash = vote.vote_hash();
        if self.seen.contains(&vote_hash) {
            return true;
        }
        self.checked += 1;
        let ok = match self.shared.clone() {
            Some(shared) => shared.verify_hashed(vote_hash, || self.verify(vote)),
            None => self.verify(vote),
        };
        if ok {
            self.seen.insert(vote_hash, ());
        }
        ok
    }

    /// The ed25519 check itself, with the voter's key parsed once.
    fn verify(&mut self, vote: &FinalityVote) -> bool {
        let key = match self.voter_keys.get(&vote.voter) {
            Some(key) => *key,
            None => match PublicKey::parse(&vote.voter) {
                Ok(key) => {
                    self.voter_keys.insert(vote.voter, key);
                    key
                }
                Err(_) => return false,
            },
        };
        vote.verify_signature_with(&key).is_ok()
    }

    /// Remembers a vote this node signed itself: it needs no check.
    pub fn insert_own(&mut self, vote: &FinalityVote) {
        self.seen.insert(vote.vote_hash(), ());
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::finality::VoteScope;
    use crate::types::ChainId;

    #[test]
    fn checks_each_vote_once_with_its_voters_parsed_key() {
        let key = Keypair::from_seed_label("voter");
        let scope = VoteScope {
            chain_id: ChainId(3),
            genesis_hash: Hash::ZERO,
            epoch: 0,
        };
        let vote = FinalityVote::sign(&key, scope, 9, &[Hash::digest(b"a")]);
        let other = FinalityVote::sign(&key, scope, 10, &[Hash::digest(b"a")]);
        let forged = FinalityVote {
            sig: other.sig,
            ..vote.clone()
        };
        let mut cache = VerifiedVotes::new(8);
        assert!(!cache.check(&forged));
        assert!(cache.check(&vote));
        assert!(cache.check(&vote));
        assert!(cache.check(&other));
        // The forged vote was checked (and failed) with the cached key too.
        assert!(!cache.check(&forged));
        assert_eq!(cache.checked(), 4);
        let stranger = Keypair::from_seed_label("stranger");
        let wrong = PublicKey::parse(&stranger.public()).unwrap();
        assert!(vote.verify_signature_with(&wrong).is_err());
    }

    #[test]
    fn a_shared_tx_verdict_belongs_to_its_signatures_not_its_txid() {
        use crate::types::{Amount, OutPoint, SignatureBytes, TxIn, TxOut, TX_VERSION};
        let (key, chain) = (Keypair::from_seed_label("payer"), ChainId(3));
        let mut tx = Tx {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prev: OutPoint {
                    txid: Hash::ZERO,
                    vout: 0,
                },
                pubkey: key.public(),
                sig: SignatureBytes([0; 64]),
            }],
            outputs: vec![TxOut {
                value: Amount(1),
                address: crate::types::Address([1; 20]),
            }],
            registration: None,
        };
        crate::wallet::sign_inputs(&mut tx, &[&key], chain);
        let mut forged = tx.clone();
        forged.inputs[0].sig = SignatureBytes([7; 64]);
        let txid = tx.txid();
        assert_eq!(forged.txid(), txid, "signatures are outside the txid");
        let shared = SharedVerdicts::default();
        for _ in 0..2 {
            assert_eq!(shared.verify_tx(&tx, &txid, chain), Ok(()));
            assert_eq!(
                shared.verify_tx(&forged, &txid, chain),
                verify_signatures(&forged, &txid, chain)
            );
        }
        assert!(shared.verify_tx(&forged, &txid, chain).is_err());
        assert!(shared.verify_tx(&tx, &txid, ChainId(4)).is_err());
    }
}
