//! Wake-ups for long-polling RPC calls (`waitfortx`, `waitfornewblock`,
//! `waitforblockheight`): the ledger and block threads publish what they
//! just made durable; each parked call holds a [`Registration`] and is
//! woken when its topic moves, then reads the answer from the store.
//!
//! A wake-up carries no state, only "look again", so a missed or merged
//! one cannot give a wrong answer. The registry is capped in total and per
//! source address, so strangers cannot pin threads or grow it; a full
//! registry is an RPC error, never a queue. Publishing is a relaxed load
//! when nobody waits, so the ledger's hot path pays nothing.
//!
//! It also keeps the status page's feed of what just became final: the
//! last [`RECENT_TXS`] txids and the sizes of the last [`RECENT_COMMITS`]
//! commits (for tx/s), both fixed-size rings.

use crate::types::Hash;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Calls parked at once, over all clients.
pub const MAX_WAITERS: usize = 64;
/// Calls parked at once by one source address: a second local client
/// keeps room.
pub const MAX_WAITERS_PER_SOURCE: usize = 32;

/// Finalized txs the status page lists.
pub const RECENT_TXS: usize = 20;
/// Commits remembered for the tx/s figure.
pub const RECENT_COMMITS: usize = 256;

/// The recent-finality feed: fixed-size rings, oldest first.
#[derive(Default)]
struct Recent {
    txs: VecDeque<(Hash, u64)>,
    /// (commit time in Unix ms, txs it finalized).
    commits: VecDeque<(u64, u64)>,
}

/// What a parked call waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// A transaction became durable-final, or left the mempool.
    Tx(Hash),
    /// The tip changed.
    Block,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    #[error("{MAX_WAITERS} calls are already waiting on this node; retry shortly or poll")]
    Full,
    #[error("this client already has {MAX_WAITERS_PER_SOURCE} calls waiting; retry when one ends")]
    SourceFull,
    #[error("the node is shutting down")]
    Closed,
}

struct Entry {
    id: u64,
    source: IpAddr,
    topic: Topic,
    wake: Sender<()>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    entries: Vec<Entry>,
    closed: bool,
}

/// The registry every RPC worker, the ledger thread and the block thread share.
#[derive(Default)]
pub struct Waiters {
    inner: Mutex<Inner>,
    /// Entries held; read without the lock on the publishing side.
    held: AtomicUsize,
    recent: Mutex<Recent>,
}

/// A parked call's place in the registry; dropping it leaves.
pub struct Registration {
    waiters: Arc<Waiters>,
    id: u64,
    wake: Receiver<()>,
}

impl Registration {
    /// Woken (or the registry closed: the receiver then fails at once).
    pub fn receiver(&self) -> &Receiver<()> {
        &self.wake
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.waiters.lock();
        inner.entries.retain(|e| e.id != self.id);
        self.waiters
            .held
            .store(inner.entries.len(), Ordering::Relaxed);
    }
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the table consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn register(
        self: &Arc<Self>,
        source: IpAddr,
        topic: Topic,
    ) -> Result<Registration, RegisterError> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(RegisterError::Closed);
        }
        if inner.entries.len() >= MAX_WAITERS {
            return Err(RegisterError::Full);
        }
        if inner.entries.iter().filter(|e| e.source == source).count() >= MAX_WAITERS_PER_SOURCE {
            return Err(RegisterError::SourceFull);
        }
        let id = inner.next_id;
        inner.next_id = inner.next_id.wrapping_add(1);
        // One pending wake-up is all a waiter needs: it reads state anew.
        let (wake, receiver) = bounded(1);
        inner.entries.push(Entry {
            id,
            source,
            topic,
            wake,
        });
        self.held.store(inner.entries.len(), Ordering::Relaxed);
        Ok(Registration {
            waiters: Arc::clone(self),
            id,
            wake: receiver,
        })
    }

    /// Wakes the waiters of these transactions (made durable-final, or
    /// removed from the mempool).
    pub fn publish_txs<'a>(&self, txids: impl IntoIterator<Item = &'a Hash>) {
        if self.held.load(Ordering::Relaxed) == 0 {
            return;
        }
        let inner = self.lock();
        for txid in txids {
            for entry in inner.entries.iter().filter(|e| e.topic == Topic::Tx(*txid)) {
                wake(&entry.wake);
            }
        }
    }

    /// The ledger made `txids` durable-final at `at_ms`: wakes their
    /// waiters and feeds the status page.
    pub fn publish_final(&self, txids: &[Hash], at_ms: u64) {
        if txids.is_empty() {
            return;
        }
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            for txid in txids.iter().rev().take(RECENT_TXS).rev() {
                if recent.txs.len() == RECENT_TXS {
                    recent.txs.pop_front();
                }
                recent.txs.push_back((*txid, at_ms));
            }
            if recent.commits.len() == RECENT_COMMITS {
                recent.commits.pop_front();
            }
            recent.commits.push_back((at_ms, txids.len() as u64));
        }
        self.publish_txs(txids);
    }

    /// The last finalized txids with their commit times, newest first.
    pub fn recent_final(&self) -> Vec<(Hash, u64)> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.txs.iter().rev().copied().collect()
    }

    /// Txs finalized per second over the `window_ms` before `now_ms`
    /// (as far as the remembered commits reach).
    pub fn finalized_per_sec(&self, now_ms: u64, window_ms: u64) -> f64 {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let since = now_ms.saturating_sub(window_ms);
        let txs: u64 = recent
            .commits
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, n)| n)
            .sum();
        txs as f64 * 1_000.0 / window_ms.max(1) as f64
    }

    /// Wakes the waiters of the tip.
    pub fn publish_block(&self) {
        if self.held.load(Ordering::Relaxed) == 0 {
            return;
        }
        let inner = self.lock();
        for entry in inner.entries.iter().filter(|e| e.topic == Topic::Block) {
            wake(&entry.wake);
        }
    }

    /// At shutdown: every waiter returns now and no new one may park.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        // Dropping the senders fails every receiver at once.
        inner.entries.clear();
        self.held.store(0, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

fn wake(sender: &Sender<()>) {
    // Full means a wake-up is already pending: as good.
    match sender.try_send(()) {
        Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn a_publication_wakes_only_the_waiters_of_its_topic() {
        let waiters = Arc::new(Waiters::default());
        let a = Hash([1; 32]);
        let on_a = waiters.register(ip(1), Topic::Tx(a)).unwrap();
        let on_b = waiters.register(ip(1), Topic::Tx(Hash([2; 32]))).unwrap();
        let on_block = waiters.register(ip(1), Topic::Block).unwrap();
        waiters.publish_txs([&a, &a]);
        assert!(on_a.receiver().try_recv().is_ok());
        assert!(on_b.receiver().try_recv().is_err());
        assert!(on_block.receiver().try_recv().is_err());
        waiters.publish_block();
        assert!(on_block.receiver().try_recv().is_ok());
    }

    #[test]
    fn the_registry_is_capped_per_source_and_in_total_and_frees_on_drop() {
        let waiters = Arc::new(Waiters::default());
        let mut held: Vec<Registration> = (0..MAX_WAITERS_PER_SOURCE)
            .map(|_| waiters.register(ip(1), Topic::Block).unwrap())
            .collect();
        assert_eq!(
            waiters.register(ip(1), Topic::Block).err(),
            Some(RegisterError::SourceFull)
        );
        held.extend(
            (MAX_WAITERS_PER_SOURCE..MAX_WAITERS)
                .map(|_| waiters.register(ip(2), Topic::Block).unwrap()),
        );
        assert_eq!(
            waiters.register(ip(3), Topic::Block).err(),
            Some(RegisterError::Full)
        );
        held.pop();
        assert!(waiters.register(ip(3), Topic::Block).is_ok());
        drop(held);
        assert_eq!(waiters.held(), 0);
    }

    #[test]
    fn the_recent_feed_keeps_the_newest_txs_and_counts_the_rate_window() {
        let waiters = Waiters::default();
        let txids: Vec<Hash> = (0..30u8).map(|i| Hash([i; 32])).collect();
        waiters.publish_final(&txids[..10], 1_000);
        waiters.publish_final(&txids[10..], 9_000);
        let recent = waiters.recent_final();
        assert_eq!(recent.len(), RECENT_TXS);
        assert_eq!(recent.first(), Some(&(Hash([29; 32]), 9_000)));
        assert_eq!(waiters.finalized_per_sec(10_000, 2_000), 10.0);
        assert_eq!(waiters.finalized_per_sec(10_000, 10_000), 3.0);
    }

    #[test]
    fn closing_fails_every_parked_receiver_and_refuses_new_ones() {
        let waiters = Arc::new(Waiters::default());
        let parked = waiters.register(ip(1), Topic::Block).unwrap();
        waiters.close();
        assert!(parked.receiver().recv().is_err());
        assert_eq!(
            waiters.register(ip(1), Topic::Block).err(),
            Some(RegisterError::Closed)
        );
    }
}
