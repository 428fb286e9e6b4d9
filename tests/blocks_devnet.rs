//! Checkpoint blocks across real `timed` processes (2 s slots on 127.0.0.1):
//! under steady load every finalized tx is archived exactly once, soon
//! after finality, on one chain every node shares; a validator back from
//! 20 slots away and a fresh node that knows one peer sync that chain and
//! its proofs; competing candidates settle on the lowest VRF ticket;
//! SIGKILLs during block commits never damage the chain tables; tampered
//! blocks from a hand-rolled peer are refused with their named reason.
//!
//! The chain is read straight from each node's LMDB (multi-process safe).
//! CI time: about 95 s for the file, its tests in parallel on 2 cores; the
//! longest is the load test: 60 s of load at 20 tx/s (1,200 transfers, the
//! 30 slots validator 3 is away), then the sync of two nodes.

mod devnet_support;
mod net_support;

use devnet_support::{address_of, funded_coins, transfer, wait_for, Devnet};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use timecoin::chain::{
    build_block, entries_root, Block, BlockTemplate, ChainTip, Payouts, SlotClock, MAX_BLOCK_BYTES,
};
use timecoin::crypto::vrf::{SortitionInput, SortitionScore, VrfKeypair};
use timecoin::finality::{FinalityProof, ValidatorSet};
use timecoin::genesis::devnet_validator_keys;
use timecoin::node::block_thread::SYNC_REQUEST_TIMEOUT_MS;
use timecoin::store::TxStatus;
use timecoin::time::{Clock, SystemClock};
use timecoin::types::encoding::decode;
use timecoin::types::{Amount, Hash, OutPoint, Tx, TxOut};

const SLOT_MS: u64 = timecoin::genesis::DEVNET_BLOCK_INTERVAL_SECS * 1000;

/// Node `i`'s canonical blocks from height 1 to its tip.
fn canonical_chain(devnet: &Devnet, i: usize) -> Vec<Block> {
    let store = devnet.store(i);
    store
        .blocks_from(1, usize::MAX)
        .unwrap()
        .iter()
        .map(|stored| Block::decode(&stored.encoded, MAX_BLOCK_BYTES).unwrap())
        .collect()
}

fn tip_of(devnet: &Devnet, i: usize) -> timecoin::store::ChainTip {
    devnet.store(i).tip().unwrap()
}

/// Waits until `nodes` all have the same tip; returns it.
fn wait_same_tip(devnet: &Devnet, nodes: &[usize]) -> timecoin::store::ChainTip {
    wait_for(&format!("nodes {nodes:?} to share one tip"), || {
        let tips: Vec<_> = nodes.iter().map(|&i| tip_of(devnet, i)).collect();
        tips.windows(2).all(|w| w[0] == w[1]).then(|| tips[0])
    })
}

/// Sends one transfer every `1000 / per_sec` ms for `secs` seconds, round
/// robin over `nodes`; returns the txids.
fn steady_load(
    devnet: &Devnet,
    nodes: &[usize],
    coins: &[(OutPoint, Amount)],
    per_sec: u64,
    secs: u64,
) -> Vec<Hash> {
    let count = (per_sec * secs) as usize;
    assert!(coins.len() >= count, "fund {count} coins");
    let gap = Duration::from_millis(1000 / per_sec);
    coins[..count]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tx = pay(devnet, *c, "load");
            let txid = devnet.nodes[nodes[i % nodes.len()]].submit(&tx).unwrap();
            std::thread::sleep(gap); // pacing the load, not waiting for a result
            txid
        })
        .collect()
}

fn pay(devnet: &Devnet, coin: (OutPoint, Amount), to: &str) -> Tx {
    let out = TxOut {
        value: Amount::from_time(1).unwrap(),
        address: address_of(to),
    };
    transfer(&devnet.spec, coin, &[out])
}

fn slot_of_ms(ms: u64) -> u64 {
    ms / SLOT_MS
}

#[test]
fn steady_load_archives_each_tx_once_and_lagging_and_fresh_nodes_sync_the_one_chain() {
    let mut devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 20, 60);
    // Validator 3 is away for the 30 slots of the load.
    devnet.stop(3);
    let txids = steady_load(&devnet, &[0, 1, 2], &coins, 20, 60);
    for i in 0..3 {
        devnet.nodes[i].wait_finalized(&txids);
    }
    devnet.launch(3);
    let fresh = devnet.add_node(0);
    let all = [0, 1, 2, 3, fresh];
    // Every tx archived on node 0, then all five nodes on one tip.
    wait_for("every load tx to be archived on node 0", || {
        let store = devnet.store(0);
        txids
            .iter()
            .all(|t| {
                matches!(
                    store.tx(t).unwrap().map(|r| r.status),
                    Some(TxStatus::Archived { .. })
                )
            })
            .then_some(())
    });
    let tip = wait_same_tip(&devnet, &all);

    let chain = canonical_chain(&devnet, 0);
    assert!(chain.len() as u64 >= tip.height);
    let chain = &chain[..tip.height as usize];
    // One canonical block per slot at most, each on its predecessor.
    for pair in chain.windows(2) {
        assert!(
            pair[1].header.slot > pair[0].header.slot,
            "two blocks in a slot"
        );
        assert_eq!(pair[1].header.prev_hash, pair[0].hash());
    }
    // Every tx in exactly one canonical block, within 2 slots of finality.
    let mut archived_in: BTreeMap<Hash, usize> = BTreeMap::new();
    for (i, block) in chain.iter().enumerate() {
        for entry in &block.entries {
            assert!(
                archived_in.insert(entry.tx.txid(), i).is_none(),
                "{} archived twice",
                entry.tx.txid()
            );
        }
    }
    let store = devnet.store(0);
    for txid in &txids {
        let record = store.tx(txid).unwrap().unwrap();
        let index = archived_in[txid];
        let block = &chain[index];
        assert_eq!(
            record.status,
            TxStatus::Archived {
                height: block.header.height,
                block: block.hash()
            }
        );
        let finality_slot = slot_of_ms(record.finalized_at_ms);
        assert!(
            block.header.slot <= finality_slot + 2,
            "{txid} finalized in slot {finality_slot} but archived in slot {}",
            block.header.slot
        );
    }
    drop(store);
    // The same chain everywhere; the lagging and the fresh node hold every
    // archived tx as finalized with its proof.
    let hashes: Vec<Hash> = chain.iter().map(Block::hash).collect();
    for &i in &all[1..] {
        let store = devnet.store(i);
        for (h, hash) in hashes.iter().enumerate() {
            assert_eq!(
                store.block_hash_at(h as u64 + 1).unwrap(),
                Some(*hash),
                "node {i}"
            );
        }
        for txid in archived_in.keys() {
            assert!(
                store.proof(txid).unwrap().is_some(),
                "node {i} lacks the proof of {txid}"
            );
        }
    }
    for &i in &[3, fresh] {
        assert!(
            devnet.nodes[i].log().contains("sync: "),
            "node {i} logged no sync progress"
        );
        // The synced chain replays from genesis: every block, proof and reward.
        let report = devnet.nodes[i].call("verifychain", json!([]));
        assert_eq!(report["valid"], json!(true), "node {i}: {report}");
        assert!(
            report["blocks"].as_u64().unwrap() >= tip.height,
            "node {i}: {report}"
        );
    }
}

#[test]
fn competing_candidates_settle_on_the_lowest_vrf_ticket_everywhere() {
    let devnet = Devnet::start_with(4, |text| {
        text.replace(
            "all_producers_publish = false",
            "all_producers_publish = true",
        )
    });
    wait_for("ten blocks", || {
        (tip_of(&devnet, 0).height >= 10).then_some(())
    });
    let tip = wait_same_tip(&devnet, &[0, 1, 2, 3]);
    let chain = canonical_chain(&devnet, 0);
    let tickets: Vec<VrfKeypair> = (0..4).map(|i| devnet_validator_keys(i).1).collect();
    let set = ValidatorSet::new(devnet.spec.validators.clone()).unwrap();
    let mut prev_hash = devnet.spec.genesis_hash();
    for block in &chain[..tip.height as usize] {
        let h = &block.header;
        let input = SortitionInput {
            chain_id: devnet.spec.chain_id(),
            prev_hash,
            slot: h.slot,
        };
        let best = (0..4)
            .min_by_key(|&i| SortitionScore::of(&tickets[i].sign_slot(&input).0))
            .unwrap();
        assert_eq!(
            set.index_of(&h.producer),
            Some(best),
            "height {}: not the lowest ticket of slot {}",
            h.height,
            h.slot
        );
        prev_hash = block.hash();
    }
    assert!(
        devnet.nodes.iter().any(|n| n.log().contains("undid block")),
        "no node ever switched to a better candidate"
    );
}

#[test]
fn sigkill_during_block_commits_leaves_a_consistent_chain_that_rejoins_the_tip() {
    const SEED: u64 = 0xb10c;
    let mut devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 10, 20);
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    for (round, batch) in coins.chunks(20).enumerate() {
        // Entries for the next blocks, then a kill at a seeded moment of
        // the slot's first 600 ms, when blocks are built, sent and committed.
        for (i, c) in batch.iter().enumerate() {
            devnet.nodes[i % 3]
                .submit(&pay(&devnet, *c, "kill"))
                .unwrap();
        }
        let now = SystemClock.wall().as_millis();
        let next_slot = (now / SLOT_MS + 1) * SLOT_MS;
        let at = next_slot + rng.next_u64() % 600;
        std::thread::sleep(Duration::from_millis(at - now));
        devnet.nodes[3].sigkill();
        devnet.reap(3);
        let summary = devnet
            .store(3)
            .check_chain_consistency()
            .unwrap_or_else(|e| panic!("round {round} (seed {SEED:#x}): {e}"));
        devnet.launch(3);
        let tip = wait_same_tip(&devnet, &[0, 1, 2, 3]);
        assert!(tip.height >= summary.tip.height, "round {round}");
    }
}

/// What the hand-rolled peer needs to forge blocks: the validators'
/// identity keys (public devnet labels) and VRF keys only this test knows,
/// registered in the genesis so no node can produce a block itself.
struct Forger {
    set: ValidatorSet,
    vrf: Vec<VrfKeypair>,
}

impl Forger {
    fn vrf_key(i: usize) -> VrfKeypair {
        VrfKeypair::from_seed_label(&format!("blocks_devnet forger {i}"))
    }

    fn chain_toml(text: String) -> String {
        (0..4).fold(text, |text, i| {
            let node_key = hex::encode(devnet_validator_keys(i).1.public().0);
            let forger_key = hex::encode(Forger::vrf_key(i).public().0);
            text.replacen(&node_key, &forger_key, 1)
        })
    }

    fn new(devnet: &Devnet) -> Forger {
        Forger {
            set: ValidatorSet::new(devnet.spec.validators.clone()).unwrap(),
            vrf: (0..4).map(Forger::vrf_key).collect(),
        }
    }

    /// A valid block by validator 0 for the current slot on `parent`.
    fn block(
        &self,
        devnet: &Devnet,
        parent: ChainTip,
        entries: &[(FinalityProof, Amount)],
    ) -> Block {
        let now = SystemClock.wall();
        let slot_clock = SlotClock::new(SLOT_MS, 500).unwrap();
        let template = BlockTemplate {
            chain_id: devnet.spec.chain_id(),
            parent,
            slot: slot_clock.slot_at(now),
            now,
            slot_clock,
            validators: &self.set,
            payouts: &Payouts::default(),
            parent_certificate: None,
            evidence: &[],
            heartbeats: &[],
            max_block_bytes: 1 << 20,
        };
        build_block(
            &template,
            &self.vrf[0],
            &devnet_validator_keys(0).0,
            entries.to_vec(),
        )
        .unwrap()
    }

    /// Recomputes the root over the (tampered) body and signs again, so
    /// only the tampering is wrong.
    fn reseal(block: &mut Block) {
        let txids: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
        block.header.entries_root = entries_root(&txids, block.reward.id());
        block.sign(&devnet_validator_keys(0).0);
    }
}

#[test]
fn tampered_blocks_are_refused_everywhere_with_their_reason_and_the_sender_scored() {
    use net_support::RawPeer;
    use timecoin::net::Message;

    let devnet = Devnet::start_with(4, Forger::chain_toml);
    let forger = Forger::new(&devnet);
    let coins = funded_coins(&devnet, 1, 3);
    let txs: Vec<Tx> = coins.iter().map(|c| pay(&devnet, *c, "tamper")).collect();
    let txids: Vec<Hash> = txs
        .iter()
        .map(|tx| devnet.nodes[0].submit(tx).unwrap())
        .collect();
    for node in &devnet.nodes {
        node.wait_finalized(&txids);
    }
    let proofs: Vec<(FinalityProof, Amount)> = txids
        .iter()
        .zip(coins.iter().zip(&txs))
        .map(|(txid, (coin, tx))| {
            let answer = devnet.nodes[0].call("getfinalityproof", json!([txid.to_string()]));
            let bytes = hex::decode(answer["hex"].as_str().unwrap()).unwrap();
            let paid = Amount::checked_sum(tx.outputs.iter().map(|o| o.value)).unwrap();
            let fee = coin.1.checked_sub(paid).unwrap();
            (decode(&bytes, 1 << 20, "proof").unwrap(), fee)
        })
        .collect();
    let (chain_id, genesis_hash) = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    // Pushes `block` to every node from a fresh raw peer per node (kept
    // connected, so `getpeerinfo` shows its score), in node order.
    let push = |label: &str, block: &Block| -> Vec<RawPeer> {
        devnet
            .nodes
            .iter()
            .map(|node| {
                let addr = ([127, 0, 0, 1], node.p2p_port).into();
                let mut peer = RawPeer::connect(addr, &format!("{label} {}", node.index));
                let hello = peer.recv_hello();
                peer.complete_handshake_on(chain_id, genesis_hash, hello);
                peer.send(&Message::Blocks {
                    blocks: vec![block.encode()],
                })
                .unwrap();
                peer
            })
            .collect()
    };

    // A valid block first: every node adopts it, so the forger is honest so far.
    let genesis = ChainTip {
        hash: genesis_hash,
        height: 0,
        slot: devnet.spec.config.genesis.timestamp / (SLOT_MS / 1000),
    };
    let first = forger.block(&devnet, genesis, &proofs[..1]);
    let mut connections = push("honest", &first);
    for i in 0..4 {
        wait_for(&format!("node {i} to adopt the valid block"), || {
            (tip_of(&devnet, i).hash == first.hash()).then_some(())
        });
    }
    // The validators cannot produce (the genesis registers the forger's
    // VRF keys as theirs), but they endorse: the forged block is certified.
    wait_for("the valid block to be certified", || {
        let block = devnet.nodes[0].call("getblock", json!([first.hash().to_string(), 1]));
        (block["certified"] == json!(true)).then_some(())
    });
    let parent = ChainTip {
        hash: first.hash(),
        height: 1,
        slot: first.header.slot,
    };
    // Wait for the next slot so the tampered blocks' slot follows the parent's.
    wait_for("the next slot", || {
        (SystemClock.wall().as_millis() / SLOT_MS > parent.slot).then_some(())
    });
    let valid = |entries: &[(FinalityProof, Amount)]| forger.block(&devnet, parent, entries);

    let mut bad_vrf = valid(&proofs[1..2]);
    bad_vrf.header.vrf_proof.0[0] ^= 1;
    Forger::reseal(&mut bad_vrf);

    let mut wrong_prev = valid(&proofs[1..2]);
    wrong_prev.header.prev_hash = Hash::digest(b"no such block");
    Forger::reseal(&mut wrong_prev);

    let mut unsorted = valid(&proofs[1..3]);
    unsorted.entries.reverse();
    Forger::reseal(&mut unsorted);

    let mut conflicting = valid(&proofs[1..2]);
    let mut rival = conflicting.entries[0].clone();
    rival.tx.outputs[0].address = address_of("someone else");
    conflicting.entries.push(rival);
    conflicting.entries.sort_by_key(|e| e.tx.txid());
    Forger::reseal(&mut conflicting);

    let mut short_proof = valid(&proofs[1..2]);
    short_proof.entries[0].votes.truncate(1);
    Forger::reseal(&mut short_proof);

    let mut wrong_reward = valid(&proofs[1..2]);
    wrong_reward.reward.outputs[0].value.0 += 1;
    Forger::reseal(&mut wrong_reward);

    // (label, block, the reason every node must log, whether its sender is
    // scored). A block on an unknown parent is a disagreement about the
    // chain, never a fault: a fork must not make validators ban each other.
    // The validators endorsed the first block, so it is final by now and
    // one beside it is dropped without a line (or, if not yet, logged as
    // `UnknownParent`): either way its sender must stay unscored.
    let cases = [
        ("bad vrf", bad_vrf, Some("(BadVrf)"), true),
        ("wrong prev", wrong_prev, None, false),
        ("unsorted", unsorted, Some("(EntriesNotSorted)"), true),
        (
            "conflicting",
            conflicting,
            Some("(ConflictingEntries)"),
            true,
        ),
        ("short proof", short_proof, Some("(InvalidProof)"), true),
        ("wrong reward", wrong_reward, Some("(WrongReward)"), true),
    ];
    let score_of = |node: &devnet_support::Validator, sender: &RawPeer| {
        node.call("getpeerinfo", json!([]))
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["node_id"] == hex::encode(sender.key.public().0))
            .and_then(|p| p["misbehaviour_score"].as_u64())
    };
    let mut unscored = Vec::new();
    for (label, block, reason, scored) in &cases {
        let senders = push(label, block);
        let hash = block.hash().to_string();
        for (node, sender) in devnet.nodes.iter().zip(&senders) {
            if let Some(reason) = reason {
                wait_for(
                    &format!("node {} to refuse the {label} block", node.index),
                    || {
                        node.log()
                            .lines()
                            .any(|l| l.contains(&hash) && l.contains(reason))
                            .then_some(())
                    },
                );
            }
            if *scored {
                // The score is published at the net thread's next tick.
                let what = format!("node {} to score the {label} sender", node.index);
                wait_for(&what, || score_of(node, sender).filter(|s| *s > 0));
            }
        }
        if *scored {
            connections.extend(senders);
        } else {
            unscored.push((*label, senders));
        }
    }
    // Every node asked the wrong-prev senders for blocks they never had.
    // A sender that cannot send a parent is still no fault: past two sync
    // timeouts (when an older rule scored it), their scores are still 0.
    std::thread::sleep(Duration::from_millis(2 * SYNC_REQUEST_TIMEOUT_MS + 1_000));
    for (label, senders) in &unscored {
        for (node, sender) in devnet.nodes.iter().zip(senders) {
            let score = score_of(node, sender);
            assert_eq!(
                score,
                Some(0),
                "node {} scored the {label} sender",
                node.index
            );
        }
    }
    for i in 0..4 {
        assert_eq!(
            tip_of(&devnet, i).hash,
            first.hash(),
            "node {i} adopted a tampered block"
        );
    }
}

/// Fills node 0's datadir (node stopped) with `blocks` blocks of `entries`
/// chained transfers each, finalized by validator 0 alone (one vote per
/// block over its txids), in consecutive slots after the genesis.
fn build_chain_offline(devnet: &Devnet, blocks: u64, entries: usize) {
    use timecoin::crypto::merkle::MerkleTree;
    use timecoin::finality::{FinalityVote, VoteScope};
    use timecoin::node::chain_view::block_commit;
    use timecoin::store::{FinalizedTx, LedgerBatch};
    use timecoin::types::encoding::encode;

    let spec = &devnet.spec;
    let store = devnet.store(0);
    let set = ValidatorSet::new(spec.validators.clone()).unwrap();
    let (identity, vrf) = devnet_validator_keys(0);
    let slot_clock = SlotClock::new(SLOT_MS, 500).unwrap();
    let maturity = u64::from(spec.config.ledger.reward_maturity_blocks);
    let mut coin = spec
        .genesis_outputs()
        .into_iter()
        .find(|(_, o)| o.address == devnet_support::wallet_address())
        .map(|(o, out)| (o, out.value))
        .unwrap();
    let tip = store.tip().unwrap();
    let mut parent = ChainTip {
        hash: tip.hash,
        height: tip.height,
        slot: tip.slot,
    };
    for _ in 0..blocks {
        let slot = parent.slot + 1;
        let mut txs = Vec::with_capacity(entries);
        let mut fees = Vec::with_capacity(entries);
        for _ in 0..entries {
            let tx = pay(devnet, coin, "bench");
            let change = tx.outputs.len() as u32 - 1;
            let paid = Amount::checked_sum(tx.outputs.iter().map(|o| o.value)).unwrap();
            fees.push(coin.1.checked_sub(paid).unwrap());
            coin = (tx.outpoint(change), tx.outputs[change as usize].value);
            txs.push(tx);
        }
        let mut sorted: Vec<Hash> = txs.iter().map(Tx::txid).collect();
        sorted.sort();
        let tree = MerkleTree::new(&sorted);
        let scope = VoteScope {
            chain_id: spec.chain_id(),
            genesis_hash: spec.genesis_hash(),
            epoch: 0,
        };
        let vote = FinalityVote::sign_root(&identity, scope, slot, tree.root());
        let proofs: Vec<(FinalityProof, Amount)> = txs
            .iter()
            .zip(&fees)
            .map(|(tx, fee)| {
                let index = sorted.binary_search(&tx.txid()).unwrap();
                let votes = vec![(vote.clone(), tree.path(index).unwrap())];
                (
                    FinalityProof {
                        tx: tx.clone(),
                        votes,
                    },
                    *fee,
                )
            })
            .collect();
        // In spending order: each tx spends the one before it.
        let finalized: Vec<FinalizedTx> = proofs
            .iter()
            .map(|(proof, _)| FinalizedTx {
                tx: proof.tx.clone(),
                proof: encode(proof),
                finalized_at_ms: slot_clock.slot_start_ms(slot),
            })
            .collect();
        store
            .commit_batch(&LedgerBatch {
                finalized: &finalized,
                ..LedgerBatch::default()
            })
            .unwrap();
        let now = timecoin::time::Timestamp(slot_clock.slot_start_ms(slot));
        let template = BlockTemplate {
            chain_id: spec.chain_id(),
            parent,
            slot,
            now,
            slot_clock,
            validators: &set,
            payouts: &Payouts::default(),
            parent_certificate: None,
            evidence: &[],
            heartbeats: &[],
            max_block_bytes: 1 << 20,
        };
        let block = build_block(&template, &vrf, &identity, proofs).unwrap();
        let encoded = block.encode();
        let archived: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
        store
            .apply_block(&block_commit(&block, &encoded, &archived, maturity))
            .unwrap();
        parent = ChainTip {
            hash: block.hash(),
            height: block.header.height,
            slot,
        };
    }
}

/// Sync speed from one peer and startup time over a 10,000-block chain
/// (10 transfers a block). Prints its figures; run it with
/// `cargo test --release --test blocks_devnet -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: prints figures for BENCHMARKS.md"]
fn bench_sync_from_one_peer_and_startup_with_10000_blocks() {
    const BLOCKS: u64 = 10_000;
    const ENTRIES: usize = 10;
    let ms_since = |start: timecoin::time::MonoTime| {
        SystemClock.mono().saturating_since(start).as_millis() as u64
    };
    let mut devnet = Devnet::prepare(1, |text| text);
    let start = SystemClock.mono();
    build_chain_offline(&devnet, BLOCKS, ENTRIES);
    println!(
        "built {BLOCKS} blocks x {ENTRIES} txs offline in {} ms",
        ms_since(start)
    );

    // Startup: process start to RPC up, tip loaded without replay.
    let start = SystemClock.mono();
    devnet.launch(0);
    let startup_ms = ms_since(start);
    assert!(tip_of(&devnet, 0).height >= BLOCKS);
    println!(
        "startup of a node holding {BLOCKS} blocks: {startup_ms} ms (process start to RPC up)"
    );

    // A fresh node that knows only node 0.
    let start = SystemClock.mono();
    let fresh = devnet.add_node(0);
    loop {
        if tip_of(&devnet, fresh).height >= BLOCKS {
            break;
        }
        assert!(ms_since(start) < 600_000, "sync took over 10 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sync_ms = ms_since(start).max(1);
    let txs = BLOCKS * ENTRIES as u64;
    println!(
        "sync of {BLOCKS} blocks ({txs} txs) from one peer: {sync_ms} ms, {} blocks/s, {} tx/s",
        BLOCKS * 1000 / sync_ms,
        txs * 1000 / sync_ms
    );
    let caught_up = devnet.nodes[fresh]
        .log()
        .lines()
        .rfind(|l| l.contains("sync: "))
        .unwrap_or_default()
        .to_string();
    println!("fresh node's last sync line: {caught_up}");
}
