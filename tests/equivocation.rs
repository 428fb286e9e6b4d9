//! Equivocation across real `timed` processes (issue 12, "Equivocation"):
//! a test peer holding validator 3's key endorses two different blocks of
//! one height and hands both votes to node 0 only. Every node must catch
//! it (node 0 stores the evidence and gossips it), `getevidence` must show
//! it on all 4, the evidence must verify offline against the genesis
//! validator set, and the honest nodes keep finalizing and certifying:
//! the three others hold 75 % of the weight. CI time: about 15 s.

mod devnet_support;
mod net_support;

use devnet_support::{funded_coins, pay, wait_for, Devnet};
use net_support::RawPeer;
use serde_json::{json, Value};
use timecoin::chain::{BlockVote, Equivocation, VoteContext};
use timecoin::finality::ValidatorSet;
use timecoin::genesis::devnet_validator_keys;
use timecoin::net::Message;
use timecoin::types::Hash;

/// The validator whose key signs both endorsements.
const OFFENDER: usize = 3;
/// Heights above the tip for the conflicting endorsements: not yet
/// endorsed by anyone, within the heights every node tracks.
const AHEAD: u64 = 2;

#[test]
fn two_endorsements_of_one_height_are_caught_everywhere_and_verify_offline() {
    let devnet = Devnet::start(4);
    devnet.wait_connected();
    let coins = funded_coins(&devnet, 1, 2);
    let (chain_id, genesis_hash) = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    let tip = devnet.nodes[0].call("getblockchaininfo", json!([]))["blocks"]
        .as_u64()
        .unwrap();
    let height = tip + AHEAD;
    let offender = devnet_validator_keys(OFFENDER).0;
    let epoch = devnet.spec.epoch_rules.epoch_of(height);
    let votes = [b"first block".as_slice(), b"second block"].map(|label| {
        BlockVote::sign(
            &offender,
            chain_id,
            genesis_hash,
            epoch,
            height,
            Hash::digest(label),
        )
    });

    let addr = ([127, 0, 0, 1], devnet.nodes[0].p2p_port).into();
    let mut peer = RawPeer::connect(addr, "equivocation relay");
    let hello = peer.recv_hello();
    peer.complete_handshake_on(chain_id, genesis_hash, hello);
    for vote in &votes {
        peer.send(&Message::BlockVote(Box::new(vote.clone())))
            .unwrap();
    }

    let set = ValidatorSet::new(devnet.spec.validators.clone()).unwrap();
    let context = VoteContext {
        chain_id,
        genesis_hash,
        epoch,
        validators: &set,
    };
    for node in &devnet.nodes {
        let listed = wait_for(
            &format!("node {} to store the evidence", node.index),
            || {
                let evidence = node.call("getevidence", json!([]));
                (evidence.as_array().unwrap().len() == 1).then_some(evidence)
            },
        );
        let entry = &listed[0];
        assert_eq!(entry["voter"], json!(hex::encode(offender.public().0)));
        assert_eq!(entry["height"], json!(height));
        assert_eq!(entry["valid"], json!(true), "{entry}");
        // Offline: only the evidence bytes and the genesis validator set.
        let bytes = hex::decode(entry["hex"].as_str().unwrap()).unwrap();
        let evidence = Equivocation::decode(&bytes).unwrap();
        evidence.verify(&context).unwrap();
        let mut signed = [evidence.first.hash, evidence.second.hash];
        signed.sort();
        let mut sent = [votes[0].hash, votes[1].hash];
        sent.sort();
        assert_eq!(signed, sent);
    }
    assert_eq!(
        devnet.nodes[0]
            .call("getpeerinfo", json!([]))
            .as_array()
            .unwrap()
            .len(),
        4,
        "relaying evidence costs the relay nothing"
    );

    // Honest nodes keep finalizing and certify past the equivocated height.
    let tx = pay(&devnet.spec, coins[0], "after the equivocation");
    let txid = devnet.nodes[1].submit(&tx).unwrap();
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
        wait_for(
            &format!("node {} to certify past height {height}", node.index),
            || final_at(node, height + 1).then_some(()),
        );
    }
}

/// Whether `node`'s block at `height` is final: certified itself, or an
/// ancestor of a certified block. Not "certified" alone: when two rival
/// blocks split a height's endorsements (a loaded CI host), that height is
/// never certified directly, and a later certified block finalizes it.
fn final_at(node: &devnet_support::Validator, height: u64) -> bool {
    let Ok(hash) = node.client().call("getblockhash", json!([height])) else {
        return false;
    };
    let block: Value = node.call("getblock", json!([hash, 1]));
    block["final"] == json!(true)
}
