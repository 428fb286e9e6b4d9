//! JSON-RPC 2.0 over HTTP on 127.0.0.1 (DESIGN §10): a small std HTTP/1.1 server with
//! a small worker pool, cookie or user/password auth, Bitcoin-shaped methods
//! plus TIME's own, and `/metrics` in Prometheus text.
//!
//! Clients are hostile, even local ones: connections are capped and
//! evicted, every request phase has a deadline, credentials are checked
//! before a body is read, body sizes and parse costs are capped, and every
//! bad input is a JSON-RPC error naming what is wrong. Reads go straight to LMDB
//! snapshots; submissions and engine questions go to the consensus thread
//! with a reply channel and a timeout, so a worker never waits on consensus
//! forever (DESIGN §12).
//!
//! * [`server`]: HTTP, deadlines, auth check, body limit, batch handling.
//! * [`admission`]: which connections are held, per-source caps, eviction.
//! * [`json_cost`]: the parse-cost bound of a body, before it is parsed.
//! * [`methods`]: the typed [`methods::Method`] enum and its dispatch.
//! * [`bitcoin`]: Bitcoin Core's JSON shapes (amounts, vin/vout, scriptPubKey).
//! * [`utxos`], [`mempool`]: the UTXO set's and the mempool's Bitcoin-named methods.
//! * [`wait`], [`notify`]: long polls (`waitfortx`, `waitfornewblock`) and their wake-ups.
//! * [`status`]: the status page at `GET /` and its `getstatus` data.
//! * [`help`]: every method in one table.
//! * [`blocks`]: the checkpoint chain's methods (`getblock`, `verifychain`, …).
//! * [`archive`]: the store read as the chain archive `verifychain` replays.
//! * [`errors`]: error codes. [`auth`]: cookie file and Basic credentials.
//! * [`client`]: the blocking client `time-cli` and tests use.

pub mod admission;
pub mod archive;
pub mod auth;
pub mod bitcoin;
pub mod blocks;
pub mod client;
pub mod errors;
pub mod help;
pub mod json_cost;
pub mod masternodes;
pub mod mempool;
pub mod methods;
pub mod notify;
pub mod server;
pub mod status;
pub mod utxos;
pub mod wait;

pub use errors::RpcError;
pub use server::{RpcServer, RpcStartError};

use crate::config::ChainSpec;
use crate::metrics::Metrics;
use crate::net::NetClient;
use crate::node::channels::NodeEvent;
use crate::node::StopReason;
use crate::store::Store;
use crate::time::{Clock, MonoTime};
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::time::Duration;

/// How the RPC server listens and whom it lets in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcConfig {
    /// On 127.0.0.1; 0 picks a free port (written to `<datadir>/rpc.port`).
    pub port: u16,
    /// Accepted beside the cookie, if both are set.
    pub user: Option<String>,
    pub password: Option<String>,
    pub workers: usize,
    pub max_body_bytes: usize,
    /// Longest wait for the consensus thread's answer.
    pub consensus_timeout: Duration,
}

impl Default for RpcConfig {
    fn default() -> RpcConfig {
        RpcConfig {
            port: 0,
            user: None,
            password: None,
            workers: 4,
            // A full batch of ordinary calls with room to spare; raised to
            // fit the chain's largest transaction (see `server`).
            max_body_bytes: 1024 * 1024,
            consensus_timeout: Duration::from_secs(5),
        }
    }
}

/// What every RPC worker shares.
#[derive(Clone)]
pub struct RpcContext {
    pub store: Arc<Store>,
    pub spec: ChainSpec,
    pub inbox: Sender<NodeEvent>,
    pub metrics: Arc<Metrics>,
    pub stop: Sender<StopReason>,
    pub started_at: MonoTime,
    pub clock: Arc<dyn Clock>,
    /// Longest wait for the consensus thread's answer.
    pub consensus_timeout: Duration,
    /// Peers and net counters; `None` without a network.
    pub net: Option<NetClient>,
    /// Long-polling calls parked until the ledger or block thread moves.
    pub waiters: Arc<notify::Waiters>,
}
