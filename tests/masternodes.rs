//! The masternode registry across real `timed` processes (DESIGN §7), on a
//! 4-validator devnet with 5-block epochs (2 s slots): a registration tx
//! finalizes like any tx, its block becomes final, and every node's
//! registry admits the masternode into the set of the epoch after next
//! (`getmasternodes`), with `getmasternode` and `getepochinfo` agreeing;
//! a second registration of the same identity is refused with a typed
//! error; spending the collateral deregisters it, and the set of the epoch
//! after next no longer holds it. CI time: about 40 s.
//!
//! The consensus still weighs votes by the genesis set: this test checks
//! what the final chain decides, not yet who votes.

mod devnet_support;

use devnet_support::{transfer, wait_for, wallet_address, Devnet};
use serde_json::{json, Value};
use timecoin::crypto::Keypair;
use timecoin::genesis::{devnet_wallet_key, validator_vrf_key};
use timecoin::types::{Amount, OutPoint, Tier, Tx, TxOut};
use timecoin::wallet::{build_registration, MasternodeInfo, Spendable};

const EPOCH_BLOCKS: u64 = 5;

/// A Bronze registration of `identity`, funded by the demo wallet's `coin`,
/// its collateral owned by the demo wallet.
fn register(devnet: &Devnet, coin: (OutPoint, Amount), identity: &Keypair) -> Tx {
    let spec = &devnet.spec;
    let wallet = devnet_wallet_key();
    let info = MasternodeInfo {
        tier: Tier::Bronze,
        identity,
        vrf_key: validator_vrf_key(identity).public(),
        listen_addr: "127.0.0.1:24999".parse().unwrap(),
        payout: wallet_address(),
    };
    build_registration(
        &[Spendable {
            outpoint: coin.0,
            value: coin.1,
            key: &wallet,
        }],
        &info,
        wallet_address(),
        spec.config.ledger.min_fee,
        wallet_address(),
        spec.chain_id(),
    )
    .unwrap()
}

fn ids(set: &Value) -> Vec<String> {
    set["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_registration_joins_the_set_two_epochs_on_and_a_collateral_spend_leaves_it() {
    let devnet = Devnet::start_with(4, |text| {
        text.replacen(
            "epoch_blocks = 10",
            &format!("epoch_blocks = {EPOCH_BLOCKS}"),
            1,
        )
    });
    let spec = &devnet.spec;
    let genesis_coin = spec
        .genesis_outputs()
        .into_iter()
        .find(|(_, o)| o.address == wallet_address())
        .map(|(o, out)| (o, out.value))
        .unwrap();
    let fund = |time: u64| TxOut {
        value: Amount::from_time(time).unwrap(),
        address: wallet_address(),
    };
    // Two coins: one for the registration, one for the refused repeat.
    let split = transfer(spec, genesis_coin, &[fund(2_000), fund(2_000)]);
    let node0 = &devnet.nodes[0];
    node0.wait_finalized(&[node0.submit(&split).unwrap()]);

    let identity = Keypair::from_seed_label("masternodes test joiner");
    let id = hex::encode(identity.public().0);
    let registration = register(&devnet, (split.outpoint(0), fund(2_000).value), &identity);
    node0.wait_finalized(&[node0.submit(&registration).unwrap()]);

    // Every node's registry admits it once its block is final.
    let mut active_from = 0;
    for node in &devnet.nodes {
        let member = wait_for(&format!("node{} to register {id}", node.index), || {
            node.client().call("getmasternode", json!([id])).ok()
        });
        assert_eq!(member["status"], json!("registered"), "{member}");
        assert_eq!(member["tier"], json!("bronze"), "{member}");
        assert_eq!(member["weight"], json!(Tier::Bronze.weight()), "{member}");
        assert_eq!(
            member["collateral"],
            json!(registration.outpoint(0).to_string())
        );
        let registered_at = member["registered_at"].as_u64().unwrap();
        let expected = registered_at / EPOCH_BLOCKS + 2;
        assert_eq!(member["active_from_epoch"], json!(expected), "{member}");
        active_from = expected;
    }

    // The set of that epoch holds it on every node, the one before not.
    for node in &devnet.nodes {
        let set = wait_for(
            &format!("node{} to decide epoch {active_from}", node.index),
            || {
                node.client()
                    .call("getmasternodes", json!([active_from]))
                    .ok()
            },
        );
        assert!(ids(&set).contains(&id), "node{}: {set}", node.index);
        assert_eq!(set["total_weight"], json!(4 * 10 + 10), "{set}");
        let before = node.call("getmasternodes", json!([active_from - 1]));
        assert!(!ids(&before).contains(&id), "node{}: {before}", node.index);
    }
    let info = node0.call("getepochinfo", json!([]));
    assert_eq!(info["epoch_blocks"], json!(EPOCH_BLOCKS), "{info}");
    assert!(info["latest_decided"]["epoch"].as_u64().unwrap() >= active_from);

    // The same identity again, from another coin: refused, typed.
    let repeat = register(&devnet, (split.outpoint(1), fund(2_000).value), &identity);
    let refused = node0.submit(&repeat).expect_err("a second registration");
    assert!(
        refused.message.contains("already registered"),
        "{}",
        refused.message
    );

    // Spending the collateral deregisters it.
    let collateral = (registration.outpoint(0), registration.outputs[0].value);
    let spend = transfer(spec, collateral, &[fund(500)]);
    node0.wait_finalized(&[node0.submit(&spend).unwrap()]);
    for node in &devnet.nodes {
        let member = wait_for(&format!("node{} to deregister {id}", node.index), || {
            let member = node.call("getmasternode", json!([id]));
            (member["status"] == json!("deregistered")).then_some(member)
        });
        let leaves_at = member["leaves_at_epoch"].as_u64().unwrap();
        assert!(leaves_at > active_from.saturating_sub(1), "{member}");
        assert_eq!(
            member["unbonded_at_epoch"].as_u64(),
            Some(leaves_at + spec.config.masternodes.unbonding_epochs),
            "{member}"
        );
        let set = wait_for(
            &format!("node{} to decide epoch {leaves_at}", node.index),
            || {
                node.client()
                    .call("getmasternodes", json!([leaves_at]))
                    .ok()
            },
        );
        assert!(!ids(&set).contains(&id), "node{}: {set}", node.index);
    }
}
