//! Code written for Bitcoin Core works unchanged: `tests/python/test_bitcoin_rpc.py`
//! drives a real `timed --dev` with `python-bitcoinrpc` (unmodified) and checks
//! every Bitcoin-named method's keys and value types, error codes, and
//! `batch_()`. This test prepares the chain state and transactions it needs.
//!
//! Without `python3` and `bitcoinrpc` the test is skipped with a message,
//! unless `CI` is set (`.ci/run` installs them): then it fails.

mod node_support;

use node_support::*;
use serde_json::json;
use std::process::Command;
use timecoin::types::{Amount, Hash, Network, OutPoint, SignatureBytes};

/// Whether `python3 -c "import bitcoinrpc"` works; in CI it must.
fn python_ready() -> bool {
    let ready = Command::new("python3")
        .args(["-c", "import bitcoinrpc.authproxy"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 with python-bitcoinrpc (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED: python3 with python-bitcoinrpc is absent: pip install python-bitcoinrpc"
        );
    }
    ready
}

#[test]
fn python_bitcoinrpc_reads_every_bitcoin_named_method_in_bitcoins_shapes() {
    if !python_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path());
    let each = Amount::from_time(10).unwrap();
    let split = split_genesis(3, each);
    let split_id = node.submit(&split).unwrap();
    node.wait_finalized(&[split_id]);
    // Archived by a block (one every couple of seconds on the dev chain).
    let id = split_id.to_string();
    wait_for("the split tx archived in a block", || {
        let raw = node.call("getrawtransaction", json!([id, true]));
        raw["blockhash"].is_string().then_some(())
    });
    let fresh = pay(
        coin(&split, 1),
        address_of("python"),
        Amount::from_time(1).unwrap(),
    );
    let mut bad_signature = pay(
        coin(&split, 2),
        address_of("python"),
        Amount::from_time(1).unwrap(),
    );
    bad_signature.inputs[0].sig = SignatureBytes([7; 64]);
    let unknown_input = pay(
        (
            OutPoint {
                txid: Hash([9; 32]),
                vout: 0,
            },
            each,
        ),
        address_of("python"),
        Amount::from_time(1).unwrap(),
    );
    let fixture = json!({
        "url": node.url_with_credentials(),
        "archived_txid": id,
        "address": wallet_address().to_text(Network::Devnet),
        "unspent_txid": id,
        "unspent_vout": 0,
        "spent_txid": genesis_coin().0.txid.to_string(),
        "fresh_hex": hex::encode(fresh.encode()),
        "bad_signature_hex": hex::encode(bad_signature.encode()),
        "unknown_input_hex": hex::encode(unknown_input.encode()),
    });
    let path = dir.path().join("fixture.json");
    std::fs::write(&path, fixture.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/test_bitcoin_rpc.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "python-bitcoinrpc checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
