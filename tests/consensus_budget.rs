//! DESIGN §8 inside the engine, one rule per test: what a peer sends that
//! no honest node sends is reported (`Output::Misbehaved`), stale or
//! duplicate data is not; every signature check is charged to the sending
//! peer's work budget, validators' budgets are larger than strangers', and
//! work over budget is dropped, not queued. Stuck work (issue 13 finding
//! 7): expired txs are fetched again on demand, early proofs wait for
//! their parent, accepted-but-unproven txs are re-asked of the missing
//! validators with a capped doubling gap, and their number is capped.

mod consensus_support;

use consensus_support::*;
use std::sync::Arc;
use timecoin::consensus::{
    ConsensusMessage, Engine, EngineLimits, Event, Misbehaviour, NodeId, Output, PeerWork,
    SubmitError, UnprovenLimits, Verdict, WorkBudgetParams,
};
use timecoin::crypto::Keypair;
use timecoin::finality::{ProofError, WindowError, WindowVote};
use timecoin::mempool::TxStatus;
use timecoin::time::MonoTime;
use timecoin::types::{Hash, Tx};

/// Validator 0 of four equal validators, driven by hand.
struct Node {
    engine: Engine,
    keys: Vec<Keypair>,
    wallet: Wallet,
    now: MonoTime,
    log: Vec<Output>,
}

impl Node {
    fn new() -> Node {
        Node::with_budget(WorkBudgetParams::default())
    }

    fn with_budget(params: WorkBudgetParams) -> Node {
        Node::with_limits(|limits| limits.work_budget = params)
    }

    fn with_limits(edit: impl FnOnce(&mut EngineLimits)) -> Node {
        let (keys, set) = validator_set(&[1; 4]);
        let now = MonoTime(1_000_000);
        let mut config = engine_config(devnet_params(), 11);
        edit(&mut config.limits);
        let engine = Engine::new(config, set, Some(keys[0].clone()), now);
        Node {
            engine,
            keys,
            wallet: Wallet::funded(64),
            now,
            log: Vec::new(),
        }
    }

    fn id(&self, i: usize) -> NodeId {
        self.keys[i].public()
    }

    fn deliver(&mut self, from: NodeId, msg: ConsensusMessage) {
        self.engine
            .handle_message(self.now, from, msg, &self.wallet.utxos);
        self.log.extend(drain(&mut self.engine));
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
        self.engine.handle_timeout(self.now, &self.wallet.utxos);
        self.log.extend(drain(&mut self.engine));
    }

    /// Every `Misbehaved` report so far, and clears them.
    fn reports(&mut self) -> Vec<(NodeId, Misbehaviour)> {
        let mut out = Vec::new();
        self.log.retain(|o| match o {
            Output::Misbehaved { peer, reason } => {
                out.push((*peer, reason.clone()));
                false
            }
            _ => true,
        });
        out
    }

    fn finalized(&self, txid: &Hash) -> bool {
        events(&self.log)
            .iter()
            .any(|e| matches!(e, Event::Finalized { tx, .. } if tx.txid() == *txid))
    }
}

fn stranger() -> Keypair {
    Keypair::from_seed_label("budget test stranger")
}

fn window_msg(key: &Keypair, seq: u64, txids: &[Hash]) -> ConsensusMessage {
    ConsensusMessage::WindowVote(Arc::new(WindowVote::sign(
        key,
        scope(0),
        seq,
        txids.to_vec(),
    )))
}

/// A window of validator `key` whose signature is another window's.
fn forged_window(key: &Keypair, seq: u64, txids: &[Hash]) -> ConsensusMessage {
    let mut window = WindowVote::sign(key, scope(0), seq, txids.to_vec());
    window.vote.sig = WindowVote::sign(key, scope(0), seq + 1, txids.to_vec())
        .vote
        .sig;
    ConsensusMessage::WindowVote(Arc::new(window))
}

fn txid_of(n: u64) -> Hash {
    Hash::digest(&n.to_le_bytes())
}

#[test]
fn provably_invalid_windows_and_proofs_are_reported_as_faults() {
    let mut node = Node::new();
    let attacker = stranger().public();
    let txids = [txid_of(1), txid_of(2)];
    // A window signed by a key outside the set.
    node.deliver(attacker, window_msg(&stranger(), 1, &txids));
    // A validator's window with a signature that does not verify.
    node.deliver(attacker, forged_window(&node.keys[1], 1, &txids));
    // A validator's window whose txids are not what it signed.
    let mut swapped = WindowVote::sign(&node.keys[2], scope(0), 1, txids.to_vec());
    swapped.txids[0] = Hash([0xff; 32]);
    swapped.txids.sort();
    node.deliver(attacker, ConsensusMessage::WindowVote(Arc::new(swapped)));
    // A proof two votes short of the quorum.
    let tx = node.wallet.pay(0, "alice");
    let short = signed_proof(&tx, &node.keys[1..2], 0, &[]);
    node.deliver(attacker, ConsensusMessage::Proof(short));
    let reports = node.reports();
    let reasons: Vec<Misbehaviour> = reports.iter().map(|(_, r)| r.clone()).collect();
    assert!(reports.iter().all(|(peer, _)| *peer == attacker));
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0], Misbehaviour::OutsiderWindow);
    assert_eq!(reasons[1], Misbehaviour::ForgedWindow);
    assert!(matches!(
        reasons[2],
        Misbehaviour::MalformedWindow(WindowError::WrongRoot | WindowError::Unsorted)
    ));
    assert!(matches!(
        reasons[3],
        Misbehaviour::InvalidProof(ProofError::ShortWeight { .. })
    ));
    assert!(reasons.iter().all(Misbehaviour::is_fault));
    assert!(!node.finalized(&tx.txid()));
}

#[test]
fn stale_duplicate_and_unknown_epoch_data_is_not_a_fault() {
    let mut node = Node::new();
    let relay = node.id(1);
    let tx = node.wallet.pay(0, "alice");
    let txid = tx.txid();
    node.deliver(relay, ConsensusMessage::Tx(tx.clone()));
    let windows: Vec<ConsensusMessage> = (1..4)
        .map(|v| window_msg(&node.keys[v], 1, &[txid]))
        .collect();
    for w in &windows {
        node.deliver(relay, w.clone());
    }
    assert!(node.finalized(&txid));
    // Relay copies, a window of an epoch we do not know yet, a proof of a
    // tx final here and a proof of an unknown epoch: dropped, never faults.
    for w in &windows {
        node.deliver(node.id(2), w.clone());
    }
    let future = WindowVote::sign(&node.keys[3], scope(1), 2, vec![txid_of(9)]);
    node.deliver(relay, ConsensusMessage::WindowVote(Arc::new(future)));
    let proof = signed_proof(&tx, &node.keys[1..4], 0, &[]);
    node.deliver(relay, ConsensusMessage::Proof(proof));
    let other = node.wallet.pay(1, "bob");
    let unknown_epoch = signed_proof(&other, &node.keys[1..4], 5, &[]);
    node.deliver(relay, ConsensusMessage::Proof(unknown_epoch));
    let faults: Vec<_> = node
        .reports()
        .into_iter()
        .filter(|(_, r)| r.is_fault())
        .collect();
    assert!(faults.is_empty(), "{faults:?}");
}

/// The engine's budgets for these tests: small, so floods are short.
fn small_budget() -> WorkBudgetParams {
    WorkBudgetParams {
        validator_units_per_s: 1_000,
        validator_burst_units: 400,
        stranger_units_per_s: 10,
        stranger_burst_units: 50,
        peers: 64,
    }
}

impl Node {
    fn signatures_checked(&self) -> u64 {
        self.engine.metrics().signatures_verified
    }

    fn work_of(&self, peer: &NodeId) -> PeerWork {
        self.engine
            .peer_work()
            .find(|(p, _)| p == peer)
            .map_or(PeerWork::default(), |(_, w)| w)
    }
}

#[test]
fn a_strangers_forged_flood_costs_at_most_its_budget_while_validators_windows_count() {
    let params = small_budget();
    let mut node = Node::with_budget(params);
    let attacker = stranger().public();
    let txs: Vec<Tx> = (0..20).map(|i| node.wallet.pay(i, "payee")).collect();
    let honest = node.id(1);
    for tx in &txs {
        node.deliver(honest, ConsensusMessage::Tx(tx.clone()));
    }
    let flood_ms = 2_000;
    let mut forged_sent = 0u64;
    // Each 10 ms: 20 forged windows and 5 forged proofs from the stranger
    // (fresh seqs, so dedupe cannot help), and the validators' real
    // windows for one of the honest txs.
    for step in 0..(flood_ms / 10) {
        for i in 0..20u64 {
            let seq = step * 100 + i + 10;
            let voter = &node.keys[1 + (i as usize % 3)];
            node.deliver(attacker, forged_window(voter, seq, &[txid_of(seq)]));
            forged_sent += 1;
        }
        for i in 0..5usize {
            let target = &txs[(step as usize + i) % txs.len()];
            let mut proof = signed_proof(target, &node.keys[1..4], 0, &[txid_of(step)]);
            proof.votes[0].0.sig = proof.votes[1].0.sig;
            node.deliver(attacker, ConsensusMessage::Proof(proof));
            forged_sent += 1;
        }
        if let Some(tx) = txs.get(step as usize) {
            let txid = tx.txid();
            for v in 1..4 {
                let key = node.keys[v].clone();
                node.deliver(node.id(v), window_msg(&key, 1 + step, &[txid]));
            }
        }
        node.advance(10);
    }
    let budget = params.stranger_burst_units + params.stranger_units_per_s * flood_ms / 1_000;
    let spent = node.work_of(&attacker);
    assert!(spent.charged <= budget, "{spent:?} over {budget}");
    assert!(
        spent.dropped > forged_sent / 2,
        "{spent:?} of {forged_sent}"
    );
    // Signature checks the attacker caused: everything but the 60 honest windows.
    let honest_checks = 3 * txs.len() as u64;
    assert!(
        node.signatures_checked() <= honest_checks + budget,
        "{} checks",
        node.signatures_checked()
    );
    for tx in &txs {
        assert!(
            node.finalized(&tx.txid()),
            "validators' windows still count"
        );
    }
    let validator = node.work_of(&honest);
    assert_eq!(validator.dropped, 0, "{validator:?}");
    let faults = node
        .reports()
        .iter()
        .filter(|(p, _)| *p == attacker)
        .count();
    assert!(faults > 0, "what was checked is reported");
}

#[test]
fn a_validator_gets_a_larger_budget_than_a_stranger() {
    let params = small_budget();
    let mut node = Node::with_budget(params);
    let attacker = stranger().public();
    let faulty = node.id(3);
    // Same forged flood, at one instant, from a stranger and from a validator.
    for seq in 10..1_010u64 {
        let voter = node.keys[1].clone();
        node.deliver(attacker, forged_window(&voter, seq, &[txid_of(seq)]));
        node.deliver(faulty, forged_window(&voter, seq, &[txid_of(seq)]));
    }
    // One unit for the leaf lookup, one for the signature.
    assert_eq!(node.work_of(&attacker).charged, params.stranger_burst_units);
    assert_eq!(node.work_of(&faulty).charged, params.validator_burst_units);
}

/// `Votes` answers the node sent `to`.
fn answers_to(log: &[Output], to: &NodeId) -> usize {
    log.iter()
        .filter(
            |o| matches!(o, Output::Send { to: t, msg: ConsensusMessage::Votes { .. } } if t == to),
        )
        .count()
}

#[test]
fn queries_are_answered_within_the_askers_budget_and_a_validators_is_larger() {
    let params = small_budget();
    let mut node = Node::with_budget(params);
    let attacker = stranger().public();
    let validator = node.id(1);
    let full = u64::from(devnet_params().max_txs_per_query);
    let txids: Vec<Hash> = (0..full).map(txid_of).collect();
    let cost = 2; // one unit for the message, one for its 64 lookups
                  // Both send as many full queries, at one instant, as the validator's burst buys.
    let sent = params.validator_burst_units / cost;
    for request_id in 0..sent {
        for from in [attacker, validator] {
            let txids = txids.clone();
            node.deliver(from, ConsensusMessage::Query { request_id, txids });
        }
    }
    let bought = params.stranger_burst_units / cost;
    assert_eq!(answers_to(&node.log, &attacker) as u64, bought);
    assert_eq!(node.work_of(&attacker).dropped, sent - bought);
    assert_eq!(answers_to(&node.log, &validator) as u64, sent);
    assert_eq!(node.work_of(&validator).dropped, 0);
    // The budget refills: a second later the stranger buys its rate's worth.
    node.log.clear();
    node.advance(1_000);
    for request_id in 0..sent {
        let txids = txids.clone();
        node.deliver(attacker, ConsensusMessage::Query { request_id, txids });
    }
    assert_eq!(
        answers_to(&node.log, &attacker) as u64,
        params.stranger_units_per_s / cost
    );
}

#[test]
fn replayed_proofs_and_old_windows_of_final_txs_cost_no_signature_check() {
    let mut node = Node::with_budget(small_budget());
    let relay = node.id(1);
    let tx = node.wallet.pay(0, "alice");
    let txid = tx.txid();
    let proof = signed_proof(&tx, &node.keys[1..4], 0, &[]);
    node.deliver(relay, ConsensusMessage::Proof(proof.clone()));
    assert!(node.finalized(&txid));
    // The ledger commits it: only the store knows it from now on.
    node.wallet.utxos.apply(&tx);
    node.engine.handle_durable(node.now, &[txid]);
    let windows: Vec<WindowVote> = (1..4)
        .map(|v| WindowVote::sign(&node.keys[v], scope(0), 5, vec![txid]))
        .collect();
    for w in &windows {
        node.deliver(relay, ConsensusMessage::WindowVote(Arc::new(w.clone())));
    }
    let newer: Vec<WindowVote> = (1..4)
        .map(|v| WindowVote::sign(&node.keys[v], scope(0), 6, vec![txid_of(1)]))
        .collect();
    for w in &newer {
        node.deliver(relay, ConsensusMessage::WindowVote(Arc::new(w.clone())));
    }
    let checks = node.signatures_checked();
    let attacker = stranger().public();
    for _ in 0..1_000 {
        node.deliver(attacker, ConsensusMessage::Proof(proof.clone()));
    }
    // Old windows (below each voter's newest) listing only final txids,
    // as a stranger replays them with their seqs forgotten.
    for w in &windows {
        let mut replay = w.clone();
        replay.vote.sig = newer[0].vote.sig;
        node.deliver(attacker, ConsensusMessage::WindowVote(Arc::new(replay)));
    }
    assert_eq!(node.signatures_checked(), checks);
    assert_eq!(node.engine.metrics().proofs_stale, 1_000);
    assert!(node.reports().is_empty());
}

/// Stuck work: a tx this node let expire is fetched again when a
/// validator later polls it here (it answers `Unknown` and asks), and the
/// fetched copy is admitted despite the recent expiry.
#[test]
fn a_tx_that_expired_here_is_fetched_again_on_demand() {
    let mut node = Node::new();
    let peer = node.id(1);
    let tx = node.wallet.pay(0, "alice");
    let txid = tx.txid();
    node.deliver(peer, ConsensusMessage::Tx(tx.clone()));
    node.advance(devnet_params().mempool_expiry_ms + 1);
    assert_eq!(
        node.engine.tx_status(&txid).map(|s| s.status),
        Some(timecoin::mempool::TxStatus::Expired)
    );
    let start = node.log.len();
    node.deliver(
        peer,
        ConsensusMessage::Query {
            request_id: 5,
            txids: vec![txid],
        },
    );
    let asked = sent_to(&node.log[start..], &peer)
        .into_iter()
        .any(|m| matches!(m, ConsensusMessage::GetTxs { txids } if txids == [txid]));
    assert!(asked, "fetched again on demand");
    node.deliver(peer, ConsensusMessage::Txs { txs: vec![tx] });
    assert_eq!(
        node.engine.tx_status(&txid).map(|s| s.status),
        Some(timecoin::mempool::TxStatus::Sampling)
    );
}

/// Stuck work: a proof whose tx spends an output of a tx unknown here is
/// kept, and applied as soon as its parent's proof arrives.
#[test]
fn a_proof_arriving_before_its_parents_is_applied_when_the_parent_finalizes() {
    let mut node = Node::new();
    let relay = node.id(1);
    let parent = node.wallet.pay(0, "wallet again");
    let to_wallet = parent
        .outputs
        .iter()
        .position(|o| o.address == timecoin::types::Address::from_pubkey(&node.wallet.key.public()))
        .unwrap();
    let child = node.wallet.spend(
        timecoin::types::OutPoint {
            txid: parent.txid(),
            vout: to_wallet as u32,
        },
        parent.outputs[to_wallet].value,
        "child payee",
    );
    let signers = node.keys[1..4].to_vec();
    node.deliver(
        relay,
        ConsensusMessage::Proof(signed_proof(&child, &signers, 0, &[])),
    );
    assert!(!node.finalized(&child.txid()));
    assert_eq!(node.engine.metrics().proofs_orphaned, 1);
    node.deliver(
        relay,
        ConsensusMessage::Proof(signed_proof(&parent, &signers, 0, &[])),
    );
    assert!(node.finalized(&parent.txid()));
    assert!(node.finalized(&child.txid()), "the waiting proof applied");
}

/// Re-asks in these tests: 100 ms, then doubling up to 400 ms.
fn quick_reasks(max_txs: usize) -> UnprovenLimits {
    UnprovenLimits {
        max_txs,
        first_ms: 100,
        max_ms: 400,
    }
}

impl Node {
    /// Accepts `tx` as if restored from the vote-safety record (accepted
    /// and durable at once): our window covers it, nobody else's does.
    fn accept(&mut self, tx: &Tx) -> Hash {
        let txid = self
            .engine
            .restore_accepted(self.now, tx.clone(), &self.wallet.utxos)
            .unwrap();
        self.log.extend(drain(&mut self.engine));
        txid
    }

    /// Every `(ms since start, validator index)` that was sent a `Query`
    /// naming `txid`, stepping 10 ms at a time for `ms`.
    fn queries_naming(&mut self, txid: &Hash, ms: u64) -> Vec<(u64, usize)> {
        let start = self.now;
        let mut asked = Vec::new();
        for _ in 0..ms / 10 {
            let from = self.log.len();
            self.advance(10);
            let elapsed = self.now.as_millis() - start.as_millis();
            for v in 1..4 {
                let named = sent_to(&self.log[from..], &self.id(v)).into_iter().any(
                    |m| matches!(m, ConsensusMessage::Query { txids, .. } if txids.contains(txid)),
                );
                if named {
                    asked.push((elapsed, v));
                }
            }
        }
        asked
    }

    fn status(&self, txid: &Hash) -> Option<TxStatus> {
        self.engine.tx_status(txid).map(|s| s.status)
    }
}

/// The distinct times in `asked`, and the validators asked at each.
fn rounds(asked: &[(u64, usize)]) -> Vec<(u64, Vec<usize>)> {
    let mut out: Vec<(u64, Vec<usize>)> = Vec::new();
    for &(at, v) in asked {
        match out.last_mut() {
            Some((t, vs)) if *t == at => vs.push(v),
            _ => out.push((at, vec![v])),
        }
    }
    out
}

#[test]
fn an_accepted_tx_without_its_proof_is_reasked_of_the_missing_validators_with_a_doubling_gap() {
    let mut node = Node::with_limits(|l| l.unproven = quick_reasks(64));
    let tx = node.wallet.pay(0, "stuck");
    let txid = node.accept(&tx);
    // Only our own vote: 1 of the 3 needed. Re-asks at 100, 300, 700,
    // 1,100 ms (gaps 100, 200, 400, 400), each of validators 1-3.
    let asked = rounds(&node.queries_naming(&txid, 1_200));
    assert_eq!(
        asked,
        vec![
            (100, vec![1, 2, 3]),
            (300, vec![1, 2, 3]),
            (700, vec![1, 2, 3]),
            (1_100, vec![1, 2, 3]),
        ]
    );
    // Validator 1's window arrives (at 1,200 ms): it is not asked again,
    // and the gap starts over. The look at 1,500 sees the new vote and
    // skips; re-asks follow at 1,600, 1,800 and 2,200 ms.
    let window = window_msg(&node.keys[1].clone(), 1, &[txid]);
    node.deliver(node.id(1), window);
    let asked = rounds(&node.queries_naming(&txid, 1_000));
    assert_eq!(
        asked,
        vec![(400, vec![2, 3]), (600, vec![2, 3]), (1_000, vec![2, 3])]
    );
    assert_eq!(node.status(&txid), Some(TxStatus::LocallyAccepted));
    assert_eq!(node.engine.metrics().unproven_reasked, 7);
    // An answer to a re-ask is no poll's: dropped, not counted as stray.
    let answer = ConsensusMessage::Votes {
        request_id: 0,
        verdicts: vec![(txid, Verdict::Valid)],
    };
    node.deliver(node.id(2), answer);
    assert_eq!(node.engine.metrics().votes_dropped, 0);
    // Its proof completes: no more re-asks.
    node.deliver(node.id(2), window_msg(&node.keys[2].clone(), 1, &[txid]));
    assert!(node.finalized(&txid));
    assert!(node.queries_naming(&txid, 2_000).is_empty());
}

#[test]
fn at_the_cap_of_unproven_txs_new_admissions_are_refused_and_acceptances_kept() {
    let mut node = Node::with_limits(|l| l.unproven = quick_reasks(2));
    let accepted: Vec<Tx> = (0..3).map(|i| node.wallet.pay(i, "accepted")).collect();
    // Restoring the vote-safety record is never refused, even past the cap.
    for tx in &accepted {
        node.accept(tx);
    }
    let late = node.wallet.pay(3, "late");
    assert_eq!(
        node.engine
            .handle_submit(node.now, late.clone(), &node.wallet.utxos),
        Err(SubmitError::UnprovenBacklog { held: 3, max: 2 })
    );
    let from_peer = node.wallet.pay(4, "from a peer");
    node.deliver(node.id(1), ConsensusMessage::Tx(from_peer.clone()));
    assert_eq!(node.status(&from_peer.txid()), None);
    // Polled about a tx it lacks: `Unknown`, and no fetch.
    let start = node.log.len();
    let unknown = txid_of(77);
    node.deliver(
        node.id(1),
        ConsensusMessage::Query {
            request_id: 1,
            txids: vec![unknown],
        },
    );
    let answers = sent_to(&node.log[start..], &node.id(1));
    assert!(answers.iter().any(|m| matches!(m,
        ConsensusMessage::Votes { verdicts, .. } if verdicts == &[(unknown, Verdict::Unknown)])));
    assert!(!answers
        .iter()
        .any(|m| matches!(m, ConsensusMessage::GetTxs { .. })));
    for tx in &accepted {
        assert_eq!(node.status(&tx.txid()), Some(TxStatus::LocallyAccepted));
    }
    // Two proofs complete: room again.
    let signers = node.keys[1..4].to_vec();
    for tx in &accepted[..2] {
        node.deliver(
            node.id(1),
            ConsensusMessage::Proof(signed_proof(tx, &signers, 0, &[])),
        );
        assert!(node.finalized(&tx.txid()));
    }
    assert_eq!(
        node.engine
            .handle_submit(node.now, late, &node.wallet.utxos),
        Ok(node.wallet.pay(3, "late").txid())
    );
    assert_eq!(node.engine.metrics().txs_refused_unproven, 2);
}

/// The stuck case re-asks are for: a tx accepted here that the other
/// validators never got (or dropped) is decided once re-asked, since a
/// validator that lacks a polled tx fetches it.
#[test]
fn a_tx_the_other_validators_never_got_is_finalized_once_reasked() {
    let wallet = Wallet::funded(4);
    let mut cluster = Cluster::new(&[1; 4], devnet_params(), &wallet.utxos, 5);
    let tx = wallet.pay(0, "accepted alone");
    let txid = tx.txid();
    // Node 0 accepted it before a crash; the others never heard of it.
    for down in 1..4 {
        cluster.down[down] = true;
    }
    let (now, ledger) = (cluster.now, cluster.ledgers[0].clone());
    cluster.engines[0]
        .restore_accepted(now, tx, &ledger)
        .unwrap();
    cluster.run_for(100);
    for down in 1..4 {
        cluster.down[down] = false;
    }
    cluster.run_for(1_000);
    assert!(
        cluster.finalized_at(&txid).is_empty(),
        "nobody re-asked yet"
    );
    cluster.run_for(10_000);
    let mut finalized = cluster.finalized_at(&txid);
    finalized.sort_unstable();
    assert_eq!(finalized, vec![0, 1, 2, 3]);
}
