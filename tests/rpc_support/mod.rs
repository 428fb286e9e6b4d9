//! RPC helpers shared by the process-level test fixtures (`node_support`,
//! `devnet_support`): bounded waits and the calls every test makes.

#![allow(dead_code)] // each fixture uses its own part

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use timecoin::rpc::client::{ClientError, RpcClient};
use timecoin::rpc::RpcError;
use timecoin::types::{Hash, Tx};

/// Polls `ready` every `poll` until it returns `Some`, failing with `what`
/// after `limit`: a correct node is orders of magnitude faster.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    poll: Duration,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    #[allow(clippy::disallowed_methods)] // a test deadline only bounds a failure
    let end = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        #[allow(clippy::disallowed_methods)] // a test deadline only bounds a failure
        let now = Instant::now();
        assert!(now < end, "timed out waiting for {what}");
        std::thread::sleep(poll);
    }
}

/// `sendrawtransaction`: the txid, or the node's JSON-RPC refusal.
pub fn submit(client: &RpcClient, tx: &Tx) -> Result<Hash, RpcError> {
    match client.call("sendrawtransaction", json!([hex::encode(tx.encode())])) {
        Ok(v) => Ok(v.as_str().unwrap().parse().unwrap()),
        Err(ClientError::Rpc(e)) => Err(e),
        Err(e) => panic!("sendrawtransaction: {e}"),
    }
}

/// Waits until `status(txid)` says `finalized` for every txid; a tx that
/// settles otherwise fails the test. Returns the status reports.
pub fn wait_finalized(
    txids: &[Hash],
    on: &str,
    limit: Duration,
    poll: Duration,
    status: impl Fn(&Hash) -> Value,
) -> Vec<Value> {
    txids
        .iter()
        .map(|txid| {
            wait_for(&format!("{txid} to finalize{on}"), limit, poll, || {
                let report = status(txid);
                match report["status"].as_str() {
                    Some("finalized") => Some(report),
                    Some("rejected" | "expired") => panic!("{txid} settled as {report}"),
                    _ => None,
                }
            })
        })
        .collect()
}
