//! The LMDB store against a model, after every step of a seeded random run
//! (cberner/redb's fuzz-against-a-BTreeMap idea): valid batches (with txs
//! spending outputs of earlier txs of the same batch), batches the store must
//! refuse (missing, spent or doubly spent outpoints), replays, mempool edits,
//! local acceptances (the vote-safety record, refusals included) and reopens. The model is `ledger::MemUtxoSet` plus plain maps; what the
//! store must answer to a batch is derived from the model, not from how the
//! batch was built. The map starts tiny so it also grows during the run.
//!
//! A failure prints its seed; rerun it with `STORE_MODEL_SEED=<seed>`.

mod store_support;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use store_support::{audit, finalized, pick, Coin, FundedChain, Wallet};
use timecoin::ledger::{MemUtxoSet, UtxoState, UtxoView};
use timecoin::store::{
    FinalizedTx, LedgerBatch, RefusedAcceptance, Store, StoreError, StoreOptions,
};
use timecoin::types::{Amount, Hash, OutPoint, Tx};

const STEPS: usize = 120;
const DEFAULT_SEEDS: [u64; 3] = [1, 2, 3];
const OPTIONS: StoreOptions = StoreOptions {
    map_size_bytes: 256 * 1024,
    max_map_size_bytes: 1 << 30,
};

/// What the store must hold.
#[derive(Clone)]
struct Model {
    utxos: MemUtxoSet,
    /// Recorded txid → its finalization sequence.
    recorded: BTreeMap<Hash, u64>,
    mempool: BTreeMap<Hash, Tx>,
    /// The vote-safety record: outpoint → the accepted tx spending it.
    accepted: BTreeMap<OutPoint, Tx>,
}

/// Why the store must refuse a batch.
#[derive(Debug, PartialEq)]
enum Refusal {
    Missing {
        txid: Hash,
        outpoint: OutPoint,
    },
    Spent {
        txid: Hash,
        outpoint: OutPoint,
        by: Hash,
    },
}

impl Model {
    fn new(chain: &FundedChain) -> Model {
        let mut utxos = MemUtxoSet::default();
        utxos.add_outputs(chain.spec.genesis_hash(), &chain.spec.allocations);
        Model {
            utxos,
            recorded: BTreeMap::new(),
            mempool: BTreeMap::new(),
            accepted: BTreeMap::new(),
        }
    }

    /// The model after `batch`, or why the whole batch must be refused.
    fn apply(&self, batch: &[FinalizedTx]) -> Result<Model, Refusal> {
        let mut next = self.clone();
        for finalized in batch {
            let txid = finalized.tx.txid();
            if next.recorded.contains_key(&txid) {
                next.mempool.remove(&txid);
                continue;
            }
            for input in &finalized.tx.inputs {
                let outpoint = input.prev;
                match next.utxos.utxo(&outpoint).expect("model read") {
                    None => return Err(Refusal::Missing { txid, outpoint }),
                    Some(entry) => {
                        if let UtxoState::Spent { by } = entry.state {
                            return Err(Refusal::Spent { txid, outpoint, by });
                        }
                    }
                }
            }
            next.utxos.apply(&finalized.tx);
            next.recorded.insert(txid, next.recorded.len() as u64);
            next.mempool.remove(&txid);
            for input in &finalized.tx.inputs {
                next.accepted.remove(&input.prev);
            }
        }
        Ok(next)
    }

    /// Records the acceptance of `tx` unless an input has another accepted
    /// or finalized spender. `Ok(true)`: recorded; `Ok(false)`: finalized
    /// itself, nothing to guard.
    fn accept(&mut self, tx: &Tx) -> Result<bool, RefusedAcceptance> {
        let txid = tx.txid();
        for input in &tx.inputs {
            let outpoint = input.prev;
            let holder = match self.utxos.utxo(&outpoint).expect("model read") {
                Some(entry) => match entry.state {
                    UtxoState::Spent { by } if by == txid => return Ok(false),
                    UtxoState::Spent { by } => Some(by),
                    _ => None,
                },
                None => None,
            }
            .or_else(|| self.accepted.get(&outpoint).map(Tx::txid))
            .filter(|holder| *holder != txid);
            if let Some(holder) = holder {
                return Err(RefusedAcceptance {
                    txid,
                    outpoint,
                    holder,
                });
            }
        }
        for input in &tx.inputs {
            self.accepted.insert(input.prev, tx.clone());
        }
        Ok(true)
    }

    /// Each accepted tx once, in the order of its lowest outpoint.
    fn accepted_txs(&self) -> Vec<Tx> {
        let mut seen = BTreeSet::new();
        self.accepted
            .values()
            .filter(|tx| seen.insert(tx.txid()))
            .cloned()
            .collect()
    }
}

fn refusal_of(err: StoreError) -> Refusal {
    match err {
        StoreError::MissingOutpoint { txid, outpoint } => Refusal::Missing { txid, outpoint },
        StoreError::AlreadySpent { txid, outpoint, by } => Refusal::Spent { txid, outpoint, by },
        other => panic!("store failed instead of refusing: {other}"),
    }
}

/// One seeded run: the store, its model, and what the generator knows.
struct Run {
    rng: ChaCha20Rng,
    chain: FundedChain,
    store: Option<Store>,
    model: Model,
    wallet: Wallet,
    /// Every output ever built, so refused txs can name real coins.
    known: HashMap<OutPoint, Coin>,
    applied_batches: Vec<Vec<FinalizedTx>>,
    clock_ms: u64,
    /// How often each path ran, so the run proves it exercised them all.
    refused: usize,
    replayed: usize,
    refused_acceptances: usize,
}

impl Run {
    fn new(seed: u64, datadir: &Path) -> Run {
        let chain = FundedChain::new("store model", 8, 4, Amount::from_time(1_000).unwrap());
        let store = Store::open(datadir, &chain.spec, OPTIONS).unwrap();
        let wallet = Wallet::from_genesis(&chain);
        let known = wallet.coins.iter().map(|c| (c.0, *c)).collect();
        Run {
            rng: ChaCha20Rng::seed_from_u64(seed),
            model: Model::new(&chain),
            chain,
            store: Some(store),
            wallet,
            known,
            applied_batches: Vec::new(),
            clock_ms: 1_764_028_800_000,
            refused: 0,
            replayed: 0,
            refused_acceptances: 0,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn finalize(&mut self, tx: &Tx) -> FinalizedTx {
        for vout in 0..tx.outputs.len() as u32 {
            let outpoint = tx.outpoint(vout);
            self.known
                .insert(outpoint, (outpoint, tx.outputs[vout as usize]));
        }
        self.clock_ms += 1 + self.rng.next_u64() % 1000;
        let proof_bytes = 64 + pick(&mut self.rng, 2048);
        finalized(tx, proof_bytes, self.clock_ms)
    }

    /// 1..=6 random valid transfers; later ones may spend earlier outputs.
    fn valid_batch(&mut self) -> Vec<FinalizedTx> {
        let len = 1 + pick(&mut self.rng, 6);
        (0..len)
            .map(|_| {
                let inputs = (1 + pick(&mut self.rng, 2)).min(self.wallet.coins.len());
                let outputs = 1 + pick(&mut self.rng, 3);
                let fee = self.chain.min_fee();
                let tx = self
                    .wallet
                    .transfer(&self.chain, &mut self.rng, (inputs, outputs), fee);
                self.finalize(&tx)
            })
            .collect()
    }

    /// A valid batch with one tx the store must refuse inserted somewhere:
    /// it spends a never-created, an already spent, or a same-batch-spent coin.
    fn refused_batch(&mut self) -> Vec<FinalizedTx> {
        let mut batch = self.valid_batch();
        let spent: Vec<OutPoint> = self
            .model
            .utxos
            .entries()
            .filter(|(_, e)| e.state != UtxoState::Unspent)
            .map(|(op, _)| *op)
            .collect();
        let bad_coin = match pick(&mut self.rng, 3) {
            0 if !spent.is_empty() => self.known[&spent[pick(&mut self.rng, spent.len())]],
            1 => self.known[&batch[0].tx.inputs[0].prev],
            _ => {
                let mut never_created = self.wallet.coins[0];
                never_created.0.txid = Hash::digest(&self.rng.next_u64().to_le_bytes());
                never_created
            }
        };
        let bad = self
            .chain
            .spend(&mut self.rng, &[bad_coin], 1, self.chain.min_fee());
        let bad = self.finalize(&bad);
        let at = 1 + pick(&mut self.rng, batch.len());
        batch.insert(at, bad);
        batch
    }

    /// Applies `batch` to store and model and checks they agree on the outcome.
    fn apply(&mut self, batch: Vec<FinalizedTx>, wallet_before: Wallet) {
        let expected = self.model.apply(&batch);
        let got = self.store().apply_finalized(&batch);
        match (expected, got) {
            (Ok(next), Ok(report)) => {
                assert_eq!(
                    report.applied,
                    next.recorded.len() - self.model.recorded.len()
                );
                assert_eq!(report.applied + report.already_recorded, batch.len());
                self.replayed += usize::from(report.already_recorded > 0);
                self.model = next;
                self.applied_batches.push(batch);
            }
            (Err(refusal), Err(err)) => {
                assert_eq!(refusal_of(err), refusal);
                self.wallet = wallet_before;
                self.refused += 1;
            }
            (expected, got) => {
                panic!("model refusal: {:?}, store: {got:?}", expected.err())
            }
        }
    }

    /// Pending spends of wallet coins and, now and then, an already
    /// finalized tx (a late relay), which a replay must clear.
    fn mempool_put(&mut self) {
        let mut txs: Vec<Tx> = (0..1 + pick(&mut self.rng, 3))
            .map(|_| {
                let coin = self.wallet.coins[pick(&mut self.rng, self.wallet.coins.len())];
                self.chain
                    .spend(&mut self.rng, &[coin], 2, self.chain.min_fee())
            })
            .collect();
        if !self.applied_batches.is_empty() && pick(&mut self.rng, 2) == 0 {
            let batch = &self.applied_batches[pick(&mut self.rng, self.applied_batches.len())];
            txs.push(batch[pick(&mut self.rng, batch.len())].tx.clone());
        }
        assert_eq!(self.store().mempool_put(&txs).unwrap(), txs.len());
        for tx in txs {
            self.model.mempool.insert(tx.txid(), tx);
        }
    }

    /// Acceptances of spends of wallet coins (some conflicting with each
    /// other or with earlier records) and, now and then, of a finalized tx
    /// or a spend of a spent coin; the store must record or refuse each
    /// exactly as the model does.
    fn accept(&mut self) {
        let mut txs: Vec<Tx> = (0..1 + pick(&mut self.rng, 3))
            .map(|_| {
                let coin = self.wallet.coins[pick(&mut self.rng, self.wallet.coins.len())];
                let outputs = 1 + pick(&mut self.rng, 2);
                self.chain
                    .spend(&mut self.rng, &[coin], outputs, self.chain.min_fee())
            })
            .collect();
        if !self.applied_batches.is_empty() && pick(&mut self.rng, 2) == 0 {
            let batch = &self.applied_batches[pick(&mut self.rng, self.applied_batches.len())];
            let finalized = &batch[pick(&mut self.rng, batch.len())].tx;
            let coin = self.known[&finalized.inputs[0].prev];
            let late_conflict = self
                .chain
                .spend(&mut self.rng, &[coin], 3, self.chain.min_fee());
            txs.extend([finalized.clone(), late_conflict]);
        }
        let mut expected_accepted = Vec::new();
        let mut expected_refused = Vec::new();
        for tx in &txs {
            match self.model.accept(tx) {
                Ok(true) => expected_accepted.push(tx.txid()),
                Ok(false) => {}
                Err(refused) => expected_refused.push(refused),
            }
        }
        let batch = LedgerBatch {
            accepted: &txs,
            ..LedgerBatch::default()
        };
        let report = self.store().commit_batch(&batch).unwrap();
        assert_eq!(report.accepted, expected_accepted);
        assert_eq!(report.refused_acceptances, expected_refused);
        self.refused_acceptances += expected_refused.len();
    }

    fn mempool_remove(&mut self) {
        let mut txids: Vec<Hash> = self
            .model
            .mempool
            .keys()
            .filter(|_| self.rng.next_u64() % 2 == 0)
            .copied()
            .collect();
        txids.push(Hash::digest(b"never pending"));
        let present = txids
            .iter()
            .filter(|t| self.model.mempool.remove(t).is_some())
            .count();
        assert_eq!(self.store().mempool_remove(&txids).unwrap(), present);
    }

    fn reopen(&mut self, datadir: &Path) {
        drop(self.store.take());
        self.store = Some(Store::open(datadir, &self.chain.spec, OPTIONS).unwrap());
    }

    fn step(&mut self, datadir: &Path) {
        let wallet_before = self.wallet.clone();
        match pick(&mut self.rng, 11) {
            0..=3 => {
                let batch = self.valid_batch();
                self.apply(batch, wallet_before);
            }
            4 | 5 => {
                let batch = self.refused_batch();
                self.apply(batch, wallet_before);
            }
            6 if !self.applied_batches.is_empty() => {
                let old = pick(&mut self.rng, self.applied_batches.len());
                let mut replay = self.applied_batches[old].clone();
                replay.extend(self.valid_batch());
                self.apply(replay, wallet_before);
            }
            7 => self.mempool_put(),
            8 => self.mempool_remove(),
            9 => self.accept(),
            _ => self.reopen(datadir),
        }
    }

    /// The store holds exactly what the model holds, and is self-consistent.
    fn check(&self) {
        let store = self.store();
        let audit = audit(store, &self.chain);
        let model_utxos: BTreeMap<_, _> = self
            .model
            .utxos
            .entries()
            .map(|(op, e)| (*op, *e))
            .collect();
        assert_eq!(audit.utxos, model_utxos, "UTXO set differs from the model");
        assert!(audit.recorded.iter().eq(self.model.recorded.keys()));
        for address in self.chain.addresses() {
            assert_eq!(
                store.unspent_by_address(&address, usize::MAX).unwrap(),
                self.model.utxos.unspent_of(&address)
            );
            assert_eq!(
                store.balance(&address).unwrap(),
                self.model.utxos.balance(&address)
            );
        }
        for (txid, sequence) in self.model.recorded.iter().rev().take(3) {
            assert_eq!(store.tx(txid).unwrap().unwrap().sequence, *sequence);
        }
        // The store lists both in the order they were stored; the model
        // keeps sets, so compare in txid order.
        let by_txid = |mut txs: Vec<Tx>| {
            txs.sort_by_key(Tx::txid);
            txs
        };
        let pending: Vec<Tx> = self.model.mempool.values().cloned().collect();
        assert_eq!(by_txid(store.mempool_load(usize::MAX).unwrap()), pending);
        assert_eq!(
            by_txid(store.accepted_load(usize::MAX).unwrap()),
            by_txid(self.model.accepted_txs())
        );
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("STORE_MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("STORE_MODEL_SEED is a u64")],
        Err(_) => DEFAULT_SEEDS.to_vec(),
    }
}

#[test]
fn store_matches_the_model_after_every_batch_refusal_replay_and_reopen() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::new(seed, dir.path());
        for step in 0..STEPS {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run.step(dir.path());
                run.check();
            }));
            if let Err(panic) = outcome {
                eprintln!(
                    "store model failed at step {step}: reproduce with STORE_MODEL_SEED={seed}"
                );
                std::panic::resume_unwind(panic);
            }
        }
        let stats = run.store().stats().unwrap();
        assert!(
            stats.txs > 50,
            "seed {seed} recorded only {} txs",
            stats.txs
        );
        assert!(
            stats.map_size_bytes > OPTIONS.map_size_bytes,
            "seed {seed} never grew the map"
        );
        assert!(
            run.refused > 5 && run.replayed > 2 && run.refused_acceptances > 2,
            "seed {seed} skipped paths"
        );
        assert!(stats.accepted > 0, "seed {seed} kept no acceptance record");
    }
}
