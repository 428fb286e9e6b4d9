//! Window-vote equivocation evidence across real `timed` processes (issue
//! 12, "Equivocation evidence"): evidence that validator 3 signed two
//! window votes covering two txs that spend one coin is handed to node 0
//! only. Node 0 verifies it, stores it and gossips it: `getevidence` on all
//! 4 nodes lists it as `kind: window`, it verifies offline against the
//! genesis set, and it survives a restart. A stranger relaying forged
//! evidence is cut off; honest transfers keep finalizing. CI time: ~10 s.

mod devnet_support;
mod net_support;

use devnet_support::{funded_coins, pay, wait_for, Devnet, Validator};
use net_support::RawPeer;
use serde_json::{json, Value};
use std::net::SocketAddr;
use timecoin::consensus::ConsensusMessage;
use timecoin::finality::{SignedSpend, ValidatorSet, VoteScope, WindowEquivocation, WindowTree};
use timecoin::genesis::devnet_validator_keys;
use timecoin::net::Message;
use timecoin::types::Tx;

/// The validator whose key signs both windows.
const OFFENDER: usize = 3;
/// Window numbers far above any the offender really signs, so the forged
/// pair never collides with its honest windows.
const SEQ: u64 = 1 << 40;

#[test]
fn window_equivocation_is_stored_everywhere_verifies_offline_and_survives_restart() {
    let mut devnet = Devnet::start(4);
    devnet.wait_connected();
    let coins = funded_coins(&devnet, 1, 2);
    let (chain_id, genesis_hash) = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    let scope = VoteScope {
        chain_id,
        genesis_hash,
        epoch: 0,
    };
    let offender = devnet_validator_keys(OFFENDER).0;
    let txs = [
        pay(&devnet.spec, coins[0], "alice"),
        pay(&devnet.spec, coins[0], "bob"),
    ];
    let [first, second] = [0, 1].map(|i| {
        let window = WindowTree::sign(&offender, scope, SEQ + i as u64, vec![txs[i].txid()]);
        SignedSpend::from_window(&window, txs[i].clone()).unwrap()
    });
    let evidence = WindowEquivocation { first, second };
    let set = ValidatorSet::new(devnet.spec.validators.clone()).unwrap();
    let committee = devnet.spec.finality_committee(&set);
    let outpoint = coins[0].0;
    assert_eq!(
        evidence.verify(chain_id, genesis_hash, |e| committee.for_epoch(e)),
        Ok((offender.public(), outpoint))
    );

    // Forged evidence (the votes' roots do not cover these txs) is the
    // relay's fault: two pieces and it is cut off.
    let node0: SocketAddr = ([127, 0, 0, 1], devnet.nodes[0].p2p_port).into();
    let mut forger = RawPeer::connect(node0, "forged evidence relay");
    let hello = forger.recv_hello();
    forger.complete_handshake_on(chain_id, genesis_hash, hello);
    for vout in [7, 8] {
        let mut forged = evidence.clone();
        for side in [&mut forged.first, &mut forged.second] {
            side.tx.inputs[0].prev.vout = vout;
        }
        if forger.send(&evidence_message(forged)).is_err() {
            break;
        }
    }
    forger.expect_closed();

    let mut relay = RawPeer::connect(node0, "evidence relay");
    let hello = relay.recv_hello();
    relay.complete_handshake_on(chain_id, genesis_hash, hello);
    relay.send(&evidence_message(evidence.clone())).unwrap();

    for node in &devnet.nodes {
        check_listed(node, &evidence, &committee, &txs);
    }
    assert!(devnet.nodes[0]
        .log()
        .contains("misbehaved: invalid window evidence"));

    // Stored, not only remembered: a restarted node still lists it.
    devnet.stop(2);
    devnet.launch(2);
    check_listed(&devnet.nodes[2], &evidence, &committee, &txs);

    // The three others hold 75 % of the weight: finality goes on.
    let tx = pay(&devnet.spec, coins[1], "after the evidence");
    let txid = devnet.nodes[1].submit(&tx).unwrap();
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
    }
}

fn evidence_message(evidence: WindowEquivocation) -> Message {
    Message::Consensus(ConsensusMessage::WindowEvidence(Box::new(evidence)))
}

/// Waits for `node` to list exactly `evidence` and checks what it says.
fn check_listed(
    node: &Validator,
    evidence: &WindowEquivocation,
    committee: &ValidatorSet,
    txs: &[Tx; 2],
) {
    let listed = wait_for(
        &format!("node {} to store the window evidence", node.index),
        || {
            let listed = node.call("getevidence", json!([]));
            (listed.as_array().map(Vec::len) == Some(1)).then_some(listed)
        },
    );
    let entry: &Value = &listed[0];
    assert_eq!(entry["kind"], json!("window"), "{entry}");
    assert_eq!(
        entry["voter"],
        json!(hex::encode(evidence.first.vote.voter.0))
    );
    assert_eq!(entry["valid"], json!(true), "{entry}");
    let mut txids: Vec<String> = txs.iter().map(|t| t.txid().to_string()).collect();
    let mut shown: Vec<String> = serde_json::from_value(entry["txids"].clone()).unwrap();
    txids.sort();
    shown.sort();
    assert_eq!(shown, txids);
    // Offline: the bytes and the committee of the genesis set only.
    let bytes = hex::decode(entry["hex"].as_str().unwrap()).unwrap();
    let decoded = WindowEquivocation::decode(&bytes).unwrap();
    let (chain_id, genesis_hash) = (decoded.first.vote.chain_id, decoded.first.vote.genesis_hash);
    assert!(decoded
        .verify(chain_id, genesis_hash, |e| committee.for_epoch(e))
        .is_ok());
    assert_eq!(decoded.key(), evidence.key());
}
