//! `timed`: the TIME Coin node. Today it loads and checks the chain config and
//! prints its genesis (`--print-genesis`); running the node (store, network,
//! consensus threads) is the next step and replaces `run_node`.
//!
//! A bad config is one line on stderr naming the key, exit code 1.

use clap::Parser;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use timecoin::config::{ChainConfig, ChainSpec, ConfigError};
use timecoin::types::{Amount, Network};

#[derive(Parser)]
#[command(
    name = "timed",
    version,
    about = "TIME Coin node: Snowball finality, finality proofs, checkpoint blocks",
    after_help = "\
Examples:
  timed --print-genesis                        # built-in devnet
  timed --network testnet --print-genesis
  timed --config mychain.toml --print-genesis  # any chain config file"
)]
struct Args {
    /// Network: devnet, testnet or mainnet [default: the --config file's, else devnet]
    #[arg(long)]
    network: Option<Network>,
    /// Chain config file (TOML) to use instead of the network's built-in one
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Directory of the node's chain database
    #[arg(long, value_name = "PATH")]
    datadir: Option<PathBuf>,
    /// Print the genesis (network, chain id, hash, validators, supply) and exit
    #[arg(long)]
    print_genesis: bool,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config file {path} is for {found}, but --network {requested} was given")]
    NetworkMismatch {
        path: PathBuf,
        found: Network,
        requested: Network,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let spec = match chain_spec(&args) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.print_genesis {
        let _ = io::stdout().write_all(genesis_summary(&spec).as_bytes());
        return ExitCode::SUCCESS;
    }
    run_node(&args)
}

/// The chain config: `--config` if given (checked against `--network`),
/// else the network's built-in one.
fn chain_spec(args: &Args) -> Result<ChainSpec, StartError> {
    let Some(path) = &args.config else {
        return Ok(ChainConfig::builtin(
            args.network.unwrap_or(Network::Devnet),
        )?);
    };
    let spec = ChainConfig::load(path)?;
    match args.network {
        Some(requested) if requested != spec.config.network => Err(StartError::NetworkMismatch {
            path: path.clone(),
            found: spec.config.network,
            requested,
        }),
        _ => Ok(spec),
    }
}

fn genesis_summary(spec: &ChainSpec) -> String {
    // `ChainConfig::validate` refused overflowing supply and weight.
    let supply = Amount::checked_sum(spec.allocations.iter().map(|o| o.value));
    let total_weight = spec
        .validators
        .iter()
        .fold(0u64, |sum, v| sum.saturating_add(v.weight));
    format!(
        "network:      {}\nchain id:     {}\ngenesis hash: {}\nvalidators:   {} (total weight {total_weight})\ntotal supply: {}\n",
        spec.config.network,
        spec.chain_id(),
        spec.genesis_hash(),
        spec.validators.len(),
        supply.map_or_else(|| "overflows".to_string(), |a| a.to_string()),
    )
}

/// Placeholder until the node is wired up: says so and exits 2.
fn run_node(args: &Args) -> ExitCode {
    let datadir = args.datadir.as_deref().unwrap_or(std::path::Path::new("."));
    let _ = writeln!(
        io::stderr(),
        "error: running the node (datadir {}) is not implemented yet; only --print-genesis works",
        datadir.display()
    );
    ExitCode::from(2)
}
