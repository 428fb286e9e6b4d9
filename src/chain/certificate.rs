//! Certified blocks (DESIGN §6): validators endorse one block per height
//! with a signed [`BlockVote`]; votes of ≥ 67 % of the weight for one block
//! form its [`Certificate`], and the block and its ancestors are final. Two
//! endorsements by one voter of different blocks at one height are
//! [`Equivocation`] evidence.
//!
//! Pure: votes and the validator set in, verdicts out; no clock, store or
//! socket. [`Endorsements`] is the sans-IO tally: it checks each distinct
//! vote's signature once, keeps one vote per voter per height and only
//! heights near the tip, so its memory is bounded by the window times the
//! set, whatever peers send. Weight only ever comes from the set, never
//! from a vote.

use crate::crypto::{signing_message, Domain, Keypair, PublicKey, SignatureError};
use crate::finality::ValidatorSet;
use crate::types::encoding::{self, DecodeError};
use crate::types::{ChainId, Hash, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most votes one certificate may carry (a set larger than this cannot
/// certify by wire; far above any planned set).
pub const MAX_CERTIFICATE_VOTES: usize = 10_000;
/// Most bytes of an encoded certificate or evidence: the votes and a margin.
pub const MAX_CERTIFICATE_BYTES: usize = MAX_CERTIFICATE_VOTES * 256 + 1024;

/// A validator's endorsement of the block `hash` at `height`: `sig` signs
/// `H(chain_id, genesis_hash, epoch, voter, height, hash)` in domain
/// [`Domain::BlockVote`], so it is useless on another chain or genesis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockVote {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    /// The epoch of `height` (DESIGN §7): its committee weighs the vote.
    pub epoch: u64,
    pub voter: PublicKeyBytes,
    pub height: u64,
    pub hash: Hash,
    pub sig: SignatureBytes,
}

impl BlockVote {
    /// `identity`'s endorsement of `hash` at `height`, of `epoch`.
    pub fn sign(
        identity: &Keypair,
        chain_id: ChainId,
        genesis_hash: Hash,
        epoch: u64,
        height: u64,
        hash: Hash,
    ) -> BlockVote {
        let mut vote = BlockVote {
            chain_id,
            genesis_hash,
            epoch,
            voter: identity.public(),
            height,
            hash,
            sig: SignatureBytes([0; 64]),
        };
        vote.sig = identity.sign(&vote.signing_message());
        vote
    }

    /// The exact bytes the voter signs.
    pub fn signing_message(&self) -> [u8; 52] {
        let body = Hash::of(&(
            self.chain_id,
            self.genesis_hash,
            self.epoch,
            self.voter,
            self.height,
            self.hash,
        ));
        signing_message(Domain::BlockVote, self.chain_id, &body)
    }

    /// `verify_strict` of the signature by `voter`; says nothing of membership.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        PublicKey::parse(&self.voter)?.verify(&self.signing_message(), &self.sig)
    }

    /// What one vote is deduplicated by.
    pub fn key(&self) -> (PublicKeyBytes, u64, Hash) {
        (self.voter, self.height, self.hash)
    }
}

/// Why a vote, certificate or evidence is not valid for this chain and set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("vote is for chain {found} / genesis {genesis}, this node runs chain {expected}")]
    WrongChain {
        found: ChainId,
        genesis: Hash,
        expected: ChainId,
    },
    #[error("voter {0:?} is not a validator")]
    NotAValidator(PublicKeyBytes),
    #[error("vote of {voter:?} names epoch {found}; its height is of epoch {expected}")]
    WrongEpoch {
        voter: PublicKeyBytes,
        found: u64,
        expected: u64,
    },
    #[error("the endorsers of epoch {epoch} (height {height}) are not known here")]
    UnknownEpoch { height: u64, epoch: u64 },
    #[error("signature of voter {voter:?} does not verify: {source}")]
    BadSignature {
        voter: PublicKeyBytes,
        source: SignatureError,
    },
    #[error("vote of {voter:?} is for height {height} block {hash}, not the certified one")]
    OtherBlock {
        voter: PublicKeyBytes,
        height: u64,
        hash: Hash,
    },
    #[error("voters must be distinct and ascending; {0:?} breaks the order")]
    VotersNotAscending(PublicKeyBytes),
    #[error("certificate carries {count} votes, more than the {max} allowed")]
    TooManyVotes { count: usize, max: usize },
    #[error("signers hold weight {weight}, below the {required} a certificate needs")]
    InsufficientWeight { weight: u64, required: u64 },
    #[error("the two votes are not by one voter at one height for two different blocks")]
    NotConflicting,
}

impl CertificateError {
    /// Every variant is the sender's fault except a vote for another chain,
    /// which a misconfigured honest peer can relay, and one of an epoch
    /// this node has not decided yet.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            CertificateError::WrongChain { .. } | CertificateError::UnknownEpoch { .. }
        )
    }
}

/// The chain and epoch a vote must name, and the set whose weight counts.
#[derive(Clone, Copy, Debug)]
pub struct VoteContext<'a> {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub epoch: u64,
    pub validators: &'a ValidatorSet,
}

impl<'a> VoteContext<'a> {
    /// The context of endorsements of a block at `height` (DESIGN §6, §7):
    /// they name its epoch, and that epoch's `endorsers` weigh them; an
    /// error while those are unknown here.
    pub fn at_height(
        (chain_id, genesis_hash): (ChainId, Hash),
        height: u64,
        epoch_of: impl FnOnce(u64) -> u64,
        endorsers: impl FnOnce(u64) -> Option<&'a ValidatorSet>,
    ) -> Result<VoteContext<'a>, CertificateError> {
        let epoch = epoch_of(height);
        let validators =
            endorsers(epoch).ok_or(CertificateError::UnknownEpoch { height, epoch })?;
        Ok(VoteContext {
            chain_id,
            genesis_hash,
            epoch,
            validators,
        })
    }

    /// Chain, epoch, membership and signature of one vote; returns the
    /// voter's weight.
    pub fn check(&self, vote: &BlockVote) -> Result<u64, CertificateError> {
        if vote.chain_id != self.chain_id || vote.genesis_hash != self.genesis_hash {
            return Err(CertificateError::WrongChain {
                found: vote.chain_id,
                genesis: vote.genesis_hash,
                expected: self.chain_id,
            });
        }
        if vote.epoch != self.epoch {
            return Err(CertificateError::WrongEpoch {
                voter: vote.voter,
                found: vote.epoch,
                expected: self.epoch,
            });
        }
        let weight = self
            .validators
            .weight_of(&vote.voter)
            .ok_or(CertificateError::NotAValidator(vote.voter))?;
        vote.verify_signature()
            .map_err(|source| CertificateError::BadSignature {
                voter: vote.voter,
                source,
            })?;
        Ok(weight)
    }
}

/// Proof that `hash` at `height` is certified: endorsements of distinct
/// validators, ascending by voter, whose weight reaches
/// [`ValidatorSet::required_weight`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub height: u64,
    pub hash: Hash,
    pub votes: Vec<BlockVote>,
}

impl Certificate {
    /// Checks every rule offline; returns the signers' weight.
    pub fn verify(&self, context: &VoteContext<'_>) -> Result<u64, CertificateError> {
        if self.votes.len() > MAX_CERTIFICATE_VOTES {
            return Err(CertificateError::TooManyVotes {
                count: self.votes.len(),
                max: MAX_CERTIFICATE_VOTES,
            });
        }
        let mut weight: u64 = 0;
        let mut previous: Option<PublicKeyBytes> = None;
        for vote in &self.votes {
            if previous.is_some_and(|p| p >= vote.voter) {
                return Err(CertificateError::VotersNotAscending(vote.voter));
            }
            previous = Some(vote.voter);
            if vote.height != self.height || vote.hash != self.hash {
                return Err(CertificateError::OtherBlock {
                    voter: vote.voter,
                    height: vote.height,
                    hash: vote.hash,
                });
            }
            weight = weight.saturating_add(context.check(vote)?);
        }
        let required = context.validators.required_weight();
        if weight < required {
            return Err(CertificateError::InsufficientWeight { weight, required });
        }
        Ok(weight)
    }

    /// The weight of the voters in `set`, without checking signatures: for
    /// a certificate the tally built from votes it verified.
    pub fn signers_weight(&self, set: &ValidatorSet) -> u64 {
        self.votes
            .iter()
            .filter_map(|v| set.weight_of(&v.voter))
            .fold(0u64, u64::saturating_add)
    }

    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Certificate, DecodeError> {
        encoding::decode(bytes, MAX_CERTIFICATE_BYTES, "certificate")
    }
}

/// Two endorsements by one voter of different blocks at one height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Equivocation {
    pub first: BlockVote,
    pub second: BlockVote,
}

impl Equivocation {
    /// Checks it offline: both votes valid, same voter, height and epoch,
    /// different blocks.
    pub fn verify(&self, context: &VoteContext<'_>) -> Result<(), CertificateError> {
        let (a, b) = (&self.first, &self.second);
        if a.voter != b.voter || a.height != b.height || a.epoch != b.epoch || a.hash == b.hash {
            return Err(CertificateError::NotConflicting);
        }
        context.check(a)?;
        context.check(b)?;
        Ok(())
    }

    /// The offender and the height: one piece of evidence is kept per pair.
    pub fn key(&self) -> (PublicKeyBytes, u64) {
        (self.first.voter, self.first.height)
    }

    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Equivocation, DecodeError> {
        encoding::decode(bytes, MAX_CERTIFICATE_BYTES, "equivocation evidence")
    }
}

/// What the tally made of one vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Seen before (same voter, height and block): nothing to do, not relayed.
    Duplicate,
    /// Outside the kept heights, for another block than the one certified
    /// at its height, or by a voter who already equivocated there: dropped
    /// without a signature check.
    Ignored,
    /// Invalid; the sender is at fault if [`CertificateError::is_peer_fault`].
    Invalid(CertificateError),
    /// New and valid: relay it once. `certified` is set when it completed
    /// a certificate; `evidence` when it conflicts with the voter's earlier
    /// vote at that height.
    Counted {
        certified: Option<Certificate>,
        evidence: Option<Box<Equivocation>>,
    },
}

/// Votes of one height: the first vote of each voter, the weight behind
/// each block, the voters caught equivocating, and the block certified.
#[derive(Default, Debug)]
struct HeightVotes {
    by_voter: BTreeMap<PublicKeyBytes, BlockVote>,
    weight: BTreeMap<Hash, u64>,
    equivocators: BTreeSet<PublicKeyBytes>,
    certified: Option<Hash>,
}

/// The sans-IO vote tally of recent heights.
#[derive(Debug)]
pub struct Endorsements {
    /// Heights kept on either side of the tip.
    window: u64,
    tip_height: u64,
    heights: BTreeMap<u64, HeightVotes>,
}

impl Endorsements {
    /// Keeps votes for heights within `window` of the tip (either side).
    pub fn new(window: u64, tip_height: u64) -> Endorsements {
        Endorsements {
            window,
            tip_height,
            heights: BTreeMap::new(),
        }
    }

    /// Moves the kept window to `tip_height`, forgetting heights left behind.
    pub fn on_tip(&mut self, tip_height: u64) {
        self.tip_height = tip_height;
        let oldest = tip_height.saturating_sub(self.window);
        self.heights = self.heights.split_off(&oldest);
        let newest = tip_height.saturating_add(self.window);
        let _ = self.heights.split_off(&newest.saturating_add(1));
    }

    /// Marks `hash` certified at `height` (a certificate learned whole, or
    /// loaded), so later votes for other blocks there cost nothing.
    pub fn mark_certified(&mut self, height: u64, hash: Hash) {
        if self.keeps(height) {
            self.heights.entry(height).or_default().certified = Some(hash);
        }
    }

    /// `certificate` with every vote for its block counted here since:
    /// endorsements that came after the quorum are carried too, so the
    /// final chain shows every endorser that is live (DESIGN §7 liveness),
    /// not only the fastest two thirds.
    pub fn completed(&self, certificate: Certificate) -> Certificate {
        let Some(at) = self.heights.get(&certificate.height) else {
            return certificate;
        };
        let mut votes: BTreeMap<PublicKeyBytes, BlockVote> = certificate
            .votes
            .into_iter()
            .map(|vote| (vote.voter, vote))
            .collect();
        let late = at.by_voter.values().filter(|v| v.hash == certificate.hash);
        for vote in late {
            votes.entry(vote.voter).or_insert_with(|| vote.clone());
        }
        Certificate {
            height: certificate.height,
            hash: certificate.hash,
            votes: votes.into_values().collect(),
        }
    }

    fn keeps(&self, height: u64) -> bool {
        height.abs_diff(self.tip_height) <= self.window
    }

    /// Heights currently holding votes.
    pub fn tracked_heights(&self) -> usize {
        self.heights.len()
    }

    /// Counts `vote`: dedupes first, checks the signature of a new vote once,
    /// detects equivocation and certifies a block once its weight suffices.
    pub fn handle_vote(&mut self, vote: BlockVote, context: &VoteContext<'_>) -> VoteOutcome {
        if !self.keeps(vote.height) {
            return VoteOutcome::Ignored;
        }
        let at = self.heights.entry(vote.height).or_default();
        if at.equivocators.contains(&vote.voter) {
            return VoteOutcome::Ignored;
        }
        let earlier = at.by_voter.get(&vote.voter);
        if earlier.is_some_and(|e| e.hash == vote.hash) {
            return VoteOutcome::Duplicate;
        }
        if at.certified.is_some_and(|c| c != vote.hash) && earlier.is_none() {
            return VoteOutcome::Ignored;
        }
        let weight = match context.check(&vote) {
            Ok(weight) => weight,
            Err(e) => return VoteOutcome::Invalid(e),
        };
        if let Some(first) = earlier {
            let evidence = Box::new(Equivocation {
                first: first.clone(),
                second: vote,
            });
            at.equivocators.insert(evidence.first.voter);
            return VoteOutcome::Counted {
                certified: None,
                evidence: Some(evidence),
            };
        }
        let total = at.weight.entry(vote.hash).or_default();
        *total = total.saturating_add(weight);
        let reached = *total >= context.validators.required_weight();
        let (height, hash) = (vote.height, vote.hash);
        at.by_voter.insert(vote.voter, vote);
        let certified = (reached && at.certified.is_none()).then(|| {
            at.certified = Some(hash);
            Certificate {
                height,
                hash,
                votes: at
                    .by_voter
                    .values()
                    .filter(|v| v.hash == hash)
                    .cloned()
                    .collect(),
            }
        });
        VoteOutcome::Counted {
            certified,
            evidence: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Validator, VrfPublicBytes};

    const CHAIN: ChainId = ChainId(7);

    fn genesis() -> Hash {
        Hash::digest(b"genesis")
    }

    fn keys(n: usize) -> Vec<Keypair> {
        (0..n)
            .map(|i| Keypair::from_seed_label(&format!("cert {i}")))
            .collect()
    }

    fn set(keys: &[Keypair], weights: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .zip(weights)
                .map(|(k, &weight)| Validator {
                    id: k.public(),
                    vrf_key: VrfPublicBytes([0; 32]),
                    weight,
                })
                .collect(),
        )
        .unwrap()
    }

    fn context(set: &ValidatorSet) -> VoteContext<'_> {
        VoteContext {
            chain_id: CHAIN,
            genesis_hash: genesis(),
            epoch: 0,
            validators: set,
        }
    }

    fn vote(key: &Keypair, height: u64, hash: Hash) -> BlockVote {
        BlockVote::sign(key, CHAIN, genesis(), 0, height, hash)
    }

    fn block(n: u8) -> Hash {
        Hash::digest(&[n])
    }

    #[test]
    fn two_thirds_of_the_weight_certify_and_less_does_not() {
        // Weights 40 + 27 = 67 of 100 certify; 40 + 26 would not.
        let k = keys(4);
        let s = set(&k, &[40, 27, 20, 13]);
        let mut tally = Endorsements::new(8, 5);
        let c = context(&s);
        let first = tally.handle_vote(vote(&k[0], 5, block(1)), &c);
        assert!(matches!(
            first,
            VoteOutcome::Counted {
                certified: None,
                ..
            }
        ));
        let other = tally.handle_vote(vote(&k[2], 5, block(2)), &c);
        assert!(matches!(
            other,
            VoteOutcome::Counted {
                certified: None,
                ..
            }
        ));
        let VoteOutcome::Counted {
            certified: Some(cert),
            ..
        } = tally.handle_vote(vote(&k[1], 5, block(1)), &c)
        else {
            panic!("67 of 100 must certify");
        };
        assert_eq!(cert.verify(&c), Ok(67));
        assert_eq!(cert.hash, block(1));
        // A later vote for the certified block is counted, never certifies
        // twice, and the carried certificate shows it.
        let late = tally.handle_vote(vote(&k[3], 5, block(1)), &c);
        assert!(matches!(
            late,
            VoteOutcome::Counted {
                certified: None,
                evidence: None
            }
        ));
        let completed = tally.completed(cert.clone());
        assert_eq!(completed.verify(&c), Ok(80));
        let voters: Vec<PublicKeyBytes> = completed.votes.iter().map(|v| v.voter).collect();
        let mut expected: Vec<PublicKeyBytes> = cert.votes.iter().map(|v| v.voter).collect();
        expected.push(k[3].public());
        expected.sort();
        assert_eq!(voters, expected, "the late voter joins, ascending");

        let s = set(&k, &[40, 26, 20, 14]);
        let c = context(&s);
        let mut tally = Endorsements::new(8, 5);
        for i in [0, 1] {
            let outcome = tally.handle_vote(vote(&k[i], 5, block(1)), &c);
            assert!(matches!(
                outcome,
                VoteOutcome::Counted {
                    certified: None,
                    ..
                }
            ));
        }
    }

    #[test]
    fn after_the_quorum_a_first_vote_for_another_block_costs_nothing() {
        let k = keys(4);
        let s = set(&k, &[1, 1, 1, 1]);
        let c = context(&s);
        let mut tally = Endorsements::new(8, 5);
        for key in &k[..3] {
            tally.handle_vote(vote(key, 5, block(1)), &c);
        }
        let rival = tally.handle_vote(vote(&k[3], 5, block(2)), &c);
        assert_eq!(rival, VoteOutcome::Ignored);
        // Marked from a certificate learned whole: the same.
        let mut tally = Endorsements::new(8, 5);
        tally.mark_certified(5, block(1));
        let rival = tally.handle_vote(vote(&k[3], 5, block(2)), &c);
        assert_eq!(rival, VoteOutcome::Ignored);
        let late = tally.handle_vote(vote(&k[2], 5, block(1)), &c);
        assert!(matches!(late, VoteOutcome::Counted { .. }));
    }

    #[test]
    fn a_certificate_below_the_threshold_or_with_a_forged_vote_is_refused() {
        let k = keys(4);
        let s = set(&k, &[1, 1, 1, 1]);
        let c = context(&s);
        let mut votes: Vec<BlockVote> = k.iter().map(|k| vote(k, 3, block(1))).collect();
        votes.sort_by_key(|v| v.voter);
        let full = Certificate {
            height: 3,
            hash: block(1),
            votes: votes.clone(),
        };
        assert_eq!(full.verify(&c), Ok(4));
        let short = Certificate {
            votes: votes[..2].to_vec(),
            ..full.clone()
        };
        assert_eq!(
            short.verify(&c),
            Err(CertificateError::InsufficientWeight {
                weight: 2,
                required: 3
            })
        );
        let mut repeated = full.clone();
        repeated.votes[1] = repeated.votes[0].clone();
        assert!(matches!(
            repeated.verify(&c),
            Err(CertificateError::VotersNotAscending(_))
        ));
        let mut forged = full.clone();
        forged.votes[0].hash = block(2);
        forged.hash = block(2);
        forged
            .votes
            .iter_mut()
            .skip(1)
            .for_each(|v| v.hash = block(2));
        assert!(matches!(
            forged.verify(&c),
            Err(CertificateError::BadSignature { .. })
        ));
        let bytes = full.encode();
        assert_eq!(Certificate::decode(&bytes), Ok(full));
    }

    #[test]
    fn endorsing_two_blocks_at_one_height_is_equivocation_evidence() {
        let k = keys(4);
        let s = set(&k, &[1, 1, 1, 1]);
        let c = context(&s);
        let mut tally = Endorsements::new(8, 5);
        let _ = tally.handle_vote(vote(&k[0], 5, block(1)), &c);
        let VoteOutcome::Counted {
            evidence: Some(evidence),
            certified: None,
        } = tally.handle_vote(vote(&k[0], 5, block(2)), &c)
        else {
            panic!("a second block at one height must be evidence");
        };
        assert_eq!(evidence.verify(&c), Ok(()));
        assert_eq!(evidence.key(), (k[0].public(), 5));
        // The equivocator's further votes at that height cost nothing.
        assert_eq!(
            tally.handle_vote(vote(&k[0], 5, block(3)), &c),
            VoteOutcome::Ignored
        );
        // Two votes for one block, or at two heights, are no evidence.
        let same = Equivocation {
            first: vote(&k[1], 5, block(1)),
            second: vote(&k[1], 5, block(1)),
        };
        assert_eq!(same.verify(&c), Err(CertificateError::NotConflicting));
        let heights = Equivocation {
            first: vote(&k[1], 5, block(1)),
            second: vote(&k[1], 6, block(2)),
        };
        assert_eq!(heights.verify(&c), Err(CertificateError::NotConflicting));
        let bytes = evidence.encode();
        assert_eq!(Equivocation::decode(&bytes), Ok(*evidence));
    }

    #[test]
    fn each_vote_is_checked_once_and_strangers_and_other_chains_are_refused() {
        let k = keys(5);
        let s = set(&k[..4], &[1, 1, 1, 1]);
        let c = context(&s);
        let mut tally = Endorsements::new(8, 5);
        let v = vote(&k[0], 5, block(1));
        assert!(matches!(
            tally.handle_vote(v.clone(), &c),
            VoteOutcome::Counted { .. }
        ));
        assert_eq!(tally.handle_vote(v, &c), VoteOutcome::Duplicate);
        assert_eq!(
            tally.handle_vote(vote(&k[4], 5, block(1)), &c),
            VoteOutcome::Invalid(CertificateError::NotAValidator(k[4].public()))
        );
        let other_chain = BlockVote::sign(&k[1], ChainId(8), genesis(), 0, 5, block(1));
        let VoteOutcome::Invalid(e) = tally.handle_vote(other_chain, &c) else {
            panic!("another chain's vote must be refused");
        };
        assert!(!e.is_peer_fault());
        let other_genesis = BlockVote::sign(&k[1], CHAIN, block(9), 0, 5, block(1));
        assert!(matches!(
            tally.handle_vote(other_genesis, &c),
            VoteOutcome::Invalid(CertificateError::WrongChain { .. })
        ));
        let other_epoch = BlockVote::sign(&k[1], CHAIN, genesis(), 1, 5, block(1));
        let VoteOutcome::Invalid(e) = tally.handle_vote(other_epoch, &c) else {
            panic!("a vote naming another epoch than its height's must be refused");
        };
        assert!(e.is_peer_fault());
        assert!(matches!(
            e,
            CertificateError::WrongEpoch {
                found: 1,
                expected: 0,
                ..
            }
        ));
        let mut forged = vote(&k[2], 5, block(1));
        forged.hash = block(2);
        assert!(matches!(
            tally.handle_vote(forged, &c),
            VoteOutcome::Invalid(CertificateError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_heights_votes_name_its_epoch_and_its_endorsers_weigh_them() {
        // Ten heights per epoch; epoch 1's endorsers are validators 1..4 only.
        let k = keys(4);
        let (first, second) = (set(&k, &[1, 1, 1, 1]), set(&k[1..], &[1, 1, 1]));
        let committee = |epoch: u64| match epoch {
            0 => Some(&first),
            1 => Some(&second),
            _ => None,
        };
        let at = |height| VoteContext::at_height((CHAIN, genesis()), height, |h| h / 10, committee);
        let c = at(12).unwrap();
        assert_eq!(c.epoch, 1);
        let sign = |key, epoch| BlockVote::sign(key, CHAIN, genesis(), epoch, 12, block(1));
        assert_eq!(c.check(&sign(&k[1], 1)), Ok(1));
        assert_eq!(
            c.check(&sign(&k[0], 1)),
            Err(CertificateError::NotAValidator(k[0].public()))
        );
        assert!(matches!(
            c.check(&sign(&k[1], 0)),
            Err(CertificateError::WrongEpoch {
                found: 0,
                expected: 1,
                ..
            })
        ));
        let undecided = at(25).unwrap_err();
        assert_eq!(
            undecided,
            CertificateError::UnknownEpoch {
                height: 25,
                epoch: 2
            }
        );
        assert!(!undecided.is_peer_fault());
    }

    #[test]
    fn only_heights_near_the_tip_are_kept() {
        let k = keys(1);
        let s = set(&k, &[1]);
        let c = context(&s);
        let mut tally = Endorsements::new(2, 10);
        assert_eq!(
            tally.handle_vote(vote(&k[0], 13, block(1)), &c),
            VoteOutcome::Ignored
        );
        assert_eq!(
            tally.handle_vote(vote(&k[0], 7, block(1)), &c),
            VoteOutcome::Ignored
        );
        for height in 8..=12 {
            let _ = tally.handle_vote(vote(&k[0], height, block(1)), &c);
        }
        assert_eq!(tally.tracked_heights(), 5);
        tally.on_tip(20);
        assert_eq!(tally.tracked_heights(), 0);
    }
}
