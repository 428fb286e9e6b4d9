//! The consensus `Engine` (validator 0 of 4, so it signs window votes)
//! fed arbitrary sequences of (peer, time advance, message) from the other
//! validators and one outsider: transactions of a funded wallet (several
//! spends of each coin, so conflicts abound), polls and answers to the
//! engine's own queries, window votes (validly signed by any test key over
//! chosen txids, forged, for the wrong scope, or malformed: empty, unsorted,
//! wrong root), requests for window votes, proofs signed by any subset of
//! the validators, local submissions, and raw wire bytes. Time advances run
//! every timer due (which closes the engine's own windows).
//!
//! Asserts: no panic; the mempool stays within `mempool_max_txs` and every
//! step's outputs within a fixed bound; across all `WindowVote`s the
//! engine itself sends (voter == its key), no two listed txids spend the
//! same outpoint (over the whole run); each such window is well formed,
//! for the engine's scope and verifies. Its own votes inside proofs count
//! too. Votes the harness itself signs with the engine's key (a fuzzed
//! window or proof vote by validator 0) are relays and do not count. Acting as the driver, the harness records local acceptances
//! durably at once (`handle_acceptance_durable`: only then may a window
//! list them) and commits finalized txs to its UTXO view
//! (`handle_durable`). `FUZZ_VERBOSE=1` prints each txid the engine signs.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::OnceLock;
use timecoin::consensus::{
    ConsensusMessage, Engine, EngineConfig, EngineLimits, Event, NodeId, Output, SnowballParams,
    UnprovenLimits, Verdict, WindowParams,
};
use timecoin::crypto::{merkle, Keypair};
use timecoin::finality::{FinalityProof, FinalityVote, ValidatorSet, VoteScope, WindowVote};
use timecoin::ledger::{MemUtxoSet, ValidationParams};
use timecoin::net::{Message, MessageLimits};
use timecoin::time::MonoTime;
use timecoin::types::{
    Address, Amount, ChainId, Hash, OutPoint, Tx, TxOut, Validator, VrfPublicBytes,
};
use timecoin::wallet::{build_transfer, Spendable};

const CHAIN: ChainId = ChainId(3);
const VALIDATORS: usize = 4;
const COINS: u32 = 4;
const SPENDS_PER_COIN: usize = 3;
const WINDOW_MS: u64 = 500;
const MAX_STEPS: usize = 256;
const MAX_OUTPUTS_PER_STEP: usize = 10_000;

struct Fixture {
    keys: Vec<Keypair>,
    set: ValidatorSet,
    utxos: MemUtxoSet,
    txs: Vec<Tx>,
    inputs: HashMap<Hash, Vec<OutPoint>>,
    params: SnowballParams,
}

fn scope() -> VoteScope {
    VoteScope {
        chain_id: CHAIN,
        genesis_hash: Hash::digest(b"fuzz genesis"),
        epoch: 0,
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys: Vec<Keypair> = (0..VALIDATORS)
            .map(|i| Keypair::from_seed_label(&format!("fuzz validator {i}")))
            .collect();
        let set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    id: k.public(),
                    vrf_key: VrfPublicBytes([0; 32]),
                    weight: 1,
                })
                .collect(),
        )
        .expect("fixed set");
        let owner = Keypair::from_seed_label("fuzz wallet");
        let coin = Amount(100 * 100_000_000);
        let genesis = Hash::digest(b"fuzz genesis");
        let mut utxos = MemUtxoSet::default();
        let out = TxOut {
            value: coin,
            address: Address::from_pubkey(&owner.public()),
        };
        utxos.add_outputs(genesis, &vec![out; COINS as usize]);
        let mut txs = Vec::new();
        for vout in 0..COINS {
            for label in 0..SPENDS_PER_COIN {
                let payee = Keypair::from_seed_label(&format!("payee {label}")).public();
                let tx = build_transfer(
                    &[Spendable {
                        outpoint: OutPoint {
                            txid: genesis,
                            vout,
                        },
                        value: coin,
                        key: &owner,
                    }],
                    &[TxOut {
                        value: Amount(coin.0 / 2),
                        address: Address::from_pubkey(&payee),
                    }],
                    Amount(1_000),
                    Address::from_pubkey(&owner.public()),
                    CHAIN,
                )
                .expect("fixture transfer");
                txs.push(tx);
            }
        }
        // A child of the first spend: exercises orphans and parents.
        let parent = txs[0].clone();
        let child = build_transfer(
            &[Spendable {
                outpoint: parent.outpoint(0),
                value: parent.outputs[0].value,
                key: &Keypair::from_seed_label("payee 0"),
            }],
            &[],
            Amount(1_000),
            Address::from_pubkey(&owner.public()),
            CHAIN,
        )
        .expect("fixture child");
        txs.push(child);
        let inputs = txs
            .iter()
            .map(|t| (t.txid(), t.inputs.iter().map(|i| i.prev).collect()))
            .collect();
        let params = SnowballParams {
            k: 4,
            alpha: 3,
            beta: 2,
            poll_timeout_ms: 200,
            max_txs_per_query: 8,
            max_concurrent_polls: 2,
            mempool_expiry_ms: 30_000,
            mempool_max_txs: 8,
        };
        Fixture {
            keys,
            set,
            utxos,
            txs,
            inputs,
            params,
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Tx(u8),
    Submit(u8),
    GetTxs(Vec<u8>),
    Txs(Vec<u8>),
    Query {
        request_id: u8,
        txids: Vec<u8>,
    },
    /// Answers the engine's `pending`-th outstanding query sent to this peer.
    Answer {
        pending: u8,
        verdicts: Vec<u8>,
    },
    /// A window vote by test key `signer` (validators 0..4, else the
    /// outsider) over the fixture txs `txids`; `mode` picks valid, forged,
    /// wrong scope or malformed.
    Window {
        signer: u8,
        seq: u8,
        txids: Vec<u8>,
        mode: u8,
    },
    GetWindowVote {
        voter: u8,
        seq: u8,
    },
    Proof {
        tx: u8,
        signers: u8,
        seq: u8,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Step {
    peer: u8,
    advance_ms: u16,
    msg: Msg,
}

/// A query the engine sent and no one answered yet.
struct Pending {
    to: NodeId,
    request_id: u64,
    txids: Vec<Hash>,
}

fn tx(i: u8) -> &'static Tx {
    let txs = &fixture().txs;
    &txs[usize::from(i) % txs.len()]
}

fn verdict(b: u8) -> Verdict {
    match b % 3 {
        0 => Verdict::Valid,
        1 => Verdict::Invalid,
        _ => Verdict::Unknown,
    }
}

fn test_key(i: u8) -> &'static Keypair {
    static OUTSIDER: OnceLock<Keypair> = OnceLock::new();
    let f = fixture();
    f.keys
        .get(usize::from(i % 5))
        .unwrap_or_else(|| OUTSIDER.get_or_init(|| Keypair::from_seed_label("fuzz outsider")))
}

fn window_vote(signer: u8, seq: u8, ids: &[u8], mode: u8) -> WindowVote {
    let key = test_key(signer);
    let seq = u64::from(seq);
    let txids: Vec<Hash> = ids.iter().map(|&i| tx(i).txid()).collect();
    match mode % 8 {
        // Forged: signed by another key, claimed by `key`.
        1 => {
            let mut w = WindowVote::sign(test_key(signer.wrapping_add(1)), scope(), seq, txids);
            w.vote.voter = key.public();
            w
        }
        // Wrong scope: another chain, genesis or epoch.
        2 => {
            let mut s = scope();
            match seq % 3 {
                0 => s.chain_id = ChainId(4),
                1 => s.genesis_hash = Hash::ZERO,
                _ => s.epoch = 1,
            }
            WindowVote::sign(key, s, seq, txids)
        }
        // Tampered after signing: a listed txid dropped or swapped.
        3 => {
            let mut w = WindowVote::sign(key, scope(), seq, txids);
            if w.txids.pop().is_none() {
                w.txids.push(Hash::ZERO);
            }
            w
        }
        // Malformed: unsorted or duplicated leaves under their own root.
        4 => {
            let mut leaves = txids;
            leaves.sort();
            leaves.reverse();
            if let Some(&first) = leaves.first() {
                leaves.push(first);
            }
            let vote = FinalityVote::sign_root(key, scope(), seq, merkle::root(&leaves));
            WindowVote {
                vote,
                txids: leaves,
            }
        }
        // Bad signature bytes.
        5 => {
            let mut w = WindowVote::sign(key, scope(), seq, txids);
            w.vote.sig.0[0] ^= 1;
            w
        }
        _ => WindowVote::sign(key, scope(), seq, txids),
    }
}

/// Builds what `peer` sends; `None` if the step sends nothing.
fn peer_message(
    msg: Msg,
    peer: NodeId,
    pending: &mut Vec<Pending>,
    signed: &mut Signed,
) -> Option<ConsensusMessage> {
    let f = fixture();
    Some(match msg {
        Msg::Tx(i) => ConsensusMessage::Tx(tx(i).clone()),
        Msg::Submit(_) => return None,
        Msg::GetTxs(ids) => ConsensusMessage::GetTxs {
            txids: ids.iter().map(|&i| tx(i).txid()).collect(),
        },
        Msg::Txs(ids) => ConsensusMessage::Txs {
            txs: ids.iter().map(|&i| tx(i).clone()).collect(),
        },
        Msg::Query { request_id, txids } => ConsensusMessage::Query {
            request_id: u64::from(request_id),
            txids: txids.iter().map(|&i| tx(i).txid()).collect(),
        },
        Msg::Answer {
            pending: which,
            verdicts,
        } => {
            let mine: Vec<usize> = (0..pending.len())
                .filter(|&i| pending[i].to == peer)
                .collect();
            let index = *mine.get(usize::from(which) % mine.len().max(1))?;
            let q = pending.swap_remove(index);
            let verdicts: Vec<(Hash, Verdict)> = q
                .txids
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, verdict(verdicts.get(i).copied().unwrap_or(0))))
                .collect();
            ConsensusMessage::Votes {
                request_id: q.request_id,
                verdicts,
            }
        }
        Msg::Window {
            signer,
            seq,
            txids,
            mode,
        } => {
            let window = window_vote(signer, seq, &txids, mode);
            if window.vote.voter == f.keys[0].public() {
                signed.injected.insert(window.vote.vote_hash());
            }
            ConsensusMessage::WindowVote(Arc::new(window))
        }
        Msg::GetWindowVote { voter, seq } => ConsensusMessage::GetWindowVote {
            voter: test_key(voter).public(),
            seq: u64::from(seq),
        },
        Msg::Proof {
            tx: i,
            signers,
            seq,
        } => {
            let tx = tx(i).clone();
            let txid = tx.txid();
            let leaves = [txid];
            let (_, path) = merkle::root_and_path(&leaves, 0)?;
            let votes = f
                .keys
                .iter()
                .enumerate()
                .filter(|(k, _)| signers & (1 << k) != 0)
                .map(|(_, k)| {
                    (
                        FinalityVote::sign(k, scope(), u64::from(seq), &leaves),
                        path.clone(),
                    )
                })
                .collect::<Vec<_>>();
            for (vote, _) in &votes {
                if vote.voter == f.keys[0].public() {
                    signed.injected.insert(vote.vote_hash());
                }
            }
            ConsensusMessage::Proof(FinalityProof { tx, votes })
        }
        Msg::Raw(bytes) => match Message::decode(&bytes, &MessageLimits::default()) {
            Ok(Message::Consensus(c)) => c,
            _ => return None,
        },
    })
}

/// The engine's own signed votes so far: outpoint → the txid they covered.
#[derive(Default)]
struct Signed {
    by_outpoint: BTreeMap<OutPoint, Hash>,
    /// Votes the harness itself made with the engine's key (windows and
    /// proof votes): the engine relaying them is not the engine signing.
    injected: HashSet<Hash>,
}

/// What the driver must do after a batch of outputs: record acceptances
/// durably (so the engine may vote for them) and commit finalized txs.
#[derive(Default)]
struct Duties {
    accepted: Vec<Hash>,
    finalized: Vec<Tx>,
}

/// Records that the engine's own key signed a vote covering `txid`.
fn record_signed(engine: &Engine, signed: &mut Signed, txid: Hash) {
    let f = fixture();
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        eprintln!("engine signed a vote covering {txid}");
    }
    let inputs = f
        .inputs
        .get(&txid)
        .cloned()
        .or_else(|| {
            engine
                .mempool_tx(&txid)
                .map(|t| t.inputs.iter().map(|i| i.prev).collect())
        })
        .unwrap_or_default();
    for outpoint in inputs {
        let prior = *signed.by_outpoint.entry(outpoint).or_insert(txid);
        assert_eq!(
            prior, txid,
            "signed votes for conflicting txs on {outpoint}"
        );
    }
}

fn collect(engine: &mut Engine, pending: &mut Vec<Pending>, signed: &mut Signed) -> Duties {
    let f = fixture();
    let mut duties = Duties::default();
    let me = f.keys[0].public();
    let mut outputs = 0;
    while let Some(out) = engine.poll_output() {
        outputs += 1;
        assert!(outputs <= MAX_OUTPUTS_PER_STEP, "unbounded outputs");
        let msg = match out {
            Output::Send { to, msg } => {
                if let ConsensusMessage::Query { request_id, txids } = &msg {
                    assert!(txids.len() <= f.params.max_txs_per_query as usize);
                    if pending.len() < 1024 {
                        pending.push(Pending {
                            to,
                            request_id: *request_id,
                            txids: txids.clone(),
                        });
                    }
                }
                msg
            }
            Output::Broadcast { msg, .. } | Output::RelayToObservers { msg, .. } => msg,
            Output::Event(Event::LocallyAccepted { txid }) => {
                duties.accepted.push(txid);
                continue;
            }
            Output::Event(Event::Finalized { tx, proof }) => {
                // Our own vote inside a proof covers its tx.
                if proof
                    .votes
                    .iter()
                    .any(|(v, _)| v.voter == me && !signed.injected.contains(&v.vote_hash()))
                {
                    record_signed(engine, signed, tx.txid());
                }
                duties.finalized.push(tx);
                continue;
            }
            Output::Event(_) | Output::Misbehaved { .. } => continue,
        };
        if let ConsensusMessage::Proof(proof) = &msg {
            if proof
                .votes
                .iter()
                .any(|(v, _)| v.voter == me && !signed.injected.contains(&v.vote_hash()))
            {
                record_signed(engine, signed, proof.tx.txid());
            }
        }
        let ConsensusMessage::WindowVote(window) = msg else {
            continue;
        };
        if window.vote.voter != me || signed.injected.contains(&window.vote.vote_hash()) {
            continue; // a relay of someone else's (or the harness's) window
        }
        assert!(window.check_shape().is_ok(), "own window malformed");
        assert_eq!(window.vote.scope(), scope(), "own window for another scope");
        assert!(
            window.vote.verify_signature().is_ok(),
            "own window does not verify"
        );
        for txid in &window.txids {
            record_signed(engine, signed, *txid);
        }
    }
    duties
}

/// Drains outputs and does the driver's duties until none are left.
fn pump(
    engine: &mut Engine,
    now: MonoTime,
    utxos: &mut MemUtxoSet,
    pending: &mut Vec<Pending>,
    signed: &mut Signed,
) {
    for _ in 0..100 {
        let duties = collect(engine, pending, signed);
        if duties.accepted.is_empty() && duties.finalized.is_empty() {
            return;
        }
        if !duties.accepted.is_empty() {
            engine.handle_acceptance_durable(now, &duties.accepted);
        }
        if !duties.finalized.is_empty() {
            let txids: Vec<Hash> = duties.finalized.iter().map(Tx::txid).collect();
            for tx in &duties.finalized {
                utxos.apply(tx);
            }
            engine.handle_durable(now, &txids);
        }
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let f = fixture();
    let config = EngineConfig {
        validation: ValidationParams {
            chain_id: CHAIN,
            min_fee: Amount(1_000),
            max_tx_bytes: 16_384,
        },
        snowball: f.params,
        limits: EngineLimits {
            max_orphans: 8,
            max_orphans_per_peer: 2,
            max_fetches: 16,
            max_fetches_per_peer: 4,
            settled_txs: 64,
            seen_proofs: 64,
            verified_votes: 64,
            // Small, so sequences reach the cap and the re-asks.
            unproven: UnprovenLimits {
                max_txs: 4,
                first_ms: 50,
                max_ms: 400,
            },
            ..EngineLimits::default()
        },
        scope: scope(),
        window: WindowParams {
            vote_window_ms: WINDOW_MS,
            max_window_txs: 8,
        },
        observer_polls: false,
        window_session: 1,
        rng_seed: 7,
    };
    let mut now = MonoTime(1_000_000);
    let mut engine = Engine::new(config, f.set.clone(), Some(f.keys[0].clone()), now);
    let outsider = Keypair::from_seed_label("fuzz outsider");
    let mut pending = Vec::new();
    let mut signed = Signed::default();
    let mut utxos = f.utxos.clone();

    for step in steps.into_iter().take(MAX_STEPS) {
        now = now.plus_ms(u64::from(step.advance_ms));
        let mut rounds = 0;
        while engine.poll_timeout().is_some_and(|t| t <= now) && rounds < 1_000 {
            engine.handle_timeout(now, &utxos);
            pump(&mut engine, now, &mut utxos, &mut pending, &mut signed);
            rounds += 1;
        }
        // Peers 1..=3 are the other validators; anything else is an outsider.
        let peer = usize::from(step.peer % 5);
        let key = match peer {
            1..=3 => Some(&f.keys[peer]),
            _ => None,
        };
        let from = key.unwrap_or(&outsider).public();
        if let Msg::Submit(i) = step.msg {
            let _ = engine.handle_submit(now, tx(i).clone(), &utxos);
        } else if let Some(msg) = peer_message(step.msg, from, &mut pending, &mut signed) {
            engine.handle_message(now, from, msg, &utxos);
        }
        pump(&mut engine, now, &mut utxos, &mut pending, &mut signed);
        assert!(engine.mempool_len() <= f.params.mempool_max_txs as usize);
    }
});
