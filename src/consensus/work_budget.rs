//! Per-peer work budgets (DESIGN §8): every signature check, Merkle tree
//! and `Query` answer a peer's message makes this node compute is charged
//! to that peer, from a token bucket refilled on injected time. Validators of the current
//! set get a larger bucket than other peers, so strangers can never starve
//! them. Work over budget is dropped (and counted), never queued: a queue
//! would only move the cost later.
//!
//! Pure bookkeeping, bounded: at most `peers` buckets (the oldest
//! forgotten first; the net layer's connection caps keep the live ones far
//! fewer), so peer ids cannot grow it.

use super::messages::NodeId;
use crate::mempool::RecentMap;
use crate::time::MonoTime;

/// One work unit is one ed25519 verification; building a window's Merkle
/// tree (or looking its txids up) costs one unit per this many leaves.
pub const LEAVES_PER_UNIT: usize = 256;

/// Answering a `Query` costs one unit for the message and one per this many
/// txids looked up. Measured in the attack suite (SECURITY.md): a 64-txid
/// `Query` cost the process ~15 µs (~10 µs on the net thread reading and
/// decoding it, ~5 µs on the consensus thread answering), under half a
/// unit. Charged well above that, because receiving it is paid for a
/// refused `Query` too: 2 units answer at most 250 a second per stranger.
pub const QUERY_TXIDS_PER_UNIT: usize = 64;

/// Refill rates and bucket sizes, in work units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkBudgetParams {
    pub validator_units_per_s: u64,
    pub validator_burst_units: u64,
    pub stranger_units_per_s: u64,
    pub stranger_burst_units: u64,
    /// Peers whose bucket is remembered.
    pub peers: usize,
}

impl Default for WorkBudgetParams {
    /// A validator relays every validator's windows (one check each, 100
    /// windows/s per validator at devnet's 10 ms) and its txs' inputs, and
    /// polls us (~1,100 `Query`/s at 500 tx/s, 2 units each): 20k/s covers
    /// a 100-validator set with room. A stranger has no duty to relay
    /// first, and only validators poll; 500 units/s is a few percent of
    /// one core.
    fn default() -> WorkBudgetParams {
        WorkBudgetParams {
            validator_units_per_s: 20_000,
            validator_burst_units: 80_000,
            stranger_units_per_s: 500,
            stranger_burst_units: 2_000,
            peers: 4_096,
        }
    }
}

/// What one peer's messages cost us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerWork {
    /// Units charged (and spent).
    pub charged: u64,
    /// Messages dropped unchecked, the budget being spent.
    pub dropped: u64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Thousandths of a unit, so refills stay exact in integers.
    milli_units: u64,
    refilled_at: MonoTime,
    work: PeerWork,
}

pub struct WorkBudgets {
    params: WorkBudgetParams,
    buckets: RecentMap<NodeId, Bucket>,
    total: PeerWork,
}

impl WorkBudgets {
    pub fn new(params: WorkBudgetParams) -> WorkBudgets {
        WorkBudgets {
            params,
            buckets: RecentMap::new(params.peers),
            total: PeerWork::default(),
        }
    }

    /// Takes `units` from `peer`'s bucket if it holds them; else counts a
    /// drop and takes nothing. A peer first seen starts with a full bucket.
    pub fn charge(&mut self, now: MonoTime, peer: NodeId, validator: bool, units: u64) -> bool {
        let p = self.params;
        let (rate, burst) = if validator {
            (p.validator_units_per_s, p.validator_burst_units)
        } else {
            (p.stranger_units_per_s, p.stranger_burst_units)
        };
        let cap = burst.saturating_mul(1_000);
        let bucket = self.buckets.get_or_insert_with(peer, || Bucket {
            milli_units: cap,
            refilled_at: now,
            work: PeerWork::default(),
        });
        let elapsed_ms = now
            .as_millis()
            .saturating_sub(bucket.refilled_at.as_millis());
        // Units per second times milliseconds: thousandths of a unit.
        let refill = elapsed_ms.saturating_mul(rate);
        bucket.milli_units = bucket.milli_units.saturating_add(refill).min(cap);
        bucket.refilled_at = bucket.refilled_at.max(now);
        let cost = units.saturating_mul(1_000);
        if bucket.milli_units < cost {
            bucket.work.dropped += 1;
            self.total.dropped += 1;
            return false;
        }
        bucket.milli_units -= cost;
        bucket.work.charged += units;
        self.total.charged += units;
        true
    }

    pub fn peer(&self, peer: &NodeId) -> Option<PeerWork> {
        self.buckets.get(peer).map(|b| b.work)
    }

    /// Every remembered peer's work.
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, PeerWork)> + '_ {
        self.buckets.iter().map(|(peer, b)| (*peer, b.work))
    }

    /// Summed over every peer ever charged (forgotten ones included).
    pub fn total(&self) -> PeerWork {
        self.total
    }
}

/// Units to check a window or look up its `leaves` txids: at least one.
pub fn leaves_cost(leaves: usize) -> u64 {
    (leaves.div_ceil(LEAVES_PER_UNIT).max(1)) as u64
}

/// Units to answer a `Query` of `txids`: the message, plus its lookups.
pub fn query_cost(txids: usize) -> u64 {
    1 + txids.div_ceil(QUERY_TXIDS_PER_UNIT) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PublicKeyBytes;

    const PEER: NodeId = PublicKeyBytes([1; 32]);

    fn budgets() -> WorkBudgets {
        WorkBudgets::new(WorkBudgetParams {
            validator_units_per_s: 1_000,
            validator_burst_units: 100,
            stranger_units_per_s: 10,
            stranger_burst_units: 5,
            peers: 2,
        })
    }

    #[test]
    fn a_bucket_spends_its_burst_then_refills_at_its_rate() {
        let mut b = budgets();
        let t0 = MonoTime(10_000);
        assert!((0..5).all(|_| b.charge(t0, PEER, false, 1)));
        assert!(!b.charge(t0, PEER, false, 1));
        // 10 units/s: one unit per 100 ms, never above the burst.
        assert!(!b.charge(t0.plus_ms(99), PEER, false, 1));
        assert!(b.charge(t0.plus_ms(100), PEER, false, 1));
        assert!(b.charge(t0.plus_ms(60_000), PEER, false, 5));
        assert!(!b.charge(t0.plus_ms(60_000), PEER, false, 1));
        assert_eq!(
            b.peer(&PEER),
            Some(PeerWork {
                charged: 11,
                dropped: 3
            })
        );
        assert_eq!(b.total(), b.peer(&PEER).unwrap());
    }

    #[test]
    fn validators_get_the_larger_bucket_and_a_clock_step_back_is_harmless() {
        let mut b = budgets();
        let t0 = MonoTime(10_000);
        assert!(b.charge(t0, PEER, true, 100));
        assert!(!b.charge(MonoTime(0), PEER, true, 1));
        assert!(b.charge(t0.plus_ms(1), PEER, true, 1));
    }

    #[test]
    fn peers_are_bounded() {
        let mut b = budgets();
        for i in 0..10u8 {
            b.charge(MonoTime(0), PublicKeyBytes([i; 32]), false, 1);
        }
        assert_eq!(b.peers().count(), 2);
        assert_eq!(b.total().charged, 10);
    }

    #[test]
    fn window_cost_grows_with_its_leaves() {
        assert_eq!(leaves_cost(0), 1);
        assert_eq!(leaves_cost(1), 1);
        assert_eq!(leaves_cost(LEAVES_PER_UNIT), 1);
        assert_eq!(leaves_cost(LEAVES_PER_UNIT + 1), 2);
        assert_eq!(leaves_cost(4_096), 16);
    }

    #[test]
    fn a_query_costs_its_message_and_its_lookups() {
        assert_eq!(query_cost(0), 1);
        assert_eq!(query_cost(1), 2);
        assert_eq!(query_cost(QUERY_TXIDS_PER_UNIT), 2);
        assert_eq!(query_cost(QUERY_TXIDS_PER_UNIT + 1), 3);
    }
}
