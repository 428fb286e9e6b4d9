//! Shared fixtures of the store's integration tests and its bench: a devnet
//! chain whose genesis funds keys the test holds, a wallet that builds random
//! valid transfers from its coins, test checkpoint blocks, and an audit of a
//! whole store.
//!
//! Test code: it panics with a precise message on the first inconsistency.
#![allow(dead_code)] // each test binary uses a different part

use rand_chacha::rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use timecoin::config::{ChainConfig, ChainSpec};
use timecoin::crypto::Keypair;
use timecoin::ledger::{UtxoEntry, UtxoState};
use timecoin::store::{BlockCommit, ChainTip, FinalizedTx, Store};
use timecoin::types::encoding::encode;
use timecoin::types::{Address, Amount, Hash, Network, OutPoint, Tx, TxOut};
use timecoin::wallet::{build_transfer, Spendable};

pub type Coin = (OutPoint, TxOut);

/// The smallest output test transfers create: 1 TIME.
pub const MIN_OUTPUT: Amount = Amount(100_000_000);

/// A devnet chain whose genesis gives `outputs_per_key` outputs of `value`
/// to each of `keys` label-derived keys.
pub struct FundedChain {
    pub spec: ChainSpec,
    pub keys: Vec<Keypair>,
    key_of: HashMap<Address, usize>,
}

impl FundedChain {
    pub fn new(label: &str, keys: usize, outputs_per_key: usize, value: Amount) -> FundedChain {
        let mut spec = ChainConfig::builtin(Network::Devnet).expect("builtin devnet");
        let keys: Vec<Keypair> = (0..keys)
            .map(|i| Keypair::from_seed_label(&format!("{label} key {i}")))
            .collect();
        let key_of: HashMap<Address, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Address::from_pubkey(&k.public()), i))
            .collect();
        spec.allocations = (0..outputs_per_key)
            .flat_map(|_| keys.iter())
            .map(|k| TxOut {
                value,
                address: Address::from_pubkey(&k.public()),
            })
            .collect();
        FundedChain { spec, keys, key_of }
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.keys
            .iter()
            .map(|k| Address::from_pubkey(&k.public()))
            .collect()
    }

    pub fn supply(&self) -> Amount {
        Amount::checked_sum(self.spec.allocations.iter().map(|o| o.value)).expect("supply")
    }

    fn key(&self, address: &Address) -> &Keypair {
        &self.keys[self.key_of[address]]
    }

    pub fn min_fee(&self) -> Amount {
        self.spec.config.ledger.min_fee
    }

    /// A signed tx spending `coins` (any coins of our keys, spent or not)
    /// into `outputs` outputs to random keys, leaving `fee`; the last
    /// output takes the rest.
    pub fn spend(&self, rng: &mut impl RngCore, coins: &[Coin], outputs: usize, fee: Amount) -> Tx {
        let inputs: Vec<Spendable<'_>> = coins
            .iter()
            .map(|(outpoint, out)| Spendable {
                outpoint: *outpoint,
                value: out.value,
                key: self.key(&out.address),
            })
            .collect();
        let total = Amount::checked_sum(coins.iter().map(|(_, o)| o.value)).expect("sum");
        let left = total.checked_sub(fee).expect("coins cover the fee").units();
        // Outputs never shrink below the floor, so coins stay spendable.
        let outputs = outputs.clamp(1, (left / MIN_OUTPUT.units()).max(1) as usize);
        let share = left / outputs as u64;
        let addresses = self.addresses();
        let mut random_address = || addresses[pick(rng, addresses.len())];
        let payments: Vec<TxOut> = (1..outputs)
            .map(|_| TxOut {
                value: Amount(share),
                address: random_address(),
            })
            .collect();
        build_transfer(
            &inputs,
            &payments,
            fee,
            random_address(),
            self.spec.chain_id(),
        )
        .expect("coins cover payments and fee")
    }
}

/// A uniform index below `n` (modulo bias is irrelevant here).
pub fn pick(rng: &mut impl RngCore, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// The coins a test may spend: unspent outputs of its keys.
#[derive(Clone)]
pub struct Wallet {
    pub coins: Vec<Coin>,
}

impl Wallet {
    pub fn from_genesis(chain: &FundedChain) -> Wallet {
        Wallet {
            coins: chain.spec.genesis_outputs(),
        }
    }

    /// Every unspent output of the chain's keys, as the store holds them.
    pub fn from_store(chain: &FundedChain, store: &Store) -> Wallet {
        let coins = chain
            .addresses()
            .iter()
            .flat_map(|a| store.unspent_by_address(a, usize::MAX).expect("unspent"))
            .collect();
        Wallet { coins }
    }

    /// A valid transfer of `inputs` random coins into `outputs` outputs,
    /// leaving `fee`. Its inputs leave the wallet and its outputs join it,
    /// so later transfers may spend them (within one batch too).
    pub fn transfer(
        &mut self,
        chain: &FundedChain,
        rng: &mut impl RngCore,
        (inputs, outputs): (usize, usize),
        fee: Amount,
    ) -> Tx {
        let mut spent: Vec<Coin> = Vec::with_capacity(inputs);
        let mut total = Amount::ZERO;
        // Takes more coins than asked if they cannot pay the fee and one output.
        while spent.len() < inputs || total < fee.checked_add(MIN_OUTPUT).expect("fee") {
            assert!(!self.coins.is_empty(), "wallet ran out of coins");
            let coin = self.coins.swap_remove(pick(rng, self.coins.len()));
            total = total.checked_add(coin.1.value).expect("total");
            spent.push(coin);
        }
        let tx = chain.spend(rng, &spent, outputs, fee);
        self.coins.extend(
            (0..tx.outputs.len() as u32).map(|vout| (tx.outpoint(vout), tx.outputs[vout as usize])),
        );
        tx
    }

    /// A valid one-input transfer of a random coin that leaves the wallet
    /// for good: the tx is never finalized (a pending or accepted tx), so
    /// its input stays unspent and no later transfer spends it.
    pub fn spend_set_aside(
        &mut self,
        chain: &FundedChain,
        rng: &mut impl RngCore,
        fee: Amount,
    ) -> Tx {
        let fits = |coin: &Coin| coin.1.value >= fee.checked_add(MIN_OUTPUT).expect("fee");
        let index = (0..self.coins.len())
            .map(|i| (pick(rng, self.coins.len()) + i) % self.coins.len())
            .find(|&i| fits(&self.coins[i]))
            .expect("wallet has a coin that covers the fee");
        let coin = self.coins.swap_remove(index);
        chain.spend(rng, &[coin], 1, fee)
    }
}

/// A finalized tx with a proof of `proof_bytes` bytes derived from its txid.
pub fn finalized(tx: &Tx, proof_bytes: usize, finalized_at_ms: u64) -> FinalizedTx {
    let txid = tx.txid();
    FinalizedTx {
        tx: tx.clone(),
        proof: txid.0.iter().cycle().take(proof_bytes).copied().collect(),
        finalized_at_ms,
    }
}

/// A checkpoint block as the store sees it: made-up bytes (the store
/// never decodes them) and the facts `apply_block` indexes.
#[derive(Clone, Debug)]
pub struct TestBlock {
    pub hash: Hash,
    pub height: u64,
    pub slot: u64,
    pub prev_hash: Hash,
    pub encoded: Vec<u8>,
    pub archived: Vec<Hash>,
    pub reward_id: Hash,
    pub reward_outputs: Vec<TxOut>,
    pub matures_at_height: u64,
}

impl TestBlock {
    /// The next block on `tip`, archiving `archived` and paying
    /// `reward_outputs`, spendable `maturity` blocks later. `salt` tells
    /// siblings apart (a fork choice replacing the tip).
    pub fn on(
        tip: &ChainTip,
        archived: Vec<Hash>,
        reward_outputs: Vec<TxOut>,
        maturity: u64,
        salt: u64,
    ) -> TestBlock {
        let height = tip.height + 1;
        let encoded = encode(&(tip.hash, height, salt, &archived, &reward_outputs));
        let hash = Hash::digest(&encoded);
        TestBlock {
            hash,
            height,
            slot: tip.slot + 1 + salt % 3,
            prev_hash: tip.hash,
            reward_id: Hash::of(&("reward", hash)),
            encoded,
            archived,
            reward_outputs,
            matures_at_height: height + maturity,
        }
    }

    pub fn commit(&self) -> BlockCommit<'_> {
        BlockCommit {
            hash: self.hash,
            height: self.height,
            slot: self.slot,
            prev_hash: self.prev_hash,
            encoded: &self.encoded,
            archived: &self.archived,
            reward_id: self.reward_id,
            reward_outputs: &self.reward_outputs,
            matures_at_height: self.matures_at_height,
        }
    }

    pub fn reward_outpoint(&self, vout: u32) -> OutPoint {
        OutPoint {
            txid: self.reward_id,
            vout,
        }
    }
}

/// `n` reward outputs of `value` to random keys of `chain`.
pub fn reward_outputs(
    chain: &FundedChain,
    rng: &mut impl RngCore,
    n: usize,
    value: Amount,
) -> Vec<TxOut> {
    let addresses = chain.addresses();
    (0..n)
        .map(|_| TxOut {
            value,
            address: addresses[pick(rng, addresses.len())],
        })
        .collect()
}

/// What a consistent store adds up to.
#[derive(Debug)]
pub struct Audit {
    pub utxos: BTreeMap<OutPoint, UtxoEntry>,
    pub recorded: BTreeSet<Hash>,
    pub unspent_total: Amount,
    pub fees_total: Amount,
    /// Value paid by the rewards of the chain's blocks.
    pub minted_total: Amount,
}

/// Reads the whole store from one snapshot and checks every invariant that
/// ties its tables together:
/// * the chain tables agree (`Store::check_chain_consistency`);
/// * the address index holds exactly the unspent outputs (immature rewards
///   included, no spent one);
/// * every recorded tx spent each of its inputs (`Spent { by: txid }`, so no
///   outpoint is spent twice), created each of its outputs, and has a proof;
/// * every `Spent { by }` names a recorded tx, and every output is genesis',
///   a recorded tx's or a block reward's;
/// * unspent values + fees of recorded txs = the genesis supply + rewards;
/// * every acceptance record guards an unspent output;
/// * the table counts in `stats` agree.
pub fn audit(store: &Store, chain: &FundedChain) -> Audit {
    let (genesis, supply) = (chain.spec.genesis_hash(), chain.supply());
    let summary = store
        .check_chain_consistency()
        .unwrap_or_else(|e| panic!("chain tables disagree: {e}"));
    let view = store.read().expect("read view");
    let reward_ids: BTreeSet<Hash> = view
        .scan_blocks_from(1)
        .expect("scan blocks")
        .map(|block| {
            let hash = block.expect("block").hash;
            let record = view.block_record(&hash).expect("record").expect("record");
            record.reward_id
        })
        .collect();
    assert_eq!(view.tip().expect("tip"), summary.tip, "one snapshot");
    let utxos: BTreeMap<OutPoint, UtxoEntry> = view
        .scan_utxos()
        .expect("scan utxos")
        .map(|r| r.expect("utxo record"))
        .collect();
    let index: BTreeSet<(Address, OutPoint)> = view
        .scan_address_index()
        .expect("scan index")
        .map(|r| r.expect("index record"))
        .collect();
    let unspent: BTreeSet<(Address, OutPoint)> = utxos
        .iter()
        .filter(|(_, e)| e.state.is_unspent())
        .map(|(op, e)| (e.output.address, *op))
        .collect();
    assert_eq!(index, unspent, "address index disagrees with the UTXO set");

    let mut recorded = BTreeSet::new();
    let mut fees_total = Amount::ZERO;
    for item in view.scan_txs().expect("scan txs") {
        let (txid, record) = item.expect("tx record");
        assert_eq!(record.tx.txid(), txid, "tx record under a foreign key");
        let mut inputs = Amount::ZERO;
        for input in &record.tx.inputs {
            let entry = utxos
                .get(&input.prev)
                .unwrap_or_else(|| panic!("{txid} spends {} which is missing", input.prev));
            assert_eq!(
                entry.state,
                UtxoState::Spent { by: txid },
                "input {} of recorded {txid}",
                input.prev
            );
            inputs = inputs.checked_add(entry.output.value).expect("inputs");
        }
        for (vout, output) in record.tx.outputs.iter().enumerate() {
            let outpoint = OutPoint {
                txid,
                vout: vout as u32,
            };
            assert_eq!(
                utxos.get(&outpoint).map(|e| e.output),
                Some(*output),
                "output {outpoint} of recorded {txid}"
            );
        }
        let outputs = Amount::checked_sum(record.tx.outputs.iter().map(|o| o.value)).expect("out");
        fees_total = fees_total
            .checked_add(inputs.checked_sub(outputs).expect("recorded tx overspends"))
            .expect("fees");
        assert!(
            view.proof(&txid).expect("proof").is_some(),
            "{txid} has no proof"
        );
        recorded.insert(txid);
    }
    for (outpoint, entry) in &utxos {
        if let UtxoState::Spent { by } = entry.state {
            assert!(
                recorded.contains(&by),
                "{outpoint} spent by unrecorded {by}"
            );
        }
        assert!(
            outpoint.txid == genesis
                || recorded.contains(&outpoint.txid)
                || reward_ids.contains(&outpoint.txid),
            "{outpoint} was created by no recorded tx and no block reward"
        );
    }
    let total = |outputs: &mut dyn Iterator<Item = &UtxoEntry>| {
        Amount::checked_sum(outputs.map(|e| e.output.value)).expect("total")
    };
    let unspent_total = total(&mut utxos.values().filter(|e| e.state.is_unspent()));
    let minted_total = total(
        &mut utxos
            .iter()
            .filter(|(op, _)| reward_ids.contains(&op.txid))
            .map(|(_, e)| e),
    );
    assert_eq!(
        unspent_total.checked_add(fees_total),
        supply.checked_add(minted_total),
        "unspent {unspent_total} + fees {fees_total} must equal the genesis supply \
         + rewards {minted_total}"
    );
    // A durable spend deletes the records of its outpoint in its own write.
    let mut guarded = 0;
    for tx in view.accepted_load(usize::MAX).expect("acceptance records") {
        for input in &tx.inputs {
            assert!(
                utxos.get(&input.prev).is_some_and(|e| e.state.is_unspent()),
                "acceptance of {} guards {}, which is not an unspent output",
                tx.txid(),
                input.prev
            );
            guarded += 1;
        }
    }
    let stats = view.stats().expect("stats");
    assert_eq!(stats.accepted, guarded);
    assert_eq!(stats.utxos, utxos.len() as u64);
    assert_eq!(stats.unspent, index.len() as u64);
    assert_eq!(stats.txs, recorded.len() as u64);
    assert_eq!(stats.proofs, recorded.len() as u64);
    assert_eq!(stats.txs, summary.archived + summary.unarchived);
    assert_eq!(stats.blocks, summary.tip.height);
    assert_eq!(stats.finalized_count, recorded.len() as u64);
    Audit {
        utxos,
        recorded,
        unspent_total,
        fees_total,
        minted_total,
    }
}
