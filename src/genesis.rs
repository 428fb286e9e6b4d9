//! The genesis: what every node of a chain starts from. Its hash commits to the
//! chain id, timestamp, chain rules, validator set and allocations, so two
//! nodes with different rules or sets can never agree on a datadir or a peer.

use crate::config::{BlocksConfig, ChainSpec, LedgerConfig, MasternodesConfig};
use crate::crypto::{Keypair, VrfKeypair};
use crate::finality::{draw_committee, ValidatorSet};
use crate::types::{Address, ChainId, Hash, Network, OutPoint, Tier, TxOut, Validator};
use serde::Serialize;

/// The canonical, hashed form of a chain's start.
#[derive(Serialize)]
struct GenesisBody<'a> {
    chain_id: ChainId,
    timestamp: u64,
    ledger: &'a LedgerConfig,
    /// Decides which proofs verify, so two nodes that disagree on it must
    /// not share a chain (the handshake compares genesis hashes).
    finality_committee_seats: u32,
    masternodes: &'a MasternodesConfig,
    validators: &'a [Validator],
    allocations: &'a [TxOut],
}

impl ChainSpec {
    pub fn chain_id(&self) -> ChainId {
        self.config.network.chain_id()
    }

    fn genesis_body(&self) -> GenesisBody<'_> {
        GenesisBody {
            chain_id: self.chain_id(),
            timestamp: self.config.genesis.timestamp,
            ledger: &self.config.ledger,
            finality_committee_seats: self.config.consensus.finality_committee_seats,
            masternodes: &self.config.masternodes,
            validators: &self.validators,
            allocations: &self.allocations,
        }
    }

    pub fn genesis_hash(&self) -> Hash {
        Hash::of(&self.genesis_body())
    }

    /// The finality committee of the genesis validator set `set` (epoch 0,
    /// seeded by the genesis hash): the signers of every window vote and
    /// proof. Block certification stays on the whole set.
    pub fn finality_committee(&self, set: &ValidatorSet) -> ValidatorSet {
        let seats = self.config.consensus.finality_committee_seats;
        draw_committee(set, &self.genesis_hash(), seats)
    }

    /// The canonical encoding the genesis hash is taken of (`getblock` at
    /// verbosity 0 shows it).
    pub fn genesis_bytes(&self) -> Vec<u8> {
        crate::types::encoding::encode(&self.genesis_body())
    }

    /// Genesis allocations as spendable outputs: output `i` of the genesis hash.
    pub fn genesis_outputs(&self) -> Vec<(OutPoint, TxOut)> {
        let txid = self.genesis_hash();
        self.allocations
            .iter()
            .enumerate()
            .map(|(i, out)| {
                (
                    OutPoint {
                        txid,
                        vout: i as u32,
                    },
                    *out,
                )
            })
            .collect()
    }

    pub fn validation_params(&self) -> crate::ledger::ValidationParams {
        crate::ledger::ValidationParams {
            chain_id: self.chain_id(),
            min_fee: self.config.ledger.min_fee,
            max_tx_bytes: self.config.ledger.max_tx_bytes as usize,
        }
    }
}

/// Public, well-known devnet keys: anyone can run the built-in devnet, so
/// its keys are derived from labels, like a regtest. Never use them elsewhere.
pub fn devnet_validator_keys(index: usize) -> (Keypair, VrfKeypair) {
    let identity = Keypair::from_seed_label(&format!("timecoin devnet validator {index}"));
    let vrf = validator_vrf_key(&identity);
    (identity, vrf)
}

/// A validator's VRF key, derived from its identity key file (one secret
/// to keep): the 32-byte secret expanded as an sr25519 mini secret. The
/// genesis registers the public half beside the identity.
pub fn validator_vrf_key(identity: &Keypair) -> VrfKeypair {
    VrfKeypair::from_secret(identity.secret())
}

/// The devnet's slot length: short, so tests see many blocks.
pub const DEVNET_BLOCK_INTERVAL_SECS: u64 = 2;

/// The devnet demo wallet's well-known key (funded in the built-in genesis).
pub fn devnet_wallet_key() -> Keypair {
    Keypair::from_seed_label("timecoin devnet wallet")
}

/// Publish step for a local network: every rank publishes within the first
/// half of the slot, as far apart as that allows (at most a second), so a
/// better candidate has time to cross a loaded network before the next
/// rank gives up waiting for it.
fn publish_step_ms(block_interval_secs: u64, validators: usize) -> u64 {
    let ranks = u64::try_from(validators.max(1)).unwrap_or(u64::MAX);
    (block_interval_secs.saturating_mul(1_000) / 2 / ranks).clamp(1, 1_000)
}

/// Chain config text for a local network of `validators` label-keyed nodes
/// (listening from `base_port` up), with the demo wallet funded. This is how
/// `config/devnet.toml` was made, and how `timed devnet` makes its own.
pub fn local_chain_toml(
    network: Network,
    validators: usize,
    base_port: u16,
    block_interval_secs: u64,
) -> String {
    let wallet = Address::from_pubkey(&devnet_wallet_key().public()).to_text(network);
    let blocks = BlocksConfig::default();
    let (skew, uncertified) = (blocks.max_clock_skew_ms, blocks.max_uncertified_blocks);
    let masternodes = MasternodesConfig::default();
    let step = publish_step_ms(block_interval_secs, validators);
    let mut out = format!(
        "# {network} chain: rules, Snowball parameters and genesis. Generated by\n\
         # timecoin::genesis::local_chain_toml; keys are derived from public labels.\n\
         network = \"{network}\"\n\n\
         [ledger]\n\
         min_fee = \"0.001\"          # TIME\n\
         max_tx_bytes = 16384\n\
         block_interval_secs = {block_interval_secs}\n\
         reward_maturity_blocks = 10\n\n\
         [blocks]\n\
         max_clock_skew_ms = {skew}\n\
         max_uncertified_blocks = {uncertified}\n\
         publish_step_ms = {step}\n\
         all_producers_publish = false\n\n\
         [consensus]\n\
         k = 20\n\
         alpha = 14\n\
         beta = 20\n\
         poll_timeout_ms = 200\n\
         max_txs_per_query = 64\n\
         max_concurrent_polls = 4\n\
         mempool_expiry_ms = 60000\n\
         mempool_max_txs = 100000\n\
         vote_window_ms = 10\n\
         max_window_txs = 1024\n\
         finality_committee_seats = 128\n\n\
         [masternodes]\n\
         epoch_blocks = {}\n\
         inactive_epochs = {}\n\
         unbonding_epochs = {}\n\n\
         [genesis]\n\
         timestamp = 1764028800\n\n\
         [[genesis.allocations]]\n\
         address = \"{wallet}\"     # demo wallet\n\
         amount = \"1000000\"\n",
        masternodes.epoch_blocks, masternodes.inactive_epochs, masternodes.unbonding_epochs,
    );
    for i in 0..validators {
        let (id, _) = devnet_validator_keys(i);
        let addr = Address::from_pubkey(&id.public()).to_text(network);
        out.push_str(&format!("\n[[genesis.allocations]]\naddress = \"{addr}\"     # validator {i}\namount = \"1000\"\n"));
    }
    for i in 0..validators {
        let (id, vrf) = devnet_validator_keys(i);
        out.push_str(&format!(
            "\n[[genesis.validators]]\nname = \"validator-{i}\"\npubkey = \"{}\"\nvrf_pubkey = \"{}\"\nweight = {}    # bronze\naddr = \"127.0.0.1:{}\"\n",
            hex::encode(id.public().0),
            hex::encode(vrf.public().0),
            Tier::Bronze.weight(),
            base_port as usize + 2 * i,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::DEVNET_BLOCK_INTERVAL_SECS;
    use crate::config::{ChainConfig, DEVNET_TOML};
    use crate::types::{Address, Network};

    #[test]
    fn genesis_hash_is_deterministic_and_commits_to_rules() {
        let a = ChainConfig::parse(DEVNET_TOML, "a").unwrap();
        let b = ChainConfig::parse(DEVNET_TOML, "b").unwrap();
        assert_eq!(a.genesis_hash(), b.genesis_hash());
        let c = ChainConfig::parse(
            &DEVNET_TOML.replacen("max_tx_bytes = 16384", "max_tx_bytes = 16385", 1),
            "c",
        )
        .unwrap();
        assert_ne!(a.genesis_hash(), c.genesis_hash());
        let seats = ChainConfig::parse(
            &DEVNET_TOML.replacen(
                "finality_committee_seats = 128",
                "finality_committee_seats = 64",
                1,
            ),
            "seats",
        )
        .unwrap();
        assert_ne!(a.genesis_hash(), seats.genesis_hash());
    }

    #[test]
    fn builtin_configs_are_the_generated_ones() {
        assert_eq!(
            crate::config::DEVNET_TOML,
            super::local_chain_toml(Network::Devnet, 4, 24100, DEVNET_BLOCK_INTERVAL_SECS)
        );
        assert_eq!(
            crate::config::TESTNET_TOML,
            super::local_chain_toml(Network::Testnet, 4, 24100, 600)
        );
    }

    #[test]
    fn builtin_devnet_uses_the_well_known_keys() {
        let spec = ChainConfig::builtin(Network::Devnet).unwrap();
        for (i, v) in spec.validators.iter().enumerate() {
            let (id, vrf) = super::devnet_validator_keys(i);
            assert_eq!(v.id, id.public(), "validator {i}");
            assert_eq!(v.vrf_key, vrf.public(), "validator {i}");
        }
        let wallet = Address::from_pubkey(&super::devnet_wallet_key().public());
        assert!(spec.allocations.iter().any(|o| o.address == wallet));
    }
}
