//! Why a store operation failed, in words an operator can act on. A datadir
//! of another chain or schema, a corrupt record, a full map and a refused
//! batch are each their own variant; none of them ever leaves a half-written
//! state behind.

use super::schema::ChainTip;
use crate::types::{ChainId, Hash, Network, OutPoint};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use datadir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("LMDB {operation} failed: {source}")]
    Lmdb {
        operation: String,
        source: ::lmdb::Error,
    },
    #[error(
        "the disk holding {path} is full; nothing of the failed write was stored. \
         Free disk space and restart"
    )]
    DiskFull { path: PathBuf },
    #[error(
        "the store's map is full at {map_size_bytes} bytes (growth limit \
         {max_map_size_bytes} bytes); nothing of the failed write was stored. \
         Restart with a larger map size (StoreOptions::max_map_size_bytes)"
    )]
    MapFull {
        map_size_bytes: u64,
        max_map_size_bytes: u64,
    },
    #[error(
        "datadir {path} has store schema version {found}, but this build reads \
         version {expected}; use a datadir made by this version or a fresh one"
    )]
    WrongSchema {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "datadir {path} belongs to {}, but this node runs {}; \
         pass the datadir of this chain or another --datadir",
        ChainName(*found),
        ChainName(*expected)
    )]
    WrongChain {
        path: PathBuf,
        found: ChainId,
        expected: ChainId,
    },
    #[error(
        "datadir {path} was created from genesis {found}, but the chain config's \
         genesis is {expected}: the config's rules, validators or allocations \
         changed. Use the original config or a fresh datadir"
    )]
    WrongGenesis {
        path: PathBuf,
        found: Hash,
        expected: Hash,
    },
    #[error(
        "corrupt record in table `{table}` at key {key}: {reason}; the datadir \
         was damaged outside this node. Restore it from a backup or resync into \
         a fresh datadir"
    )]
    Corrupt {
        table: &'static str,
        /// The key in hex.
        key: String,
        reason: String,
    },
    #[error(
        "registry step refused, nothing written: it advances to height {next}, but the \
         stored registry is at {held}; blocks must be applied once each, in order"
    )]
    RegistryOutOfStep { held: u64, next: u64 },
    #[error(
        "batch refused, nothing written: transaction {txid} spends {outpoint}, \
         which the store does not hold"
    )]
    MissingOutpoint { txid: Hash, outpoint: OutPoint },
    #[error(
        "batch refused, nothing written: transaction {txid} spends {outpoint}, \
         already spent by finalized transaction {by}"
    )]
    AlreadySpent {
        txid: Hash,
        outpoint: OutPoint,
        by: Hash,
    },
    #[error(
        "refused, nothing written: the {what} of transaction {txid} is {len} bytes, \
         over the store's limit of {max}"
    )]
    TooLarge {
        what: &'static str,
        txid: Hash,
        len: usize,
        max: usize,
    },
    #[error(
        "block refused, nothing written: it is at height {height} on {prev_hash}, \
         but the tip is {tip_hash} at height {tip_height}; a block must extend the tip \
         at the next height (undo the tip first to replace it)"
    )]
    BlockNotOnTip {
        height: u64,
        prev_hash: Hash,
        tip_hash: Hash,
        tip_height: u64,
    },
    #[error(
        "block {block} refused, nothing written: it archives transaction {txid}, \
         which is not finalized here; commit its finality proof first"
    )]
    ArchivesUnfinalized { block: Hash, txid: Hash },
    #[error(
        "block {block} refused, nothing written: transaction {txid} is already \
         archived by block {by} at height {height}"
    )]
    AlreadyArchived {
        block: Hash,
        txid: Hash,
        by: Hash,
        height: u64,
    },
    #[error(
        "block {block} refused, nothing written: its reward output {outpoint} \
         already exists; a reward txid must be unique to its block"
    )]
    RewardExists { block: Hash, outpoint: OutPoint },
    #[error(
        "block {hash} refused, nothing written: its {what} is {len} bytes, over \
         the store's limit of {max}"
    )]
    BlockTooLarge {
        hash: Hash,
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "cannot undo block {expected}: it is not the tip (the tip is {} at height {}); \
         nothing written",
        tip.hash,
        tip.height
    )]
    UndoNotTip { expected: Hash, tip: ChainTip },
    #[error("cannot undo the genesis {genesis}: it is the root of the chain")]
    UndoGenesis { genesis: Hash },
    #[error(
        "cannot undo block {block} at height {height}: blocks up to height {final_height} are \
         final (certified); nothing written"
    )]
    UndoFinal {
        block: Hash,
        height: u64,
        final_height: u64,
    },
    #[error(
        "cannot undo block {block}: its reward output {outpoint} was spent by \
         finalized transaction {by}, and finality never moves; nothing written"
    )]
    RewardSpent {
        block: Hash,
        outpoint: OutPoint,
        by: Hash,
    },
}

impl StoreError {
    /// Wraps an LMDB error with what we were doing (`"put into utxos"`).
    pub(crate) fn lmdb(operation: impl Into<String>) -> impl FnOnce(::lmdb::Error) -> StoreError {
        move |source| StoreError::Lmdb {
            operation: operation.into(),
            source,
        }
    }

    pub(crate) fn corrupt(table: &'static str, key: &[u8], reason: impl fmt::Display) -> Self {
        StoreError::Corrupt {
            table,
            key: hex::encode(key),
            reason: reason.to_string(),
        }
    }

    /// LMDB ran out of map space: the write can be retried in a larger map.
    pub(crate) fn is_map_full(&self) -> bool {
        matches!(
            self,
            StoreError::Lmdb {
                source: ::lmdb::Error::MapFull,
                ..
            }
        )
    }
}

/// `3 (devnet)`: the chain id with the network's name where it has one.
struct ChainName(ChainId);

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Network::from_chain_id(self.0) {
            Some(network) => write!(f, "chain {} ({network})", self.0),
            None => write!(f, "unknown chain {}", self.0),
        }
    }
}
