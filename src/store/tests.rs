//! Unit tests of the LMDB store: one per API and per refusal.

use super::*;
use crate::config::{ChainConfig, ChainSpec};
use crate::crypto::Keypair;
use crate::genesis::devnet_wallet_key;
use crate::ledger::{validate, TxError, UtxoEntry, UtxoState};
use crate::types::encoding::encode;
use crate::types::{Address, Amount, Hash, Network, OutPoint, TxOut};
use crate::wallet::{build_transfer, Spendable};
use tempfile::TempDir;

type Coin = (OutPoint, TxOut);

/// A devnet store in a temp dir, and the devnet wallet key that owns the
/// genesis' largest allocation.
struct Fixture {
    dir: TempDir,
    spec: ChainSpec,
    options: StoreOptions,
    store: Store,
    key: Keypair,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(devnet(), StoreOptions::default())
    }

    fn with(spec: ChainSpec, options: StoreOptions) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &spec, options).unwrap();
        Fixture {
            dir,
            spec,
            options,
            store,
            key: devnet_wallet_key(),
        }
    }

    /// Closes the store and opens the same datadir with `spec`.
    fn reopen_as(self, spec: &ChainSpec) -> Result<Fixture, StoreError> {
        let Fixture {
            dir,
            options,
            store,
            key,
            ..
        } = self;
        drop(store);
        let store = Store::open(dir.path(), spec, options)?;
        Ok(Fixture {
            dir,
            spec: spec.clone(),
            options,
            store,
            key,
        })
    }

    fn reopen(self) -> Fixture {
        let spec = self.spec.clone();
        self.reopen_as(&spec).unwrap()
    }

    fn wallet(&self) -> Address {
        Address::from_pubkey(&self.key.public())
    }

    fn genesis_coin(&self) -> Coin {
        let wallet = self.wallet();
        self.spec
            .genesis_outputs()
            .into_iter()
            .find(|(_, out)| out.address == wallet)
            .unwrap()
    }

    /// Spends `coins` into `n` outputs to the wallet that share the value
    /// left after the fee (the last one, the change, takes the remainder).
    fn spend(&self, coins: &[Coin], n: usize) -> Tx {
        let inputs: Vec<Spendable<'_>> = coins
            .iter()
            .map(|(outpoint, out)| Spendable {
                outpoint: *outpoint,
                value: out.value,
                key: &self.key,
            })
            .collect();
        let fee = self.spec.config.ledger.min_fee;
        let total = Amount::checked_sum(coins.iter().map(|(_, out)| out.value)).unwrap();
        let share = TxOut {
            value: Amount(total.checked_sub(fee).unwrap().units() / n as u64),
            address: self.wallet(),
        };
        build_transfer(
            &inputs,
            &vec![share; n - 1],
            fee,
            self.wallet(),
            self.spec.chain_id(),
        )
        .unwrap()
    }

    /// Everything the store holds, to compare before and after.
    fn dump(&self) -> Dump {
        let view = self.store.read().unwrap();
        Dump {
            utxos: view.scan_utxos().unwrap().map(Result::unwrap).collect(),
            index: view
                .scan_address_index()
                .unwrap()
                .map(Result::unwrap)
                .collect(),
            txs: view.scan_txs().unwrap().map(Result::unwrap).collect(),
            mempool: view.mempool_load(usize::MAX).unwrap(),
            accepted: view.accepted_load(usize::MAX).unwrap(),
            stats: StoreStats {
                map_size_bytes: 0,
                used_bytes: 0,
                ..view.stats().unwrap()
            },
        }
    }
}

#[derive(Debug, PartialEq)]
struct Dump {
    utxos: Vec<(OutPoint, UtxoEntry)>,
    index: Vec<(Address, OutPoint)>,
    txs: Vec<(Hash, TxRecord)>,
    mempool: Vec<Tx>,
    accepted: Vec<Tx>,
    stats: StoreStats,
}

fn devnet() -> ChainSpec {
    ChainConfig::builtin(Network::Devnet).unwrap()
}

fn coins(tx: &Tx) -> Vec<Coin> {
    (0..tx.outputs.len() as u32)
        .map(|vout| (tx.outpoint(vout), tx.outputs[vout as usize]))
        .collect()
}

fn finalized(tx: &Tx) -> FinalizedTx {
    FinalizedTx {
        tx: tx.clone(),
        proof: tx.txid().0.repeat(4),
        finalized_at_ms: 1_764_028_800_000,
    }
}

fn finalized_all(txs: &[&Tx]) -> Vec<FinalizedTx> {
    txs.iter().map(|tx| finalized(tx)).collect()
}

/// Commits the acceptance of `txs` alone; returns the report.
fn accept(f: &Fixture, txs: &[Tx]) -> BatchReport {
    let batch = LedgerBatch {
        accepted: txs,
        ..LedgerBatch::default()
    };
    f.store.commit_batch(&batch).unwrap()
}

fn unknown_coin() -> Coin {
    let outpoint = OutPoint {
        txid: Hash::digest(b"never created"),
        vout: 0,
    };
    let out = TxOut {
        value: Amount::from_time(5).unwrap(),
        address: Address::from_pubkey(&devnet_wallet_key().public()),
    };
    (outpoint, out)
}

#[test]
fn new_datadir_holds_meta_and_every_genesis_output() {
    let f = Fixture::new();
    let genesis = f.spec.genesis_outputs();
    for (outpoint, output) in &genesis {
        let entry = f.store.utxo(outpoint).unwrap().unwrap();
        assert_eq!(entry.output, *output);
        assert_eq!(entry.state, UtxoState::Unspent);
    }
    let stats = f.store.stats().unwrap();
    assert_eq!(stats.utxos, genesis.len() as u64);
    assert_eq!(stats.unspent, genesis.len() as u64);
    assert_eq!(stats.finalized_count, 0);
    assert_eq!(
        f.store.balance(&f.wallet()).unwrap(),
        Amount::from_time(1_000_000).unwrap()
    );
}

#[test]
fn reopen_keeps_every_record() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 3);
    f.store.apply_finalized(&[finalized(&tx)]).unwrap();
    let pending = f.spend(&coins(&tx)[..1], 1);
    f.store.mempool_put(std::slice::from_ref(&pending)).unwrap();
    accept(&f, &[pending]);
    let before = f.dump();
    let f = f.reopen();
    assert_eq!(f.dump(), before);
}

#[test]
fn testnet_datadir_opened_as_devnet_is_refused_naming_both() {
    let f = Fixture::with(
        ChainConfig::builtin(Network::Testnet).unwrap(),
        StoreOptions::default(),
    );
    let err = f.reopen_as(&devnet()).err().unwrap();
    assert!(matches!(err, StoreError::WrongChain { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("chain 2 (testnet)"), "{message}");
    assert!(message.contains("chain 3 (devnet)"), "{message}");
}

#[test]
fn datadir_of_another_genesis_is_refused_naming_both() {
    let f = Fixture::new();
    let mut other = devnet();
    other.config.genesis.timestamp += 1;
    let (found, expected) = (f.spec.genesis_hash(), other.genesis_hash());
    let err = f.reopen_as(&other).err().unwrap();
    assert!(matches!(err, StoreError::WrongGenesis { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&found.to_string()), "{message}");
    assert!(message.contains(&expected.to_string()), "{message}");
}

#[test]
fn datadir_of_another_schema_is_refused_naming_both() {
    // 1: before the vote-safety record; 2: before checkpoint blocks; 99:
    // from a later build.
    for found in [1u32, 2, 99] {
        let f = Fixture::new();
        f.store
            .put_raw(schema::META, schema::META_SCHEMA_VERSION, &encode(&found));
        let spec = f.spec.clone();
        let err = f.reopen_as(&spec).err().unwrap();
        assert!(
            matches!(
                err,
                StoreError::WrongSchema {
                    found: f,
                    expected: schema::SCHEMA_VERSION,
                    ..
                } if f == found
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("version {found}")),
            "{err}"
        );
    }
}

#[test]
fn batch_spending_a_missing_outpoint_aborts_with_nothing_written() {
    let f = Fixture::new();
    let valid = f.spend(&[f.genesis_coin()], 2);
    let bad = f.spend(&[unknown_coin()], 1);
    let before = f.dump();
    let err = f
        .store
        .apply_finalized(&finalized_all(&[&valid, &bad]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::MissingOutpoint { txid, outpoint }
            if txid == bad.txid() && outpoint == unknown_coin().0),
        "{err:?}"
    );
    assert_eq!(f.dump(), before);
    assert_eq!(f.store.tx(&valid.txid()).unwrap(), None);
}

#[test]
fn batch_spending_a_spent_outpoint_aborts_with_nothing_written() {
    let f = Fixture::new();
    let first = f.spend(&[f.genesis_coin()], 2);
    f.store.apply_finalized(&[finalized(&first)]).unwrap();
    let child = f.spend(&coins(&first)[..1], 1);
    let conflict = f.spend(&[f.genesis_coin()], 5);
    let before = f.dump();
    let err = f
        .store
        .apply_finalized(&finalized_all(&[&child, &conflict]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadySpent { txid, by, .. }
            if txid == conflict.txid() && by == first.txid()),
        "{err:?}"
    );
    assert_eq!(f.dump(), before);
}

#[test]
fn double_spend_inside_one_batch_aborts_it() {
    let f = Fixture::new();
    let a = f.spend(&[f.genesis_coin()], 1);
    let b = f.spend(&[f.genesis_coin()], 2);
    let before = f.dump();
    let err = f
        .store
        .apply_finalized(&finalized_all(&[&a, &b]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadySpent { by, .. } if by == a.txid()),
        "{err:?}"
    );
    assert_eq!(f.dump(), before);
}

/// Three txs, each spending outputs of the one before.
fn spend_chain_of_three(f: &Fixture) -> [Tx; 3] {
    let a = f.spend(&[f.genesis_coin()], 2);
    let b = f.spend(&coins(&a), 2);
    let c = f.spend(&coins(&b)[1..], 1);
    [a, b, c]
}

#[test]
fn later_txs_of_a_batch_may_spend_outputs_of_earlier_ones() {
    let f = Fixture::new();
    let [a, b, c] = spend_chain_of_three(&f);
    let report = f
        .store
        .apply_finalized(&finalized_all(&[&a, &b, &c]))
        .unwrap();
    assert_eq!(report.applied, 3);
    for (sequence, tx) in [&a, &b, &c].into_iter().enumerate() {
        assert_eq!(
            f.store.tx(&tx.txid()).unwrap().unwrap().sequence,
            sequence as u64
        );
    }
    assert_eq!(f.store.stats().unwrap().finalized_count, 3);
    let unspent: Vec<Coin> = f.store.unspent_by_address(&f.wallet(), 100).unwrap();
    let mut expected = vec![coins(&b)[0]];
    expected.extend(coins(&c));
    expected.sort_by_key(|(outpoint, _)| *outpoint);
    assert_eq!(unspent, expected);
}

#[test]
fn recent_proofs_come_in_finalization_order_within_the_range_and_limit() {
    let f = Fixture::new();
    let [a, b, c] = spend_chain_of_three(&f);
    let view = f.store.read().unwrap();
    assert_eq!(view.finalized_count().unwrap(), 0);
    assert!(view.proofs_in(0, 10, 10).unwrap().is_empty());
    drop(view);
    let batch = finalized_all(&[&a, &b, &c]);
    f.store.apply_finalized(&batch).unwrap();
    let view = f.store.read().unwrap();
    assert_eq!(view.finalized_count().unwrap(), 3);
    let all = view.proofs_in(0, 3, 10).unwrap();
    let expected: Vec<(u64, Vec<u8>)> = (0u64..)
        .zip(batch.iter().map(|t| t.proof.clone()))
        .collect();
    assert_eq!(all, expected);
    assert_eq!(view.proofs_in(1, 3, 1).unwrap(), expected[1..2]);
    assert_eq!(view.proofs_in(1, 2, 10).unwrap(), expected[1..2]);
    assert!(view.proofs_in(3, 10, 10).unwrap().is_empty());
}

#[test]
fn reapplying_recorded_txs_is_a_no_op() {
    let f = Fixture::new();
    let a = f.spend(&[f.genesis_coin()], 2);
    let b = f.spend(&coins(&a)[..1], 1);
    let batch = finalized_all(&[&a, &b]);
    f.store.apply_finalized(&batch).unwrap();
    let after_first = f.dump();
    let replay = f.store.apply_finalized(&batch).unwrap();
    assert_eq!(
        replay,
        ApplyReport {
            applied: 0,
            already_recorded: 2,
            writes: 0,
            map_grown_to_bytes: None
        }
    );
    assert_eq!(f.dump(), after_first);
    let c = f.spend(&coins(&a)[1..], 1);
    let mixed = f.store.apply_finalized(&finalized_all(&[&b, &c])).unwrap();
    assert_eq!((mixed.applied, mixed.already_recorded), (1, 1));
}

#[test]
fn apply_records_tx_and_proof_clears_mempool_and_counts_writes() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 2);
    f.store.mempool_put(std::slice::from_ref(&tx)).unwrap();
    let report = f.store.apply_finalized(&[finalized(&tx)]).unwrap();
    // 1 input, 2 outputs: 2·1 + 2·2 + txs + proofs + unarchived
    // + mempool delete + meta.
    assert_eq!(report.writes, 2 + 4 + 3 + 1 + 1);
    let record = f.store.tx(&tx.txid()).unwrap().unwrap();
    assert_eq!(
        record,
        TxRecord {
            status: TxStatus::Finalized,
            sequence: 0,
            finalized_at_ms: finalized(&tx).finalized_at_ms,
            tx: tx.clone(),
        }
    );
    assert_eq!(
        f.store.proof(&tx.txid()).unwrap(),
        Some(finalized(&tx).proof)
    );
    assert_eq!(f.store.proof(&Hash::ZERO).unwrap(), None);
    assert!(f.store.mempool_load(10).unwrap().is_empty());
    let spent = f.store.utxo(&f.genesis_coin().0).unwrap().unwrap();
    assert_eq!(spent.state, UtxoState::Spent { by: tx.txid() });
}

#[test]
fn address_index_holds_only_unspent_outputs_and_honours_the_limit() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 4);
    f.store.apply_finalized(&[finalized(&tx)]).unwrap();
    let all = f.store.unspent_by_address(&f.wallet(), 100).unwrap();
    let mut expected = coins(&tx);
    expected.sort_by_key(|(outpoint, _)| *outpoint);
    assert_eq!(all, expected);
    assert_eq!(
        f.store.unspent_by_address(&f.wallet(), 2).unwrap(),
        all[..2]
    );
    let total = Amount::checked_sum(all.iter().map(|(_, out)| out.value)).unwrap();
    assert_eq!(f.store.balance(&f.wallet()).unwrap(), total);
    let nobody = Address([0xee; 20]);
    assert_eq!(f.store.balance(&nobody).unwrap(), Amount::ZERO);
    assert!(f.store.unspent_by_address(&nobody, 10).unwrap().is_empty());
}

#[test]
fn mempool_round_trips_in_admission_order_and_load_is_bounded() {
    let f = Fixture::new();
    let pending: Vec<Tx> = (1..=5).map(|n| f.spend(&[f.genesis_coin()], n)).collect();
    assert_eq!(f.store.mempool_put(&pending[..3]).unwrap(), 3);
    // A tx stored again keeps its place and is not duplicated.
    f.store.mempool_put(&pending[..1]).unwrap();
    f.store.mempool_put(&pending[3..]).unwrap();
    assert_eq!(f.store.mempool_load(usize::MAX).unwrap(), pending);
    assert_eq!(f.store.mempool_load(3).unwrap(), pending[..3]);
    let gone = [pending[0].txid(), pending[1].txid()];
    assert_eq!(f.store.mempool_remove(&gone).unwrap(), 2);
    assert_eq!(f.store.mempool_remove(&gone).unwrap(), 0);
    assert_eq!(f.store.stats().unwrap().mempool, 3);
}

#[test]
fn mempool_removal_by_txid_works_after_reopen_and_new_puts_go_last() {
    let f = Fixture::new();
    let pending: Vec<Tx> = (1..=4).map(|n| f.spend(&[f.genesis_coin()], n)).collect();
    f.store.mempool_put(&pending[..3]).unwrap();
    f.store.mempool_remove(&[pending[2].txid()]).unwrap();
    let f = f.reopen();
    assert_eq!(f.store.mempool_remove(&[pending[0].txid()]).unwrap(), 1);
    f.store.mempool_put(&pending[3..]).unwrap();
    let expected = [pending[1].clone(), pending[3].clone()];
    assert_eq!(f.store.mempool_load(10).unwrap(), expected);
    assert_eq!(f.store.index_lens().0, 2);
}

#[test]
fn mempool_put_and_removal_in_one_batch_leave_nothing() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 1);
    let report = f
        .store
        .commit_batch(&LedgerBatch {
            mempool_puts: std::slice::from_ref(&tx),
            mempool_removes: &[tx.txid()],
            ..LedgerBatch::default()
        })
        .unwrap();
    assert_eq!(report.mempool_removed, 1);
    assert!(f.store.mempool_load(10).unwrap().is_empty());
    assert_eq!(f.store.index_lens().0, 0);
}

#[test]
fn mempool_key_that_is_not_sequence_and_txid_fails_the_open() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 1);
    f.store.put_raw(schema::MEMPOOL, &tx.txid().0, &tx.encode());
    let spec = f.spec.clone();
    assert!(matches!(
        f.reopen_as(&spec),
        Err(StoreError::Corrupt {
            table: "mempool",
            ..
        })
    ));
}

#[test]
fn acceptance_record_survives_reopen_and_goes_with_finalization() {
    let f = Fixture::new();
    let split = f.spend(&[f.genesis_coin()], 2);
    f.store.apply_finalized(&[finalized(&split)]).unwrap();
    // Two inputs: one record each, loaded as one tx.
    let tx = f.spend(&coins(&split), 1);
    let report = accept(&f, std::slice::from_ref(&tx));
    assert_eq!((report.accepted, report.writes), (vec![tx.txid()], 2));
    let f = f.reopen();
    assert_eq!(
        f.store.accepted_load(10).unwrap(),
        std::slice::from_ref(&tx)
    );
    assert_eq!(f.store.stats().unwrap().accepted, 2);
    assert_eq!(f.store.index_lens().1, 2);
    let applied = f.store.apply_finalized(&[finalized(&tx)]).unwrap();
    // 2 inputs, 1 output: 2·2 + 2·1 + txs + proofs + unarchived + meta,
    // + 2 record deletes.
    assert_eq!(applied.writes, 4 + 2 + 3 + 1 + 2);
    assert!(f.store.accepted_load(10).unwrap().is_empty());
    assert_eq!(f.store.stats().unwrap().accepted, 0);
    assert_eq!(f.store.index_lens().1, 0);
}

#[test]
fn finalizing_a_conflict_deletes_the_losers_acceptance_record() {
    let f = Fixture::new();
    let (ours, winner) = (
        f.spend(&[f.genesis_coin()], 1),
        f.spend(&[f.genesis_coin()], 2),
    );
    accept(&f, std::slice::from_ref(&ours));
    // Removing the loser from the mempool keeps the record: only a durable
    // spend of the outpoint ends it.
    f.store.mempool_remove(&[ours.txid()]).unwrap();
    assert_eq!(f.store.accepted_load(10).unwrap(), [ours]);
    f.store.apply_finalized(&[finalized(&winner)]).unwrap();
    assert!(f.store.accepted_load(10).unwrap().is_empty());
}

#[test]
fn a_second_spender_of_an_accepted_outpoint_is_refused_and_not_recorded() {
    let f = Fixture::new();
    let coin = f.genesis_coin();
    let (first, second) = (f.spend(&[coin], 1), f.spend(&[coin], 2));
    accept(&f, std::slice::from_ref(&first));
    assert_eq!(
        accept(&f, std::slice::from_ref(&first)).accepted,
        [first.txid()]
    );
    let report = accept(&f, std::slice::from_ref(&second));
    assert!(report.accepted.is_empty());
    assert_eq!(
        report.refused_acceptances,
        [RefusedAcceptance {
            txid: second.txid(),
            outpoint: coin.0,
            holder: first.txid(),
        }]
    );
    assert!(report.refused_acceptances[0]
        .to_string()
        .contains("will not vote"));
    assert_eq!(f.store.accepted_load(10).unwrap(), [first]);
}

#[test]
fn acceptance_of_a_spent_outpoint_is_not_recorded() {
    let f = Fixture::new();
    let coin = f.genesis_coin();
    let (winner, loser) = (f.spend(&[coin], 1), f.spend(&[coin], 2));
    // Accepted and finalized in one batch: the record would guard nothing.
    let report = f
        .store
        .commit_batch(&LedgerBatch {
            finalized: &[finalized(&winner)],
            accepted: &[winner.clone(), loser.clone()],
            ..LedgerBatch::default()
        })
        .unwrap();
    assert!(report.accepted.is_empty());
    assert_eq!(
        report.refused_acceptances,
        [RefusedAcceptance {
            txid: loser.txid(),
            outpoint: coin.0,
            holder: winner.txid(),
        }]
    );
    assert_eq!(f.store.stats().unwrap().accepted, 0);
}

#[test]
fn one_batch_commits_puts_finalized_acceptances_and_removals_together() {
    let f = Fixture::new();
    let split = f.spend(&[f.genesis_coin()], 3);
    let [a, b, c] = [0, 1, 2].map(|i| f.spend(&coins(&split)[i..=i], 1));
    f.store.mempool_put(std::slice::from_ref(&c)).unwrap();
    let puts = [split.clone(), a.clone(), b.clone()];
    let report = f
        .store
        .commit_batch(&LedgerBatch {
            mempool_puts: &puts,
            finalized: &[finalized(&split)],
            accepted: std::slice::from_ref(&a),
            mempool_removes: &[b.txid(), c.txid()],
        })
        .unwrap();
    assert_eq!(report.finalized.applied, 1);
    assert_eq!(report.accepted, [a.txid()]);
    assert_eq!(report.mempool_removed, 2);
    // Puts first: the finalization and the removal of the same batch win.
    assert_eq!(f.store.mempool_load(10).unwrap(), std::slice::from_ref(&a));
    assert_eq!(f.store.accepted_load(10).unwrap(), [a]);
    assert!(f.store.tx(&split.txid()).unwrap().is_some());
    assert_eq!(
        f.store.commit_batch(&LedgerBatch::default()).unwrap(),
        BatchReport::default()
    );
}

#[test]
fn refused_batch_writes_no_acceptance_either() {
    let f = Fixture::new();
    let pending = f.spend(&[f.genesis_coin()], 1);
    let bad = f.spend(&[unknown_coin()], 1);
    let before = f.dump();
    let err = f
        .store
        .commit_batch(&LedgerBatch {
            mempool_puts: std::slice::from_ref(&pending),
            finalized: &[finalized(&bad)],
            accepted: std::slice::from_ref(&pending),
            ..LedgerBatch::default()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::MissingOutpoint { .. }), "{err:?}");
    assert_eq!(f.dump(), before);
}

#[test]
fn acceptance_record_under_an_outpoint_it_does_not_spend_is_corrupt() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 1);
    f.store.put_raw(
        schema::ACCEPTED,
        &schema::outpoint_key(&unknown_coin().0),
        &tx.encode(),
    );
    assert!(matches!(
        f.store.accepted_load(10),
        Err(StoreError::Corrupt {
            table: "accepted",
            ..
        })
    ));
}

#[test]
fn corrupt_utxo_record_is_a_typed_error_not_a_panic() {
    let f = Fixture::new();
    let (outpoint, _) = f.genesis_coin();
    let key = schema::outpoint_key(&outpoint);
    f.store.put_raw(schema::UTXOS, &key, &[0xff; 7]);
    let err = f.store.utxo(&outpoint).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "utxos", key: k, .. } if *k == hex::encode(key)),
        "{err:?}"
    );
    // The same damage reaches validation as a view error, and apply refuses.
    let tx = f.spend(&[f.genesis_coin()], 1);
    let params = f.spec.validation_params();
    assert!(matches!(
        validate(&tx, &f.store, &params),
        Err(TxError::View(_))
    ));
    assert!(matches!(
        f.store.apply_finalized(&[finalized(&tx)]),
        Err(StoreError::Corrupt { table: "utxos", .. })
    ));
    assert!(matches!(
        f.store.balance(&f.wallet()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn oversized_utxo_record_is_refused_before_decoding() {
    let f = Fixture::new();
    let (outpoint, _) = f.genesis_coin();
    f.store
        .put_raw(schema::UTXOS, &schema::outpoint_key(&outpoint), &[0; 4096]);
    let err = f.store.utxo(&outpoint).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn corrupt_meta_record_is_refused_at_open() {
    let f = Fixture::new();
    f.store.put_raw(schema::META, schema::META_CHAIN_ID, b"xx");
    let spec = f.spec.clone();
    let err = f.reopen_as(&spec).err().unwrap();
    assert!(
        matches!(err, StoreError::Corrupt { table: "meta", .. }),
        "{err:?}"
    );
}

#[test]
fn mempool_record_under_another_txid_is_corrupt() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 1);
    let key = schema::sequenced_key(0, &Hash([7; 32]));
    f.store.put_raw(schema::MEMPOOL, &key, &tx.encode());
    assert!(matches!(
        f.store.mempool_load(10),
        Err(StoreError::Corrupt {
            table: "mempool",
            ..
        })
    ));
}

#[test]
fn address_index_entry_without_its_output_is_corrupt() {
    let f = Fixture::new();
    let (outpoint, _) = unknown_coin();
    f.store.put_raw(
        schema::ADDR_UTXOS,
        &schema::addr_utxo_key(&f.wallet(), &outpoint),
        &[],
    );
    let err = f.store.balance(&f.wallet()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "addr_utxos",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn garbage_data_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("chain")).unwrap();
    std::fs::write(dir.path().join("chain/data.mdb"), vec![0xab; 64 * 1024]).unwrap();
    let err = Store::open(dir.path(), &devnet(), StoreOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Lmdb { .. }), "{err:?}");
}

#[test]
fn oversized_proof_is_refused_with_nothing_written() {
    let f = Fixture::new();
    let tx = f.spend(&[f.genesis_coin()], 1);
    let mut big = finalized(&tx);
    big.proof = vec![0; schema::PROOFS.max_value_bytes + 1];
    let before = f.dump();
    let err = f.store.apply_finalized(&[big]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                what: "finality proof",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(f.dump(), before);
}

/// 300 single-output spends with 1.5 KB proofs: about 1 MB of records.
fn large_batch(f: &Fixture) -> Vec<FinalizedTx> {
    let split = f.spend(&[f.genesis_coin()], 300);
    let mut batch = vec![finalized(&split)];
    for coin in coins(&split) {
        let mut spend = finalized(&f.spend(&[coin], 1));
        spend.proof = vec![0x5a; 1500];
        batch.push(spend);
    }
    batch
}

const SMALL_MAP: u64 = 256 * 1024;

#[test]
fn full_map_grows_and_the_batch_commits() {
    let options = StoreOptions {
        map_size_bytes: SMALL_MAP,
        max_map_size_bytes: 64 << 20,
    };
    let f = Fixture::with(devnet(), options);
    let batch = large_batch(&f);
    let report = f.store.apply_finalized(&batch).unwrap();
    assert_eq!(report.applied, batch.len());
    let grown = report.map_grown_to_bytes.unwrap();
    assert!(grown > SMALL_MAP);
    assert_eq!(f.store.stats().unwrap().map_size_bytes, grown);
}

#[test]
fn full_map_at_its_limit_is_map_full_and_nothing_is_written() {
    let options = StoreOptions {
        map_size_bytes: SMALL_MAP,
        max_map_size_bytes: SMALL_MAP,
    };
    let f = Fixture::with(devnet(), options);
    let batch = large_batch(&f);
    let before = f.dump();
    let err = f.store.apply_finalized(&batch).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::MapFull {
                map_size_bytes: SMALL_MAP,
                max_map_size_bytes: SMALL_MAP
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("larger map size"), "{err}");
    assert_eq!(f.dump(), before);
    // The same datadir with room to grow takes the batch.
    let Fixture {
        dir, spec, store, ..
    } = f;
    drop(store);
    let store = Store::open(dir.path(), &spec, StoreOptions::default()).unwrap();
    assert_eq!(store.apply_finalized(&batch).unwrap().applied, batch.len());
}

#[test]
fn read_view_is_one_consistent_snapshot() {
    let f = Fixture::new();
    let (genesis, _) = f.genesis_coin();
    let tx = f.spend(&[f.genesis_coin()], 1);
    let view = f.store.read().unwrap();
    // Another thread commits while this one holds the view (the documented rule).
    std::thread::scope(|s| {
        s.spawn(|| f.store.apply_finalized(&[finalized(&tx)]).unwrap())
            .join()
            .unwrap();
    });
    assert_eq!(
        view.utxo(&genesis).unwrap().unwrap().state,
        UtxoState::Unspent
    );
    assert_eq!(view.tx(&tx.txid()).unwrap(), None);
    drop(view);
    assert_eq!(
        f.store.utxo(&genesis).unwrap().unwrap().state,
        UtxoState::Spent { by: tx.txid() }
    );
}

#[test]
fn store_and_read_view_serve_ledger_validation() {
    let f = Fixture::new();
    let params = f.spec.validation_params();
    let tx = f.spend(&[f.genesis_coin()], 1);
    assert_eq!(validate(&tx, &f.store, &params).unwrap().txid, tx.txid());
    assert!(validate(&tx, &f.store.read().unwrap(), &params).is_ok());
    f.store.apply_finalized(&[finalized(&tx)]).unwrap();
    let again = f.spend(&[f.genesis_coin()], 2);
    let view = f.store.read().unwrap();
    assert!(matches!(
        validate(&again, &view, &params),
        Err(TxError::AlreadySpent { by, .. }) if by == tx.txid()
    ));
}

#[test]
fn stats_count_every_table() {
    let f = Fixture::new();
    let genesis_outputs = f.spec.genesis_outputs().len() as u64;
    let tx = f.spend(&[f.genesis_coin()], 2);
    f.store.apply_finalized(&[finalized(&tx)]).unwrap();
    f.store
        .mempool_put(&[f.spend(&coins(&tx)[..1], 1)])
        .unwrap();
    let stats = f.store.stats().unwrap();
    assert_eq!(
        stats,
        StoreStats {
            utxos: genesis_outputs + 2,
            unspent: genesis_outputs - 1 + 2,
            txs: 1,
            proofs: 1,
            mempool: 1,
            accepted: 0,
            blocks: 0,
            heights: 1,
            unarchived: 1,
            finalized_count: 1,
            ..stats
        }
    );
    assert!(stats.used_bytes > 0 && stats.used_bytes <= stats.map_size_bytes);
}

#[test]
fn store_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}

/// Applies a block on the tip archiving `archived` and paying the wallet
/// one immature reward output; returns its hash.
fn apply_block(f: &Fixture, archived: &[Hash]) -> Hash {
    let tip = f.store.tip().unwrap();
    let encoded = encode(&(tip.hash, archived, "test block"));
    let hash = Hash::digest(&encoded);
    let reward = [TxOut {
        value: Amount(1_000),
        address: f.wallet(),
    }];
    f.store
        .apply_block(&BlockCommit {
            hash,
            height: tip.height + 1,
            slot: tip.slot + 1,
            prev_hash: tip.hash,
            encoded: &encoded,
            archived,
            reward_id: reward_id(&hash),
            reward_outputs: &reward,
            matures_at_height: tip.height + 11,
        })
        .unwrap();
    hash
}

fn reward_id(block: &Hash) -> Hash {
    Hash::of(&("reward", block))
}

/// A store with 3 blocks, the second archiving `archived`; `pending` is
/// finalized and archived by none.
struct Chain {
    f: Fixture,
    blocks: Vec<Hash>,
    archived: Hash,
    pending: Hash,
}

fn chain_of_three() -> Chain {
    let f = Fixture::new();
    let split = f.spend(&[f.genesis_coin()], 2);
    let (left, right) = (
        f.spend(&coins(&split)[..1], 1),
        f.spend(&coins(&split)[1..], 1),
    );
    f.store
        .apply_finalized(&finalized_all(&[&split, &left, &right]))
        .unwrap();
    let first = apply_block(&f, &[split.txid(), right.txid()]);
    let second = apply_block(&f, &[left.txid()]);
    let third = apply_block(&f, &[]);
    let pending = f.spend(&coins(&left), 1);
    f.store.apply_finalized(&[finalized(&pending)]).unwrap();
    f.store.check_chain_consistency().unwrap();
    Chain {
        f,
        blocks: vec![first, second, third],
        archived: left.txid(),
        pending: pending.txid(),
    }
}

#[test]
fn reopen_reads_the_tip_without_replaying_the_chain() {
    let c = chain_of_three();
    // Damage the first block: a replay would trip over it, a tip lookup not.
    c.f.store
        .put_raw(schema::BLOCK_RECORDS, &c.blocks[0].0, b"garbage");
    c.f.store.delete_raw(schema::BLOCKS, &c.blocks[0].0);
    let f = c.f.reopen();
    let tip = f.store.tip().unwrap();
    assert_eq!((tip.hash, tip.height), (c.blocks[2], 3));
    let err = f.store.check_chain_consistency().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "block_records",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn chain_check_names_the_table_of_each_kind_of_damage() {
    type Damage = fn(&Chain);
    let damages: [(&str, Damage); 7] = [
        ("heights", |c| {
            c.f.store
                .delete_raw(schema::HEIGHTS, &schema::height_key(2))
        }),
        ("meta", |c| {
            let tip = ChainTip {
                hash: c.blocks[1],
                height: 2,
                slot: 0,
            };
            c.f.store
                .put_raw(schema::META, schema::META_TIP, &encode(&tip));
        }),
        ("txs", |c| {
            let mut record = c.f.store.tx(&c.archived).unwrap().unwrap();
            record.status = TxStatus::Finalized;
            c.f.store
                .put_raw(schema::TXS, &c.archived.0, &encode(&record));
        }),
        ("unarchived", |c| {
            let sequence = c.f.store.tx(&c.pending).unwrap().unwrap().sequence;
            let key = schema::sequenced_key(sequence, &c.pending);
            c.f.store.delete_raw(schema::UNARCHIVED, &key)
        }),
        ("unarchived", |c| {
            let sequence = c.f.store.tx(&c.archived).unwrap().unwrap().sequence;
            let key = schema::sequenced_key(sequence, &c.archived);
            c.f.store.put_raw(schema::UNARCHIVED, &key, &[])
        }),
        ("utxos", |c| {
            let reward = OutPoint {
                txid: reward_id(&c.blocks[1]),
                vout: 0,
            };
            c.f.store
                .delete_raw(schema::UTXOS, &schema::outpoint_key(&reward));
        }),
        ("utxos", |c| {
            let stray = OutPoint {
                txid: Hash::digest(b"no block pays this"),
                vout: 0,
            };
            let entry = UtxoEntry {
                output: c.f.genesis_coin().1,
                state: UtxoState::Immature { matures_at: 1 },
            };
            let key = schema::outpoint_key(&stray);
            c.f.store.put_raw(schema::UTXOS, &key, &encode(&entry));
        }),
    ];
    for (table, damage) in damages {
        let c = chain_of_three();
        damage(&c);
        match c.f.store.check_chain_consistency() {
            Err(StoreError::Corrupt { table: found, .. }) if found == table => {}
            other => panic!("damage to {table} reported as {other:?}"),
        }
    }
}

#[test]
fn oversized_block_is_refused_before_any_write() {
    let f = Fixture::new();
    let tip = f.store.tip().unwrap();
    let encoded = vec![0u8; schema::BLOCKS.max_value_bytes + 1];
    let block = BlockCommit {
        hash: Hash::digest(b"huge"),
        height: 1,
        slot: tip.slot + 1,
        prev_hash: tip.hash,
        encoded: &encoded,
        archived: &[],
        reward_id: Hash::ZERO,
        reward_outputs: &[],
        matures_at_height: 1,
    };
    let err = f.store.apply_block(&block).unwrap_err();
    assert!(matches!(err, StoreError::BlockTooLarge { .. }), "{err:?}");
    assert_eq!(f.store.tip().unwrap(), tip);
}

#[test]
fn a_safety_halt_survives_reopen_until_cleared_and_its_evidence_stays() {
    let f = Fixture::new();
    assert_eq!(f.store.safety_halt().unwrap(), None);
    let record = schema::SafetyViolationRecord {
        outpoint: f.genesis_coin().0,
        finalized: Hash::digest(b"a"),
        conflicting: Hash::digest(b"b"),
        finalized_proof: Some(vec![1, 2, 3]),
        conflicting_proof: vec![4, 5],
        detected_at_ms: 77,
    };
    f.store.put_safety_halt(&record).unwrap();
    let f = f.reopen();
    assert_eq!(f.store.safety_halt().unwrap(), Some(record.clone()));
    assert!(f.store.clear_safety_halt().unwrap());
    assert!(!f.store.clear_safety_halt().unwrap());
    let f = f.reopen();
    assert_eq!(f.store.safety_halt().unwrap(), None);
    // A later violation halts again.
    f.store.put_safety_halt(&record).unwrap();
    assert!(f.store.safety_halt().unwrap().is_some());
}

#[test]
fn window_evidence_is_kept_once_per_key_and_capped_per_voter() {
    let f = Fixture::new();
    let voter = f.key.public();
    let outpoint = |vout| OutPoint {
        txid: Hash::digest(b"coin"),
        vout,
    };
    assert!(f
        .store
        .put_window_evidence(&voter, &outpoint(0), b"e0")
        .unwrap());
    assert!(!f
        .store
        .put_window_evidence(&voter, &outpoint(0), b"e0")
        .unwrap());
    for vout in 1..crate::finality::MAX_WINDOW_EVIDENCE_PER_VOTER as u32 {
        assert!(f
            .store
            .put_window_evidence(&voter, &outpoint(vout), b"e")
            .unwrap());
    }
    assert!(!f
        .store
        .put_window_evidence(&voter, &outpoint(99), b"e")
        .unwrap());
    let other = Keypair::from_seed_label("other").public();
    assert!(f
        .store
        .put_window_evidence(&other, &outpoint(99), b"o")
        .unwrap());
    let f = f.reopen();
    let listed = f.store.read().unwrap().window_evidence(100).unwrap();
    assert_eq!(
        listed.len(),
        crate::finality::MAX_WINDOW_EVIDENCE_PER_VOTER + 1
    );
}

/// The block builder lists accused voters with one seek each and reads a
/// voter's pieces alone, however many another voter has.
#[test]
fn evidence_is_listed_by_accused_voter() {
    let f = Fixture::new();
    let [a, b, c] = ["a", "b", "c"].map(|l| Keypair::from_seed_label(l).public());
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    for height in [3, 1, u64::MAX] {
        assert!(f.store.put_evidence(&first, height, &[1]).unwrap());
    }
    assert!(f.store.put_evidence(&second, 2, &[2]).unwrap());
    let coin = OutPoint {
        txid: Hash::digest(b"coin"),
        vout: u32::MAX,
    };
    assert!(f.store.put_window_evidence(&c, &coin, &[3]).unwrap());
    let read = f.store.read().unwrap();
    let endorsements = EvidenceKind::Endorsement;
    assert_eq!(
        read.accused_voters(endorsements, 10).unwrap(),
        [first, second]
    );
    assert_eq!(read.accused_voters(endorsements, 1).unwrap(), [first]);
    assert_eq!(read.accused_voters(EvidenceKind::Window, 10).unwrap(), [c]);
    assert_eq!(
        read.evidence_against(endorsements, &first, 2).unwrap(),
        [vec![1], vec![1]]
    );
    assert_eq!(
        read.evidence_against(endorsements, &second, 10).unwrap(),
        [vec![2]]
    );
    assert!(read
        .evidence_against(EvidenceKind::Window, &a, 10)
        .unwrap()
        .is_empty());
}

/// The registry's steps land whole and in order, and survive a reopen.
#[test]
fn registry_steps_are_stored_in_order_and_survive_reopen() {
    use crate::masternode::{Registry, Snapshot};
    let f = Fixture::new();
    let registry = Registry::genesis(f.spec.epoch_rules, &f.spec.validators, |id| {
        crate::chain::reward::payout_address(id)
    });
    let members: Vec<_> = registry.members().cloned().collect();
    let snapshot = Snapshot {
        epoch: 2,
        members: members.clone(),
    };
    let out_of_step = f.store.put_registry_step(3, &members, None);
    assert!(matches!(
        out_of_step,
        Err(StoreError::RegistryOutOfStep { held: 1, next: 3 })
    ));
    assert_eq!(f.store.read().unwrap().registry_next_height().unwrap(), 1);
    f.store
        .put_registry_step(2, &members, Some(&snapshot))
        .unwrap();
    let f = f.reopen();
    let view = f.store.read().unwrap();
    assert_eq!(view.registry_next_height().unwrap(), 2);
    assert_eq!(view.masternodes().unwrap(), members);
    assert_eq!(view.epoch_snapshot(2).unwrap(), Some(snapshot.clone()));
    assert_eq!(view.latest_snapshot().unwrap(), Some(snapshot));
    assert_eq!(view.epoch_snapshot(3).unwrap(), None);
    let first = &members[0];
    assert_eq!(
        view.masternode(&first.validator.id).unwrap().as_ref(),
        Some(first)
    );
}

/// KiB of `path`'s mappings resident in this process (`/proc/self/smaps`).
#[cfg(target_os = "linux")]
fn mapped_kib(path: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut ours = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if ours {
                kib += rss
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        } else if line.contains('-') && line.split_whitespace().count() >= 5 {
            // A mapping's header line: address range, perms, offset, dev, inode [path].
            ours = line.ends_with(name);
        }
    }
    kib
}

#[cfg(target_os = "linux")]
#[test]
fn released_map_pages_leave_the_process_and_reads_see_the_same_records() {
    let f = Fixture::new();
    let before = f.dump();
    let data = f.dir.path().join("chain").join("data.mdb");
    assert!(mapped_kib(&data) > 0, "reads map the pages they touch");
    f.store.release_mapped_pages().unwrap();
    assert_eq!(mapped_kib(&data), 0);
    assert_eq!(f.dump(), before);
    assert!(mapped_kib(&data) > 0);
}

/// A registration's output 0 and every output of its collateral's spend are
/// bound when they finalize, in the same write; the registry's record of the
/// member then says when the bond lets go.
#[test]
fn bonds_are_stored_with_the_outputs_and_let_go_as_the_registry_says() {
    use crate::ledger::{Bond, BondState};
    use crate::masternode::{Member, MemberStatus};
    use crate::types::{
        PublicKeyBytes, Registration, Tier, Validator, VrfPublicBytes, TX_VERSION_REGISTRATION,
    };
    let f = Fixture::new();
    let identity = PublicKeyBytes([9; 32]);
    let mut registration = f.spend(&[f.genesis_coin()], 2);
    registration.version = TX_VERSION_REGISTRATION;
    registration.registration = Some(Box::new(Registration {
        tier: Tier::Bronze,
        identity,
        vrf_key: VrfPublicBytes([0; 32]),
        listen_addr: "127.0.0.1:1".parse().unwrap(),
        payout: f.wallet(),
        identity_sig: crate::types::SignatureBytes([0; 64]),
    }));
    let collateral = registration.outpoint(0);
    let deregistration = f.spend(&coins(&registration)[..1], 2);
    let unrelated = f.spend(&coins(&registration)[1..], 1);
    f.store
        .apply_finalized(&finalized_all(&[
            &registration,
            &deregistration,
            &unrelated,
        ]))
        .unwrap();
    let f = f.reopen();
    let view = f.store.read().unwrap();
    let bond = Bond {
        identity,
        collateral,
    };
    assert_eq!(view.bond(&collateral).unwrap(), Some(bond));
    assert_eq!(view.bond(&registration.outpoint(1)).unwrap(), None);
    for vout in 0..2 {
        assert_eq!(
            view.bond(&deregistration.outpoint(vout)).unwrap(),
            Some(bond)
        );
    }
    assert_eq!(view.bond(&unrelated.outpoint(0)).unwrap(), None);
    let listed: Vec<_> = view.scan_bonds().unwrap().map(Result::unwrap).collect();
    assert_eq!(listed.len(), 3);
    // Not in the registry yet (its block is not final): bound.
    assert_eq!(view.bond_state(&bond).unwrap(), BondState::Bonded);
    drop(view);
    let member = Member {
        validator: Validator {
            id: identity,
            vrf_key: VrfPublicBytes([0; 32]),
            weight: Tier::Bronze.weight(),
        },
        tier: Some(Tier::Bronze),
        collateral: Some(collateral),
        listen_addr: None,
        payout: f.wallet(),
        registered_at: 1,
        status: MemberStatus::Deregistered { height: 1 },
        last_seen_epoch: 1,
    };
    f.store.put_registry_step(2, &[member], None).unwrap();
    let view = f.store.read().unwrap();
    let rules = f.spec.epoch_rules;
    let until_epoch = rules.effective_epoch(1) + rules.unbonding_epochs();
    assert_eq!(
        view.bond_state(&bond).unwrap(),
        BondState::Unbonding { until_epoch }
    );
}
