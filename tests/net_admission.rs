//! Peer admission against a real net thread on 127.0.0.1 (DESIGN §8): a
//! node full of sybils still admits a validator, the validators named as
//! the epochs change (§7) move in and out of reserved slots, strangers cannot pin
//! memory with large frames before or after the handshake, one address
//! holds only a few slots, and an honest peer on another release or a slow
//! link is disconnected without a ban. The same attacks on a real `timed`
//! of a devnet, with its CPU, RSS and honest finality measured, are in
//! `attack_suite.rs`.

mod net_support;

use net_support::*;
use std::collections::BTreeSet;
use timecoin::net::{NetCommand, NetConfig, NetHandle, Refusal, PROTOCOL_VERSION};

/// A server that lets one host take every inbound slot: these tests are
/// about what happens when the slots or the memory are full, not about
/// the per-address caps (one test below is).
fn open_server_config(seed: u64, max_inbound: usize) -> NetConfig {
    let mut c = config(seed, &[]);
    c.admission.max_inbound = max_inbound;
    c.admission.max_inbound_per_ip = usize::MAX;
    c.admission.max_inbound_per_subnet = usize::MAX;
    c
}

/// A raw peer that completed its handshake with `server`.
fn handshaked(server: &NetHandle, label: &str) -> RawPeer {
    let mut peer = RawPeer::connect(server.local_addr(), label);
    let hello = peer.recv_hello();
    peer.complete_handshake(hello);
    peer
}

/// Established inbound peers that are not `except`.
fn strangers(server: &NetHandle, except: &[timecoin::consensus::messages::NodeId]) -> usize {
    server
        .peers()
        .iter()
        .filter(|p| p.inbound && p.node_id.is_some_and(|n| !except.contains(&n)))
        .count()
}

#[test]
fn two_hundred_sybils_fill_the_node_and_a_validator_still_gets_in_by_evicting_one() {
    let max_inbound = 48;
    let validator_key = key("validator");
    let mut server_config = open_server_config(71, max_inbound);
    server_config.validators = vec![validator_key.public()];
    let server = start("server", server_config);

    let sybils: Vec<RawPeer> = (0..200)
        .map(|i| handshaked(&server, &format!("sybil {i}")))
        .collect();
    eventually("the sybils hold every inbound slot", || {
        strangers(&server, &[]) == max_inbound
    });
    let before = server.metrics();
    assert!(
        before.inbound_evicted >= 200 - max_inbound as u64,
        "{before:?}"
    );
    assert_eq!(before.inbound_refused, 0, "{before:?}");

    let validator = start("validator", config(72, &[server.local_addr()]));
    wait_connected(&server, validator.node_id());
    wait_connected(&validator, server.node_id());
    let after = server.metrics();
    assert!(
        after.inbound_evicted > before.inbound_evicted,
        "{before:?} {after:?}"
    );
    assert_eq!(after.inbound_refused, 0, "{after:?}");
    eventually("one sybil made room for the validator", || {
        strangers(&server, &[validator.node_id()]) == max_inbound - 1
    });
    drop(sybils);
}

#[test]
fn peers_named_validators_as_the_epochs_change_move_in_and_out_of_reserved_slots() {
    let server = start("server", config(73, &[]));
    let _joiner = handshaked(&server, "joiner");
    let id = key("joiner").public();
    let slot = || {
        let peers = server.peers();
        let info = peers.iter().find(|p| p.node_id == Some(id))?;
        Some((info.validator, info.reserved))
    };
    eventually("the joiner to connect as a stranger", || {
        slot() == Some((false, false))
    });
    server.send(NetCommand::SetValidators([id].into())).unwrap();
    eventually("its connection to hold a validator slot", || {
        slot() == Some((true, true))
    });
    server
        .send(NetCommand::SetValidators(BTreeSet::new()))
        .unwrap();
    eventually(
        "a former validator to fall back to a stranger's slot",
        || slot() == Some((false, false)),
    );
}

#[test]
fn sixty_four_strangers_announcing_8_mib_frames_before_the_handshake_hold_a_few_bytes_each() {
    let server_config = open_server_config(81, 64);
    let cap = server_config.handshake_frame_bytes_max;
    let server = start("server", server_config);
    let mut attackers: Vec<RawPeer> = (0..64)
        .map(|i| RawPeer::connect(server.local_addr(), &format!("attacker {i}")))
        .collect();
    for a in &mut attackers {
        a.recv_hello(); // admitted
    }
    for a in &mut attackers {
        let mut start = (8u32 << 20).to_le_bytes().to_vec();
        start.extend_from_slice(&[0x55; 4096]);
        let _ = a.send_raw(&start); // the node may hang up mid-write
    }
    for a in &mut attackers {
        a.expect_closed();
    }
    let m = server.metrics();
    assert!(
        m.buffered_bytes_peak as usize <= 64 * cap,
        "peak {} over 64 × {cap}: {m:?}",
        m.buffered_bytes_peak
    );
    assert!(m.misbehaviour_disconnects >= 1, "{m:?}");
}

#[test]
fn sixty_four_peers_sending_8_mib_frames_after_the_handshake_share_one_buffer_budget() {
    let server_config = open_server_config(91, 64);
    let budget = server_config.buffer_budget_bytes;
    let server = start("server", server_config);
    let good = start("good", config(92, &[server.local_addr()]));
    wait_connected(&server, good.node_id());

    let mut attackers: Vec<RawPeer> = (0..63)
        .map(|i| handshaked(&server, &format!("attacker {i}")))
        .collect();
    let mut frame_start = (8u32 << 20).to_le_bytes().to_vec();
    frame_start.extend(vec![0x55; 1 << 20]);
    for a in &mut attackers {
        let _ = a.send_raw(&frame_start); // the node may hang up mid-write
    }
    let ids: Vec<_> = attackers.iter().map(|a| a.key.public()).collect();
    eventually(
        "every attacker still connected has been read in full",
        || {
            server
                .peers()
                .iter()
                .filter(|p| p.node_id.is_some_and(|n| ids.contains(&n)))
                .all(|p| p.buffered_bytes >= frame_start.len() - 4)
        },
    );
    let m = server.metrics();
    assert!(m.budget_disconnects >= 1, "{m:?}");
    let bound = buffered_bytes_bound(budget);
    assert!(
        (m.buffered_bytes_peak as usize) <= bound,
        "peak {} over {bound}: {m:?}",
        m.buffered_bytes_peak
    );
    // Over budget is not misbehaviour: nobody is banned for it.
    assert_eq!(m.misbehaviour_disconnects, 0, "{m:?}");
    assert_eq!(m.bans, 0, "{m:?}");

    // The honest peer, which held almost nothing, still talks.
    server
        .send(timecoin::net::NetCommand::SendTo(good.node_id(), query(3)))
        .unwrap();
    wait_message(&good, server.node_id(), &query(3));
}

#[test]
fn one_address_holds_at_most_its_cap_of_inbound_slots() {
    let mut server_config = config(101, &[]);
    server_config.admission.max_inbound_per_ip = 3;
    let server = start("server", server_config);
    let mut peers: Vec<RawPeer> = (0..3)
        .map(|i| RawPeer::connect(server.local_addr(), &format!("peer {i}")))
        .collect();
    for p in &mut peers {
        p.recv_hello();
    }
    for i in 3..5 {
        let mut refused = RawPeer::connect(server.local_addr(), &format!("peer {i}"));
        assert_eq!(refused.recv(), None);
    }
    eventually("both refusals are counted", || {
        server.metrics().inbound_refused_of(Refusal::PerIp) == 2
    });
    // A slot freed is a slot to take.
    drop(peers.pop());
    eventually("the freed slot is taken", || {
        let mut again = RawPeer::connect(server.local_addr(), "again");
        matches!(again.recv(), Some(timecoin::net::Message::Hello(_)))
    });
}

#[test]
fn a_peer_speaking_another_protocol_version_is_disconnected_not_banned() {
    let server = start("server", config(111, &[]));
    let mut newer = RawPeer::connect(server.local_addr(), "newer release");
    newer.recv_hello();
    newer
        .send(&newer.hello(CHAIN, PROTOCOL_VERSION + 1))
        .unwrap();
    newer.expect_closed();
    let m = server.metrics();
    assert_eq!(m.handshake_drops, 1, "{m:?}");
    assert_eq!(m.misbehaviour_disconnects, 0, "{m:?}");
    assert_eq!(m.bans, 0, "{m:?}");
    // Upgraded, it reconnects from the same address and is accepted.
    let upgraded = handshaked(&server, "newer release");
    wait_connected(&server, upgraded.key.public());
}

#[test]
fn a_slow_handshake_is_disconnected_not_banned() {
    let mut server_config = config(121, &[]);
    server_config.handshake_timeout_ms = 200;
    let server = start("server", server_config);
    let mut slow = RawPeer::connect(server.local_addr(), "slow link");
    slow.recv_hello();
    slow.expect_closed(); // it never answered
    let m = server.metrics();
    assert_eq!(m.handshake_drops, 1, "{m:?}");
    assert_eq!(m.bans, 0, "{m:?}");
    handshaked(&server, "slow link");
}

#[test]
fn garbage_from_a_validators_host_before_the_handshake_bans_no_address() {
    let validator_key = key("validator");
    let mut server_config = config(131, &[]);
    server_config.validators = vec![validator_key.public()];
    let server = start("server", server_config);
    // The validator dials in (it is no configured peer of the server).
    let validator = start("validator", config(132, &[server.local_addr()]));
    wait_connected(&server, validator.node_id());

    garbage_from_a_protected_host_bans_nobody(&server);
    handshaked(&server, "late");
}
