//! Finality proofs: a transaction with signed votes whose summed snapshot
//! weight reaches `ceil(0.67 · total)`. Verification is objective: any node
//! holding the snapshot reaches the same verdict, with no local state.
//! Pure: never trusts a weight or membership claim carried by the proof.

use super::member_bits::MemberBits;
use super::validator_set::ValidatorSet;
use super::vote::FinalityVote;
use super::window::WindowTree;
use crate::crypto::merkle::MerklePath;
use crate::types::{ChainId, Hash, PublicKeyBytes, Tx};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most votes any proof may carry, checked before any other work. A proof
/// never needs more votes than the snapshot has members (also checked).
pub const MAX_PROOF_VOTES: usize = 4096;

/// `Vfp(X)`: the transaction and, per vote, the path proving its txid under the vote's root.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FinalityProof {
    pub tx: Tx,
    pub votes: Vec<(FinalityVote, MerklePath)>,
}

/// Why a proof is not valid. Every variant is the prover's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof carries no votes")]
    NoVotes,
    #[error("proof carries {count} votes, more than the {max} allowed")]
    TooManyVotes { count: usize, max: usize },
    #[error("vote {index} is for chain {found} (genesis {genesis}), not this chain ({expected})")]
    WrongChain {
        index: usize,
        found: ChainId,
        genesis: Hash,
        expected: ChainId,
    },
    #[error("vote {index} is for epoch {epoch}, which has no known validator set")]
    UnknownEpoch { index: usize, epoch: u64 },
    #[error(
        "vote {index} (epoch {epoch}) belongs to a different validator-set snapshot than vote 0"
    )]
    MixedSnapshots { index: usize, epoch: u64 },
    #[error("vote {index}: {voter:?} is not a validator of the snapshot")]
    NotAMember { index: usize, voter: PublicKeyBytes },
    #[error("vote {index}: {voter:?} already voted earlier in this proof")]
    DuplicateVoter { index: usize, voter: PublicKeyBytes },
    #[error("vote {index}: the Merkle path does not prove txid {txid} under the vote's root")]
    WrongPath { index: usize, txid: Hash },
    #[error("votes weigh {have}, below the {need} required (ceil(0.67 x total weight))")]
    ShortWeight { have: u64, need: u64 },
    #[error("vote {index}: signature by {voter:?} does not verify")]
    BadSignature { index: usize, voter: PublicKeyBytes },
}

/// Verifies `proof` and returns its txid. Valid iff: at most
/// [`MAX_PROOF_VOTES`] and at most one vote per snapshot member; every vote
/// is for `chain_id` and `genesis_hash`; every vote's epoch maps (via `validators_for_epoch`) to
/// one and the same snapshot; voters are distinct members; each path proves
/// the txid under its vote's root; summed weight ≥ `required_weight()`
/// (`ceil(0.67·total)` in integers); every signature passes `verify_strict`.
/// Cheap checks run first, signatures last.
pub fn verify_proof<'a>(
    proof: &FinalityProof,
    chain_id: ChainId,
    genesis_hash: Hash,
    validators_for_epoch: impl Fn(u64) -> Option<&'a ValidatorSet>,
) -> Result<Hash, ProofError> {
    verify_proof_with(
        proof,
        chain_id,
        genesis_hash,
        validators_for_epoch,
        |vote| vote.verify_signature().is_ok(),
    )
}

/// [`verify_proof`] with the signature check supplied by the caller, so a
/// node can skip votes it has already verified (a bounded cache by vote hash).
pub fn verify_proof_with<'a>(
    proof: &FinalityProof,
    chain_id: ChainId,
    genesis_hash: Hash,
    validators_for_epoch: impl Fn(u64) -> Option<&'a ValidatorSet>,
    signature_ok: impl FnMut(&FinalityVote) -> bool,
) -> Result<Hash, ProofError> {
    verify_proof_parts_with(
        proof,
        chain_id,
        genesis_hash,
        validators_for_epoch,
        signature_ok,
        |txid, vote, path| path.proves(txid, &vote.root),
    )
}

/// [`verify_proof_with`] with the Merkle path check supplied too: the
/// simulator's checker verifies a thousand nodes' proofs of one tx, which
/// repeat the same votes and paths, and remembers each it verified.
pub fn verify_proof_parts_with<'a>(
    proof: &FinalityProof,
    chain_id: ChainId,
    genesis_hash: Hash,
    validators_for_epoch: impl Fn(u64) -> Option<&'a ValidatorSet>,
    mut signature_ok: impl FnMut(&FinalityVote) -> bool,
    mut path_ok: impl FnMut(&Hash, &FinalityVote, &MerklePath) -> bool,
) -> Result<Hash, ProofError> {
    let count = proof.votes.len();
    if count == 0 {
        return Err(ProofError::NoVotes);
    }
    if count > MAX_PROOF_VOTES {
        return Err(ProofError::TooManyVotes {
            count,
            max: MAX_PROOF_VOTES,
        });
    }
    let txid = proof.tx.txid();
    let mut snapshot: Option<&ValidatorSet> = None;
    let mut voted: Vec<bool> = Vec::new();
    let mut have: u64 = 0;
    for (index, (vote, path)) in proof.votes.iter().enumerate() {
        if vote.chain_id != chain_id || vote.genesis_hash != genesis_hash {
            return Err(ProofError::WrongChain {
                index,
                found: vote.chain_id,
                genesis: vote.genesis_hash,
                expected: chain_id,
            });
        }
        let epoch = vote.epoch;
        let set = validators_for_epoch(epoch).ok_or(ProofError::UnknownEpoch { index, epoch })?;
        let set = match snapshot {
            None => {
                if count > set.len() {
                    return Err(ProofError::TooManyVotes {
                        count,
                        max: set.len(),
                    });
                }
                voted = vec![false; set.len()];
                *snapshot.insert(set)
            }
            Some(first) if first.set_hash() == set.set_hash() => first,
            Some(_) => return Err(ProofError::MixedSnapshots { index, epoch }),
        };
        let voter = vote.voter;
        let member = set
            .index_of(&voter)
            .ok_or(ProofError::NotAMember { index, voter })?;
        match voted.get_mut(member) {
            Some(seen) if !*seen => *seen = true,
            _ => return Err(ProofError::DuplicateVoter { index, voter }),
        }
        if !path_ok(&txid, vote, path) {
            return Err(ProofError::WrongPath { index, txid });
        }
        have = have.saturating_add(set.weight_of(&voter).unwrap_or(0));
    }
    let need = snapshot.map_or(u64::MAX, ValidatorSet::required_weight);
    if have < need {
        return Err(ProofError::ShortWeight { have, need });
    }
    for (index, (vote, _)) in proof.votes.iter().enumerate() {
        if !signature_ok(vote) {
            return Err(ProofError::BadSignature {
                index,
                voter: vote.voter,
            });
        }
    }
    Ok(txid)
}

/// Collects verified window votes for one txid until their weight is
/// enough. Holds each vote as its window (shared by every txid the window
/// lists) and the txid's leaf in it: about 16 bytes per vote, where a vote
/// and its path would be hundreds; the proof is written out only once.
#[derive(Clone, Debug)]
pub struct ProofBuilder {
    txid: Hash,
    votes: Vec<(Arc<WindowTree>, usize)>,
    /// Snapshot members that already contributed.
    voted: MemberBits,
    weight: u64,
    required: u64,
}

/// What adding a vote to a [`ProofBuilder`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteAdded {
    /// Counted; the proof is still short.
    Counted,
    /// Counted, and the weight now reaches the requirement.
    Complete,
}

impl ProofBuilder {
    pub fn new(txid: Hash, set: &ValidatorSet) -> ProofBuilder {
        ProofBuilder {
            txid,
            votes: Vec::new(),
            voted: MemberBits::new(set.len()),
            weight: 0,
            required: set.required_weight(),
        }
    }

    pub fn txid(&self) -> Hash {
        self.txid
    }

    pub fn weight(&self) -> u64 {
        self.weight
    }

    pub fn required(&self) -> u64 {
        self.required
    }

    pub fn is_complete(&self) -> bool {
        self.weight >= self.required
    }

    /// Whether snapshot member `member` already contributed.
    pub fn has_voted(&self, member: usize) -> bool {
        self.voted.contains(member)
    }

    /// Adds the vote of `window`, whose signature and chain id the caller
    /// has verified, for the txid at `leaf`. Checks membership in `set` (the
    /// builder's snapshot), duplicates and that the leaf is this txid (the
    /// tree was matched against the signed root when `window` was built).
    pub fn add(
        &mut self,
        set: &ValidatorSet,
        window: &Arc<WindowTree>,
        leaf: usize,
    ) -> Result<VoteAdded, ProofError> {
        let index = self.votes.len();
        let voter = window.vote().voter;
        let member = set
            .index_of(&voter)
            .ok_or(ProofError::NotAMember { index, voter })?;
        self.add_member(set, member, window, leaf)
    }

    /// [`add`](Self::add) for a caller that already looked up the voter's
    /// set index `member` (`set.index_of(&window.vote().voter)`): one hash
    /// lookup fewer per listed txid.
    pub fn add_member(
        &mut self,
        set: &ValidatorSet,
        member: usize,
        window: &Arc<WindowTree>,
        leaf: usize,
    ) -> Result<VoteAdded, ProofError> {
        let index = self.votes.len();
        let voter = window.vote().voter;
        debug_assert_eq!(set.index_of(&voter), Some(member));
        if self.has_voted(member) {
            return Err(ProofError::DuplicateVoter { index, voter });
        }
        if window.txids().get(leaf) != Some(&self.txid) {
            return Err(ProofError::WrongPath {
                index,
                txid: self.txid,
            });
        }
        self.voted.insert(member);
        let weight = set.validators().get(member).map_or(0, |v| v.weight);
        self.weight = self.weight.saturating_add(weight);
        self.votes.push((Arc::clone(window), leaf));
        Ok(if self.is_complete() {
            VoteAdded::Complete
        } else {
            VoteAdded::Counted
        })
    }

    /// The proof for `tx` (whose txid must be the builder's).
    pub fn to_proof(&self, tx: &Tx) -> FinalityProof {
        debug_assert_eq!(tx.txid(), self.txid);
        // Sized once: collecting from `filter_map` grew it by doubling.
        let mut votes = Vec::with_capacity(self.votes.len());
        // Every leaf was checked in range when added, so each has a path.
        votes.extend(self.votes.iter().filter_map(|(window, leaf)| {
            let path = window.path(*leaf)?;
            Some((window.vote().clone(), path))
        }));
        FinalityProof {
            tx: tx.clone(),
            votes,
        }
    }
}
