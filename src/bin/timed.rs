//! `timed`: the TIME Coin node. `--dev` runs a one-validator chain that
//! finalizes alone (like a regtest); `--datadir D` runs a node of a
//! configured chain (consensus, ledger and JSON-RPC; peers arrive with the
//! net layer). `--print-genesis` prints the chain's genesis and exits.
//!
//! A bad config or datadir is one line on stderr, exit code 1; a clean stop
//! (SIGINT, SIGTERM or the `stop` RPC) exits 0.

use clap::Parser;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use timecoin::config::{ChainConfig, ChainSpec, ConfigError};
use timecoin::crypto::Keypair;
use timecoin::node::channels::NoNet;
use timecoin::node::{dev_chain_spec, dev_validator_key, signals, Node, NodeConfig, StopError};
use timecoin::rpc::RpcConfig;
use timecoin::types::{Amount, Network};

/// A validator key file is 64 hex digits (and maybe a newline).
const MAX_KEY_FILE_BYTES: u64 = 1024;

#[derive(Parser)]
#[command(
    name = "timed",
    version,
    about = "TIME Coin node: Snowball finality, finality proofs, checkpoint blocks",
    after_help = "\
Examples:
  timed --dev --datadir /tmp/dev               # one-validator local chain, RPC on a free port
  timed --datadir ~/.timecoin/devnet --validator-key v0.key --rpc-port 24101
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
    /// Directory of the node's chain database, cookie and rpc.port [--dev: ./timecoin-dev]
    #[arg(long, value_name = "PATH")]
    datadir: Option<PathBuf>,
    /// Run a one-validator dev chain (devnet rules, validator 0 alone, demo wallet funded)
    #[arg(long, conflicts_with_all = ["network", "config", "validator_key"])]
    dev: bool,
    /// File holding this validator's ed25519 secret key as 64 hex digits
    #[arg(long, value_name = "PATH")]
    validator_key: Option<PathBuf>,
    /// JSON-RPC port on 127.0.0.1; 0 picks a free one (see <datadir>/rpc.port)
    #[arg(long, default_value_t = 0)]
    rpc_port: u16,
    /// Accept this RPC user (with --rpc-password) besides the cookie
    #[arg(long, requires = "rpc_password")]
    rpc_user: Option<String>,
    #[arg(long, requires = "rpc_user")]
    rpc_password: Option<String>,
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
    #[error("cannot read validator key {path}: {problem}")]
    ValidatorKey { path: PathBuf, problem: String },
    #[error(transparent)]
    Node(#[from] timecoin::node::StartError),
    #[error("cannot set up signal handling: {0}")]
    Signals(io::Error),
    #[error(transparent)]
    Stop(#[from] StopError),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let spec = match args
        .dev
        .then(dev_chain_spec)
        .map_or_else(|| chain_spec(&args), Ok)
    {
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
    run_node(&args, spec)
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

/// Runs the node until SIGINT/SIGTERM or the `stop` RPC.
fn run_node(args: &Args, spec: ChainSpec) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let datadir = match (&args.datadir, args.dev) {
        (Some(dir), _) => dir.clone(),
        (None, true) => PathBuf::from("timecoin-dev"),
        (None, false) => {
            let _ = writeln!(
                io::stderr(),
                "error: pass --datadir DIR for the node's data (or --dev for a local one-validator chain)"
            );
            return ExitCode::from(2);
        }
    };
    match start_and_wait(args, spec, datadir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start_and_wait(args: &Args, spec: ChainSpec, datadir: PathBuf) -> Result<(), StartError> {
    // Before any thread starts: they all inherit the blocked mask.
    signals::block_termination_signals().map_err(StartError::Signals)?;
    let identity = match (&args.validator_key, args.dev) {
        (_, true) => Some(dev_validator_key()),
        (Some(path), false) => Some(read_validator_key(path)?),
        (None, false) => None,
    };
    let rpc = RpcConfig {
        port: args.rpc_port,
        user: args.rpc_user.clone(),
        password: args.rpc_password.clone(),
        ..RpcConfig::default()
    };
    let node = Node::start(
        NodeConfig {
            datadir,
            spec,
            identity,
            rpc,
        },
        NoNet,
    )?;
    signals::spawn_listener(node.stop_sender()).map_err(StartError::Signals)?;
    let reason = node.run_until_stopped()?;
    log::info!("stopped ({reason:?})");
    Ok(())
}

fn read_validator_key(path: &Path) -> Result<Keypair, StartError> {
    let problem = |problem: String| StartError::ValidatorKey {
        path: path.to_path_buf(),
        problem,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| problem(e.to_string()))?
        .len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(problem(format!("{len} bytes is not a key file")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret)
        .map_err(|_| problem("expected 64 hex digits (the ed25519 secret key)".to_string()))?;
    Ok(Keypair::from_secret(secret))
}
