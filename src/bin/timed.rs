//! `timed`: the TIME Coin node. `--dev` runs a one-validator chain that
//! finalizes alone (like a regtest); `--datadir D` runs a node of a
//! configured chain (consensus, ledger, net and JSON-RPC) talking to
//! `--peer`s (default: the genesis validators' addresses). `timed devnet`
//! runs a local N-validator devnet of child processes. `--print-genesis`
//! prints the chain's genesis and exits.
//!
//! A bad config or datadir is one line on stderr, exit code 1; a clean stop
//! (SIGINT, SIGTERM or the `stop` RPC) exits 0. A running node's pid is in
//! `<datadir>/timed.pid` (for `time-cli bench`'s CPU and memory report).

use clap::{Args as ClapArgs, Parser, Subcommand};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use timecoin::config::{ChainConfig, ChainSpec, ConfigError};
use timecoin::devnet::{DevnetError, DevnetOptions};
use timecoin::net::rate_limit::DESIGN_TX_PER_SEC;
use timecoin::net::{NetConfig, PollLoad, RateLimits};
use timecoin::node::key_file::{read_key_file, KeyFileError};
use timecoin::node::{dev_chain_spec, dev_validator_key, signals, Node, NodeConfig, StopError};
use timecoin::rpc::RpcConfig;
use timecoin::types::{Amount, Network};

#[derive(Parser)]
#[command(
    name = "timed",
    version,
    about = "TIME Coin node: Snowball finality, finality proofs, checkpoint blocks",
    after_help = "\
Examples:
  timed devnet --validators 4                  # local 4-validator devnet in ./devnet
  timed --dev --datadir /tmp/dev               # one-validator local chain, RPC on a free port
  timed --datadir ~/.timecoin/devnet --validator-key v0.json --listen 127.0.0.1:24100
  timed --print-genesis                        # built-in devnet
  timed --network testnet --print-genesis
  timed --config mychain.toml --print-genesis  # any chain config file"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
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
    /// Validator (masternode identity) key file: JSON {"secret_key": "<64 hex>"}
    /// (or 64 hex digits), mode 0600
    #[arg(long, visible_alias = "masternode-key", value_name = "PATH")]
    validator_key: Option<PathBuf>,
    /// Peer-to-peer listen address [default: our genesis validator address, else 0.0.0.0:0]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Peer to connect to (repeatable) [default: every other genesis validator address]
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
    /// JSON-RPC port on 127.0.0.1; 0 picks a free one (see <datadir>/rpc.port)
    #[arg(long, default_value_t = 0)]
    rpc_port: u16,
    /// Accept this RPC user (with --rpc-password) besides the cookie
    #[arg(long, requires = "rpc_password")]
    rpc_user: Option<String>,
    #[arg(long, requires = "rpc_user")]
    rpc_password: Option<String>,
    /// Run this shell command for each transaction once it is durable-final;
    /// %s in it is replaced by the txid (like bitcoind's -walletnotify),
    /// e.g. --txfinal-notify 'echo %s >> /tmp/final.txt'
    #[arg(long, value_name = "CMD")]
    txfinal_notify: Option<String>,
    /// Print the genesis (network, chain id, hash, validators, supply) and exit
    #[arg(long)]
    print_genesis: bool,
    /// Resume finalization after a safety violation halted this node (its
    /// evidence stays in the datadir; `getevidence`, `getblockchaininfo`)
    #[arg(long)]
    clear_safety_halt: bool,
}

#[derive(Subcommand)]
enum Sub {
    /// Run a local devnet of N validators as child processes, sending demo transfers
    Devnet(DevnetArgs),
}

#[derive(ClapArgs)]
struct DevnetArgs {
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Also start this many nodes outside the genesis set and register each
    /// as a Bronze masternode from the demo wallet: they vote from the epoch
    /// after next
    #[arg(long, default_value_t = 0)]
    joiners: usize,
    /// Directory of the chain config, node datadirs, keys and demo wallet (reused)
    #[arg(long, default_value = "devnet")]
    dir: PathBuf,
    /// Node i listens for peers on 127.0.0.1:(base-port + 2i) (the chain
    /// config `timed devnet` writes; the odd ports stay free)
    #[arg(long, default_value_t = 24100)]
    base_port: u16,
    /// Only run the nodes; send no demo transfers
    #[arg(long)]
    quiet: bool,
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
    #[error(transparent)]
    ValidatorKey(#[from] KeyFileError),
    #[error("genesis validator address {addr:?} is not IP:PORT; pass --listen and --peer")]
    ValidatorAddr { addr: String },
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    #[error("cannot find the timed binary to run the devnet nodes: {0}")]
    CurrentExe(io::Error),
    #[error(transparent)]
    Node(#[from] timecoin::node::StartError),
    #[error("cannot set up signal handling: {0}")]
    Signals(io::Error),
    #[error(transparent)]
    Stop(#[from] StopError),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Sub::Devnet(devnet)) = &args.command {
        return match run_devnet(devnet) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(io::stderr(), "error: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
        (Some(path), false) => Some(read_key_file(path)?),
        (None, false) => None,
    };
    let net = if args.dev {
        None
    } else {
        Some(net_config(args, &spec, identity.as_ref())?)
    };
    let rpc = RpcConfig {
        port: args.rpc_port,
        user: args.rpc_user.clone(),
        password: args.rpc_password.clone(),
        ..RpcConfig::default()
    };
    let node = Node::start(NodeConfig {
        datadir: datadir.clone(),
        spec,
        identity,
        rpc,
        net,
        tx_final_notify: args.txfinal_notify.clone(),
        clear_safety_halt: args.clear_safety_halt,
    })?;
    // Only once the datadir is ours: a refused second node must not touch it.
    let pid_file = PidFile::create(&datadir);
    signals::spawn_listener(node.stop_sender()).map_err(StartError::Signals)?;
    let reason = node.run_until_stopped()?;
    drop(pid_file);
    log::info!("stopped ({reason:?})");
    Ok(())
}

/// `<datadir>/timed.pid` while the node runs; removed when dropped. Not
/// having one only costs tools their CPU and memory report, so failures
/// are logged, not fatal.
struct PidFile(Option<PathBuf>);

impl PidFile {
    const NAME: &'static str = "timed.pid";

    fn create(datadir: &Path) -> PidFile {
        let path = datadir.join(Self::NAME);
        let tmp = path.with_extension("pid.tmp");
        let written = std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => PidFile(Some(path)),
            Err(e) => {
                log::warn!("cannot write {}: {e}", path.display());
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            if let Err(e) = std::fs::remove_file(path) {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// Listen on our genesis address and dial the other validators, unless
/// `--listen`/`--peer` say otherwise.
fn net_config(
    args: &Args,
    spec: &ChainSpec,
    identity: Option<&timecoin::crypto::Keypair>,
) -> Result<NetConfig, StartError> {
    let mut ours = None;
    let mut others = Vec::new();
    for (validator, addr) in spec.validators.iter().zip(&spec.validator_addrs) {
        let parsed: SocketAddr = addr
            .parse()
            .map_err(|_| StartError::ValidatorAddr { addr: addr.clone() })?;
        if identity.is_some_and(|k| k.public() == validator.id) {
            ours = Some(parsed);
        } else {
            others.push(parsed);
        }
    }
    let listen = args
        .listen
        .or(ours)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut config = NetConfig::new(listen);
    config.configured_peers = if args.peers.is_empty() {
        others
    } else {
        args.peers.clone()
    };
    config.configured_peers.retain(|p| *p != listen);
    config.validators = spec.validators.iter().map(|v| v.id).collect();
    config.rate_limits = RateLimits::for_load(&PollLoad::for_chain(spec, DESIGN_TX_PER_SEC));
    Ok(config)
}

/// `timed devnet`: children are this same binary; SIGINT/SIGTERM stop them all.
fn run_devnet(args: &DevnetArgs) -> Result<(), StartError> {
    signals::block_termination_signals().map_err(StartError::Signals)?;
    let (stop_tx, stop) = crossbeam_channel::bounded(4);
    signals::spawn_listener(stop_tx).map_err(StartError::Signals)?;
    let options = DevnetOptions {
        validators: args.validators,
        joiners: args.joiners,
        dir: args.dir.clone(),
        base_port: args.base_port,
        quiet: args.quiet,
        timed: std::env::current_exe().map_err(StartError::CurrentExe)?,
    };
    timecoin::devnet::run(&options, &stop)?;
    Ok(())
}
