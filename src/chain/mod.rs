//! Checkpoint blocks (DESIGN §6): slots, VRF sortition, block building and
//! validation, rewards, slashing evidence (§7), and the fork choice among
//! competing candidates.
//!
//! Pure: no clocks, threads, I/O or global RNG; `now` is passed in and the
//! chain state is read through the [`ChainView`] trait, which the store
//! implements. It must never decide finality: blocks only archive
//! transactions that finality proofs already settled, so a reorg can only
//! move archival state and rewards.

pub mod block;
pub mod builder;
pub mod certificate;
pub mod fixed_point;
pub mod fork_choice;
pub mod heartbeat;
pub mod reward;
pub mod slashing;
pub mod slot;
pub mod sortition;
pub mod sync;
pub mod validity;
pub mod verify;

pub use block::{
    certificate_digest, entries_root, evidence_digest, Block, BlockHeader, RewardTx, BLOCK_VERSION,
    MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES,
};
pub use builder::{build_block, BlockTemplate, BuildError};
pub use certificate::{
    BlockVote, Certificate, CertificateError, Endorsements, Equivocation, VoteContext, VoteOutcome,
};
pub use fork_choice::{
    BlockSummary, ChainAction, ForkChoice, ForkChoiceConfig, ForkChoiceError, IgnoreReason,
    Placement,
};
pub use heartbeat::{heartbeats_digest, Heartbeat, MAX_BLOCK_HEARTBEATS};
pub use reward::{block_reward, expected_reward, split_reward, Payouts};
pub use slashing::{
    select_evidence, InvalidEvidence, SlashingEvidence, Standing, MAX_BLOCK_EVIDENCE,
    MAX_BLOCK_EVIDENCE_BYTES,
};
pub use slot::{SlotClock, SlotClockError};
pub use sortition::{publish_delay_ms, Ticket};
pub use sync::{BlockRequest, BlockSync, SyncConfig};
pub use validity::{
    check_signatures, endorsement_context, producing_epoch, validate_block, validate_block_with,
    BlockRejection, ChainTip, ChainView, ChainViewError, ValidBlock,
};
pub use verify::{
    reward_matures_at, verify_chain, ArchiveView, ArchivedBlock, ChainFault, IndexedFacts,
    TxLocation, VerifyFailure, VerifyParams, VerifyReport,
};
