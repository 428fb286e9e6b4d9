//! Liveness counts late endorsements (DESIGN §7 "Liveness"): on a
//! 4-validator devnet behind the fault proxy (1 s slots, 4-block epochs,
//! `inactive_epochs = 1`), every frame validator 3 sends arrives 300 ms
//! late, so the other three certify each block before its endorsement
//! comes. It is live all the same: the next block carries its late
//! endorsement with the parent's certificate, and it stays in every
//! decided set. While a carried certificate held only the votes that
//! reached the quorum, it was seen only in the blocks it produced (about a
//! quarter), missed a whole epoch about (3/4)^4 ≈ 32 % of the time, and
//! left the set (this test failed in its first epoch). CI time: about 40 s.

use crate::devnet_support::{member_ids, wait_for};
use crate::fault_support::start_behind_proxy_with;
use crate::one_second_slots;
use serde_json::json;
use std::time::Duration;
use timecoin::genesis::devnet_validator_keys;

/// Decided sets checked, each a chance for the late endorser to be missed.
const EPOCHS: u64 = 8;
const LATE: usize = 3;
const LAG: Duration = Duration::from_millis(300);

#[test]
fn a_late_endorser_stays_in_every_decided_set() {
    let (devnet, proxy) = start_behind_proxy_with(4, |text| {
        one_second_slots(text)
            .replacen("epoch_blocks = 10", "epoch_blocks = 4", 1)
            .replacen("inactive_epochs = 2", "inactive_epochs = 1", 1)
    });
    proxy.delay(LATE, LAG);
    let late = hex::encode(devnet_validator_keys(LATE).0.public().0);
    let node0 = &devnet.nodes[0];
    let latest = || {
        let info = node0.call("getepochinfo", json!([]));
        info["latest_decided"]["epoch"].as_u64()
    };
    // Sets decided by blocks made once the lag is on and the nodes are
    // past their start (catching up with peers' tips, they endorse nothing).
    let first = latest().unwrap_or(1) + 3;
    for epoch in first..first + EPOCHS {
        wait_for(&format!("epoch {epoch} to be decided"), || {
            latest().filter(|l| *l >= epoch)
        });
        let set = node0.call("getmasternodes", json!([epoch]));
        assert!(
            member_ids(&set).contains(&late),
            "epoch {epoch} leaves the late endorser out: {set}"
        );
        assert_eq!(set["total_weight"], json!(40), "{set}");
    }
}
