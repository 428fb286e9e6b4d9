//! What a run measured and what it broke, in one value: the figures the
//! simulator example prints and the verdict tests assert on. Computes
//! nothing about consensus; it summarises the cluster and the checkers.

use super::checkers::{Period, Violation};
use super::cluster::{Cluster, EngineTotals, Role};
use super::{ChurnConfig, SimConfig};
use crate::consensus::NodeId;
use crate::types::Hash;
use std::collections::BTreeMap;
use std::fmt;

/// The 50th and 99th percentiles (nearest rank) of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub count: usize,
}

impl Percentiles {
    pub fn of(mut sample: Vec<u64>) -> Percentiles {
        sample.sort_unstable();
        let rank = |p: usize| {
            let i = (sample.len() * p).div_ceil(100).saturating_sub(1);
            sample.get(i).copied().unwrap_or(0)
        };
        Percentiles {
            p50: rank(50),
            p99: rank(99),
            count: sample.len(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    pub validators: usize,
    pub byzantine: usize,
    /// Byzantine share of the total weight, in percent.
    pub byzantine_weight_pct: f64,
    pub strategy: String,
    pub submitted: usize,
    pub refused: BTreeMap<String, usize>,
    pub conflict_pairs: usize,
    /// Conflict pairs with a side finalized on some honest node.
    pub conflict_pairs_decided: usize,
    /// Distinct txs finalized on at least one honest node.
    pub finalized_txs: usize,
    /// Non-conflicting admitted txs finalized on every up honest node.
    pub finalized_everywhere: usize,
    pub noncon_admitted: usize,
    /// Polls an honest node completed on a tx it then finalized itself.
    pub polls_to_finality: Percentiles,
    /// Submission to `Finalized`, per (honest node, tx), virtual ms.
    pub latency_ms: Percentiles,
    pub messages_delivered: u64,
    pub bytes_delivered: u64,
    pub messages_lost: u64,
    /// Messages that reached a crashed node.
    pub messages_to_down_nodes: u64,
    pub engines: EngineTotals,
    /// (up honest node, tx) pairs missing a tx finalized elsewhere: the
    /// proof gossip they missed during faults (block sync's job).
    pub unsynced: usize,
    pub timers_rearmed_in_past: u64,
    pub period: Period,
    /// Validator churn, if any, and the epochs the run went through.
    pub churn: Option<ChurnConfig>,
    pub epochs: usize,
    /// The largest Byzantine share of one epoch's committee weight, in percent.
    pub max_committee_byzantine_pct: f64,
    /// How many payments liveness judged; `None` when it is not promised
    /// (under 80 % honest weight up).
    pub liveness_checked: Option<usize>,
    pub digest: Hash,
    pub violations: Vec<Violation>,
}

impl SimReport {
    pub(super) fn new(
        config: &SimConfig,
        cluster: &Cluster,
        weights: &[u64],
        required: &[usize],
        period: Period,
        liveness_checked: Option<usize>,
    ) -> SimReport {
        let roles = cluster.roles();
        let checkers = cluster.checkers();
        let total: u64 = weights.iter().sum();
        let byz_weight: u64 = weights
            .iter()
            .zip(&roles)
            .filter(|(_, r)| **r != Role::Honest)
            .map(|(w, _)| *w)
            .sum();
        let subs = cluster.submissions();
        let mut submitted_at: BTreeMap<Hash, u64> = BTreeMap::new();
        for s in subs {
            submitted_at.entry(s.tx.txid()).or_insert(s.at_ms);
        }
        let latencies: Vec<u64> = checkers
            .finalized()
            .iter()
            .filter_map(|(txid, times)| Some((submitted_at.get(txid)?, times)))
            .flat_map(|(at, times)| times.iter().flatten().map(move |t| t.saturating_sub(*at)))
            .collect();
        let pairs: BTreeMap<u32, Vec<Hash>> = subs
            .iter()
            .filter_map(|s| Some((s.double_spends?, s.tx.txid())))
            .fold(BTreeMap::new(), |mut m, (slot, txid)| {
                m.entry(slot).or_insert_with(Vec::new).push(txid);
                m
            });
        let noncon: Vec<Hash> = subs
            .iter()
            .zip(cluster.admitted())
            .filter(|(s, admitted)| **admitted && s.double_spends.is_none())
            .map(|(s, _)| s.tx.txid())
            .collect();
        let everywhere = |txid: &Hash| {
            required
                .iter()
                .all(|&n| checkers.finalized_at(txid, n).is_some())
        };
        let traffic = cluster.traffic();
        let byzantine: Vec<NodeId> = cluster.byzantine_ids();
        let max_committee_byzantine_pct = cluster
            .epoch_committees()
            .iter()
            .map(|c| {
                let set = &c.committee;
                let bad: u64 = byzantine.iter().filter_map(|id| set.weight_of(id)).sum();
                bad as f64 * 100.0 / set.total_weight().max(1) as f64
            })
            .fold(0.0, f64::max);
        SimReport {
            seed: config.seed,
            validators: config.validators,
            byzantine: roles.iter().filter(|r| **r != Role::Honest).count(),
            byzantine_weight_pct: byz_weight as f64 * 100.0 / total.max(1) as f64,
            churn: config.churn,
            epochs: cluster.epoch_committees().len(),
            max_committee_byzantine_pct,
            strategy: config.strategy.to_string(),
            submitted: subs.len(),
            refused: cluster.refusals().clone(),
            conflict_pairs: pairs.len(),
            conflict_pairs_decided: pairs
                .values()
                .filter(|txids| txids.iter().any(|t| checkers.finalized().contains_key(t)))
                .count(),
            finalized_txs: checkers.finalized().len(),
            finalized_everywhere: noncon.iter().filter(|t| everywhere(t)).count(),
            noncon_admitted: noncon.len(),
            polls_to_finality: Percentiles::of(
                cluster
                    .polls_to_finality()
                    .iter()
                    .map(|&p| u64::from(p))
                    .collect(),
            ),
            latency_ms: Percentiles::of(latencies),
            messages_delivered: traffic.delivered,
            bytes_delivered: traffic.bytes_delivered,
            messages_lost: traffic.lost,
            messages_to_down_nodes: traffic.to_down_node,
            engines: cluster.engine_totals(),
            unsynced: checkers.unsynced(required),
            timers_rearmed_in_past: cluster.timers_rearmed_in_past(),
            period,
            liveness_checked,
            digest: cluster.digest(),
            violations: checkers.violations().to_vec(),
        }
    }

    pub fn safety_violations(&self) -> usize {
        self.violations.iter().filter(|v| v.is_safety()).count()
    }

    /// `Ok` if no property broke; otherwise the violations (the first 20)
    /// and the line that replays this run.
    pub fn check(&self) -> Result<(), String> {
        if self.violations.is_empty() {
            return Ok(());
        }
        let mut text = format!(
            "simulation failed with {} violations ({} of safety/validity):\n",
            self.violations.len(),
            self.safety_violations()
        );
        for v in self.violations.iter().take(20) {
            text.push_str(&format!("  {v}\n"));
        }
        text.push_str(&format!("{self}\nreproduce with SIM_SEED={}", self.seed));
        Err(text)
    }

    fn per_tx(&self, total: u64) -> f64 {
        total as f64 / self.finalized_txs.max(1) as f64
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} | {} validators, {} Byzantine ({:.1} % weight, {})",
            self.seed, self.validators, self.byzantine, self.byzantine_weight_pct, self.strategy
        )?;
        if let Some(churn) = self.churn {
            writeln!(
                f,
                "churn: {} out and {} in every {} ms epoch (nodes enter up to {} ms late), {} epochs | Byzantine share of a committee at most {:.1} %",
                churn.swaps,
                churn.swaps,
                churn.epoch_ms,
                churn.skew_ms,
                self.epochs,
                self.max_committee_byzantine_pct
            )?;
        }
        writeln!(
            f,
            "txs: {} submitted, {} refused, {} finalized; non-conflicting finalized on every honest node: {}/{}; conflict pairs decided: {}/{}",
            self.submitted,
            self.refused.values().sum::<usize>(),
            self.finalized_txs,
            self.finalized_everywhere,
            self.noncon_admitted,
            self.conflict_pairs_decided,
            self.conflict_pairs
        )?;
        writeln!(
            f,
            "polls to finality p50/p99: {}/{} | finality latency p50/p99: {}/{} ms (virtual)",
            self.polls_to_finality.p50,
            self.polls_to_finality.p99,
            self.latency_ms.p50,
            self.latency_ms.p99
        )?;
        writeln!(
            f,
            "per finalized tx: {:.0} messages, {:.0} bytes, {:.1} signatures verified | lost {}, to down nodes {} | unsynced {} | timers re-armed in the past {}",
            self.per_tx(self.messages_delivered),
            self.per_tx(self.bytes_delivered),
            self.per_tx(self.engines.signatures_verified),
            self.messages_lost,
            self.messages_to_down_nodes,
            self.unsynced,
            self.timers_rearmed_in_past
        )?;
        let e = &self.engines;
        writeln!(
            f,
            "polls: {} started, {} succeeded, {} failed | votes dropped {}, bad finality votes {}, invalid proofs {}",
            e.polls_started, e.polls_succeeded, e.polls_failed, e.votes_dropped, e.bad_finality_votes, e.proofs_invalid
        )?;
        writeln!(
            f,
            "faults end {} ms, liveness bound {} ms ({}), run end {} ms | safety violations: {} | digest {}",
            self.period.faults_end_ms,
            self.period.bound_ms,
            match self.liveness_checked {
                Some(n) => format!("{n} payments judged"),
                None => "not promised: under 80 % honest weight".to_string(),
            },
            self.period.run_end_ms,
            self.safety_violations(),
            self.digest
        )?;
        for (reason, count) in &self.refused {
            writeln!(f, "  refused x{count}: {reason}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::of((1..=100).rev().collect());
        assert_eq!((p.p50, p.p99, p.count), (50, 99, 100));
        assert_eq!(Percentiles::of(vec![]).p99, 0);
        assert_eq!(Percentiles::of(vec![7]).p50, 7);
    }
}
