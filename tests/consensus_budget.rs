//! DESIGN §8 inside the engine, one rule per test: what a peer sends that
//! no honest node sends is reported (`Output::Misbehaved`), stale or
//! duplicate data is not; every signature check is charged to the sending
//! peer's work budget, validators' budgets are larger than strangers', and
//! work over budget is dropped, not queued.

mod consensus_support;

use consensus_support::*;
use std::sync::Arc;
use timecoin::consensus::{
    ConsensusMessage, Engine, Misbehaviour, NodeId, Output, PeerWork, WorkBudgetParams,
};
use timecoin::crypto::Keypair;
use timecoin::finality::{ProofError, WindowError, WindowVote};
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
        let (keys, set) = validator_set(&[1; 4]);
        let now = MonoTime(1_000_000);
        let mut config = engine_config(devnet_params(), 11);
        config.limits.work_budget = params;
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
        events(&self.log).iter().any(
            |e| matches!(e, timecoin::consensus::Event::Finalized { tx, .. } if tx.txid() == *txid),
        )
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
