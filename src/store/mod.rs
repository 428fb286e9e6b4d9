//! Durable chain state in LMDB (DESIGN §9): the UTXO set and its address
//! index, finalized transactions with their finality proofs, the pending
//! mempool with this node's vote-safety record (what it locally accepted),
//! and the checkpoint chain (blocks, heights, tip, archival, rewards).
//! Every state change is one write transaction, so a crash or a full
//! disk leaves the previous or the next state, never a mix.
//!
//! The store trusts its caller's validation but never its datadir: every
//! stored value is decoded with a size limit, and a bad record is a typed
//! [`StoreError::Corrupt`], never a panic. It must never decide what is valid
//! or final; it only refuses writes that would corrupt the UTXO set or
//! break vote safety.
//!
//! * [`schema`]: every table, key layout, stored record and limit.
//! * [`lmdb`]: [`Store`] (open, commit a ledger batch) and [`ReadView`] (snapshots).
//! * `blocks`: apply and undo the tip block; chain reads.
//! * `certified`: the endorsement guard, certificates and evidence.
//! * `safety`: window-vote evidence, safety violations and the halt.
//! * `masternodes`: the masternode registry's members, epoch snapshots and collateral bonds.
//! * `recent_proofs`: the latest proofs in finalization order, for catch-up.
//! * `sequence_index`: id → key of each entry in `mempool` and `accepted`.
//! * `chain_check`: [`Store::check_chain_consistency`], the audit of the chain tables.
//! * `map_pages`: [`Store::release_mapped_pages`], the map's pages given back.

mod blocks;
mod certified;
mod chain_check;
mod error;
pub mod lmdb;
mod map_pages;
mod masternodes;
mod recent_proofs;
mod safety;
pub mod schema;
mod sequence_index;

#[cfg(test)]
mod tests;

pub use self::lmdb::{ReadView, Scan, Store};
pub use certified::{EndorseGuard, EvidenceKind};
pub use error::StoreError;
pub use schema::{
    BlockRecord, CertificateRecord, ChainTip, SafetyViolationRecord, TxRecord, TxStatus,
};

use crate::types::{Hash, OutPoint, Tx, TxOut};

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

/// Everything one ledger batch makes durable, written by
/// [`Store::commit_batch`] in ONE write transaction (one fsync), in this
/// order: mempool puts first (a finalization or removal in the same batch
/// must win over them), then finalized txs, then acceptances (one whose
/// outpoint a finalized tx spends is moot and not recorded), then removals.
#[derive(Clone, Copy, Debug, Default)]
pub struct LedgerBatch<'a> {
    /// Admitted transactions, persisted so pending work survives a restart.
    pub mempool_puts: &'a [Tx],
    /// Transactions made durable with their proofs; their mempool records
    /// and every acceptance record of their inputs go.
    pub finalized: &'a [FinalizedTx],
    /// Transactions this node locally accepted: the vote-safety record.
    pub accepted: &'a [Tx],
    /// Pending transactions to forget (rejected or expired). Their
    /// acceptance records stay until their outpoints are durably spent.
    pub mempool_removes: &'a [Hash],
}

impl LedgerBatch<'_> {
    pub fn is_empty(&self) -> bool {
        self.mempool_puts.is_empty()
            && self.finalized.is_empty()
            && self.accepted.is_empty()
            && self.mempool_removes.is_empty()
    }
}

/// What one [`Store::commit_batch`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BatchReport {
    /// The finalized part (its `writes` count only the finalized txs; its
    /// `map_grown_to_bytes` is unset: see this report's).
    pub finalized: ApplyReport,
    /// Txids whose acceptance is on record now (newly or already).
    pub accepted: Vec<Hash>,
    /// Acceptances not recorded because they would break vote safety.
    pub refused_acceptances: Vec<RefusedAcceptance>,
    /// Mempool records the removals found and deleted.
    pub mempool_removed: usize,
    /// LMDB puts and deletes of the whole batch.
    pub writes: usize,
    /// Set when the map had to grow for this batch to fit.
    pub map_grown_to_bytes: Option<u64>,
}

/// An acceptance the vote-safety record refused: `outpoint` already has
/// another accepted (or finalized) spender, so our vote must never cover `txid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "acceptance of {txid} not recorded: {outpoint} is already accepted or spent by {holder}; \
     this node will not vote for {txid}"
)]
pub struct RefusedAcceptance {
    pub txid: Hash,
    pub outpoint: OutPoint,
    pub holder: Hash,
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
    /// Vote-safety records (one per input of each accepted tx).
    pub accepted: u64,
    /// Checkpoint blocks (the genesis excluded).
    pub blocks: u64,
    /// Heights with a block hash, the genesis' 0 included.
    pub heights: u64,
    /// Finalized transactions no block archives yet.
    pub unarchived: u64,
    /// Transactions ever finalized here; the next `TxRecord::sequence`.
    pub finalized_count: u64,
    pub map_size_bytes: u64,
    /// Pages in use times the page size.
    pub used_bytes: u64,
}

/// One checkpoint block and what it changes, made durable by
/// [`Store::apply_block`] in ONE write transaction. The store keeps the
/// block as opaque bytes: the caller has validated it and extracted the
/// facts the store indexes.
#[derive(Clone, Copy, Debug)]
pub struct BlockCommit<'a> {
    pub hash: Hash,
    /// Must be the tip's height + 1.
    pub height: u64,
    pub slot: u64,
    /// Must be the tip's hash.
    pub prev_hash: Hash,
    /// The block as it travels and is hashed.
    pub encoded: &'a [u8],
    /// Txids of the entries it archives; each must be finalized here and
    /// archived by no other block.
    pub archived: &'a [Hash],
    /// Txid of the reward tx; its outputs become `reward_id:vout`.
    pub reward_id: Hash,
    pub reward_outputs: &'a [TxOut],
    /// The tip height from which the reward outputs may be spent.
    pub matures_at_height: u64,
}

/// What one [`Store::apply_block`] or [`Store::undo_tip`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockReport {
    /// The tip after the write.
    pub tip: ChainTip,
    /// LMDB puts and deletes (see the cost table in [`schema`]).
    pub writes: usize,
    /// Set when the map had to grow for the write to fit.
    pub map_grown_to_bytes: Option<u64>,
}

/// A block of the chain as sync and `verifychain` read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    pub height: u64,
    pub hash: Hash,
    /// The block's bytes, as given to [`Store::apply_block`].
    pub encoded: Vec<u8>,
}

/// What [`Store::check_chain_consistency`] found agreeing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    pub tip: ChainTip,
    /// Transactions archived by the blocks up to the tip.
    pub archived: u64,
    /// Finalized transactions no block archives.
    pub unarchived: u64,
    /// Reward outputs of the blocks up to the tip, spent or not.
    pub reward_outputs: u64,
}
