//! The ledger thread: the only writer of chain state. It drains its channel
//! as a batch and commits the batch's finalized transactions in ONE
//! `apply_finalized` (one LMDB write transaction, one fsync: group commit),
//! then tells the consensus thread which txids are durable. Admitted
//! transactions are persisted in the mempool table, batched the same way.
//!
//! It never decides validity or finality; it ends when the consensus thread
//! drops its sender, after a final commit of everything it received.

use super::channels::{Durable, LedgerCommand};
use crate::metrics::Metrics;
use crate::store::{FinalizedTx, Store, StoreError};
use crate::time::Clock;
use crate::types::{Hash, Tx};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub struct LedgerThread<C: Clock> {
    pub store: Arc<Store>,
    pub commands: Receiver<LedgerCommand>,
    pub durable: Sender<Durable>,
    pub metrics: Arc<Metrics>,
    pub clock: C,
}

/// One drained batch, sorted by kind.
#[derive(Default)]
struct Batch {
    puts: Vec<Tx>,
    finalized: Vec<FinalizedTx>,
    removes: Vec<Hash>,
}

impl<C: Clock> LedgerThread<C> {
    pub fn run(self) -> Result<(), StoreError> {
        // `recv` fails only once the consensus thread is gone: shutdown.
        while let Ok(first) = self.commands.recv() {
            let mut batch = Batch::default();
            let pending = self.commands.len();
            for command in std::iter::once(first).chain(self.commands.try_iter().take(pending)) {
                match command {
                    LedgerCommand::MempoolPut(tx) => batch.puts.push(tx),
                    LedgerCommand::Finalized(f) => batch.finalized.push(f),
                    LedgerCommand::MempoolRemove(txid) => batch.removes.push(txid),
                }
            }
            self.commit(batch)?;
        }
        Ok(())
    }

    /// Puts first: `apply_finalized` drops its txs from the mempool table,
    /// and a put after it would resurrect one admitted and finalized in
    /// the same batch.
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if !batch.puts.is_empty() {
            self.store.mempool_put(&batch.puts)?;
        }
        if !batch.finalized.is_empty() {
            let started = self.clock.now();
            let report = self.store.apply_finalized(&batch.finalized)?;
            let at = self.clock.now();
            let commit_ms = at.saturating_since(started).as_millis();
            self.metrics
                .lmdb_commit
                .observe_ms(u64::try_from(commit_ms).unwrap_or(u64::MAX));
            self.metrics.ledger_batches.fetch_add(1, Relaxed);
            self.metrics
                .txs_finalized
                .fetch_add(report.applied as u64, Relaxed);
            if let Some(bytes) = report.map_grown_to_bytes {
                log::info!("LMDB map grown to {bytes} bytes");
            }
            log::debug!(
                "committed {} finalized txs ({} replays) in {commit_ms} ms",
                report.applied,
                report.already_recorded
            );
            let txids = batch.finalized.iter().map(|f| f.tx.txid()).collect();
            // The consensus thread may have stopped first at shutdown; the
            // commit is durable either way.
            let _ = self.durable.send(Durable { txids, at });
        }
        if !batch.removes.is_empty() {
            self.store.mempool_remove(&batch.removes)?;
        }
        Ok(())
    }
}
