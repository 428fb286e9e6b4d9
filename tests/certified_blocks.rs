//! Certified blocks across real `timed` processes (2 s slots on
//! 127.0.0.1): on a 4-validator devnet every validator endorses the block
//! it adopts, ≥ 67 % of the weight certifies it, and within a few slots
//! `getblock` shows `certified: true` on every node for one shared block;
//! `getchaintips` shows the active tip, `getevidence` nothing, and
//! `verifychain` passes on each. CI time: about 10 s.

mod devnet_support;

use devnet_support::{wait_for, Devnet};
use serde_json::json;

/// Height every node must see certified.
const HEIGHT: u64 = 3;

#[test]
fn blocks_become_certified_on_every_node_and_verifychain_passes() {
    let devnet = Devnet::start(4);
    devnet.wait_connected();
    let hashes: Vec<String> = (0..devnet.nodes.len())
        .map(|i| {
            let node = &devnet.nodes[i];
            wait_for(&format!("node{i} to certify height {HEIGHT}"), || {
                let hash = node.client().call("getblockhash", json!([HEIGHT])).ok()?;
                let block = node.call("getblock", json!([hash, 1]));
                (block["certified"] == json!(true)).then(|| {
                    let weight = block["certified_weight"].as_u64().unwrap();
                    let total = block["total_weight"].as_u64().unwrap();
                    assert!(weight * 100 >= total * 67, "{block}");
                    assert_eq!(block["final"], json!(true), "{block}");
                    block["hash"].as_str().unwrap().to_string()
                })
            })
        })
        .collect();
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "one certified block per height on every node: {hashes:?}"
    );
    for i in 0..devnet.nodes.len() {
        let tips = devnet.nodes[i].call("getchaintips", json!([]));
        assert_eq!(tips[0]["status"], json!("active"), "node{i}: {tips}");
        assert_eq!(tips[0]["branchlen"], json!(0), "node{i}: {tips}");
        let evidence = devnet.nodes[i].call("getevidence", json!([]));
        assert_eq!(
            evidence,
            json!([]),
            "honest validators never equivocate: {evidence}"
        );
        let report = devnet.nodes[i].call("verifychain", json!([]));
        assert_eq!(report["valid"], json!(true), "node{i}: {report}");
        assert!(
            report["certificates"].as_u64().unwrap() >= 1,
            "node{i} checked its certificates: {report}"
        );
    }
}
