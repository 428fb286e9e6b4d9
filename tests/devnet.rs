//! Multi-process devnet tests: real `timed` validators talking over TCP on
//! 127.0.0.1. Transfers sent to any node finalize on every node with proofs
//! that verify, every node agrees on the UTXO state, double spends settle the
//! same way everywhere, without a quorum nothing finalizes, and hostile
//! peers on the validators' host are cut off without cutting the host off.

mod devnet_support;
mod net_support;

use devnet_support::{address_of, funded_coins, percentiles, transfer, wait_for, Devnet};
use serde_json::{json, Value};
use timecoin::finality::{verify_proof, FinalityProof, ValidatorSet};
use timecoin::types::encoding::decode;
use timecoin::types::{Amount, Hash, Tx, TxOut};

fn pay(devnet: &Devnet, coin: (timecoin::types::OutPoint, Amount), to: &str) -> Tx {
    let out = TxOut {
        value: Amount::from_time(1).unwrap(),
        address: address_of(to),
    };
    transfer(&devnet.spec, coin, &[out])
}

/// Node `i`'s view of every output of `txs`: value and owner (`null` if
/// spent or unknown). `bestblock` and `confirmations` follow each node's tip.
fn outputs_seen(devnet: &Devnet, i: usize, txs: &[Tx]) -> Vec<Value> {
    let node = &devnet.nodes[i];
    txs.iter()
        .flat_map(|tx| {
            let txid = tx.txid().to_string();
            (0..tx.outputs.len()).map(move |vout| (txid.clone(), vout))
        })
        .map(|(txid, vout)| node.call("gettxout", json!([txid, vout])))
        .map(|out| match out {
            Value::Null => Value::Null,
            out => json!([out["value_units"], out["scriptPubKey"]["address"]]),
        })
        .collect()
}

/// The stored proof of `txid` on node `i` verifies against the genesis validators.
fn assert_proof_verifies(devnet: &Devnet, i: usize, txid: &Hash) {
    let answer = devnet.nodes[i].call("getfinalityproof", json!([txid.to_string()]));
    let bytes = hex::decode(answer["hex"].as_str().unwrap()).unwrap();
    let proof: FinalityProof = decode(&bytes, 1 << 20, "finality proof").unwrap();
    let set = ValidatorSet::new(devnet.spec.validators.clone()).unwrap();
    let proven = verify_proof(
        &proof,
        devnet.spec.chain_id(),
        devnet.spec.genesis_hash(),
        |_| Some(&set),
    )
    .unwrap();
    assert_eq!(proven, *txid);
}

#[test]
fn thousand_transfers_round_robin_finalize_on_every_node_with_one_utxo_state() {
    let devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 25, 40);
    let txs: Vec<Tx> = coins
        .iter()
        .enumerate()
        .map(|(i, c)| pay(&devnet, *c, &format!("r{}", i % 10)))
        .collect();
    let txids: Vec<Hash> = txs
        .iter()
        .enumerate()
        .map(|(i, tx)| devnet.nodes[i % 4].submit(tx).unwrap())
        .collect();

    for node in &devnet.nodes {
        node.wait_finalized(&txids);
    }
    // On the node each was submitted to: admission to complete proof.
    let finality_ms: Vec<u64> = txids
        .iter()
        .enumerate()
        .filter_map(|(i, txid)| devnet.nodes[i % 4].status(txid)["finality_ms"].as_u64())
        .collect();
    let reference = outputs_seen(&devnet, 0, &txs);
    assert!(
        reference.iter().all(|o| !o.is_null()),
        "an output is missing on node 0"
    );
    for i in 1..4 {
        assert_eq!(
            outputs_seen(&devnet, i, &txs),
            reference,
            "node {i} UTXO state differs"
        );
    }
    for (n, txid) in txids.iter().enumerate().step_by(50) {
        assert_proof_verifies(&devnet, n % 4, txid);
    }
    // The whole UTXO set: one digest and supply on every node at one height
    // (asked until no block lands between two answers).
    wait_for("every node to report one UTXO set at one height", || {
        let sets: Vec<Value> = devnet
            .nodes
            .iter()
            .map(|node| {
                let info = node.call("gettxoutsetinfo", json!([]));
                json!([
                    info["height"],
                    info["hash_serialized_3"],
                    info["total_amount_units"]
                ])
            })
            .collect();
        sets.windows(2).all(|w| w[0] == w[1]).then_some(())
    });
    let peers = devnet.nodes[0].call("getpeerinfo", json!([]));
    assert_eq!(peers.as_array().unwrap().len(), 3, "{peers}");
    // Each peer's tip follows its block announcements, not its handshake.
    let height = devnet.nodes[0].call("getblockcount", json!([]));
    wait_for("getpeerinfo to show every peer at our height", || {
        let peers = devnet.nodes[0].call("getpeerinfo", json!([]));
        peers
            .as_array()?
            .iter()
            .all(|p| p["tip_height"].as_u64() >= height.as_u64())
            .then_some(())
    });
    let metrics = devnet.nodes[0].client().get("/metrics").unwrap();
    let metrics = String::from_utf8(metrics.body).unwrap();
    assert!(metrics.contains("timecoin_net_peers 3"), "{metrics}");
    assert!(metrics.contains("timecoin_net_messages_in_total{type=\"votes\"}"));
    eprintln!(
        "4-node devnet, 1000 transfers round-robin: admission to proof on the submitting node ({} reports): {}",
        finality_ms.len(),
        percentiles(finality_ms)
    );
}

#[test]
fn double_spend_pairs_sent_to_two_nodes_finalize_the_same_one_everywhere() {
    let devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 2, 50);
    let pairs: Vec<(Tx, Tx)> = coins
        .iter()
        .map(|c| (pay(&devnet, *c, "left"), pay(&devnet, *c, "right")))
        .collect();
    // Each half goes to a different node from its own thread, at the same time.
    std::thread::scope(|s| {
        for half in 0..2 {
            let (devnet, pairs) = (&devnet, &pairs);
            s.spawn(move || {
                for (n, pair) in pairs.iter().enumerate() {
                    let tx = if half == 0 { &pair.0 } else { &pair.1 };
                    // The second half may be refused as a known conflict: that is fine.
                    let _ = devnet.nodes[(n + half) % 4].submit(tx);
                }
            });
        }
    });
    // Safety is asserted; a pair that no node finalizes (both halves
    // expired) is a liveness gap, counted and printed (see the report).
    let mut stuck = 0;
    for (n, (a, b)) in pairs.iter().enumerate() {
        let (a, b) = (a.txid(), b.txid());
        let mut winners = Vec::new();
        for node in &devnet.nodes {
            let what = format!("pair {n} to settle on node {}", node.index);
            let winner = wait_for(&what, || {
                match (node.status_of(&a).as_str(), node.status_of(&b).as_str()) {
                    ("finalized", "finalized") => panic!("pair {n}: both halves finalized"),
                    ("finalized", _) => Some(Some(a)),
                    (_, "finalized") => Some(Some(b)),
                    ("unknown", "unknown") => None,
                    ("expired" | "rejected" | "unknown", "expired" | "rejected" | "unknown") => {
                        Some(None)
                    }
                    _ => None,
                }
            });
            winners.push(winner);
        }
        let finalized: Vec<Hash> = winners.iter().flatten().copied().collect();
        assert!(
            finalized.iter().all(|w| *w == finalized[0]),
            "pair {n}: nodes finalized different halves: {winners:?}"
        );
        if finalized.is_empty() {
            stuck += 1;
        } else {
            assert_eq!(
                finalized.len(),
                4,
                "pair {n}: finalized on some nodes only: {winners:?}"
            );
        }
    }
    eprintln!("double spends: {} of 100 pairs finalized one half on every node, {stuck} expired unresolved", 100 - stuck);
}

#[test]
fn without_a_quorum_nothing_finalizes_and_with_it_back_everything_does() {
    let mut devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 1, 20);
    devnet.stop(2);
    devnet.stop(3);
    let txs: Vec<Tx> = coins.iter().map(|c| pay(&devnet, *c, "stalled")).collect();
    let txids: Vec<Hash> = txs
        .iter()
        .map(|tx| devnet.nodes[0].submit(tx).unwrap())
        .collect();
    // Let node 0 fail a good number of polls on them: still nothing finalizes.
    let failed_before = polls_failed(&devnet, 0);
    wait_for("node 0 to fail 20 polls", || {
        (polls_failed(&devnet, 0) >= failed_before + 20).then_some(())
    });
    for node in devnet.running() {
        for txid in &txids {
            assert_ne!(
                node.status_of(txid),
                "finalized",
                "{txid} finalized without quorum"
            );
        }
    }
    devnet.launch(2);
    devnet.launch(3);
    devnet.wait_connected();
    for node in &devnet.nodes {
        node.wait_finalized(&txids);
    }
}

fn polls_failed(devnet: &Devnet, i: usize) -> u64 {
    devnet.nodes[i].call("getconsensusinfo", json!([]))["polls_failed"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_killed_validator_restarts_with_everything_finalized_meanwhile() {
    let mut devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 4, 50);
    let txs: Vec<Tx> = coins.iter().map(|c| pay(&devnet, *c, "kill")).collect();
    let (before, during) = txs.split_at(100);
    let before: Vec<Hash> = before
        .iter()
        .enumerate()
        .map(|(i, tx)| devnet.nodes[i % 4].submit(tx).unwrap())
        .collect();
    // Load keeps going to nodes 0-2 while node 3 is SIGKILLed.
    let (during, reported) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            during
                .iter()
                .enumerate()
                .map(|(i, tx)| devnet.nodes[i % 3].submit(tx).unwrap())
                .collect::<Vec<Hash>>()
        });
        // What node 3 reported finalized just before its SIGKILL.
        let reported: Vec<Hash> = before
            .iter()
            .filter(|t| devnet.nodes[3].status_of(t) == "finalized")
            .copied()
            .collect();
        devnet.nodes[3].sigkill();
        (load.join().unwrap(), reported)
    });
    devnet.reap(3);
    for node in devnet.running() {
        node.wait_finalized(&before);
        node.wait_finalized(&during);
    }
    devnet.launch(3);
    devnet.wait_connected();
    let restarted = &devnet.nodes[3];
    for txid in &reported {
        assert_eq!(
            restarted.status_of(txid),
            "finalized",
            "{txid} lost at restart"
        );
    }
    restarted.wait_finalized(&before);
    restarted.wait_finalized(&during);
}

#[test]
fn hostile_peers_are_cut_off_while_the_validators_keep_finalizing() {
    use net_support::RawPeer;
    use timecoin::consensus::messages::ConsensusMessage;
    use timecoin::net::frame::encode_frame;
    use timecoin::net::rate_limit::DESIGN_TX_PER_SEC;
    use timecoin::net::{Hello, Message, PollLoad, RateLimits, PROTOCOL_VERSION};
    use timecoin::types::ChainId;

    let devnet = Devnet::start(4);
    let coins = funded_coins(&devnet, 4, 50);
    let target: std::net::SocketAddr = ([127, 0, 0, 1], devnet.nodes[0].p2p_port).into();
    let (chain_id, genesis_hash) = (devnet.spec.chain_id(), devnet.spec.genesis_hash());
    let hello_on = |peer: &RawPeer, chain_id: ChainId| {
        Message::Hello(Hello {
            chain_id,
            genesis_hash,
            version: PROTOCOL_VERSION,
            node_id: peer.key.public(),
            listen_addr: None,
            tip_height: 0,
            nonce: Hash::digest(b"hostile nonce"),
        })
    };
    // All on 127.0.0.1, the validators' own host: that is never banned by
    // IP (it would cut the validators off), so each hostile peer is closed
    // and, once it has proven an id, banned by that id.
    let labels = [
        "garbage",
        "gib",
        "wrong-chain",
        "bad-sig",
        "flood",
        "no-read",
    ];
    let mut peers: Vec<RawPeer> = labels.iter().map(|l| RawPeer::connect(target, l)).collect();
    let hellos: Vec<Hello> = peers.iter_mut().map(|p| p.recv_hello()).collect();
    let [garbage, gib, wrong_chain, bad_sig, flood, no_read] = &mut peers[..] else {
        unreachable!()
    };
    flood.complete_handshake_on(chain_id, genesis_hash, hellos[4].clone());
    no_read.complete_handshake_on(chain_id, genesis_hash, hellos[5].clone());

    // Load runs while the hostile peers act.
    let txs: Vec<Tx> = coins.iter().map(|c| pay(&devnet, *c, "hostile")).collect();
    let txids: Vec<Hash> = txs
        .iter()
        .enumerate()
        .map(|(i, tx)| devnet.nodes[i % 4].submit(tx).unwrap())
        .collect();

    let mut payload = 0x0001u16.to_le_bytes().to_vec(); // a Hello tag over garbage
    payload.extend_from_slice(&[0xA5; 200]);
    garbage
        .send_raw(&encode_frame(&payload, 1 << 20).unwrap())
        .unwrap();
    garbage.expect_closed();
    gib.send_raw(&(1u32 << 30).to_le_bytes()).unwrap();
    gib.expect_closed();
    let wrong = hello_on(wrong_chain, ChainId(99));
    wrong_chain.send(&wrong).unwrap();
    wrong_chain.expect_closed();
    let right = hello_on(bad_sig, chain_id);
    bad_sig.send(&right).unwrap();
    let forged = bad_sig.key.sign(b"not the node's nonce");
    bad_sig
        .send(&Message::HelloAck { signature: forged })
        .unwrap();
    bad_sig.expect_closed();
    // Three times the poll budget a peer has at once (sized for the chain
    // at the design load), in full queries.
    let per_query = devnet.spec.config.consensus.max_txs_per_query as u64;
    let load = PollLoad::for_chain(&devnet.spec, DESIGN_TX_PER_SEC);
    let budget = u64::from(RateLimits::for_load(&load).poll.burst);
    let frames: Vec<u8> = (0..3 * budget / per_query)
        .flat_map(|i| {
            let txids = (0..per_query)
                .map(|j| Hash::digest(&(i * per_query + j).to_le_bytes()))
                .collect();
            let query = Message::Consensus(ConsensusMessage::Query {
                request_id: i,
                txids,
            });
            encode_frame(&query.encode(), 1 << 20).unwrap()
        })
        .collect();
    let _ = flood.send_raw(&frames); // the node may hang up mid-write
    flood.expect_closed();
    let mut late = RawPeer::connect(target, "late");
    late.recv_hello();

    for node in &devnet.nodes {
        node.wait_finalized(&txids);
    }
    let info = devnet.nodes[0].call("getnetworkinfo", json!([]));
    assert!(
        info["misbehaviour_disconnects"].as_u64().unwrap() >= 5,
        "{info}"
    );
    // The peer that never reads is still only a bounded queue; validators stayed linked.
    assert!(info["connections"].as_u64().unwrap() >= 3, "{info}");
}
