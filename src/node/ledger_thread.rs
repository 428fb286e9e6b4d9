//! The ledger thread: the only writer of chain state. It drains its channel
//! as a batch and commits the whole batch (admitted txs, finalized txs with
//! their proofs, local acceptances, removals) in ONE `Store::commit_batch`:
//! one LMDB write transaction, one fsync (group commit). Then it tells the
//! consensus thread what became durable.
//!
//! It never decides validity or finality; it ends when the consensus thread
//! drops its sender, after a final commit of everything it received.

use super::channels::{Durable, LedgerCommand};
use super::heap_trim::HeapTrim;
use super::tx_notify::TxFinalNotify;
use crate::metrics::Metrics;
use crate::rpc::notify::Waiters;
use crate::store::{FinalizedTx, LedgerBatch, Store, StoreError};
use crate::time::{Clock, MonoTime};
use crate::types::{Hash, Tx};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// How often the ledger thread unmaps the store's map at most
/// ([`Store::release_mapped_pages`]). The kernel maps 64 KiB to 256 KiB
/// around each page a read touches (`store::map_pages`), so without it the
/// map's RSS soon is the whole file; with it, what a second's reads mapped.
/// A release costs one read of `/proc/self/maps` and one `madvise`, and
/// the pages in use come back as minor faults.
pub const MAP_RELEASE_EVERY_MS: u64 = 1_000;

pub struct LedgerThread<C: Clock> {
    pub store: Arc<Store>,
    pub commands: Receiver<LedgerCommand>,
    pub durable: Sender<Durable>,
    pub metrics: Arc<Metrics>,
    pub clock: C,
    /// Parked `waitfortx` calls, woken once their tx is durable or removed.
    pub waiters: Arc<Waiters>,
    /// `--txfinal-notify`: told each durable-final txid, never blocking.
    pub notify: Option<TxFinalNotify>,
}

/// One drained batch, sorted by kind. The store applies the kinds in a
/// fixed order (puts first, removals last), which matches the channel's
/// order for every txid but one case handled here: a put after a removal
/// (a wallet resubmitting an expired tx) cancels the removal.
#[derive(Default)]
struct Batch {
    puts: Vec<Tx>,
    accepted: Vec<Tx>,
    finalized: Vec<FinalizedTx>,
    removes: BTreeSet<Hash>,
}

impl Batch {
    fn add(&mut self, command: LedgerCommand) {
        match command {
            LedgerCommand::MempoolPut(tx) => {
                self.removes.remove(&tx.txid());
                self.puts.push(tx);
            }
            LedgerCommand::Accepted(tx) => self.accepted.push(tx),
            LedgerCommand::Finalized(f) => self.finalized.push(f),
            LedgerCommand::MempoolRemove(txid) => {
                self.removes.insert(txid);
            }
        }
    }
}

impl<C: Clock> LedgerThread<C> {
    pub fn run(self) -> Result<(), StoreError> {
        let mut heap = HeapTrim::default();
        let mut map_released = self.clock.mono();
        // Wakes when quiet too: other threads' reads map pages without a commit.
        let wake_every = Duration::from_millis(MAP_RELEASE_EVERY_MS);
        loop {
            let first = match self.commands.recv_timeout(wake_every) {
                Ok(first) => first,
                // Quiet for a second: the last burst's memory is freed by now.
                Err(RecvTimeoutError::Timeout) => {
                    self.idle(&mut heap, &mut map_released);
                    continue;
                }
                // The consensus thread is gone: shutdown.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let mut batch = Batch::default();
            let pending = self.commands.len();
            for command in std::iter::once(first).chain(self.commands.try_iter().take(pending)) {
                batch.add(command);
            }
            self.commit(batch)?;
            heap.worked();
            if self.commands.is_empty() {
                self.idle(&mut heap, &mut map_released);
            }
        }
    }

    /// Between batches: the heap's free pages back to the kernel (after
    /// work, at most once per [`heap_trim::TRIM_EVERY_MS`]), and the store's
    /// map pages unmapped (at most once per [`MAP_RELEASE_EVERY_MS`]; they
    /// stay in the page cache, and what the next reads touch is mapped again).
    ///
    /// [`heap_trim::TRIM_EVERY_MS`]: super::heap_trim::TRIM_EVERY_MS
    fn idle(&self, heap: &mut HeapTrim, map_released: &mut MonoTime) {
        let now = self.clock.mono();
        heap.idle(now);
        if now.saturating_since(*map_released).as_millis() < u128::from(MAP_RELEASE_EVERY_MS) {
            return;
        }
        *map_released = now;
        if let Err(e) = self.store.release_mapped_pages() {
            log::warn!("cannot give back the store's mapped pages: {e}");
        }
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let removes: Vec<Hash> = batch.removes.into_iter().collect();
        let started = self.clock.mono();
        let report = self.store.commit_batch(&LedgerBatch {
            mempool_puts: &batch.puts,
            finalized: &batch.finalized,
            accepted: &batch.accepted,
            mempool_removes: &removes,
        })?;
        let at = self.clock.mono();
        let commit_ms = at.saturating_since(started).as_millis();
        let m = &self.metrics;
        m.lmdb_commit
            .observe_ms(u64::try_from(commit_ms).unwrap_or(u64::MAX));
        m.ledger_batches.fetch_add(1, Relaxed);
        m.ledger_commits.fetch_add(1, Relaxed);
        m.ledger_writes.fetch_add(report.writes as u64, Relaxed);
        let applied = report.finalized.applied;
        m.txs_finalized.fetch_add(applied as u64, Relaxed);
        if let Some(bytes) = report.map_grown_to_bytes {
            log::info!("LMDB map grown to {bytes} bytes");
        }
        for refused in &report.refused_acceptances {
            log::error!("{refused}");
        }
        log::debug!(
            "committed {} admitted, {applied} finalized ({} replays), {} accepted, \
             {} removed in {commit_ms} ms",
            batch.puts.len(),
            report.finalized.already_recorded,
            report.accepted.len(),
            removes.len(),
        );
        let finalized: Vec<Hash> = batch.finalized.iter().map(|f| f.tx.txid()).collect();
        self.waiters.publish_final(&finalized, at.as_millis());
        if let Some(notify) = &self.notify {
            notify.publish(&finalized);
        }
        self.waiters.publish_txs(&removes);
        let durable = Durable {
            finalized,
            accepted: report.accepted,
            admitted: batch.puts.iter().map(Tx::txid).collect(),
            at,
        };
        // The consensus thread may have stopped first at shutdown; the
        // commit is durable either way.
        let _ = self.durable.send(durable);
        Ok(())
    }
}
