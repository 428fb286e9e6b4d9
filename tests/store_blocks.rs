//! Checkpoint blocks in the LMDB store: applying and undoing the tip block
//! moves blocks, heights, the tip, archival state and rewards together;
//! refusals write nothing; the unarchived index follows finalization and
//! archival; reward outputs are spendable only once mature.

mod store_support;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use store_support::{audit, finalized, reward_outputs, FundedChain, TestBlock, Wallet};
use tempfile::TempDir;
use timecoin::ledger::{validate, TxError, UtxoEntry, UtxoState, UtxoView};
use timecoin::mempool::{Mempool, OverlayView};
use timecoin::store::{ChainTip, Store, StoreError, StoreOptions, StoreStats, TxRecord, TxStatus};
use timecoin::types::{Address, Amount, Hash, OutPoint, TxOut};

struct Fixture {
    dir: TempDir,
    chain: FundedChain,
    store: Store,
    wallet: Wallet,
    rng: ChaCha20Rng,
    /// Blocks wait this many blocks before their rewards may be spent.
    maturity: u64,
}

impl Fixture {
    fn new() -> Fixture {
        let chain = FundedChain::new("store blocks", 4, 4, Amount::from_time(1_000).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &chain.spec, StoreOptions::default()).unwrap();
        Fixture {
            wallet: Wallet::from_genesis(&chain),
            maturity: u64::from(chain.spec.config.ledger.reward_maturity_blocks),
            dir,
            chain,
            store,
            rng: ChaCha20Rng::seed_from_u64(5),
        }
    }

    /// Finalizes `n` random transfers; returns their txids.
    fn finalize(&mut self, n: usize) -> Vec<Hash> {
        let batch: Vec<_> = (0..n)
            .map(|i| {
                let fee = self.chain.min_fee();
                let tx = self
                    .wallet
                    .transfer(&self.chain, &mut self.rng, (1, 2), fee);
                finalized(&tx, 64, i as u64)
            })
            .collect();
        self.store.apply_finalized(&batch).unwrap();
        batch.iter().map(|f| f.tx.txid()).collect()
    }

    fn tip(&self) -> ChainTip {
        self.store.tip().unwrap()
    }

    /// A block on the tip archiving `archived`, paying `rewards` outputs.
    fn block(&mut self, archived: &[Hash], rewards: usize, salt: u64) -> TestBlock {
        let outputs = reward_outputs(&self.chain, &mut self.rng, rewards, Amount(1_000));
        TestBlock::on(&self.tip(), archived.to_vec(), outputs, self.maturity, salt)
    }

    fn apply(&mut self, archived: &[Hash], rewards: usize) -> TestBlock {
        let block = self.block(archived, rewards, 0);
        let report = self.store.apply_block(&block.commit()).unwrap();
        assert_eq!(report.tip.hash, block.hash);
        block
    }

    fn reopen(self) -> Fixture {
        let Fixture { dir, store, .. } = self;
        drop(store);
        let store = Store::open(dir.path(), &self.chain.spec, StoreOptions::default()).unwrap();
        Fixture { dir, store, ..self }
    }

    /// Everything the store holds, to compare before and after.
    fn snapshot(&self) -> Snapshot {
        let view = self.store.read().unwrap();
        let tip = view.tip().unwrap();
        Snapshot {
            tip,
            heights: (0..=tip.height + 1)
                .map(|h| view.block_hash_at(h).unwrap())
                .collect(),
            blocks: view
                .scan_blocks_from(0)
                .unwrap()
                .map(|b| {
                    let b = b.unwrap();
                    (b.height, b.hash, b.encoded)
                })
                .collect(),
            utxos: view.scan_utxos().unwrap().map(Result::unwrap).collect(),
            index: view
                .scan_address_index()
                .unwrap()
                .map(Result::unwrap)
                .collect(),
            txs: view.scan_txs().unwrap().map(Result::unwrap).collect(),
            unarchived: view.unarchived(usize::MAX).unwrap(),
            stats: StoreStats {
                map_size_bytes: 0,
                used_bytes: 0,
                ..view.stats().unwrap()
            },
        }
    }
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    tip: ChainTip,
    heights: Vec<Option<Hash>>,
    blocks: Vec<(u64, Hash, Vec<u8>)>,
    utxos: Vec<(OutPoint, UtxoEntry)>,
    index: Vec<(Address, OutPoint)>,
    txs: Vec<(Hash, TxRecord)>,
    unarchived: Vec<Hash>,
    stats: StoreStats,
}

fn sorted(mut txids: Vec<Hash>) -> Vec<Hash> {
    txids.sort();
    txids
}

#[test]
fn a_new_store_is_at_the_genesis() {
    let f = Fixture::new();
    let genesis = f.chain.spec.genesis_hash();
    assert_eq!((f.tip().hash, f.tip().height), (genesis, 0));
    assert_eq!(f.store.block_hash_at(0).unwrap(), Some(genesis));
    assert_eq!(f.store.block_hash_at(1).unwrap(), None);
    assert_eq!(f.store.block(&genesis).unwrap(), None);
    assert!(f.store.blocks_from(0, 10).unwrap().is_empty());
    let summary = f.store.check_chain_consistency().unwrap();
    assert_eq!((summary.archived, summary.reward_outputs), (0, 0));
}

#[test]
fn apply_then_undo_restores_exactly_the_previous_state() {
    let mut f = Fixture::new();
    let first = f.finalize(5);
    let at_genesis = f.snapshot();
    let one = f.block(&first[..2], 3, 0);
    f.store.apply_block(&one.commit()).unwrap();
    let with_one = f.snapshot();
    f.store.undo_tip(&one.hash).unwrap();
    assert_eq!(f.snapshot(), at_genesis);
    // Applying it again writes the very same state.
    f.store.apply_block(&one.commit()).unwrap();
    assert_eq!(f.snapshot(), with_one);

    let later = f.finalize(3);
    let at_one = f.snapshot();
    let two = f.apply(&sorted([later, first[2..].to_vec()].concat()), 2);
    let audited = audit(&f.store, &f.chain);
    assert_eq!(audited.minted_total, Amount(5 * 1_000));
    let undone = f.store.undo_tip(&two.hash).unwrap();
    assert_eq!(undone.tip, at_one.tip);
    // 6 archived txs and 2 reward outputs, 2 writes each, + 4.
    assert_eq!(undone.writes, 2 * 6 + 2 * 2 + 4);
    assert_eq!(f.snapshot(), at_one);
    audit(&f.store, &f.chain);
}

#[test]
fn undo_then_a_sibling_moves_only_archival_and_rewards() {
    let mut f = Fixture::new();
    let txids = f.finalize(4);
    let block = f.apply(&txids[..3], 2);
    let before = f.snapshot();
    f.store.undo_tip(&block.hash).unwrap();
    let sibling = f.block(&txids[1..], 1, 1);
    assert_ne!(sibling.hash, block.hash);
    f.store.apply_block(&sibling.commit()).unwrap();
    let after = f.snapshot();
    assert_eq!(after.tip.hash, sibling.hash);
    assert_eq!(after.unarchived, [txids[0]]);
    // Finality never moves: the same txs are recorded, spending the same outputs.
    let spends = |s: &Snapshot| -> Vec<(OutPoint, UtxoState)> {
        s.utxos
            .iter()
            .filter(|(op, _)| op.txid != block.reward_id && op.txid != sibling.reward_id)
            .map(|(op, e)| (*op, e.state))
            .collect()
    };
    assert_eq!(spends(&after), spends(&before));
    let tx_ids = |s: &Snapshot| s.txs.iter().map(|(t, _)| *t).collect::<Vec<_>>();
    assert_eq!(tx_ids(&after), tx_ids(&before));
    assert_eq!(f.store.utxo(&block.reward_outpoint(0)).unwrap(), None);
    audit(&f.store, &f.chain);
}

#[test]
fn apply_refuses_a_block_off_the_tip_with_nothing_written() {
    let mut f = Fixture::new();
    let genesis = f.tip();
    f.apply(&[], 1);
    let before = f.snapshot();
    // A second block at height 1: its parent is no longer the tip.
    let stale = TestBlock::on(&genesis, vec![], vec![], f.maturity, 9);
    let mut skipping = f.block(&[], 0, 0);
    skipping.height += 1;
    for block in [stale, skipping] {
        let err = f.store.apply_block(&block.commit()).unwrap_err();
        assert!(
            matches!(err, StoreError::BlockNotOnTip { tip_height: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("nothing written"), "{err}");
    }
    assert_eq!(f.snapshot(), before);
}

#[test]
fn apply_refuses_an_unfinalized_or_archived_txid_with_nothing_written() {
    let mut f = Fixture::new();
    let txids = f.finalize(3);
    let archiving = f.apply(&txids[..1], 1);
    let before = f.snapshot();
    let unknown = Hash::digest(b"never finalized");
    let refusals = [
        vec![txids[1], unknown],
        vec![txids[1], txids[0]],
        vec![txids[2], txids[2]],
    ];
    for archived in refusals {
        let block = f.block(&archived, 1, 0);
        let err = f.store.apply_block(&block.commit()).unwrap_err();
        match err {
            StoreError::ArchivesUnfinalized { txid, .. } => assert_eq!(txid, unknown),
            StoreError::AlreadyArchived { txid, by, .. } if txid == txids[0] => {
                assert_eq!(by, archiving.hash)
            }
            StoreError::AlreadyArchived {
                txid, by, height, ..
            } => {
                assert_eq!((txid, by, height), (txids[2], block.hash, 2))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(f.snapshot(), before);
    }
}

#[test]
fn unarchived_index_follows_finalize_apply_and_undo() {
    let mut f = Fixture::new();
    // Listed in finalization order, whatever the txids.
    let txids = f.finalize(4);
    assert_eq!(f.store.unarchived(usize::MAX).unwrap(), txids);
    assert_eq!(f.store.unarchived(2).unwrap(), txids[..2]);
    let block = f.apply(&[txids[3], txids[1]], 0);
    assert_eq!(
        f.store.unarchived(usize::MAX).unwrap(),
        [txids[0], txids[2]]
    );
    let status = |f: &Fixture, txid: &Hash| f.store.tx(txid).unwrap().unwrap().status;
    let archived = TxStatus::Archived {
        height: 1,
        block: block.hash,
    };
    assert_eq!(status(&f, &txids[1]), archived);
    assert_eq!(status(&f, &txids[0]), TxStatus::Finalized);
    let more = f.finalize(1);
    assert!(f.store.unarchived(usize::MAX).unwrap().contains(&more[0]));
    f.store.undo_tip(&block.hash).unwrap();
    // Undoing puts them back in their places.
    assert_eq!(
        f.store.unarchived(usize::MAX).unwrap(),
        [txids.clone(), more].concat()
    );
    assert_eq!(status(&f, &txids[1]), TxStatus::Finalized);
    audit(&f.store, &f.chain);
}

#[test]
fn immature_reward_is_refused_until_maturity_then_spendable() {
    let mut f = Fixture::new();
    let owner = f.chain.addresses()[0];
    let paid = TxOut {
        value: Amount::from_time(50).unwrap(),
        address: owner,
    };
    let block = TestBlock::on(&f.tip(), vec![], vec![paid], f.maturity, 0);
    f.store.apply_block(&block.commit()).unwrap();
    assert!(f.maturity > 1, "the devnet waits for maturity");
    let coin = (block.reward_outpoint(0), paid);
    let spend = f.chain.spend(&mut f.rng, &[coin], 1, f.chain.min_fee());
    let params = f.chain.spec.validation_params();
    let pool: Mempool<()> = Mempool::new(8, 4, 8);
    let spendable = |f: &Fixture| f.store.unspent_by_address(&owner, usize::MAX).unwrap();
    let genesis_coins = spendable(&f);
    let matures_at = block.matures_at_height;
    while f.tip().height < matures_at {
        certify_tip(&f);
        let tip = f.tip().height;
        let view = f.store.read().unwrap();
        let overlay = OverlayView {
            pool: &pool,
            base: &view,
        };
        assert_eq!(overlay.tip_height().unwrap(), tip);
        for result in [
            validate(&spend, &f.store, &params),
            validate(&spend, &view, &params),
            validate(&spend, &overlay, &params),
        ] {
            let err = result.unwrap_err();
            let immature = TxError::ImmatureReward {
                index: 0,
                outpoint: coin.0,
                matures_at,
                tip,
            };
            assert_eq!(err, immature);
            assert!(!err.is_sender_fault());
            let message = err.to_string();
            assert!(
                message.contains(&format!("matures at height {matures_at}"))
                    && message.contains(&format!("tip is at height {tip}")),
                "{message}"
            );
        }
        drop(view);
        // Listed and counted only once spendable.
        assert_eq!(spendable(&f), genesis_coins);
        assert_eq!(
            f.store.balance(&owner).unwrap(),
            Amount::from_time(4_000).unwrap()
        );
        f.apply(&[], 0);
    }
    certify_tip(&f);
    assert_eq!(
        validate(&spend, &f.store, &params).unwrap().txid,
        spend.txid()
    );
    assert!(spendable(&f).contains(&coin));
    f.store
        .apply_finalized(&[finalized(&spend, 64, 0)])
        .unwrap();
    assert!(!spendable(&f).contains(&coin));
    audit(&f.store, &f.chain);
}

#[test]
fn undo_refuses_anything_but_the_tip_and_a_spent_reward() {
    let mut f = Fixture::new();
    let genesis = f.tip().hash;
    assert!(matches!(
        f.store.undo_tip(&genesis),
        Err(StoreError::UndoGenesis { .. })
    ));
    let one = f.apply(&[], 1);
    let owner = f.chain.addresses()[1];
    let paid = TxOut {
        value: Amount::from_time(5).unwrap(),
        address: owner,
    };
    let two = TestBlock::on(&f.tip(), vec![], vec![paid], 0, 0);
    f.store.apply_block(&two.commit()).unwrap();
    let err = f.store.undo_tip(&one.hash).unwrap_err();
    assert!(
        matches!(err, StoreError::UndoNotTip { expected, tip } if expected == one.hash && tip.hash == two.hash),
        "{err:?}"
    );
    // Maturity 0: the reward is spendable at once, and once its spend is
    // final the block can no longer be undone.
    let coin = (two.reward_outpoint(0), paid);
    let spend = f.chain.spend(&mut f.rng, &[coin], 1, f.chain.min_fee());
    f.store
        .apply_finalized(&[finalized(&spend, 64, 0)])
        .unwrap();
    let before = f.snapshot();
    let err = f.store.undo_tip(&two.hash).unwrap_err();
    assert!(
        matches!(err, StoreError::RewardSpent { by, .. } if by == spend.txid()),
        "{err:?}"
    );
    assert!(err.to_string().contains("finality never moves"), "{err}");
    assert_eq!(f.snapshot(), before);
    audit(&f.store, &f.chain);
}

#[test]
fn blocks_are_read_by_hash_by_height_and_in_chain_order() {
    let mut f = Fixture::new();
    let blocks: Vec<TestBlock> = (0..4).map(|_| f.apply(&[], 1)).collect();
    for block in &blocks {
        assert_eq!(
            f.store.block_hash_at(block.height).unwrap(),
            Some(block.hash)
        );
        assert_eq!(
            f.store.block(&block.hash).unwrap(),
            Some(block.encoded.clone())
        );
        let record = f.store.block_record(&block.hash).unwrap().unwrap();
        assert_eq!(
            (record.height, record.parent.hash),
            (block.height, block.prev_hash)
        );
    }
    let heights = |from, max| -> Vec<u64> {
        let read = f.store.blocks_from(from, max).unwrap();
        read.iter().map(|b| b.height).collect()
    };
    assert_eq!(heights(0, 10), [1, 2, 3, 4]);
    assert_eq!(heights(2, 2), [2, 3]);
    assert!(heights(5, 10).is_empty());
    let tip = f.tip();
    assert_eq!((tip.height, tip.slot), (4, blocks[3].slot));
}

#[test]
fn reopen_keeps_the_chain_and_its_tip() {
    let mut f = Fixture::new();
    let txids = f.finalize(3);
    f.apply(&txids[..2], 2);
    f.apply(&txids[2..], 1);
    let before = f.snapshot();
    let f = f.reopen();
    assert_eq!(f.snapshot(), before);
    let summary = f.store.check_chain_consistency().unwrap();
    assert_eq!(
        (summary.tip.height, summary.archived, summary.reward_outputs),
        (2, 3, 3)
    );
}

/// Certifies the tip (rewards mature only under a certified block).
fn certify_tip(f: &Fixture) {
    let tip = f.tip();
    let record = timecoin::store::CertificateRecord {
        hash: tip.hash,
        weight: 1,
        certificate: Vec::new(),
    };
    f.store.put_certificate(tip.height, &record).unwrap();
}
