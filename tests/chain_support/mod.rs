//! Shared fixtures for the checkpoint-block tests and bench: validators with
//! real VRF keys, finality proofs signed the way validators sign them (one
//! vote per response of up to 64 txids), and `MemChain`, an in-memory
//! [`ChainView`] (raft-rs `MemStorage` style) that applies blocks.
//!
//! Include after `consensus_support` (test binaries: `mod consensus_support;
//! mod chain_support;`, benches with `#[path]`). It must never hide a rule:
//! blocks are built by the real builder and checked by the real validator.
#![allow(dead_code)] // each test binary uses a different subset

use crate::consensus_support::{validator_key, Wallet, CHAIN};
use std::collections::HashMap;
use timecoin::chain::{
    build_block, entries_root, Block, BlockSummary, BlockTemplate, ChainTip, ChainView,
    ChainViewError, Payouts, SlotClock, Standing, ValidBlock, MAX_BLOCK_BYTES,
};
use timecoin::crypto::merkle::MerkleTree;
use timecoin::crypto::vrf::VrfKeypair;
use timecoin::crypto::Keypair;
use timecoin::finality::{FinalityProof, FinalityVote, ValidatorSet, VoteScope};
use timecoin::ledger::{MemUtxoSet, UtxoView};
use timecoin::time::Timestamp;
use timecoin::types::{Address, Amount, ChainId, Hash, PublicKeyBytes, Tx, Validator};

/// Devnet timing: 5 s slots, 500 ms skew.
pub const BLOCK_INTERVAL_MS: u64 = 5_000;
pub const MAX_SKEW_MS: u64 = 500;
/// The genesis block's hash: finality votes of this chain sign it.
pub fn chain_genesis_hash() -> Hash {
    Hash::digest(b"chain test genesis")
}

/// The genesis's slot; tests build from the next one on.
pub const GENESIS_SLOT: u64 = 352_805_760;
/// Txids per finality vote, as in a `Votes` response (`max_txs_per_query`).
pub const TXIDS_PER_VOTE: usize = 64;

pub fn slot_clock() -> SlotClock {
    SlotClock::new(BLOCK_INTERVAL_MS, MAX_SKEW_MS).unwrap()
}

/// A slot's first millisecond, as a `now`.
pub fn slot_start(slot: u64) -> Timestamp {
    Timestamp(slot_clock().slot_start_ms(slot))
}

/// Validators with identity and VRF keys, registered in `set`.
pub struct Validators {
    pub ids: Vec<Keypair>,
    pub vrfs: Vec<VrfKeypair>,
    pub set: ValidatorSet,
    /// What their finality votes sign: this chain's genesis, or the spec's
    /// when a test stores their proofs in a real node's archive.
    pub genesis_hash: Hash,
}

impl Validators {
    pub fn new(weights: &[u64]) -> Validators {
        let ids: Vec<Keypair> = (0..weights.len()).map(validator_key).collect();
        let vrfs: Vec<VrfKeypair> = (0..weights.len())
            .map(|i| VrfKeypair::from_seed_label(&format!("chain test vrf {i}")))
            .collect();
        let set = ValidatorSet::new(
            ids.iter()
                .zip(&vrfs)
                .zip(weights)
                .map(|((id, vrf), &weight)| Validator {
                    id: id.public(),
                    vrf_key: vrf.public(),
                    weight,
                })
                .collect(),
        )
        .unwrap();
        Validators {
            ids,
            vrfs,
            set,
            genesis_hash: chain_genesis_hash(),
        }
    }

    /// Signers whose weight reaches the proof threshold (a prefix of the set).
    pub fn quorum(&self) -> &[Keypair] {
        let need = self.set.required_weight();
        let mut have = 0;
        let count = self
            .set
            .validators()
            .iter()
            .take_while(|v| {
                let short = have < need;
                have += v.weight;
                short
            })
            .count();
        &self.ids[..count]
    }

    /// What their finality votes sign besides the root.
    pub fn vote_scope(&self) -> VoteScope {
        VoteScope {
            chain_id: CHAIN,
            genesis_hash: self.genesis_hash,
            epoch: 0,
        }
    }

    /// Proofs for `txs` as validators make them: each signer signs one
    /// window vote (seqs from `first_seq`) per batch of [`TXIDS_PER_VOTE`] sorted txids.
    pub fn proofs(&self, txs: &[Tx], first_seq: u64) -> Vec<FinalityProof> {
        let mut by_txid: Vec<(Hash, &Tx)> = txs.iter().map(|tx| (tx.txid(), tx)).collect();
        by_txid.sort_by_key(|(txid, _)| *txid);
        let mut proofs = Vec::with_capacity(txs.len());
        for (seq, batch) in (first_seq..).zip(by_txid.chunks(TXIDS_PER_VOTE)) {
            let txids: Vec<Hash> = batch.iter().map(|(txid, _)| *txid).collect();
            let tree = MerkleTree::new(&txids);
            let votes: Vec<FinalityVote> = self
                .quorum()
                .iter()
                .map(|k| FinalityVote::sign_root(k, self.vote_scope(), seq, tree.root()))
                .collect();
            for (i, (_, tx)) in batch.iter().enumerate() {
                let path = tree.path(i).unwrap();
                proofs.push(FinalityProof {
                    tx: (*tx).clone(),
                    votes: votes.iter().map(|v| (v.clone(), path.clone())).collect(),
                });
            }
        }
        proofs
    }
}

/// The canonical chain in memory: heights, archived txids, the UTXOs that
/// fees are computed from, and the clock.
pub struct MemChain {
    pub chain_id: ChainId,
    pub set: ValidatorSet,
    pub utxos: MemUtxoSet,
    pub now: Timestamp,
    /// Heights per epoch (`u64::MAX`: every block is of epoch 0, `set`'s).
    pub epoch_blocks: u64,
    /// The decided sets of epochs after 0 (each its own committee); an
    /// epoch missing here is undecided.
    pub epoch_sets: HashMap<u64, ValidatorSet>,
    /// Registered payout addresses; other members are paid at their identity.
    pub payouts: Payouts,
    /// `tips[h]` is the canonical block at height `h`; `tips[0]` the genesis.
    pub tips: Vec<ChainTip>,
    /// txid → height of the block that archived it.
    pub archived: HashMap<Hash, u64>,
    /// Proofs this "node" finalized its txs with (see `ChainView::holds_proof`).
    pub held_proofs: HashMap<Hash, FinalityProof>,
    /// Offender → height of the first applied block carrying evidence
    /// against it. Members are `set`'s validators.
    pub slashed: HashMap<PublicKeyBytes, u64>,
}

impl MemChain {
    pub fn new(set: ValidatorSet, utxos: MemUtxoSet) -> MemChain {
        MemChain {
            chain_id: CHAIN,
            set,
            utxos,
            now: slot_start(GENESIS_SLOT + 1),
            epoch_blocks: u64::MAX,
            epoch_sets: HashMap::new(),
            payouts: Payouts::default(),
            tips: vec![ChainTip {
                hash: chain_genesis_hash(),
                height: 0,
                slot: GENESIS_SLOT,
            }],
            archived: HashMap::new(),
            held_proofs: HashMap::new(),
            slashed: HashMap::new(),
        }
    }

    pub fn genesis_summary(&self) -> BlockSummary {
        BlockSummary::genesis(self.tips[0].hash, GENESIS_SLOT)
    }

    /// Archives `block`'s entries, slashes its offenders and makes it the
    /// tip (the caller validated it).
    pub fn apply(&mut self, block: &Block) {
        let h = &block.header;
        for entry in &block.entries {
            self.archived.insert(entry.tx.txid(), h.height);
        }
        for evidence in &block.evidence {
            self.slashed.entry(evidence.offender()).or_insert(h.height);
        }
        self.tips.push(ChainTip {
            hash: block.hash(),
            height: h.height,
            slot: h.slot,
        });
    }

    /// A template for `slot` on the tip, built at the slot's start.
    pub fn template(&self, slot: u64) -> BlockTemplate<'_> {
        BlockTemplate {
            chain_id: self.chain_id,
            parent: self.tip(),
            slot,
            now: slot_start(slot),
            slot_clock: slot_clock(),
            validators: self.producers().unwrap_or(&self.set),
            payouts: &self.payouts,
            parent_certificate: None,
            evidence: &[],
            heartbeats: &[],
            max_block_bytes: MAX_BLOCK_BYTES,
        }
    }
}

impl ChainView for MemChain {
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn genesis_hash(&self) -> Hash {
        chain_genesis_hash()
    }

    fn tip(&self) -> ChainTip {
        *self.tips.last().unwrap()
    }

    fn epoch_of(&self, height: u64) -> u64 {
        height / self.epoch_blocks
    }

    fn producers(&self) -> Option<&ValidatorSet> {
        let height = self.tip().height + 1;
        self.committee_for_epoch(self.epoch_of(height))
    }

    fn payout_address(&self, identity: &PublicKeyBytes) -> Result<Address, ChainViewError> {
        Ok(self.payouts.address_of(identity))
    }

    fn committee_for_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        match epoch {
            0 => Some(&self.set),
            _ => self.epoch_sets.get(&epoch),
        }
    }

    fn endorsers_for_epoch(&self, _epoch: u64) -> Option<&ValidatorSet> {
        Some(&self.set)
    }

    fn is_archived(&self, txid: &Hash) -> Result<bool, ChainViewError> {
        Ok(self.archived.contains_key(txid))
    }

    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError> {
        let mut inputs = Amount::ZERO;
        for input in &tx.inputs {
            let entry = self
                .utxos
                .utxo(&input.prev)
                .map_err(|e| ChainViewError(e.to_string()))?;
            match entry {
                Some(e) => inputs = inputs.checked_add(e.output.value).unwrap(),
                None => return Ok(None),
            }
        }
        let outputs = Amount::checked_sum(tx.outputs.iter().map(|o| o.value)).unwrap();
        Ok(inputs.checked_sub(outputs))
    }

    fn standing(&self, identity: &PublicKeyBytes) -> Result<Standing, ChainViewError> {
        Ok(match self.slashed.get(identity) {
            Some(&height) => Standing::Slashed { height },
            None if self.set.contains(identity) => Standing::Member,
            None => Standing::NotAMember,
        })
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn slot_clock(&self) -> SlotClock {
        slot_clock()
    }

    fn holds_proof(&self, txid: &Hash, proof: &FinalityProof) -> bool {
        self.held_proofs.get(txid) == Some(proof)
    }
}

/// Validators, a wallet with genesis coins, and a chain holding both.
pub struct Fixture {
    pub validators: Validators,
    pub wallet: Wallet,
    pub chain: MemChain,
}

impl Fixture {
    /// Four bronze validators and a wallet of `coins` coins.
    pub fn new(coins: usize) -> Fixture {
        Fixture::with_weights(&[10; 4], coins)
    }

    pub fn with_weights(weights: &[u64], coins: usize) -> Fixture {
        let validators = Validators::new(weights);
        let wallet = Wallet::funded(coins);
        let chain = MemChain::new(validators.set.clone(), wallet.utxos.clone());
        Fixture {
            validators,
            wallet,
            chain,
        }
    }

    /// One payment per coin in `coins`, each paying a distinct payee.
    pub fn payments(&self, coins: std::ops::Range<usize>) -> Vec<Tx> {
        coins
            .map(|i| self.wallet.pay(i, &format!("payee {i}")))
            .collect()
    }

    /// Finalized proofs with their fees, as the builder takes them.
    pub fn finalized(&self, txs: &[Tx]) -> Vec<(FinalityProof, Amount)> {
        self.validators
            .proofs(txs, GENESIS_SLOT)
            .into_iter()
            .map(|p| {
                let fee = self.chain.fee_of(&p.tx).unwrap().unwrap();
                (p, fee)
            })
            .collect()
    }

    /// The block validator `producer` builds for `slot` on the tip.
    pub fn build(&self, producer: usize, slot: u64, txs: &[Tx]) -> Block {
        build_block(
            &self.chain.template(slot),
            &self.validators.vrfs[producer],
            &self.validators.ids[producer],
            self.finalized(txs),
        )
        .unwrap()
    }

    /// Validates against the chain as it is.
    pub fn validate(&self, block: Block) -> ValidBlock {
        timecoin::chain::validate_block(block, &self.chain).unwrap()
    }
}

/// Recomputes `entries_root` after a test changed the body on purpose, so
/// the rule under test is the one that fires.
pub fn fix_root(block: &mut Block) {
    let txids: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
    block.header.entries_root = entries_root(&txids, block.reward.id());
}
