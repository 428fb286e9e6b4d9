//! Counters of the net thread, readable from any thread (`getpeerinfo`,
//! `getnetworkinfo`, Prometheus). Relaxed atomics: each counter is
//! independent. Never holds anything keyed by outside input.

use super::admission::Refusal;
use super::message::{MessageClass, MessageTag};
use crate::consensus::messages::Verdict;
use std::sync::atomic::{AtomicU64, Ordering};

const TAGS: usize = MessageTag::ALL.len();
const CLASSES: usize = MessageClass::ALL.len();
const REFUSALS: usize = Refusal::ALL.len();
const VERDICTS: [(Verdict, &str); 3] = [
    (Verdict::Valid, "valid"),
    (Verdict::Invalid, "invalid"),
    (Verdict::Unknown, "unknown"),
];

#[derive(Debug, Default)]
pub struct NetMetrics {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    messages_in: [AtomicU64; TAGS],
    messages_out: [AtomicU64; TAGS],
    /// Established peers (gauge).
    pub peers: AtomicU64,
    /// Active bans (gauge).
    pub bans: AtomicU64,
    /// High-water mark of any peer's write queue, sampled every tick, in bytes.
    pub max_write_queue_bytes: AtomicU64,
    /// Events dropped because an outbox was full (back-pressure).
    pub outbox_drops: AtomicU64,
    /// Commands refused because the command channel was full.
    pub command_drops: AtomicU64,
    /// Connections closed for misbehaviour (and banned).
    pub misbehaviour_disconnects: AtomicU64,
    /// Connections closed because the peer did not read its queue.
    pub write_queue_overflows: AtomicU64,
    /// Requests dropped by a rate limit, per [`MessageClass`].
    rate_limited: [AtomicU64; CLASSES],
    /// `Votes`/`Txs` that answered no request of ours, dropped.
    pub unsolicited_responses: AtomicU64,
    /// Per-txid verdicts in the `Votes` peers sent us. `Unknown`: the
    /// validator lacks the tx (it then sends `GetTxs`) or, asked for its
    /// vote, has not locally accepted it yet.
    verdicts_in: [AtomicU64; 3],
    /// Received gossip (`Tx`, `Proof`) already seen, not delivered again.
    pub gossip_duplicates: AtomicU64,
    /// Broadcasts of gossip already relayed, not sent again.
    pub gossip_suppressed: AtomicU64,
    /// Inbound connections refused, per [`Refusal`].
    inbound_refused: [AtomicU64; REFUSALS],
    /// Inbound connections accepted (some after evicting another).
    pub inbound_admitted: AtomicU64,
    /// Inbound strangers closed to make room for a newcomer.
    pub inbound_evicted: AtomicU64,
    /// Connections closed because all buffers together passed the budget.
    pub budget_disconnects: AtomicU64,
    /// Handshakes that failed without blame (another version, too slow): no ban.
    pub handshake_drops: AtomicU64,
    /// Read buffers plus write queues over all connections, in bytes (gauge).
    pub buffered_bytes: AtomicU64,
    /// Highest `buffered_bytes` seen since start.
    pub buffered_bytes_peak: AtomicU64,
    /// Second connections to an already connected node, closed by the tie-break.
    pub duplicate_connections: AtomicU64,
    pub dials: AtomicU64,
}

/// A copy of every counter at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetMetricsSnapshot {
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `(message type name, count)` for every tag.
    pub messages_in: Vec<(&'static str, u64)>,
    pub messages_out: Vec<(&'static str, u64)>,
    pub peers: u64,
    pub bans: u64,
    pub max_write_queue_bytes: u64,
    pub outbox_drops: u64,
    pub command_drops: u64,
    pub misbehaviour_disconnects: u64,
    pub write_queue_overflows: u64,
    /// Over every class.
    pub rate_limited: u64,
    /// `(class name, count)` for every [`MessageClass`].
    pub rate_limited_by_class: Vec<(&'static str, u64)>,
    pub unsolicited_responses: u64,
    /// `(verdict name, count)`: valid, invalid, unknown.
    pub verdicts_in: Vec<(&'static str, u64)>,
    pub gossip_duplicates: u64,
    pub gossip_suppressed: u64,
    /// Over every reason.
    pub inbound_refused: u64,
    /// `(reason name, count)` for every [`Refusal`].
    pub inbound_refused_by_reason: Vec<(&'static str, u64)>,
    pub inbound_admitted: u64,
    pub inbound_evicted: u64,
    pub budget_disconnects: u64,
    pub handshake_drops: u64,
    pub buffered_bytes: u64,
    pub buffered_bytes_peak: u64,
    pub duplicate_connections: u64,
    pub dials: u64,
}

impl NetMetricsSnapshot {
    pub fn messages_in_of(&self, tag: MessageTag) -> u64 {
        self.messages_in.get(tag.index()).map_or(0, |(_, n)| *n)
    }

    pub fn messages_out_of(&self, tag: MessageTag) -> u64 {
        self.messages_out.get(tag.index()).map_or(0, |(_, n)| *n)
    }

    pub fn inbound_refused_of(&self, refusal: Refusal) -> u64 {
        self.inbound_refused_by_reason
            .get(refusal.index())
            .map_or(0, |(_, n)| *n)
    }

    pub fn rate_limited_of(&self, class: MessageClass) -> u64 {
        self.rate_limited_by_class
            .get(class.index())
            .map_or(0, |(_, n)| *n)
    }

    /// The Prometheus text exposition of every counter (`timecoin_net_*`).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let scalars: [(&str, &str, u64); 20] = [
            ("bytes_in_total", "Bytes received from peers", self.bytes_in),
            ("bytes_out_total", "Bytes sent to peers", self.bytes_out),
            ("peers", "Established peer connections", self.peers),
            ("bans", "Active bans", self.bans),
            (
                "max_write_queue_bytes",
                "Largest peer write queue at the last tick",
                self.max_write_queue_bytes,
            ),
            (
                "outbox_drops_total",
                "Received messages dropped because an outbox was full",
                self.outbox_drops,
            ),
            (
                "command_drops_total",
                "Outgoing commands dropped because the net channel was full",
                self.command_drops,
            ),
            (
                "misbehaviour_disconnects_total",
                "Peers disconnected and banned for misbehaviour",
                self.misbehaviour_disconnects,
            ),
            (
                "write_queue_overflows_total",
                "Peers disconnected for not reading",
                self.write_queue_overflows,
            ),
            (
                "unsolicited_responses_total",
                "Votes or Txs answering no request of ours, dropped",
                self.unsolicited_responses,
            ),
            (
                "gossip_duplicates_total",
                "Received gossip already seen",
                self.gossip_duplicates,
            ),
            (
                "gossip_suppressed_total",
                "Broadcasts of gossip already relayed",
                self.gossip_suppressed,
            ),
            (
                "inbound_admitted_total",
                "Inbound connections accepted",
                self.inbound_admitted,
            ),
            (
                "inbound_evicted_total",
                "Inbound strangers evicted to make room",
                self.inbound_evicted,
            ),
            (
                "budget_disconnects_total",
                "Connections closed because all buffers together passed the budget",
                self.budget_disconnects,
            ),
            (
                "handshake_drops_total",
                "Handshakes failed without blame (version, timeout), not banned",
                self.handshake_drops,
            ),
            (
                "buffered_bytes",
                "Read buffers and write queues over all connections",
                self.buffered_bytes,
            ),
            (
                "buffered_bytes_peak",
                "Highest buffered_bytes since start",
                self.buffered_bytes_peak,
            ),
            (
                "duplicate_connections_total",
                "Second connections to a connected node closed",
                self.duplicate_connections,
            ),
            ("dials_total", "Outbound connection attempts", self.dials),
        ];
        for (name, help, value) in scalars {
            let _ = writeln!(out, "# HELP timecoin_net_{name} {help}\n# TYPE timecoin_net_{name} {}\ntimecoin_net_{name} {value}",
                if name.ends_with("_total") { "counter" } else { "gauge" });
        }
        let labelled = [
            (
                "messages_in_total",
                "Messages received by type",
                "type",
                &self.messages_in,
            ),
            (
                "messages_out_total",
                "Messages sent by type",
                "type",
                &self.messages_out,
            ),
            (
                "rate_limited_total",
                "Requests dropped by a rate limit, by message class",
                "class",
                &self.rate_limited_by_class,
            ),
            (
                "verdicts_in_total",
                "Per-txid verdicts received in Votes",
                "verdict",
                &self.verdicts_in,
            ),
            (
                "inbound_refused_total",
                "Inbound connections refused, by reason",
                "reason",
                &self.inbound_refused_by_reason,
            ),
        ];
        for (name, help, label, counts) in labelled {
            let _ = writeln!(
                out,
                "# HELP timecoin_net_{name} {help}\n# TYPE timecoin_net_{name} counter"
            );
            for (value, n) in counts {
                let _ = writeln!(out, "timecoin_net_{name}{{{label}=\"{value}\"}} {n}");
            }
        }
        out
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl NetMetrics {
    pub fn message_in(&self, tag: MessageTag) {
        self.messages_in.get(tag.index()).map(bump);
    }

    pub fn message_out(&self, tag: MessageTag) {
        self.messages_out.get(tag.index()).map(bump);
    }

    pub fn rate_limited(&self, class: MessageClass) {
        self.rate_limited.get(class.index()).map(bump);
    }

    pub fn refused(&self, refusal: Refusal) {
        self.inbound_refused.get(refusal.index()).map(bump);
    }

    pub fn verdict_in(&self, verdict: Verdict) {
        if let Some(i) = VERDICTS.iter().position(|(v, _)| *v == verdict) {
            self.verdicts_in.get(i).map(bump);
        }
    }

    pub fn snapshot(&self) -> NetMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let by_tag = |counters: &[AtomicU64; TAGS]| {
            MessageTag::ALL
                .iter()
                .zip(counters)
                .map(|(t, c)| (t.name(), get(c)))
                .collect()
        };
        let rate_limited_by_class: Vec<(&str, u64)> = MessageClass::ALL
            .iter()
            .zip(&self.rate_limited)
            .map(|(class, c)| (class.name(), get(c)))
            .collect();
        let inbound_refused_by_reason: Vec<(&str, u64)> = Refusal::ALL
            .iter()
            .zip(&self.inbound_refused)
            .map(|(r, c)| (r.name(), get(c)))
            .collect();
        NetMetricsSnapshot {
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            messages_in: by_tag(&self.messages_in),
            messages_out: by_tag(&self.messages_out),
            peers: get(&self.peers),
            bans: get(&self.bans),
            max_write_queue_bytes: get(&self.max_write_queue_bytes),
            outbox_drops: get(&self.outbox_drops),
            command_drops: get(&self.command_drops),
            misbehaviour_disconnects: get(&self.misbehaviour_disconnects),
            write_queue_overflows: get(&self.write_queue_overflows),
            rate_limited: rate_limited_by_class.iter().map(|(_, n)| n).sum(),
            rate_limited_by_class,
            unsolicited_responses: get(&self.unsolicited_responses),
            verdicts_in: VERDICTS
                .iter()
                .zip(&self.verdicts_in)
                .map(|((_, name), c)| (*name, get(c)))
                .collect(),
            gossip_duplicates: get(&self.gossip_duplicates),
            gossip_suppressed: get(&self.gossip_suppressed),
            inbound_refused: inbound_refused_by_reason.iter().map(|(_, n)| n).sum(),
            inbound_refused_by_reason,
            inbound_admitted: get(&self.inbound_admitted),
            inbound_evicted: get(&self.inbound_evicted),
            budget_disconnects: get(&self.budget_disconnects),
            handshake_drops: get(&self.handshake_drops),
            buffered_bytes: get(&self.buffered_bytes),
            buffered_bytes_peak: get(&self.buffered_bytes_peak),
            duplicate_connections: get(&self.duplicate_connections),
            dials: get(&self.dials),
        }
    }
}
