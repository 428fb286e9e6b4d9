//! Certified blocks in the store (DESIGN §6, §9): the endorsement guard
//! survives a reopen, certificates raise the certified tip, evidence is
//! kept once per voter and height, rewards mature only under a certified
//! block, and a final block is never undone.

mod store_support;

use store_support::{FundedChain, TestBlock};
use timecoin::store::{CertificateRecord, EndorseGuard, Store, StoreError, StoreOptions};
use timecoin::types::{Amount, Hash, PublicKeyBytes, TxOut};

fn chain() -> FundedChain {
    FundedChain::new("certified", 1, 1, Amount(1_000_000_000))
}

fn open(dir: &std::path::Path, chain: &FundedChain) -> Store {
    Store::open(dir, &chain.spec, StoreOptions::default()).unwrap()
}

#[test]
fn endorse_once_guard_survives_a_store_reopen() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Hash::digest(b"a"), Hash::digest(b"b"));
    {
        let store = open(dir.path(), &chain);
        assert_eq!(
            store.record_endorsement(7, &a).unwrap(),
            EndorseGuard::Recorded
        );
        assert_eq!(
            store.record_endorsement(7, &a).unwrap(),
            EndorseGuard::AlreadyEndorsed
        );
    }
    // As after a SIGKILL: the guard was committed before any signature left.
    let store = open(dir.path(), &chain);
    assert_eq!(
        store.record_endorsement(7, &b).unwrap(),
        EndorseGuard::Conflicts { endorsed: a }
    );
    assert_eq!(store.read().unwrap().endorsed_at(7).unwrap(), Some(a));
    assert_eq!(
        store.record_endorsement(8, &b).unwrap(),
        EndorseGuard::Recorded
    );
}

#[test]
fn certificates_are_kept_once_per_height_and_raise_the_certified_tip() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &chain);
    let record = |byte: u8| CertificateRecord {
        hash: Hash::digest(&[byte]),
        weight: 3,
        certificate: vec![byte; 10],
    };
    assert_eq!(store.read().unwrap().certified_tip().unwrap(), None);
    assert!(store.put_certificate(5, &record(5)).unwrap());
    assert!(
        !store.put_certificate(5, &record(9)).unwrap(),
        "held already"
    );
    assert!(store.put_certificate(3, &record(3)).unwrap());
    let read = store.read().unwrap();
    assert_eq!(read.certified_tip().unwrap(), Some((5, record(5).hash)));
    assert_eq!(read.certificate_at(5).unwrap(), Some(record(5)));
    let heights: Vec<u64> = read
        .scan_certificates_from(0)
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(heights, vec![3, 5]);
}

#[test]
fn evidence_is_kept_once_per_voter_and_height() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &chain);
    let voter = PublicKeyBytes([4; 32]);
    assert!(store.put_evidence(&voter, 2, b"first").unwrap());
    assert!(!store.put_evidence(&voter, 2, b"again").unwrap());
    assert!(store.put_evidence(&voter, 3, b"other").unwrap());
    let held = store.read().unwrap().evidence(10).unwrap();
    assert_eq!(held, vec![b"first".to_vec(), b"other".to_vec()]);
}

#[test]
fn rewards_mature_only_under_a_certified_block_and_final_blocks_are_never_undone() {
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &chain);
    let maturity = u64::from(chain.spec.config.ledger.reward_maturity_blocks);
    let payee = chain.addresses()[0];
    let paid = TxOut {
        value: Amount(5),
        address: payee,
    };
    let rewarded = TestBlock::on(&store.tip().unwrap(), vec![], vec![paid], maturity, 0);
    store.apply_block(&rewarded.commit()).unwrap();
    for salt in 0..maturity {
        let next = TestBlock::on(&store.tip().unwrap(), vec![], vec![], maturity, salt);
        store.apply_block(&next.commit()).unwrap();
    }
    let is_spendable = |store: &Store| {
        store
            .unspent_by_address(&payee, 100)
            .unwrap()
            .iter()
            .any(|(outpoint, _)| *outpoint == rewarded.reward_outpoint(0))
    };
    // `maturity` blocks on, but no block at or above it is certified.
    assert_eq!(store.tip().unwrap().height, rewarded.matures_at_height);
    assert!(!is_spendable(&store));
    assert_eq!(store.read().unwrap().maturity_height().unwrap(), maturity);
    let record = CertificateRecord {
        hash: rewarded.hash,
        weight: 3,
        certificate: vec![],
    };
    assert!(store.put_certificate(rewarded.height, &record).unwrap());
    assert_eq!(store.read().unwrap().final_height().unwrap(), 1);
    assert!(is_spendable(&store));
    // The certified tip is final: the store refuses to undo it.
    let tip = store.tip().unwrap();
    let record = CertificateRecord {
        hash: tip.hash,
        ..record
    };
    assert!(store.put_certificate(tip.height, &record).unwrap());
    assert!(matches!(
        store.undo_tip(&tip.hash),
        Err(StoreError::UndoFinal { .. })
    ));
}
