//! `timed devnet`: a local N-validator devnet of child `timed` processes.
//! It lays out `<dir>/chain.toml`, `<dir>/nodeI/{validator.json,timed.log}`
//! and `<dir>/wallet.json` (reused when they exist), starts one child per
//! validator on 127.0.0.1, waits for every RPC and peer link, and then sends
//! one demo-wallet transfer a second, printing its time to finality, each
//! block as it is certified and each epoch the nodes enter.
//!
//! With `--joiners J` it also starts J nodes outside the genesis set, each
//! with its own masternode key, and registers each as a Bronze masternode
//! from the demo wallet (DESIGN §7): they vote from the epoch the chain
//! says, two after their registration's block.
//!
//! It owns only its children: it never leaves one running (SIGTERM, wait)
//! and never touches a node's database itself.

use crate::config::{ChainConfig, ChainSpec, ConfigError};
use crate::genesis::{
    devnet_validator_keys, devnet_wallet_key, local_chain_toml, DEVNET_BLOCK_INTERVAL_SECS,
};
use crate::node::key_file::{write_key_file, KeyFileError};
use crate::node::StopReason;
use crate::rpc::auth::read_cookie;
use crate::rpc::client::{ClientError, RpcClient};
use crate::types::{Address, Amount, Hash, Network, OutPoint, Tier, Tx, TxOut};
use crate::wallet::{build_registration, build_transfer, MasternodeInfo, Spendable, Wallet};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bounds startup and each transfer's wait for finality.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
const FINALITY_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Paid to a fixed demo recipient by every transfer.
const TRANSFER_UNITS: u64 = 100_000_000;

pub struct DevnetOptions {
    pub validators: usize,
    /// Nodes started outside the genesis set and registered as masternodes.
    pub joiners: usize,
    pub dir: PathBuf,
    pub base_port: u16,
    pub quiet: bool,
    /// The `timed` binary to run the nodes with.
    pub timed: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "{path} has {found} validators but --validators {requested} was given; use another --dir"
    )]
    ValidatorCount {
        path: PathBuf,
        found: usize,
        requested: usize,
    },
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("cannot write the demo wallet: {0}")]
    Wallet(String),
    #[error("cannot start node {index}: {source}")]
    Spawn {
        index: usize,
        source: std::io::Error,
    },
    #[error("node {index} exited ({status}); see {log}")]
    ChildDied {
        index: usize,
        status: String,
        log: PathBuf,
    },
    #[error("node {index} not ready within {STARTUP_DEADLINE:?}: {what}; see {log}")]
    NotReady {
        index: usize,
        what: String,
        log: PathBuf,
    },
}

/// One child `timed`.
struct DevnetNode {
    index: usize,
    datadir: PathBuf,
    child: Child,
    client: Option<RpcClient>,
}

impl DevnetNode {
    fn log(&self) -> PathBuf {
        self.datadir.join("timed.log")
    }

    fn check_alive(&mut self) -> Result<(), DevnetError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(DevnetError::ChildDied {
                index: self.index,
                status: status.to_string(),
                log: self.log(),
            }),
            Err(e) => Err(DevnetError::ChildDied {
                index: self.index,
                status: e.to_string(),
                log: self.log(),
            }),
        }
    }

    fn terminate(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
    }
}

/// Runs the devnet until `stop` fires (SIGINT/SIGTERM) or a child dies.
pub fn run(options: &DevnetOptions, stop: &Receiver<StopReason>) -> Result<(), DevnetError> {
    let spec = prepare_dir(options)?;
    let mut nodes = Vec::new();
    let result = start_nodes(options, &spec, &mut nodes)
        .and_then(|()| wait_ready(&mut nodes, spec.validators.len(), stop))
        .and_then(|()| {
            print_usage(options);
            drive(options, &spec, &mut nodes, stop)
        });
    if let Err(e) = &result {
        println!("devnet: {e}; stopping every node");
    }
    for node in &mut nodes {
        node.terminate();
    }
    println!("devnet stopped");
    result
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates (or reuses) the chain config, key files and demo wallet.
fn prepare_dir(options: &DevnetOptions) -> Result<ChainSpec, DevnetError> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let chain = dir.join("chain.toml");
    if !chain.exists() {
        let text = local_chain_toml(
            Network::Devnet,
            options.validators,
            options.base_port,
            DEVNET_BLOCK_INTERVAL_SECS,
        );
        std::fs::write(&chain, text).map_err(io_error(&chain))?;
    }
    let spec = ChainConfig::load(&chain)?;
    if spec.validators.len() != options.validators {
        return Err(DevnetError::ValidatorCount {
            path: chain,
            found: spec.validators.len(),
            requested: options.validators,
        });
    }
    // Joiners' keys follow the genesis validators' (same derivation, next indices).
    for index in 0..options.validators + options.joiners {
        let datadir = node_dir(dir, index);
        std::fs::create_dir_all(&datadir).map_err(io_error(&datadir))?;
        let key = datadir.join("validator.json");
        if !key.exists() {
            write_key_file(&key, &devnet_validator_keys(index).0)?;
        }
    }
    let wallet = dir.join("wallet.json");
    if !wallet.exists() {
        Wallet::create_with_key(&wallet, Network::Devnet, devnet_wallet_key(), "demo")
            .map_err(|e| DevnetError::Wallet(e.to_string()))?;
    }
    Ok(spec)
}

fn node_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("node{index}"))
}

/// Where node `index` past the genesis set listens: the genesis set's
/// spacing continued (`base_port + 2·index`).
fn joiner_addr(options: &DevnetOptions, index: usize) -> SocketAddr {
    let offset = u16::try_from(index.saturating_mul(2)).unwrap_or(u16::MAX);
    ([127, 0, 0, 1], options.base_port.saturating_add(offset)).into()
}

fn start_nodes(
    options: &DevnetOptions,
    spec: &ChainSpec,
    nodes: &mut Vec<DevnetNode>,
) -> Result<(), DevnetError> {
    let joiners = (spec.validators.len()..).take(options.joiners);
    let joiner_addrs: Vec<String> = joiners
        .map(|index| joiner_addr(options, index).to_string())
        .collect();
    for (index, listen) in spec.validator_addrs.iter().chain(&joiner_addrs).enumerate() {
        let datadir = node_dir(&options.dir, index);
        // A killed node leaves its port file behind; wait for the new one.
        let _ = std::fs::remove_file(datadir.join("rpc.port"));
        let log_path = datadir.join("timed.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        let child = Command::new(&options.timed)
            .arg("--config")
            .arg(options.dir.join("chain.toml"))
            .arg("--datadir")
            .arg(&datadir)
            .arg("--validator-key")
            .arg(datadir.join("validator.json"))
            .args(["--listen", listen])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| DevnetError::Spawn { index, source })?;
        nodes.push(DevnetNode {
            index,
            datadir,
            child,
            client: None,
        });
    }
    Ok(())
}

/// Waits until every node's RPC answers and it has its links: a genesis
/// validator to every other node, a joiner to the genesis set (the peers
/// it dials).
fn wait_ready(
    nodes: &mut [DevnetNode],
    genesis: usize,
    stop: &Receiver<StopReason>,
) -> Result<(), DevnetError> {
    #[allow(clippy::disallowed_methods)] // a launcher deadline, not protocol logic
    let deadline = Instant::now() + STARTUP_DEADLINE;
    let all_others = nodes.len().saturating_sub(1) as u64;
    for i in 0..nodes.len() {
        let others = if i < genesis {
            all_others
        } else {
            genesis as u64
        };
        let Some(node) = nodes.get_mut(i) else {
            continue;
        };
        loop {
            node.check_alive()?;
            if node.client.is_none() {
                node.client = rpc_client(&node.datadir);
            }
            let connections = node
                .client
                .as_ref()
                .and_then(|c| c.call("getnetworkinfo", json!([])).ok())
                .and_then(|info| info["connections"].as_u64());
            if connections.is_some_and(|n| n >= others) {
                break;
            }
            #[allow(clippy::disallowed_methods)]
            if Instant::now() > deadline {
                return Err(DevnetError::NotReady {
                    index: node.index,
                    what: format!("{connections:?} of {others} peers connected"),
                    log: node.log(),
                });
            }
            if stop.recv_timeout(POLL).is_ok() {
                return Ok(());
            }
        }
    }
    println!(
        "devnet: {genesis} validators and {} joiners up and connected",
        nodes.len().saturating_sub(genesis)
    );
    Ok(())
}

fn rpc_client(datadir: &Path) -> Option<RpcClient> {
    let port: u16 = std::fs::read_to_string(datadir.join("rpc.port"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cookie = read_cookie(datadir).ok()?;
    Some(RpcClient::new(
        ([127, 0, 0, 1], port).into(),
        cookie,
        RPC_TIMEOUT,
    ))
}

fn print_usage(options: &DevnetOptions) {
    let dir = options.dir.display();
    println!(
        "devnet: use it with\n  time-cli --datadir {dir}/node0 getnetworkinfo\n  \
         time-cli --datadir {dir}/node0 getconsensusinfo\n  \
         demo wallet: {dir}/wallet.json\n  logs: {dir}/nodeI/timed.log; Ctrl-C stops every node"
    );
}

/// Until stopped: checks the children and, unless quiet, sends a transfer a second.
fn drive(
    options: &DevnetOptions,
    spec: &ChainSpec,
    nodes: &mut [DevnetNode],
    stop: &Receiver<StopReason>,
) -> Result<(), DevnetError> {
    let mut coin = demo_coin(nodes);
    for index in spec.validators.len()..nodes.len() {
        if let Some(current) = coin {
            coin = register_joiner(options, spec, nodes, index, current);
        }
    }
    let mut round = 0usize;
    let mut next_block = 1u64;
    let mut epoch = None;
    loop {
        for node in nodes.iter_mut() {
            node.check_alive()?;
        }
        let node0 = nodes.first().and_then(|n| n.client.as_ref());
        if let Some(client) = node0 {
            epoch = print_epoch(client, epoch);
        }
        if !options.quiet {
            if let Some(current) = coin {
                coin = send_one(spec, nodes, round, current);
                round = round.wrapping_add(1);
            }
            if let Some(client) = nodes.first().and_then(|n| n.client.as_ref()) {
                next_block = print_certified(client, next_block);
            }
        }
        match stop.recv_timeout(Duration::from_secs(1)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(reason) => {
                println!("devnet: {reason:?}; stopping");
                return Ok(());
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// The demo wallet's largest unspent coin on node 0 (the genesis coin on a
/// fresh dir, the latest change on a reused one).
fn demo_coin(nodes: &[DevnetNode]) -> Option<(OutPoint, Amount)> {
    let wallet = Address::from_pubkey(&devnet_wallet_key().public());
    let client = nodes.first()?.client.as_ref()?;
    let unspent = client
        .call(
            "listunspent",
            json!([0, 9_999_999, [wallet.to_text(Network::Devnet)]]),
        )
        .ok()?;
    let coin = unspent
        .as_array()?
        .iter()
        .filter_map(|c| {
            let txid: Hash = c["txid"].as_str()?.parse().ok()?;
            let vout = u32::try_from(c["vout"].as_u64()?).ok()?;
            let units = c["amount_units"].as_u64()?;
            Some((OutPoint { txid, vout }, Amount(units)))
        })
        .max_by_key(|(_, value)| *value);
    if coin.is_none() {
        println!("devnet: the demo wallet has no coins; not sending transfers");
    }
    coin
}

/// Sends one transfer to node `round % N`, waits for its finality and
/// returns the change coin to spend next (the same coin if it failed).
fn send_one(
    spec: &ChainSpec,
    nodes: &[DevnetNode],
    round: usize,
    coin: (OutPoint, Amount),
) -> Option<(OutPoint, Amount)> {
    let node = nodes.get(round % nodes.len().max(1))?;
    let client = node.client.as_ref()?;
    let key = devnet_wallet_key();
    let wallet = Address::from_pubkey(&key.public());
    let recipient = Address::from_pubkey(&devnet_validator_keys(0).0.public());
    let tx = build_transfer(
        &[Spendable {
            outpoint: coin.0,
            value: coin.1,
            key: &key,
        }],
        &[TxOut {
            value: Amount(TRANSFER_UNITS),
            address: recipient,
        }],
        spec.config.ledger.min_fee,
        wallet,
        spec.chain_id(),
    );
    let tx = match tx {
        Ok(tx) => tx,
        Err(e) => {
            println!("devnet: demo wallet cannot pay: {e}");
            return None;
        }
    };
    let txid = tx.txid();
    match submit_final(client, &tx) {
        Ok(ms) => println!("tx {txid} via node{} finalized in {ms} ms", node.index),
        Err(e) => {
            println!("tx {txid} via node{}: {e}", node.index);
            return Some(coin);
        }
    }
    change_of(&tx)
}

/// Submits `tx` and waits for its finality; the node's `finality_ms`.
fn submit_final(client: &RpcClient, tx: &Tx) -> Result<String, String> {
    client
        .call("sendrawtransaction", json!([hex::encode(tx.encode())]))
        .map_err(|e| format!("refused: {e}"))?;
    wait_finalized(client, &tx.txid())
}

/// The change coin of a demo-wallet tx: its last output.
fn change_of(tx: &Tx) -> Option<(OutPoint, Amount)> {
    let vout = u32::try_from(tx.outputs.len().checked_sub(1)?).ok()?;
    tx.outputs.last().map(|o| (tx.outpoint(vout), o.value))
}

/// Registers joiner node `index` as a Bronze masternode (its own key as
/// identity and payout), funded from `coin` by the demo wallet, through
/// node 0; returns the change to spend next (`coin` if it failed).
fn register_joiner(
    options: &DevnetOptions,
    spec: &ChainSpec,
    nodes: &[DevnetNode],
    index: usize,
    coin: (OutPoint, Amount),
) -> Option<(OutPoint, Amount)> {
    let client = nodes.first()?.client.as_ref()?;
    let key = devnet_wallet_key();
    let wallet = Address::from_pubkey(&key.public());
    let (identity, vrf) = devnet_validator_keys(index);
    let info = MasternodeInfo {
        tier: Tier::Bronze,
        identity: &identity,
        vrf_key: vrf.public(),
        listen_addr: joiner_addr(options, index),
        payout: Address::from_pubkey(&identity.public()),
    };
    let funds = [Spendable {
        outpoint: coin.0,
        value: coin.1,
        key: &key,
    }];
    let fee = spec.config.ledger.min_fee;
    let tx = match build_registration(&funds, &info, wallet, fee, wallet, spec.chain_id()) {
        Ok(tx) => tx,
        Err(e) => {
            println!("devnet: demo wallet cannot register node{index}: {e}");
            return Some(coin);
        }
    };
    let id = hex::encode(identity.public().0);
    match submit_final(client, &tx) {
        Ok(ms) => println!(
            "masternode node{index} {} registered (bronze, weight {}) in tx {} finalized in {ms} ms; \
             it votes from the epoch after next",
            id.get(..16).unwrap_or(&id),
            Tier::Bronze.weight(),
            tx.txid()
        ),
        Err(e) => {
            println!("devnet: registration of node{index}: {e}");
            return Some(coin);
        }
    }
    change_of(&tx)
}

/// Prints the epoch node 0 votes in whenever it changes: its committee's
/// size and weight. Returns the epoch seen (`last` if node 0 did not answer).
fn print_epoch(client: &RpcClient, last: Option<u64>) -> Option<u64> {
    let Ok(info) = client.call("getconsensusinfo", json!([])) else {
        return last;
    };
    let Some(epoch) = info["epoch"].as_u64() else {
        return last;
    };
    if last != Some(epoch) {
        println!(
            "epoch {epoch}: {} validators vote, weight {} (quorum {})",
            info["validators"], info["total_weight"], info["required_weight"]
        );
    }
    Some(epoch)
}

/// Blocks a line is printed for once certified, or once this many blocks
/// deep without a certificate.
const UNCERTIFIED_DEPTH: u64 = 3;

/// Prints one line per block of node 0's chain from `next` up, once it is
/// certified (or deep without a certificate): height, hash prefix,
/// certified, signers' weight. Returns the next height to print.
fn print_certified(client: &RpcClient, mut next: u64) -> u64 {
    let Some(tip) = client
        .call("getblockcount", json!([]))
        .ok()
        .and_then(|v| v.as_u64())
    else {
        return next;
    };
    while next <= tip {
        let block = client
            .call("getblockhash", json!([next]))
            .and_then(|hash| client.call("getblock", json!([hash, 1])));
        let Ok(block) = block else {
            return next;
        };
        let certified = block["certified"].as_bool().unwrap_or(false);
        if !certified && tip.saturating_sub(next) < UNCERTIFIED_DEPTH {
            return next;
        }
        let hash = block["hash"].as_str().unwrap_or_default();
        println!(
            "block {next} {} certified {certified} weight {}/{}",
            hash.get(..16).unwrap_or(hash),
            block["certified_weight"],
            block["total_weight"]
        );
        next += 1;
    }
    next
}

/// Polls `gettxstatus` until finalized; returns the node's `finality_ms`.
fn wait_finalized(client: &RpcClient, txid: &Hash) -> Result<String, String> {
    #[allow(clippy::disallowed_methods)] // a launcher deadline, not protocol logic
    let deadline = Instant::now() + FINALITY_DEADLINE;
    loop {
        let status = client
            .call("gettxstatus", json!([txid.to_string()]))
            .map_err(|e: ClientError| e.to_string())?;
        match status["status"].as_str() {
            Some("finalized") => return Ok(status["finality_ms"].to_string()),
            Some(s @ ("rejected" | "expired")) => return Err(format!("{s}: {status}")),
            _ => {}
        }
        #[allow(clippy::disallowed_methods)]
        if Instant::now() > deadline {
            return Err(format!("not finalized within {FINALITY_DEADLINE:?}"));
        }
        std::thread::sleep(POLL);
    }
}
