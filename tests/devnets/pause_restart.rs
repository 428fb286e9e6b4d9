//! Pauses and restarts of real `timed` processes under load (issue 12,
//! "Pauses and restarts"): on the loopback devnet, while a background
//! thread sends a transfer every [`LOAD_GAP`] through the nodes in turn,
//! one validator is frozen (SIGSTOP) then resumed, then two at once; each
//! round ends with a SIGKILL and restart of another node. After every
//! round: one certified tip on all 4 nodes, above every block held when
//! the round ended, within [`RECOVERY_LIMIT`], every node with 3 peers, no
//! ban and no misbehaviour score, `verifychain` passing, and a fresh
//! transfer through each node finalized on all 4.
//!
//! CI runs one round with [`PAUSE_CI`] pauses and one with the issue's
//! 15 s pauses; the 10 rounds (about 6 minutes) are ignored:
//! `cargo test --release --test devnets pause_restart -- --ignored`.

use crate::devnet_support::{funded_coins, pay, Devnet};
use crate::fault_support::{
    fresh_transfer_finalizes, verify_all, wait_full_mesh_without_bans, wait_one_tip, Stopwatch,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timecoin::config::ChainSpec;
use timecoin::rpc::client::RpcClient;
use timecoin::types::{Amount, OutPoint};

const PAUSE_FULL: Duration = Duration::from_secs(15);
const ROUNDS_FULL: usize = 10;
/// CI: one round, shorter pauses (still 3 slots: a paused node misses blocks).
const PAUSE_CI: Duration = Duration::from_secs(6);
/// From the last fault of a round to one tip on every node.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
const FINALITY_LIMIT: Duration = Duration::from_secs(30);
/// Light load: one transfer per gap, through the next reachable node.
const LOAD_GAP: Duration = Duration::from_millis(200);
/// A load call to a node frozen under it gives up after this.
const LOAD_RPC_TIMEOUT: Duration = Duration::from_secs(2);

type Coin = (OutPoint, Amount);

#[test]
fn one_round_of_short_pauses_and_a_restart() {
    run_rounds(1, PAUSE_CI);
}

/// The pause length, once: the quick reproducer of the stuck resume.
#[test]
fn one_round_of_15_s_pauses() {
    run_rounds(1, PAUSE_FULL);
}

#[test]
#[ignore = "about 6 minutes: the issue's 10 rounds of 15 s pauses"]
fn ten_rounds_of_15_s_pauses() {
    run_rounds(ROUNDS_FULL, PAUSE_FULL);
}

/// The background load: its own short-timeout clients, one slot per node,
/// emptied while that node is frozen or restarting.
struct Load {
    spec: ChainSpec,
    clients: Mutex<Vec<Option<RpcClient>>>,
    stop: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl Load {
    fn new(devnet: &Devnet) -> Arc<Load> {
        Arc::new(Load {
            spec: devnet.spec.clone(),
            clients: Mutex::new(
                devnet
                    .nodes
                    .iter()
                    .map(|v| Some(v.client_with_timeout(LOAD_RPC_TIMEOUT)))
                    .collect(),
            ),
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    fn set(&self, i: usize, client: Option<RpcClient>) {
        self.clients.lock().unwrap()[i] = client;
    }

    /// One transfer per [`LOAD_GAP`], each through the next node that is up;
    /// a coin whose submission failed is not used again.
    fn run(&self, coins: Vec<Coin>) {
        let mut next = 0;
        for coin in coins {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let client = {
                let clients = self.clients.lock().unwrap();
                let n = clients.len();
                (0..n)
                    .map(|k| (next + k) % n)
                    .find_map(|i| clients[i].clone().map(|c| (i, c)))
            };
            if let Some((i, client)) = client {
                next = i + 1;
                let tx = pay(&self.spec, coin, "load");
                let hex = hex::encode(tx.encode());
                match client.call("sendrawtransaction", json!([hex])) {
                    Ok(_) => self.sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            std::thread::sleep(LOAD_GAP); // the load's pace
        }
        eprintln!("load: out of coins");
    }
}

fn run_rounds(rounds: usize, pause: Duration) {
    let mut devnet = Devnet::start(4);
    // Enough for the load (5 tx/s over about 60 s per round, generously) and 8 fresh transfers per round.
    let per_round = 600;
    let mut coins = funded_coins(&devnet, rounds * per_round / 100, 100);
    let fresh: Vec<Coin> = coins.split_off(coins.len() - rounds * 8);
    let load = Load::new(&devnet);
    let worker = {
        let load = load.clone();
        std::thread::spawn(move || load.run(coins))
    };
    let mut fresh = fresh.into_iter();
    let clock = Stopwatch::start();
    let mut outcome = Ok(());
    for round in 0..rounds {
        for (kind, frozen, killed) in [
            ("one paused", vec![round % 4], (round + 1) % 4),
            (
                "two paused",
                vec![(round + 1) % 4, (round + 2) % 4],
                (round + 3) % 4,
            ),
        ] {
            let what = format!(
                "round {round} ({kind}: {frozen:?} frozen {pause:?}, node {killed} killed)"
            );
            freeze(&devnet, &load, &frozen, pause);
            restart(&mut devnet, &load, killed);
            let coins: Vec<Coin> = fresh.by_ref().take(4).collect();
            match check(&devnet, &coins) {
                Ok(report) => eprintln!("{what}: {report}"),
                Err(e) => {
                    outcome = Err(format!("{what}, {:?} into the test: {e}", clock.elapsed()));
                    break;
                }
            }
        }
        if outcome.is_err() {
            break;
        }
    }
    load.stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    // Bans came late in the runs (about 60 s after a resume): look again.
    if outcome.is_ok() {
        outcome = wait_full_mesh_without_bans(&devnet, RECOVERY_LIMIT)
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "after the last round, {:?} into the test: {e}",
                    clock.elapsed()
                )
            });
    }
    eprintln!(
        "load: {} transfers sent, {} refused or timed out",
        load.sent.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed)
    );
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// SIGSTOPs `nodes` (out of the load first), waits `pause`, SIGCONTs them.
fn freeze(devnet: &Devnet, load: &Load, nodes: &[usize], pause: Duration) {
    for &i in nodes {
        load.set(i, None);
        devnet.nodes[i].sigstop();
    }
    std::thread::sleep(pause); // the fault itself
    for &i in nodes {
        devnet.nodes[i].sigcont();
        load.set(
            i,
            Some(devnet.nodes[i].client_with_timeout(LOAD_RPC_TIMEOUT)),
        );
    }
}

/// SIGKILLs node `i` and starts it again on its datadir.
fn restart(devnet: &mut Devnet, load: &Load, i: usize) {
    load.set(i, None);
    devnet.nodes[i].sigkill();
    devnet.reap(i);
    devnet.launch(i);
    load.set(
        i,
        Some(devnet.nodes[i].client_with_timeout(LOAD_RPC_TIMEOUT)),
    );
}

/// The checks after a round; `coins` pays one fresh transfer per node.
fn check(devnet: &Devnet, coins: &[Coin]) -> Result<String, String> {
    let (tip, converged) = wait_one_tip(devnet, RECOVERY_LIMIT)?;
    let mesh = wait_full_mesh_without_bans(devnet, RECOVERY_LIMIT)?;
    verify_all(devnet)?;
    let finality = devnet
        .nodes
        .iter()
        .zip(coins)
        .map(|(node, coin)| fresh_transfer_finalizes(devnet, node.index, *coin, FINALITY_LIMIT))
        .collect::<Result<Vec<Duration>, String>>()?;
    Ok(format!(
        "one tip (height {}) in {converged:?}, full mesh in {mesh:?} more, fresh transfers finalized on all 4 in {finality:?}",
        tip.height
    ))
}
