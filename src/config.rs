//! Chain configuration files (`config/*.toml`): network, chain rules, Snowball
//! parameters and the genesis (allocations and validator list). Units are in
//! the key names. Every problem is reported with the key that has it.
//!
//! The devnet and testnet files are compiled in, so `timed` runs without any
//! file on disk; `--config` loads another one.

use crate::finality::MAX_WINDOW_TXS;
use crate::masternode::{EpochRules, EpochRulesError};
use crate::types::{Address, Amount, Network, PublicKeyBytes, TxOut, Validator, VrfPublicBytes};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

pub const DEVNET_TOML: &str = include_str!("../config/devnet.toml");
pub const TESTNET_TOML: &str = include_str!("../config/testnet.toml");
/// Config files are small; anything larger is refused before parsing.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// A day: slots longer than that are a typo, and the slot arithmetic in
/// milliseconds must never overflow.
pub const MAX_BLOCK_INTERVAL_SECS: u64 = 86_400;
/// Most uncertified blocks a config may allow (each is kept in memory).
pub const MAX_UNCERTIFIED_BLOCKS: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is {len} bytes, over the limit of {MAX_CONFIG_BYTES}")]
    TooLarge { path: PathBuf, len: u64 },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Rules every node of a chain must share; part of the genesis hash.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    #[serde(deserialize_with = "amount_text", serialize_with = "amount_units")]
    pub min_fee: Amount,
    pub max_tx_bytes: u32,
    pub block_interval_secs: u64,
    pub reward_maturity_blocks: u32,
}

/// Checkpoint-block timing (DESIGN §6): how far clocks may disagree, how
/// long an uncertified branch may grow, how long each rank waits before
/// publishing. Not part of the genesis hash: nodes of one chain
/// should share them, but a differing value only costs convergence speed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlocksConfig {
    /// A block for a slot that starts more than this ahead of our clock is
    /// refused as a future block; timestamps may stray this far from their slot.
    pub max_clock_skew_ms: u64,
    /// Most blocks a node keeps (and builds) above its last certified block.
    /// A partition side without the quorum stops producing there; any
    /// uncertified block within it may still be replaced by a better rival.
    pub max_uncertified_blocks: u64,
    /// Publish delay per estimated rank of a producer's VRF ticket.
    pub publish_step_ms: u64,
    /// Test knob: every validator publishes at slot start and none stays
    /// silent when it holds a better candidate (forces competing blocks).
    pub all_producers_publish: bool,
}

impl Default for BlocksConfig {
    fn default() -> BlocksConfig {
        BlocksConfig {
            max_clock_skew_ms: 500,
            max_uncertified_blocks: 256,
            publish_step_ms: 100,
            all_producers_publish: false,
        }
    }
}

/// The open masternode network's epochs (DESIGN §7). Part of the genesis
/// hash: nodes that count epochs differently hold different sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasternodesConfig {
    /// Certified blocks per epoch.
    pub epoch_blocks: u64,
    /// Epochs without a certified vote before a member leaves the set.
    pub inactive_epochs: u64,
    /// Epochs a deregistered member's collateral stays locked.
    pub unbonding_epochs: u64,
}

impl Default for MasternodesConfig {
    fn default() -> MasternodesConfig {
        MasternodesConfig {
            epoch_blocks: 10,
            inactive_epochs: 2,
            unbonding_epochs: 3,
        }
    }
}

impl MasternodesConfig {
    pub fn rules(&self) -> Result<EpochRules, EpochRulesError> {
        EpochRules::new(
            self.epoch_blocks,
            self.inactive_epochs,
            self.unbonding_epochs,
        )
    }
}

/// Snowball and finality tuning (DESIGN §4).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    pub k: u32,
    pub alpha: u32,
    pub beta: u32,
    pub poll_timeout_ms: u64,
    pub max_txs_per_query: u32,
    pub max_concurrent_polls: u32,
    pub mempool_expiry_ms: u64,
    pub mempool_max_txs: u32,
    /// A validator's window vote goes out this long after its first txid
    /// (DESIGN §5): the latency a window adds, against one signature per
    /// window for every node to check.
    pub vote_window_ms: u64,
    /// ... or as soon as it holds this many txids (at most `MAX_WINDOW_TXS`).
    pub max_window_txs: u32,
    /// Seats of the per-epoch finality committee (DESIGN §5 "Bigger
    /// sets"); a set with no more validators than this signs whole. Every
    /// node of a chain must use one value: it decides which proofs verify.
    #[serde(default = "default_committee_seats")]
    pub finality_committee_seats: u32,
}

fn default_committee_seats() -> u32 {
    crate::finality::committee::DEFAULT_COMMITTEE_SEATS
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationConfig {
    pub address: String,
    #[serde(deserialize_with = "amount_text")]
    pub amount: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorConfig {
    pub name: String,
    /// ed25519 identity key, 64 hex digits.
    pub pubkey: String,
    /// sr25519 VRF key, 64 hex digits.
    pub vrf_pubkey: String,
    pub weight: u64,
    /// Where peers reach it (`host:port`); a bootstrap hint, not part of the genesis hash.
    pub addr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisConfig {
    pub timestamp: u64,
    pub allocations: Vec<AllocationConfig>,
    pub validators: Vec<ValidatorConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    pub network: Network,
    pub ledger: LedgerConfig,
    pub consensus: ConsensusConfig,
    #[serde(default)]
    pub blocks: BlocksConfig,
    #[serde(default)]
    pub masternodes: MasternodesConfig,
    pub genesis: GenesisConfig,
}

/// A validated chain config with its genesis decoded into protocol types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    pub config: ChainConfig,
    pub allocations: Vec<TxOut>,
    pub validators: Vec<Validator>,
    /// `validators[i]` is reachable at `validator_addrs[i]`.
    pub validator_addrs: Vec<String>,
    pub epoch_rules: EpochRules,
}

impl ChainConfig {
    /// The compiled-in config of `network` (mainnet has none yet).
    pub fn builtin(network: Network) -> Result<ChainSpec, ConfigError> {
        match network {
            Network::Devnet => ChainConfig::parse(DEVNET_TOML, "builtin devnet.toml"),
            Network::Testnet => ChainConfig::parse(TESTNET_TOML, "builtin testnet.toml"),
            Network::Mainnet => Err(invalid(
                "network",
                "mainnet has no genesis yet; pass --config",
            )),
        }
    }

    pub fn load(path: &Path) -> Result<ChainSpec, ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                len,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        ChainConfig::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<ChainSpec, ConfigError> {
        let config: ChainConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        config.validate()
    }

    /// Checks every value and decodes the genesis; errors name the key.
    pub fn validate(self) -> Result<ChainSpec, ConfigError> {
        let l = &self.ledger;
        if l.max_tx_bytes < 256 || l.max_tx_bytes as usize > crate::types::tx::MAX_TX_BYTES_HARD {
            return Err(invalid(
                "ledger.max_tx_bytes",
                "must be between 256 and 1048576",
            ));
        }
        if l.block_interval_secs == 0 || l.block_interval_secs > MAX_BLOCK_INTERVAL_SECS {
            return Err(invalid(
                "ledger.block_interval_secs",
                format!("must be between 1 and {MAX_BLOCK_INTERVAL_SECS}"),
            ));
        }
        self.validate_blocks()?;
        let epoch_rules = self
            .masternodes
            .rules()
            .map_err(|e| invalid("masternodes", e.to_string()))?;
        let c = &self.consensus;
        if c.k == 0 {
            return Err(invalid("consensus.k", "must be at least 1"));
        }
        if c.alpha * 2 <= c.k || c.alpha > c.k {
            return Err(invalid(
                "consensus.alpha",
                format!(
                    "{} must be a majority of k ({}) and at most k",
                    c.alpha, c.k
                ),
            ));
        }
        for (key, v) in [
            ("consensus.beta", c.beta as u64),
            ("consensus.poll_timeout_ms", c.poll_timeout_ms),
            ("consensus.max_txs_per_query", c.max_txs_per_query as u64),
            (
                "consensus.max_concurrent_polls",
                c.max_concurrent_polls as u64,
            ),
            ("consensus.mempool_expiry_ms", c.mempool_expiry_ms),
            ("consensus.mempool_max_txs", c.mempool_max_txs as u64),
            ("consensus.vote_window_ms", c.vote_window_ms),
            ("consensus.max_window_txs", c.max_window_txs as u64),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let max_seats = crate::finality::committee::MAX_COMMITTEE_SEATS;
        if c.finality_committee_seats == 0 || c.finality_committee_seats > max_seats {
            return Err(invalid(
                "consensus.finality_committee_seats",
                format!("must be between 1 and {max_seats}"),
            ));
        }
        if c.max_window_txs as usize > MAX_WINDOW_TXS {
            return Err(invalid(
                "consensus.max_window_txs",
                format!("must be at most {MAX_WINDOW_TXS}"),
            ));
        }

        let g = &self.genesis;
        let mut allocations = Vec::with_capacity(g.allocations.len());
        let mut supply = Amount::ZERO;
        for (i, a) in g.allocations.iter().enumerate() {
            let key = format!("genesis.allocations[{i}]");
            let address = Address::parse(&a.address, self.network)
                .map_err(|e| invalid(format!("{key}.address"), e.to_string()))?;
            if a.amount == Amount::ZERO {
                return Err(invalid(format!("{key}.amount"), "must be above 0"));
            }
            supply = supply
                .checked_add(a.amount)
                .ok_or_else(|| invalid(format!("{key}.amount"), "total supply overflows"))?;
            allocations.push(TxOut {
                value: a.amount,
                address,
            });
        }
        if g.validators.is_empty() {
            return Err(invalid(
                "genesis.validators",
                "at least one validator is required",
            ));
        }
        let mut validators = Vec::with_capacity(g.validators.len());
        let mut total_weight: u64 = 0;
        for (i, v) in g.validators.iter().enumerate() {
            let key = format!("genesis.validators[{i}]");
            let id = PublicKeyBytes(
                hex32(&v.pubkey)
                    .ok_or_else(|| invalid(format!("{key}.pubkey"), "expected 64 hex digits"))?,
            );
            crate::crypto::PublicKey::parse(&id)
                .map_err(|e| invalid(format!("{key}.pubkey"), e.to_string()))?;
            let vrf_key =
                VrfPublicBytes(hex32(&v.vrf_pubkey).ok_or_else(|| {
                    invalid(format!("{key}.vrf_pubkey"), "expected 64 hex digits")
                })?);
            if v.weight == 0 {
                return Err(invalid(format!("{key}.weight"), "must be at least 1"));
            }
            if validators.iter().any(|o: &Validator| o.id == id) {
                return Err(invalid(format!("{key}.pubkey"), "listed twice"));
            }
            total_weight = total_weight
                .checked_add(v.weight)
                .ok_or_else(|| invalid(format!("{key}.weight"), "total weight overflows"))?;
            validators.push(Validator {
                id,
                vrf_key,
                weight: v.weight,
            });
        }
        let validator_addrs = g.validators.iter().map(|v| v.addr.clone()).collect();
        Ok(ChainSpec {
            config: self,
            allocations,
            validators,
            validator_addrs,
            epoch_rules,
        })
    }
}

impl ChainConfig {
    /// The block timing must leave every rank time to publish inside its
    /// slot, and a reorg must never reach a spendable reward.
    fn validate_blocks(&self) -> Result<(), ConfigError> {
        let b = &self.blocks;
        let interval_ms = self.ledger.block_interval_secs.saturating_mul(1000);
        if b.max_clock_skew_ms >= interval_ms {
            return Err(invalid(
                "blocks.max_clock_skew_ms",
                format!(
                    "{} must be below the block interval ({interval_ms} ms)",
                    b.max_clock_skew_ms
                ),
            ));
        }
        if !(1..=MAX_UNCERTIFIED_BLOCKS).contains(&b.max_uncertified_blocks) {
            return Err(invalid(
                "blocks.max_uncertified_blocks",
                format!(
                    "{} must be from 1 to {MAX_UNCERTIFIED_BLOCKS}: at least one block must be \
                     buildable, and the node keeps every one in memory",
                    b.max_uncertified_blocks
                ),
            ));
        }
        let validators = self.genesis.validators.len() as u64;
        let last_rank_ms = b.publish_step_ms.saturating_mul(validators);
        if last_rank_ms >= interval_ms {
            return Err(invalid(
                "blocks.publish_step_ms",
                format!(
                    "{} ms x {validators} validators = {last_rank_ms} ms must be below the block \
                     interval ({interval_ms} ms), so every rank can publish within its slot",
                    b.publish_step_ms
                ),
            ));
        }
        Ok(())
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn amount_text<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn amount_units<S: serde::Serializer>(a: &Amount, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(a.units())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_configs_parse() {
        let dev = ChainConfig::builtin(Network::Devnet).unwrap();
        assert_eq!(dev.config.network, Network::Devnet);
        assert!(!dev.validators.is_empty());
        ChainConfig::builtin(Network::Testnet).unwrap();
    }

    fn with(edit: &str, find: &str) -> String {
        DEVNET_TOML.replacen(find, edit, 1)
    }

    fn err_of(text: &str) -> String {
        ChainConfig::parse(text, "test").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err_of(&with("alpha = 5", "alpha = 14")).contains("consensus.alpha"));
        assert!(err_of(&with("beta = 0", "beta = 20")).contains("consensus.beta"));
        let bad_addr = DEVNET_TOML.replacen("address = \"dtime1", "address = \"dtime1x", 1);
        assert!(
            err_of(&bad_addr).contains("genesis.allocations[0].address"),
            "{}",
            err_of(&bad_addr)
        );
        assert!(err_of(&with("weight = 0", "weight = 10")).contains("genesis.validators[0].weight"));
    }

    #[test]
    fn block_timing_errors_name_the_key() {
        for (edit, find, key) in [
            (
                "max_clock_skew_ms = 2000",
                "max_clock_skew_ms = 500",
                "blocks.max_clock_skew_ms",
            ),
            (
                "max_uncertified_blocks = 100000",
                "max_uncertified_blocks = 256",
                "blocks.max_uncertified_blocks",
            ),
            (
                "max_uncertified_blocks = 0",
                "max_uncertified_blocks = 256",
                "blocks.max_uncertified_blocks",
            ),
            (
                "publish_step_ms = 500",
                "publish_step_ms = 250",
                "blocks.publish_step_ms",
            ),
            (
                "block_interval_secs = 0",
                "block_interval_secs = 2",
                "ledger.block_interval_secs",
            ),
        ] {
            let err = err_of(&with(edit, find));
            assert!(err.contains(key), "{edit}: {err}");
        }
    }

    #[test]
    fn a_chain_file_without_a_blocks_section_takes_the_defaults() {
        let start = DEVNET_TOML.find("[blocks]").unwrap();
        let end = DEVNET_TOML.find("[consensus]").unwrap();
        let text = format!("{}{}", &DEVNET_TOML[..start], &DEVNET_TOML[end..]);
        let spec = ChainConfig::parse(&text, "test").unwrap();
        assert_eq!(spec.config.blocks, BlocksConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_types_are_parse_errors() {
        assert!(err_of(&with("alpah = 14", "alpha = 14")).contains("alpah"));
        assert!(err_of(&with("k = \"twenty\"", "k = 20")).contains("k"));
    }
}
