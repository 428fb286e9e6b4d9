//! Real `timed --dev` processes (one validator that finalizes alone) driven
//! through JSON-RPC and the real `time-cli`: transfers finalize, finality
//! and acknowledged submissions survive SIGKILL, pending work and local
//! acceptances resume after a restart, stops are clean, and proofs verify
//! offline.

mod node_support;

use node_support::*;
use serde_json::json;
use std::process::Command;
use timecoin::store::{LedgerBatch, Store, StoreOptions};
use timecoin::types::{Amount, Hash, Network, OutPoint, Tx};

fn cli(node: &DevNode, dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_time-cli"))
        .arg("--datadir")
        .arg(&node.datadir)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "time-cli {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cli_send_and_status_wait_show_a_finalized_transfer_whose_proof_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    cli(
        &node,
        dir.path(),
        &["--wallet", "demo.json", "devnet-wallet"],
    );
    let to = address_of("cli recipient").to_text(Network::Devnet);

    let txid = cli(
        &node,
        dir.path(),
        &["--wallet", "demo.json", "send", &to, "12.5"],
    );
    let txid = txid.trim();
    let status = cli(&node, dir.path(), &["status", txid, "--wait"]);
    assert!(status.contains("\"status\": \"finalized\""), "{status}");
    assert!(status.contains("finalized in "), "{status}");

    let balance = cli(&node, dir.path(), &["--wallet", "demo.json", "balance"]);
    assert!(balance.contains("total\t999987.499 TIME"), "{balance}");
    assert_eq!(
        node.balance(&address_of("cli recipient")),
        Amount(1_250_000_000)
    );

    let verdict = cli(&node, dir.path(), &["proof", txid]);
    assert!(verdict.starts_with("valid: transaction"), "{verdict}");
    assert!(
        verdict.contains("weighing 10 of the 7 required"),
        "{verdict}"
    );
}

/// Splits the genesis coin into `n` coins and waits for the split.
fn funded_coins(node: &DevNode, n: usize) -> Vec<(OutPoint, Amount)> {
    let split = split_genesis(n, Amount::from_time(100).unwrap());
    let txid = node.submit(&split).unwrap();
    node.wait_finalized(&[txid]);
    (0..n as u32).map(|vout| coin(&split, vout)).collect()
}

#[test]
fn two_hundred_transfers_all_finalize_and_balances_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    let coins = funded_coins(&node, 200);
    let recipients: Vec<_> = (0..10).map(|i| address_of(&format!("r{i}"))).collect();
    let txs: Vec<_> = coins
        .iter()
        .enumerate()
        .map(|(i, c)| pay(*c, recipients[i % 10], Amount::from_time(1).unwrap()))
        .collect();
    let txids: Vec<Hash> = txs.iter().map(|tx| node.submit(tx).unwrap()).collect();

    let reports = node.wait_finalized(&txids);
    for r in &recipients {
        assert_eq!(node.balance(r), Amount::from_time(20).unwrap());
    }
    // Genesis − 200 TIME paid − 201 fees (split + transfers).
    let fees = min_fee().0 * 201;
    let expected = 1_000_000 * 100_000_000 - 200 * 100_000_000 - fees;
    assert_eq!(node.balance(&wallet_address()), Amount(expected));

    let proof_ms: Vec<u64> = reports
        .iter()
        .filter_map(|r| r["finality_ms"].as_u64())
        .collect();
    assert_eq!(
        proof_ms.len(),
        200,
        "every finalized tx reports its finality time"
    );
    // Durable timings follow the ledger's report to consensus.
    let durable_ms: Vec<u64> = txids
        .iter()
        .map(|t| wait_for("durable timings", || node.status(t)["durable_ms"].as_u64()))
        .collect();
    eprintln!(
        "--dev, 200 transfers: admission to complete proof {}; admission to durable {}",
        percentiles(proof_ms),
        percentiles(durable_ms)
    );
    let info = node.call("getblockchaininfo", json!([]));
    assert_eq!(info["finalized_txs"], 201);
}

/// `p50 X ms, p90 Y ms, max Z ms` of a non-empty sample.
fn percentiles(mut ms: Vec<u64>) -> String {
    ms.sort_unstable();
    let at = |q: usize| ms[(ms.len() - 1) * q / 100];
    format!("p50 {} ms, p90 {} ms, max {} ms", at(50), at(90), at(100))
}

#[test]
fn sigkill_mid_load_keeps_everything_reported_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("node");
    let mut node = DevNode::start(&datadir);
    let coins = funded_coins(&node, 100);
    let to = address_of("kill recipient");
    let txs: Vec<_> = coins
        .iter()
        .map(|c| pay(*c, to, Amount::from_time(1).unwrap()))
        .collect();
    let submitted = 60;
    for tx in &txs[..submitted] {
        node.submit(tx).unwrap();
    }
    // Mid-load: the node is still busy with the latest submissions.
    let finalized: Vec<Hash> = txs[..submitted]
        .iter()
        .map(Tx::txid)
        .filter(|t| node.status(t)["status"] == "finalized")
        .collect();
    node.signal(libc::SIGKILL);
    assert!(!node.wait_exit().success());
    assert!(
        !finalized.is_empty(),
        "some transfers finalized before the kill"
    );

    let node = DevNode::start(&datadir);
    for txid in &finalized {
        assert_eq!(node.status(txid)["status"], "finalized", "{txid} lost");
    }
    // A wallet resubmits what it does not see final; all of it finalizes once.
    let txids: Vec<Hash> = txs
        .iter()
        .map(|tx| match node.submit(tx) {
            Ok(txid) => txid,
            Err(e) if e.code == timecoin::rpc::errors::ALREADY_FINALIZED => tx.txid(),
            Err(e) => panic!("resubmission refused: {e:?}"),
        })
        .collect();
    node.wait_finalized(&txids);
    assert_eq!(node.balance(&to), Amount::from_time(100).unwrap());
}

#[test]
fn every_acknowledged_submission_survives_a_sigkill_without_resubmission() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("node");
    let mut node = DevNode::start(&datadir);
    let coins = funded_coins(&node, 100);
    let to = address_of("acked recipient");
    // Acknowledged means durable: kill right after the last acknowledgement.
    let txids: Vec<Hash> = coins
        .iter()
        .map(|c| {
            node.submit(&pay(*c, to, Amount::from_time(1).unwrap()))
                .unwrap()
        })
        .collect();
    node.signal(libc::SIGKILL);
    assert!(!node.wait_exit().success());

    let node = DevNode::start(&datadir);
    node.wait_finalized(&txids);
    assert_eq!(node.balance(&to), Amount::from_time(100).unwrap());
}

/// Writes a dev-chain datadir as a node that crashed would have left it:
/// `pending` in the mempool table, `accepted` in the vote-safety record.
fn persist_crashed_state(datadir: &std::path::Path, pending: &[Tx], accepted: &[Tx]) {
    let store = Store::open(datadir, &spec(), StoreOptions::default()).unwrap();
    let batch = LedgerBatch {
        mempool_puts: pending,
        accepted,
        ..LedgerBatch::default()
    };
    store.commit_batch(&batch).unwrap();
}

#[test]
fn a_recorded_acceptance_comes_back_so_only_it_finalizes_and_its_conflict_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("node");
    let accepted = pay(
        genesis_coin(),
        address_of("accepted"),
        Amount::from_time(7).unwrap(),
    );
    let conflict = pay(
        genesis_coin(),
        address_of("conflict"),
        Amount::from_time(9).unwrap(),
    );
    // Killed after recording X's acceptance (and perhaps signing it), with
    // the removal of its rejected conflict Y not yet durable.
    persist_crashed_state(
        &datadir,
        std::slice::from_ref(&conflict),
        std::slice::from_ref(&accepted),
    );

    let mut node = DevNode::start(&datadir);
    node.wait_finalized(&[accepted.txid()]);
    let info = node.call("getconsensusinfo", json!([]));
    assert_eq!(info["mempool_reloaded"], 1, "X restored, Y dropped");
    let refused = node.submit(&conflict).unwrap_err();
    assert!(refused.message.contains("already spent"), "{refused:?}");
    assert_eq!(
        node.balance(&address_of("accepted")),
        Amount::from_time(7).unwrap()
    );
    assert_eq!(node.balance(&address_of("conflict")), Amount::ZERO);
    assert_eq!(node.call("stop", json!([])), "timecoin stopping");
    assert_eq!(node.wait_exit().code(), Some(0), "{}", node.log());

    // The record went with X's finalization; Y left the mempool table.
    let stats = Store::open(&datadir, &spec(), StoreOptions::default())
        .unwrap()
        .stats()
        .unwrap();
    assert_eq!((stats.accepted, stats.mempool), (0, 0));
}

#[test]
fn pending_mempool_txs_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("node");
    let split = split_genesis(3, Amount::from_time(5).unwrap());
    persist_crashed_state(&datadir, std::slice::from_ref(&split), &[]);

    let node = DevNode::start(&datadir);
    node.wait_finalized(&[split.txid()]);
    let info = node.call("getconsensusinfo", json!([]));
    assert_eq!(info["mempool_reloaded"], 1);
    assert_eq!(node.call("getmempoolinfo", json!([]))["size"], 0);
}

#[test]
fn sigterm_exits_zero_and_removes_the_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = DevNode::start(&dir.path().join("node"));
    assert!(node.datadir.join(".cookie").exists());
    node.signal(libc::SIGTERM);
    let status = node.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", node.log());
    assert!(!node.datadir.join(".cookie").exists());
    assert!(!node.datadir.join("rpc.port").exists());
}

#[test]
fn stop_rpc_exits_zero_after_committing_and_removes_the_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("node");
    let mut node = DevNode::start(&datadir);
    let tx = pay(
        genesis_coin(),
        address_of("stop"),
        Amount::from_time(3).unwrap(),
    );
    let txid = node.submit(&tx).unwrap();
    node.wait_finalized(&[txid]);
    assert_eq!(node.call("stop", json!([])), "timecoin stopping");
    assert_eq!(node.wait_exit().code(), Some(0), "{}", node.log());
    assert!(!datadir.join(".cookie").exists());

    let node = DevNode::start(&datadir);
    assert_eq!(node.status(&txid)["status"], "finalized");
}

#[test]
fn txfinal_notify_runs_the_command_with_each_durable_final_txid() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("final.txt");
    let command = format!("echo %s >> {}", log.display());
    let node = DevNode::start_with(&dir.path().join("node"), &["--txfinal-notify", &command]);
    let split = split_genesis(2, Amount::from_time(3).unwrap());
    let child = pay(
        coin(&split, 0),
        address_of("notify"),
        Amount::from_time(1).unwrap(),
    );
    let first = node.submit(&split).unwrap();
    node.wait_finalized(&[first]);
    let second = node.submit(&child).unwrap();
    node.wait_finalized(&[second]);
    let lines = wait_for("both txids in the notify log", || {
        let text = std::fs::read_to_string(&log).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (lines.len() >= 2).then_some(lines)
    });
    assert_eq!(lines, [first.to_string(), second.to_string()]);
}
