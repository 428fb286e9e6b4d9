//! Liveness across real `timed` processes (DESIGN §7 "Liveness"): on a
//! 4-validator devnet (weight 40) with 4-block epochs and
//! `inactive_epochs = 1` (1 s slots), a Silver masternode (weight 100, more than a
//! third of 140) registers, is seated and votes; then its node stops. While
//! it is in the set no transfer can finalize (the 67 % quorum needs it);
//! the final blocks no longer carry its votes, so the set decided one
//! inactive epoch later leaves it out, and from that epoch on the genesis
//! validators finalize again, with proofs of an epoch without it (it stays
//! registered: inactive, not deregistered). Started again, it returns
//! "until it signs again": outside every set it can neither produce nor
//! vote, and endorsing is the genesis set's, so only its heartbeat, which
//! a block may carry for a registered member outside the set, shows it
//! live, and a later set seats it again. CI time: about 40 s.

use crate::devnet_support::{funded_coins, member_ids, pay, wait_for, Devnet};
use crate::{cli_ok, one_second_slots, start_masternode};
use serde_json::json;
use timecoin::types::Hash;

const EPOCH_BLOCKS: u64 = 4;

#[test]
fn a_stopped_heavy_masternode_halts_finality_until_its_inactivity_removes_it() {
    let mut devnet = Devnet::start_with_epochs(4, EPOCH_BLOCKS, |text| {
        one_second_slots(text).replacen("inactive_epochs = 2", "inactive_epochs = 1", 1)
    });
    let spec = devnet.spec.clone();
    let coins = funded_coins(&devnet, 1, 4);
    let files = tempfile::tempdir().unwrap();
    let wallet = files.path().join("wallet.json");
    let (joiner, key_file, identity) =
        start_masternode(&mut devnet, files.path(), "inactivity test masternode");
    let id = hex::encode(identity.public().0);
    let time_cli = |args: &[&str]| cli_ok(devnet.nodes[0].datadir(), &wallet, args);
    time_cli(&["devnet-wallet"]);
    let key_arg = key_file.to_str().unwrap();
    let registration: Hash = time_cli(&[
        "masternode",
        "register",
        "--tier",
        "silver",
        "--identity-key",
        key_arg,
        "--listen",
        "127.0.0.1:24998",
    ])
    .trim()
    .parse()
    .unwrap();
    let node0 = &devnet.nodes[0];
    node0.wait_finalized(&[registration]);

    // Seated: from its epoch on, proofs need its votes, and carry them.
    let member = wait_for("the registration's block to be final", || {
        node0.client().call("getmasternode", json!([id])).ok()
    });
    let active_from = member["active_from_epoch"].as_u64().unwrap();
    wait_for("the joiner's epoch", || {
        let info = node0.call("getconsensusinfo", json!([]));
        (info["epoch"].as_u64()? >= active_from).then_some(())
    });
    let seated = node0.submit(&pay(&spec, coins[0], "seated")).unwrap();
    node0.wait_finalized(&[seated]);
    let proof = node0.call("getfinalityproof", json!([seated.to_string()]));
    assert!(
        proof["voters"].as_array().unwrap().contains(&json!(id)),
        "{proof}"
    );

    // Its node stops: no transfer finalizes while the set holds it.
    devnet.stop(joiner);
    let node0 = &devnet.nodes[0];
    let stuck = node0.submit(&pay(&spec, coins[1], "stuck")).unwrap();
    let gone_from = wait_for("a decided set without the joiner", || {
        let info = node0.call("getepochinfo", json!([]));
        let latest = info["latest_decided"]["epoch"].as_u64()?;
        let set = node0.call("getmasternodes", json!([latest]));
        (!member_ids(&set).contains(&id)).then_some(latest)
    });
    loop {
        let epoch = node0.call("getconsensusinfo", json!([]))["epoch"]
            .as_u64()
            .unwrap();
        if epoch >= gone_from {
            break;
        }
        let status = node0.status_of(&stuck);
        assert_ne!(
            status, "finalized",
            "finalized in epoch {epoch} without the joiner's votes"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // From that epoch on, the genesis validators finalize on their own.
    let fresh = node0.submit(&pay(&spec, coins[2], "fresh")).unwrap();
    for node in &devnet.nodes[..4] {
        node.wait_finalized(&[fresh]);
    }
    let proof = node0.call("getfinalityproof", json!([fresh.to_string()]));
    assert!(proof["epoch"].as_u64().unwrap() >= gone_from, "{proof}");
    assert_eq!(proof["total_weight"], json!(40), "{proof}");
    let member = node0.call("getmasternode", json!([id]));
    assert_eq!(
        member["status"],
        json!("registered"),
        "inactive, not gone: {member}"
    );

    devnet.launch(joiner);
    let node0 = &devnet.nodes[0];
    let back = wait_for("a decided set that seats the joiner again", || {
        let info = node0.call("getepochinfo", json!([]));
        let latest = info["latest_decided"]["epoch"].as_u64()?;
        let set = node0.call("getmasternodes", json!([latest]));
        (latest > gone_from && member_ids(&set).contains(&id)).then_some(set)
    });
    assert_eq!(back["total_weight"], json!(140), "{back}");
}
