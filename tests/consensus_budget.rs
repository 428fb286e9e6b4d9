//! DESIGN §8 inside the engine, one rule per test: what a peer sends that
//! no honest node sends is reported (`Output::Misbehaved`), stale or
//! duplicate data is not; every signature check is charged to the sending
//! peer's work budget, validators' budgets are larger than strangers', and
//! work over budget is dropped, not queued.

mod consensus_support;

use consensus_support::*;
use timecoin::consensus::{ConsensusMessage, Engine, Misbehaviour, NodeId, Output};
use timecoin::crypto::Keypair;
use timecoin::finality::{ProofError, WindowError, WindowVote};
use timecoin::time::Timestamp;
use timecoin::types::Hash;

/// Validator 0 of four equal validators, driven by hand.
struct Node {
    engine: Engine,
    keys: Vec<Keypair>,
    wallet: Wallet,
    now: Timestamp,
    log: Vec<Output>,
}

impl Node {
    fn new() -> Node {
        let (keys, set) = validator_set(&[1; 4]);
        let now = Timestamp(1_000_000);
        let engine = Engine::new(
            engine_config(devnet_params(), 11),
            set,
            Some(keys[0].clone()),
            now,
        );
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
    ConsensusMessage::WindowVote(Box::new(WindowVote::sign(
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
    ConsensusMessage::WindowVote(Box::new(window))
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
    node.deliver(attacker, ConsensusMessage::WindowVote(Box::new(swapped)));
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
    node.deliver(relay, ConsensusMessage::WindowVote(Box::new(future)));
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
