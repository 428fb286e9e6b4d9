//! Node metrics, shared by every thread and rendered as Prometheus text on
//! the RPC port's `/metrics`. Lock-free counters and fixed-bucket histograms:
//! recording never blocks a thread, and memory is fixed.
//!
//! It must never hold anything keyed by outside input (no per-peer or
//! per-txid series): label sets are fixed here.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Channels whose fullness is counted as back-pressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// RPC workers → consensus thread.
    ConsensusInbox,
    /// Consensus thread → ledger thread.
    Ledger,
}

impl Channel {
    const ALL: [Channel; 2] = [Channel::ConsensusInbox, Channel::Ledger];

    fn label(self) -> &'static str {
        match self {
            Channel::ConsensusInbox => "consensus_inbox",
            Channel::Ledger => "ledger",
        }
    }
}

/// A histogram over fixed upper bounds (milliseconds).
#[derive(Debug)]
pub struct Histogram {
    bounds_ms: &'static [u64],
    /// One count per bound, plus `+Inf`.
    buckets: Vec<AtomicU64>,
    sum_ms: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds_ms: &'static [u64]) -> Histogram {
        Histogram {
            bounds_ms,
            buckets: (0..=bounds_ms.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ms: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe_ms(&self, value_ms: u64) {
        let index = self
            .bounds_ms
            .iter()
            .position(|&bound| value_ms <= bound)
            .unwrap_or(self.bounds_ms.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum_ms.fetch_add(value_ms, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Each bucket's upper bound (`None`: the rest) and its own count.
    pub fn buckets(&self) -> Vec<(Option<u64>, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (self.bounds_ms.get(i).copied(), b.load(Relaxed)))
            .collect()
    }

    /// Prometheus wants cumulative buckets in seconds.
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = self
                .bounds_ms
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |ms| seconds(*ms));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum {}", seconds(self.sum_ms.load(Relaxed)));
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

const LATENCY_BOUNDS_MS: &[u64] = &[
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];
const COMMIT_BOUNDS_MS: &[u64] = &[1, 2, 5, 10, 25, 50, 100, 250, 1_000, 5_000];

/// Every metric of one node.
#[derive(Debug)]
pub struct Metrics {
    pub txs_submitted: AtomicU64,
    pub txs_finalized: AtomicU64,
    pub txs_rejected: AtomicU64,
    pub txs_expired: AtomicU64,
    /// Validators caught signing window votes for conflicting txs.
    pub equivocations: AtomicU64,
    /// Mirrors of the engine's own counters, refreshed by the consensus thread.
    pub polls_started: AtomicU64,
    pub polls_succeeded: AtomicU64,
    pub polls_failed: AtomicU64,
    pub mempool_txs: AtomicU64,
    pub safety_violations: AtomicU64,
    /// 1 while finalization is halted by a safety violation (seen now or
    /// persisted before a restart and not cleared), else 0.
    pub finality_halted: AtomicU64,
    /// 1 while the block thread is catching up with peers' tips (Bitcoin's
    /// `initialblockdownload`), else 0.
    pub block_syncing: AtomicU64,
    /// The latest masternode set the final blocks decided: its epoch,
    /// member count and total weight (DESIGN §7).
    pub masternode_set_epoch: AtomicU64,
    pub masternode_set_members: AtomicU64,
    pub masternode_set_weight: AtomicU64,
    /// Batches the ledger thread drained and committed.
    pub ledger_batches: AtomicU64,
    /// LMDB write transactions (fsyncs) of the ledger thread: one per batch.
    pub ledger_commits: AtomicU64,
    /// LMDB puts and deletes of the ledger thread (the disk ceiling's unit).
    pub ledger_writes: AtomicU64,
    /// LMDB puts and deletes of the block thread: archiving, undoing.
    pub block_writes: AtomicU64,
    /// Mirrors of the engine's ed25519 checks (the CPU ceiling's unit).
    pub vote_signatures_verified: AtomicU64,
    pub tx_signatures_verified: AtomicU64,
    /// The block thread's ed25519 checks of the votes in blocks' proofs.
    pub block_vote_signatures_verified: AtomicU64,
    pub rpc_requests: AtomicU64,
    pub rpc_errors: AtomicU64,
    /// Consensus messages from peers handed to the engine.
    pub peer_messages: AtomicU64,
    pub peer_connects: AtomicU64,
    pub peer_disconnects: AtomicU64,
    /// Provably invalid consensus messages handed to the net layer's score.
    pub consensus_misbehaviours: AtomicU64,
    /// Mirrors of the engine's per-peer work budgets, summed over peers:
    /// units charged (signature checks, Merkle trees) and messages dropped
    /// over budget.
    pub consensus_work_charged: AtomicU64,
    pub consensus_work_dropped: AtomicU64,
    /// Peers' `GetRecentProofs` the catch-up thread started serving, and
    /// those it refused (served already, too soon, too many strangers).
    pub catch_up_requests_served: AtomicU64,
    pub catch_up_requests_refused: AtomicU64,
    /// Proofs the catch-up thread read from the store (and sent).
    pub catch_up_proofs_read: AtomicU64,
    backpressure: [AtomicU64; 2],
    /// Admission to durable commit, per finalized transaction.
    pub finality_latency: Histogram,
    /// One ledger batch's write transaction (fsync included).
    pub lmdb_commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            txs_submitted: AtomicU64::new(0),
            txs_finalized: AtomicU64::new(0),
            txs_rejected: AtomicU64::new(0),
            txs_expired: AtomicU64::new(0),
            equivocations: AtomicU64::new(0),
            polls_started: AtomicU64::new(0),
            polls_succeeded: AtomicU64::new(0),
            polls_failed: AtomicU64::new(0),
            mempool_txs: AtomicU64::new(0),
            safety_violations: AtomicU64::new(0),
            finality_halted: AtomicU64::new(0),
            block_syncing: AtomicU64::new(0),
            masternode_set_epoch: AtomicU64::new(0),
            masternode_set_members: AtomicU64::new(0),
            masternode_set_weight: AtomicU64::new(0),
            ledger_batches: AtomicU64::new(0),
            ledger_commits: AtomicU64::new(0),
            ledger_writes: AtomicU64::new(0),
            block_writes: AtomicU64::new(0),
            vote_signatures_verified: AtomicU64::new(0),
            tx_signatures_verified: AtomicU64::new(0),
            block_vote_signatures_verified: AtomicU64::new(0),
            rpc_requests: AtomicU64::new(0),
            rpc_errors: AtomicU64::new(0),
            peer_messages: AtomicU64::new(0),
            peer_connects: AtomicU64::new(0),
            peer_disconnects: AtomicU64::new(0),
            consensus_misbehaviours: AtomicU64::new(0),
            consensus_work_charged: AtomicU64::new(0),
            consensus_work_dropped: AtomicU64::new(0),
            catch_up_requests_served: AtomicU64::new(0),
            catch_up_requests_refused: AtomicU64::new(0),
            catch_up_proofs_read: AtomicU64::new(0),
            backpressure: [AtomicU64::new(0), AtomicU64::new(0)],
            finality_latency: Histogram::new(LATENCY_BOUNDS_MS),
            lmdb_commit: Histogram::new(COMMIT_BOUNDS_MS),
        }
    }
}

impl Metrics {
    /// A send found `channel` full (the sender waited or gave up).
    pub fn count_backpressure(&self, channel: Channel) {
        let index = Channel::ALL.iter().position(|c| *c == channel).unwrap_or(0);
        if let Some(counter) = self.backpressure.get(index) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn backpressure(&self, channel: Channel) -> u64 {
        Channel::ALL
            .iter()
            .position(|c| *c == channel)
            .and_then(|i| self.backpressure.get(i))
            .map_or(0, |c| c.load(Relaxed))
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 26] = [
            (
                "timecoin_txs_submitted_total",
                "Transactions submitted over RPC",
                &self.txs_submitted,
            ),
            (
                "timecoin_txs_finalized_total",
                "Transactions finalized and durable",
                &self.txs_finalized,
            ),
            (
                "timecoin_txs_rejected_total",
                "Transactions rejected by consensus",
                &self.txs_rejected,
            ),
            (
                "timecoin_txs_expired_total",
                "Transactions expired without a quorum",
                &self.txs_expired,
            ),
            (
                "timecoin_window_equivocations_total",
                "Conflicting txs signed in one validator's window votes",
                &self.equivocations,
            ),
            (
                "timecoin_consensus_misbehaviours_total",
                "Provably invalid window votes and proofs from peers (penalized)",
                &self.consensus_misbehaviours,
            ),
            (
                "timecoin_consensus_work_charged_total",
                "Work units (signature checks, Merkle trees) charged to peers' budgets",
                &self.consensus_work_charged,
            ),
            (
                "timecoin_consensus_work_dropped_total",
                "Peer messages dropped unchecked because the peer's work budget was spent",
                &self.consensus_work_dropped,
            ),
            (
                "timecoin_catch_up_requests_served_total",
                "Peers' requests for recent finality proofs being or been served",
                &self.catch_up_requests_served,
            ),
            (
                "timecoin_catch_up_requests_refused_total",
                "Peers' requests for recent finality proofs refused (served already, too soon, too many strangers)",
                &self.catch_up_requests_refused,
            ),
            (
                "timecoin_catch_up_proofs_read_total",
                "Finality proofs read from the store and sent to catching-up peers",
                &self.catch_up_proofs_read,
            ),
            (
                "timecoin_polls_started_total",
                "Snowball polls started",
                &self.polls_started,
            ),
            (
                "timecoin_polls_succeeded_total",
                "Snowball polls with an alpha quorum",
                &self.polls_succeeded,
            ),
            (
                "timecoin_polls_failed_total",
                "Snowball polls without a quorum",
                &self.polls_failed,
            ),
            (
                "timecoin_ledger_batches_total",
                "Ledger write batches committed",
                &self.ledger_batches,
            ),
            (
                "timecoin_ledger_commits_total",
                "LMDB write transactions (fsyncs) of the ledger thread",
                &self.ledger_commits,
            ),
            (
                "timecoin_ledger_writes_total",
                "LMDB puts and deletes committed by the ledger thread",
                &self.ledger_writes,
            ),
            (
                "timecoin_block_writes_total",
                "LMDB puts and deletes committed by the block thread",
                &self.block_writes,
            ),
            (
                "timecoin_vote_signatures_verified_total",
                "ed25519 checks of finality votes (each vote once)",
                &self.vote_signatures_verified,
            ),
            (
                "timecoin_tx_signatures_verified_total",
                "ed25519 checks of transaction inputs",
                &self.tx_signatures_verified,
            ),
            (
                "timecoin_block_vote_signatures_verified_total",
                "ed25519 checks of finality votes in blocks (each vote once)",
                &self.block_vote_signatures_verified,
            ),
            (
                "timecoin_rpc_requests_total",
                "JSON-RPC calls handled",
                &self.rpc_requests,
            ),
            (
                "timecoin_rpc_errors_total",
                "JSON-RPC calls answered with an error",
                &self.rpc_errors,
            ),
            (
                "timecoin_peer_messages_total",
                "Consensus messages from peers handed to the engine",
                &self.peer_messages,
            ),
            (
                "timecoin_peer_connects_total",
                "Peer connections established",
                &self.peer_connects,
            ),
            (
                "timecoin_peer_disconnects_total",
                "Peer connections closed",
                &self.peer_disconnects,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        let gauges: [(&str, &str, &AtomicU64); 7] = [
            (
                "timecoin_block_syncing",
                "1 while catching up with peers' chain tips",
                &self.block_syncing,
            ),
            (
                "timecoin_masternode_set_epoch",
                "Epoch of the latest masternode set the final blocks decided",
                &self.masternode_set_epoch,
            ),
            (
                "timecoin_masternode_set_members",
                "Masternodes in the latest decided set",
                &self.masternode_set_members,
            ),
            (
                "timecoin_masternode_set_weight",
                "Total weight of the latest decided masternode set",
                &self.masternode_set_weight,
            ),
            (
                "timecoin_mempool_txs",
                "Transactions in the mempool",
                &self.mempool_txs,
            ),
            (
                "timecoin_safety_violations",
                "Conflicting finality proofs seen (finalization halts)",
                &self.safety_violations,
            ),
            (
                "timecoin_finality_halted",
                "1 while a safety violation halts finalization (until an operator clears it)",
                &self.finality_halted,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                value.load(Relaxed)
            );
        }
        let name = "timecoin_channel_backpressure_total";
        let _ = writeln!(
            out,
            "# HELP {name} Sends that found a bounded channel full\n# TYPE {name} counter"
        );
        for channel in Channel::ALL {
            let _ = writeln!(
                out,
                "{name}{{channel=\"{}\"}} {}",
                channel.label(),
                self.backpressure(channel)
            );
        }
        self.finality_latency.render(
            &mut out,
            "timecoin_finality_latency_seconds",
            "Admission to durable finality, per transaction",
        );
        self.lmdb_commit.render(
            &mut out,
            "timecoin_lmdb_commit_seconds",
            "One LMDB write transaction of finalized transactions, fsync included",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_seconds() {
        let m = Metrics::default();
        m.lmdb_commit.observe_ms(3);
        m.lmdb_commit.observe_ms(7_000);
        let text = m.render();
        assert!(text.contains("timecoin_lmdb_commit_seconds_bucket{le=\"0.002\"} 0"));
        assert!(text.contains("timecoin_lmdb_commit_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("timecoin_lmdb_commit_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("timecoin_lmdb_commit_seconds_sum 7.003"));
    }

    #[test]
    fn backpressure_is_counted_per_channel() {
        let m = Metrics::default();
        m.count_backpressure(Channel::Ledger);
        assert_eq!(m.backpressure(Channel::Ledger), 1);
        assert_eq!(m.backpressure(Channel::ConsensusInbox), 0);
        assert!(m
            .render()
            .contains("timecoin_channel_backpressure_total{channel=\"ledger\"} 1"));
    }
}
