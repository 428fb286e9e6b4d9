//! Snowball's per-transaction counters and the per-conflict-set preference
//! rule (DESIGN §4). Pure arithmetic: no timers, no sampling, no messages;
//! it must never accept anything on its own, only report what a poll implies.

use crate::types::Hash;

/// What one completed poll of a transaction counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollTally {
    /// Validators sampled (`k'`).
    pub sampled: u32,
    pub valid: u32,
    pub invalid: u32,
}

/// Per-transaction Snowball state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnowballState {
    /// Successful polls ever (`counter[X]`): decides preference.
    pub counter: u32,
    /// Consecutive successful polls (`confidence[X]`): decides acceptance.
    pub confidence: u32,
    /// Consecutive polls with an `Invalid` quorum: decides rejection.
    pub consecutive_invalid: u32,
    /// Consecutive polls without a `Valid` quorum: detects a stuck split.
    pub consecutive_failed: u32,
    pub polls_completed: u32,
}

/// The effect of a poll on a transaction's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollEffect {
    /// `Valid ≥ alpha'`: counter and confidence grew; preferences may change.
    Succeeded,
    /// No `Valid` quorum: confidence reset to 0.
    Failed,
}

impl SnowballState {
    /// Applies one completed poll with quorum `alpha`: `Valid ≥ alpha` adds one
    /// to counter and confidence, anything else resets confidence. `Invalid ≥ alpha`
    /// extends the run of invalid quorums, anything else ends it.
    pub fn record_poll(&mut self, tally: PollTally, alpha: u32) -> PollEffect {
        self.polls_completed = self.polls_completed.saturating_add(1);
        self.consecutive_invalid = if tally.invalid >= alpha {
            self.consecutive_invalid.saturating_add(1)
        } else {
            0
        };
        if tally.valid >= alpha {
            self.counter = self.counter.saturating_add(1);
            self.confidence = self.confidence.saturating_add(1);
            self.consecutive_failed = 0;
            PollEffect::Succeeded
        } else {
            self.confidence = 0;
            self.consecutive_failed = self.consecutive_failed.saturating_add(1);
            PollEffect::Failed
        }
    }

    /// Confidence reached `beta` (acceptance also needs preference on every input).
    pub fn is_confident(&self, beta: u32) -> bool {
        // A beta of 0 must not accept without a single successful poll.
        self.confidence >= beta.max(1)
    }

    /// `beta` consecutive polls without a `Valid` quorum.
    pub fn is_stalled(&self, beta: u32) -> bool {
        self.consecutive_failed >= beta.max(1)
    }

    /// Forgets the successes that set this node's preference, so that a
    /// stuck conflict set falls back to the tie-break every node shares.
    pub fn restart_counter(&mut self) {
        self.counter = 0;
        self.consecutive_failed = 0;
    }

    /// `beta` consecutive polls had an `Invalid` quorum: the network rejects it.
    pub fn is_rejected_by_quorum(&self, beta: u32) -> bool {
        self.consecutive_invalid >= beta.max(1)
    }
}

/// The preferred member of a conflict set: highest counter, ties to the
/// lowest txid (so every node breaks ties the same way).
pub fn preferred(members: impl IntoIterator<Item = (Hash, u32)>) -> Option<Hash> {
    members
        .into_iter()
        .max_by(|(a, ca), (b, cb)| ca.cmp(cb).then_with(|| b.cmp(a)))
        .map(|(txid, _)| txid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_is_highest_counter_then_lowest_txid() {
        let (lo, hi) = (Hash([1; 32]), Hash([2; 32]));
        assert_eq!(preferred([(hi, 0), (lo, 0)]), Some(lo));
        assert_eq!(preferred([(lo, 0), (hi, 1)]), Some(hi));
        assert_eq!(preferred([(hi, 3), (lo, 3)]), Some(lo));
        assert_eq!(preferred(std::iter::empty()), None);
    }

    #[test]
    fn failed_poll_resets_confidence_but_not_counter() {
        let mut s = SnowballState::default();
        let ok = PollTally {
            sampled: 4,
            valid: 3,
            invalid: 0,
        };
        let bad = PollTally {
            sampled: 4,
            valid: 2,
            invalid: 0,
        };
        assert_eq!(s.record_poll(ok, 3), PollEffect::Succeeded);
        assert_eq!(s.record_poll(ok, 3), PollEffect::Succeeded);
        assert_eq!((s.counter, s.confidence), (2, 2));
        assert_eq!(s.record_poll(bad, 3), PollEffect::Failed);
        assert_eq!((s.counter, s.confidence), (2, 0));
    }
}
