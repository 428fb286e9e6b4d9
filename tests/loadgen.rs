//! `time-cli bench` against a real `timed --dev`: the run ends by itself,
//! every plain transfer it offers finalizes, and of each double-spend pair
//! exactly one finalizes; the RPC serves a burst of keep-alive connections
//! (the bench's senders) at once; the bench finds the node's pid.

mod node_support;

use node_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;

/// Runs `time-cli bench ARGS --json` with the devnet demo wallet and returns its report.
fn bench(node: &DevNode, dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_time-cli"))
        .arg("--datadir")
        .arg(&node.datadir)
        .args(["--wallet", "demo.json", "bench", "--json"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "time-cli bench {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn field(report: &Value, name: &str) -> u64 {
    report[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn bench_finalizes_every_plain_transfer_and_exactly_one_of_each_double_spend_pair() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let made = Command::new(env!("CARGO_BIN_EXE_time-cli"))
        .args(["--wallet", "demo.json", "devnet-wallet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());

    let plain = bench(&node, dir.path(), &["--rate", "200", "--duration", "3"]);
    assert_eq!(field(&plain, "sent"), 600, "{plain}");
    assert_eq!(
        field(&plain, "finalized"),
        field(&plain, "plain_sent"),
        "{plain}"
    );
    assert_eq!(field(&plain, "pending"), 0, "{plain}");
    assert!(
        plain["submit_to_durable_ms"]["count"].as_u64() == Some(600),
        "{plain}"
    );
    assert!(plain["nodes"][0]["pid"].as_u64().is_some(), "{plain}");

    let mixed = bench(
        &node,
        dir.path(),
        &["--rate", "200", "--duration", "3", "--conflicts", "0.2"],
    );
    assert_eq!(field(&mixed, "conflict_pairs"), 60, "{mixed}");
    assert_eq!(field(&mixed, "pairs_one_finalized"), 60, "{mixed}");
    assert_eq!(field(&mixed, "pairs_both_finalized"), 0, "{mixed}");
    assert_eq!(
        field(&mixed, "plain_finalized"),
        field(&mixed, "plain_sent"),
        "{mixed}"
    );
}

#[test]
fn a_burst_of_keep_alive_connections_is_served_while_all_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    // More connections than RPC workers (4) and than tiny_http's 4 pooled
    // threads, which left one of such a burst waiting until another closed.
    const CONNECTIONS: usize = 24;
    let barrier = Barrier::new(CONNECTIONS);
    let mut open: Vec<_> = (0..CONNECTIONS).map(|_| node.client.connection()).collect();
    std::thread::scope(|s| {
        for connection in &mut open {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                connection
                    .call("getblockcount", serde_json::json!([]))
                    .unwrap();
            });
        }
    });
    // Every connection is still open and answers again.
    for connection in &mut open {
        assert_eq!(
            connection
                .call("getblockcount", serde_json::json!([]))
                .unwrap(),
            0
        );
    }
    assert_eq!(
        std::fs::read_to_string(node.datadir.join("timed.pid"))
            .unwrap()
            .trim(),
        node.pid().to_string(),
        "the node names its pid for tools"
    );
}
