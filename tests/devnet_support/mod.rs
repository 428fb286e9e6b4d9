//! A multi-process devnet for tests: N real `timed` validators on
//! 127.0.0.1 ports picked free at run time, each with its own datadir and
//! key file; RPC ports are read from `<datadir>/rpc.port`. Nodes can be
//! killed, stopped and restarted on the same datadir.
//!
//! Waiting is always "poll until a condition holds, fail at a deadline".

#![allow(dead_code)] // each test uses its own part

#[path = "../rpc_support/mod.rs"]
pub mod rpc;

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use timecoin::config::{ChainConfig, ChainSpec};
use timecoin::genesis::{
    devnet_validator_keys, devnet_wallet_key, local_chain_toml, DEVNET_BLOCK_INTERVAL_SECS,
};
use timecoin::node::key_file::write_key_file;
use timecoin::rpc::auth::read_cookie;
use timecoin::rpc::client::{ClientError, RpcClient};
use timecoin::rpc::RpcError;
use timecoin::store::{Store, StoreOptions};
use timecoin::time::WALL_OFFSET_ENV;
use timecoin::types::{Address, Amount, Hash, Network, OutPoint, Tx, TxOut};
use timecoin::wallet::{build_transfer, Spendable};

/// In each datadir: the wall-clock offset file the `timed` test hook reads.
const WALL_OFFSET_FILE: &str = "wall_offset_ms";

pub const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(20);
/// Starts of a node whose port is taken before its test fails.
const PORT_RETRIES: usize = 10;
/// How long a validator waits for its taken port between two starts.
const PORT_RETRY_GAP: Duration = Duration::from_secs(1);
/// How `timed` says its port is taken (the last line of its log).
const PORT_TAKEN: &str = "Address already in use";

/// Polls `ready` until it returns `Some`, failing with `what` at the deadline.
pub fn wait_for<T>(what: &str, ready: impl FnMut() -> Option<T>) -> T {
    rpc::wait_for(what, DEADLINE, POLL, ready)
}

/// One `timed` process (or its stopped datadir): a genesis validator, or a
/// non-voting node added with [`Devnet::add_node`].
pub struct Validator {
    pub index: usize,
    pub datadir: PathBuf,
    pub p2p_port: u16,
    /// `--validator-key`; `None` for a non-voting node.
    key_file: Option<PathBuf>,
    /// `--peer` ports; empty: dial the genesis validators.
    peer_ports: Vec<u16>,
    child: Option<Child>,
    client: Option<RpcClient>,
}

pub struct Devnet {
    _dir: tempfile::TempDir,
    pub chain_file: PathBuf,
    pub spec: ChainSpec,
    pub nodes: Vec<Validator>,
}

/// Ports free right now (bound then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Devnet {
    /// Starts `n` validators and waits until each is connected to all others.
    pub fn start(n: usize) -> Devnet {
        Devnet::start_with(n, |text| text)
    }

    /// [`Devnet::start`] on the generated chain config as `edit` changes it.
    pub fn start_with(n: usize, edit: impl FnOnce(String) -> String) -> Devnet {
        let mut devnet = Devnet::prepare(n, edit);
        for i in 0..n {
            devnet.launch(i);
        }
        devnet.wait_connected();
        devnet
    }

    /// [`Devnet::start_with`] on epochs of `epoch_blocks` blocks, so
    /// masternodes join, leave and unbond within a test.
    pub fn start_with_epochs(
        n: usize,
        epoch_blocks: u64,
        edit: impl FnOnce(String) -> String,
    ) -> Devnet {
        Devnet::start_with(n, |text| {
            edit(text.replacen(
                "epoch_blocks = 10",
                &format!("epoch_blocks = {epoch_blocks}"),
                1,
            ))
        })
    }

    /// Lays out the chain config, datadirs and keys of `n` validators
    /// without starting any (e.g. to fill a datadir first).
    pub fn prepare(n: usize, edit: impl FnOnce(String) -> String) -> Devnet {
        let ports = free_ports(n);
        Devnet::prepare_on(&ports, &ports, edit)
    }

    /// [`Devnet::prepare`] with validator `i` listening on `ports[i]` but
    /// known to its peers (genesis `addr`) as `127.0.0.1:advertised[i]`,
    /// e.g. a fault proxy's front port that forwards to it.
    pub fn prepare_on(
        ports: &[u16],
        advertised: &[u16],
        edit: impl FnOnce(String) -> String,
    ) -> Devnet {
        assert_eq!(
            ports.len(),
            advertised.len(),
            "one advertised port per node"
        );
        let n = ports.len();
        let dir = tempfile::tempdir().unwrap();
        // Generated with ports 1, 3, 5…, then pointed at the advertised ones.
        let mut text = local_chain_toml(Network::Devnet, n, 1, DEVNET_BLOCK_INTERVAL_SECS);
        for (i, port) in advertised.iter().enumerate() {
            let from = format!("addr = \"127.0.0.1:{}\"", 1 + 2 * i);
            let to = format!("addr = \"127.0.0.1:{port}\"");
            text = text.replacen(&from, &to, 1);
        }
        let chain_file = dir.path().join("chain.toml");
        std::fs::write(&chain_file, edit(text)).unwrap();
        let spec = ChainConfig::load(&chain_file).unwrap();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(index, &p2p_port)| {
                let datadir = dir.path().join(format!("node{index}"));
                std::fs::create_dir_all(&datadir).unwrap();
                let key_file = datadir.join("validator.json");
                write_key_file(&key_file, &devnet_validator_keys(index).0).unwrap();
                Validator {
                    index,
                    datadir,
                    p2p_port,
                    key_file: Some(key_file),
                    peer_ports: Vec::new(),
                    child: None,
                    client: None,
                }
            })
            .collect();
        Devnet {
            _dir: dir,
            chain_file,
            spec,
            nodes,
        }
    }

    /// Starts node `i`'s process on its datadir and waits for its RPC.
    /// A port picked free can be taken before the node binds it, by an
    /// outgoing connection (the tests' RPC polls open many short ones): a
    /// validator, whose port its peers know, tries it again a moment later.
    pub fn launch(&mut self, i: usize) {
        self.launch_retrying(i, |_| std::thread::sleep(PORT_RETRY_GAP));
    }

    /// [`Devnet::try_launch`], calling `on_port_taken` before each retry
    /// while the node cannot bind its port.
    fn launch_retrying(&mut self, i: usize, mut on_port_taken: impl FnMut(&mut Validator)) {
        for _ in 0..PORT_RETRIES {
            match self.try_launch(i) {
                Ok(()) => return,
                Err(log) if log.lines().last().is_some_and(|l| l.contains(PORT_TAKEN)) => {
                    on_port_taken(&mut self.nodes[i]);
                }
                Err(log) => panic!("node {i} exited at start:\n{log}"),
            }
        }
        panic!("node {i} found its port taken {PORT_RETRIES} times");
    }

    /// [`Devnet::launch`]; if the process exits before its RPC is up, its
    /// log as the error.
    fn try_launch(&mut self, i: usize) -> Result<(), String> {
        let chain_file = self.chain_file.clone();
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {i} is running");
        let _ = std::fs::remove_file(node.datadir.join("rpc.port"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.datadir.join("timed.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_timed"));
        command
            .arg("--config")
            .arg(&chain_file)
            .arg("--datadir")
            .arg(&node.datadir);
        if let Some(key_file) = &node.key_file {
            command.arg("--validator-key").arg(key_file);
        }
        // Validators too: their genesis address may be a proxy in front of them.
        command.args(["--listen", &format!("127.0.0.1:{}", node.p2p_port)]);
        for port in &node.peer_ports {
            command.args(["--peer", &format!("127.0.0.1:{port}")]);
        }
        let child = command
            .env("RUST_LOG", "info")
            .env(WALL_OFFSET_ENV, node.datadir.join(WALL_OFFSET_FILE))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let datadir = node.datadir.clone();
        let child = node.child.insert(child);
        let port = wait_for(&format!("node {i}'s rpc.port"), || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(None);
            }
            let text = std::fs::read_to_string(datadir.join("rpc.port")).ok()?;
            Some(Some(text.trim().parse::<u16>().ok()?))
        });
        let Some(port) = port else {
            node.child = None;
            return Err(node.log());
        };
        node.client = Some(RpcClient::new(
            ([127, 0, 0, 1], port).into(),
            read_cookie(&datadir).unwrap(),
            Duration::from_secs(30),
        ));
        Ok(())
    }

    /// Adds and launches a non-voting node with an empty datadir that
    /// knows only node `peer`'s address; returns its index.
    pub fn add_node(&mut self, peer: usize) -> usize {
        let peer_ports = vec![self.nodes[peer].p2p_port];
        self.push_node(None, peer_ports)
    }

    /// Adds and launches a masternode outside the genesis set, signing with
    /// `key_file` (`--masternode-key`) once registered, that dials the
    /// genesis validators; returns its index.
    pub fn add_masternode(&mut self, key_file: PathBuf) -> usize {
        self.push_node(Some(key_file), Vec::new())
    }

    fn push_node(&mut self, key_file: Option<PathBuf>, peer_ports: Vec<u16>) -> usize {
        let index = self.nodes.len();
        let datadir = self._dir.path().join(format!("node{index}"));
        std::fs::create_dir_all(&datadir).unwrap();
        self.nodes.push(Validator {
            index,
            datadir,
            p2p_port: free_ports(1)[0],
            key_file,
            peer_ports,
            child: None,
            client: None,
        });
        // Nobody knows an added node's port yet: it takes another.
        self.launch_retrying(index, |node| node.p2p_port = free_ports(1)[0]);
        index
    }

    /// Node `i`'s LMDB store, opened beside the running node (LMDB is
    /// multi-process); drop it before opening it again.
    pub fn store(&self, i: usize) -> Store {
        Store::open(&self.nodes[i].datadir, &self.spec, StoreOptions::default())
            .unwrap_or_else(|e| panic!("node {i}: cannot open its store: {e}"))
    }

    /// Waits until every running node has a link to every other running node.
    pub fn wait_connected(&self) {
        let running = self.nodes.iter().filter(|n| n.child.is_some()).count() as u64;
        for node in self.running() {
            wait_for(&format!("node {} to connect", node.index), || {
                let info = node.client().call("getnetworkinfo", json!([])).ok()?;
                (info["connections"].as_u64()? + 1 >= running).then_some(())
            });
        }
    }

    pub fn running(&self) -> impl Iterator<Item = &Validator> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    /// Waits for node `i`'s process to exit (after [`Validator::sigkill`]).
    pub fn reap(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut child = node.child.take().expect("node running");
        child.wait().unwrap();
        node.client = None;
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut child = node.child.take().expect("node running");
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "node {i} exited {status}");
        node.client = None;
    }
}

/// Set to keep a failed test's devnet directory (datadirs, full logs).
const KEEP_FAILED_ENV: &str = "TIMECOIN_KEEP_FAILED_DEVNET";
/// Lines of each node's log a failed test prints.
const FAILED_LOG_LINES: usize = 60;

impl Drop for Devnet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // A failing multi-process test is diagnosed from its nodes' logs:
        // their tails go to the test's output, the whole directory stays
        // on request.
        if std::thread::panicking() {
            for node in &self.nodes {
                let log = node.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(FAILED_LOG_LINES)..];
                eprintln!("--- node{} log tail ---\n{}", node.index, tail.join("\n"));
            }
            // No unwrap: a panic while unwinding would abort the test run.
            let fresh = std::env::var_os(KEEP_FAILED_ENV).and_then(|_| tempfile::tempdir().ok());
            if let Some(fresh) = fresh {
                let dir = std::mem::replace(&mut self._dir, fresh);
                eprintln!("devnet kept at {}", dir.keep().display());
            }
        }
    }
}

impl Validator {
    /// SIGKILL from a shared reference (e.g. while other threads load the devnet).
    pub fn sigkill(&self) {
        self.signal(libc::SIGKILL);
    }

    /// Freezes the process (SIGSTOP): its sockets stay open, it answers nothing.
    pub fn sigstop(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Resumes a process frozen by [`Validator::sigstop`].
    pub fn sigcont(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("node running");
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    }

    /// A client of this node's RPC with its own timeout (e.g. short, for a
    /// load thread that must not hang on a frozen node).
    pub fn client_with_timeout(&self, timeout: Duration) -> RpcClient {
        RpcClient::new(
            self.client().addr(),
            read_cookie(&self.datadir).unwrap(),
            timeout,
        )
    }

    /// The process id of the running node.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node running").id()
    }

    pub fn client(&self) -> &RpcClient {
        self.client.as_ref().expect("node running")
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.client()
            .call(method, params)
            .unwrap_or_else(|e| panic!("node {}: {method} failed: {e}", self.index))
    }

    pub fn submit(&self, tx: &Tx) -> Result<Hash, RpcError> {
        rpc::submit(self.client(), tx)
    }

    pub fn status(&self, txid: &Hash) -> Value {
        self.call("gettxstatus", json!([txid.to_string()]))
    }

    /// `gettxstatus`'s status, or `"unknown"` if this node never saw `txid`.
    pub fn status_of(&self, txid: &Hash) -> String {
        self.status_or_unknown(txid)["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `gettxstatus`'s report, or `{"status": "unknown"}` if this node
    /// never saw `txid`.
    fn status_or_unknown(&self, txid: &Hash) -> Value {
        match self.client().call("gettxstatus", json!([txid.to_string()])) {
            Ok(status) => status,
            Err(ClientError::Rpc(e)) if e.message.contains("unknown here") => {
                json!({ "status": "unknown" })
            }
            Err(e) => panic!("node {}: gettxstatus failed: {e}", self.index),
        }
    }

    /// Waits until every txid is `finalized` here; returns the status
    /// reports. A txid not heard of yet is waited for too: a restarted node
    /// may learn it only after the quorum (three of four) finalized it.
    pub fn wait_finalized(&self, txids: &[Hash]) -> Vec<Value> {
        let on = format!(" on node {}", self.index);
        rpc::wait_finalized(txids, &on, DEADLINE, POLL, |txid| {
            self.status_or_unknown(txid)
        })
    }

    /// Steps this node's wall clock by `offset_ms` from the true time
    /// (through the `timed` test hook; its monotonic clock is untouched).
    pub fn set_wall_offset(&self, offset_ms: i64) {
        std::fs::write(self.datadir.join(WALL_OFFSET_FILE), offset_ms.to_string()).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.datadir.join("timed.log")).unwrap_or_default()
    }

    pub fn datadir(&self) -> &Path {
        &self.datadir
    }
}

pub fn wallet_address() -> Address {
    Address::from_pubkey(&devnet_wallet_key().public())
}

pub fn address_of(label: &str) -> Address {
    Address::from_pubkey(&timecoin::crypto::Keypair::from_seed_label(label).public())
}

/// Spends demo-wallet `coin` into `outputs`, the minimum fee, change back.
pub fn transfer(spec: &ChainSpec, coin: (OutPoint, Amount), outputs: &[TxOut]) -> Tx {
    let key = devnet_wallet_key();
    build_transfer(
        &[Spendable {
            outpoint: coin.0,
            value: coin.1,
            key: &key,
        }],
        outputs,
        spec.config.ledger.min_fee,
        wallet_address(),
        spec.chain_id(),
    )
    .unwrap()
}

/// A 1 TIME transfer of demo-wallet `coin` to `to`'s label address.
pub fn pay(spec: &ChainSpec, coin: (OutPoint, Amount), to: &str) -> Tx {
    let out = TxOut {
        value: Amount::from_time(1).unwrap(),
        address: address_of(to),
    };
    transfer(spec, coin, &[out])
}

pub fn coin(tx: &Tx, vout: u32) -> (OutPoint, Amount) {
    (tx.outpoint(vout), tx.outputs[vout as usize].value)
}

/// Splits the demo wallet's genesis coin into `groups * per_group` coins of
/// 10 TIME (two levels, so each tx stays under `max_tx_bytes`), submitted to
/// node 0 and waited for on every running node (so any node can spend them).
pub fn funded_coins(devnet: &Devnet, groups: usize, per_group: usize) -> Vec<(OutPoint, Amount)> {
    let spec = &devnet.spec;
    let genesis = spec
        .genesis_outputs()
        .into_iter()
        .find(|(_, o)| o.address == wallet_address())
        .map(|(o, out)| (o, out.value))
        .unwrap();
    let node = &devnet.nodes[0];
    let each = |n: u64| TxOut {
        value: Amount::from_time(n).unwrap(),
        address: wallet_address(),
    };
    let top = transfer(
        spec,
        genesis,
        &vec![each(10 * per_group as u64 + 1); groups],
    );
    node.wait_finalized(&[node.submit(&top).unwrap()]);
    let splits: Vec<Tx> = (0..groups as u32)
        .map(|g| transfer(spec, coin(&top, g), &vec![each(10); per_group]))
        .collect();
    let txids: Vec<Hash> = splits.iter().map(|t| node.submit(t).unwrap()).collect();
    for node in devnet.running() {
        node.wait_finalized(&txids);
    }
    splits
        .iter()
        .flat_map(|t| (0..per_group as u32).map(move |v| coin(t, v)))
        .collect()
}

/// `p50 / p99 / max` of `ms`.
pub fn percentiles(mut ms: Vec<u64>) -> String {
    ms.sort_unstable();
    let at = |q: usize| ms[(ms.len() - 1) * q / 100];
    format!("p50 {} ms, p99 {} ms, max {} ms", at(50), at(99), at(100))
}

/// The member identities (hex) of a `getmasternodes` answer.
pub fn member_ids(set: &Value) -> Vec<String> {
    set["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}
