//! A stranger attacks one node of a real 4-validator devnet over a real
//! socket (DESIGN §8) with forged window votes: the engine reports them,
//! the net layer scores them and cuts the stranger off, while honest
//! transfers keep finalizing. (Replays of old valid proofs and votes, with
//! finality p50 with and without the attack, are a row of `attack_suite.rs`.)

mod devnet_support;
mod net_support;

use devnet_support::{funded_coins, pay, wait_for, Devnet};
use net_support::RawPeer;
use serde_json::json;
use std::sync::Arc;
use timecoin::consensus::ConsensusMessage;
use timecoin::finality::{VoteScope, WindowVote};
use timecoin::genesis::devnet_validator_keys;
use timecoin::net::Message;
use timecoin::types::Hash;

#[test]
fn a_stranger_forging_window_votes_is_cut_off_and_honest_txs_finalize() {
    let devnet = Devnet::start(4);
    devnet.wait_connected();
    let coins = funded_coins(&devnet, 1, 2);
    let (chain_id, genesis_hash) = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    let first = pay(&devnet.spec, coins[0], "before the attack");
    let txid = devnet.nodes[0].submit(&first).unwrap();
    devnet.nodes[0].wait_finalized(&[txid]);
    let addr = ([127, 0, 0, 1], devnet.nodes[0].p2p_port).into();
    let mut stranger = RawPeer::connect(addr, "consensus attacker");
    let hello = stranger.recv_hello();
    stranger.complete_handshake_on(chain_id, genesis_hash, hello);
    let scope = VoteScope {
        chain_id,
        genesis_hash,
        epoch: 0,
    };
    let voter = devnet_validator_keys(1).0;
    for seq in 0..4u64 {
        let txids = vec![Hash::digest(&seq.to_le_bytes())];
        let mut forged = WindowVote::sign(&voter, scope, u64::MAX - seq, txids.clone());
        forged.vote.sig = WindowVote::sign(&voter, scope, seq, txids).vote.sig;
        let msg = Message::Consensus(ConsensusMessage::WindowVote(Arc::new(forged)));
        if stranger.send(&msg).is_err() {
            break;
        }
    }
    stranger.expect_closed();
    wait_for(
        "the stranger to be counted as cut off for misbehaviour",
        || {
            let info = devnet.nodes[0].call("getnetworkinfo", json!([]));
            (info["misbehaviour_disconnects"].as_u64() >= Some(1)).then_some(())
        },
    );

    let log = devnet.nodes[0].log();
    assert!(
        log.contains("misbehaved: window vote signature does not verify"),
        "{log}"
    );

    let second = pay(&devnet.spec, coins[1], "after the attack");
    let txid = devnet.nodes[0].submit(&second).unwrap();
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
    }
}
