//! Certified blocks across real `timed` processes (2 s slots on
//! 127.0.0.1): on a 4-validator devnet every validator endorses the block
//! it adopts, ≥ 67 % of the weight certifies it, and within a few slots
//! `getblock` shows one shared block `final` on every node, certified by
//! itself or by a certified descendant;
//! `getchaintips` shows the active tip, `getevidence` nothing, and
//! `verifychain` passes on each. CI time: about 10 s.

mod devnet_support;

use devnet_support::{wait_for, Devnet};
use serde_json::json;

/// Height every node must see final.
const HEIGHT: u64 = 3;

#[test]
fn blocks_become_certified_on_every_node_and_verifychain_passes() {
    let devnet = Devnet::start(4);
    devnet.wait_connected();
    let hashes: Vec<String> = (0..devnet.nodes.len())
        .map(|i| {
            let node = &devnet.nodes[i];
            let block_at = |height: u64| {
                let hash = node.client().call("getblockhash", json!([height])).ok()?;
                Some(node.call("getblock", json!([hash, 1])))
            };
            let hash = wait_for(&format!("node{i} to finalize height {HEIGHT}"), || {
                let block = block_at(HEIGHT)?;
                (block["final"] == json!(true)).then(|| block["hash"].as_str().unwrap().to_string())
            });
            // Final means certified itself or below a certified block: the
            // lowest certified one from HEIGHT up carries the quorum (rival
            // blocks may split one height's endorsements on a loaded host).
            let certified = (HEIGHT..)
                .map_while(block_at)
                .find(|block| block["certified"] == json!(true))
                .expect("a certified block at or above a final one");
            let weight = certified["certified_weight"].as_u64().unwrap();
            let total = certified["total_weight"].as_u64().unwrap();
            assert!(weight * 100 >= total * 67, "{certified}");
            hash
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
