//! The LMDB environment behind [`Store`]: opening and checking a datadir,
//! committing ledger batches (finalized txs, the mempool, the vote-safety
//! record), and consistent reads through [`ReadView`] snapshots. Checkpoint
//! blocks are written by `blocks.rs` through the helpers here. Commits are
//! durable (default flags: every commit fsyncs; never `MDB_NOSYNC`).
//!
//! It must never write a state change in more than one transaction, and never
//! trust a stored byte: every value goes through a limited decode.
//!
//! # Growing the map
//!
//! When a write fails with `MDB_MAP_FULL`, the transaction is aborted, the map
//! doubles and the write is retried, until it fits or the map would pass
//! `StoreOptions::max_map_size_bytes` (then [`StoreError::MapFull`]).
//!
//! LMDB may only resize when *no transaction of this process* is open, so
//! every transaction holds `resize_gate` shared and the resize holds it
//! exclusively: it waits for open [`ReadView`]s to drop. Hence the one rule
//! for callers: **a thread holding a `ReadView` must not call `Store`
//! methods** (read through the view instead); otherwise a resize could wait
//! on it forever. Only one process may use a datadir at a time (another
//! process would not see the new map size).

use super::masternodes::put_bonds;
use super::schema::{self, ChainTip, TableSpec, TxRecord, TxStatus};
use super::sequence_index::{SequenceIndex, SequencedKeys, StagedChanges};
use super::{
    ApplyReport, BatchReport, FinalizedTx, LedgerBatch, RefusedAcceptance, StoreError,
    StoreOptions, StoreStats,
};
use crate::config::ChainSpec;
use crate::ledger::{Bond, BondState, UtxoEntry, UtxoState, UtxoView, ViewError};
use crate::masternode::EpochRules;
use crate::types::encoding::{decode, encode, DecodeError};
use crate::types::tx::MAX_TX_BYTES_HARD;
use crate::types::{Address, Amount, ChainId, Hash, OutPoint, PublicKeyBytes, Tx, TxOut};
use ::lmdb::{
    Cursor, Database, DatabaseFlags, Environment, EnvironmentFlags, RoCursor, RoTransaction,
    RwTransaction, Transaction, WriteFlags,
};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

/// Map sizes are rounded up to this, a multiple of every OS page size.
const MAP_SIZE_GRANULE: u64 = 1 << 16;

/// One named database with its layout (name, value limit).
#[derive(Clone, Copy, Debug)]
pub(super) struct Table {
    pub(super) spec: TableSpec,
    pub(super) db: Database,
}

impl Table {
    pub(super) fn name(&self) -> &'static str {
        self.spec.name
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Tables {
    pub(super) meta: Table,
    pub(super) blocks: Table,
    pub(super) block_records: Table,
    pub(super) heights: Table,
    pub(super) utxos: Table,
    pub(super) addr_utxos: Table,
    pub(super) txs: Table,
    pub(super) proofs: Table,
    pub(super) mempool: Table,
    pub(super) accepted: Table,
    pub(super) unarchived: Table,
    pub(super) endorsed: Table,
    pub(super) certificates: Table,
    pub(super) evidence: Table,
    pub(super) window_evidence: Table,
    pub(super) safety_violations: Table,
    pub(super) masternodes: Table,
    pub(super) epochs: Table,
    pub(super) bonds: Table,
}

impl Tables {
    fn all(&self) -> [Table; schema::TABLES.len()] {
        [
            self.meta,
            self.blocks,
            self.block_records,
            self.heights,
            self.utxos,
            self.addr_utxos,
            self.txs,
            self.proofs,
            self.mempool,
            self.accepted,
            self.unarchived,
            self.endorsed,
            self.certificates,
            self.evidence,
            self.window_evidence,
            self.safety_violations,
            self.masternodes,
            self.epochs,
            self.bonds,
        ]
    }
}

/// The node's chain state in `<datadir>/chain/`. `Sync`: share it by `Arc`;
/// LMDB serializes writers and lets readers run beside them.
pub struct Store {
    env: Environment,
    tables: Tables,
    /// `<datadir>/chain`, for error messages.
    path: PathBuf,
    max_map_size_bytes: u64,
    /// Shared by every transaction, exclusive for a map resize (see module doc).
    resize_gate: RwLock<()>,
    /// Blocks a reward waits before it may mature (the chain config's).
    reward_maturity_blocks: u64,
    /// When bonds let go (the chain config's epochs).
    epoch_rules: EpochRules,
    /// Where each entry of the sequence-keyed tables sits; held for a whole
    /// ledger commit, the only writer of those tables.
    indexes: Mutex<Indexes>,
}

/// The in-memory halves of `mempool` and `accepted` (see `sequence_index`).
#[derive(Default)]
struct Indexes {
    mempool: SequenceIndex<Hash>,
    accepted: SequenceIndex<OutPoint>,
}

/// Both tables' changes inside one ledger write transaction.
struct Staged<'a> {
    mempool: SequencedKeys<'a, Hash>,
    accepted: SequencedKeys<'a, OutPoint>,
}

type IndexChanges = (StagedChanges<Hash>, StagedChanges<OutPoint>);

impl Indexes {
    fn load(view: &ReadView<'_>) -> Result<Indexes, StoreError> {
        let t = view.tables();
        Ok(Indexes {
            mempool: SequenceIndex::load(view, t.mempool)?,
            accepted: SequenceIndex::load(view, t.accepted)?,
        })
    }

    fn stage(&self) -> Staged<'_> {
        Staged {
            mempool: self.mempool.stage(),
            accepted: self.accepted.stage(),
        }
    }

    fn apply(&mut self, (mempool, accepted): IndexChanges) {
        self.mempool.apply(mempool);
        self.accepted.apply(accepted);
    }
}

impl Staged<'_> {
    fn finish(self) -> IndexChanges {
        (self.mempool.finish(), self.accepted.finish())
    }
}

impl Store {
    /// Opens (or creates) the store in `<datadir>/chain/`. A new datadir gets
    /// the meta records and the genesis outputs in one first transaction; an
    /// existing one must match this build's schema and `spec`'s chain id and
    /// genesis hash.
    pub fn open(
        datadir: &Path,
        spec: &ChainSpec,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let path = datadir.join("chain");
        std::fs::create_dir_all(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let map_size = round_map_size(options.map_size_bytes);
        let env = Environment::new()
            // Read transactions belong to the `ReadView`, not the thread, so a
            // thread may hold a view and still call `Store` reads. No
            // readahead: B-tree lookups are random, and on a small host
            // whose RAM the chain outgrows readahead only evicts hot pages.
            .set_flags(EnvironmentFlags::NO_TLS | EnvironmentFlags::NO_READAHEAD)
            .set_max_dbs(schema::TABLES.len() as u32)
            .set_map_size(map_size as usize)
            .open(&path)
            .map_err(StoreError::lmdb(format!(
                "open of environment {}",
                path.display()
            )))?;
        let table = |spec: TableSpec| -> Result<Table, StoreError> {
            let db = env
                .create_db(Some(spec.name), DatabaseFlags::empty())
                .map_err(StoreError::lmdb(format!("create of table {}", spec.name)))?;
            Ok(Table { spec, db })
        };
        let tables = Tables {
            meta: table(schema::META)?,
            blocks: table(schema::BLOCKS)?,
            block_records: table(schema::BLOCK_RECORDS)?,
            heights: table(schema::HEIGHTS)?,
            utxos: table(schema::UTXOS)?,
            addr_utxos: table(schema::ADDR_UTXOS)?,
            txs: table(schema::TXS)?,
            proofs: table(schema::PROOFS)?,
            mempool: table(schema::MEMPOOL)?,
            accepted: table(schema::ACCEPTED)?,
            unarchived: table(schema::UNARCHIVED)?,
            endorsed: table(schema::ENDORSED)?,
            certificates: table(schema::CERTIFICATES)?,
            evidence: table(schema::EVIDENCE)?,
            window_evidence: table(schema::WINDOW_EVIDENCE)?,
            safety_violations: table(schema::SAFETY_VIOLATIONS)?,
            masternodes: table(schema::MASTERNODES)?,
            epochs: table(schema::EPOCHS)?,
            bonds: table(schema::BONDS)?,
        };
        debug_assert!(tables.all().map(|t| t.spec) == schema::TABLES);
        let mut store = Store {
            env,
            tables,
            path,
            max_map_size_bytes: round_map_size(options.max_map_size_bytes).max(map_size),
            resize_gate: RwLock::new(()),
            reward_maturity_blocks: u64::from(spec.config.ledger.reward_maturity_blocks),
            epoch_rules: spec.epoch_rules,
            indexes: Mutex::default(),
        };
        store.initialize_or_check(spec)?;
        let indexes = Indexes::load(&store.read()?)?;
        store.indexes = Mutex::new(indexes);
        Ok(store)
    }

    fn initialize_or_check(&self, spec: &ChainSpec) -> Result<(), StoreError> {
        let view = self.read()?;
        let meta = self.tables.meta;
        let Some(found_schema) = view.get_decoded::<u32>(meta, schema::META_SCHEMA_VERSION)? else {
            // A crash during creation leaves empty tables, never a partial genesis.
            if view.count(self.tables.utxos)? != 0 {
                return Err(StoreError::corrupt(
                    meta.name(),
                    schema::META_SCHEMA_VERSION,
                    "missing, yet the utxos table holds records",
                ));
            }
            drop(view);
            return self.initialize(spec);
        };
        if found_schema != schema::SCHEMA_VERSION {
            return Err(StoreError::WrongSchema {
                path: self.path.clone(),
                found: found_schema,
                expected: schema::SCHEMA_VERSION,
            });
        }
        let found_chain: ChainId = view.get_meta(schema::META_CHAIN_ID)?;
        if found_chain != spec.chain_id() {
            return Err(StoreError::WrongChain {
                path: self.path.clone(),
                found: found_chain,
                expected: spec.chain_id(),
            });
        }
        let found_genesis: Hash = view.get_meta(schema::META_GENESIS_HASH)?;
        if found_genesis != spec.genesis_hash() {
            return Err(StoreError::WrongGenesis {
                path: self.path.clone(),
                found: found_genesis,
                expected: spec.genesis_hash(),
            });
        }
        Ok(())
    }

    /// The first write: meta records, the genesis as the tip and at height
    /// 0, and the genesis outputs, all or nothing.
    fn initialize(&self, spec: &ChainSpec) -> Result<(), StoreError> {
        let genesis = spec.genesis_outputs();
        let genesis_tip = ChainTip {
            hash: spec.genesis_hash(),
            height: 0,
            // `block_interval_secs` is at least 1 (config validation).
            slot: spec.config.genesis.timestamp / spec.config.ledger.block_interval_secs.max(1),
        };
        self.write(|txn, t| {
            put(
                txn,
                t.meta,
                schema::META_SCHEMA_VERSION,
                &encode(&schema::SCHEMA_VERSION),
            )?;
            put(
                txn,
                t.meta,
                schema::META_CHAIN_ID,
                &encode(&spec.chain_id()),
            )?;
            put(
                txn,
                t.meta,
                schema::META_GENESIS_HASH,
                &encode(&spec.genesis_hash()),
            )?;
            put(txn, t.meta, schema::META_FINALIZED_COUNT, &encode(&0u64))?;
            put(txn, t.meta, schema::META_TIP, &encode(&genesis_tip))?;
            put(
                txn,
                t.heights,
                &schema::height_key(0),
                &encode(&genesis_tip.hash),
            )?;
            for (outpoint, output) in &genesis {
                create_output(txn, t, outpoint, output, UtxoState::Unspent)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Makes one ledger batch durable in ONE write transaction (one fsync),
    /// in the order [`LedgerBatch`] documents. A finalized tx spending a
    /// missing or spent outpoint, or a record over its size limit, aborts
    /// the whole batch: nothing is written. An empty batch writes nothing.
    pub fn commit_batch(&self, batch: &LedgerBatch<'_>) -> Result<BatchReport, StoreError> {
        if batch.is_empty() {
            return Ok(BatchReport::default());
        }
        let puts = encode_txs(batch.mempool_puts, schema::MEMPOOL)?;
        let accepted = encode_txs(batch.accepted, schema::ACCEPTED)?;
        let finalized_txids: Vec<Hash> = batch.finalized.iter().map(|f| f.tx.txid()).collect();
        let mut indexes = self.indexes.lock().unwrap_or_else(PoisonError::into_inner);
        let ((mut report, staged), grown) = self.write_with_growth(|txn, t| {
            let mut keys = indexes.stage();
            let mut report = BatchReport::default();
            for (txid, bytes) in &puts {
                report.writes += usize::from(keys.mempool.put(txn, t.mempool, *txid, bytes)?);
            }
            report.finalized =
                apply_finalized_in(txn, t, &mut keys, batch.finalized, &finalized_txids)?;
            for ((txid, bytes), tx) in accepted.iter().zip(batch.accepted) {
                match record_acceptance(txn, t, &mut keys.accepted, *txid, tx, bytes)? {
                    Acceptance::Recorded { writes } => {
                        report.accepted.push(*txid);
                        report.writes += writes;
                    }
                    Acceptance::Finalized => {}
                    Acceptance::Refused(refused) => report.refused_acceptances.push(refused),
                }
            }
            for txid in batch.mempool_removes {
                report.mempool_removed += usize::from(keys.mempool.delete(txn, t.mempool, *txid)?);
            }
            report.writes += report.finalized.writes + report.mempool_removed;
            Ok((report, keys.finish()))
        })?;
        indexes.apply(staged);
        report.map_grown_to_bytes = grown;
        Ok(report)
    }

    /// Takes the next window-vote seq session in one durable write, so
    /// this start's window votes can never reuse a seq signed before a
    /// crash (DESIGN §5). Fails once `u32::MAX` starts were made.
    pub fn next_window_session(&self) -> Result<u32, StoreError> {
        self.write(|txn, t| {
            let last: Option<u32> = get_decoded(txn, t.meta, schema::META_WINDOW_SESSION)?;
            let next = match last {
                None => 0,
                Some(last) => last.checked_add(1).ok_or_else(|| {
                    StoreError::corrupt(t.meta.name(), schema::META_WINDOW_SESSION, "exhausted")
                })?,
            };
            put(txn, t.meta, schema::META_WINDOW_SESSION, &encode(&next))?;
            Ok(next)
        })
    }

    /// [`Self::commit_batch`] of finalized transactions only: inputs marked
    /// `Spent { by }`, outputs created and indexed, tx record and proof
    /// stored, txids dropped from the mempool and their inputs from the
    /// vote-safety record. Later txs may spend outputs of earlier ones in
    /// the same batch. Already recorded txs are skipped, but for leaving the
    /// mempool (crash replays are harmless).
    pub fn apply_finalized(&self, batch: &[FinalizedTx]) -> Result<ApplyReport, StoreError> {
        let batch = LedgerBatch {
            finalized: batch,
            ..LedgerBatch::default()
        };
        let report = self.commit_batch(&batch)?;
        Ok(ApplyReport {
            map_grown_to_bytes: report.map_grown_to_bytes,
            ..report.finalized
        })
    }

    /// Persists pending transactions so they survive a restart. Returns how
    /// many were stored (overwriting one with the same txid is harmless).
    pub fn mempool_put(&self, txs: &[Tx]) -> Result<usize, StoreError> {
        let batch = LedgerBatch {
            mempool_puts: txs,
            ..LedgerBatch::default()
        };
        self.commit_batch(&batch)?;
        Ok(txs.len())
    }

    /// Drops pending transactions (finalized, rejected or expired). Returns
    /// how many were present.
    pub fn mempool_remove(&self, txids: &[Hash]) -> Result<usize, StoreError> {
        let batch = LedgerBatch {
            mempool_removes: txids,
            ..LedgerBatch::default()
        };
        Ok(self.commit_batch(&batch)?.mempool_removed)
    }

    /// A consistent snapshot for many reads (e.g. validating many txs).
    /// Drop it soon: it pins old pages and holds off a map resize.
    pub fn read(&self) -> Result<ReadView<'_>, StoreError> {
        let gate = self
            .resize_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let txn = self
            .env
            .begin_ro_txn()
            .map_err(StoreError::lmdb("begin of read transaction"))?;
        Ok(ReadView {
            txn,
            store: self,
            _gate: gate,
        })
    }

    pub fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, StoreError> {
        self.read()?.utxo(outpoint)
    }

    pub fn unspent_by_address(
        &self,
        address: &Address,
        limit: usize,
    ) -> Result<Vec<(OutPoint, TxOut)>, StoreError> {
        self.read()?.unspent_by_address(address, limit)
    }

    pub fn balance(&self, address: &Address) -> Result<Amount, StoreError> {
        self.read()?.balance(address)
    }

    pub fn tx(&self, txid: &Hash) -> Result<Option<TxRecord>, StoreError> {
        self.read()?.tx(txid)
    }

    pub fn proof(&self, txid: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read()?.proof(txid)
    }

    pub fn mempool_load(&self, limit: usize) -> Result<Vec<Tx>, StoreError> {
        self.read()?.mempool_load(limit)
    }

    pub fn accepted_load(&self, limit: usize) -> Result<Vec<Tx>, StoreError> {
        self.read()?.accepted_load(limit)
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read()?.stats()
    }

    /// [`Self::write_with_growth`] for writes that need not report growth.
    pub(super) fn write<T>(
        &self,
        body: impl FnMut(&mut RwTransaction<'_>, &Tables) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with_growth(body).map(|(value, _)| value)
    }

    /// Runs `body` in one write transaction and commits it. If the map is
    /// full, aborts, doubles the map and runs `body` again, until it fits or
    /// the map reaches its limit. Returns the new map size when it grew.
    pub(super) fn write_with_growth<T>(
        &self,
        mut body: impl FnMut(&mut RwTransaction<'_>, &Tables) -> Result<T, StoreError>,
    ) -> Result<(T, Option<u64>), StoreError> {
        let mut grown_to = None;
        loop {
            let attempt = {
                let _gate = self
                    .resize_gate
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut txn = self
                    .env
                    .begin_rw_txn()
                    .map_err(StoreError::lmdb("begin of write transaction"))?;
                // On error the transaction drops here, which aborts it.
                body(&mut txn, &self.tables).and_then(|value| {
                    txn.commit()
                        .map(|()| value)
                        .map_err(|e| self.commit_error(e))
                })
            };
            match attempt {
                // Terminates: each growth at least doubles the map, and
                // `grow_map` fails once the limit is reached.
                Err(e) if e.is_map_full() => grown_to = Some(self.grow_map()?),
                other => return other.map(|value| (value, grown_to)),
            }
        }
    }

    fn commit_error(&self, source: ::lmdb::Error) -> StoreError {
        match source {
            ::lmdb::Error::Other(code) if code == libc::ENOSPC => StoreError::DiskFull {
                path: self.path.clone(),
            },
            source => StoreError::lmdb("commit")(source),
        }
    }

    /// Unmaps the map's pages from this process; they stay in the page
    /// cache and the next read maps what it touches (`map_pages`). For an
    /// idle moment: it waits for a resize to finish, never for readers.
    pub fn release_mapped_pages(&self) -> Result<(), StoreError> {
        let _gate = self
            .resize_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        super::map_pages::release(&self.path.join("data.mdb")).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Doubles the map, up to the limit. Waits until no transaction of this
    /// process is open, as LMDB requires.
    fn grow_map(&self) -> Result<u64, StoreError> {
        let _exclusive = self
            .resize_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.map_size_bytes()?;
        if current >= self.max_map_size_bytes {
            return Err(self.map_full());
        }
        let grown = round_map_size(current.saturating_mul(2)).min(self.max_map_size_bytes);
        self.env
            .set_map_size(grown as usize)
            .map_err(StoreError::lmdb("resize of the map"))?;
        log::info!(
            "store map grown from {current} to {grown} bytes ({})",
            self.path.display()
        );
        Ok(grown)
    }

    fn map_full(&self) -> StoreError {
        StoreError::MapFull {
            map_size_bytes: self.map_size_bytes().unwrap_or(0),
            max_map_size_bytes: self.max_map_size_bytes,
        }
    }

    fn map_size_bytes(&self) -> Result<u64, StoreError> {
        let info = self
            .env
            .info()
            .map_err(StoreError::lmdb("read of environment info"))?;
        Ok(info.map_size() as u64)
    }
}

#[cfg(test)]
impl Store {
    /// Writes raw bytes past every check: how tests damage a datadir.
    pub(super) fn put_raw(&self, spec: TableSpec, key: &[u8], value: &[u8]) {
        let table = self.table_of(spec);
        self.write(|txn, _| put(txn, table, key, value)).unwrap();
    }

    /// Deletes a record past every check: how tests damage a datadir.
    pub(super) fn delete_raw(&self, spec: TableSpec, key: &[u8]) {
        let table = self.table_of(spec);
        self.write(|txn, _| delete(txn, table, key)).unwrap();
    }

    /// Entries of the in-memory `mempool` and `accepted` indexes.
    pub(super) fn index_lens(&self) -> (usize, usize) {
        let indexes = self.indexes.lock().unwrap_or_else(PoisonError::into_inner);
        (indexes.mempool.len(), indexes.accepted.len())
    }

    fn table_of(&self, spec: TableSpec) -> Table {
        self.tables
            .all()
            .into_iter()
            .find(|table| table.spec == spec)
            .expect("every spec has a table")
    }
}

/// The finalized part of a batch, inside the batch's write transaction.
fn apply_finalized_in(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    keys: &mut Staged<'_>,
    batch: &[FinalizedTx],
    txids: &[Hash],
) -> Result<ApplyReport, StoreError> {
    let mut report = ApplyReport::default();
    if batch.is_empty() {
        return Ok(report);
    }
    let mut sequence: u64 =
        get_decoded(txn, t.meta, schema::META_FINALIZED_COUNT)?.ok_or_else(|| {
            StoreError::corrupt(t.meta.name(), schema::META_FINALIZED_COUNT, "missing")
        })?;
    for (finalized, txid) in batch.iter().zip(txids) {
        // Finalized (now or before, even if re-added since): never pending.
        report.writes += usize::from(keys.mempool.delete(txn, t.mempool, *txid)?);
        if get(txn, t.txs, &txid.0)?.is_some() {
            report.already_recorded += 1;
            continue;
        }
        report.writes += apply_one(txn, t, &mut keys.accepted, finalized, *txid, sequence)?;
        report.applied += 1;
        sequence += 1;
    }
    if report.applied > 0 {
        put(
            txn,
            t.meta,
            schema::META_FINALIZED_COUNT,
            &encode(&sequence),
        )?;
        report.writes += 1;
    }
    Ok(report)
}

/// How one acceptance went into the vote-safety record.
enum Acceptance {
    Recorded {
        writes: usize,
    },
    /// Its inputs are durably spent by the tx itself: nothing left to guard.
    Finalized,
    Refused(RefusedAcceptance),
}

/// Records `tx` as the accepted spender of each of its inputs, unless an
/// input already has another accepted or finalized spender (then nothing
/// of it is written). Re-recording the same tx is harmless.
fn record_acceptance(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    accepted: &mut SequencedKeys<'_, OutPoint>,
    txid: Hash,
    tx: &Tx,
    bytes: &[u8],
) -> Result<Acceptance, StoreError> {
    for input in &tx.inputs {
        let outpoint = input.prev;
        let key = schema::outpoint_key(&outpoint);
        let holder = match get_utxo(txn, t.utxos, &key)? {
            Some(UtxoEntry {
                state: UtxoState::Spent { by },
                ..
            }) if by == txid => return Ok(Acceptance::Finalized),
            Some(UtxoEntry {
                state: UtxoState::Spent { by },
                ..
            }) => Some(by),
            _ => match accepted.key_of(&outpoint) {
                Some(key) => get_decoded::<Tx>(txn, t.accepted, &key)?
                    .map(|record| record.txid())
                    .filter(|holder| *holder != txid),
                None => None,
            },
        };
        if let Some(holder) = holder {
            return Ok(Acceptance::Refused(RefusedAcceptance {
                txid,
                outpoint,
                holder,
            }));
        }
    }
    let mut writes = 0;
    for input in &tx.inputs {
        writes += usize::from(accepted.put(txn, t.accepted, input.prev, bytes)?);
    }
    Ok(Acceptance::Recorded { writes })
}

/// Encodes each tx for `table`, refusing one over the table's limit.
fn encode_txs(txs: &[Tx], table: TableSpec) -> Result<Vec<(Hash, Vec<u8>)>, StoreError> {
    txs.iter()
        .map(|tx| {
            let (txid, bytes) = (tx.txid(), tx.encode());
            check_len("transaction", txid, bytes.len(), table.max_value_bytes)?;
            Ok((txid, bytes))
        })
        .collect()
}

/// Writes one finalized tx; returns how many LMDB writes it took.
fn apply_one(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    accepted: &mut SequencedKeys<'_, OutPoint>,
    finalized: &FinalizedTx,
    txid: Hash,
    sequence: u64,
) -> Result<usize, StoreError> {
    let tx = &finalized.tx;
    check_len("transaction", txid, tx.encoded_len(), MAX_TX_BYTES_HARD)?;
    check_len(
        "finality proof",
        txid,
        finalized.proof.len(),
        schema::PROOFS.max_value_bytes,
    )?;
    let mut writes = 0;
    for input in &tx.inputs {
        let outpoint = input.prev;
        let key = schema::outpoint_key(&outpoint);
        let entry =
            get_utxo(txn, t.utxos, &key)?.ok_or(StoreError::MissingOutpoint { txid, outpoint })?;
        if let UtxoState::Spent { by } = entry.state {
            return Err(StoreError::AlreadySpent { txid, outpoint, by });
        }
        let spent = UtxoEntry {
            output: entry.output,
            state: UtxoState::Spent { by: txid },
        };
        put(txn, t.utxos, &key, &encode(&spent))?;
        // Spent durably: no vote-safety record is needed for it any more.
        writes += usize::from(accepted.delete(txn, t.accepted, outpoint)?);
        let index_key = schema::addr_utxo_key(&entry.output.address, &outpoint);
        if !delete(txn, t.addr_utxos, &index_key)? {
            return Err(StoreError::corrupt(
                t.addr_utxos.name(),
                &index_key,
                "an unspent output is missing from the address index",
            ));
        }
        writes += 2;
    }
    for (vout, output) in tx.outputs.iter().enumerate() {
        let outpoint = OutPoint {
            txid,
            vout: vout as u32,
        };
        create_output(txn, t, &outpoint, output, UtxoState::Unspent)?;
        writes += 2;
    }
    writes += put_bonds(txn, t, tx, txid)?;
    let record = TxRecord {
        status: TxStatus::Finalized,
        sequence,
        finalized_at_ms: finalized.finalized_at_ms,
        tx: tx.clone(),
    };
    put(txn, t.txs, &txid.0, &encode(&record))?;
    put_checked(
        txn,
        t.proofs,
        (&schema::proof_key(sequence), &finalized.proof),
        WriteFlags::APPEND,
        "a proof is already stored at or after this finalization sequence",
    )?;
    put(
        txn,
        t.unarchived,
        &schema::sequenced_key(sequence, &txid),
        &[],
    )?;
    writes += 3;
    Ok(writes)
}

/// Puts a new unspent (or immature) output and its address index entry. An
/// output that already exists means its tx was half-recorded: corruption.
pub(super) fn create_output(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    outpoint: &OutPoint,
    output: &TxOut,
    state: UtxoState,
) -> Result<(), StoreError> {
    let key = schema::outpoint_key(outpoint);
    let entry = UtxoEntry {
        output: *output,
        state,
    };
    put_checked(
        txn,
        t.utxos,
        (&key, &encode(&entry)),
        WriteFlags::NO_OVERWRITE,
        "output already exists, but its transaction is not recorded",
    )?;
    put(
        txn,
        t.addr_utxos,
        &schema::addr_utxo_key(&output.address, outpoint),
        &[],
    )
}

fn check_len(what: &'static str, txid: Hash, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        return Err(StoreError::TooLarge {
            what,
            txid,
            len,
            max,
        });
    }
    Ok(())
}

fn put_error(table: Table) -> impl FnOnce(::lmdb::Error) -> StoreError {
    move |e| StoreError::lmdb(format!("put into {}", table.name()))(e)
}

pub(super) fn put(
    txn: &mut RwTransaction<'_>,
    table: Table,
    key: &[u8],
    value: &[u8],
) -> Result<(), StoreError> {
    txn.put(table.db, &key, &value, WriteFlags::empty())
        .map_err(put_error(table))
}

/// Puts with `flags` that make LMDB refuse a key: `NO_OVERWRITE` (it
/// exists) or `APPEND` (it is not after every key, and then no search and
/// full pages). A refusal means the table disagrees with what the caller
/// knows: corruption, which `reason` names.
pub(super) fn put_checked(
    txn: &mut RwTransaction<'_>,
    table: Table,
    (key, value): (&[u8], &[u8]),
    flags: WriteFlags,
    reason: &'static str,
) -> Result<(), StoreError> {
    match txn.put(table.db, &key, &value, flags) {
        Err(::lmdb::Error::KeyExist) => Err(StoreError::corrupt(table.name(), key, reason)),
        other => other.map_err(put_error(table)),
    }
}

/// Deletes `key`; `false` if it was not there.
pub(super) fn delete(
    txn: &mut RwTransaction<'_>,
    table: Table,
    key: &[u8],
) -> Result<bool, StoreError> {
    match txn.del(table.db, &key, None) {
        Ok(()) => Ok(true),
        Err(::lmdb::Error::NotFound) => Ok(false),
        Err(e) => Err(StoreError::lmdb(format!("delete from {}", table.name()))(e)),
    }
}

pub(super) fn get<'t>(
    txn: &'t impl Transaction,
    table: Table,
    key: &[u8],
) -> Result<Option<&'t [u8]>, StoreError> {
    match txn.get(table.db, &key) {
        Ok(value) => Ok(Some(value)),
        Err(::lmdb::Error::NotFound) => Ok(None),
        Err(e) => Err(StoreError::lmdb(format!("read from {}", table.name()))(e)),
    }
}

/// Reads and decodes one value with the table's limit; a bad value is `Corrupt`.
pub(super) fn get_decoded<T: DeserializeOwned>(
    txn: &impl Transaction,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    get(txn, table, key)?
        .map(|bytes| {
            decode_value(table, bytes).map_err(|e| StoreError::corrupt(table.name(), key, e))
        })
        .transpose()
}

pub(super) fn get_utxo(
    txn: &impl Transaction,
    table: Table,
    key: &[u8],
) -> Result<Option<UtxoEntry>, StoreError> {
    get_decoded(txn, table, key)
}

/// Every stored value is decoded here, with the limit of its table.
pub(super) fn decode_value<T: DeserializeOwned>(
    table: Table,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    decode(bytes, table.spec.max_value_bytes, table.name())
}

fn round_map_size(bytes: u64) -> u64 {
    bytes
        .max(MAP_SIZE_GRANULE)
        .div_ceil(MAP_SIZE_GRANULE)
        .saturating_mul(MAP_SIZE_GRANULE)
}

/// One consistent snapshot of the store (an LMDB read transaction). Not
/// `Send`: use it on the thread that opened it, and drop it soon.
pub struct ReadView<'s> {
    // Field order matters: the transaction must end before the gate opens.
    txn: RoTransaction<'s>,
    store: &'s Store,
    _gate: RwLockReadGuard<'s, ()>,
}

impl<'s> ReadView<'s> {
    pub(super) fn tables(&self) -> &'s Tables {
        &self.store.tables
    }

    pub(super) fn reward_maturity_blocks(&self) -> u64 {
        self.store.reward_maturity_blocks
    }

    pub(super) fn epoch_rules(&self) -> &EpochRules {
        &self.store.epoch_rules
    }

    pub(super) fn get_decoded<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        get_decoded(&self.txn, table, key)
    }

    /// A meta record that every initialized store has.
    pub(super) fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<T, StoreError> {
        let meta = self.tables().meta;
        self.get_decoded(meta, key)?
            .ok_or_else(|| StoreError::corrupt(meta.name(), key, "missing"))
    }

    pub(super) fn contains(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        Ok(get(&self.txn, table, key)?.is_some())
    }

    pub(super) fn count(&self, table: Table) -> Result<u64, StoreError> {
        let stat = self
            .txn
            .stat(table.db)
            .map_err(StoreError::lmdb(format!("stat of {}", table.name())))?;
        Ok(stat.entries() as u64)
    }

    /// Inputs minus outputs of `tx`, from the outputs it spends (kept as
    /// `Spent` after finalization); `None` if an input is unknown here or
    /// the sums overflow.
    pub fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, StoreError> {
        let mut inputs = Amount::ZERO;
        for input in &tx.inputs {
            let Some(entry) = self.utxo(&input.prev)? else {
                return Ok(None);
            };
            let Some(sum) = inputs.checked_add(entry.output.value) else {
                return Ok(None);
            };
            inputs = sum;
        }
        let outputs = Amount::checked_sum(tx.outputs.iter().map(|o| o.value));
        Ok(outputs.and_then(|out| inputs.checked_sub(out)))
    }

    pub fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, StoreError> {
        get_utxo(
            &self.txn,
            self.tables().utxos,
            &schema::outpoint_key(outpoint),
        )
    }

    /// Spendable outputs of `address` in outpoint order, at most `limit`:
    /// unspent, and for block rewards, mature at this snapshot's tip.
    pub fn unspent_by_address(
        &self,
        address: &Address,
        limit: usize,
    ) -> Result<Vec<(OutPoint, TxOut)>, StoreError> {
        self.unspent_of(address)?.take(limit).collect()
    }

    /// Sum of the spendable outputs of `address` (immature rewards excluded).
    pub fn balance(&self, address: &Address) -> Result<Amount, StoreError> {
        let mut total = Amount::ZERO;
        for item in self.unspent_of(address)? {
            let (outpoint, output) = item?;
            total = total.checked_add(output.value).ok_or_else(|| {
                StoreError::corrupt(
                    self.tables().utxos.name(),
                    &schema::outpoint_key(&outpoint),
                    "balance overflows: values exceed any possible supply",
                )
            })?;
        }
        Ok(total)
    }

    /// Walks the address index from `address ‖ 0…` while keys keep its prefix,
    /// reading each output from `utxos` (the one source of values), and
    /// skips reward outputs not mature at this snapshot's tip.
    fn unspent_of<'a>(
        &'a self,
        address: &'a Address,
    ) -> Result<impl Iterator<Item = Result<(OutPoint, TxOut), StoreError>> + 'a, StoreError> {
        let first = OutPoint {
            txid: Hash::ZERO,
            vout: 0,
        };
        let index = self.tables().addr_utxos;
        let from = schema::addr_utxo_key(address, &first);
        let scan = self.scan(index, Some(&from), addr_index_pair)?;
        // Read once, and only if the address holds an immature output.
        let mut tip_height = None;
        Ok(scan
            .take_while(move |item| !matches!(item, Ok((a, _)) if a != address))
            .filter_map(move |item| {
                let spendable = item.and_then(|(_, outpoint)| {
                    self.spendable_output(address, &outpoint, &mut tip_height)
                });
                spendable.transpose()
            }))
    }

    /// The output an address index entry points at, if spendable at this
    /// snapshot's tip (read into `tip_height` on first need).
    fn spendable_output(
        &self,
        address: &Address,
        outpoint: &OutPoint,
        tip_height: &mut Option<u64>,
    ) -> Result<Option<(OutPoint, TxOut)>, StoreError> {
        let (output, state) = self.indexed_output(address, outpoint)?;
        if let UtxoState::Immature { matures_at } = state {
            let tip = match *tip_height {
                Some(tip) => tip,
                None => *tip_height.insert(self.maturity_height()?),
            };
            if tip < matures_at {
                return Ok(None);
            }
        }
        Ok(Some((*outpoint, output)))
    }

    /// The output an address index entry points at, which must be unspent
    /// (or immature) and belong to that address.
    fn indexed_output(
        &self,
        address: &Address,
        outpoint: &OutPoint,
    ) -> Result<(TxOut, UtxoState), StoreError> {
        let disagree = |reason: &str| {
            StoreError::corrupt(
                self.tables().addr_utxos.name(),
                &schema::addr_utxo_key(address, outpoint),
                format!("index entry disagrees with utxos: {reason}"),
            )
        };
        let entry = self
            .utxo(outpoint)?
            .ok_or_else(|| disagree("no such output"))?;
        if !entry.state.is_unspent() {
            return Err(disagree("the output is spent"));
        }
        if entry.output.address != *address {
            return Err(disagree("the output belongs to another address"));
        }
        Ok((entry.output, entry.state))
    }

    pub fn tx(&self, txid: &Hash) -> Result<Option<TxRecord>, StoreError> {
        self.get_decoded(self.tables().txs, &txid.0)
    }

    /// Whether `txid` is finalized here, without decoding its record.
    pub fn has_tx(&self, txid: &Hash) -> Result<bool, StoreError> {
        self.contains(self.tables().txs, &txid.0)
    }

    /// The finality proof bytes of a finalized tx (found through its record).
    pub fn proof(&self, txid: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(record) = self.tx(txid)? else {
            return Ok(None);
        };
        let key = schema::proof_key(record.sequence);
        match self.get_opaque(self.tables().proofs, &key)? {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(StoreError::corrupt(
                self.tables().proofs.name(),
                &key,
                format!("the proof of finalized tx {txid} is missing"),
            )),
        }
    }

    /// Bytes stored as given (proofs, blocks), within the table's limit.
    pub(super) fn get_opaque(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(bytes) = get(&self.txn, table, key)? else {
            return Ok(None);
        };
        let max = table.spec.max_value_bytes;
        if bytes.len() > max {
            return Err(StoreError::corrupt(
                table.name(),
                key,
                format!("value is {} bytes, over the limit of {max}", bytes.len()),
            ));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Pending transactions in the order they were admitted, at most `limit`.
    pub fn mempool_load(&self, limit: usize) -> Result<Vec<Tx>, StoreError> {
        let mempool = self.tables().mempool;
        self.scan(mempool, None, move |key, value| {
            let tx: Tx = decode_value(mempool, value).map_err(|e| e.to_string())?;
            if Some(tx.txid()) != schema::sequenced_from_key(key).map(|(_, txid): (u64, Hash)| txid)
            {
                return Err("stored under a key that is not its txid".to_string());
            }
            Ok(tx)
        })?
        .take(limit)
        .collect()
    }

    /// The vote-safety record: each transaction this node locally accepted
    /// and has not seen durably spent, once, in the order of acceptance; at
    /// most `limit`.
    pub fn accepted_load(&self, limit: usize) -> Result<Vec<Tx>, StoreError> {
        let accepted = self.tables().accepted;
        let records = self.scan(accepted, None, move |key, value| {
            let tx: Tx = decode_value(accepted, value).map_err(|e| e.to_string())?;
            let (_, outpoint): (u64, OutPoint) = schema::sequenced_from_key(key)
                .ok_or_else(|| "key is not sequence ‖ outpoint".to_string())?;
            if !tx.inputs.iter().any(|input| input.prev == outpoint) {
                return Err("stored under an outpoint the tx does not spend".to_string());
            }
            Ok(tx)
        })?;
        let mut seen = BTreeSet::new();
        let mut txs = Vec::new();
        for record in records {
            if txs.len() == limit {
                break;
            }
            let tx = record?;
            if seen.insert(tx.txid()) {
                txs.push(tx);
            }
        }
        Ok(txs)
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let t = self.tables();
        let count = |table| self.count(table);
        let env = &self.store.env;
        let page_size = env
            .stat()
            .map_err(StoreError::lmdb("stat of environment"))?
            .page_size();
        let info = env
            .info()
            .map_err(StoreError::lmdb("read of environment info"))?;
        Ok(StoreStats {
            utxos: count(t.utxos)?,
            unspent: count(t.addr_utxos)?,
            txs: count(t.txs)?,
            proofs: count(t.proofs)?,
            mempool: count(t.mempool)?,
            accepted: count(t.accepted)?,
            blocks: count(t.blocks)?,
            heights: count(t.heights)?,
            unarchived: count(t.unarchived)?,
            finalized_count: self.get_meta(schema::META_FINALIZED_COUNT)?,
            map_size_bytes: info.map_size() as u64,
            used_bytes: (info.last_pgno() as u64 + 1) * u64::from(page_size),
        })
    }

    /// Every output ever created, spent ones included, in outpoint order.
    pub fn scan_utxos(&self) -> Result<Scan<'_, (OutPoint, UtxoEntry)>, StoreError> {
        let utxos = self.tables().utxos;
        self.scan(utxos, None, move |key, value| {
            let outpoint = schema::outpoint_from_key(key)
                .ok_or_else(|| "key is not an outpoint".to_string())?;
            Ok((
                outpoint,
                decode_value(utxos, value).map_err(|e| e.to_string())?,
            ))
        })
    }

    /// Every address index entry, in key order.
    pub fn scan_address_index(&self) -> Result<Scan<'_, (Address, OutPoint)>, StoreError> {
        self.scan(self.tables().addr_utxos, None, addr_index_pair)
    }

    /// Every finalized tx record, in txid order.
    pub fn scan_txs(&self) -> Result<Scan<'_, (Hash, TxRecord)>, StoreError> {
        let txs = self.tables().txs;
        self.scan(txs, None, move |key, value| {
            let txid = schema::txid_from_key(key).ok_or_else(|| "key is not a txid".to_string())?;
            Ok((txid, decode_value(txs, value).map_err(|e| e.to_string())?))
        })
    }

    /// A cursor over `table` from `from` (or the start), decoding each pair.
    pub(super) fn scan<T>(
        &self,
        table: Table,
        from: Option<&[u8]>,
        decode_pair: impl Fn(&[u8], &[u8]) -> Result<T, String> + 'static,
    ) -> Result<Scan<'_, T>, StoreError> {
        let mut cursor = self
            .txn
            .open_ro_cursor(table.db)
            .map_err(StoreError::lmdb(format!("cursor over {}", table.name())))?;
        let iter = match from {
            Some(key) => cursor.iter_from(key),
            None => cursor.iter_start(),
        };
        Ok(Scan {
            iter,
            _cursor: cursor,
            table,
            decode: Box::new(decode_pair),
            failed: false,
        })
    }
}

/// Decodes an address index key; its value is empty by design.
fn addr_index_pair(key: &[u8], _value: &[u8]) -> Result<(Address, OutPoint), String> {
    schema::addr_utxo_from_key(key).ok_or_else(|| "key is not address ‖ outpoint".to_string())
}

impl UtxoView for Store {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError> {
        Store::utxo(self, outpoint).map_err(|e| ViewError(e.to_string()))
    }

    /// The maturity height (see `schema`): rewards need a certified block too.
    fn tip_height(&self) -> Result<u64, ViewError> {
        self.read()
            .and_then(|view| view.maturity_height())
            .map_err(|e| ViewError(e.to_string()))
    }

    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ViewError> {
        self.read()
            .map_err(|e| ViewError(e.to_string()))
            .and_then(|view| view.registered_at(identity))
    }

    fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError> {
        self.read()
            .map_err(|e| ViewError(e.to_string()))
            .and_then(|view| UtxoView::bond(&view, outpoint))
    }

    fn bond_state(&self, bond: &Bond) -> Result<BondState, ViewError> {
        self.read()
            .map_err(|e| ViewError(e.to_string()))
            .and_then(|view| UtxoView::bond_state(&view, bond))
    }
}

impl UtxoView for ReadView<'_> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError> {
        ReadView::utxo(self, outpoint).map_err(|e| ViewError(e.to_string()))
    }

    /// The maturity height (see `schema`): rewards need a certified block too.
    fn tip_height(&self) -> Result<u64, ViewError> {
        self.maturity_height().map_err(|e| ViewError(e.to_string()))
    }

    /// From the registry's table: what the final blocks registered.
    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ViewError> {
        self.masternode(identity)
            .map(|member| member.map(|m| m.registered_at))
            .map_err(|e| ViewError(e.to_string()))
    }

    fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError> {
        ReadView::bond(self, outpoint).map_err(|e| ViewError(e.to_string()))
    }

    fn bond_state(&self, bond: &Bond) -> Result<BondState, ViewError> {
        ReadView::bond_state(self, bond).map_err(|e| ViewError(e.to_string()))
    }
}

type DecodePair<T> = Box<dyn Fn(&[u8], &[u8]) -> Result<T, String>>;

/// Decoded records of one table in key order. Stops after the first error.
pub struct Scan<'v, T> {
    // Field order matters: the iterator uses the cursor, so it goes first.
    iter: ::lmdb::Iter<'v>,
    _cursor: RoCursor<'v>,
    table: Table,
    decode: DecodePair<T>,
    failed: bool,
}

impl<T> Iterator for Scan<'_, T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.iter.next()? {
            Ok((key, value)) => (self.decode)(key, value)
                .map_err(|reason| StoreError::corrupt(self.table.name(), key, reason)),
            Err(e) => Err(StoreError::lmdb(format!(
                "cursor over {}",
                self.table.name()
            ))(e)),
        };
        self.failed = item.is_err();
        Some(item)
    }
}
