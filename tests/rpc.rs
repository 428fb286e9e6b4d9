//! The JSON-RPC surface of a real `timed --dev`: every class of bad input
//! gets its JSON-RPC error code and a message that says what is wrong;
//! credentials and body size are enforced at the HTTP layer; read methods
//! describe finalized state.

mod node_support;

use node_support::*;
use serde_json::{json, Value};
use std::time::Duration;
use timecoin::crypto::Keypair;
use timecoin::ledger::{validate, MemUtxoSet};
use timecoin::rpc::auth::basic_header;
use timecoin::rpc::client::RpcClient;
use timecoin::rpc::errors::*;
use timecoin::types::{Amount, Hash, OutPoint, SignatureBytes, Tx, TxOut};
use timecoin::wallet::{build_transfer, sign_inputs, Spendable};

fn node() -> (tempfile::TempDir, DevNode) {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    (dir, node)
}

/// Posts a raw body and returns the parsed JSON-RPC reply.
fn post(node: &DevNode, body: &str) -> Value {
    let response = node.client.post(body.as_bytes()).unwrap();
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).unwrap()
}

fn assert_error(node: &DevNode, method: &str, params: Value, code: i32, needle: &str) {
    let e = node.call_err(method, params.clone());
    assert_eq!(e.code, code, "{method} {params}: {}", e.message);
    assert!(
        e.message.contains(needle),
        "{method} {params}: expected '{needle}' in '{}'",
        e.message
    );
}

#[test]
fn malformed_json_and_bad_requests_are_refused_with_their_codes() {
    let (_dir, node) = node();
    let reply = post(&node, "{\"jsonrpc\": \"2.0\", \"method\": ");
    assert_eq!(reply["error"]["code"], PARSE_ERROR);
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    let reply = post(&node, "{\"jsonrpc\": \"2.0\", \"method\": 7, \"id\": 3}");
    assert_eq!(reply["error"]["code"], INVALID_REQUEST);
    assert_eq!(reply["id"], 3);
    let reply = post(&node, "[]");
    assert_eq!(reply["error"]["code"], INVALID_REQUEST);
    assert_error(
        &node,
        "getnothing",
        json!([]),
        METHOD_NOT_FOUND,
        "getnothing",
    );
}

#[test]
fn wrong_params_are_invalid_params_naming_the_param() {
    let (_dir, node) = node();
    assert_error(
        &node,
        "gettxstatus",
        json!([]),
        INVALID_PARAMS,
        "'txid': missing",
    );
    assert_error(
        &node,
        "gettxstatus",
        json!(["abc"]),
        INVALID_PARAMS,
        "'txid'",
    );
    assert_error(
        &node,
        "gettxstatus",
        json!([5]),
        INVALID_PARAMS,
        "'txid': expected a string",
    );
    assert_error(
        &node,
        "getblockhash",
        json!(["x"]),
        INVALID_PARAMS,
        "'height'",
    );
    assert_error(
        &node,
        "getblockhash",
        json!([7]),
        INVALID_PARAMETER,
        "out of range",
    );
    assert_error(
        &node,
        "getblockcount",
        json!([1]),
        INVALID_PARAMS,
        "at most 0",
    );
    assert_error(
        &node,
        "listunspent",
        json!([0, 10, ["dtime1nope"]]),
        NOT_FOUND,
        "Invalid address",
    );
    assert_error(
        &node,
        "getbalance",
        json!({"addr": "x"}),
        INVALID_PARAMS,
        "'addr'",
    );
    assert_error(
        &node,
        "gettxout",
        json!([Hash::ZERO.to_string(), -1]),
        INVALID_PARAMS,
        "'n'",
    );
    assert_error(
        &node,
        "gettxstatus",
        json!([Hash::ZERO.to_string()]),
        NOT_FOUND,
        "unknown",
    );
    assert_error(
        &node,
        "getblock",
        json!([Hash::ZERO.to_string()]),
        NOT_FOUND,
        "not found",
    );
}

#[test]
fn bad_hex_and_undecodable_transactions_are_deserialization_errors() {
    let (_dir, node) = node();
    assert_error(
        &node,
        "sendrawtransaction",
        json!(["zz"]),
        DESERIALIZATION_ERROR,
        "not valid hex",
    );
    assert_error(
        &node,
        "sendrawtransaction",
        json!(["00ff"]),
        DESERIALIZATION_ERROR,
        "cannot decode",
    );
    let huge = "00".repeat(spec().config.ledger.max_tx_bytes as usize + 1);
    assert_error(
        &node,
        "sendrawtransaction",
        json!([huge]),
        DESERIALIZATION_ERROR,
        "over the limit",
    );
}

/// The ledger's own verdict on `tx` against the dev genesis.
fn expected_error(tx: &Tx) -> String {
    let mut utxos = MemUtxoSet::default();
    let spec = spec();
    utxos.add_outputs(spec.genesis_hash(), &spec.allocations);
    validate(tx, &utxos, &spec.validation_params())
        .unwrap_err()
        .to_string()
}

#[test]
fn each_validation_failure_returns_its_tx_error_text() {
    let (_dir, node) = node();
    let key = wallet_key();
    let coin = genesis_coin();
    let to = TxOut {
        value: Amount::from_time(1).unwrap(),
        address: address_of("v"),
    };
    let spend = |value: Amount, fee: Amount, key: &Keypair| {
        let input = Spendable {
            outpoint: coin.0,
            value,
            key,
        };
        build_transfer(&[input], &[to], fee, wallet_address(), spec().chain_id()).unwrap()
    };
    let fee_too_low = spend(coin.1, Amount(1), &key);
    let mut bad_signature = spend(coin.1, min_fee(), &key);
    bad_signature.inputs[0].sig = SignatureBytes([7; 64]);
    let wrong_key = spend(coin.1, min_fee(), &Keypair::from_seed_label("thief"));
    let mut overspend = spend(coin.1, min_fee(), &key);
    overspend.outputs[0].value = Amount(coin.1 .0 + 1);
    sign_inputs(&mut overspend, &[&key], spec().chain_id());
    let unknown = pay(
        (
            OutPoint {
                txid: Hash([9; 32]),
                vout: 0,
            },
            coin.1,
        ),
        address_of("u"),
        to.value,
    );

    // Bitcoin Core's codes: -25 for a missing input, -26 for a broken rule.
    for (tx, code) in [
        (fee_too_low, VERIFY_REJECTED),
        (bad_signature, VERIFY_REJECTED),
        (wrong_key, VERIFY_REJECTED),
        (overspend, VERIFY_REJECTED),
        (unknown, VERIFY_ERROR),
    ] {
        let expected = expected_error(&tx);
        let e = node.submit(&tx).unwrap_err();
        assert_eq!(e.code, code, "{}", e.message);
        assert!(
            e.message.contains(&expected),
            "'{expected}' not in '{}'",
            e.message
        );
    }
}

#[test]
fn double_spends_of_pending_and_finalized_txs_are_refused_naming_the_winner() {
    let (_dir, node) = node();
    let a = pay(
        genesis_coin(),
        address_of("a"),
        Amount::from_time(1).unwrap(),
    );
    let b = pay(
        genesis_coin(),
        address_of("b"),
        Amount::from_time(2).unwrap(),
    );
    // One batch: b arrives while a is pending or just decided.
    let batch = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "sendrawtransaction", "params": [hex::encode(a.encode())]},
        {"jsonrpc": "2.0", "id": "b", "method": "sendrawtransaction", "params": [hex::encode(b.encode())]},
    ]);
    let replies = post(&node, &batch.to_string());
    assert_eq!(replies[0]["result"], a.txid().to_string());
    assert_eq!(replies[1]["error"]["code"], VERIFY_REJECTED);
    let message = replies[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains(&a.txid().to_string()), "{message}");

    node.wait_finalized(&[a.txid()]);
    let c = pay(
        genesis_coin(),
        address_of("c"),
        Amount::from_time(3).unwrap(),
    );
    let e = node.submit(&c).unwrap_err();
    assert_eq!(e.code, VERIFY_REJECTED);
    assert!(
        e.message.contains(&format!(
            "already spent by finalized transaction {}",
            a.txid()
        )),
        "{}",
        e.message
    );
    let e = node.submit(&a).unwrap_err();
    assert_eq!(e.code, ALREADY_FINALIZED, "{}", e.message);
}

#[test]
fn wrong_or_missing_credentials_get_http_401() {
    let (_dir, node) = node();
    let addr = node.client.get("/metrics").map(|_| ()).ok();
    assert!(addr.is_some());
    let port: u16 = std::fs::read_to_string(node.datadir.join("rpc.port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let wrong = RpcClient::new(
        ([127, 0, 0, 1], port).into(),
        basic_header("__cookie__", "not-the-secret"),
        Duration::from_secs(10),
    );
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"getblockcount"}"#;
    assert_eq!(wrong.post(body).unwrap().status, 401);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    assert_eq!(wrong.exchange(head.as_bytes(), body).unwrap().status, 401);
    assert_eq!(node.call("getblockcount", json!([])), 0);
}

#[test]
fn oversized_body_is_refused_before_it_is_read() {
    let (_dir, node) = node();
    let cookie = timecoin::rpc::auth::read_cookie(&node.datadir).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {cookie}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        64 * 1024 * 1024
    );
    let response = node.client.exchange(head.as_bytes(), &[]).unwrap();
    assert_eq!(response.status, 413);
    assert!(String::from_utf8_lossy(&response.body).contains("over the limit"));
    assert_eq!(node.call("getblockcount", json!([])), 0, "still serving");
}

#[test]
fn read_methods_describe_a_finalized_transfer() {
    let (_dir, node) = node();
    let to = address_of("reader");
    let tx = pay(genesis_coin(), to, Amount::from_time(4).unwrap());
    let txid = node.submit(&tx).unwrap();
    node.wait_finalized(&[txid]);
    let id = txid.to_string();

    assert_eq!(
        node.call("getrawtransaction", json!([id])),
        hex::encode(tx.encode())
    );
    let verbose = node.call("getrawtransaction", json!([id, true]));
    assert_eq!(verbose["txid"], id);
    assert_eq!(verbose["status"], "finalized");
    let out = node.call("gettxout", json!([id, 0]));
    assert_eq!(out["value_units"], 400_000_000u64);
    assert_eq!(out["value"].to_string(), "4.00000000");
    assert_eq!(
        node.call("gettxout", json!([genesis_coin().0.txid.to_string(), 0])),
        Value::Null
    );
    let unspent = node.call(
        "listunspent",
        json!([0, 9_999_999, [to.to_text(timecoin::types::Network::Devnet)]]),
    );
    assert_eq!(unspent.as_array().unwrap().len(), 1);
    let proof = node.call("getfinalityproof", json!([id]));
    assert_eq!(proof["votes"], 1);
    assert_eq!(proof["weight"], 10);
    assert_eq!(proof["required_weight"], 7);
    let genesis = spec().genesis_hash().to_string();
    assert_eq!(node.call("getbestblockhash", json!([])), genesis);
    assert_eq!(node.call("getblockhash", json!([0])), genesis);
    assert_eq!(node.call("getblock", json!([genesis]))["height"], 0);
    assert_eq!(
        node.call("getvalidators", json!([]))["validators"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(node.call("getpeerinfo", json!([])), json!([]));
    assert_eq!(node.call("getnetworkinfo", json!([]))["connections"], 0);
    assert!(node.call("uptime", json!([])).as_u64().is_some());
    assert_eq!(node.call("getrawmempool", json!([])), json!([]));
    assert_eq!(
        node.call("getconsensusinfo", json!({}))["is_validator"],
        true
    );

    let metrics = String::from_utf8(node.client.get("/metrics").unwrap().body).unwrap();
    for series in [
        "timecoin_txs_finalized_total 1",
        "timecoin_finality_latency_seconds_count 1",
        // One per ledger batch: how many batches one tx took is timing.
        "timecoin_lmdb_commit_seconds_count ",
        "timecoin_ledger_commits_total ",
        "timecoin_channel_backpressure_total{channel=\"ledger\"}",
        "timecoin_polls_started_total",
        "timecoin_txs_rejected_total 0",
        "timecoin_txs_expired_total 0",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
}

#[test]
fn help_lists_every_method_and_each_listed_name_parses() {
    let (_dir, node) = node();
    let listing = node.call("help", json!([]));
    let text = listing.as_str().unwrap();
    for (name, _, _) in timecoin::rpc::help::METHODS {
        assert!(text.contains(name), "help lists {name}");
        // An unknown named param is refused by the method's own parser,
        // before it runs: the name is known.
        assert_error(
            &node,
            name,
            json!({"no_such_param": 1}),
            INVALID_PARAMS,
            "no such parameter",
        );
    }
    assert!(node
        .call("help", json!(["getblock"]))
        .as_str()
        .unwrap()
        .starts_with("getblock "));
    assert_error(
        &node,
        "help",
        json!(["nope"]),
        METHOD_NOT_FOUND,
        "unknown command",
    );
}

#[test]
fn waitfortx_answers_once_the_tx_is_durable_final_and_unknown_txs_at_the_timeout() {
    let (_dir, node) = node();
    let tx = pay(
        genesis_coin(),
        address_of("waiter"),
        Amount::from_time(2).unwrap(),
    );
    let txid = node.submit(&tx).unwrap();
    let answer = node.call("waitfortx", json!([txid.to_string(), 30_000]));
    assert_eq!(answer["status"], "finalized", "{answer}");
    assert_eq!(answer["durable"], true);
    // What waitfortx reported is what every reader sees from then on.
    assert_eq!(node.status(&txid)["status"], "finalized");
    let unknown = Hash::digest(b"never sent").to_string();
    assert_error(
        &node,
        "waitfortx",
        json!([unknown, 50]),
        NOT_FOUND,
        "unknown",
    );
}

#[test]
fn parked_waits_leave_the_workers_free_for_other_clients() {
    let (_dir, node) = node();
    let height = node.call("getblockcount", json!([])).as_u64().unwrap();
    // More parked calls than RPC workers (4), on a height not reached for
    // long: each parks until its 5 s timeout.
    let far = height + 1_000;
    let parked: Vec<_> = (0..8)
        .map(|_| {
            let client = node.client.clone();
            std::thread::spawn(move || client.call("waitforblockheight", json!([far, 5_000])))
        })
        .collect();
    for _ in 0..20 {
        assert_eq!(node.call("ping", json!([])), Value::Null);
    }
    assert!(
        parked.iter().all(|call| !call.is_finished()),
        "other clients were served while the waits stayed parked"
    );
    for call in parked {
        // At the timeout a wait answers with the tip it has.
        let tip = call.join().unwrap().unwrap();
        assert!(tip["height"].as_u64().unwrap() < far, "{tip}");
    }
    let tip = node.call("waitfornewblock", json!([30_000]));
    assert!(tip["height"].as_u64().unwrap() > height);
}

#[test]
fn batches_answer_waits_at_once_and_carry_error_null_on_success() {
    let (_dir, node) = node();
    let reply = post(
        &node,
        r#"[{"jsonrpc":"2.0","method":"waitfornewblock","params":[60000],"id":1},
            {"jsonrpc":"2.0","method":"getblockcount","id":2}]"#,
    );
    assert!(reply[0]["result"]["height"].is_u64(), "{reply}");
    assert!(reply[1]["error"].is_null() && reply[1].get("error").is_some());
    let legacy = post(
        &node,
        r#"{"version":"1.1","method":"getblockcount","id":3}"#,
    );
    assert!(legacy.get("error").is_some_and(Value::is_null), "{legacy}");
}
