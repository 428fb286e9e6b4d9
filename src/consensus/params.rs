//! Snowball parameters (DESIGN §4) and their scaling to small validator sets.
//! Pure data: no state, no I/O.

use crate::config::ConsensusConfig;

/// Snowball and mempool tuning, as in the chain config's `[consensus]` table.
/// All values are at least 1 (`ChainConfig::validate` enforces it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnowballParams {
    /// Sample size `k`.
    pub k: u32,
    /// Quorum `alpha` out of `k`.
    pub alpha: u32,
    /// Consecutive successful polls for local acceptance.
    pub beta: u32,
    /// A poll completes at the latest this long after it started.
    pub poll_timeout_ms: u64,
    /// Most txids in one `Query`.
    pub max_txs_per_query: u32,
    /// Most outstanding polls per transaction.
    pub max_concurrent_polls: u32,
    /// A transaction not locally accepted by then leaves the mempool, releasing its locks.
    pub mempool_expiry_ms: u64,
    pub mempool_max_txs: u32,
}

impl From<&ConsensusConfig> for SnowballParams {
    fn from(c: &ConsensusConfig) -> SnowballParams {
        SnowballParams {
            k: c.k,
            alpha: c.alpha,
            beta: c.beta,
            poll_timeout_ms: c.poll_timeout_ms,
            max_txs_per_query: c.max_txs_per_query,
            max_concurrent_polls: c.max_concurrent_polls,
            mempool_expiry_ms: c.mempool_expiry_ms,
            mempool_max_txs: c.mempool_max_txs,
        }
    }
}

/// The sample size and quorum actually used with a given number of validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleSize {
    /// `k'`: stake slots sampled per poll (a validator may hold several).
    pub k: u32,
    /// `alpha'`: `Valid` slots a poll needs to succeed.
    pub alpha: u32,
}

impl SnowballParams {
    /// `k'`/`alpha'` for `validators` validators. With at least `k`, they are
    /// `k`/`alpha`. With fewer, `k' = n` and
    /// `alpha' = max(floor(k'/2)+1, ceil(alpha·k'/k))`: still a strict
    /// majority of the sample, and never a smaller fraction than configured.
    pub fn sample_size(&self, validators: usize) -> SampleSize {
        let n = u32::try_from(validators).unwrap_or(u32::MAX);
        let k = self.k.max(1);
        if n >= k {
            return SampleSize {
                k,
                alpha: self.alpha.clamp(1, k),
            };
        }
        let k_scaled = n;
        let majority = k_scaled / 2 + 1;
        let proportional = (u64::from(self.alpha) * u64::from(k_scaled)).div_ceil(u64::from(k));
        let alpha = u64::from(majority).max(proportional);
        SampleSize {
            k: k_scaled,
            alpha: u32::try_from(alpha).unwrap_or(u32::MAX).min(k_scaled),
        }
    }

    /// Pause between starting two polls of one transaction while fewer than
    /// `max_concurrent_polls` are outstanding: spreads the pipeline over one
    /// `poll_timeout` instead of sending every poll at once.
    pub fn poll_interval_ms(&self) -> u64 {
        (self.poll_timeout_ms / u64::from(self.max_concurrent_polls.max(1))).max(1)
    }
}
