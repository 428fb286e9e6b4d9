//! The long-polling methods: `waitfortx TXID [timeout_ms]` answers the
//! moment the tx is durable-final (or rejected, or expired), and
//! `waitfornewblock` / `waitforblockheight` as Bitcoin Core has them.
//!
//! A call parks on the connection's own thread, never on a worker, so
//! parked calls cannot starve other clients of workers; the number parked
//! is capped by [`super::notify`]. It registers before it first reads the
//! state, so a change between the read and the wait still wakes it.

use super::errors::{self, RpcError};
use super::methods::{query, status_name};
use super::notify::{Registration, Topic};
use super::RpcContext;
use crate::mempool::TxStatus;
use crate::node::channels::ConsensusQuery;
use crate::store::ChainTip;
use crate::types::Hash;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The longest a call may park; `0` (Bitcoin's "no timeout") means this.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// `waitfortx` without a timeout.
pub const DEFAULT_TX_WAIT: Duration = Duration::from_secs(60);

/// A parsed wait call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Tx { txid: Hash, timeout: Duration },
    NewBlock { timeout: Duration },
    BlockHeight { height: u64, timeout: Duration },
}

impl Wait {
    /// `timeout_ms` as given (`None` = the default, `0` = the longest).
    pub fn timeout_from_ms(ms: Option<u64>, default: Duration) -> Duration {
        match ms {
            None => default,
            Some(0) => MAX_WAIT,
            Some(ms) => Duration::from_millis(ms).min(MAX_WAIT),
        }
    }

    fn timeout(&self) -> Duration {
        match *self {
            Wait::Tx { timeout, .. }
            | Wait::NewBlock { timeout }
            | Wait::BlockHeight { timeout, .. } => timeout,
        }
    }

    fn topic(&self) -> Topic {
        match *self {
            Wait::Tx { txid, .. } => Topic::Tx(txid),
            Wait::NewBlock { .. } | Wait::BlockHeight { .. } => Topic::Block,
        }
    }
}

/// In a batch a wait does not park: it answers with the state now.
pub fn answer_now(ctx: &RpcContext, wait: Wait) -> Result<Value, RpcError> {
    let tip = ctx.store.tip()?.hash;
    check(ctx, wait, tip, true)?.ok_or_else(|| RpcError::new(errors::INTERNAL_ERROR, "no answer"))
}

/// A wait call holding its place in the registry.
pub struct Parked {
    wait: Wait,
    registration: Registration,
    deadline: Instant,
    /// The tip when the call came in (`waitfornewblock`'s reference).
    start_tip: Hash,
}

/// The RPC's clock for deadlines: I/O timing, not protocol logic.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// Takes a place in the registry (or says why not) and reads the tip.
pub fn park(ctx: &RpcContext, source: IpAddr, wait: Wait) -> Result<Parked, RpcError> {
    let registration = ctx
        .waiters
        .register(source, wait.topic())
        .map_err(RpcError::busy)?;
    let start_tip = ctx.store.tip()?.hash;
    Ok(Parked {
        wait,
        registration,
        deadline: now() + wait.timeout(),
        start_tip,
    })
}

impl Parked {
    /// Blocks until the awaited state, the deadline or shutdown; answers
    /// with the state then.
    pub fn finish(self, ctx: &RpcContext) -> Result<Value, RpcError> {
        loop {
            let timed_out = now() >= self.deadline;
            if let Some(answer) = check(ctx, self.wait, self.start_tip, timed_out)? {
                return Ok(answer);
            }
            let left = self.deadline.saturating_duration_since(now());
            if self.registration.receiver().recv_timeout(left).is_err() && ctx.waiters.is_closed() {
                return check(ctx, self.wait, self.start_tip, true)?
                    .ok_or_else(|| RpcError::busy("the node is shutting down"));
            }
        }
    }
}

/// The answer if the call is done (or `last`), else `None`.
fn check(
    ctx: &RpcContext,
    wait: Wait,
    start_tip: Hash,
    last: bool,
) -> Result<Option<Value>, RpcError> {
    match wait {
        Wait::Tx { txid, .. } => tx_answer(ctx, txid, last),
        Wait::NewBlock { .. } => {
            let tip = ctx.store.tip()?;
            Ok((last || tip.hash != start_tip).then(|| tip_answer(&tip)))
        }
        Wait::BlockHeight { height, .. } => {
            let tip = ctx.store.tip()?;
            Ok((last || tip.height >= height).then(|| tip_answer(&tip)))
        }
    }
}

/// Bitcoin's `{"hash", "height"}`.
fn tip_answer(tip: &ChainTip) -> Value {
    json!({ "hash": tip.hash.to_string(), "height": tip.height })
}

/// Durable-final (read from the store: what any reader sees from now on),
/// or settled otherwise (the engine's word), or `last`.
fn tx_answer(ctx: &RpcContext, txid: Hash, last: bool) -> Result<Option<Value>, RpcError> {
    if let Some(record) = ctx.store.tx(&txid)? {
        return Ok(Some(json!({
            "txid": txid.to_string(),
            "status": "finalized",
            "durable": true,
            "final": true,
            "finalized_at_ms": record.finalized_at_ms,
            "sequence": record.sequence,
        })));
    }
    let answer = query(ctx, |reply| ConsensusQuery::TxStatus { txid, reply })?;
    let status = answer.report.map(|r| r.status);
    let settled = matches!(status, Some(TxStatus::Rejected | TxStatus::Expired));
    if !(settled || last) {
        return Ok(None);
    }
    if status.is_none() && answer.timings.is_none() && last && ctx.store.tx(&txid)?.is_none() {
        return Err(RpcError::new(
            errors::NOT_FOUND,
            format!("transaction {txid} is unknown here (never submitted, or settled long ago)"),
        ));
    }
    Ok(Some(json!({
        "txid": txid.to_string(),
        "status": status.map_or("unknown", status_name),
        "durable": false,
        "final": false,
        "timed_out": !settled,
    })))
}
