//! The status page at `GET /` (behind the RPC's auth) and its data as the
//! `getstatus` method: tip and certification, peers, validators and their
//! weights, the finality latency histogram, tx/s, recent finalized txs.
//!
//! The page is rendered on the server from the same data, self-contained
//! (inline CSS, no script, no external asset) and reloads itself every
//! [`REFRESH_SECS`] with `<meta http-equiv="refresh">`, so it works in any
//! browser, headless ones included. Every value shown is HTML-escaped.

use super::errors::RpcError;
use super::RpcContext;
use crate::finality::ValidatorSet;
use crate::time::MonoTime;
use serde_json::{json, Value};
use std::fmt::Write;

/// The page reloads itself this often.
pub const REFRESH_SECS: u64 = 2;
/// The window of the tx/s figure.
const RATE_WINDOW_MS: u64 = 10_000;
/// Peers listed on the page.
const MAX_PEERS_SHOWN: usize = 64;

/// `getstatus`: everything the page shows.
pub fn status(ctx: &RpcContext) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    let certified_tip = view.certified_tip()?;
    let tip_certificate = view
        .certificate_at(tip.height)?
        .filter(|c| c.hash == tip.hash);
    let set = ValidatorSet::new(ctx.spec.validators.clone())
        .map_err(|e| RpcError::new(super::errors::INTERNAL_ERROR, e.to_string()))?;
    let network = ctx.spec.config.network;
    let now = ctx.clock.read();
    let peers: Vec<Value> = ctx
        .net
        .as_ref()
        .map(|net| net.peers())
        .unwrap_or_default()
        .iter()
        .take(MAX_PEERS_SHOWN)
        .map(|p| {
            json!({
                "addr": p.addr.to_string(),
                "inbound": p.inbound,
                "tip_height": p.tip_height,
                "node_id": p.node_id.map(|id| hex::encode(id.0)),
            })
        })
        .collect();
    let validators: Vec<Value> = set
        .validators()
        .iter()
        .map(|v| {
            json!({
                "id": hex::encode(v.id.0),
                "weight": v.weight,
                "payout_address": crate::chain::reward::payout_address(&v.id).to_text(network),
            })
        })
        .collect();
    let histogram: Vec<Value> = ctx
        .metrics
        .finality_latency
        .buckets()
        .into_iter()
        .map(|(le_ms, count)| json!({ "le_ms": le_ms, "count": count }))
        .collect();
    let recent: Vec<Value> = ctx
        .waiters
        .recent_final()
        .into_iter()
        .map(|(txid, at_ms)| {
            let at = ctx.clock.wall_at(MonoTime(at_ms)).as_millis();
            json!({ "txid": txid.to_string(), "durable_at_ms": at })
        })
        .collect();
    let rate = ctx
        .waiters
        .finalized_per_sec(now.mono.as_millis(), RATE_WINDOW_MS);
    Ok(json!({
        "network": network.name(),
        "tip": {
            "height": tip.height,
            "hash": tip.hash.to_string(),
            "slot": tip.slot,
            "certified": tip_certificate.is_some(),
            "certified_weight": tip_certificate.as_ref().map_or(0, |c| c.weight),
        },
        "certified_tip": certified_tip.map(|(height, hash)| json!({
            "height": height,
            "hash": hash.to_string(),
        })),
        "total_weight": set.total_weight(),
        "required_weight": set.required_weight(),
        "validators": validators,
        "peers": peers,
        "finality_latency_ms": histogram,
        "txs_finalized": ctx.metrics.txs_finalized.load(std::sync::atomic::Ordering::Relaxed),
        "txs_per_sec": format!("{rate:.1}").parse::<serde_json::Number>().map_or(json!(0), Value::Number),
        "recent_final": recent,
        "now_ms": now.wall.as_millis(),
    }))
}

/// `&`, `<`, `>`, `"` and `'` as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as page text (strings without quotes), escaped.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => escape(s),
        Value::Null => "–".to_string(),
        other => escape(&other.to_string()),
    }
}

const STYLE: &str =
    "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}\
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}\
code{font-size:12px}.num{text-align:right}.bar{background:#4a8;height:10px;display:inline-block}\
.ok{color:#070}.warn{color:#a50}.grid{display:flex;gap:2.5em;flex-wrap:wrap}";

/// The whole page for `status` (from [`status`]).
pub fn page(status: &Value) -> String {
    let mut html = String::new();
    let tip = &status["tip"];
    let certified = tip["certified"].as_bool() == Some(true);
    let _ = write!(
        html,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>timecoin {network} — height {height}</title><style>{STYLE}</style></head><body>\
         <h1>timecoin {network} node</h1>\
         <div class=\"grid\"><div><h2>Tip</h2><table>\
         <tr><th>height</th><td id=\"tip-height\">{height}</td></tr>\
         <tr><th>hash</th><td><code>{hash}</code></td></tr>\
         <tr><th>slot</th><td>{slot}</td></tr>\
         <tr><th>certified</th><td class=\"{class}\">{certified} (weight {weight} of {total}, needs {required})</td></tr>\
         <tr><th>last certified</th><td>{last_certified}</td></tr>\
         </table></div><div><h2>Throughput</h2><table>\
         <tr><th>tx/s (last 10 s)</th><td id=\"tx-rate\">{rate}</td></tr>\
         <tr><th>txs finalized</th><td>{finalized}</td></tr></table></div></div>",
        network = text(&status["network"]),
        height = text(&tip["height"]),
        hash = text(&tip["hash"]),
        slot = text(&tip["slot"]),
        class = if certified { "ok" } else { "warn" },
        certified = if certified { "yes" } else { "not yet" },
        weight = text(&tip["certified_weight"]),
        total = text(&status["total_weight"]),
        required = text(&status["required_weight"]),
        last_certified = text(&status["certified_tip"]["height"]),
        rate = text(&status["txs_per_sec"]),
        finalized = text(&status["txs_finalized"]),
    );
    html.push_str("<h2>Finality latency (admission to durable)</h2><table>");
    let buckets = status["finality_latency_ms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let most = buckets
        .iter()
        .filter_map(|b| b["count"].as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    for bucket in &buckets {
        let count = bucket["count"].as_u64().unwrap_or(0);
        let label = match bucket["le_ms"].as_u64() {
            Some(ms) => format!("≤ {ms} ms"),
            None => "more".to_string(),
        };
        let _ = write!(
            html,
            "<tr><td>{label}</td><td class=\"num\">{count}</td>\
             <td><span class=\"bar\" style=\"width:{}px\"></span></td></tr>",
            count * 300 / most
        );
    }
    html.push_str("</table><div class=\"grid\"><div><h2>Validators</h2><table><tr><th>id</th><th>weight</th><th>payout address</th></tr>");
    for v in status["validators"].as_array().into_iter().flatten() {
        let id = text(&v["id"]);
        let _ = write!(
            html,
            "<tr><td><code>{}…</code></td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
            id.get(..16).unwrap_or(&id),
            text(&v["weight"]),
            text(&v["payout_address"]),
        );
    }
    html.push_str("</table></div><div><h2>Peers</h2><table><tr><th>address</th><th>direction</th><th>tip</th></tr>");
    let peers = status["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        html.push_str("<tr><td colspan=\"3\">none (a --dev node has no peers)</td></tr>");
    }
    for p in &peers {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            text(&p["addr"]),
            if p["inbound"].as_bool() == Some(true) {
                "in"
            } else {
                "out"
            },
            text(&p["tip_height"]),
        );
    }
    html.push_str("</table></div></div><h2>Recently finalized</h2><table><tr><th>txid</th><th>durable</th></tr>");
    let now_ms = status["now_ms"].as_u64().unwrap_or(0);
    for t in status["recent_final"].as_array().into_iter().flatten() {
        let age_ms = now_ms.saturating_sub(t["durable_at_ms"].as_u64().unwrap_or(now_ms));
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td class=\"num\">{}.{} s ago</td></tr>",
            text(&t["txid"]),
            age_ms / 1_000,
            age_ms % 1_000 / 100,
        );
    }
    html.push_str("</table><p>Reloads every 2 s. The same data as JSON: the <code>getstatus</code> RPC.</p></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_what_it_shows_and_carries_the_tip_height() {
        let status = json!({
            "network": "<script>",
            "tip": { "height": 42, "hash": "ab", "certified": true },
            "recent_final": [{ "txid": "\"x\"", "durable_at_ms": 1 }],
        });
        let html = page(&status);
        assert!(html.contains("<td id=\"tip-height\">42</td>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&quot;x&quot;"));
    }
}
