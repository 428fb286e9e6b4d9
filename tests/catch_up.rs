//! Catch-up served on request, paced, off the consensus thread (issue 13,
//! finding 2; DESIGN §8): a real `timed` validator holding finalized
//! transactions, and raw peers that connect to it by hand. A connection
//! alone makes the node read nothing (it only asks the newcomer for its own
//! recent proofs); a peer that asks gets the latest proofs oldest first,
//! once; a storm of strangers asking costs the catch-up thread at most the
//! strangers' budget of reads, and transfers keep finalizing. A validator
//! killed and restarted on a chain that makes no block during the test
//! learns what was finalized meanwhile from catch-up alone (with blocks,
//! block sync would too: `tests/devnet.rs`,
//! `a_killed_validator_restarts_with_everything_finalized_meanwhile`).

mod devnet_support;
mod net_support;

use devnet_support::{funded_coins, pay, wait_for, Devnet};
use net_support::RawPeer;
use std::time::Duration;
use timecoin::consensus::ConsensusMessage;
use timecoin::finality::FinalityProof;
use timecoin::net::{Message, MAX_RECENT_PROOFS};
use timecoin::store::schema::PROOFS;
use timecoin::time::{Clock, SystemClock};
use timecoin::types::encoding::decode;
use timecoin::types::{Amount, Hash, OutPoint};

/// Long enough for anything sent at connect to arrive; bounds no result.
const QUIET: Duration = Duration::from_millis(800);
/// The node's default catch-up limits (`CatchUpLimits::default`).
const STRANGER_PROOFS_PER_TICK: u64 = 100;
const TICK_MS: u64 = 100;

fn ask(max: u32) -> Message {
    Message::GetRecentProofs { max }
}

/// A stranger with a completed handshake with node 0.
fn stranger(devnet: &Devnet, label: &str) -> RawPeer {
    let addr = ([127, 0, 0, 1], devnet.nodes[0].p2p_port).into();
    let mut peer = RawPeer::connect(addr, label);
    let hello = peer.recv_hello();
    peer.complete_handshake_on(devnet.spec.chain_id(), devnet.spec.genesis_hash(), hello);
    peer
}

fn proof_txids(msgs: &[Message]) -> Vec<Hash> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Consensus(ConsensusMessage::Proof(p)) => Some(p.tx.txid()),
            _ => None,
        })
        .collect()
}

/// Reads until `n` proofs arrived (failing after the deadline), then a
/// little longer to catch any extra copy.
fn recv_proofs(peer: &mut RawPeer, n: usize) -> Vec<Hash> {
    let mut got = Vec::new();
    wait_for(&format!("{n} proofs"), || {
        got.extend(proof_txids(&peer.recv_for(Duration::from_millis(200))));
        (got.len() >= n).then_some(())
    });
    got.extend(proof_txids(&peer.recv_for(QUIET)));
    got
}

/// Node 0's finalized txids in finalization order (its `proofs` table).
fn finalized_in_order(devnet: &Devnet) -> Vec<Hash> {
    let store = devnet.store(0);
    let view = store.read().unwrap();
    let count = view.finalized_count().unwrap();
    view.proofs_in(0, count, count as usize)
        .unwrap()
        .into_iter()
        .map(|(_, bytes)| {
            decode::<FinalityProof>(&bytes, PROOFS.max_value_bytes, "proof")
                .unwrap()
                .tx
                .txid()
        })
        .collect()
}

fn metric(devnet: &Devnet, name: &str) -> u64 {
    metric_of(devnet, 0, name)
}

fn metric_of(devnet: &Devnet, node: usize, name: &str) -> u64 {
    let body = devnet.nodes[node].client().get("/metrics").unwrap().body;
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// One validator with `payments` transfers finalized after the funding
/// ones, and `spare` coins left to spend.
fn devnet_with_history(payments: usize, spare: usize) -> (Devnet, Vec<(OutPoint, Amount)>) {
    let devnet = Devnet::start(1);
    let mut coins = funded_coins(&devnet, 1, payments + spare);
    let spare = coins.split_off(payments);
    let node = &devnet.nodes[0];
    let txids: Vec<Hash> = coins
        .iter()
        .map(|c| node.submit(&pay(&devnet.spec, *c, "history")).unwrap())
        .collect();
    node.wait_finalized(&txids);
    (devnet, spare)
}

#[test]
fn recent_proofs_go_only_to_a_peer_that_asks_oldest_first_and_once() {
    let (devnet, _) = devnet_with_history(6, 0);
    let history = finalized_in_order(&devnet);
    assert_eq!(history.len(), 8, "funding (2) and payments (6)");

    let mut peer = stranger(&devnet, "catch-up asker");
    let unasked = peer.recv_for(QUIET);
    assert_eq!(
        proof_txids(&unasked),
        Vec::<Hash>::new(),
        "a connection alone made the node read and send proofs"
    );
    assert!(
        unasked.contains(&ask(MAX_RECENT_PROOFS)),
        "the node asks a newcomer for its recent proofs: {unasked:?}"
    );
    // Asked twice at once: served once, oldest first.
    peer.send(&ask(MAX_RECENT_PROOFS)).unwrap();
    peer.send(&ask(MAX_RECENT_PROOFS)).unwrap();
    assert_eq!(recv_proofs(&mut peer, history.len()), history);
    // Asked again right after: refused, nothing read.
    peer.send(&ask(MAX_RECENT_PROOFS)).unwrap();
    assert_eq!(proof_txids(&peer.recv_for(QUIET)), Vec::<Hash>::new());

    // Another peer asks for the latest 3 only.
    let mut other = stranger(&devnet, "catch-up asker of three");
    other.send(&ask(3)).unwrap();
    assert_eq!(recv_proofs(&mut other, 3), history[5..]);

    assert_eq!(
        metric(&devnet, "timecoin_catch_up_requests_served_total"),
        2
    );
    assert_eq!(
        metric(&devnet, "timecoin_catch_up_requests_refused_total"),
        2
    );
    assert_eq!(
        metric(&devnet, "timecoin_catch_up_proofs_read_total"),
        history.len() as u64 + 3
    );
}

#[test]
fn a_reconnect_storm_reads_at_most_the_strangers_budget_and_finality_goes_on() {
    const STORM: usize = 100;
    let (devnet, coins) = devnet_with_history(20, 4);
    let started = SystemClock.mono();
    // Each stranger (a fresh id) connects, asks, waits one tick and leaves.
    for i in 0..STORM {
        let mut peer = stranger(&devnet, &format!("storm {i}"));
        peer.send(&ask(MAX_RECENT_PROOFS)).unwrap();
        if i % 25 == 12 {
            // Transfers go on during the storm.
            let coin = coins[i / 25];
            let txid = devnet.nodes[0]
                .submit(&pay(&devnet.spec, coin, "during the storm"))
                .unwrap();
            devnet.nodes[0].wait_finalized(&[txid]);
        }
        let _ = peer.recv_for(Duration::from_millis(TICK_MS));
    }
    let elapsed_ms = started_ms_since(started);
    wait_for("every request handled", || {
        let handled = metric(&devnet, "timecoin_catch_up_requests_served_total")
            + metric(&devnet, "timecoin_catch_up_requests_refused_total");
        (handled >= STORM as u64).then_some(())
    });
    let read = metric(&devnet, "timecoin_catch_up_proofs_read_total");
    let history = finalized_in_order(&devnet).len() as u64;
    let budget = STRANGER_PROOFS_PER_TICK * (elapsed_ms / TICK_MS + 2);
    eprintln!(
        "{STORM} strangers in {elapsed_ms} ms: {read} proofs read (budget {budget}, \
         {history} held at the end, {} if each had been sent them all)",
        STORM as u64 * history
    );
    assert!(read <= budget, "{read} proofs read, over {budget}");
    assert!(
        read <= STORM as u64 * history,
        "no request was served twice"
    );
}

fn started_ms_since(started: timecoin::time::MonoTime) -> u64 {
    SystemClock.mono().saturating_since(started).as_millis() as u64
}

#[test]
fn a_restarted_validator_learns_what_finalized_meanwhile_from_catch_up_alone() {
    // No slot boundary during the test: no block, so no block sync.
    let mut devnet = Devnet::start_with(4, |text| {
        text.replace("block_interval_secs = 2", "block_interval_secs = 86400")
    });
    let coins = funded_coins(&devnet, 1, 30);
    devnet.nodes[3].sigkill();
    devnet.reap(3);
    let txids: Vec<Hash> = coins
        .iter()
        .enumerate()
        .map(|(i, c)| {
            devnet.nodes[i % 3]
                .submit(&pay(&devnet.spec, *c, "while node 3 is down"))
                .unwrap()
        })
        .collect();
    for node in devnet.running() {
        node.wait_finalized(&txids);
    }
    devnet.launch(3);
    devnet.wait_connected();
    devnet.nodes[3].wait_finalized(&txids);
    let served: u64 = (0..3)
        .map(|i| metric_of(&devnet, i, "timecoin_catch_up_requests_served_total"))
        .sum();
    assert!(served >= 1, "node 3 was served by a peer");
}
