//! The masternode registry across real `timed` processes (DESIGN §7), on a
//! 4-validator devnet with 5-block epochs (1 s slots), driven the way an
//! operator would: `time-cli masternode register` locks Bronze collateral
//! from the demo wallet; the registration finalizes like any tx, its block
//! becomes final, and every node's registry admits the masternode into the
//! set of the epoch after next (`getmasternodes`), with `getmasternode` and
//! `getepochinfo` agreeing; registering the same identity again is refused
//! with a typed error; `time-cli masternode deregister` spends the
//! collateral, and the set of the epoch after next no longer holds it; the
//! coins that spend returned are refused (typed) until its unbonding ends,
//! then move;
//! `verifychain` replays the registry and checks every stored set, and
//! fails on a set the final blocks did not decide. CI time: about 30 s.
//!
//! The engines follow the epochs: the joiner, running from the start with
//! its `--masternode-key`, votes once its epoch begins, and its votes are in
//! the proofs nodes assemble; the deregistration, finalized in the joiner's
//! epoch, carries votes of that epoch, weighed against its committee, and
//! `time-cli proof` checks it offline against that committee. Block
//! production by epoch is `production.rs`'s; certification stays with the
//! genesis set.

use crate::devnet_support::{self, member_ids, wait_for, Devnet};
use crate::{cli, cli_final, one_second_slots, start_masternode};
use serde_json::json;
use std::path::Path;
use timecoin::finality::ValidatorSet;
use timecoin::rpc::archive::{replay_params, verify_store, RegistryFault};
use timecoin::time::{Clock, SystemClock};
use timecoin::types::{encoding, Hash, Tier};

const EPOCH_BLOCKS: u64 = 5;

#[test]
fn a_registration_joins_the_set_two_epochs_on_and_a_collateral_spend_leaves_it() {
    let mut devnet = Devnet::start_with_epochs(4, EPOCH_BLOCKS, |text| {
        one_second_slots(text).replacen("unbonding_epochs = 3", "unbonding_epochs = 2", 1)
    });
    let spec = devnet.spec.clone();
    let files = tempfile::tempdir().unwrap();
    let wallet = files.path().join("wallet.json");
    // The joiner runs from the start: a non-voting node until its epoch.
    let (joiner, key_file, identity) =
        start_masternode(&mut devnet, files.path(), "masternodes test joiner");
    let node0 = &devnet.nodes[0];
    let key_arg = key_file.to_str().unwrap();
    let id = hex::encode(identity.public().0);
    cli(node0.datadir(), &wallet, &["devnet-wallet"]).unwrap();
    let register = [
        "masternode",
        "register",
        "--tier",
        "bronze",
        "--identity-key",
        key_arg,
        "--listen",
        "127.0.0.1:24999",
    ];
    let txid = cli_final(node0, &wallet, &register);

    // Every node's registry admits it once its block is final.
    let mut active_from = 0;
    for node in &devnet.nodes {
        let member = wait_for(&format!("node{} to register {id}", node.index), || {
            node.client().call("getmasternode", json!([id])).ok()
        });
        assert_eq!(member["status"], json!("registered"), "{member}");
        assert_eq!(member["tier"], json!("bronze"), "{member}");
        assert_eq!(member["weight"], json!(Tier::Bronze.weight()), "{member}");
        assert_eq!(member["collateral"], json!(format!("{txid}:0")), "{member}");
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
        assert!(member_ids(&set).contains(&id), "node{}: {set}", node.index);
        assert_eq!(set["total_weight"], json!(4 * 10 + 10), "{set}");
        let before = node.call("getmasternodes", json!([active_from - 1]));
        assert!(
            !member_ids(&before).contains(&id),
            "node{}: {before}",
            node.index
        );
    }
    // The gauges show the latest decided set (published after the step).
    let gauge = |name: &str| {
        let body = node0.client().get("/metrics").ok()?.body;
        String::from_utf8(body)
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse::<u64>().ok())
    };
    wait_for("the set gauges", || {
        let epoch = gauge("timecoin_masternode_set_epoch")?;
        let members = gauge("timecoin_masternode_set_members")?;
        (epoch >= active_from && members >= 4).then_some(())
    });
    let info = node0.call("getepochinfo", json!([]));
    assert_eq!(info["epoch_blocks"], json!(EPOCH_BLOCKS), "{info}");
    assert!(info["latest_decided"]["epoch"].as_u64().unwrap() >= active_from);

    // Wallets see the collateral as such, and `send` leaves it alone.
    let owner = devnet_support::wallet_address().to_text(spec.config.network);
    let unspent = node0.call("listunspent", json!([0, 9_999_999, [owner]]));
    let flagged: Vec<String> = unspent
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["masternode_collateral"] == json!(true))
        .map(|o| format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]))
        .collect();
    assert_eq!(flagged, [format!("{txid}:0")], "{unspent}");
    let all_but_collateral = cli(node0.datadir(), &wallet, &["send", &owner, "999000"])
        .expect_err("only the collateral could cover it");
    assert!(
        all_but_collateral.contains("hold 998999.999 TIME"),
        "{all_but_collateral}"
    );

    // The same identity again: refused, typed.
    let refused = cli(node0.datadir(), &wallet, &register).expect_err("a second registration");
    assert!(refused.contains("already registered"), "{refused}");

    // The engines follow the final chain's epochs into the joiner's (a set
    // the registry decided, its committee drawn with the deciding block).
    for node in &devnet.nodes {
        let to = format!("node{} to vote in epoch {active_from}", node.index);
        wait_for(&to, || {
            let info = node.call("getconsensusinfo", json!([]));
            (info["epoch"].as_u64()? >= active_from).then_some(())
        });
    }

    // The joiner votes: its engine is seated, and its window votes count in
    // the proofs nodes assemble (each proof needs any 4 of the 5 voters).
    let paid: Vec<Hash> = (0..6)
        .map(|_| cli_final(node0, &wallet, &["send", &owner, "1"]))
        .collect();
    let info = devnet.nodes[joiner].call("getconsensusinfo", json!([]));
    assert_eq!(info["is_validator"], json!(true), "{info}");
    assert!(info["finality_votes_signed"].as_u64() > Some(0), "{info}");
    let counted = devnet.nodes.iter().any(|node| {
        node.wait_finalized(&paid);
        paid.iter().any(|txid| {
            let proof = node.call("getfinalityproof", json!([txid.to_string()]));
            proof["voters"].as_array().unwrap().contains(&json!(id))
        })
    });
    assert!(counted, "the joiner's votes are in no proof of {paid:?}");

    // Deregistering spends the collateral.
    let deregister = ["masternode", "deregister", "--identity-key", key_arg];
    let deregistered = cli_final(node0, &wallet, &deregister);
    // Its proof's votes name the epoch they were signed in, and it checks
    // offline against that epoch's committee (the joiner's set).
    let proof = node0.call("getfinalityproof", json!([deregistered.to_string()]));
    let epoch = proof["epoch"].as_u64().unwrap();
    assert!(epoch >= active_from, "{proof}");
    assert_eq!(proof["total_weight"], json!(4 * 10 + 10), "{proof}");
    let chain_file = devnet.chain_file.to_str().unwrap();
    let proof_args = ["proof", &deregistered.to_string(), "--config", chain_file];
    let checked = cli(node0.datadir(), &wallet, &proof_args).unwrap();
    assert!(
        checked.starts_with("valid:") && checked.contains(&format!("of epoch {epoch} ")),
        "{checked}"
    );
    for node in &devnet.nodes {
        let member = wait_for(&format!("node{} to deregister {id}", node.index), || {
            let member = node.call("getmasternode", json!([id]));
            (member["status"] == json!("deregistered")).then_some(member)
        });
        let leaves_at = member["leaves_at_epoch"].as_u64().unwrap();
        assert!(leaves_at > active_from, "{member}");
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
        assert!(!member_ids(&set).contains(&id), "node{}: {set}", node.index);
    }
    let status = cli(
        node0.datadir(),
        &wallet,
        &["masternode", "status", "--identity-key", key_arg],
    )
    .unwrap();
    assert!(status.contains("\"deregistered\""), "{status}");
    // The coins the deregistration returned stay bound until the unbonding
    // ends: refused with a typed error, not spendable in `gettxout`, and
    // not offered by `listunspent` (so `send` leaves them alone).
    let unbonded_at = node0.call("getmasternode", json!([id]))["unbonded_at_epoch"]
        .as_u64()
        .unwrap();
    let returned = node0.call("gettxout", json!([deregistered.to_string(), 0]));
    assert_eq!(returned["spendable"], json!(false), "{returned}");
    let value = timecoin::types::Amount(returned["value_units"].as_u64().unwrap());
    let returned_coin = (
        timecoin::types::OutPoint {
            txid: deregistered,
            vout: 0,
        },
        value,
    );
    let early = devnet_support::pay(&spec, returned_coin, "after unbonding");
    let refused = node0
        .submit(&early)
        .expect_err("spent before the unbonding ends");
    assert!(
        refused
            .message
            .contains(&format!("unbonding ends (epoch {unbonded_at})")),
        "{refused:?}"
    );
    let listed = node0.call("listunspent", json!([0, 9_999_999, [owner]]));
    assert!(
        !listed.to_string().contains(&deregistered.to_string()),
        "{listed}"
    );

    // A new node syncs the whole history from the genesis, through every
    // epoch change so far: each block's proofs against their epoch's
    // committee, drawn from the sets its own registry decides on the way.
    let tip = wait_for("3 epoch changes", || {
        let tip = node0.call("getblockchaininfo", json!([]))["blocks"].as_u64()?;
        (tip >= 4 * EPOCH_BLOCKS).then_some(tip)
    });
    let fresh = devnet.add_node(0);
    wait_for("the new node to sync the history", || {
        let info = devnet.nodes[fresh]
            .client()
            .call("getblockchaininfo", json!([]));
        (info.ok()?["blocks"].as_u64()? >= tip).then_some(())
    });
    wait_for("the new node to enter the chain's epoch", || {
        let info = devnet.nodes[fresh]
            .client()
            .call("getconsensusinfo", json!([]));
        (info.ok()?["epoch"].as_u64()? >= tip / EPOCH_BLOCKS).then_some(())
    });

    // Once the chain reaches the unbonding epoch, the same spend finalizes.
    let node0 = &devnet.nodes[0];
    let late = wait_for("the unbonding to end", || match node0.submit(&early) {
        Ok(txid) => Some(txid),
        Err(e) if e.message.contains("unbonding ends") => None,
        Err(e) => panic!("spend after unbonding refused: {e:?}"),
    });
    assert_eq!(late, early.txid());
    node0.wait_finalized(&[late]);
    let tip = node0.call("getblockchaininfo", json!([]))["blocks"]
        .as_u64()
        .unwrap();
    assert!(tip >= unbonded_at * EPOCH_BLOCKS, "tip {tip}");

    // verifychain replays the registry from the genesis on every node.
    for node in &devnet.nodes {
        let report = node.call("verifychain", json!([]));
        assert_eq!(report["valid"], json!(true), "node{}: {report}", node.index);
        assert!(report["epochs"].as_u64().unwrap() >= 2, "{report}");
    }
    // A stored set the final blocks did not decide fails it.
    devnet.stop(3);
    let stored = devnet.store(3);
    let mut forged = stored
        .read()
        .unwrap()
        .epoch_snapshot(active_from)
        .unwrap()
        .unwrap();
    drop(stored);
    forged
        .members
        .retain(|m| hex::encode(m.validator.id.0) != id);
    overwrite_epoch(
        devnet.nodes[3].datadir(),
        active_from,
        &encoding::encode(&forged),
    );
    let store = devnet.store(3);
    let set = ValidatorSet::new(spec.validators.clone()).unwrap();
    let params = replay_params(&spec, SystemClock.wall()).unwrap();
    let found = verify_store(&store, &spec, set, &params).unwrap();
    assert!(
        matches!(found.registry, Err(RegistryFault::SetMismatch { epoch }) if epoch == active_from),
        "{:?}",
        found.registry
    );
}

/// Overwrites the stored set of `epoch` straight in the `epochs` table, as
/// disk damage or a hostile datadir would (the node is stopped).
fn overwrite_epoch(datadir: &Path, epoch: u64, bytes: &[u8]) {
    let env = lmdb::Environment::new()
        .set_max_dbs(32)
        .open(&datadir.join("chain"))
        .unwrap();
    let epochs = env.open_db(Some("epochs")).unwrap();
    let mut txn = env.begin_rw_txn().unwrap();
    txn.put(
        epochs,
        &epoch.to_be_bytes(),
        &bytes,
        lmdb::WriteFlags::empty(),
    )
    .unwrap();
    lmdb::Transaction::commit(txn).unwrap();
}
