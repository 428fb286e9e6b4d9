//! Kill -9 never makes a validator equivocate (issue 12, "Kill -9"): on
//! the loopback devnet under double-spend load (each coin spent twice at
//! once, one side through node 0, the other through node 1), validator 3
//! is SIGKILLed at seeded random moments and restarted, [`KILLS`] times.
//! An observer peer of node 0 records every window vote of validator 3
//! that node 0 verified and relayed. Across all of them: no window number
//! signed twice with different contents, and never both sides of one
//! double spend signed (the vote-safety record in LMDB must survive the
//! kill). No node stores evidence against it; at most one side of each
//! double spend finalizes. CI time: about a minute.

mod devnet_support;
mod net_support;

use devnet_support::{funded_coins, pay, Devnet};
use net_support::RawPeer;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timecoin::config::ChainSpec;
use timecoin::consensus::windows::SEQS_PER_SESSION;
use timecoin::consensus::ConsensusMessage;
use timecoin::finality::WindowVote;
use timecoin::genesis::devnet_validator_keys;
use timecoin::net::Message;
use timecoin::rpc::client::RpcClient;
use timecoin::types::{Amount, Hash, OutPoint};

const KILLS: usize = 20;
const VICTIM: usize = 3;
const SEED: u64 = 0x6b11;
/// A kill lands this long (uniform) after the victim's RPC came back.
const KILL_AFTER_MS: std::ops::Range<u64> = 150..1_500;
/// One double spend per gap.
const LOAD_GAP: Duration = Duration::from_millis(80);
const LOAD_RPC_TIMEOUT: Duration = Duration::from_secs(5);

type Coin = (OutPoint, Amount);
/// The two sides of each double spend sent.
type Pairs = Arc<Mutex<Vec<[Hash; 2]>>>;

#[test]
fn a_validator_killed_20_times_under_double_spends_never_signs_both_sides() {
    let mut devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 10, 50);
    let (chain_id, genesis_hash) = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    let victim = devnet_validator_keys(VICTIM).0.public();

    let node0 = ([127, 0, 0, 1], devnet.nodes[0].p2p_port).into();
    let mut observer = RawPeer::connect(node0, "window observer");
    let hello = observer.recv_hello();
    observer.complete_handshake_on(chain_id, genesis_hash, hello);
    let windows: Arc<Mutex<Vec<WindowVote>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (windows, stop) = (Arc::clone(&windows), Arc::clone(&stop));
        std::thread::spawn(move || {
            while let Some(msg) = observer.recv() {
                if let Message::Consensus(ConsensusMessage::WindowVote(w)) = msg {
                    if w.vote.voter == victim {
                        windows.lock().unwrap().push(Arc::unwrap_or_clone(w));
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
        })
    };

    let pairs: Pairs = Arc::default();
    let clients = [0, 1].map(|i| devnet.nodes[i].client_with_timeout(LOAD_RPC_TIMEOUT));
    let load = {
        let (spec, pairs, stop) = (devnet.spec.clone(), Arc::clone(&pairs), Arc::clone(&stop));
        std::thread::spawn(move || double_spends(&spec, &clients, coins, &pairs, &stop))
    };

    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    for _ in 0..KILLS {
        let span = KILL_AFTER_MS.end - KILL_AFTER_MS.start;
        let wait = KILL_AFTER_MS.start + rng.next_u64() % span;
        std::thread::sleep(Duration::from_millis(wait));
        devnet.nodes[VICTIM].sigkill();
        devnet.reap(VICTIM);
        devnet.launch(VICTIM);
    }
    // Let the last life sign and its windows reach the observer.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    let pairs = pairs.lock().unwrap().clone();
    let signed = windows.lock().unwrap().clone();
    let mut roots: HashMap<u64, Hash> = HashMap::new();
    let mut signed_txids: HashSet<Hash> = HashSet::new();
    for window in &signed {
        let root = *roots.entry(window.vote.seq).or_insert(window.vote.root);
        assert_eq!(
            root, window.vote.root,
            "window {} signed twice",
            window.vote.seq
        );
        signed_txids.extend(window.txids.iter().copied());
    }
    for [a, b] in &pairs {
        assert!(
            !(signed_txids.contains(a) && signed_txids.contains(b)),
            "validator {VICTIM} signed both {a} and {b}"
        );
    }
    // The test means something only if the victim signed in most lives
    // and signed sides of many double spends.
    let lives: HashSet<u64> = roots.keys().map(|seq| seq / SEQS_PER_SESSION).collect();
    let sides = pairs
        .iter()
        .filter(|[a, b]| signed_txids.contains(a) || signed_txids.contains(b))
        .count();
    assert!(
        lives.len() > KILLS / 2,
        "signed in only {} lives",
        lives.len()
    );
    assert!(
        sides >= KILLS,
        "signed a side of only {sides} double spends"
    );
    eprintln!(
        "{KILLS} kills: {} windows in {} lives, {sides} of {} double spends signed",
        signed.len(),
        lives.len(),
        pairs.len()
    );

    for node in &devnet.nodes {
        let evidence = node.call("getevidence", json!([]));
        assert_eq!(evidence, json!([]), "node {}", node.index);
        for [a, b] in &pairs {
            let both = [a, b].iter().all(|t| node.status_of(t) == "finalized");
            assert!(!both, "node {}: both {a} and {b} finalized", node.index);
        }
    }
    drop(devnet);
    watcher.join().unwrap();
}

/// Spends each coin twice at once, one side through each client, until
/// `stop` or the coins run out; records every pair it sent.
fn double_spends(
    spec: &ChainSpec,
    clients: &[RpcClient; 2],
    coins: Vec<Coin>,
    pairs: &Pairs,
    stop: &AtomicBool,
) {
    for coin in coins {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let sides = [pay(spec, coin, "side a"), pay(spec, coin, "side b")];
        for (client, tx) in clients.iter().zip(&sides) {
            // A refusal (the other side arrived first) is the point.
            let _ = client.call("sendrawtransaction", json!([hex::encode(tx.encode())]));
        }
        pairs.lock().unwrap().push(sides.map(|tx| tx.txid()));
        std::thread::sleep(LOAD_GAP);
    }
}
