//! The mempool: transactions between admission and durability, their status
//! machine, the conflict set of every outpoint they spend, expiry, orphans,
//! and a bounded memory of how recent transactions settled.
//!
//! Pure and bounded: every map is capped, time is passed in. It never
//! decides anything itself: Snowball (in `consensus`) moves a transaction
//! from `Sampling` on, and the per-transaction consensus state rides along
//! as the opaque `S`.

pub mod deadlines;
pub mod orphans;
pub mod overlay;
pub mod recent;

pub use deadlines::Deadlines;
pub use orphans::OrphanPool;
pub use overlay::OverlayView;
pub use recent::RecentMap;

use crate::time::MonoTime;
use crate::types::{Hash, OutPoint, Tx};
use foldhash::{HashMap, HashMapExt};

/// Where a transaction is in its life (DESIGN §4): `Seen → Sampling →
/// LocallyAccepted → Finalized`, or `Rejected`/`Expired`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TxStatus {
    /// Held but not yet valid here (an orphan waiting for its parent).
    Seen,
    Sampling,
    LocallyAccepted,
    Finalized,
    Rejected,
    Expired,
}

/// A transaction in the pool.
#[derive(Clone, Debug)]
pub struct Entry<S> {
    pub tx: Tx,
    pub status: TxStatus,
    pub first_seen: MonoTime,
    /// Set while `Sampling`: when the tx leaves unless locally accepted.
    pub expires_at: Option<MonoTime>,
    /// Whether another pool member ever shared one of its inputs. While
    /// false the tx is alone in every conflict set it joined (answering a
    /// query needs no conflict-set lookup); never cleared, since a stale
    /// `true` only costs that lookup.
    pub contested: bool,
    pub state: S,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("the mempool is full ({max} transactions); retry after some finalize or expire")]
    Full { max: usize },
    #[error("transaction {0} is already in the mempool")]
    AlreadyPresent(Hash),
    #[error("outpoint {outpoint} already has {max} competing spends; refusing more")]
    ConflictSetFull { outpoint: OutPoint, max: usize },
}

/// Live transactions by txid, conflict sets by outpoint.
#[derive(Clone, Debug)]
pub struct Mempool<S> {
    entries: HashMap<Hash, Entry<S>>,
    conflict_sets: HashMap<OutPoint, Vec<Hash>>,
    expiries: Deadlines<Hash>,
    /// How recently removed transactions ended: `Finalized` (durable),
    /// `Rejected` or `Expired`.
    settled: RecentMap<Hash, TxStatus>,
    max_txs: usize,
    max_conflicts_per_outpoint: usize,
}

impl<S> Mempool<S> {
    pub fn new(max_txs: usize, max_conflicts_per_outpoint: usize, settled_capacity: usize) -> Self {
        Mempool {
            entries: HashMap::new(),
            conflict_sets: HashMap::new(),
            expiries: Deadlines::new(),
            settled: RecentMap::new(settled_capacity),
            max_txs,
            max_conflicts_per_outpoint: max_conflicts_per_outpoint.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn max_txs(&self) -> usize {
        self.max_txs
    }

    pub fn get(&self, txid: &Hash) -> Option<&Entry<S>> {
        self.entries.get(txid)
    }

    pub fn get_mut(&mut self, txid: &Hash) -> Option<&mut Entry<S>> {
        self.entries.get_mut(txid)
    }

    pub fn contains(&self, txid: &Hash) -> bool {
        self.entries.contains_key(txid)
    }

    /// Every txid in the pool spending `outpoint` (including the one asked about).
    pub fn conflict_set(&self, outpoint: &OutPoint) -> &[Hash] {
        self.conflict_sets
            .get(outpoint)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Distinct other pool members sharing an input with `tx`, ascending.
    pub fn conflicts_of(&self, txid: &Hash, tx: &Tx) -> Vec<Hash> {
        let mut out: Vec<Hash> = tx
            .inputs
            .iter()
            .flat_map(|i| self.conflict_set(&i.prev).iter().copied())
            .filter(|c| c != txid)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Admits `tx` as `Sampling`, joining the conflict set of each input.
    pub fn insert(
        &mut self,
        txid: Hash,
        tx: Tx,
        now: MonoTime,
        expires_at: MonoTime,
        state: S,
    ) -> Result<(), MempoolError> {
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyPresent(txid));
        }
        if self.entries.len() >= self.max_txs {
            return Err(MempoolError::Full { max: self.max_txs });
        }
        if let Some(full) = tx
            .inputs
            .iter()
            .find(|i| self.conflict_set(&i.prev).len() >= self.max_conflicts_per_outpoint)
        {
            return Err(MempoolError::ConflictSetFull {
                outpoint: full.prev,
                max: self.max_conflicts_per_outpoint,
            });
        }
        let contested = self.join_conflict_sets(txid, &tx);
        self.expiries.insert((expires_at, txid));
        self.entries.insert(
            txid,
            Entry {
                tx,
                status: TxStatus::Sampling,
                first_seen: now,
                expires_at: Some(expires_at),
                contested,
                state,
            },
        );
        Ok(())
    }

    /// Adds a transaction that arrived with a valid finality proof, as
    /// `Finalized`. Not refused when full: finality cannot be dropped, and
    /// only a quorum of validators can produce proofs.
    pub fn insert_finalized(&mut self, txid: Hash, tx: Tx, now: MonoTime, state: S) {
        if self.entries.contains_key(&txid) {
            return;
        }
        let contested = self.join_conflict_sets(txid, &tx);
        self.entries.insert(
            txid,
            Entry {
                tx,
                status: TxStatus::Finalized,
                first_seen: now,
                expires_at: None,
                contested,
                state,
            },
        );
    }

    /// Adds `txid` to the conflict set of each input of `tx`, marking the
    /// members it joins contested; returns whether it joined any.
    fn join_conflict_sets(&mut self, txid: Hash, tx: &Tx) -> bool {
        let mut contested = false;
        for input in &tx.inputs {
            let set = self.conflict_sets.entry(input.prev).or_default();
            for member in set.iter() {
                contested = true;
                if let Some(entry) = self.entries.get_mut(member) {
                    entry.contested = true;
                }
            }
            set.push(txid);
        }
        contested
    }

    /// The finalized (not yet durable) pool member spending `outpoint`.
    pub fn finalized_spender(&self, outpoint: &OutPoint) -> Option<Hash> {
        self.conflict_set(outpoint).iter().copied().find(|t| {
            self.entries
                .get(t)
                .is_some_and(|e| e.status == TxStatus::Finalized)
        })
    }

    /// Moves a live transaction to `LocallyAccepted` or `Finalized`; it no
    /// longer expires.
    pub fn set_status(&mut self, txid: &Hash, status: TxStatus) {
        if let Some(entry) = self.entries.get_mut(txid) {
            entry.status = status;
            if let Some(at) = entry.expires_at.take() {
                self.expiries.remove(&(at, *txid));
            }
        }
    }

    /// Removes a transaction, releasing its place in every conflict set, and
    /// remembers how it ended (`Finalized`, `Rejected` or `Expired`).
    pub fn remove(&mut self, txid: &Hash, outcome: TxStatus) -> Option<Entry<S>> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.inputs {
            if let Some(set) = self.conflict_sets.get_mut(&input.prev) {
                set.retain(|t| t != txid);
                if set.is_empty() {
                    self.conflict_sets.remove(&input.prev);
                }
            }
        }
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, *txid));
        }
        self.settled.insert(*txid, outcome);
        Some(entry)
    }

    /// The next sampling transaction whose time is up, if any.
    pub fn pop_expired(&mut self, now: MonoTime) -> Option<Hash> {
        let &(at, txid) = self.expiries.first()?;
        if at > now {
            return None;
        }
        self.expiries.pop_first();
        if let Some(entry) = self.entries.get_mut(&txid) {
            entry.expires_at = None;
        }
        Some(txid)
    }

    pub fn next_expiry(&self) -> Option<MonoTime> {
        self.expiries.next_at()
    }

    /// How a transaction no longer in the pool ended, if still remembered.
    pub fn settled(&self, txid: &Hash) -> Option<TxStatus> {
        self.settled.get(txid).copied()
    }

    /// Forgets that `txid` expired here, so it may be admitted again (a
    /// peer asked us about it and we fetched it on that demand).
    pub fn forget_expired(&mut self, txid: &Hash) {
        if self.settled(txid) == Some(TxStatus::Expired) {
            self.settled.remove(txid);
        }
    }

    /// Remembers an outcome for a transaction that never entered the pool.
    pub fn remember(&mut self, txid: Hash, outcome: TxStatus) {
        self.settled.insert(txid, outcome);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Hash, &Entry<S>)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Amount, PublicKeyBytes, SignatureBytes, TxIn, TxOut, TX_VERSION};

    fn spend(vout: u32, to: u8) -> (Hash, Tx) {
        let tx = Tx {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prev: OutPoint {
                    txid: Hash::ZERO,
                    vout,
                },
                pubkey: PublicKeyBytes([0; 32]),
                sig: SignatureBytes([0; 64]),
            }],
            outputs: vec![TxOut {
                value: Amount(1),
                address: crate::types::Address([to; 20]),
            }],
            registration: None,
        };
        (tx.txid(), tx)
    }

    #[test]
    fn conflict_sets_fill_and_release_with_their_members() {
        let mut pool: Mempool<()> = Mempool::new(10, 2, 10);
        let (a, ta) = spend(0, 1);
        let (b, tb) = spend(0, 2);
        let (c, tc) = spend(0, 3);
        pool.insert(a, ta.clone(), MonoTime(0), MonoTime(5), ())
            .unwrap();
        assert!(!pool.get(&a).unwrap().contested);
        pool.insert(b, tb, MonoTime(0), MonoTime(5), ()).unwrap();
        assert_eq!(pool.conflicts_of(&a, &ta), [b]);
        assert!(pool.get(&a).unwrap().contested && pool.get(&b).unwrap().contested);
        assert!(matches!(
            pool.insert(c, tc, MonoTime(0), MonoTime(5), ()),
            Err(MempoolError::ConflictSetFull { max: 2, .. })
        ));
        pool.remove(&b, TxStatus::Rejected);
        assert_eq!(pool.conflict_set(&ta.inputs[0].prev), [a]);
        assert_eq!(pool.settled(&b), Some(TxStatus::Rejected));
    }

    #[test]
    fn only_sampling_transactions_expire() {
        let mut pool: Mempool<()> = Mempool::new(10, 4, 10);
        let (a, ta) = spend(0, 1);
        let (b, tb) = spend(1, 1);
        pool.insert(a, ta, MonoTime(0), MonoTime(5), ()).unwrap();
        pool.insert(b, tb, MonoTime(0), MonoTime(5), ()).unwrap();
        pool.set_status(&b, TxStatus::LocallyAccepted);
        assert_eq!(pool.pop_expired(MonoTime(4)), None);
        assert_eq!(pool.pop_expired(MonoTime(5)), Some(a));
        assert_eq!(pool.pop_expired(MonoTime(9)), None);
        assert_eq!(pool.next_expiry(), None);
    }

    #[test]
    fn orphans_are_bounded_per_peer_and_released_by_their_parent() {
        let mut orphans = OrphanPool::new(3, 2);
        let (peer, other) = (PublicKeyBytes([1; 32]), PublicKeyBytes([2; 32]));
        let parent = Hash::digest(b"parent");
        for (i, from) in [peer, peer, peer, other, other].into_iter().enumerate() {
            let (txid, tx) = spend(i as u32, 1);
            let held = orphans.insert(txid, tx, from, parent, MonoTime(10));
            assert_eq!(held, i != 2 && i != 4, "orphan {i}");
        }
        assert_eq!(orphans.take_children(&parent).len(), 3);
        assert!(orphans.is_empty());
        let (txid, tx) = spend(9, 1);
        assert!(orphans.insert(txid, tx, peer, parent, MonoTime(10)));
        orphans.expire(MonoTime(10));
        assert!(orphans.is_empty());
    }
}
