//! The simulator's judges, separate from the code they judge. Safety and
//! validity are checked on every `Finalized` event of an honest node as it
//! happens; agreement and liveness once the run is over, over the period
//! after every fault has ended (TigerBeetle's VOPR splits them the same way).
//!
//! Reads only what honest engines emit and the workload's submissions; must
//! never feed anything back into a node.

use crate::consensus::{EpochCommittee, SharedVerdicts};
use crate::crypto::merkle::MerklePath;
use crate::finality::{verify_proof_parts_with, FinalityProof, FinalityVote, ProofError};
use crate::ledger::{validate, MemUtxoSet, TxError, ValidationParams};
use crate::types::{Hash, OutPoint, Tx};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::BTreeMap;
use std::fmt;

/// A broken property, with what is needed to find it in a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two conflicting transactions finalized on honest nodes.
    Safety {
        outpoint: OutPoint,
        first: Hash,
        first_node: usize,
        second: Hash,
        node: usize,
        at_ms: u64,
    },
    /// An honest engine saw valid proofs for two conflicting transactions.
    ConflictingProofs {
        node: usize,
        at_ms: u64,
        outpoint: OutPoint,
        finalized: Hash,
        conflicting: Hash,
    },
    /// A finalized transaction does not validate against genesis plus the
    /// finalized history.
    Invalid {
        txid: Hash,
        node: usize,
        at_ms: u64,
        reason: TxError,
    },
    /// A finalized transaction's proof does not verify against the validator set.
    BadProof {
        txid: Hash,
        node: usize,
        at_ms: u64,
        reason: ProofError,
    },
    /// A node reported the same transaction finalized twice.
    Refinalized { txid: Hash, node: usize, at_ms: u64 },
    /// Finalized on one honest node after the faults ended, but not on
    /// another within the bound.
    Agreement {
        txid: Hash,
        first_node: usize,
        first_ms: u64,
        node: usize,
        deadline_ms: u64,
    },
    /// A non-conflicting honest transaction missed its bound on a node.
    Liveness {
        txid: Hash,
        node: usize,
        submitted_ms: u64,
        deadline_ms: u64,
        finalized_ms: Option<u64>,
    },
}

impl Violation {
    pub fn is_safety(&self) -> bool {
        matches!(
            self,
            Violation::Safety { .. }
                | Violation::ConflictingProofs { .. }
                | Violation::Invalid { .. }
                | Violation::BadProof { .. }
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Safety {
                outpoint,
                first,
                first_node,
                second,
                node,
                at_ms,
            } => write!(
                f,
                "SAFETY at {at_ms} ms: node {node} finalized {second:?} spending {outpoint:?}, \
                 already spent by {first:?} finalized on node {first_node}"
            ),
            Violation::ConflictingProofs {
                node,
                at_ms,
                outpoint,
                finalized,
                conflicting,
            } => write!(
                f,
                "SAFETY at {at_ms} ms: node {node} holds valid proofs for {finalized:?} and \
                 {conflicting:?}, both spending {outpoint:?}"
            ),
            Violation::Invalid {
                txid,
                node,
                at_ms,
                reason,
            } => write!(
                f,
                "VALIDITY at {at_ms} ms: node {node} finalized {txid:?}, invalid against the \
                 finalized history: {reason}"
            ),
            Violation::BadProof {
                txid,
                node,
                at_ms,
                reason,
            } => write!(
                f,
                "VALIDITY at {at_ms} ms: node {node} finalized {txid:?} with a proof that does \
                 not verify: {reason}"
            ),
            Violation::Refinalized { txid, node, at_ms } => write!(
                f,
                "at {at_ms} ms: node {node} finalized {txid:?} a second time"
            ),
            Violation::Agreement {
                txid,
                first_node,
                first_ms,
                node,
                deadline_ms,
            } => write!(
                f,
                "AGREEMENT: {txid:?} finalized on node {first_node} at {first_ms} ms, but not on \
                 node {node} by {deadline_ms} ms"
            ),
            Violation::Liveness {
                txid,
                node,
                submitted_ms,
                deadline_ms,
                finalized_ms,
            } => write!(
                f,
                "LIVENESS: {txid:?} submitted at {submitted_ms} ms not finalized on node {node} \
                 by {deadline_ms} ms (finalized: {finalized_ms:?})"
            ),
        }
    }
}

/// A transaction the liveness checker holds the network to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessDuty {
    pub txid: Hash,
    pub submitted_ms: u64,
}

/// When the checked period starts and how long finality may take in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Every partition healed, every crashed node restarted, no more loss.
    pub faults_end_ms: u64,
    pub bound_ms: u64,
    pub run_end_ms: u64,
}

pub struct Checkers {
    /// Every epoch's finality committee (by epoch): proofs are checked
    /// against the one of their votes' epoch.
    committees: Vec<EpochCommittee>,
    /// Signature verdicts shared with the engines: each computed once.
    verdicts: SharedVerdicts,
    params: ValidationParams,
    /// What finality votes of this chain sign besides the chain id.
    genesis_hash: Hash,
    honest: Vec<bool>,
    /// Genesis plus every transaction finalized anywhere honest, in first-finalization order.
    history: MemUtxoSet,
    /// The one transaction allowed to spend each outpoint, and who finalized it first.
    winners: BTreeMap<OutPoint, (Hash, usize)>,
    /// Per finalized txid, when each node finalized it.
    finalized: BTreeMap<Hash, Vec<Option<u64>>>,
    /// Votes whose signature verified, and per `(root, txid)` a path that
    /// proved it: every node's proof of one tx repeats them, each is
    /// checked once (a path is compared in place, never copied to look up).
    verified_votes: HashSet<FinalityVote>,
    verified_paths: HashMap<(Hash, Hash), MerklePath>,
    violations: Vec<Violation>,
}

impl Checkers {
    /// `honest[i]`: node `i` is honest and held to the properties.
    pub fn new(
        committees: Vec<EpochCommittee>,
        params: ValidationParams,
        genesis_hash: Hash,
        honest: Vec<bool>,
        genesis: MemUtxoSet,
    ) -> Checkers {
        Checkers {
            committees,
            verdicts: SharedVerdicts::default(),
            params,
            genesis_hash,
            honest,
            history: genesis,
            winners: BTreeMap::new(),
            finalized: BTreeMap::new(),
            verified_votes: HashSet::new(),
            verified_paths: HashMap::new(),
            violations: Vec::new(),
        }
    }

    /// The signature verdicts to share with every engine of the run.
    pub fn verdicts(&self) -> SharedVerdicts {
        self.verdicts.clone()
    }

    pub fn is_honest(&self, node: usize) -> bool {
        self.honest.get(node).copied().unwrap_or(false)
    }

    /// Checks one `Finalized` event: safety against every earlier finality,
    /// validity of the tx against history, and the proof against the set.
    pub fn on_finalized(&mut self, node: usize, at_ms: u64, tx: &Tx, proof: &FinalityProof) {
        if !self.is_honest(node) {
            return;
        }
        let txid = tx.txid();
        let nodes = self.honest.len();
        let times = self
            .finalized
            .entry(txid)
            .or_insert_with(|| vec![None; nodes]);
        match times.get_mut(node) {
            Some(Some(_)) => {
                self.violations
                    .push(Violation::Refinalized { txid, node, at_ms });
                return;
            }
            Some(slot) => *slot = Some(at_ms),
            None => return,
        }
        self.check_proof(node, at_ms, txid, tx, proof);
        let mut conflict = false;
        for input in &tx.inputs {
            match self.winners.get(&input.prev) {
                Some((first, first_node)) if *first != txid => {
                    conflict = true;
                    self.violations.push(Violation::Safety {
                        outpoint: input.prev,
                        first: *first,
                        first_node: *first_node,
                        second: txid,
                        node,
                        at_ms,
                    });
                }
                _ => {}
            }
        }
        let first_time = tx
            .inputs
            .iter()
            .all(|i| !self.winners.contains_key(&i.prev));
        if conflict || !first_time {
            return;
        }
        match validate(tx, &self.history, &self.params) {
            Ok(_) => {
                self.history.apply(tx);
                for input in &tx.inputs {
                    self.winners.insert(input.prev, (txid, node));
                }
            }
            Err(reason) => self.violations.push(Violation::Invalid {
                txid,
                node,
                at_ms,
                reason,
            }),
        }
    }

    fn check_proof(&mut self, node: usize, at_ms: u64, txid: Hash, tx: &Tx, proof: &FinalityProof) {
        let verdict = if proof.tx != *tx {
            Err(ProofError::WrongPath { index: 0, txid })
        } else {
            let committees = &self.committees;
            let set = |epoch| {
                let e = usize::try_from(epoch).ok()?;
                committees.get(e).map(|c| &c.committee)
            };
            let (verdicts, votes, paths) = (
                &self.verdicts,
                &mut self.verified_votes,
                &mut self.verified_paths,
            );
            let signature_ok = |vote: &FinalityVote| {
                votes.contains(vote) || (verdicts.verify(vote) && votes.insert(vote.clone()))
            };
            let path_ok = |txid: &Hash, vote: &FinalityVote, path: &MerklePath| {
                let key = (vote.root, *txid);
                if paths.get(&key) == Some(path) {
                    return true;
                }
                let proves = path.proves(txid, &vote.root);
                if proves {
                    paths.insert(key, path.clone());
                }
                proves
            };
            let (chain, genesis) = (self.params.chain_id, self.genesis_hash);
            verify_proof_parts_with(proof, chain, genesis, set, signature_ok, path_ok).map(|_| ())
        };
        if let Err(reason) = verdict {
            self.violations.push(Violation::BadProof {
                txid,
                node,
                at_ms,
                reason,
            });
        }
    }

    /// An honest engine's own `SafetyViolation` event.
    pub fn on_conflicting_proofs(
        &mut self,
        node: usize,
        at_ms: u64,
        outpoint: OutPoint,
        finalized: Hash,
        conflicting: Hash,
    ) {
        if self.is_honest(node) {
            self.violations.push(Violation::ConflictingProofs {
                node,
                at_ms,
                outpoint,
                finalized,
                conflicting,
            });
        }
    }

    /// When `node` finalized `txid`, if it did.
    pub fn finalized_at(&self, txid: &Hash, node: usize) -> Option<u64> {
        self.finalized.get(txid)?.get(node).copied().flatten()
    }

    /// Every txid finalized on some honest node, with per-node times.
    pub fn finalized(&self) -> &BTreeMap<Hash, Vec<Option<u64>>> {
        &self.finalized
    }

    /// Liveness: each duty finalizes on every node in `required` within
    /// `bound_ms` of `max(submitted, faults_end)`. A duty already finalized
    /// somewhere before the faults ended is exempt: nodes that missed its
    /// proof during the faults catch up by block sync, which is not consensus.
    /// Returns how many duties were judged.
    pub fn check_liveness(
        &mut self,
        duties: &[LivenessDuty],
        required: &[usize],
        period: Period,
    ) -> usize {
        let mut judged = 0;
        for duty in duties {
            let deadline_ms = duty.submitted_ms.max(period.faults_end_ms) + period.bound_ms;
            let settled_during_faults = self
                .first_finality(&duty.txid)
                .is_some_and(|(t, _)| t < period.faults_end_ms);
            if deadline_ms > period.run_end_ms || settled_during_faults {
                continue;
            }
            judged += 1;
            for &node in required {
                let finalized_ms = self.finalized_at(&duty.txid, node);
                if !finalized_ms.is_some_and(|t| t <= deadline_ms) {
                    self.violations.push(Violation::Liveness {
                        txid: duty.txid,
                        node,
                        submitted_ms: duty.submitted_ms,
                        deadline_ms,
                        finalized_ms,
                    });
                }
            }
        }
        judged
    }

    /// Agreement: every tx first finalized on an honest node after the
    /// faults ended (conflict winners included) reaches every node in
    /// `required` within the bound, so honest nodes end with the same history.
    pub fn check_agreement(&mut self, required: &[usize], period: Period) {
        let mut missing = Vec::new();
        for txid in self.finalized.keys() {
            let Some((first_ms, first_node)) = self.first_finality(txid) else {
                continue;
            };
            let deadline_ms = first_ms + period.bound_ms;
            if first_ms < period.faults_end_ms || deadline_ms > period.run_end_ms {
                continue;
            }
            for &node in required {
                if !self
                    .finalized_at(txid, node)
                    .is_some_and(|t| t <= deadline_ms)
                {
                    missing.push(Violation::Agreement {
                        txid: *txid,
                        first_node,
                        first_ms,
                        node,
                        deadline_ms,
                    });
                }
            }
        }
        self.violations.extend(missing);
    }

    /// Earliest honest finalization of `txid`: (time, node).
    fn first_finality(&self, txid: &Hash) -> Option<(u64, usize)> {
        self.finalized
            .get(txid)?
            .iter()
            .enumerate()
            .filter_map(|(node, t)| t.map(|t| (t, node)))
            .min()
    }

    /// (node, tx) pairs where an up honest node lacks a tx finalized elsewhere.
    pub fn unsynced(&self, required: &[usize]) -> usize {
        self.finalized
            .keys()
            .map(|txid| {
                required
                    .iter()
                    .filter(|&&n| self.finalized_at(txid, n).is_none())
                    .count()
            })
            .sum()
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{merkle, Keypair};
    use crate::finality::{FinalityVote, ValidatorSet, VoteScope};
    use crate::types::{Amount, ChainId, TxOut, Validator, VrfPublicBytes};
    use crate::wallet::{build_transfer, Spendable};

    const CHAIN: ChainId = ChainId(3);
    const SCOPE: VoteScope = VoteScope {
        chain_id: CHAIN,
        genesis_hash: Hash::ZERO,
        epoch: 0,
    };

    struct World {
        voters: Vec<Keypair>,
        wallet: Keypair,
        genesis: MemUtxoSet,
        checkers: Checkers,
    }

    fn world() -> World {
        let voters: Vec<Keypair> = (0..3)
            .map(|i| Keypair::from_seed_label(&format!("v{i}")))
            .collect();
        let set = ValidatorSet::new(
            voters
                .iter()
                .map(|k| Validator {
                    id: k.public(),
                    vrf_key: VrfPublicBytes([0; 32]),
                    weight: 10,
                })
                .collect(),
        )
        .unwrap();
        let wallet = Keypair::from_seed_label("wallet");
        let mut genesis = MemUtxoSet::default();
        genesis.add_outputs(
            Hash::ZERO,
            &[TxOut {
                value: Amount(1_000_000),
                address: crate::types::Address::from_pubkey(&wallet.public()),
            }],
        );
        let params = ValidationParams {
            chain_id: CHAIN,
            min_fee: Amount(1_000),
            max_tx_bytes: 16_384,
        };
        let honest = vec![true, true, false];
        let committee = EpochCommittee {
            epoch: 0,
            committee: set,
        };
        let checkers = Checkers::new(
            vec![committee],
            params,
            SCOPE.genesis_hash,
            honest,
            genesis.clone(),
        );
        World {
            voters,
            wallet,
            genesis,
            checkers,
        }
    }

    impl World {
        /// A spend of the genesis output paying `value`.
        fn spend(&self, value: u64) -> Tx {
            let input = Spendable {
                outpoint: OutPoint {
                    txid: Hash::ZERO,
                    vout: 0,
                },
                value: Amount(1_000_000),
                key: &self.wallet,
            };
            let out = TxOut {
                value: Amount(value),
                address: crate::types::Address([7; 20]),
            };
            build_transfer(&[input], &[out], Amount(1_000), out.address, CHAIN).unwrap()
        }

        /// A proof signed by the first `signers` validators.
        fn proof(&self, tx: &Tx, signers: usize) -> FinalityProof {
            let txid = tx.txid();
            let votes = self.voters[..signers]
                .iter()
                .map(|k| {
                    let vote = FinalityVote::sign(k, SCOPE, 0, &[txid]);
                    (vote, merkle::root_and_path(&[txid], 0).unwrap().1)
                })
                .collect();
            FinalityProof {
                tx: tx.clone(),
                votes,
            }
        }
    }

    #[test]
    fn conflicting_finalizations_on_two_honest_nodes_break_safety() {
        let mut w = world();
        let (a, b) = (w.spend(500_000), w.spend(400_000));
        let (pa, pb) = (w.proof(&a, 3), w.proof(&b, 3));
        w.checkers.on_finalized(0, 10, &a, &pa);
        w.checkers.on_finalized(1, 10, &a, &pa);
        assert!(w.checkers.violations().is_empty());
        w.checkers.on_finalized(1, 20, &b, &pb);
        assert!(matches!(
            w.checkers.violations(),
            [Violation::Safety {
                node: 1,
                first_node: 0,
                ..
            }]
        ));
    }

    #[test]
    fn byzantine_nodes_are_not_held_to_anything() {
        let mut w = world();
        let (a, b) = (w.spend(500_000), w.spend(400_000));
        w.checkers.on_finalized(2, 10, &a, &w.proof(&a, 1));
        w.checkers.on_finalized(2, 10, &b, &w.proof(&b, 1));
        assert!(w.checkers.violations().is_empty());
    }

    #[test]
    fn short_proof_and_overspend_break_validity() {
        let mut w = world();
        let a = w.spend(500_000);
        w.checkers.on_finalized(0, 10, &a, &w.proof(&a, 2));
        assert!(matches!(
            w.checkers.violations(),
            [Violation::BadProof {
                reason: ProofError::ShortWeight { have: 20, need: 21 },
                ..
            }]
        ));
        let mut w = world();
        let mut greedy = w.spend(500_000);
        greedy.outputs[0].value = Amount(2_000_000);
        crate::wallet::sign_inputs(&mut greedy, &[&w.wallet], CHAIN);
        w.checkers
            .on_finalized(0, 10, &greedy, &w.proof(&greedy, 3));
        assert!(matches!(
            w.checkers.violations(),
            [Violation::Invalid {
                reason: TxError::Overspend { .. },
                ..
            }]
        ));
        assert_eq!(w.genesis.entries().count(), 1);
    }

    #[test]
    fn liveness_and_agreement_count_only_after_faults_end() {
        let mut w = world();
        let a = w.spend(500_000);
        w.checkers.on_finalized(0, 1_500, &a, &w.proof(&a, 3));
        let duty = [LivenessDuty {
            txid: a.txid(),
            submitted_ms: 100,
        }];
        let period = Period {
            faults_end_ms: 1_000,
            bound_ms: 1_000,
            run_end_ms: 5_000,
        };
        w.checkers.check_liveness(&duty, &[0, 1], period);
        w.checkers.check_agreement(&[0, 1], period);
        assert!(matches!(
            w.checkers.violations(),
            [
                Violation::Liveness {
                    node: 1,
                    deadline_ms: 2_000,
                    finalized_ms: None,
                    ..
                },
                Violation::Agreement {
                    node: 1,
                    first_node: 0,
                    ..
                },
            ]
        ));
        // Finalized somewhere during the faults: node 1 missing it is sync's job.
        let mut w = world();
        w.checkers.on_finalized(0, 500, &a, &w.proof(&a, 3));
        w.checkers.check_liveness(&duty, &[0, 1], period);
        w.checkers.check_agreement(&[0, 1], period);
        assert!(w.checkers.violations().is_empty());
        assert_eq!(w.checkers.unsynced(&[0, 1]), 1);
    }
}
