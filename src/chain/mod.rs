//! Checkpoint blocks (DESIGN §6): slots, VRF sortition, block building and
//! validation, rewards, and the fork choice among competing candidates.
//!
//! Pure: no clocks, threads, I/O or global RNG; `now` is passed in and the
//! chain state is read through the [`ChainView`] trait, which the store
//! implements. It must never decide finality: blocks only archive
//! transactions that finality proofs already settled, so a reorg can only
//! move archival state and rewards.

pub mod block;

pub use block::{
    entries_root, Block, BlockHeader, RewardTx, BLOCK_VERSION, MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES,
};
