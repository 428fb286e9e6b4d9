//! Heartbeats on the wire (DESIGN §7 liveness, §8 admission), real `timed`
//! processes and a raw peer: a heartbeat of a registered member (genesis
//! validator 3's key, which never sends one itself) handed to node 0
//! alone is verified and carried by a block of its epoch, which node 1
//! lists (`getblock` `heartbeats`); heartbeats whose signature is not
//! their member's cost the sender a penalty each, and four of them cut it
//! off (with the penalty removed it stayed connected). CI time: a few
//! seconds.

use crate::devnet_support::{wait_for, Devnet};
use crate::net_support::RawPeer;
use crate::one_second_slots;
use serde_json::json;
use std::time::Duration;
use timecoin::chain::Heartbeat;
use timecoin::genesis::devnet_validator_keys;
use timecoin::net::Message;
use timecoin::time::{Clock, SystemClock};

/// Forged heartbeats that reach the ban score (4 × 25 points).
const FORGED: usize = 4;
/// How soon the node must close the connection after them.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn a_relayed_heartbeat_is_carried_and_forged_ones_cut_the_sender_off() {
    let devnet = Devnet::start_with(4, one_second_slots);
    devnet.wait_connected();
    let chain = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    let rules = devnet.spec.epoch_rules;
    let node0 = &devnet.nodes[0];
    let tip = node0.call("getblockchaininfo", json!([]))["blocks"]
        .as_u64()
        .unwrap();
    // The next block's epoch and the one after: either is held.
    let epoch = rules.epoch_of(tip + 1);
    let member = devnet_validator_keys(3).0;
    let id = hex::encode(member.public().0);

    let addr = ([127, 0, 0, 1], node0.p2p_port).into();
    let mut peer = RawPeer::connect(addr, "heartbeat relay");
    let hello = peer.recv_hello();
    peer.complete_handshake_on(chain.0, chain.1, hello);
    for epoch in [epoch, epoch + 1] {
        let heartbeat = Heartbeat::sign(&member, chain, epoch);
        peer.send(&Message::Heartbeat(Box::new(heartbeat))).unwrap();
    }

    // Relayed to node 1 and carried: a block of the epoch lists it there.
    let node1 = &devnet.nodes[1];
    let carried = wait_for("a block on node 1 carrying the heartbeat", || {
        let tip = node1.call("getblockchaininfo", json!([]))["blocks"].as_u64()?;
        (tip.saturating_sub(4)..=tip).find_map(|height| {
            let hash = node1.client().call("getblockhash", json!([height])).ok()?;
            let block = node1.call("getblock", json!([hash, 1]));
            let ids = block["heartbeats"].as_array()?;
            ids.contains(&json!(id)).then_some(block)
        })
    });
    let height = carried["height"].as_u64().unwrap();
    assert!(rules.epoch_of(height) >= epoch, "{carried}");

    // Signed by another key: a penalty each, then the connection goes.
    let other = devnet_validator_keys(2).0;
    for _ in 0..FORGED {
        let mut forged = Heartbeat::sign(&other, chain, epoch + 1);
        forged.validator = devnet_validator_keys(1).0.public();
        peer.send(&Message::Heartbeat(Box::new(forged))).unwrap();
    }
    // The node keeps talking (announces, pings) until it cuts us off.
    let deadline = SystemClock.mono().saturating_add(CUT_OFF_WITHIN);
    while peer.recv().is_some() {
        assert!(
            SystemClock.mono() < deadline,
            "still connected {CUT_OFF_WITHIN:?} after {FORGED} forged heartbeats"
        );
    }
}
