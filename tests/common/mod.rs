//! Shared test fixtures: a chain whose funded keys the tests hold, its genesis
//! UTXO set, and builders for signed transfers. Test binaries include it with
//! `mod common;`, benches with `#[path = "../tests/common/mod.rs"] mod common;`.
//!
//! Everything is deterministic: keys derive from labels, filler from seeds.
//! It must never hide a rule: transactions are built and signed by the real
//! wallet code and checked by the real `ledger::validate`.

// Each test binary uses a different part of the fixture.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::ops::Range;
use timecoin::config::{AllocationConfig, ChainConfig, ChainSpec};
use timecoin::crypto::Keypair;
use timecoin::crypto::{signing_message, Domain, VrfKeypair};
use timecoin::genesis::local_chain_toml;
use timecoin::ledger::{MemUtxoSet, ValidationParams};
use timecoin::types::amount::UNITS_PER_TIME;
use timecoin::types::{Address, Amount, ChainId, Hash, Network, OutPoint, Tier, Tx, TxOut};
use timecoin::wallet::{
    build_registration, build_transfer, sign_inputs, MasternodeInfo, Spendable,
};

/// What each test wallet holds in the genesis.
pub const WALLET_FUNDS: Amount = Amount(1_000 * UNITS_PER_TIME);
/// How many funded wallets [`TestChain::devnet`] has.
pub const WALLETS: usize = 4;

/// A chain with the built-in rules of its network (four label-keyed
/// validators) whose genesis funds `wallets[i]` with [`WALLET_FUNDS`] at
/// output `i`.
pub struct TestChain {
    pub spec: ChainSpec,
    pub wallets: Vec<Keypair>,
}

impl TestChain {
    pub fn new(network: Network, wallets: usize) -> TestChain {
        let text = local_chain_toml(network, 4, 24100, 5);
        let mut config = ChainConfig::parse(&text, "test chain")
            .expect("generated chain config parses")
            .config;
        let keys: Vec<Keypair> = (0..wallets)
            .map(|i| Keypair::from_seed_label(&format!("timecoin test wallet {i}")))
            .collect();
        config.genesis.allocations = keys
            .iter()
            .map(|key| AllocationConfig {
                address: Address::from_pubkey(&key.public()).to_text(network),
                amount: WALLET_FUNDS,
            })
            .collect();
        let spec = config.validate().expect("test chain config is valid");
        TestChain {
            spec,
            wallets: keys,
        }
    }

    /// Devnet rules (min fee 0.001 TIME, 16 KiB transactions), four wallets.
    pub fn devnet() -> TestChain {
        TestChain::new(Network::Devnet, WALLETS)
    }

    pub fn params(&self) -> ValidationParams {
        self.spec.validation_params()
    }

    pub fn chain_id(&self) -> ChainId {
        self.spec.chain_id()
    }

    pub fn min_fee(&self) -> Amount {
        self.params().min_fee
    }

    pub fn address(&self, wallet: usize) -> Address {
        Address::from_pubkey(&self.wallets[wallet].public())
    }

    /// The genesis output that funds `wallet`.
    pub fn funding(&self, wallet: usize) -> OutPoint {
        OutPoint {
            txid: self.spec.genesis_hash(),
            vout: wallet as u32,
        }
    }

    /// The UTXO set right after genesis.
    pub fn utxos(&self) -> MemUtxoSet {
        let mut set = MemUtxoSet::default();
        set.add_outputs(self.spec.genesis_hash(), &self.spec.allocations);
        set
    }

    pub fn spendable(&self, wallet: usize) -> Spendable<'_> {
        Spendable {
            outpoint: self.funding(wallet),
            value: WALLET_FUNDS,
            key: &self.wallets[wallet],
        }
    }

    /// A signed transfer spending the genesis funds of each wallet in `from`,
    /// paying `pay`, leaving `fee`, with change back to `from[0]`.
    pub fn transfer(&self, from: &[usize], pay: &[TxOut], fee: Amount) -> Tx {
        let inputs: Vec<Spendable<'_>> = from.iter().map(|&w| self.spendable(w)).collect();
        build_transfer(&inputs, pay, fee, self.address(from[0]), self.chain_id())
            .expect("test transfer is affordable")
    }

    /// The standard valid transaction: wallets 0 and 1 pay 10 TIME to wallet 2,
    /// leave the minimum fee, and take change: two inputs, two outputs.
    pub fn two_in_two_out(&self) -> Tx {
        self.transfer(&[0, 1], &[self.pay(2, 10)], self.min_fee())
    }

    /// Valid signed transfers of every shape from 1 to [`WALLETS`] inputs and
    /// 1 to 3 outputs (change included), each spending genesis funds.
    pub fn sample_transfers(&self) -> Vec<Tx> {
        let mut txs = Vec::new();
        for inputs in 1..=self.wallets.len() {
            let from: Vec<usize> = (0..inputs).collect();
            for paid in 0..3 {
                let pay: Vec<TxOut> = (0..paid).map(|i| self.pay(i, 1 + i as u64)).collect();
                txs.push(self.transfer(&from, &pay, self.min_fee()));
            }
        }
        txs
    }

    /// An output paying `time` whole TIME to `wallet`.
    pub fn pay(&self, wallet: usize, time: u64) -> TxOut {
        TxOut {
            value: Amount::from_time(time).expect("test amount fits"),
            address: self.address(wallet),
        }
    }

    /// A valid Bronze registration of [`masternode_key`]: wallets 0 and 1
    /// fund the 1,000 TIME collateral, owned by wallet 0.
    pub fn registration(&self) -> Tx {
        let identity = masternode_key();
        let info = MasternodeInfo {
            tier: Tier::Bronze,
            identity: &identity,
            vrf_key: VrfKeypair::from_secret(identity.secret()).public(),
            listen_addr: "127.0.0.1:24200".parse().expect("literal address"),
            payout: self.address(3),
        };
        let inputs = [self.spendable(0), self.spendable(1)];
        build_registration(
            &inputs,
            &info,
            self.address(0),
            self.min_fee(),
            self.address(1),
            self.chain_id(),
        )
        .expect("test registration is affordable")
    }

    /// Signs a registration of wallets 0 and 1 again (identity with
    /// `identity`), after a test changed it on purpose.
    pub fn resign_registration(&self, tx: &mut Tx, identity: &Keypair) {
        let message = signing_message(Domain::Registration, self.chain_id(), &tx.txid());
        if let Some(registration) = &mut tx.registration {
            registration.identity_sig = identity.sign(&message);
        }
        self.resign(tx, &[0, 1]);
    }

    /// Signs every input of `tx` again, input `i` with the key of `owners[i]`,
    /// after a test changed the body on purpose.
    pub fn resign(&self, tx: &mut Tx, owners: &[usize]) {
        let keys: Vec<&Keypair> = owners.iter().map(|&w| &self.wallets[w]).collect();
        sign_inputs(tx, &keys, self.chain_id());
    }
}

/// The identity key of the masternode [`TestChain::registration`] registers.
pub fn masternode_key() -> Keypair {
    Keypair::from_seed_label("timecoin test masternode")
}

/// Adds `count` unspent outputs with seeded random outpoints and owners, so
/// lookups run against a set of realistic size.
pub fn add_filler_utxos(set: &mut MemUtxoSet, count: usize, seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for _ in 0..count {
        let mut txid = [0u8; 32];
        let mut address = [0u8; 20];
        rng.fill_bytes(&mut txid);
        rng.fill_bytes(&mut address);
        let output = TxOut {
            value: Amount(1 + rng.next_u64() % (1_000 * UNITS_PER_TIME)),
            address: Address(address),
        };
        set.add_outputs(Hash(txid), &[output]);
    }
}

/// What a run of bytes in a transaction's canonical encoding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The `u32` version.
    Version,
    /// A `u64` count of inputs or outputs.
    Count,
    /// The `u64` length prefix of a fixed-size byte array (hash, key, address).
    ArrayLen,
    /// Content covered by the txid: outpoints, public keys, values, addresses.
    Body,
    /// The 64 signature bytes of input `.0`, outside the txid.
    Signature(usize),
    /// A tag that picks the shape of what follows (a registration's version,
    /// tier or address family): changed, the rest decodes differently or not
    /// at all.
    Tag,
    /// A registration's 64 identity-signature bytes, outside the txid.
    IdentitySignature,
}

/// The canonical encoding of `tx`, field by field, in byte order. This is the
/// wire layout written out: tests check it against the encoder.
pub fn tx_fields(tx: &Tx) -> Vec<(Field, Range<usize>)> {
    let version = match tx.registration {
        None => Field::Version,
        Some(_) => Field::Tag,
    };
    let mut lengths = vec![(version, 4), (Field::Count, 8)];
    for index in 0..tx.inputs.len() {
        lengths.extend([
            (Field::ArrayLen, 8),
            (Field::Body, 32), // previous txid
            (Field::Body, 4),  // vout
            (Field::ArrayLen, 8),
            (Field::Body, 32), // public key
            (Field::ArrayLen, 8),
            (Field::Signature(index), 64),
        ]);
    }
    lengths.push((Field::Count, 8));
    for _ in &tx.outputs {
        lengths.extend([
            (Field::Body, 8), // value
            (Field::ArrayLen, 8),
            (Field::Body, 20), // address
        ]);
    }
    if let Some(registration) = &tx.registration {
        let ip = if registration.listen_addr.is_ipv4() {
            4
        } else {
            16
        };
        lengths.extend([
            (Field::Tag, 4), // tier
            (Field::ArrayLen, 8),
            (Field::Body, 32), // identity
            (Field::ArrayLen, 8),
            (Field::Body, 32), // VRF key
            (Field::Tag, 4),   // address family
            (Field::Body, ip),
            (Field::Body, 2), // port
            (Field::ArrayLen, 8),
            (Field::Body, 20), // payout
            (Field::ArrayLen, 8),
            (Field::IdentitySignature, 64),
        ]);
    }
    let mut at = 0;
    lengths
        .into_iter()
        .map(|(field, len)| {
            at += len;
            (field, at - len..at)
        })
        .collect()
}

/// Where each length prefix (count or array length) of `tx`'s encoding starts.
pub fn tx_length_prefixes(tx: &Tx) -> Vec<usize> {
    tx_fields(tx)
        .into_iter()
        .filter(|(field, _)| matches!(field, Field::Count | Field::ArrayLen))
        .map(|(_, range)| range.start)
        .collect()
}
