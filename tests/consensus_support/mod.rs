//! Shared fixtures for the consensus and finality tests and benches:
//! label-derived validator keys, a funded wallet, transfers, hand-made
//! proofs, and `Cluster`, a tiny deterministic message pump over real
//! `Engine`s (fixed latency, FIFO delivery, virtual time). The full network
//! simulator with faults lives in `timecoin::sim`; this is only what the
//! rule tests need.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::VecDeque;
use timecoin::consensus::{
    ConsensusMessage, Engine, EngineConfig, EngineLimits, Event, NodeId, Output, SnowballParams,
    WindowParams,
};
use timecoin::crypto::{merkle, Keypair};
use timecoin::finality::{FinalityProof, FinalityVote, ValidatorSet, VoteScope};
use timecoin::ledger::{MemUtxoSet, ValidationParams};
use timecoin::time::MonoTime;
use timecoin::types::{
    Address, Amount, ChainId, Hash, Network, OutPoint, Tx, TxOut, Validator, VrfPublicBytes,
};
use timecoin::wallet::{build_transfer, Spendable};

pub const CHAIN: ChainId = ChainId(3);
/// What this chain's votes sign besides the chain id.
pub const GENESIS: Hash = Hash([7; 32]);

/// Votes of `CHAIN` for validator-set epoch `epoch`.
pub fn scope(epoch: u64) -> VoteScope {
    VoteScope {
        chain_id: CHAIN,
        genesis_hash: GENESIS,
        epoch,
    }
}

/// Devnet's Snowball parameters (k 20, alpha 14, beta 20, 200 ms timeout).
pub fn devnet_params() -> SnowballParams {
    let spec = timecoin::config::ChainConfig::builtin(Network::Devnet).unwrap();
    SnowballParams::from(&spec.config.consensus)
}

pub fn engine_config(params: SnowballParams, seed: u64) -> EngineConfig {
    EngineConfig {
        validation: ValidationParams {
            chain_id: CHAIN,
            min_fee: Amount(1_000),
            max_tx_bytes: 16_384,
        },
        snowball: params,
        limits: EngineLimits::default(),
        scope: scope(0),
        window: WindowParams {
            vote_window_ms: 10,
            max_window_txs: 1024,
        },
        observer_polls: false,
        window_session: 0,
        rng_seed: seed,
    }
}

pub fn validator_key(i: usize) -> Keypair {
    Keypair::from_seed_label(&format!("consensus test validator {i}"))
}

/// A set of `weights.len()` validators with label-derived keys.
pub fn validator_set(weights: &[u64]) -> (Vec<Keypair>, ValidatorSet) {
    let keys: Vec<Keypair> = (0..weights.len()).map(validator_key).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .zip(weights)
            .map(|(k, w)| Validator {
                id: k.public(),
                vrf_key: VrfPublicBytes([0; 32]),
                weight: *w,
            })
            .collect(),
    )
    .unwrap();
    (keys, set)
}

/// A wallet with `coins` genesis outputs of 100 TIME each.
pub struct Wallet {
    pub key: Keypair,
    pub utxos: MemUtxoSet,
    pub coins: Vec<OutPoint>,
}

pub const COIN: Amount = Amount(100 * 100_000_000);
pub const FEE: Amount = Amount(1_000);

impl Wallet {
    pub fn funded(coins: usize) -> Wallet {
        let key = Keypair::from_seed_label("consensus test wallet");
        let out = TxOut {
            value: COIN,
            address: Address::from_pubkey(&key.public()),
        };
        let genesis = Hash::digest(b"consensus test genesis");
        let mut utxos = MemUtxoSet::default();
        utxos.add_outputs(genesis, &vec![out; coins]);
        let coins = (0..coins as u32)
            .map(|vout| OutPoint {
                txid: genesis,
                vout,
            })
            .collect();
        Wallet { key, utxos, coins }
    }

    /// Spends `outpoint` (worth `value`) to a payee named by `label`;
    /// different labels give conflicting transactions.
    pub fn spend(&self, outpoint: OutPoint, value: Amount, label: &str) -> Tx {
        let payee = Address::from_pubkey(&Keypair::from_seed_label(label).public());
        let pay = Amount(value.0 / 2);
        build_transfer(
            &[Spendable {
                outpoint,
                value,
                key: &self.key,
            }],
            &[TxOut {
                value: pay,
                address: payee,
            }],
            FEE,
            Address::from_pubkey(&self.key.public()),
            CHAIN,
        )
        .unwrap()
    }

    /// Spends genesis coin `i`.
    pub fn pay(&self, i: usize, label: &str) -> Tx {
        self.spend(self.coins[i], COIN, label)
    }
}

/// A proof for `tx` signed by `signers` in epoch `epoch` (their vote roots
/// cover only `tx`'s txid plus `others`, so paths are non-trivial).
pub fn signed_proof(tx: &Tx, signers: &[Keypair], epoch: u64, others: &[Hash]) -> FinalityProof {
    let txid = tx.txid();
    let mut leaves: Vec<Hash> = others.iter().copied().chain([txid]).collect();
    leaves.sort();
    leaves.dedup();
    let index = leaves.binary_search(&txid).unwrap();
    let (_, path) = merkle::root_and_path(&leaves, index).unwrap();
    FinalityProof {
        tx: tx.clone(),
        votes: signers
            .iter()
            .map(|k| {
                (
                    FinalityVote::sign(k, scope(epoch), 1, &leaves),
                    path.clone(),
                )
            })
            .collect(),
    }
}

/// Every message of `outputs` sent to `to`, in order.
pub fn sent_to(outputs: &[Output], to: &NodeId) -> Vec<ConsensusMessage> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to: t, msg } if t == to => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

pub fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

pub fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

/// Real engines, one per validator, joined by a FIFO network with a fixed
/// latency; `down` nodes neither send, receive nor run timers. Each node's
/// ledger is a `MemUtxoSet` that applies `Finalized` txs and reports them
/// durable, and records local acceptances at once, as the ledger thread does.
pub struct Cluster {
    pub engines: Vec<Engine>,
    pub ids: Vec<NodeId>,
    pub ledgers: Vec<MemUtxoSet>,
    pub down: Vec<bool>,
    pub now: MonoTime,
    pub latency_ms: u64,
    in_flight: VecDeque<(MonoTime, usize, usize, ConsensusMessage)>,
    /// Every event, with the node that emitted it.
    pub events: Vec<(usize, Event)>,
}

impl Cluster {
    pub fn new(weights: &[u64], params: SnowballParams, ledger: &MemUtxoSet, seed: u64) -> Cluster {
        let (keys, set) = validator_set(weights);
        let now = MonoTime(1_000_000);
        let engines = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Engine::new(
                    engine_config(params, seed.wrapping_add(i as u64)),
                    set.clone(),
                    Some(k.clone()),
                    now,
                )
            })
            .collect();
        Cluster {
            engines,
            ids: keys.iter().map(Keypair::public).collect(),
            ledgers: vec![ledger.clone(); weights.len()],
            down: vec![false; weights.len()],
            now,
            latency_ms: 1,
            in_flight: VecDeque::new(),
            events: Vec::new(),
        }
    }

    pub fn submit(&mut self, node: usize, tx: Tx) -> Hash {
        let txid = self.engines[node]
            .handle_submit(self.now, tx, &self.ledgers[node])
            .unwrap();
        self.collect(node);
        txid
    }

    /// Moves node `i`'s outputs onto the wire / into the event log / ledger.
    fn collect(&mut self, i: usize) {
        while let Some(out) = self.engines[i].poll_output() {
            let at = self.now.plus_ms(self.latency_ms);
            match out {
                Output::Send { to, msg } => {
                    if let Some(j) = self.ids.iter().position(|id| *id == to) {
                        self.in_flight.push_back((at, i, j, msg));
                    }
                }
                Output::Broadcast { msg, skip } => {
                    let ids = &self.ids;
                    for j in (0..ids.len()).filter(|&j| j != i && !skip.contains(&ids[j])) {
                        self.in_flight.push_back((at, i, j, msg.clone()));
                    }
                }
                // Every node here is a validator: none is an observer.
                Output::RelayToObservers { .. } => {}
                Output::Event(event) => {
                    match &event {
                        Event::LocallyAccepted { txid } => {
                            self.engines[i].handle_acceptance_durable(self.now, &[*txid]);
                        }
                        Event::Finalized { tx, .. } => {
                            self.ledgers[i].apply(tx);
                            let txid = tx.txid();
                            self.engines[i].handle_durable(self.now, &[txid]);
                        }
                        _ => {}
                    }
                    self.events.push((i, event));
                }
                // Honest engines of one cluster never send invalid data.
                Output::Misbehaved { peer, reason } => {
                    panic!("node {i} reports {peer:?} misbehaving: {reason}")
                }
            }
        }
    }

    /// Delivers messages and fires timers in time order until `end`.
    pub fn run_until(&mut self, end: MonoTime) {
        for _step in 0..10_000_000 {
            let next_msg = self.in_flight.front().map(|m| m.0);
            let next_timer = (0..self.engines.len())
                .filter(|&i| !self.down[i])
                .filter_map(|i| self.engines[i].poll_timeout())
                .min();
            let Some(next) = [next_msg, next_timer].into_iter().flatten().min() else {
                self.now = end;
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if next_msg == Some(next) {
                let (_, from, to, msg) = self.in_flight.pop_front().unwrap();
                if !self.down[from] && !self.down[to] {
                    let (engine, ledger) = (&mut self.engines[to], &self.ledgers[to]);
                    engine.handle_message(self.now, self.ids[from], msg, ledger);
                    self.collect(to);
                }
            } else {
                for i in 0..self.engines.len() {
                    let due = self.engines[i]
                        .poll_timeout()
                        .is_some_and(|t| t <= self.now);
                    if !self.down[i] && due {
                        self.engines[i].handle_timeout(self.now, &self.ledgers[i]);
                        self.collect(i);
                    }
                }
            }
        }
        panic!("cluster did not settle: livelock in the pump");
    }

    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now.plus_ms(ms));
    }

    /// Nodes that emitted `Finalized` for `txid`.
    pub fn finalized_at(&self, txid: &Hash) -> Vec<usize> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Finalized { tx, .. } if tx.txid() == *txid))
            .map(|(i, _)| *i)
            .collect()
    }

    pub fn proofs_of(&self, txid: &Hash) -> Vec<FinalityProof> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Finalized { tx, proof } if tx.txid() == *txid => Some(proof.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn count_events(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| pred(e)).count()
    }
}
