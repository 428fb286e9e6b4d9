//! Finality proofs as decoded from a peer (`encoding::decode`, as the wire
//! and the store do) and verified against a fixed 4-validator snapshot
//! (epoch 0 of chain 3, genesis `Hash::digest(b"fuzz genesis")`): a
//! decoded proof re-encodes to its bytes, verification returns a typed
//! error or the proof's own txid, and a proof with more votes than
//! `MAX_PROOF_VOTES` or than members never verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use timecoin::crypto::Keypair;
use timecoin::finality::proof::MAX_PROOF_VOTES;
use timecoin::finality::{verify_proof, FinalityProof, ValidatorSet};
use timecoin::types::{encoding, ChainId, Hash, Validator, VrfPublicBytes};

/// The chain's genesis hash the votes are bound to (seeds sign with it, epoch 0).
fn genesis_hash() -> Hash {
    Hash::digest(b"fuzz genesis")
}

fn snapshot() -> &'static ValidatorSet {
    static SET: OnceLock<ValidatorSet> = OnceLock::new();
    SET.get_or_init(|| {
        let validators = (0..4)
            .map(|i| Validator {
                id: Keypair::from_seed_label(&format!("fuzz validator {i}")).public(),
                vrf_key: VrfPublicBytes([0; 32]),
                weight: 1 + i as u64,
            })
            .collect();
        ValidatorSet::new(validators).expect("a valid fixed set")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = encoding::decode::<FinalityProof>(data, 1 << 20, "proof") else {
        return;
    };
    assert_eq!(encoding::encode(&proof), data);
    let set = snapshot();
    let result = verify_proof(&proof, ChainId(3), genesis_hash(), |epoch| {
        (epoch == 0).then_some(set)
    });
    if let Ok(txid) = result {
        assert_eq!(txid, proof.tx.txid());
        assert!(!proof.votes.is_empty());
        assert!(proof.votes.len() <= MAX_PROOF_VOTES.min(set.len()));
    }
});
