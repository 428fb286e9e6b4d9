//! Real `timed --dev` processes for tests: start on a datadir with RPC port
//! 0 (found through `<datadir>/rpc.port`), call RPC, kill or stop them, and
//! build transactions of the dev chain's funded demo wallet.
//!
//! Waiting is always "poll until a condition holds, fail at a deadline": the
//! deadline only bounds a failure, it never decides a result.

#![allow(dead_code)] // each test binary uses its own part

#[path = "../rpc_support/mod.rs"]
pub mod rpc;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use timecoin::config::ChainSpec;
use timecoin::crypto::Keypair;
use timecoin::genesis::devnet_wallet_key;
use timecoin::node::dev_chain_spec;
use timecoin::rpc::auth::read_cookie;
use timecoin::rpc::client::{ClientError, RpcClient};
use timecoin::rpc::RpcError;
use timecoin::types::{Address, Amount, Hash, Network, OutPoint, Tx, TxOut};
use timecoin::wallet::{build_transfer, Spendable};

/// Bounds every wait: a correct node is orders of magnitude faster.
pub const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

/// Polls `ready` until it returns `Some`, failing with `what` at the deadline.
pub fn wait_for<T>(what: &str, ready: impl FnMut() -> Option<T>) -> T {
    rpc::wait_for(what, DEADLINE, POLL, ready)
}

pub struct DevNode {
    pub child: Child,
    pub datadir: PathBuf,
    pub client: RpcClient,
}

impl DevNode {
    /// Starts `timed --dev` on `datadir` and waits until its RPC answers.
    pub fn start(datadir: &Path) -> DevNode {
        DevNode::start_with(datadir, &[])
    }

    /// [`DevNode::start`] with more `timed` arguments.
    pub fn start_with(datadir: &Path, extra: &[&str]) -> DevNode {
        std::fs::create_dir_all(datadir).unwrap();
        // A killed node leaves its port file behind; wait for the new one.
        let _ = std::fs::remove_file(datadir.join("rpc.port"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(datadir.join("timed.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_timed"))
            .args(["--dev", "--rpc-port", "0", "--datadir"])
            .arg(datadir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let port: u16 = wait_for("rpc.port", || {
            std::fs::read_to_string(datadir.join("rpc.port"))
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        let client = RpcClient::new(
            ([127, 0, 0, 1], port).into(),
            read_cookie(datadir).unwrap(),
            Duration::from_secs(30),
        );
        DevNode {
            child,
            datadir: datadir.to_path_buf(),
            client,
        }
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.client
            .call(method, params)
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// Calls `method` expecting a JSON-RPC error.
    pub fn call_err(&self, method: &str, params: Value) -> RpcError {
        match self.client.call(method, params) {
            Err(ClientError::Rpc(e)) => e,
            other => panic!("{method}: expected an RPC error, got {other:?}"),
        }
    }

    /// `http://user:secret@127.0.0.1:PORT/` from the cookie, as Python's
    /// `AuthServiceProxy` and browsers take credentials.
    pub fn url_with_credentials(&self) -> String {
        let cookie = std::fs::read_to_string(self.datadir.join(".cookie")).unwrap();
        format!("http://{}@{}/", cookie.trim(), self.client.addr())
    }

    pub fn submit(&self, tx: &Tx) -> Result<Hash, RpcError> {
        rpc::submit(&self.client, tx)
    }

    pub fn status(&self, txid: &Hash) -> Value {
        self.call("gettxstatus", json!([txid.to_string()]))
    }

    /// Waits until every txid is `finalized`; returns their status reports.
    pub fn wait_finalized(&self, txids: &[Hash]) -> Vec<Value> {
        rpc::wait_finalized(txids, "", DEADLINE, POLL, |txid| self.status(txid))
    }

    pub fn balance(&self, address: &Address) -> Amount {
        let v = self.call("getbalance", json!([address.to_text(Network::Devnet)]));
        // Bitcoin's bare number with 8 decimals, parsed exactly.
        v.as_number().unwrap().to_string().parse().unwrap()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits for the process to exit (it was told to).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait_for("timed to exit", || child.try_wait().unwrap())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.datadir.join("timed.log")).unwrap_or_default()
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spec() -> ChainSpec {
    dev_chain_spec()
}

pub fn min_fee() -> Amount {
    spec().config.ledger.min_fee
}

/// The demo wallet's genesis allocation (1,000,000 TIME) on the dev chain.
pub fn genesis_coin() -> (OutPoint, Amount) {
    let (outpoint, output) = spec().genesis_outputs()[0];
    assert_eq!(
        output.address,
        Address::from_pubkey(&devnet_wallet_key().public())
    );
    (outpoint, output.value)
}

pub fn wallet_key() -> Keypair {
    devnet_wallet_key()
}

pub fn wallet_address() -> Address {
    Address::from_pubkey(&wallet_key().public())
}

/// A fresh address of a label-derived key.
pub fn address_of(label: &str) -> Address {
    Address::from_pubkey(&Keypair::from_seed_label(label).public())
}

/// Spends `coin` (owned by the demo wallet): `outputs`, the minimum fee, change back.
pub fn transfer(coin: (OutPoint, Amount), outputs: &[TxOut]) -> Tx {
    let key = wallet_key();
    let input = Spendable {
        outpoint: coin.0,
        value: coin.1,
        key: &key,
    };
    build_transfer(
        &[input],
        outputs,
        min_fee(),
        wallet_address(),
        spec().chain_id(),
    )
    .unwrap()
}

/// Splits the genesis coin into `n` demo-wallet coins of `each`; returns
/// the split tx (change is its last output).
pub fn split_genesis(n: usize, each: Amount) -> Tx {
    let outputs = vec![
        TxOut {
            value: each,
            address: wallet_address(),
        };
        n
    ];
    transfer(genesis_coin(), &outputs)
}

/// Coin `vout` of `tx`.
pub fn coin(tx: &Tx, vout: u32) -> (OutPoint, Amount) {
    (tx.outpoint(vout), tx.outputs[vout as usize].value)
}

/// Pays `value` to `to` from `coin`.
pub fn pay(coin: (OutPoint, Amount), to: Address, value: Amount) -> Tx {
    transfer(coin, &[TxOut { value, address: to }])
}
