//! Durable chain state in LMDB (DESIGN §9): the UTXO set and its address
//! index, finalized transactions with their finality proofs, and the pending
//! mempool. Every state change is one write transaction, so a crash or a full
//! disk leaves the previous or the next state, never a mix.
//!
//! The store trusts its caller's validation but never its datadir: every
//! stored value is decoded with a size limit, and a bad record is a typed
//! [`StoreError::Corrupt`], never a panic. It must never decide what is valid
//! or final; it only refuses writes that would corrupt the UTXO set.
//!
//! * [`schema`]: every table, key layout, stored record and limit.
//! * [`lmdb`]: [`Store`] (open, apply, mempool) and [`ReadView`] (snapshots).

mod error;
pub mod lmdb;
pub mod schema;

#[cfg(test)]
mod tests;

pub use self::lmdb::{ReadView, Scan, Store};
pub use error::StoreError;
pub use schema::{TxRecord, TxStatus};

use crate::types::Tx;

/// How the LMDB environment is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Initial size of the memory map, i.e. of the largest datadir before the
    /// store has to grow it. Costs address space, not disk.
    pub map_size_bytes: u64,
    /// The map doubles on demand up to this size; past it writes fail with
    /// [`StoreError::MapFull`].
    pub max_map_size_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            map_size_bytes: 1 << 30,
            max_map_size_bytes: 256 << 30,
        }
    }
}

/// A transaction whose finality proof is complete, ready to be made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedTx {
    pub tx: Tx,
    /// The encoded finality proof; opaque to the store.
    pub proof: Vec<u8>,
    /// When the proof was assembled or received, in Unix milliseconds.
    pub finalized_at_ms: u64,
}

/// What one `apply_finalized` call wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Transactions newly recorded.
    pub applied: usize,
    /// Transactions skipped because they were already recorded (replays).
    pub already_recorded: usize,
    /// LMDB puts and deletes performed (see the cost table in [`schema`]).
    pub writes: usize,
    /// Set when the map had to grow for this batch to fit.
    pub map_grown_to_bytes: Option<u64>,
}

/// Record counts and space use, from one snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Outputs ever created (spent ones included).
    pub utxos: u64,
    /// Unspent outputs (the address index's size).
    pub unspent: u64,
    pub txs: u64,
    pub proofs: u64,
    pub mempool: u64,
    pub blocks: u64,
    pub heights: u64,
    /// Transactions ever finalized here; the next `TxRecord::sequence`.
    pub finalized_count: u64,
    pub map_size_bytes: u64,
    /// Pages in use times the page size.
    pub used_bytes: u64,
}
