//! Real net threads on 127.0.0.1: handshakes, consensus messages, discovery
//! by GetPeers, one connection per node pair, and redial with backoff.

mod net_support;

use net_support::*;
use std::collections::BTreeSet;
use timecoin::consensus::messages::ConsensusMessage;
use timecoin::net::{Message, MessageTag, NetCommand, NetEvent};
use timecoin::types::{Tx, TX_VERSION};

#[test]
fn three_nodes_connect_discover_each_other_and_exchange_consensus_messages() {
    let a = start("a", config(1, &[]));
    let b = start("b", config(2, &[a.local_addr()]));
    let c = start("c", config(3, &[a.local_addr()]));
    // b and c were never told about each other: they meet through a's Peers.
    for (node, others) in [(&a, [&b, &c]), (&b, [&a, &c]), (&c, [&a, &b])] {
        let mut want: BTreeSet<_> = others.iter().map(|o| o.node_id()).collect();
        while !want.is_empty() {
            if let NetEvent::PeerConnected { node_id, .. } =
                wait_for(&node.consensus_events, "all peers", |e| {
                    matches!(e, NetEvent::PeerConnected { .. })
                })
            {
                want.remove(&node_id);
            }
        }
    }

    a.send(NetCommand::SendTo(b.node_id(), query(7))).unwrap();
    wait_message(&b, a.node_id(), &query(7));

    let tx = Message::Consensus(ConsensusMessage::Tx(Tx {
        version: TX_VERSION,
        inputs: vec![],
        outputs: vec![],
        registration: None,
    }));
    c.send(NetCommand::Broadcast {
        msg: tx.clone(),
        skip: vec![],
    })
    .unwrap();
    wait_message(&a, c.node_id(), &tx);
    wait_message(&b, c.node_id(), &tx);
    // Relaying the same transaction again is suppressed, not re-sent.
    c.send(NetCommand::Broadcast {
        msg: tx,
        skip: vec![],
    })
    .unwrap();
    eventually("the second broadcast is suppressed", || {
        c.metrics().gossip_suppressed == 1
    });
    assert_eq!(c.metrics().messages_out_of(MessageTag::Tx), 2);
    assert!(b.metrics().messages_in_of(MessageTag::Peers) >= 1);
}

#[test]
fn simultaneous_dials_end_with_exactly_one_connection() {
    let a = start("a", config(21, &[]));
    let b = start("b", config(22, &[]));
    // Both dial each other at the same moment.
    a.send(NetCommand::AddPeer(b.local_addr())).unwrap();
    b.send(NetCommand::AddPeer(a.local_addr())).unwrap();
    wait_connected(&a, b.node_id());
    wait_connected(&b, a.node_id());
    eventually("one connection on each side", || {
        a.peers().len() == 1 && b.peers().len() == 1
    });
    let (low, high) = if a.node_id() < b.node_id() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    eprintln!(
        "duplicates seen: {} {}",
        low.metrics().duplicate_connections,
        high.metrics().duplicate_connections
    );
    if low.metrics().duplicate_connections + high.metrics().duplicate_connections > 0 {
        // Both sockets existed: both ends kept the one the lower node id initiated.
        assert!(!low.peers()[0].inbound);
        assert!(high.peers()[0].inbound);
    }
    // The survivor carries traffic both ways, and neither side saw a flap.
    a.send(NetCommand::SendTo(b.node_id(), query(1))).unwrap();
    wait_message(&b, a.node_id(), &query(1));
    b.send(NetCommand::SendTo(a.node_id(), query(2))).unwrap();
    wait_message(&a, b.node_id(), &query(2));
    assert_eq!(established(&a), vec![b.node_id()]);
    assert_eq!(established(&b), vec![a.node_id()]);
    for node in [&a, &b] {
        assert!(node
            .consensus_events
            .try_iter()
            .all(|e| !matches!(e, NetEvent::PeerDisconnected { .. })));
    }
}

#[test]
fn a_restarted_node_is_redialed_with_backoff() {
    let b = start("b", config(31, &[]));
    let b_addr = b.local_addr();
    let a = start("a", config(32, &[b_addr]));
    wait_connected(&a, b.node_id());
    let b_id = b.node_id();
    b.shutdown();
    wait_for(
        &a.consensus_events,
        "the disconnect",
        |e| matches!(e, NetEvent::PeerDisconnected { node_id } if *node_id == b_id),
    );
    let dials_before = a.metrics().dials;
    eventually("a few failed redials", || {
        a.metrics().dials >= dials_before + 3
    });
    let mut restarted = config(33, &[]);
    restarted.listen_addr = b_addr;
    let b = start("b", restarted);
    wait_connected(&a, b.node_id());
    // Backoff (50 ms doubling to 400 ms, with jitter) keeps the redials few.
    assert!(
        a.metrics().dials < dials_before + 40,
        "{:?}",
        a.metrics().dials
    );
}
