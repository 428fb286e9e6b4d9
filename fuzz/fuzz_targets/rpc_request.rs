//! The RPC request parser: the body cost bound (`rpc::json_cost::check`),
//! serde_json, the JSON-RPC envelope (one request or a batch of 1 to
//! `MAX_BATCH`, each an object with a string `method`) and `Method::parse`
//! of its params, as `rpc::server` runs them before dispatch. Dispatch
//! (`methods::call`) needs a running node and is not fuzzed.
//!
//! Asserts: a body that passes the cost check builds a `Value` within
//! `MAX_VALUES` (object keys included) and `MAX_DEPTH`, the check's own
//! promise; a parse error is a JSON-RPC error with a standard or
//! documented code; no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use timecoin::config::ChainConfig;
use timecoin::metrics::Metrics;
use timecoin::rpc::json_cost::{self, MAX_DEPTH, MAX_VALUES};
use timecoin::rpc::methods::Method;
use timecoin::rpc::notify::Waiters;
use timecoin::rpc::server::MAX_BATCH;
use timecoin::rpc::{errors, RpcContext};
use timecoin::store::{Store, StoreOptions};
use timecoin::time::{ManualClock, MonoTime, Timestamp};
use timecoin::types::Network;

/// Values serde_json built (keys counted) and the deepest nesting.
fn cost(value: &Value, depth: usize, values: &mut usize, max_depth: &mut usize) {
    *values += 1;
    match value {
        Value::Array(items) => {
            *max_depth = (*max_depth).max(depth + 1);
            for v in items {
                cost(v, depth + 1, values, max_depth);
            }
        }
        Value::Object(map) => {
            *max_depth = (*max_depth).max(depth + 1);
            for v in map.values() {
                *values += 1;
                cost(v, depth + 1, values, max_depth);
            }
        }
        _ => {}
    }
}

/// A context without a node: an empty devnet store in a temp dir; the
/// channels lead nowhere (only `methods::call` would use them).
fn context() -> RpcContext {
    let spec = ChainConfig::builtin(Network::Devnet).expect("builtin devnet config");
    let dir: PathBuf =
        std::env::temp_dir().join(format!("timecoin-fuzz-rpc-{}", std::process::id()));
    let options = StoreOptions {
        map_size_bytes: 1 << 24,
        max_map_size_bytes: 1 << 26,
    };
    let store = Store::open(&dir, &spec, options).expect("temp store");
    let (inbox, _) = crossbeam_channel::unbounded();
    let (stop, _) = crossbeam_channel::unbounded();
    RpcContext {
        store: Arc::new(store),
        spec,
        inbox,
        metrics: Arc::new(Metrics::default()),
        stop,
        started_at: MonoTime(0),
        clock: Arc::new(ManualClock::new(Timestamp(0))),
        consensus_timeout: Duration::from_millis(1),
        net: None,
        waiters: Arc::new(Waiters::default()),
    }
}

thread_local! {
    static CTX: RpcContext = context();
}

fn parse_one(request: &Value, ctx: &RpcContext) {
    let Some(object) = request.as_object() else {
        return;
    };
    let Some(name) = object.get("method").and_then(Value::as_str) else {
        return;
    };
    let params = object.get("params").unwrap_or(&Value::Null);
    if let Err(e) = Method::parse(name, params, ctx) {
        assert!(
            [
                errors::METHOD_NOT_FOUND,
                errors::INVALID_PARAMS,
                errors::INVALID_REQUEST,
                errors::DESERIALIZATION_ERROR,
                // bitcoind's RPC_INVALID_ADDRESS_OR_KEY: a malformed address.
                errors::NOT_FOUND,
            ]
            .contains(&e.code),
            "unexpected code {} for {name}: {}",
            e.code,
            e.message
        );
        assert!(e.message.len() < 4096, "error message echoes too much");
    }
}

fuzz_target!(|body: &[u8]| {
    if json_cost::check(body).is_err() {
        return;
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let (mut values, mut depth) = (0, 0);
    cost(&parsed, 0, &mut values, &mut depth);
    assert!(
        values <= MAX_VALUES,
        "{values} values passed the cost check"
    );
    assert!(depth <= MAX_DEPTH, "depth {depth} passed the cost check");
    CTX.with(|ctx| match &parsed {
        Value::Array(batch) if batch.is_empty() || batch.len() > MAX_BATCH => {}
        Value::Array(batch) => batch.iter().for_each(|r| parse_one(r, ctx)),
        single => parse_one(single, ctx),
    });
});
