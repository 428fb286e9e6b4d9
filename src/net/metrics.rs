//! Counters of the net thread, readable from any thread (`getpeerinfo`,
//! `getnetworkinfo`, Prometheus). Relaxed atomics: each counter is
//! independent. Never holds anything keyed by outside input.

use super::message::MessageTag;
use std::sync::atomic::{AtomicU64, Ordering};

const TAGS: usize = MessageTag::ALL.len();

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
    /// Messages dropped by a rate limit.
    pub rate_limited: AtomicU64,
    /// Received gossip (`Tx`, `Proof`) already seen, not delivered again.
    pub gossip_duplicates: AtomicU64,
    /// Broadcasts of gossip already relayed, not sent again.
    pub gossip_suppressed: AtomicU64,
    /// Inbound connections refused (banned address or `max_peers` reached).
    pub inbound_refused: AtomicU64,
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
    pub rate_limited: u64,
    pub gossip_duplicates: u64,
    pub gossip_suppressed: u64,
    pub inbound_refused: u64,
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

    /// The Prometheus text exposition of every counter (`timecoin_net_*`).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let scalars: [(&str, &str, u64); 15] = [
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
                "rate_limited_total",
                "Messages dropped by a rate limit",
                self.rate_limited,
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
                "inbound_refused_total",
                "Inbound connections refused",
                self.inbound_refused,
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
        for (direction, counts) in [("in", &self.messages_in), ("out", &self.messages_out)] {
            let _ = writeln!(out, "# HELP timecoin_net_messages_{direction}_total Messages {direction} by type\n# TYPE timecoin_net_messages_{direction}_total counter");
            for (kind, n) in counts {
                let _ = writeln!(
                    out,
                    "timecoin_net_messages_{direction}_total{{type=\"{kind}\"}} {n}"
                );
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

    pub fn snapshot(&self) -> NetMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let by_tag = |counters: &[AtomicU64; TAGS]| {
            MessageTag::ALL
                .iter()
                .zip(counters)
                .map(|(t, c)| (t.name(), get(c)))
                .collect()
        };
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
            rate_limited: get(&self.rate_limited),
            gossip_duplicates: get(&self.gossip_duplicates),
            gossip_suppressed: get(&self.gossip_suppressed),
            inbound_refused: get(&self.inbound_refused),
            duplicate_connections: get(&self.duplicate_connections),
            dials: get(&self.dials),
        }
    }
}
