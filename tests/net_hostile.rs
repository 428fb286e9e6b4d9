//! Hostile peers against a real net thread: garbage, a 1 GiB length prefix,
//! a wrong chain, a forged handshake signature, a flood past the rate limit,
//! a peer that never reads, and one that never finishes its handshake. Each
//! is cut off (and the misbehaving ones banned; not the slow ones) while a well-behaved node
//! connected at the same time keeps exchanging messages, and every queue
//! stays under its cap. A configured validator's host is never banned by
//! IP, and a validator over its limits is throttled, not disconnected.

mod net_support;

use net_support::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use timecoin::net::frame::encode_frame;
use timecoin::net::{spawn_net, Hello, Message, NetCommand, PeerInfo, RateLimit, PROTOCOL_VERSION};
use timecoin::types::ChainId;

const WRITE_QUEUE_CAP: usize = 256 * 1024;

#[test]
fn hostile_peers_are_cut_off_while_a_good_peer_keeps_talking() {
    let mut server_config = config(41, &[]);
    server_config.write_queue_bytes_max = WRITE_QUEUE_CAP;
    server_config.rate_limits.poll = RateLimit {
        burst: 20,
        per_sec: 5,
    };
    let server = start("server", server_config);
    let good = start("good", config(42, &[server.local_addr()]));
    wait_connected(&server, good.node_id());
    wait_connected(&good, server.node_id());

    // Every hostile connection is accepted (the node's Hello proves it)
    // before the first ban, since they all come from 127.0.0.1.
    let labels = [
        "garbage",
        "gib",
        "wrong-chain",
        "bad-sig",
        "flood",
        "no-read",
        "silent",
    ];
    let mut peers: Vec<RawPeer> = labels
        .iter()
        .map(|l| RawPeer::connect(server.local_addr(), l))
        .collect();
    let hellos: Vec<Hello> = peers.iter_mut().map(|p| p.recv_hello()).collect();
    let [garbage, gib, wrong_chain, bad_sig, flood, no_read, silent] = &mut peers[..] else {
        unreachable!()
    };
    // Within the handshake deadline that will cut `silent` off.
    flood.complete_handshake(hellos[4].clone());
    assert_eq!(
        no_read.complete_handshake(hellos[5].clone()),
        server.node_id()
    );

    let mut body = vec![0u8; 200];
    ChaCha20Rng::seed_from_u64(7).fill_bytes(&mut body);
    let mut payload = 0x0001u16.to_le_bytes().to_vec(); // a Hello tag over garbage
    payload.extend_from_slice(&body);
    garbage
        .send_raw(&encode_frame(&payload, 1 << 20).unwrap())
        .unwrap();
    garbage.expect_closed();

    gib.send_raw(&(1u32 << 30).to_le_bytes()).unwrap();
    gib.expect_closed();

    let wrong = wrong_chain.hello(ChainId(99), PROTOCOL_VERSION);
    wrong_chain.send(&wrong).unwrap();
    wrong_chain.expect_closed();

    let right = bad_sig.hello(CHAIN, PROTOCOL_VERSION);
    bad_sig.send(&right).unwrap();
    let forged = bad_sig.key.sign(b"not the node's nonce");
    bad_sig
        .send(&Message::HelloAck { signature: forged })
        .unwrap();
    bad_sig.expect_closed();

    let frames: Vec<u8> = (0..200)
        .flat_map(|i| encode_frame(&query(i).encode(), 1 << 20).unwrap())
        .collect();
    let _ = flood.send_raw(&frames); // the node may hang up mid-write
    flood.expect_closed();

    silent.expect_closed(); // handshake deadline

    // The node keeps sending ~1 MB messages to a peer that never reads.
    let big = Message::Blocks {
        blocks: vec![vec![0u8; 60_000]; 16],
    };
    eventually("the unread queue overflows", || {
        let _ = server.send(NetCommand::SendTo(no_read.key.public(), big.clone()));
        server.metrics().write_queue_overflows >= 1
    });
    no_read.expect_closed();

    // The well-behaved peer never noticed.
    server
        .send(NetCommand::SendTo(good.node_id(), query(1)))
        .unwrap();
    wait_message(&good, server.node_id(), &query(1));
    good.send(NetCommand::SendTo(server.node_id(), query(2)))
        .unwrap();
    wait_message(&server, good.node_id(), &query(2));
    eventually("only the good peer remains", || {
        server
            .peers()
            .iter()
            .map(|p: &PeerInfo| p.node_id)
            .collect::<Vec<_>>()
            == vec![Some(good.node_id())]
    });

    let m = server.metrics();
    // Every one but `silent`, which was only slow: disconnected, not banned.
    assert!(m.misbehaviour_disconnects >= 5, "{m:?}");
    assert_eq!(m.handshake_drops, 1, "{m:?}");
    assert!(m.rate_limited >= 1, "{m:?}");
    assert!(m.bans >= 1, "{m:?}");
    assert!(m.max_write_queue_bytes as usize <= WRITE_QUEUE_CAP, "{m:?}");
    assert_eq!(m.outbox_drops, 0, "{m:?}");

    // The banned address is refused before any Hello.
    let mut late = RawPeer::connect(server.local_addr(), "late");
    assert_eq!(late.recv(), None);
    eventually("the refusal is counted", || {
        server.metrics().inbound_refused >= 1
    });
}

#[test]
fn a_hostile_peer_on_a_validators_host_never_cuts_that_validator_off() {
    let validator = start("validator", config(51, &[]));
    let validator_addr = validator.local_addr();
    let mut server_config = config(52, &[validator_addr]);
    server_config.validators = vec![validator.node_id()];
    let server = start("server", server_config);
    wait_connected(&server, validator.node_id());

    garbage_from_a_protected_host_bans_nobody(&server);

    // The validator restarts on its address: it is redialed and accepted,
    // and new connections from the host are still served.
    let validator_id = validator.node_id();
    validator.shutdown();
    let mut restarted = config(53, &[]);
    restarted.listen_addr = validator_addr;
    let validator = spawn_net(restarted, key("validator"), CHAIN, genesis()).unwrap();
    assert_eq!(validator.node_id(), validator_id);
    wait_connected(&validator, server.node_id());
    let mut late = RawPeer::connect(server.local_addr(), "late");
    late.recv_hello();
}

#[test]
fn a_validator_over_its_rate_limit_is_throttled_but_stays_connected() {
    let flood_key = key("flooding validator");
    let mut server_config = config(61, &[]);
    server_config.validators = vec![flood_key.public()];
    server_config.rate_limits.poll = RateLimit {
        burst: 20,
        per_sec: 5,
    };
    let server = start("server", server_config);
    let mut flood = RawPeer::connect(server.local_addr(), "flooding validator");
    let hello = flood.recv_hello();
    flood.complete_handshake(hello);
    let frames: Vec<u8> = (0..200)
        .flat_map(|i| encode_frame(&query(i).encode(), 1 << 20).unwrap())
        .collect();
    flood.send_raw(&frames).unwrap();
    eventually("the excess is dropped", || {
        server.metrics().rate_limited >= 100
    });
    // Still connected and answered: a Ping gets its Pong.
    flood.send(&Message::Ping { nonce: 7 }).unwrap();
    while !matches!(flood.recv(), Some(Message::Pong { nonce: 7 })) {}
    let m = server.metrics();
    assert_eq!(m.misbehaviour_disconnects, 0, "{m:?}");
    assert_eq!(m.bans, 0, "{m:?}");
    assert_eq!(established(&server), vec![flood_key.public()]);
}
