//! RPC helpers shared by the process-level test fixtures (`node_support`,
//! `devnet_support`): bounded waits and the calls every test makes.

#![allow(dead_code)] // each fixture uses its own part

use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Silent sockets a lock-out attacker holds on the RPC port (issue 13).
pub const IDLE_SOCKETS: usize = 100;
/// Sockets that trickle a request head that never ends.
pub const TRICKLING_SOCKETS: usize = 64;
pub const TRICKLE_EVERY: Duration = Duration::from_millis(100);

/// A socket the server closed: a read sees the end or an error at once.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// A non-blocking connection to `addr`, if it connects.
pub fn connect_nonblocking(addr: SocketAddr) -> Option<TcpStream> {
    let stream = TcpStream::connect(addr).ok()?;
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

/// Holds [`IDLE_SOCKETS`] silent and [`TRICKLING_SOCKETS`] trickling
/// sockets open on the RPC port `addr` until `stop`, reconnecting each one
/// the server closes, as an attacker would; returns the connections made.
pub fn hold_rpc_sockets(addr: SocketAddr, stop: &AtomicBool) -> u64 {
    const HEAD: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nX-Filler: ";
    let mut connects = (IDLE_SOCKETS + TRICKLING_SOCKETS) as u64;
    let mut idle: Vec<Option<TcpStream>> = (0..IDLE_SOCKETS)
        .map(|_| connect_nonblocking(addr))
        .collect();
    let mut trickling: Vec<(Option<TcpStream>, usize)> = (0..TRICKLING_SOCKETS)
        .map(|_| (connect_nonblocking(addr), 0))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        for socket in &mut idle {
            if socket.as_mut().map_or(true, closed) {
                *socket = connect_nonblocking(addr);
                connects += 1;
            }
        }
        for (socket, sent) in &mut trickling {
            // Past the request line, the head never ends: one byte of filler.
            let byte = HEAD.get(*sent).copied().unwrap_or(b'a');
            let alive = socket
                .as_mut()
                .is_some_and(|s| s.write(&[byte]).is_ok_and(|n| n == 1));
            if alive {
                *sent += 1;
            } else {
                (*socket, *sent) = (connect_nonblocking(addr), 0);
                connects += 1;
            }
        }
        std::thread::sleep(TRICKLE_EVERY); // the attack's pace
    }
    connects
}

/// Raises its flag when dropped: stops an attack however the test ends, so
/// a failure does not hang it.
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The value of the unlabelled Prometheus sample `name` in `metrics` (0 if absent).
pub fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
