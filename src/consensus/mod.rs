//! Snowball consensus (DESIGN §4) as a sans-IO state machine: stake-weighted
//! batched polls, per-conflict-set preference, local acceptance, finality
//! vote collection and proof assembly.
//!
//! Pure: no sockets, clocks, threads or global RNG. Time arrives as `now`,
//! randomness from a seeded RNG, weight only from the `ValidatorSet`
//! snapshot. It must never finalize or accept anything on a timer or on
//! local knowledge alone: only a poll quorum accepts, only a proof finalizes.

pub mod engine;
pub mod epochs;
pub mod fetches;
pub mod messages;
pub mod misbehaviour;
pub mod orphan_proofs;
pub mod params;
pub mod polls;
pub mod sampler;
pub mod signed_spends;
pub mod snowball;
pub mod unproven;
pub mod vote_cache;
pub mod windows;
pub mod work_budget;

pub use engine::{Engine, EngineConfig, EngineLimits, EngineMetrics, SubmitError, WindowParams};
pub use epochs::{EpochCommittee, EpochError};
pub use messages::{
    ConsensusMessage, Event, NodeId, Output, RejectReason, TxStatusReport, Verdict,
};
pub use misbehaviour::Misbehaviour;
pub use params::{SampleSize, SnowballParams};
pub use unproven::UnprovenLimits;
pub use vote_cache::{SharedVerdicts, VerifiedVotes};
pub use windows::SharedTrees;
pub use work_budget::{PeerWork, WorkBudgetParams};
