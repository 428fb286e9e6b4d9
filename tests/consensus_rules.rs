//! The rules of DESIGN §4–5, one test each, driving the real `Engine`: an
//! observer engine whose validators are played by the test, or a small
//! cluster of engines joined by a deterministic in-test message pump.

mod consensus_support;

use consensus_support::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::Arc;
use timecoin::consensus::{
    ConsensusMessage, Engine, EpochCommittee, Event, Misbehaviour, NodeId, Output, RejectReason,
    SnowballParams, SubmitError, TxStatusReport, Verdict,
};
use timecoin::crypto::merkle::MerkleTree;
use timecoin::crypto::Keypair;
use timecoin::finality::{verify_proof, EvidenceError, FinalityProof, ValidatorSet, WindowVote};
use timecoin::mempool::TxStatus;
use timecoin::time::MonoTime;
use timecoin::types::{Hash, Tx, Validator, VrfPublicBytes};

/// Devnet parameters with a chosen `beta` and one poll at a time per tx,
/// so tests can count polls one by one.
fn sequential(beta: u32) -> SnowballParams {
    SnowballParams {
        beta,
        max_concurrent_polls: 1,
        ..devnet_params()
    }
}

/// A query the engine sent, still waiting for its answer.
#[derive(Clone, Debug)]
struct Query {
    to: NodeId,
    request_id: u64,
    txids: Vec<Hash>,
}

/// One engine that is not a validator itself; the test plays its validators.
struct Observer {
    engine: Engine,
    keys: Vec<Keypair>,
    wallet: Wallet,
    params: SnowballParams,
    now: MonoTime,
    pending: Vec<Query>,
    log: Vec<Output>,
    /// The next seq of the windows the test signs for its validators.
    next_seq: u64,
    /// The epoch those windows name.
    epoch: u64,
}

impl Observer {
    fn new(weights: &[u64], params: SnowballParams) -> Observer {
        Observer::with_identity(weights, params, None)
    }

    /// The engine is validator `me` itself: it answers its own polls inline
    /// and signs finality votes; the test plays the others.
    fn validator(weights: &[u64], params: SnowballParams, me: usize) -> Observer {
        Observer::with_identity(weights, params, Some(me))
    }

    fn with_identity(weights: &[u64], params: SnowballParams, me: Option<usize>) -> Observer {
        let (keys, set) = validator_set(weights);
        let now = MonoTime(1_000_000);
        let identity = me.map(|i| keys[i].clone());
        let mut config = engine_config(params, 7);
        // Not a validator, but it polls, so the test can play every validator.
        config.observer_polls = me.is_none();
        let engine = Engine::new(config, set, identity, now);
        Observer {
            engine,
            keys,
            wallet: Wallet::funded(32),
            params,
            now,
            pending: Vec::new(),
            log: Vec::new(),
            next_seq: 1,
            epoch: 0,
        }
    }

    fn id(&self, i: usize) -> NodeId {
        self.keys[i].public()
    }

    fn submit(&mut self, tx: Tx) -> Result<Hash, SubmitError> {
        let r = self.engine.handle_submit(self.now, tx, &self.wallet.utxos);
        self.pump();
        r
    }

    fn deliver(&mut self, from: NodeId, msg: ConsensusMessage) {
        self.engine
            .handle_message(self.now, from, msg, &self.wallet.utxos);
        self.pump();
    }

    /// Runs what is due now and collects outputs (queries kept as pending).
    fn pump(&mut self) {
        loop {
            while let Some(out) = self.engine.poll_output() {
                if let Output::Send {
                    to,
                    msg: ConsensusMessage::Query { request_id, txids },
                } = &out
                {
                    self.pending.push(Query {
                        to: *to,
                        request_id: *request_id,
                        txids: txids.clone(),
                    });
                }
                self.log.push(out);
            }
            match self.engine.poll_timeout() {
                Some(t) if t <= self.now => {
                    self.engine.handle_timeout(self.now, &self.wallet.utxos)
                }
                _ => return,
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
        self.engine.handle_timeout(self.now, &self.wallet.utxos);
        self.pump();
    }

    /// Answers every pending sampling query: validator `v` says
    /// `verdict(v, txid)` about each txid; validators in `silent` say nothing.
    fn answer(&mut self, silent: &[usize], verdict: impl Fn(usize, &Hash) -> Verdict) {
        let queries: Vec<Query> = std::mem::take(&mut self.pending);
        for q in queries {
            let v = self.keys.iter().position(|k| k.public() == q.to).unwrap();
            if silent.contains(&v) {
                continue;
            }
            let verdicts = q.txids.iter().map(|t| (*t, verdict(v, t))).collect();
            self.deliver(
                q.to,
                ConsensusMessage::Votes {
                    request_id: q.request_id,
                    verdicts,
                },
            );
        }
    }

    /// [`Observer::answer`] for a poll that fails: the next poll of the tx
    /// waits one poll interval, so the clock moves on to it.
    fn fail_poll(&mut self, silent: &[usize], verdict: impl Fn(usize, &Hash) -> Verdict) {
        self.answer(silent, verdict);
        self.advance(self.params.poll_interval_ms());
    }

    fn status(&self, txid: &Hash) -> TxStatusReport {
        self.engine.tx_status(txid).expect("engine knows the tx")
    }

    fn events(&self) -> Vec<Event> {
        events(&self.log)
    }

    /// The verdicts the engine gives validator `asker` about `txids`.
    fn ask(&mut self, asker: usize, txids: &[Hash]) -> Vec<Verdict> {
        let from = self.id(asker);
        let start = self.log.len();
        self.deliver(
            from,
            ConsensusMessage::Query {
                request_id: 99,
                txids: txids.to_vec(),
            },
        );
        sent_to(&self.log[start..], &from)
            .into_iter()
            .find_map(|m| match m {
                ConsensusMessage::Votes { verdicts, .. } => {
                    Some(verdicts.into_iter().map(|(_, v)| v).collect())
                }
                _ => None,
            })
            .expect("a Votes reply")
    }

    /// A window vote of validator `v` over `txids`, with its next seq.
    fn window(&mut self, v: usize, txids: &[Hash]) -> WindowVote {
        self.next_seq += 1;
        WindowVote::sign(
            &self.keys[v],
            scope(self.epoch),
            self.next_seq,
            txids.to_vec(),
        )
    }

    /// Validators in `signers` each deliver a window vote over `txids`.
    fn window_votes(&mut self, signers: &[usize], txids: &[Hash]) {
        for &v in signers {
            let window = self.window(v, txids);
            self.deliver(self.id(v), ConsensusMessage::WindowVote(Arc::new(window)));
        }
    }

    /// The window votes the engine broadcast.
    fn own_windows(&self) -> Vec<WindowVote> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Broadcast {
                    msg: ConsensusMessage::WindowVote(w),
                    ..
                } => Some((**w).clone()),
                _ => None,
            })
            .collect()
    }

    fn finalized(&self, txid: &Hash) -> Option<FinalityProof> {
        self.events().into_iter().find_map(|e| match e {
            Event::Finalized { tx, proof } if tx.txid() == *txid => Some(proof),
            _ => None,
        })
    }
}

fn all_valid(_: usize, _: &Hash) -> Verdict {
    Verdict::Valid
}

#[test]
fn sample_size_scales_k_and_alpha_for_small_sets() {
    let p = devnet_params(); // k 20, alpha 14
    let table = [
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
        (4, 4, 3),
        (5, 5, 4),
        (7, 7, 5),
        (10, 10, 7),
        (19, 19, 14),
        (20, 20, 14),
        (100, 20, 14),
    ];
    for (n, k, alpha) in table {
        let s = p.sample_size(n);
        assert_eq!((s.k, s.alpha), (k, alpha), "n = {n}");
    }
    let engine_sees = Observer::new(&[1; 4], p).engine.sample_size();
    assert_eq!((engine_sees.k, engine_sees.alpha), (4, 3));
}

#[test]
fn sampling_is_proportional_to_stake() {
    let weights = [1u64, 2, 3, 4, 10];
    let params = SnowballParams {
        k: 1,
        alpha: 1,
        beta: u32::MAX,
        // 1 ms polls: 20,000 failed ones (20 s) end before mempool expiry.
        poll_timeout_ms: 1,
        ..sequential(1)
    };
    let mut o = Observer::new(&weights, params);
    let tx = o.wallet.pay(0, "payee");
    o.submit(tx).unwrap();
    let rounds = 20_000;
    let mut hits = [0u64; 5];
    for _ in 0..rounds {
        assert_eq!(o.pending.len(), 1, "k' = 1: one query per poll");
        let to = o.pending[0].to;
        hits[o.keys.iter().position(|k| k.public() == to).unwrap()] += 1;
        o.fail_poll(&[], |_, _| Verdict::Unknown);
    }
    let total: u64 = weights.iter().sum();
    let chi2: f64 = weights
        .iter()
        .zip(hits)
        .map(|(&w, h)| {
            let expected = rounds as f64 * w as f64 / total as f64;
            (h as f64 - expected).powi(2) / expected
        })
        .sum();
    // 4 degrees of freedom: P(chi2 > 18.47) = 0.001 for a fair sampler.
    assert!(chi2 < 18.47, "chi2 = {chi2}, hits = {hits:?}");
}

#[test]
fn preference_ties_break_to_lowest_txid() {
    for first_low in [true, false] {
        let mut o = Observer::new(&[1; 4], sequential(20));
        let a = o.wallet.pay(0, "alice");
        let b = o.wallet.pay(0, "bob");
        let (low, high) = if a.txid() < b.txid() { (a, b) } else { (b, a) };
        let (first, second) = if first_low {
            (low.clone(), high.clone())
        } else {
            (high.clone(), low.clone())
        };
        let peer = o.id(1);
        o.deliver(peer, ConsensusMessage::Tx(first));
        o.deliver(peer, ConsensusMessage::Tx(second));
        assert_eq!(
            o.ask(2, &[low.txid(), high.txid()]),
            [Verdict::Valid, Verdict::Invalid],
            "low txid delivered first: {first_low}"
        );
    }
}

#[test]
fn preference_switches_to_the_higher_counter() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let a = o.wallet.pay(0, "alice");
    let b = o.wallet.pay(0, "bob");
    let (low, high) = if a.txid() < b.txid() { (a, b) } else { (b, a) };
    let peer = o.id(1);
    o.deliver(peer, ConsensusMessage::Tx(low.clone()));
    o.deliver(peer, ConsensusMessage::Tx(high.clone()));
    assert_eq!(o.ask(0, &[low.txid(), high.txid()])[0], Verdict::Valid);
    let winner = high.txid();
    let verdict = |_, t: &Hash| {
        if *t == winner {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    };
    // `high`'s first poll waited for the answers to `low`'s: two rounds.
    o.answer(&[], verdict);
    o.answer(&[], verdict);
    assert_eq!(o.status(&high.txid()).counter, 1);
    assert_eq!(o.status(&low.txid()).counter, 0);
    assert_eq!(
        o.ask(0, &[low.txid(), high.txid()]),
        [Verdict::Invalid, Verdict::Valid]
    );
}

/// Four equal validators are all asked in every poll, so a 2–2 split in
/// which each side had one early success never varies: no poll of either
/// side reaches alpha' = 3. After beta failed polls of both, the counters
/// restart and the node falls back to the lowest txid, as every honest node
/// does, so the split resolves instead of waiting for expiry.
#[test]
fn a_conflict_stuck_for_beta_polls_falls_back_to_the_lowest_txid() {
    let params = sequential(20);
    let mut o = Observer::new(&[1; 4], params);
    let a = o.wallet.pay(0, "alice");
    let b = o.wallet.pay(0, "bob");
    let (low, high) = if a.txid() < b.txid() { (a, b) } else { (b, a) };
    let peer = o.id(1);
    o.deliver(peer, ConsensusMessage::Tx(high.clone()));
    o.answer(&[], all_valid);
    o.deliver(peer, ConsensusMessage::Tx(low.clone()));
    assert_eq!(o.status(&high.txid()).counter, 1);
    let ours = [low.txid(), high.txid()];
    assert_eq!(o.ask(0, &ours), [Verdict::Invalid, Verdict::Valid]);
    // Validators 0 and 1 back `high`, 2 and 3 back `low`: every poll fails.
    let split = |v: usize, t: &Hash| match (v < 2, *t == ours[1]) {
        (true, true) | (false, false) => Verdict::Valid,
        _ => Verdict::Invalid,
    };
    let mut rounds = 0;
    while o.status(&high.txid()).counter == 1 {
        o.fail_poll(&[], split);
        rounds += 1;
        assert!(rounds <= 2 * params.beta, "the split never restarted");
    }
    assert!(o.status(&high.txid()).polls_completed > params.beta);
    assert_eq!(o.engine.metrics().stuck_conflicts_restarted, 1);
    assert_eq!(o.ask(0, &ours), [Verdict::Valid, Verdict::Invalid]);
    assert_eq!(o.status(&high.txid()).status, TxStatus::Sampling);
}

#[test]
fn failed_poll_resets_confidence_but_keeps_counter() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    for _ in 0..3 {
        o.answer(&[], all_valid);
    }
    let s = o.status(&txid);
    assert_eq!((s.counter, s.confidence), (3, 3));
    // Two Valid out of four is below alpha' = 3.
    o.answer(&[], |v, _| {
        if v < 2 {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    });
    let s = o.status(&txid);
    assert_eq!((s.counter, s.confidence, s.polls_completed), (3, 0, 4));
}

#[test]
fn local_acceptance_after_exactly_beta_polls() {
    let beta = 5;
    let mut o = Observer::new(&[1; 4], sequential(beta));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    let accepted = |o: &Observer| o.events().contains(&Event::LocallyAccepted { txid });
    for poll in 1..=beta {
        assert!(!accepted(&o), "accepted before poll {poll}");
        o.answer(&[], all_valid);
        assert_eq!(o.status(&txid).polls_completed, poll);
    }
    assert!(accepted(&o));
    assert_eq!(o.status(&txid).status, TxStatus::LocallyAccepted);
    // Accepted is not finalized: no proof, so no Finalized event.
    assert!(!o
        .events()
        .iter()
        .any(|e| matches!(e, Event::Finalized { .. })));
}

/// Polls are pipelined: a new one starts every `poll_timeout / max` while
/// fewer than `max_concurrent_polls` of the tx are unanswered, never more.
#[test]
fn at_most_max_concurrent_polls_of_a_tx_are_outstanding() {
    let params = SnowballParams {
        max_concurrent_polls: 3,
        ..devnet_params()
    };
    let mut o = Observer::new(&[1; 4], params);
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    let step = params.poll_interval_ms();
    let mut outstanding = vec![o.status(&txid).polls_outstanding];
    // Stay inside the first poll's deadline: nothing completes meanwhile.
    while o.now.plus_ms(step) < MonoTime(1_000_000).plus_ms(params.poll_timeout_ms) {
        o.advance(step);
        outstanding.push(o.status(&txid).polls_outstanding);
    }
    assert_eq!(outstanding, [1, 2, 3, 3]);
    // k' = 4 validators asked by the first poll; the next polls' slots wait
    // for each validator's answer to it, not a query each.
    assert_eq!(o.pending.len(), 4);
    assert!(o.pending.iter().all(|q| q.txids == [txid]));
    // Each answer lets one more poll of the tx out to that validator: never
    // two of one tx in a query (one answer would count twice).
    o.answer(&[], |_, _| Verdict::Valid);
    assert_eq!(o.pending.len(), 4);
    assert!(o.pending.iter().all(|q| q.txids == [txid]));
}

/// Window votes are counted once per voter, relayed once, and finalize at
/// the quorum, whatever order they arrive in relative to acceptance.
#[test]
fn window_votes_finalize_at_the_quorum_and_each_counts_once() {
    let mut o = Observer::new(&[1; 4], sequential(2));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    // A vote before any poll completed still counts.
    o.window_votes(&[0], &[txid, Hash::digest(b"another tx")]);
    let s = o.status(&txid);
    assert_eq!((s.proof_weight, s.proof_needed), (1, 3));
    // The relay copy of that window, and a second window of validator 0, add nothing.
    let first = o.window(0, &[txid]);
    let relays = |o: &Observer| {
        o.log
            .iter()
            .filter(|out| {
                matches!(
                    out,
                    Output::Broadcast {
                        msg: ConsensusMessage::WindowVote(_),
                        ..
                    } | Output::RelayToObservers {
                        msg: ConsensusMessage::WindowVote(_),
                        ..
                    }
                )
            })
            .count()
    };
    o.deliver(
        o.id(1),
        ConsensusMessage::WindowVote(Arc::new(first.clone())),
    );
    o.deliver(o.id(2), ConsensusMessage::WindowVote(Arc::new(first)));
    assert_eq!(o.status(&txid).proof_weight, 1);
    assert_eq!(o.engine.metrics().windows_duplicate, 1);
    assert_eq!(relays(&o), 2, "each new window is relayed once");
    o.window_votes(&[1, 2], &[txid]);
    let proof = o.finalized(&txid).expect("three of four votes finalize");
    let (_, set) = validator_set(&[1; 4]);
    assert_eq!(
        verify_proof(&proof, CHAIN, GENESIS, |_| Some(&set)),
        Ok(txid)
    );
    // Relays never go back to the sender or to the voter.
    for out in &o.log {
        if let Output::Broadcast {
            msg: ConsensusMessage::WindowVote(w),
            skip,
        }
        | Output::RelayToObservers {
            msg: ConsensusMessage::WindowVote(w),
            skip,
        } = out
        {
            assert!(skip.contains(&w.vote.voter) && skip.len() == 2, "{skip:?}");
        }
    }
}

#[test]
fn malformed_foreign_or_forged_windows_count_for_nothing() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    let good = o.window(0, &[txid]);
    let mut unsorted = o.window(1, &[txid, Hash::ZERO]);
    unsorted.txids.reverse();
    let mut forged = o.window(2, &[txid]);
    forged.vote.voter = o.id(3);
    let stranger = Keypair::from_seed_label("not a validator");
    let outsider = WindowVote::sign(&stranger, scope(0), 1, vec![txid]);
    let other_genesis = WindowVote::sign(
        &o.keys[1],
        timecoin::finality::VoteScope {
            genesis_hash: Hash::ZERO,
            ..scope(0)
        },
        1,
        vec![txid],
    );
    let mut wrong_root = good.clone();
    wrong_root.vote.seq += 100;
    wrong_root.txids = vec![Hash::ZERO];
    for bad in [unsorted, forged, outsider, other_genesis, wrong_root] {
        o.deliver(o.id(1), ConsensusMessage::WindowVote(Arc::new(bad)));
    }
    assert_eq!(o.engine.metrics().bad_finality_votes, 5);
    assert_eq!(o.status(&txid).proof_weight, 0);
    o.deliver(o.id(1), ConsensusMessage::WindowVote(Arc::new(good)));
    assert_eq!(o.status(&txid).proof_weight, 1);
}

#[test]
fn a_gap_in_a_voters_seqs_is_asked_of_the_relay_and_answered_from_memory() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    let early = o.window(0, &[Hash::digest(b"a")]);
    o.deliver(
        o.id(1),
        ConsensusMessage::WindowVote(Arc::new(early.clone())),
    );
    let skipped = o.window(0, &[txid]);
    let late = o.window(0, &[Hash::digest(b"b")]);
    let start = o.log.len();
    o.deliver(o.id(2), ConsensusMessage::WindowVote(Arc::new(late)));
    let asked: Vec<ConsensusMessage> = sent_to(&o.log[start..], &o.id(2));
    assert!(asked.contains(&ConsensusMessage::GetWindowVote {
        voter: o.id(0),
        seq: skipped.vote.seq
    }));
    o.deliver(o.id(2), ConsensusMessage::WindowVote(Arc::new(skipped)));
    assert_eq!(o.status(&txid).proof_weight, 1);
    // A peer that missed the early window gets it from us.
    let start = o.log.len();
    o.deliver(
        o.id(3),
        ConsensusMessage::GetWindowVote {
            voter: o.id(0),
            seq: early.vote.seq,
        },
    );
    assert_eq!(
        sent_to(&o.log[start..], &o.id(3)),
        vec![ConsensusMessage::WindowVote(Arc::new(early))]
    );
}

/// An observer that saw validator 3 sign two spends of coin 0 in two
/// windows; returns their txids.
fn caught_equivocating() -> (Observer, Hash, Hash) {
    caught_equivocating_across(|_| {})
}

/// [`caught_equivocating`] with `between` run between the two windows.
fn caught_equivocating_across(between: impl FnOnce(&mut Observer)) -> (Observer, Hash, Hash) {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let (x, y) = (o.wallet.pay(0, "x"), o.wallet.pay(0, "y"));
    let (tx_x, tx_y) = (x.txid(), y.txid());
    o.deliver(o.id(1), ConsensusMessage::Tx(x));
    o.deliver(o.id(2), ConsensusMessage::Tx(y));
    o.window_votes(&[3], &[tx_x]);
    between(&mut o);
    o.window_votes(&[3], &[tx_y]);
    (o, tx_x, tx_y)
}

#[test]
fn a_voter_signing_two_spends_of_one_outpoint_is_reported() {
    let (mut o, tx_x, tx_y) = caught_equivocating();
    assert!(o.events().contains(&Event::Equivocation {
        voter: o.id(3),
        outpoint: o.wallet.coins[0],
        first: tx_x,
        second: tx_y,
    }));
    assert_eq!(o.engine.metrics().equivocations, 1);
    // The engine hands its evidence to the driver once; it verifies offline.
    let evidence: Vec<_> = o
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::WindowEvidence { evidence, from } => Some((evidence, from)),
            _ => None,
        })
        .collect();
    assert_eq!(evidence.len(), 1);
    let (evidence, from) = evidence[0].clone();
    assert_eq!(from, None);
    let set = o.engine.validators().clone();
    assert_eq!(
        evidence.verify(CHAIN, GENESIS, |epoch| set.for_epoch(epoch)),
        Ok((o.id(3), o.wallet.coins[0]))
    );
    // The same evidence from a peer is known: neither kept again nor blamed.
    let start = o.log.len();
    o.deliver(o.id(1), ConsensusMessage::WindowEvidence(evidence.clone()));
    assert!(o.log[start..].is_empty());
    // Forged evidence from a peer is that peer's fault.
    let mut forged = (*evidence).clone();
    // Another coin (a new key), but the signed roots do not cover these txs.
    for side in [&mut forged.first, &mut forged.second] {
        side.tx.inputs[0].prev.vout = 99;
    }
    o.deliver(o.id(2), ConsensusMessage::WindowEvidence(Box::new(forged)));
    assert!(o.log[start..].iter().any(|out| matches!(out,
        Output::Misbehaved { peer, reason: Misbehaviour::InvalidEvidence(EvidenceError::WrongPath(_)) }
            if *peer == o.id(2))));
    assert_eq!(o.engine.metrics().evidence_invalid, 1);
}

#[test]
fn verified_window_evidence_from_a_peer_is_kept_and_relayed_once() {
    let (caught, _, _) = caught_equivocating();
    let evidence = caught
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::WindowEvidence { evidence, .. } => Some(evidence),
            _ => None,
        })
        .unwrap();
    // A node that never saw either tx learns it from the evidence alone.
    let mut o = Observer::new(&[1; 4], sequential(20));
    o.deliver(o.id(1), ConsensusMessage::WindowEvidence(evidence.clone()));
    o.deliver(o.id(2), ConsensusMessage::WindowEvidence(evidence.clone()));
    let kept: Vec<_> = o
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::WindowEvidence { .. }))
        .collect();
    assert_eq!(
        kept,
        vec![Event::WindowEvidence {
            evidence,
            from: Some(o.id(1))
        }]
    );
}

#[test]
fn only_validators_poll() {
    let (_, set) = validator_set(&[1; 4]);
    let wallet = Wallet::funded(1);
    let now = MonoTime(1_000_000);
    let mut engine = Engine::new(engine_config(sequential(20), 7), set, None, now);
    engine
        .handle_submit(now, wallet.pay(0, "payee"), &wallet.utxos)
        .unwrap();
    engine.handle_timeout(now.plus_ms(5_000), &wallet.utxos);
    assert_eq!(engine.metrics().polls_started, 0);
    assert!(drain(&mut engine).iter().all(|o| !matches!(
        o,
        Output::Send {
            msg: ConsensusMessage::Query { .. },
            ..
        }
    )));
    // The same engine with the test knob polls, and finalizes from votes either way.
    let mut o = Observer::new(&[1; 4], sequential(20));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    assert!(!o.pending.is_empty());
    o.window_votes(&[0, 1, 2], &[txid]);
    assert!(o.finalized(&txid).is_some());
}

#[test]
fn invalid_quorum_for_beta_consecutive_polls_rejects() {
    let beta = 4;
    let mut o = Observer::new(&[1; 4], sequential(beta));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    for _ in 0..beta - 1 {
        o.fail_poll(&[], |_, _| Verdict::Invalid);
    }
    // A poll without an Invalid quorum breaks the run.
    o.fail_poll(&[], |v, _| {
        if v == 0 {
            Verdict::Invalid
        } else {
            Verdict::Unknown
        }
    });
    for _ in 0..beta - 1 {
        o.fail_poll(&[], |_, _| Verdict::Invalid);
    }
    assert_eq!(o.status(&txid).status, TxStatus::Sampling);
    o.fail_poll(&[], |_, _| Verdict::Invalid);
    assert!(o.events().contains(&Event::Rejected {
        txid,
        reason: RejectReason::InvalidQuorum
    }));
    assert_eq!(o.status(&txid).status, TxStatus::Rejected);
}

#[test]
fn responder_never_says_valid_for_both_sides_of_a_double_spend() {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    for _trial in 0..20 {
        let mut o = Observer::new(&[1; 4], devnet_params());
        let a = o.wallet.pay(0, "alice");
        let b = o.wallet.pay(0, "bob");
        let peer = o.id(1);
        o.deliver(peer, ConsensusMessage::Tx(a.clone()));
        o.deliver(peer, ConsensusMessage::Tx(b.clone()));
        for _round in 0..60 {
            let verdicts: Vec<u32> = (0..8).map(|_| rng.next_u32() % 3).collect();
            let (ta, tb) = (a.txid(), b.txid());
            o.answer(&[], |v, t| {
                let i = v * 2 + usize::from(*t == tb);
                debug_assert!(*t == ta || *t == tb);
                [Verdict::Valid, Verdict::Invalid, Verdict::Unknown][verdicts[i] as usize]
            });
            let answer = o.ask(2, &[ta, tb]);
            assert!(
                answer != [Verdict::Valid, Verdict::Valid],
                "Valid for both sides"
            );
            if rng.next_u32() % 4 == 0 {
                o.advance(60);
            }
        }
    }
}

#[test]
fn unknown_tx_is_answered_unknown_and_fetched_from_the_asker() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let tx = o.wallet.pay(0, "payee");
    let txid = tx.txid();
    let asker = o.id(1);
    assert_eq!(o.ask(1, &[txid]), [Verdict::Unknown]);
    assert!(sent_to(&o.log, &asker).contains(&ConsensusMessage::GetTxs { txids: vec![txid] }));
    // Another peer cannot push it through the fetch path.
    o.deliver(
        o.id(2),
        ConsensusMessage::Txs {
            txs: vec![tx.clone()],
        },
    );
    assert_eq!(o.engine.metrics().txs_unsolicited, 1);
    assert!(o.engine.tx_status(&txid).is_none());
    o.deliver(
        asker,
        ConsensusMessage::Txs {
            txs: vec![tx.clone()],
        },
    );
    assert!(o.events().contains(&Event::Accepted { txid }));
    // Relayed, but not back to the peer it came from.
    assert!(o.log.contains(&Output::Broadcast {
        msg: ConsensusMessage::Tx(tx),
        skip: vec![asker],
    }));
    assert_eq!(o.ask(1, &[txid]), [Verdict::Valid]);
}

#[test]
fn a_poll_ends_at_its_deadline_or_once_decided_and_missing_answers_are_not_valid() {
    let params = sequential(20);
    let mut o = Observer::new(&[1; 4], params);
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    // Two Valid, two silent: incomplete until the deadline, then a failure.
    o.answer(&[2, 3], all_valid);
    assert_eq!(o.status(&txid).polls_completed, 0);
    o.advance(params.poll_timeout_ms - 1);
    assert_eq!(o.status(&txid).polls_completed, 0);
    o.advance(1);
    let s = o.status(&txid);
    assert_eq!((s.polls_completed, s.counter, s.confidence), (1, 0, 0));
    // The failed poll's successor starts one poll interval later. Three
    // Valid, one silent: alpha' = 3 is reached and the poll ends without
    // waiting for the silent one.
    assert!(o.pending.is_empty());
    o.advance(params.poll_interval_ms());
    o.answer(&[3], all_valid);
    let s = o.status(&txid);
    assert_eq!((s.polls_completed, s.counter, s.confidence), (2, 1, 1));
}

#[test]
fn batched_queries_respect_max_txs_per_query() {
    let params = SnowballParams {
        max_txs_per_query: 8,
        ..sequential(20)
    };
    let mut o = Observer::new(&[1; 4], params);
    let txs: Vec<Tx> = (0..20).map(|i| o.wallet.pay(i, "payee")).collect();
    for tx in &txs {
        // Submitted in one burst: the first polls start together.
        o.engine
            .handle_submit(o.now, tx.clone(), &o.wallet.utxos)
            .unwrap();
    }
    o.pump();
    for v in 0..4 {
        let to_v: Vec<&Query> = o.pending.iter().filter(|q| q.to == o.id(v)).collect();
        let sizes: Vec<usize> = to_v.iter().map(|q| q.txids.len()).collect();
        assert_eq!(sizes, [8, 8, 4], "validator {v}");
        let mut seen: Vec<Hash> = to_v.iter().flat_map(|q| q.txids.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 20, "each txid once per validator");
    }
    // Oversized queries from peers are dropped whole.
    let many: Vec<Hash> = (0..9u8).map(|i| Hash([i; 32])).collect();
    o.deliver(
        o.id(1),
        ConsensusMessage::Query {
            request_id: 1,
            txids: many,
        },
    );
    assert_eq!(o.engine.metrics().messages_oversized, 1);
}

#[test]
fn votes_for_a_request_the_sender_was_not_asked_are_dropped() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    let q = o.pending[0].clone();
    let impostor = o
        .keys
        .iter()
        .map(Keypair::public)
        .find(|id| *id != q.to)
        .unwrap();
    for (from, request_id) in [(impostor, q.request_id), (q.to, 12_345)] {
        o.deliver(
            from,
            ConsensusMessage::Votes {
                request_id,
                verdicts: vec![(txid, Verdict::Valid)],
            },
        );
    }
    assert_eq!(o.engine.metrics().votes_dropped, 2);
    assert_eq!(o.engine.metrics().verdicts_processed, 0);
}

#[test]
fn expiry_releases_locks_so_the_outpoint_can_be_spent_again() {
    let params = sequential(20);
    let mut o = Observer::new(&[1; 4], params);
    let first = o.wallet.pay(0, "alice");
    let txid = o.submit(first).unwrap();
    let second = o.wallet.pay(0, "bob");
    assert!(matches!(
        o.submit(second.clone()),
        Err(SubmitError::OutpointLocked { by, .. }) if by == txid
    ));
    o.advance(params.mempool_expiry_ms);
    assert!(o.events().contains(&Event::Expired { txid }));
    assert_eq!(o.status(&txid).status, TxStatus::Expired);
    let again = o.submit(second).unwrap();
    assert_eq!(o.status(&again).status, TxStatus::Sampling);
}

#[test]
fn with_half_the_validators_unreachable_a_tx_stays_pending_then_expires() {
    let params = devnet_params();
    let wallet = Wallet::funded(2);
    let mut c = Cluster::new(&[10; 4], params, &wallet.utxos, 1);
    c.down[2] = true;
    c.down[3] = true;
    let tx = wallet.pay(0, "payee");
    let txid = c.submit(0, tx);
    c.run_for(params.mempool_expiry_ms - 1);
    for node in 0..2 {
        let s = c.engines[node].tx_status(&txid).unwrap();
        assert_eq!(s.status, TxStatus::Sampling, "node {node}");
        assert_eq!(s.counter, 0, "node {node}: no poll can reach alpha' = 3");
        assert!(s.polls_completed > 100, "node {node} kept polling");
    }
    // Node 1 heard of it one message latency later, so expires that much later.
    c.run_for(1 + c.latency_ms);
    for node in 0..2 {
        assert_eq!(
            c.engines[node].tx_status(&txid).unwrap().status,
            TxStatus::Expired
        );
    }
    assert_eq!(c.count_events(|e| matches!(e, Event::Expired { .. })), 2);
    assert_eq!(
        c.count_events(|e| matches!(e, Event::Finalized { .. } | Event::LocallyAccepted { .. })),
        0,
        "no timer may accept or finalize"
    );
    // The lock is gone: the same coin can be spent by a new transaction.
    let retry = wallet.pay(0, "someone else");
    c.engines[0]
        .handle_submit(c.now, retry, &c.ledgers[0])
        .unwrap();
}

#[test]
fn four_validators_finalize_a_payment_with_a_valid_proof() {
    let wallet = Wallet::funded(2);
    let mut c = Cluster::new(&[10, 10, 10, 10], devnet_params(), &wallet.utxos, 2);
    let tx = wallet.pay(0, "payee");
    let txid = c.submit(0, tx.clone());
    c.run_for(5_000);
    let mut nodes = c.finalized_at(&txid);
    nodes.sort();
    assert_eq!(nodes, [0, 1, 2, 3]);
    let (_, set) = validator_set(&[10, 10, 10, 10]);
    for proof in c.proofs_of(&txid) {
        assert_eq!(
            verify_proof(&proof, CHAIN, GENESIS, |_| Some(&set)),
            Ok(txid)
        );
    }
    for node in 0..4 {
        let s = c.engines[node].tx_status(&txid).unwrap();
        assert_eq!((s.status, s.durable), (TxStatus::Finalized, true));
        // The ledger applied it: the payee's output exists.
        assert!(c.ledgers[node].entries().any(|(op, _)| op.txid == txid));
    }
}

#[test]
fn double_spend_finalizes_exactly_one() {
    for seed in 0..6 {
        let wallet = Wallet::funded(1);
        let mut c = Cluster::new(&[10; 5], devnet_params(), &wallet.utxos, seed);
        let a = wallet.pay(0, "alice");
        let b = wallet.pay(0, "bob");
        c.submit(0, a.clone());
        c.submit(3, b.clone());
        c.run_for(10_000);
        let fa = c.finalized_at(&a.txid());
        let fb = c.finalized_at(&b.txid());
        assert!(
            fa.is_empty() || fb.is_empty(),
            "seed {seed}: both finalized"
        );
        assert_eq!(
            fa.len() + fb.len(),
            5,
            "seed {seed}: every node finalizes one"
        );
        assert_eq!(
            c.count_events(|e| matches!(e, Event::SafetyViolation { .. })),
            0
        );
    }
}

#[test]
fn a_proof_finalizes_without_sampling_and_is_not_relayed() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let tx = o.wallet.pay(0, "payee");
    let txid = tx.txid();
    let keys = o.keys[..3].to_vec();
    let proof = signed_proof(&tx, &keys, 0, &[Hash([7; 32])]);
    o.deliver(o.id(0), ConsensusMessage::Proof(proof.clone()));
    assert!(o.events().contains(&Event::Finalized {
        tx: tx.clone(),
        proof: proof.clone()
    }));
    assert!(o.pending.is_empty(), "no poll for a proven tx");
    assert_eq!(o.engine.metrics().signatures_verified, 3);
    o.deliver(o.id(1), ConsensusMessage::Proof(proof.clone()));
    // Every node assembles proofs from the window votes it relays: a proof
    // (catch-up) is never gossiped on, and a second copy costs nothing.
    assert!(!o.log.iter().any(|out| matches!(
        out,
        Output::Broadcast {
            msg: ConsensusMessage::Proof(_),
            ..
        }
    )));
    assert_eq!(o.engine.metrics().signatures_verified, 3);
    assert_eq!(o.status(&txid).status, TxStatus::Finalized);
}

/// A proof for a tx the ledger already holds durably (learned from a
/// block) still settles the conflict here: the pending double spend is
/// rejected at once instead of polling until expiry.
#[test]
fn a_proof_for_a_tx_already_durable_rejects_its_pending_conflicts() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let a = o.wallet.pay(0, "alice");
    let b = o.wallet.pay(0, "bob");
    o.submit(a.clone()).unwrap();
    o.wallet.utxos.apply(&b);
    let proof = signed_proof(&b, &o.keys[..3], 0, &[]);
    o.deliver(o.id(0), ConsensusMessage::Proof(proof));
    assert!(o.events().contains(&Event::Rejected {
        txid: a.txid(),
        reason: RejectReason::ConflictFinalized { winner: b.txid() }
    }));
}

#[test]
fn payments_chain_on_finalized_outputs_before_they_are_durable() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let parent = o.wallet.pay(0, "payee");
    let keys = o.keys[..3].to_vec();
    o.deliver(
        o.id(0),
        ConsensusMessage::Proof(signed_proof(&parent, &keys, 0, &[])),
    );
    // Spend the parent's change output: only the engine's overlay knows it.
    let change = parent.outpoint(1);
    let value = parent.outputs[1].value;
    let child = o.wallet.spend(change, value, "next payee");
    let txid = o.submit(child).unwrap();
    assert_eq!(o.status(&txid).status, TxStatus::Sampling);
    // Once durable, the ledger's view must carry it; the overlay forgets it.
    o.engine.handle_durable(o.now, &[parent.txid()]);
    assert!(o.status(&parent.txid()).durable);
}

#[test]
fn conflicting_proofs_raise_a_safety_violation_and_halt_finalization() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let a = o.wallet.pay(0, "alice");
    let b = o.wallet.pay(0, "bob");
    // Three of four validators (75 %) equivocate: both proofs are valid.
    let keys = o.keys[..3].to_vec();
    o.deliver(
        o.id(0),
        ConsensusMessage::Proof(signed_proof(&a, &keys, 0, &[])),
    );
    o.deliver(
        o.id(0),
        ConsensusMessage::Proof(signed_proof(&b, &keys, 0, &[])),
    );
    let proof_b = signed_proof(&b, &keys, 0, &[]);
    assert!(o.events().contains(&Event::SafetyViolation {
        outpoint: o.wallet.coins[0],
        finalized: a.txid(),
        conflicting: b.txid(),
        conflicting_proof: Box::new(proof_b),
    }));
    assert!(o.engine.is_halted());
    let other = o.wallet.pay(1, "carol");
    o.deliver(
        o.id(0),
        ConsensusMessage::Proof(signed_proof(&other, &keys, 0, &[])),
    );
    let finalized = o
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Finalized { .. }))
        .count();
    assert_eq!(finalized, 1, "nothing finalizes after the violation");
}

#[test]
fn each_finality_vote_signature_is_verified_once() {
    let wallet = Wallet::funded(2);
    let mut c = Cluster::new(&[10; 4], devnet_params(), &wallet.utxos, 3);
    let txid = c.submit(0, wallet.pay(0, "payee"));
    c.run_for(5_000);
    assert_eq!(c.finalized_at(&txid).len(), 4);
    for (node, engine) in c.engines.iter().enumerate() {
        let m = engine.metrics();
        // Proofs by gossip repeat votes already collected: no second check.
        assert!(
            m.signatures_verified <= 4,
            "node {node}: {} verifications",
            m.signatures_verified
        );
    }
}

#[test]
fn fetches_are_bounded_per_peer() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let per_peer = timecoin::consensus::EngineLimits::default().max_fetches_per_peer;
    let peer = o.id(1);
    for round in 0..(per_peer / 64 + 2) {
        let txids: Vec<Hash> = (0..64u32)
            .map(|i| Hash::digest(&(round as u32 * 64 + i).to_le_bytes()))
            .collect();
        o.deliver(
            peer,
            ConsensusMessage::Query {
                request_id: round as u64,
                txids,
            },
        );
    }
    let asked: usize = sent_to(&o.log, &peer)
        .iter()
        .map(|m| match m {
            ConsensusMessage::GetTxs { txids } => txids.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(asked, per_peer);
    assert!(o.engine.metrics().fetches_refused > 0);
}

#[test]
fn mempool_refuses_beyond_its_limit() {
    let params = SnowballParams {
        mempool_max_txs: 2,
        ..sequential(20)
    };
    let mut o = Observer::new(&[1; 4], params);
    o.submit(o.wallet.pay(0, "a")).unwrap();
    o.submit(o.wallet.pay(1, "b")).unwrap();
    assert!(matches!(
        o.submit(o.wallet.pay(2, "c")),
        Err(SubmitError::Mempool(_))
    ));
}

#[test]
fn child_arriving_before_its_parent_finalizes_waits_as_an_orphan() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let parent = o.wallet.pay(0, "payee");
    let child = o
        .wallet
        .spend(parent.outpoint(1), parent.outputs[1].value, "next payee");
    let child_id = child.txid();
    o.deliver(o.id(1), ConsensusMessage::Tx(child));
    assert_eq!(o.status(&child_id).status, TxStatus::Seen);
    // Held, not sampled: a poll about it gets Unknown, and no fetch.
    assert_eq!(o.ask(2, &[child_id]), [Verdict::Unknown]);
    assert!(!sent_to(&o.log, &o.id(2))
        .iter()
        .any(|m| matches!(m, ConsensusMessage::GetTxs { .. })));
    let keys = o.keys[..3].to_vec();
    o.deliver(
        o.id(0),
        ConsensusMessage::Proof(signed_proof(&parent, &keys, 0, &[])),
    );
    assert!(o.events().contains(&Event::Accepted { txid: child_id }));
    assert_eq!(o.status(&child_id).status, TxStatus::Sampling);
}

#[test]
fn a_single_validator_finalizes_alone_with_its_own_vote() {
    // `timed --dev`: k' = alpha' = 1, and its own vote is the whole weight.
    let wallet = Wallet::funded(1);
    let mut c = Cluster::new(&[1], devnet_params(), &wallet.utxos, 4);
    let txid = c.submit(0, wallet.pay(0, "payee"));
    // Accepted at once; final when its first window closes.
    c.run_for(10);
    assert_eq!(c.finalized_at(&txid), [0]);
    let s = c.engines[0].tx_status(&txid).unwrap();
    assert_eq!((s.status, s.durable), (TxStatus::Finalized, true));
    assert_eq!(c.engines[0].metrics().polls_succeeded, 20);
}

// ---- vote safety: a signature only once the acceptance is durable ----

#[test]
fn no_window_vote_before_local_acceptance_is_durable() {
    // `timed --dev`: one validator; its own vote is the whole weight.
    let mut o = Observer::validator(&[1], devnet_params(), 0);
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    assert!(o.events().contains(&Event::LocallyAccepted { txid }));
    assert_eq!(o.status(&txid).status, TxStatus::LocallyAccepted);
    o.advance(1_000);
    assert_eq!(o.engine.metrics().finality_votes_signed, 0);
    assert_eq!(o.finalized(&txid), None);

    o.engine.handle_acceptance_durable(o.now, &[txid]);
    o.pump();
    assert_eq!(o.finalized(&txid), None, "the window is still open");
    o.advance(10);
    let proof = o.finalized(&txid).expect("finalized by its own vote");
    let (_, set) = validator_set(&[1]);
    assert_eq!(
        verify_proof(&proof, CHAIN, GENESIS, |_| Some(&set)),
        Ok(txid)
    );
    let windows = o.own_windows();
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].txids, [txid]);
    assert_eq!(windows[0].vote.verify_signature(), Ok(()));
}

#[test]
fn a_window_closes_early_when_full_and_seqs_follow_the_session() {
    let mut params = engine_config(devnet_params(), 7);
    params.window.max_window_txs = 2;
    params.window_session = 5;
    let (keys, set) = validator_set(&[1, 1, 1, 1]);
    let mut engine = Engine::new(params, set, Some(keys[0].clone()), MonoTime(0));
    let wallet = Wallet::funded(3);
    let mut txids = Vec::new();
    for i in 0..3 {
        let tx = wallet.pay(i, "payee");
        txids.push(tx.txid());
        engine
            .restore_accepted(MonoTime(0), tx, &wallet.utxos)
            .unwrap();
    }
    assert_eq!(
        engine.poll_timeout(),
        Some(MonoTime(0)),
        "full: due at once"
    );
    engine.handle_timeout(MonoTime(0), &wallet.utxos);
    let mut seqs = Vec::new();
    while let Some(out) = engine.poll_output() {
        if let Output::Broadcast {
            msg: ConsensusMessage::WindowVote(w),
            ..
        } = out
        {
            assert_eq!(w.txids.len(), 2);
            seqs.push(w.vote.seq);
        }
    }
    assert_eq!(seqs, [5 << 32]);
    // The third txid goes in the next window, one `vote_window_ms` later.
    engine.handle_timeout(MonoTime(10), &wallet.utxos);
    let next: Vec<u64> = std::iter::from_fn(|| engine.poll_output())
        .filter_map(|o| match o {
            Output::Broadcast {
                msg: ConsensusMessage::WindowVote(w),
                ..
            } => Some(w.vote.seq),
            _ => None,
        })
        .collect();
    assert_eq!(next, [(5 << 32) + 1]);
}

#[test]
fn restored_acceptance_refuses_every_later_conflict() {
    let mut o = Observer::validator(&[1; 4], sequential(20), 0);
    let x = o.wallet.pay(0, "x");
    let txid = o
        .engine
        .restore_accepted(o.now, x.clone(), &o.wallet.utxos)
        .unwrap();
    o.pump();
    assert_eq!(o.status(&txid).status, TxStatus::LocallyAccepted);
    let y = o.wallet.pay(0, "y");
    assert_eq!(
        o.submit(y.clone()),
        Err(SubmitError::ConflictDecided {
            outpoint: o.wallet.coins[0],
            winner: txid
        })
    );
    o.deliver(o.id(1), ConsensusMessage::Tx(y.clone()));
    assert!(
        o.engine.tx_status(&y.txid()).is_none(),
        "gossip cannot add it"
    );
    assert_ne!(o.ask(1, &[y.txid()]), [Verdict::Valid]);
}

#[test]
fn restored_engine_rejects_the_pending_conflict_and_signs_only_the_accepted_side() {
    let mut o = Observer::validator(&[1; 4], sequential(20), 0);
    let (x, y) = (o.wallet.pay(0, "x"), o.wallet.pay(0, "y"));
    let (tx_x, tx_y) = (x.txid(), y.txid());
    // Reloaded as pending (its removal was not durable at the crash)...
    o.submit(y).unwrap();
    // ...but the vote-safety record says we accepted (and maybe signed) X.
    o.engine
        .restore_accepted(o.now, x, &o.wallet.utxos)
        .unwrap();
    o.pump();
    assert_eq!(o.status(&tx_x).status, TxStatus::LocallyAccepted);
    assert!(o.events().contains(&Event::Rejected {
        txid: tx_y,
        reason: RejectReason::ConflictAccepted { winner: tx_x }
    }));
    assert_eq!(o.ask(1, &[tx_x, tx_y]), [Verdict::Valid, Verdict::Invalid]);
    let me = o.id(0);
    o.advance(10);
    let windows = o.own_windows();
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].vote.voter, me);
    assert_eq!(windows[0].txids, [tx_x], "it covers X alone");
    assert_eq!(windows[0].vote.root, MerkleTree::new(&[tx_x]).root(),);

    // Two more validators' windows complete its proof.
    o.window_votes(&[1, 2], &[tx_x]);
    let proof = o.finalized(&tx_x).expect("proof complete");
    let (_, set) = validator_set(&[1; 4]);
    assert_eq!(
        verify_proof(&proof, CHAIN, GENESIS, |_| Some(&set)),
        Ok(tx_x)
    );
    assert!(proof.votes.iter().any(|(v, _)| v.voter == me));
}

/// Epoch `epoch`'s committee: the consensus test validators `members`
/// (by label index), weight 1 each, in that order.
fn committee(epoch: u64, members: &[usize]) -> EpochCommittee {
    let validators = members
        .iter()
        .map(|&i| Validator {
            id: validator_key(i).public(),
            vrf_key: VrfPublicBytes([0; 32]),
            weight: 1,
        })
        .collect();
    EpochCommittee {
        epoch,
        committee: ValidatorSet::new(validators).unwrap(),
    }
}

fn blamed(outputs: &[Output]) -> Vec<Misbehaviour> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Misbehaved { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// DESIGN §7: votes of the previous, current and (once the chain decided
/// it) next epoch count, each against its own committee; votes of any
/// other epoch are dropped without blame, as honest relays send them
/// across a boundary; a non-member of the vote's own epoch is blamed.
#[test]
fn window_votes_count_only_for_held_epochs_each_against_its_committee() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    o.keys.extend([validator_key(4), validator_key(5)]);
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    o.epoch = 1;
    let start = o.log.len();
    o.window_votes(&[4], &[txid]);
    assert_eq!(
        o.status(&txid).proof_weight,
        0,
        "epoch 1 is not decided here"
    );
    assert_eq!(o.engine.metrics().bad_finality_votes, 1);
    assert!(blamed(&o.log[start..]).is_empty());

    o.engine
        .learn_next_epoch(committee(1, &[2, 3, 4, 5]))
        .unwrap();
    o.window_votes(&[4], &[txid]);
    assert_eq!(o.status(&txid).proof_weight, 1, "an early vote of epoch 1");
    let start = o.log.len();
    o.window_votes(&[0], &[txid]);
    assert!(matches!(
        blamed(&o.log[start..])[..],
        [Misbehaviour::OutsiderWindow]
    ));

    o.engine
        .enter_epoch(o.now, committee(1, &[2, 3, 4, 5]))
        .unwrap();
    o.engine
        .enter_epoch(o.now, committee(2, &[2, 3, 4, 5]))
        .unwrap();
    o.epoch = 0;
    let start = o.log.len();
    o.window_votes(&[2], &[txid]);
    assert!(
        blamed(&o.log[start..]).is_empty(),
        "older than the previous epoch"
    );
    assert_eq!(o.engine.metrics().bad_finality_votes, 3);
}

/// A proof holds votes of one epoch (DESIGN §7): votes split across a
/// boundary never add up, but each epoch's tally goes on (a late vote of
/// the previous epoch still counts there), and the proof verifies against
/// its own epoch's committee only.
#[test]
fn a_proof_holds_votes_of_one_epoch_and_verifies_against_its_committee() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let txid = o.submit(o.wallet.pay(0, "payee")).unwrap();
    o.window_votes(&[0, 1], &[txid]);
    let next = committee(1, &[3, 2, 1, 0]);
    o.engine.enter_epoch(o.now, next.clone()).unwrap();
    o.epoch = 1;
    o.window_votes(&[2, 3], &[txid]);
    assert!(o.finalized(&txid).is_none(), "2 + 2 votes of two epochs");
    assert_eq!(o.status(&txid).proof_weight, 2);
    o.epoch = 0;
    o.window_votes(&[2], &[txid]);
    let proof = o
        .finalized(&txid)
        .expect("a late epoch-0 vote completes epoch 0's");
    assert!(proof.votes.iter().all(|(v, _)| v.epoch == 0));
    let (_, genesis_set) = validator_set(&[1; 4]);
    let genesis = |e| (e == 0).then_some(&genesis_set);
    assert_eq!(verify_proof(&proof, CHAIN, GENESIS, genesis), Ok(txid));
    let only_next = |e| (e == 1).then_some(&next.committee);
    assert!(verify_proof(&proof, CHAIN, GENESIS, only_next).is_err());
}

/// A validator still seated after an epoch change signs its accepted but
/// unproven txids again under the new epoch (the new committee's quorum
/// needs its vote); one unseated signs nothing more.
#[test]
fn entering_an_epoch_signs_unproven_acceptances_again_or_stops_signing() {
    let mut o = Observer::validator(&[1; 4], sequential(20), 0);
    let tx = o.wallet.pay(0, "payee");
    let txid = tx.txid();
    o.engine
        .restore_accepted(o.now, tx, &o.wallet.utxos)
        .unwrap();
    o.advance(10);
    o.engine
        .enter_epoch(o.now, committee(1, &[1, 0, 2, 3]))
        .unwrap();
    o.advance(10);
    let windows = o.own_windows();
    let signed: Vec<(u64, Vec<Hash>)> = windows
        .iter()
        .map(|w| (w.vote.epoch, w.txids.clone()))
        .collect();
    assert_eq!(signed, vec![(0, vec![txid]), (1, vec![txid])]);
    assert_eq!(o.engine.epoch(), 1);

    o.engine
        .enter_epoch(o.now, committee(2, &[1, 2, 3, 4]))
        .unwrap();
    let tx = o.wallet.pay(1, "payee");
    o.engine
        .restore_accepted(o.now, tx, &o.wallet.utxos)
        .unwrap();
    o.advance(1_000);
    assert_eq!(o.own_windows().len(), 2, "unseated: no more windows");
}

/// Only validators poll (DESIGN §5), so a node seated by an epoch change
/// starts polling what it holds, and its own slots count.
#[test]
fn a_node_seated_by_an_epoch_change_starts_polling() {
    let (_, set) = validator_set(&[1; 4]);
    let wallet = Wallet::funded(1);
    let now = MonoTime(1_000_000);
    let joiner = validator_key(4);
    let mut engine = Engine::new(engine_config(sequential(20), 7), set, Some(joiner), now);
    engine
        .handle_submit(now, wallet.pay(0, "payee"), &wallet.utxos)
        .unwrap();
    engine.handle_timeout(now.plus_ms(1_000), &wallet.utxos);
    assert_eq!(engine.metrics().polls_started, 0);
    let now = now.plus_ms(1_000);
    engine
        .enter_epoch(now, committee(1, &[1, 2, 3, 4]))
        .unwrap();
    engine.handle_timeout(now, &wallet.utxos);
    assert_eq!(engine.metrics().polls_started, 1);
}

/// A voter keeps its number across epochs, whatever the committee order,
/// so two conflicting spends it signs on either side of a boundary are
/// caught, and that evidence verifies against the two epochs' committees.
#[test]
fn equivocation_across_an_epoch_boundary_is_caught() {
    let next = committee(1, &[3, 2, 1, 0]);
    let (o, tx_x, tx_y) = caught_equivocating_across(|o| {
        o.engine.enter_epoch(o.now, next.clone()).unwrap();
        o.epoch = 1;
    });
    assert!(o.events().contains(&Event::Equivocation {
        voter: o.id(3),
        outpoint: o.wallet.coins[0],
        first: tx_x,
        second: tx_y,
    }));
    let evidence = o
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::WindowEvidence { evidence, .. } => Some(evidence),
            _ => None,
        })
        .expect("evidence kept");
    let (_, genesis_set) = validator_set(&[1; 4]);
    let sets = |epoch| match epoch {
        0 => Some(&genesis_set),
        1 => Some(&next.committee),
        _ => None,
    };
    assert_eq!(
        evidence.verify(CHAIN, GENESIS, sets),
        Ok((o.id(3), o.wallet.coins[0]))
    );
}

/// A proof of an epoch whose committee is not held (older than the
/// previous one) is dropped, not blamed: catch-up and slow relays send them.
#[test]
fn a_proof_of_an_epoch_not_held_is_dropped_without_blame() {
    let mut o = Observer::new(&[1; 4], sequential(20));
    let tx = o.wallet.pay(0, "payee");
    let proof = signed_proof(&tx, &o.keys[..3], 0, &[]);
    o.engine
        .enter_epoch(o.now, committee(2, &[0, 1, 2, 3]))
        .unwrap();
    let start = o.log.len();
    o.deliver(o.id(1), ConsensusMessage::Proof(proof));
    assert!(blamed(&o.log[start..]).is_empty());
    assert_eq!(o.engine.metrics().proofs_other_epoch, 1);
    assert_eq!(o.engine.metrics().proofs_invalid, 0);
}
