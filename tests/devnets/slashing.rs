//! Slashing across real `timed` processes (DESIGN §7): on a 4-validator
//! devnet with 5-block epochs (1 s slots), a Bronze masternode registered
//! with `time-cli masternode register` (and running as its own node) is
//! seated in its epoch's committee; then a peer holding its identity key
//! sends node 0 two conflicting transactions and the masternode's window
//! votes for both. Node 0 catches the equivocation, stores and gossips the
//! evidence, a block carries it, and once that block is final every node's
//! registry says `slashed`, the set of the effective epoch (the one before
//! still holds it) leaves it out, its collateral is burned (refused,
//! counted in `gettxoutsetinfo`), `verifychain` replays it, and the
//! genesis validators keep finalizing. CI time: about 60 s.

use crate::devnet_support::{funded_coins, member_ids, pay, wait_for, Devnet, Validator};
use crate::net_support::RawPeer;
use crate::{cli_ok, one_second_slots, start_masternode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use timecoin::consensus::ConsensusMessage;
use timecoin::finality::{VoteScope, WindowVote};
use timecoin::net::frame::encode_frame;
use timecoin::net::Message;
use timecoin::types::{Hash, OutPoint, Tier};

const EPOCH_BLOCKS: u64 = 5;
/// Window numbers far above (another session than) the masternode's own.
const SEQ: u64 = 1 << 40;

/// The identities in `node`'s set of `epoch`, once decided.
fn set_of(node: &Validator, epoch: u64) -> Vec<String> {
    let set = wait_for(
        &format!("node{} to decide epoch {epoch}", node.index),
        || node.client().call("getmasternodes", json!([epoch])).ok(),
    );
    member_ids(&set)
}

#[test]
fn an_equivocating_masternode_is_slashed_on_every_node_and_leaves_its_effective_epoch() {
    let mut devnet = Devnet::start_with_epochs(4, EPOCH_BLOCKS, one_second_slots);
    let spec = devnet.spec.clone();
    let (chain_id, genesis_hash) = (spec.chain_id(), spec.genesis_hash());
    // Coins for the double spend and for a payment after it, before the
    // wallet registers (both spend the demo wallet's genesis coin).
    let coins = funded_coins(&devnet, 1, 2);

    let files = tempfile::tempdir().unwrap();
    let wallet = files.path().join("wallet.json");
    let (_, key_file, identity) =
        start_masternode(&mut devnet, files.path(), "slashing test masternode");
    let id = hex::encode(identity.public().0);
    let node0 = &devnet.nodes[0];
    cli_ok(node0.datadir(), &wallet, &["devnet-wallet"]);
    let txid: Hash = cli_ok(
        node0.datadir(),
        &wallet,
        &[
            "masternode",
            "register",
            "--tier",
            "bronze",
            "--identity-key",
            key_file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:24998",
        ],
    )
    .trim()
    .parse()
    .unwrap();
    node0.wait_finalized(&[txid]);

    // Seated: every node's engine is in its epoch, where it votes.
    let member = wait_for("node0 to register the masternode", || {
        node0.client().call("getmasternode", json!([id])).ok()
    });
    let active_from = member["active_from_epoch"].as_u64().unwrap();
    for node in &devnet.nodes {
        wait_for(
            &format!("node{} to enter epoch {active_from}", node.index),
            || {
                let info = node.call("getconsensusinfo", json!([]));
                (info["epoch"].as_u64()? >= active_from).then_some(())
            },
        );
        assert!(
            set_of(node, active_from).contains(&id),
            "node{}",
            node.index
        );
    }

    // The equivocation: two txs spending one coin, and the masternode's
    // window votes for each, in one burst so node 0 holds both txs when
    // the votes arrive.
    let epoch = node0.call("getconsensusinfo", json!([]))["epoch"]
        .as_u64()
        .unwrap();
    let scope = VoteScope {
        chain_id,
        genesis_hash,
        epoch,
    };
    let txs = [pay(&spec, coins[0], "alice"), pay(&spec, coins[0], "bob")];
    let mut burst = Vec::new();
    for tx in &txs {
        burst.push(Message::Consensus(ConsensusMessage::Tx(tx.clone())));
    }
    for (i, tx) in txs.iter().enumerate() {
        let window = WindowVote::sign(&identity, scope, SEQ + i as u64, vec![tx.txid()]);
        burst.push(Message::Consensus(ConsensusMessage::WindowVote(Arc::new(
            window,
        ))));
    }
    let bytes: Vec<u8> = burst
        .iter()
        .flat_map(|msg| encode_frame(&msg.encode(), 1 << 24).unwrap())
        .collect();
    let addr: SocketAddr = ([127, 0, 0, 1], node0.p2p_port).into();
    let mut peer = RawPeer::connect(addr, "holder of the masternode's key");
    let hello = peer.recv_hello();
    peer.complete_handshake_on(chain_id, genesis_hash, hello);
    peer.send_raw(&bytes).unwrap();

    // Caught by node 0, gossiped to all.
    for node in &devnet.nodes {
        wait_for(&format!("node{} to hold the evidence", node.index), || {
            let listed = node.call("getevidence", json!([]));
            listed
                .as_array()?
                .iter()
                .any(|e| e["kind"] == json!("window") && e["voter"] == json!(id))
                .then_some(())
        });
    }

    // A final block carries it: every node's registry slashes it, from
    // the same height, and the set of the effective epoch leaves it out.
    let mut slashed_at = None;
    for node in &devnet.nodes {
        let member = wait_for(
            &format!("node{} to slash the masternode", node.index),
            || {
                let member = node.call("getmasternode", json!([id]));
                (member["status"] == json!("slashed")).then_some(member)
            },
        );
        let height = member["status_height"].as_u64().unwrap();
        assert_eq!(*slashed_at.get_or_insert(height), height, "{member}");
        assert_eq!(member["unbonded_at_epoch"], Value::Null, "{member}");
        let leaves_at = member["leaves_at_epoch"].as_u64().unwrap();
        assert_eq!(leaves_at, height / EPOCH_BLOCKS + 2, "{member}");
        assert!(!set_of(node, leaves_at).contains(&id), "node{}", node.index);
        // Live to the last: the epoch before still seats it.
        if leaves_at > active_from {
            assert!(
                set_of(node, leaves_at - 1).contains(&id),
                "node{}",
                node.index
            );
        }
        let block = node.call(
            "getblock",
            json!([node.call("getblockhash", json!([height]))]),
        );
        assert_eq!(block["slashed"], json!([id]), "node{}: {block}", node.index);
    }
    // Its collateral burned: on every node not spendable, counted in
    // `gettxoutsetinfo`'s `burned_amount`, and a spend of it refused.
    let collateral = Tier::Bronze.collateral();
    for node in &devnet.nodes {
        let out = node.call("gettxout", json!([txid.to_string(), 0]));
        assert_eq!(out["spendable"], json!(false), "node{}: {out}", node.index);
        let info = node.call("gettxoutsetinfo", json!([]));
        assert_eq!(
            info["burned_amount_units"],
            json!(collateral.units()),
            "node{}: {info}",
            node.index
        );
    }
    let burn = pay(
        &spec,
        (OutPoint { txid, vout: 0 }, collateral),
        "the burned",
    );
    let refused = devnet.nodes[2]
        .submit(&burn)
        .expect_err("a slashed collateral moves");
    assert!(refused.message.contains("burned"), "{refused:?}");

    // The genesis validators keep finalizing, and blocks go on.
    let after = pay(&spec, coins[1], "after the slash");
    let txid = devnet.nodes[1].submit(&after).unwrap();
    let tip = slashed_at.unwrap_or(0) + 2 * EPOCH_BLOCKS;
    for node in &devnet.nodes {
        node.wait_finalized(&[txid]);
        wait_for(&format!("node{} to pass height {tip}", node.index), || {
            let info = node.call("getblockchaininfo", json!([]));
            (info["blocks"].as_u64()? >= tip).then_some(())
        });
    }
    // The replay judges the evidence as the nodes did.
    for node in &devnet.nodes {
        let report = node.call("verifychain", json!([]));
        assert_eq!(report["valid"], json!(true), "node{}: {report}", node.index);
    }
}
