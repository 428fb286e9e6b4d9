//! The long multi-process tests, one module per property: the open
//! masternode network (DESIGN §6, §7: registration, production, slashing,
//! inactivity, a late endorser's liveness) and faults between real `timed` processes (issue 12:
//! partitions through a fault proxy, pauses and restarts under load). They
//! share one test binary so their devnets, which mostly wait for slots,
//! epochs and splits, run side by side (CI's two test threads).

#[path = "../devnet_support/mod.rs"]
mod devnet_support;
#[path = "../fault_support/mod.rs"]
mod fault_support;
#[path = "../net_support/mod.rs"]
mod net_support;

mod heartbeat_gossip;
mod inactivity;
mod late_endorser;
mod partition;
mod pause_restart;
mod production;
mod registration;
mod slashing;

use devnet_support::{Devnet, Validator};
use std::path::{Path, PathBuf};
use std::process::Command;
use timecoin::crypto::Keypair;
use timecoin::node::key_file::write_key_file;
use timecoin::types::Hash;

/// The generated chain config with 1 s slots (ranks 100 ms apart): the
/// epochs these tests wait for pass twice as fast as on the 2 s default.
fn one_second_slots(text: String) -> String {
    text.replacen("block_interval_secs = 2", "block_interval_secs = 1", 1)
        .replacen("publish_step_ms = 250", "publish_step_ms = 100", 1)
}

/// Starts a node for the masternode identity of `label`, its key file
/// written in `dir`: the node's index, the key file and the identity.
fn start_masternode(devnet: &mut Devnet, dir: &Path, label: &str) -> (usize, PathBuf, Keypair) {
    let key_file = dir.join(format!("{}.json", label.replace(' ', "-")));
    let identity = Keypair::from_seed_label(label);
    write_key_file(&key_file, &identity).unwrap();
    (devnet.add_masternode(key_file.clone()), key_file, identity)
}

/// Runs `time-cli` against `node`'s datadir with `wallet`; its stdout, or
/// its stderr as the error.
fn cli(node: &Path, wallet: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_time-cli"))
        .arg("--datadir")
        .arg(node)
        .arg("--wallet")
        .arg(wallet)
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    if out.status.success() {
        Ok(text(out.stdout))
    } else {
        Err(text(out.stderr))
    }
}

/// [`cli`] that must succeed: its stdout.
fn cli_ok(node: &Path, wallet: &Path, args: &[&str]) -> String {
    cli(node, wallet, args).unwrap_or_else(|e| panic!("time-cli {args:?}: {e}"))
}

/// Runs a `time-cli` command that prints a txid, and waits until `node`
/// finalized it.
fn cli_final(node: &Validator, wallet: &Path, args: &[&str]) -> Hash {
    let txid: Hash = cli_ok(node.datadir(), wallet, args).trim().parse().unwrap();
    node.wait_finalized(&[txid]);
    txid
}
