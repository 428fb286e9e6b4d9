//! Window-vote equivocation evidence (DESIGN §5 "Never sign both sides"):
//! one validator's signed window votes covering two transactions that spend
//! one outpoint. Each side carries the vote, the Merkle path of its txid
//! under the vote's root and the transaction itself, so anyone holding the
//! genesis validator set checks it offline, with no node state.
//! Pure: it must never take a membership or a conflict on trust; both are
//! read from the set and from the two transactions.

use super::validator_set::ValidatorSet;
use super::vote::FinalityVote;
use super::window::WindowTree;
use crate::crypto::merkle::{MerklePath, MAX_DEPTH};
use crate::types::encoding::{self, DecodeError};
use crate::types::tx::MAX_TX_BYTES_HARD;
use crate::types::{ChainId, Hash, OutPoint, PublicKeyBytes, Tx};
use serde::{Deserialize, Serialize};

/// Bytes of one side besides its transaction: a vote (under 320) and a
/// path of at most [`MAX_DEPTH`] siblings, with room.
pub const SIGNED_SPEND_OVERHEAD_BYTES: usize = 320 + 16 + 8 + MAX_DEPTH * 32;

/// Most bytes of encoded evidence whose transactions are at most
/// `max_tx_bytes` each.
pub const fn max_evidence_bytes(max_tx_bytes: usize) -> usize {
    2 * (max_tx_bytes + SIGNED_SPEND_OVERHEAD_BYTES)
}

/// Most pieces of window evidence kept per voter: one is enough to slash
/// it, a few let an operator see it was no accident; more are not stored.
pub const MAX_WINDOW_EVIDENCE_PER_VOTER: usize = 4;

/// One side: a signed window vote, the path proving `tx`'s txid under its
/// root, and the transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedSpend {
    pub vote: FinalityVote,
    pub path: MerklePath,
    pub tx: Tx,
}

impl SignedSpend {
    /// `window`'s signature over `tx`, if the window lists its txid.
    pub fn from_window(window: &WindowTree, tx: Tx) -> Option<SignedSpend> {
        let leaf = window.window().position(&tx.txid())?;
        Some(SignedSpend {
            vote: window.vote().clone(),
            path: window.path(leaf)?,
            tx,
        })
    }
}

/// Two window votes of one voter covering two different transactions that
/// spend a common outpoint.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WindowEquivocation {
    pub first: SignedSpend,
    pub second: SignedSpend,
}

/// Why window evidence does not hold. Every variant is the sender's fault
/// except [`EvidenceError::WrongChain`] (a misconfigured peer can relay it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("vote is for chain {found} (genesis {genesis}), not this chain ({expected})")]
    WrongChain {
        found: ChainId,
        genesis: Hash,
        expected: ChainId,
    },
    #[error("the two votes are by different voters")]
    NotOneVoter,
    #[error("vote epoch {0} has no known validator set")]
    UnknownEpoch(u64),
    #[error("voter {0:?} is not a validator of the vote's epoch")]
    NotAMember(PublicKeyBytes),
    #[error("both sides cover the same transaction {0}")]
    SameTransaction(Hash),
    #[error("transactions {first} and {second} spend no common outpoint")]
    NoConflict { first: Hash, second: Hash },
    #[error("the Merkle path does not prove txid {0} under its vote's root")]
    WrongPath(Hash),
    #[error("signature of voter {0:?} does not verify")]
    BadSignature(PublicKeyBytes),
}

impl EvidenceError {
    pub fn is_peer_fault(&self) -> bool {
        // Another chain's, or an epoch this node holds no set of (older
        // than the previous one, or not decided here yet): honest relays
        // send those.
        !matches!(
            self,
            EvidenceError::WrongChain { .. } | EvidenceError::UnknownEpoch(_)
        )
    }
}

impl WindowEquivocation {
    /// The offender and the lowest outpoint both transactions spend (the
    /// key evidence is stored and deduplicated by, whatever the side order);
    /// `None` if they spend none in common.
    pub fn key(&self) -> Option<(PublicKeyBytes, OutPoint)> {
        let second: Vec<OutPoint> = self.second.tx.inputs.iter().map(|i| i.prev).collect();
        self.first
            .tx
            .inputs
            .iter()
            .map(|i| i.prev)
            .filter(|p| second.contains(p))
            .min()
            .map(|outpoint| (self.first.vote.voter, outpoint))
    }

    /// Checks it offline: both votes for this chain, by one voter that is a
    /// member of each vote's epoch's set, each path proving its tx under its root, the two txs
    /// different and spending a common outpoint, both signatures valid
    /// (checked last, through `signature_ok`, so a node can use its cache).
    /// Returns the key.
    pub fn verify_with<'a>(
        &self,
        chain_id: ChainId,
        genesis_hash: Hash,
        validators_for_epoch: impl Fn(u64) -> Option<&'a ValidatorSet>,
        mut signature_ok: impl FnMut(&FinalityVote) -> bool,
    ) -> Result<(PublicKeyBytes, OutPoint), EvidenceError> {
        let (a, b) = (&self.first.vote, &self.second.vote);
        for vote in [a, b] {
            if vote.chain_id != chain_id || vote.genesis_hash != genesis_hash {
                return Err(EvidenceError::WrongChain {
                    found: vote.chain_id,
                    genesis: vote.genesis_hash,
                    expected: chain_id,
                });
            }
        }
        if a.voter != b.voter {
            return Err(EvidenceError::NotOneVoter);
        }
        // The votes may be of two epochs (signed across a boundary): a
        // member of both committees signed both spends.
        for vote in [a, b] {
            let set =
                validators_for_epoch(vote.epoch).ok_or(EvidenceError::UnknownEpoch(vote.epoch))?;
            if !set.contains(&vote.voter) {
                return Err(EvidenceError::NotAMember(vote.voter));
            }
        }
        let (first, second) = (self.first.tx.txid(), self.second.tx.txid());
        if first == second {
            return Err(EvidenceError::SameTransaction(first));
        }
        let key = self
            .key()
            .ok_or(EvidenceError::NoConflict { first, second })?;
        for (side, txid) in [(&self.first, first), (&self.second, second)] {
            if !side.path.proves(&txid, &side.vote.root) {
                return Err(EvidenceError::WrongPath(txid));
            }
        }
        for vote in [a, b] {
            if !signature_ok(vote) {
                return Err(EvidenceError::BadSignature(vote.voter));
            }
        }
        Ok(key)
    }

    /// [`Self::verify_with`] checking both signatures.
    pub fn verify<'a>(
        &self,
        chain_id: ChainId,
        genesis_hash: Hash,
        validators_for_epoch: impl Fn(u64) -> Option<&'a ValidatorSet>,
    ) -> Result<(PublicKeyBytes, OutPoint), EvidenceError> {
        self.verify_with(chain_id, genesis_hash, validators_for_epoch, |vote| {
            vote.verify_signature().is_ok()
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<WindowEquivocation, DecodeError> {
        encoding::decode(
            bytes,
            max_evidence_bytes(MAX_TX_BYTES_HARD),
            "window equivocation evidence",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::finality::VoteScope;
    use crate::types::{
        Address, Amount, SignatureBytes, TxIn, TxOut, Validator, VrfPublicBytes, TX_VERSION,
    };

    const CHAIN: ChainId = ChainId(5);

    fn scope() -> VoteScope {
        VoteScope {
            chain_id: CHAIN,
            genesis_hash: Hash::digest(b"genesis"),
            epoch: 0,
        }
    }

    fn set(keys: &[&Keypair]) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    id: k.public(),
                    vrf_key: VrfPublicBytes([0; 32]),
                    weight: 1,
                })
                .collect(),
        )
        .unwrap()
    }

    fn spend(prev: OutPoint, amount: u64) -> Tx {
        Tx {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prev,
                pubkey: PublicKeyBytes([0; 32]),
                sig: SignatureBytes([0; 64]),
            }],
            outputs: vec![TxOut {
                value: Amount::from_units(amount),
                address: Address([0; 20]),
            }],
            registration: None,
        }
    }

    /// `key`'s window `seq` covering `tx` (and a filler txid).
    fn signed(key: &Keypair, seq: u64, tx: Tx) -> SignedSpend {
        let txids = vec![tx.txid(), Hash::digest(b"filler")];
        SignedSpend::from_window(&WindowTree::sign(key, scope(), seq, txids), tx).unwrap()
    }

    fn evidence(key: &Keypair) -> WindowEquivocation {
        let coin = OutPoint {
            txid: Hash::digest(b"coin"),
            vout: 1,
        };
        WindowEquivocation {
            first: signed(key, 1, spend(coin, 10)),
            second: signed(key, 2, spend(coin, 11)),
        }
    }

    fn verify(e: &WindowEquivocation, set: &ValidatorSet) -> Result<(), EvidenceError> {
        e.verify(CHAIN, scope().genesis_hash, |epoch| set.for_epoch(epoch))
            .map(|_| ())
    }

    #[test]
    fn two_windows_signing_two_spends_of_one_coin_verify_offline() {
        let key = Keypair::from_seed_label("offender");
        let set = set(&[&key]);
        let e = evidence(&key);
        let (voter, outpoint) = e
            .verify(CHAIN, scope().genesis_hash, |x| set.for_epoch(x))
            .unwrap();
        assert_eq!(voter, key.public());
        assert_eq!(outpoint.txid, Hash::digest(b"coin"));
        assert_eq!(WindowEquivocation::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn evidence_that_proves_nothing_is_refused() {
        let key = Keypair::from_seed_label("offender");
        let other = Keypair::from_seed_label("other");
        let set = set(&[&key, &other]);
        let good = evidence(&key);

        let mut same = good.clone();
        same.second = same.first.clone();
        assert!(matches!(
            verify(&same, &set),
            Err(EvidenceError::SameTransaction(_))
        ));

        let mut unrelated = good.clone();
        let elsewhere = OutPoint {
            txid: Hash::digest(b"elsewhere"),
            vout: 0,
        };
        unrelated.second = signed(&key, 2, spend(elsewhere, 11));
        assert!(matches!(
            verify(&unrelated, &set),
            Err(EvidenceError::NoConflict { .. })
        ));

        let mut two_voters = good.clone();
        two_voters.second = signed(&other, 2, good.second.tx.clone());
        assert_eq!(verify(&two_voters, &set), Err(EvidenceError::NotOneVoter));

        let mut swapped_tx = good.clone();
        swapped_tx.second.tx = spend(good.second.tx.inputs[0].prev, 12);
        assert!(matches!(
            verify(&swapped_tx, &set),
            Err(EvidenceError::WrongPath(_))
        ));

        let mut forged = good.clone();
        forged.second.vote.sig = SignatureBytes([7; 64]);
        assert_eq!(
            verify(&forged, &set),
            Err(EvidenceError::BadSignature(key.public()))
        );

        let outsider = Keypair::from_seed_label("outsider");
        assert_eq!(
            verify(&evidence(&outsider), &set),
            Err(EvidenceError::NotAMember(outsider.public()))
        );
        let wrong_chain = good
            .verify(ChainId(6), scope().genesis_hash, |x| set.for_epoch(x))
            .unwrap_err();
        assert!(!wrong_chain.is_peer_fault());
    }
}
