//! A real checkpoint chain in a real LMDB store, for the block RPC tests and
//! the blocks bench: transfers finalized with proofs signed by validators
//! whose identity and VRF keys the test holds (the chain spec's validator
//! set), blocks built by the real builder from the store's unarchived
//! transactions and applied with `Store::apply_block`, and the damage a
//! test writes straight into the store's tables.
//!
//! Include after `consensus_support`, `chain_support` and `store_support`.
//! It must never hide a rule: nothing here validates or verifies.
#![allow(dead_code)] // each test binary uses a different subset

use crate::chain_support::{slot_clock, slot_start, Validators, BLOCK_INTERVAL_MS, GENESIS_SLOT};
use crate::store_support::{self, FundedChain};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use timecoin::chain::{
    build_block, reward_matures_at, Block, BlockTemplate, ChainTip, Payouts, VerifyParams,
    MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES,
};
use timecoin::config::ChainSpec;
use timecoin::finality::FinalityProof;
use timecoin::rpc::archive::replay_params;
use timecoin::store::schema::PROOFS;
use timecoin::store::{BlockCommit, BlockReport, FinalizedTx, LedgerBatch, Store, StoreOptions};
use timecoin::time::Timestamp;
use timecoin::types::encoding::{decode, encode};
use timecoin::types::{Amount, Hash, Tx};

/// Genesis coins of 1,000 TIME per wallet key; transfers split them further.
const COIN: Amount = Amount(1_000 * 100_000_000);
const WALLET_KEYS: usize = 8;

/// Four bronze validators, a funded wallet and the store of their chain.
pub struct ArchiveChain {
    pub dir: tempfile::TempDir,
    pub funded: FundedChain,
    pub validators: Validators,
    pub store: Arc<Store>,
    pub wallet: store_support::Wallet,
    rng: ChaCha20Rng,
}

impl ArchiveChain {
    /// A new store whose genesis funds `coins` coins (at least one per
    /// wallet key) and registers the validators.
    pub fn new(label: &str, coins: usize) -> ArchiveChain {
        let mut funded = FundedChain::new(label, WALLET_KEYS, coins.div_ceil(WALLET_KEYS), COIN);
        let mut validators = Validators::new(&[10; 4]);
        funded.spec.validators = validators.set.validators().to_vec();
        // Blocks are built on `chain_support`'s slot clock: the spec the
        // node and the replay read must say the same interval.
        funded.spec.config.ledger.block_interval_secs = BLOCK_INTERVAL_MS / 1_000;
        validators.genesis_hash = funded.spec.genesis_hash();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), &funded.spec));
        let wallet = store_support::Wallet::from_genesis(&funded);
        ArchiveChain {
            dir,
            funded,
            validators,
            store,
            wallet,
            rng: ChaCha20Rng::seed_from_u64(7),
        }
    }

    pub fn spec(&self) -> &ChainSpec {
        &self.funded.spec
    }

    /// Finalizes `n` random transfers, with real proofs, in one ledger batch.
    pub fn finalize(&mut self, n: usize) -> Vec<Tx> {
        let fee = self.funded.min_fee();
        let txs: Vec<Tx> = (0..n)
            .map(|_| {
                self.wallet
                    .transfer(&self.funded, &mut self.rng, (1, 2), fee)
            })
            .collect();
        let mut proofs: HashMap<Hash, FinalityProof> = self
            .validators
            .proofs(&txs, GENESIS_SLOT)
            .into_iter()
            .map(|p| (p.tx.txid(), p))
            .collect();
        // In creation order: a transfer may spend an output of an earlier one.
        let finalized: Vec<FinalizedTx> = txs
            .iter()
            .map(|tx| FinalizedTx {
                tx: tx.clone(),
                proof: encode(&proofs.remove(&tx.txid()).unwrap()),
                finalized_at_ms: 0,
            })
            .collect();
        self.store
            .commit_batch(&LedgerBatch {
                finalized: &finalized,
                ..LedgerBatch::default()
            })
            .unwrap();
        txs
    }

    /// What a producer reads for the next block: up to `limit` unarchived
    /// txs' proofs, with their fees.
    pub fn candidates(&self, limit: usize) -> Vec<(FinalityProof, Amount)> {
        let view = self.store.read().unwrap();
        view.unarchived(limit)
            .unwrap()
            .iter()
            .map(|txid| {
                let bytes = view.proof(txid).unwrap().unwrap();
                let proof: FinalityProof =
                    decode(&bytes, PROOFS.max_value_bytes, "finality proof").unwrap();
                let fee = view.fee_of(&proof.tx).unwrap().unwrap();
                (proof, fee)
            })
            .collect()
    }

    /// The store's tip as the chain module sees it.
    pub fn tip(&self) -> ChainTip {
        let tip = self.store.tip().unwrap();
        ChainTip {
            hash: tip.hash,
            height: tip.height,
            slot: tip.slot,
        }
    }

    /// The block validator `producer` builds on `parent` in the slot after
    /// it, from `candidates`.
    pub fn build_on(
        &self,
        parent: ChainTip,
        producer: usize,
        candidates: Vec<(FinalityProof, Amount)>,
    ) -> Block {
        let slot = parent.slot + 1;
        let template = BlockTemplate {
            chain_id: self.spec().chain_id(),
            parent,
            slot,
            now: slot_start(slot),
            slot_clock: slot_clock(),
            validators: &self.validators.set,
            payouts: &Payouts::default(),
            parent_certificate: None,
            evidence: &[],
            heartbeats: &[],
            max_block_bytes: MAX_BLOCK_BYTES,
        };
        build_block(
            &template,
            &self.validators.vrfs[producer],
            &self.validators.ids[producer],
            candidates,
        )
        .unwrap()
    }

    /// The next block on the tip, archiving every unarchived tx.
    pub fn build_next(&self, producer: usize) -> Block {
        self.build_on(self.tip(), producer, self.candidates(MAX_BLOCK_ENTRIES))
    }

    /// Applies `block` on the tip, the store told it extends `prev_hash`
    /// (a test may lie about a block's parent: the store never decodes it).
    pub fn apply_claiming(&self, block: &Block, prev_hash: Hash) -> BlockReport {
        let encoded = block.encode();
        let archived: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
        let maturity = u64::from(self.spec().config.ledger.reward_maturity_blocks);
        let commit = BlockCommit {
            hash: block.hash(),
            height: block.header.height,
            slot: block.header.slot,
            prev_hash,
            encoded: &encoded,
            archived: &archived,
            reward_id: block.reward.id(),
            reward_outputs: &block.reward.outputs,
            matures_at_height: reward_matures_at(block.header.height, maturity),
        };
        self.store.apply_block(&commit).unwrap()
    }

    pub fn apply(&self, block: &Block) -> BlockReport {
        self.apply_claiming(block, block.header.prev_hash)
    }

    /// Adds `blocks` blocks, each archiving `txs_per_block` new transfers;
    /// producers take turns.
    pub fn extend(&mut self, blocks: usize, txs_per_block: usize) -> Vec<Block> {
        (0..blocks)
            .map(|i| {
                self.finalize(txs_per_block);
                let block = self.build_next(i % self.validators.ids.len());
                self.apply(&block);
                block
            })
            .collect()
    }

    /// Local time for a replay: the start of the slot after the tip's.
    pub fn now(&self) -> Timestamp {
        slot_start(self.tip().slot + 1)
    }

    pub fn replay_params(&self) -> VerifyParams {
        replay_params(self.spec(), self.now()).unwrap()
    }

    /// Overwrites the stored bytes of block `hash` straight in the `blocks`
    /// table, as disk damage or a hostile datadir would. LMDB allows one
    /// environment per datadir in a process, so the store is closed for the
    /// write (this must hold its only handle) and reopened.
    pub fn overwrite_block_bytes(self, hash: &Hash, bytes: &[u8]) -> ArchiveChain {
        let ArchiveChain {
            dir,
            funded,
            validators,
            store,
            wallet,
            rng,
        } = self;
        drop(Arc::into_inner(store).expect("the test holds the store's only handle"));
        {
            let env = lmdb::Environment::new()
                .set_max_dbs(16)
                .set_map_size(StoreOptions::default().map_size_bytes as usize)
                .open(&dir.path().join("chain"))
                .unwrap();
            let blocks = env.open_db(Some("blocks")).unwrap();
            let mut txn = env.begin_rw_txn().unwrap();
            txn.put(blocks, &hash.0, &bytes, lmdb::WriteFlags::empty())
                .unwrap();
            lmdb::Transaction::commit(txn).unwrap();
        }
        let store = Arc::new(open(dir.path(), &funded.spec));
        ArchiveChain {
            dir,
            funded,
            validators,
            store,
            wallet,
            rng,
        }
    }
}

fn open(datadir: &Path, spec: &ChainSpec) -> Store {
    Store::open(datadir, spec, StoreOptions::default()).unwrap()
}
