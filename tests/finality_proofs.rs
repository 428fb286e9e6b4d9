//! Finality proofs (DESIGN §5): what makes one valid, and every way one can
//! be invalid, each refused with its own `ProofError`.

mod consensus_support;

use consensus_support::*;
use std::sync::Arc;
use timecoin::crypto::Keypair;
use timecoin::finality::{
    required_weight, verify_proof, FinalityProof, FinalityVote, ProofBuilder, ProofError,
    ValidatorSet, VoteAdded, WindowTree,
};
use timecoin::types::{encoding, ChainId, Hash, Tx};

/// Twenty validators of weight 1 (a proof needs 14) and a payment.
struct Fixture {
    keys: Vec<Keypair>,
    set: ValidatorSet,
    tx: Tx,
}

fn fixture(weights: &[u64]) -> Fixture {
    let (keys, set) = validator_set(weights);
    let tx = Wallet::funded(1).pay(0, "payee");
    Fixture { keys, set, tx }
}

/// Other txids under each vote's root (sorted), so every path has siblings.
fn neighbours() -> Vec<Hash> {
    let mut txids: Vec<Hash> = (0..5u8).map(|i| Hash::digest(&[i])).collect();
    txids.sort();
    txids
}

impl Fixture {
    fn proof(&self, signers: std::ops::Range<usize>) -> FinalityProof {
        signed_proof(&self.tx, &self.keys[signers], 1, &neighbours())
    }

    fn verify(&self, proof: &FinalityProof) -> Result<Hash, ProofError> {
        verify_proof(proof, CHAIN, GENESIS, |_| Some(&self.set))
    }
}

#[test]
fn proof_with_exactly_the_required_weight_verifies() {
    let f = fixture(&[1; 20]);
    assert_eq!(f.set.required_weight(), 14);
    assert_eq!(f.verify(&f.proof(0..14)), Ok(f.tx.txid()));
    assert_eq!(f.verify(&f.proof(0..20)), Ok(f.tx.txid()));
}

#[test]
fn required_weight_is_the_ceiling_of_67_percent_in_integers() {
    for (total, need) in [
        (1, 1),
        (3, 3),
        (4, 3),
        (20, 14),
        (40, 27),
        (100, 67),
        (101, 68),
    ] {
        assert_eq!(required_weight(total), need, "total {total}");
    }
}

#[test]
fn short_weight_is_refused() {
    let f = fixture(&[1; 20]);
    assert_eq!(
        f.verify(&f.proof(0..13)),
        Err(ProofError::ShortWeight { have: 13, need: 14 })
    );
}

#[test]
fn weight_comes_from_the_snapshot_not_from_the_number_of_votes() {
    // One validator holds 67 of 100: it alone suffices; the 33 others never do.
    let mut weights = vec![67];
    weights.extend([1; 33]);
    let f = fixture(&weights);
    assert_eq!(f.verify(&f.proof(0..1)), Ok(f.tx.txid()));
    assert_eq!(
        f.verify(&f.proof(1..34)),
        Err(ProofError::ShortWeight { have: 33, need: 67 })
    );
}

#[test]
fn bad_signature_is_refused() {
    let f = fixture(&[1; 20]);
    let mut proof = f.proof(0..14);
    proof.votes[3].0.sig.0[0] ^= 1;
    assert_eq!(
        f.verify(&proof),
        Err(ProofError::BadSignature {
            index: 3,
            voter: f.keys[3].public()
        })
    );
    // The epoch and seq are signed too: changing either breaks the vote.
    let mut proof = f.proof(0..14);
    proof.votes[5].0.seq = 2;
    assert!(matches!(
        f.verify(&proof),
        Err(ProofError::BadSignature { index: 5, .. })
    ));
}

#[test]
fn wrong_path_is_refused() {
    let f = fixture(&[1; 20]);
    let mut proof = f.proof(0..14);
    proof.votes[2].1.index ^= 1;
    assert!(matches!(
        f.verify(&proof),
        Err(ProofError::WrongPath { index: 2, .. })
    ));
    // A vote whose root does not cover the txid at all.
    let mut proof = f.proof(0..14);
    let other = FinalityVote::sign(&f.keys[4], scope(1), 1, &neighbours());
    proof.votes[4].0 = other;
    assert!(matches!(
        f.verify(&proof),
        Err(ProofError::WrongPath { index: 4, .. })
    ));
}

#[test]
fn a_different_tx_under_the_same_votes_is_refused() {
    let f = fixture(&[1; 20]);
    let mut proof = f.proof(0..20);
    proof.tx.outputs[0].value.0 += 1;
    assert!(matches!(
        f.verify(&proof),
        Err(ProofError::WrongPath { index: 0, .. })
    ));
}

#[test]
fn duplicate_voter_is_refused() {
    let f = fixture(&[1; 20]);
    let mut proof = f.proof(0..13);
    let again = proof.votes[0].clone();
    proof.votes.push(again);
    assert_eq!(
        f.verify(&proof),
        Err(ProofError::DuplicateVoter {
            index: 13,
            voter: f.keys[0].public()
        })
    );
}

#[test]
fn non_member_is_refused() {
    let f = fixture(&[1; 20]);
    let outsider = Keypair::from_seed_label("not a validator");
    let mut proof = f.proof(0..14);
    proof.votes.push(
        signed_proof(&f.tx, std::slice::from_ref(&outsider), 1, &[])
            .votes
            .remove(0),
    );
    assert_eq!(
        f.verify(&proof),
        Err(ProofError::NotAMember {
            index: 14,
            voter: outsider.public()
        })
    );
}

#[test]
fn wrong_chain_id_is_refused() {
    let f = fixture(&[1; 20]);
    let proof = f.proof(0..14);
    assert_eq!(
        verify_proof(&proof, ChainId(1), GENESIS, |_| Some(&f.set)),
        Err(ProofError::WrongChain {
            index: 0,
            found: CHAIN,
            genesis: GENESIS,
            expected: ChainId(1)
        })
    );
    // Same chain id, another genesis (a relaunched testnet): refused too.
    assert!(matches!(
        verify_proof(&proof, CHAIN, Hash::ZERO, |_| Some(&f.set)),
        Err(ProofError::WrongChain { index: 0, .. })
    ));
}

#[test]
fn unknown_epoch_is_refused() {
    let f = fixture(&[1; 20]);
    let proof = f.proof(0..14);
    assert_eq!(
        verify_proof(&proof, CHAIN, GENESIS, |epoch| (epoch == 7)
            .then_some(&f.set)),
        Err(ProofError::UnknownEpoch { index: 0, epoch: 1 })
    );
}

#[test]
fn votes_from_different_snapshots_are_refused() {
    let f = fixture(&[1; 20]);
    // Same members, one weight changed: a different snapshot for epoch 2.
    let mut weights = vec![1; 20];
    weights[19] = 2;
    let (_, later) = validator_set(&weights);
    let mut proof = f.proof(0..7);
    proof
        .votes
        .extend(signed_proof(&f.tx, &f.keys[7..14], 2, &neighbours()).votes);
    let sets = |epoch| match epoch {
        1 => Some(&f.set),
        2 => Some(&later),
        _ => None,
    };
    assert_eq!(
        verify_proof(&proof, CHAIN, GENESIS, sets),
        Err(ProofError::MixedSnapshots { index: 7, epoch: 2 })
    );
}

#[test]
fn more_votes_than_members_are_refused_before_any_signature_check() {
    let f = fixture(&[1; 20]);
    let mut proof = f.proof(0..20);
    let extra = proof.votes[0].clone();
    proof.votes.push(extra);
    assert_eq!(
        f.verify(&proof),
        Err(ProofError::TooManyVotes { count: 21, max: 20 })
    );
    proof.votes.clear();
    assert_eq!(f.verify(&proof), Err(ProofError::NoVotes));
}

#[test]
fn proof_survives_the_canonical_encoding() {
    let f = fixture(&[1; 20]);
    let proof = f.proof(0..14);
    let bytes = encoding::encode(&proof);
    let back: FinalityProof = encoding::decode(&bytes, 64 * 1024, "proof").unwrap();
    assert_eq!(f.verify(&back), Ok(f.tx.txid()));
    assert!(encoding::decode::<FinalityProof>(&bytes, bytes.len() - 1, "proof").is_err());
}

#[test]
fn proof_builder_completes_exactly_at_the_required_weight() {
    let f = fixture(&[1; 20]);
    let txid = f.tx.txid();
    let leaves: Vec<Hash> = neighbours().into_iter().chain([txid]).collect();
    let windows: Vec<Arc<WindowTree>> = f
        .keys
        .iter()
        .map(|k| Arc::new(WindowTree::sign(k, scope(1), 1, leaves.clone())))
        .collect();
    let leaf = windows[0].window().position(&txid).unwrap();
    let mut builder = ProofBuilder::new(txid, &f.set);
    for (i, window) in windows.iter().take(14).enumerate() {
        let added = builder.add(&f.set, window, leaf).unwrap();
        let expected = if i == 13 {
            VoteAdded::Complete
        } else {
            VoteAdded::Counted
        };
        assert_eq!(added, expected, "vote {i}");
    }
    assert!(builder.is_complete());
    assert!(builder.has_voted(f.set.index_of(&f.keys[0].public()).unwrap()));
    let proof = builder.to_proof(&f.tx);
    assert_eq!(proof.votes.len(), 14);
    assert_eq!(f.verify(&proof), Ok(txid));
    // Refuses what a proof may not hold.
    assert!(matches!(
        builder.add(&f.set, &windows[0], leaf),
        Err(ProofError::DuplicateVoter { .. })
    ));
    let outsider = Keypair::from_seed_label("not a validator");
    let stranger = Arc::new(WindowTree::sign(&outsider, scope(1), 1, leaves.clone()));
    assert!(matches!(
        builder.add(&f.set, &stranger, leaf),
        Err(ProofError::NotAMember { .. })
    ));
    for wrong_leaf in [leaf ^ 1, leaves.len()] {
        assert!(matches!(
            builder.add(&f.set, &windows[15], wrong_leaf),
            Err(ProofError::WrongPath { .. })
        ));
    }
    assert_eq!(builder.weight(), 14);
}
