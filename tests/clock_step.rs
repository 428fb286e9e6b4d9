//! Wall-clock steps on a real devnet node (issue 13, "Clock steps"; DESIGN
//! §8): node 0's wall clock is stepped 10 minutes back, then an hour
//! forward, through `timed`'s test hook (its monotonic clock runs on).
//! Timers run on the monotonic clock, so neither step freezes its polls,
//! expires its pending tx or its peers' handshakes, or costs a connection.
//! A build whose polls waited on the wall clock would hold the first tx
//! for 10 minutes (past the test's deadline); one whose mempool expired on
//! it would expire the second.

mod devnet_support;

use devnet_support::{funded_coins, pay, wait_for, Devnet};
use serde_json::json;
use std::time::Duration;

const BACK_MS: i64 = -10 * 60 * 1_000;
const FORWARD_MS: i64 = 60 * 60 * 1_000;

#[test]
fn stepping_the_wall_clock_back_or_forward_stalls_nothing() {
    let devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 1, 3);
    let node0 = &devnet.nodes[0];

    node0.set_wall_offset(BACK_MS);
    let txid = node0
        .submit(&pay(&devnet.spec, coins[0], "after a step back"))
        .unwrap();
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
    }

    // A tx pending at node 0 (half the weight frozen: no quorum) while its
    // clock jumps an hour, past the mempool expiry.
    for node in &devnet.nodes[2..] {
        node.sigstop();
    }
    let txid = node0
        .submit(&pay(&devnet.spec, coins[1], "across a step forward"))
        .unwrap();
    node0.set_wall_offset(FORWARD_MS);
    // Gives a wall-clock expiry time to fire: node 0's timers keep running.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        node0.status_of(&txid),
        "sampling",
        "expired by a clock step"
    );
    for node in &devnet.nodes[2..] {
        node.sigcont();
    }
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
    }

    node0.set_wall_offset(0);
    let txid = devnet.nodes[1]
        .submit(&pay(&devnet.spec, coins[2], "clocks agree again"))
        .unwrap();
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
        let info = node.call("getnetworkinfo", json!([]));
        assert_eq!(
            info["misbehaviour_disconnects"],
            json!(0),
            "node {}: {info}",
            node.index
        );
    }
    devnet.wait_connected();
    wait_for(
        "node 0 to hold handshaked links to all three others",
        || {
            let peers = node0.call("getpeerinfo", json!([]));
            let linked = peers
                .as_array()?
                .iter()
                .filter(|p| !p["node_id"].is_null())
                .count();
            (linked >= 3).then_some(())
        },
    );
}
