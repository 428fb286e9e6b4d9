//! Bitcoin's mempool entries (`getrawmempool true`, `getmempoolentry`) for
//! TIME's pending transactions, with the engine's status as an extra.
//!
//! The pending transactions are read from the store's mempool table (what
//! the engine admitted, durably); their timing comes from the engine. The
//! verbose listing is capped so its cost stays bounded.

use super::bitcoin;
use super::errors::{self, RpcError};
use super::methods::{query, status_name};
use super::RpcContext;
use crate::node::channels::{ConsensusQuery, TxStatusAnswer};
use crate::store::ReadView;
use crate::types::{Hash, Tx};
use serde_json::{json, Map, Value};

/// `getrawmempool true` describes at most this many transactions (each
/// costs an engine query).
pub const MAX_VERBOSE_MEMPOOL: usize = 1_000;

/// Bitcoin's entry: sizes, fee, time, height, ancestry (none: TIME has no
/// unconfirmed chains in its pool), plus TIME's `status`.
fn entry(ctx: &RpcContext, view: &ReadView<'_>, tx: &Tx, tip: u64) -> Result<Value, RpcError> {
    let txid = tx.txid();
    let TxStatusAnswer { report, .. } =
        query(ctx, |reply| ConsensusQuery::TxStatus { txid, reply })?;
    let size = tx.encoded_len();
    let fee = view.fee_of(tx)?;
    let first_seen_secs = report
        .and_then(|r| r.first_seen)
        .map_or(0, |t| t.as_millis() / 1_000);
    let mut map = Map::new();
    map.insert("vsize".into(), json!(size));
    map.insert("weight".into(), json!(size.saturating_mul(4)));
    map.insert("time".into(), json!(first_seen_secs));
    map.insert("height".into(), json!(tip));
    map.insert("descendantcount".into(), json!(1));
    map.insert("descendantsize".into(), json!(size));
    map.insert("ancestorcount".into(), json!(1));
    map.insert("ancestorsize".into(), json!(size));
    map.insert("wtxid".into(), json!(txid.to_string()));
    map.insert(
        "fees".into(),
        json!({
            "base": fee.map(bitcoin::amount),
            "modified": fee.map(bitcoin::amount),
            "ancestor": fee.map(bitcoin::amount),
            "descendant": fee.map(bitcoin::amount),
        }),
    );
    map.insert("depends".into(), json!([]));
    map.insert("spentby".into(), json!([]));
    map.insert("bip125-replaceable".into(), json!(false));
    map.insert("unbroadcast".into(), json!(false));
    map.insert("size".into(), json!(size));
    map.insert("fee".into(), json!(fee.map(bitcoin::amount)));
    map.insert("fee_units".into(), json!(fee.map(|f| f.units())));
    map.insert(
        "status".into(),
        json!(report.map_or("unknown", |r| status_name(r.status))),
    );
    Ok(Value::Object(map))
}

pub(super) fn raw_mempool_verbose(ctx: &RpcContext) -> Result<Value, RpcError> {
    let pending = ctx.store.mempool_load(MAX_VERBOSE_MEMPOOL)?;
    let view = ctx.store.read()?;
    let tip = view.tip()?.height;
    let mut listing = Map::new();
    for tx in &pending {
        listing.insert(tx.txid().to_string(), entry(ctx, &view, tx, tip)?);
    }
    Ok(Value::Object(listing))
}

pub(super) fn mempool_entry(ctx: &RpcContext, txid: Hash) -> Result<Value, RpcError> {
    // The table is bounded by the mempool's own cap.
    let max = ctx.spec.config.consensus.mempool_max_txs as usize;
    let pending = ctx.store.mempool_load(max)?;
    let tx = pending
        .iter()
        .find(|tx| tx.txid() == txid)
        .ok_or_else(|| RpcError::new(errors::NOT_FOUND, "Transaction not in mempool"))?;
    let view = ctx.store.read()?;
    let tip = view.tip()?.height;
    entry(ctx, &view, tx, tip)
}
