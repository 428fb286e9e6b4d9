//! How much a peer may ask of us: per-class token buckets for requests,
//! sized from the consensus parameters so that an honest validator at the
//! network's design load never reaches them, and per-connection credits for
//! responses, so a `Votes` or `Txs` is accepted exactly when we asked for it.
//!
//! Pure: time is passed in. Nothing here grows with what a peer sends: a
//! bucket is four integers and the credits two.

use super::message::{Message, MessageClass, MessageTag};
use crate::config::ChainSpec;
use crate::consensus::messages::ConsensusMessage;
use crate::consensus::work_budget::{query_cost, QUERY_TXIDS_PER_UNIT};
use crate::consensus::{SnowballParams, WorkBudgetParams};
use crate::time::MonoTime;

/// The transaction rate a node's request limits carry without a drop:
/// above what a 4-validator devnet finalizes on the reference 2-core host
/// and near a lone node's ceiling there (BENCHMARKS.md), so no honest peer
/// reaches the limits on hardware like it. Faster hosts raise it.
pub const DESIGN_TX_PER_SEC: u32 = 2_000;

/// A sustained rate with a burst allowance, in tokens (see [`cost`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub per_sec: u32,
}

/// Limits per [`super::message::MessageClass`] of requests. Responses
/// (`Votes`, `Txs`) are not charged here: [`ResponseCredits`] admits them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub session: RateLimit,
    pub tx_gossip: RateLimit,
    /// `Query` tokens are txids asked about (see [`cost`]).
    pub poll: RateLimit,
    /// `Query` tokens of a peer outside the validator set, once its
    /// handshake names it (at most `poll`): only validators poll (DESIGN
    /// §5), and receiving a `Query` costs us even when its answer is
    /// refused, so a stranger may send only what its work budget answers.
    pub stranger_poll: RateLimit,
    pub block: RateLimit,
}

impl Default for RateLimits {
    /// Limits for a network of unknown parameters (tests, tools); a node
    /// uses [`RateLimits::for_load`].
    fn default() -> RateLimits {
        RateLimits {
            session: SESSION,
            tx_gossip: RateLimit {
                burst: GOSSIP_BURST_MIN,
                per_sec: 2_000,
            },
            poll: RateLimit {
                burst: 5_000,
                per_sec: 2_000,
            },
            stranger_poll: stranger_poll(),
            block: BLOCK,
        }
    }
}

const SESSION: RateLimit = RateLimit {
    burst: 50,
    per_sec: 10,
};
const BLOCK: RateLimit = RateLimit {
    burst: 100,
    per_sec: 20,
};
/// A peer that asks is sent up to 2,000 of the latest proofs (catch-up,
/// paced at a few hundred a second by the sender): every gossip bucket
/// holds at least that, so a sender that paces less never loses one.
const GOSSIP_BURST_MIN: u32 = 5_000;
/// Vote requests one requester sends one validator per transaction: the
/// first round, plus one repeat while the proof is still short.
const VOTE_ROUNDS_PER_TX: u64 = 2;
/// `Tx`, `GetTxs` and `Proof` a peer sends per transaction: one relay, one
/// fetch and one proof.
const GOSSIP_PER_TX: u64 = 3;
/// Headroom over a clean run: every poll of a transaction failing once and
/// starting over (the liveness bound in BENCHMARKS.md allows the same).
const RETRY_FACTOR: u64 = 2;

/// What request limits are sized for: the chain's Snowball parameters, the
/// validator count and the transaction rate the network is designed to carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollLoad {
    /// Validators sampled per poll (`k'`, at most `validators`).
    pub sample_k: u32,
    pub validators: u32,
    /// Consecutive successful polls for local acceptance.
    pub beta: u32,
    pub max_concurrent_polls: u32,
    /// Transactions per second the limits must carry without a drop.
    pub design_tx_per_sec: u32,
}

impl PollLoad {
    /// The load of `spec`'s chain (its Snowball parameters and validator
    /// count) at `design_tx_per_sec`.
    pub fn for_chain(spec: &ChainSpec, design_tx_per_sec: u32) -> PollLoad {
        let params = SnowballParams::from(&spec.config.consensus);
        let validators = spec.validators.len();
        PollLoad {
            sample_k: params.sample_size(validators).k,
            validators: u32::try_from(validators).unwrap_or(u32::MAX),
            beta: params.beta,
            max_concurrent_polls: params.max_concurrent_polls,
            design_tx_per_sec,
        }
    }

    /// Txids one honest requester asks one validator about per transaction:
    /// `beta` successful polls plus those still in flight at acceptance,
    /// doubled for retries, times the chance (`k'/n`) that this validator is
    /// in a poll's sample, plus the vote rounds.
    pub fn txids_per_tx(&self) -> u64 {
        let polls = u64::from(self.beta) + u64::from(self.max_concurrent_polls);
        let sampled = (RETRY_FACTOR * polls * u64::from(self.sample_k))
            .div_ceil(u64::from(self.validators.max(1)));
        sampled + VOTE_ROUNDS_PER_TX
    }
}

impl RateLimits {
    /// The poll limit of a peer outside the validator set.
    pub fn of_stranger_polls(&self) -> RateLimit {
        RateLimit {
            burst: self.poll.burst.min(self.stranger_poll.burst),
            per_sec: self.poll.per_sec.min(self.stranger_poll.per_sec),
        }
    }

    pub fn of(&self, class: MessageClass) -> RateLimit {
        match class {
            MessageClass::Session => self.session,
            MessageClass::TxGossip => self.tx_gossip,
            MessageClass::Poll => self.poll,
            MessageClass::Block => self.block,
        }
    }

    /// Limits no honest peer reaches at `load`. A `Query` costs one token per
    /// txid, so the budget does not depend on how well the sender batches:
    /// `poll` is `design_tx_per_sec · txids_per_tx` a second, with one
    /// second of it as burst (a requester back from a stall polls its whole
    /// backlog at once); `tx_gossip` is `GOSSIP_PER_TX` messages per
    /// transaction, doubled for retries.
    pub fn for_load(load: &PollLoad) -> RateLimits {
        let rate = u64::from(load.design_tx_per_sec);
        let poll = saturating_u32(rate.saturating_mul(load.txids_per_tx()));
        let gossip = saturating_u32(rate.saturating_mul(RETRY_FACTOR * GOSSIP_PER_TX));
        RateLimits {
            session: SESSION,
            tx_gossip: RateLimit {
                burst: gossip.max(GOSSIP_BURST_MIN),
                per_sec: gossip,
            },
            poll: RateLimit {
                burst: poll,
                per_sec: poll,
            },
            stranger_poll: stranger_poll(),
            block: BLOCK,
        }
    }
}

/// The txids of the full `Query`s a stranger's work budget answers.
fn stranger_poll() -> RateLimit {
    let budget = WorkBudgetParams::default();
    let per_query = query_cost(QUERY_TXIDS_PER_UNIT);
    let txids = |units: u64| saturating_u32(units / per_query * QUERY_TXIDS_PER_UNIT as u64);
    RateLimit {
        burst: txids(budget.stranger_burst_units),
        per_sec: txids(budget.stranger_units_per_s),
    }
}

fn saturating_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Tokens a request costs: the txids it asks about for `Query` and
/// `GetTxs` (what answering it costs us), one for everything else.
pub fn cost(msg: &Message) -> u32 {
    let asked = match msg {
        Message::Consensus(ConsensusMessage::Query { txids, .. })
        | Message::Consensus(ConsensusMessage::GetTxs { txids }) => txids.len(),
        _ => 1,
    };
    saturating_u32(asked as u64).max(1)
}

/// A token bucket in thousandths of a token, refilled from injected time.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity_milli: u64,
    tokens_milli: u64,
    /// Thousandths of a token per millisecond = tokens per second.
    refill_per_ms_milli: u64,
    last: MonoTime,
}

impl TokenBucket {
    pub fn new(limit: RateLimit, now: MonoTime) -> TokenBucket {
        let capacity_milli = u64::from(limit.burst) * 1000;
        TokenBucket {
            capacity_milli,
            tokens_milli: capacity_milli,
            refill_per_ms_milli: u64::from(limit.per_sec),
            last: now,
        }
    }

    /// Takes `n` tokens if there are that many; a request costing more than
    /// the whole burst is refused.
    pub fn try_take_n(&mut self, now: MonoTime, n: u32) -> bool {
        let elapsed_ms = now.saturating_since(self.last).as_millis() as u64;
        self.last = self.last.max(now);
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed_ms.saturating_mul(self.refill_per_ms_milli))
            .min(self.capacity_milli);
        let wanted = u64::from(n) * 1000;
        if self.tokens_milli >= wanted {
            self.tokens_milli -= wanted;
            true
        } else {
            false
        }
    }
}

/// Responses owed to us on one connection: each `Query` we send earns one
/// `Votes`, each `GetTxs` one `Txs`. An honest peer answers each request
/// once, so credits never throttle it however fast we ask; an answer we
/// did not ask for is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseCredits {
    votes: u32,
    txs: u32,
    /// `Blocks` owed for our `GetBlocks`. A `Blocks` beyond them is a
    /// pushed new block: a request, charged to the block bucket.
    blocks: u32,
}

/// Most unanswered requests of one kind remembered per connection: the
/// engine never has more polls in flight (`EngineLimits::max_outstanding_polls`),
/// so a peer that stays silent cannot bank more answers than that.
pub const MAX_RESPONSE_CREDITS: u32 = 65_536;

/// Whether a received message was a response, and if so whether it was owed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not a response: charge it to its class's bucket.
    Request,
    Owed,
    Unsolicited,
}

impl ResponseCredits {
    /// We sent a message with `tag` on this connection.
    pub fn on_sent(&mut self, tag: MessageTag) {
        if let Some(credit) = self.credit_for_request(tag) {
            *credit = credit.saturating_add(1).min(MAX_RESPONSE_CREDITS);
        }
    }

    /// We received a message with `tag`: a response spends one credit.
    pub fn on_received(&mut self, tag: MessageTag) -> Admission {
        let credit = match tag {
            MessageTag::Votes => &mut self.votes,
            MessageTag::Txs => &mut self.txs,
            MessageTag::Blocks if self.blocks > 0 => &mut self.blocks,
            _ => return Admission::Request,
        };
        match credit.checked_sub(1) {
            Some(left) => {
                *credit = left;
                Admission::Owed
            }
            None => Admission::Unsolicited,
        }
    }

    fn credit_for_request(&mut self, tag: MessageTag) -> Option<&mut u32> {
        match tag {
            MessageTag::Query => Some(&mut self.votes),
            MessageTag::GetTxs => Some(&mut self.txs),
            MessageTag::GetBlocks => Some(&mut self.blocks),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Hash;

    fn devnet_load(validators: u32, design_tx_per_sec: u32) -> PollLoad {
        PollLoad {
            sample_k: validators.min(20),
            validators,
            beta: 20,
            max_concurrent_polls: 4,
            design_tx_per_sec,
        }
    }

    #[test]
    fn token_bucket_refills_at_its_rate() {
        let mut bucket = TokenBucket::new(
            RateLimit {
                burst: 2,
                per_sec: 10,
            },
            MonoTime(0),
        );
        assert!(bucket.try_take_n(MonoTime(0), 1));
        assert!(bucket.try_take_n(MonoTime(0), 1));
        assert!(!bucket.try_take_n(MonoTime(0), 1));
        assert!(!bucket.try_take_n(MonoTime(99), 1));
        assert!(bucket.try_take_n(MonoTime(100), 1));
        // A clock stepping backwards refills nothing and never panics.
        assert!(!bucket.try_take_n(MonoTime(50), 1));
    }

    #[test]
    fn a_request_costing_more_than_the_burst_is_refused_whole() {
        let limit = RateLimit {
            burst: 64,
            per_sec: 64,
        };
        let mut bucket = TokenBucket::new(limit, MonoTime(0));
        assert!(!bucket.try_take_n(MonoTime(0), 65));
        assert!(bucket.try_take_n(MonoTime(0), 64));
        assert!(!bucket.try_take_n(MonoTime(500), 33));
        assert!(bucket.try_take_n(MonoTime(500), 32));
    }

    #[test]
    fn a_query_costs_its_txids_and_an_empty_one_still_costs_one() {
        let query = |n: usize| {
            Message::Consensus(ConsensusMessage::Query {
                request_id: 1,
                txids: vec![Hash::ZERO; n],
            })
        };
        assert_eq!(cost(&query(64)), 64);
        assert_eq!(cost(&query(0)), 1);
        assert_eq!(cost(&Message::Ping { nonce: 0 }), 1);
    }

    #[test]
    fn validator_limits_carry_the_design_load_at_the_worst_batching() {
        // 4 validators: every poll samples every validator.
        let load = devnet_load(4, 1_000);
        assert_eq!(load.txids_per_tx(), 2 * (20 + 4) + 2);
        let limits = RateLimits::for_load(&load);
        // An honest requester polling each tx alone (one txid per Query)
        // for one second at the design rate stays inside the bucket.
        let mut bucket = TokenBucket::new(limits.poll, MonoTime(0));
        let queries_per_ms = 1_000 * load.txids_per_tx() / 1_000;
        for ms in 0..1_000 {
            for _ in 0..queries_per_ms {
                assert!(bucket.try_take_n(MonoTime(ms), 1), "throttled at {ms} ms");
            }
        }
        // With 100 validators a validator is in a fifth of the samples.
        let wide = devnet_load(100, 1_000);
        assert_eq!(wide.txids_per_tx(), (2 * 24 * 20u64).div_ceil(100) + 2);
        assert!(RateLimits::for_load(&wide).poll.per_sec < limits.poll.per_sec);
    }

    #[test]
    fn a_flood_beyond_the_design_load_is_cut_to_the_sustained_rate() {
        let limits = RateLimits::for_load(&devnet_load(4, 1_000));
        let mut bucket = TokenBucket::new(limits.poll, MonoTime(0));
        let mut admitted = 0u64;
        // Ten times the design load for ten seconds, full queries.
        for ms in 0..10_000 {
            for _ in 0..(10 * 50 * 1_000 / 64 / 1_000) {
                admitted += u64::from(bucket.try_take_n(MonoTime(ms), 64)) * 64;
            }
        }
        let ceiling = u64::from(limits.poll.burst) + 10 * u64::from(limits.poll.per_sec);
        assert!(admitted <= ceiling, "{admitted} > {ceiling}");
    }

    #[test]
    fn each_response_must_be_owed_by_a_request_on_the_connection() {
        let mut credits = ResponseCredits::default();
        assert_eq!(
            credits.on_received(MessageTag::Votes),
            Admission::Unsolicited
        );
        credits.on_sent(MessageTag::Query);
        credits.on_sent(MessageTag::Query);
        credits.on_sent(MessageTag::GetTxs);
        assert_eq!(credits.on_received(MessageTag::Votes), Admission::Owed);
        assert_eq!(credits.on_received(MessageTag::Votes), Admission::Owed);
        assert_eq!(
            credits.on_received(MessageTag::Votes),
            Admission::Unsolicited
        );
        assert_eq!(credits.on_received(MessageTag::Txs), Admission::Owed);
        assert_eq!(credits.on_received(MessageTag::Txs), Admission::Unsolicited);
        assert_eq!(credits.on_received(MessageTag::Query), Admission::Request);
    }

    #[test]
    fn blocks_answering_our_get_blocks_are_owed_and_pushed_ones_are_requests() {
        let mut credits = ResponseCredits::default();
        assert_eq!(credits.on_received(MessageTag::Blocks), Admission::Request);
        credits.on_sent(MessageTag::GetBlocks);
        assert_eq!(credits.on_received(MessageTag::Blocks), Admission::Owed);
        assert_eq!(credits.on_received(MessageTag::Blocks), Admission::Request);
    }

    #[test]
    fn a_silent_peer_banks_at_most_the_credit_cap() {
        let mut credits = ResponseCredits::default();
        for _ in 0..MAX_RESPONSE_CREDITS + 10 {
            credits.on_sent(MessageTag::Query);
        }
        let owed = (0..MAX_RESPONSE_CREDITS + 10)
            .take_while(|_| credits.on_received(MessageTag::Votes) == Admission::Owed)
            .count();
        assert_eq!(owed, MAX_RESPONSE_CREDITS as usize);
    }
}
