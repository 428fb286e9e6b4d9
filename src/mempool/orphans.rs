//! Transactions from peers that spend an output we do not know yet (its
//! parent is still pending here). Held, bounded in total and per peer, until
//! the parent finalizes or they expire. Never sampled, never voted for.

use super::Deadlines;
use crate::time::MonoTime;
use crate::types::{Hash, PublicKeyBytes, Tx};
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
struct Orphan {
    tx: Tx,
    from: PublicKeyBytes,
    parent: Hash,
    expires_at: MonoTime,
}

#[derive(Clone, Debug)]
pub struct OrphanPool {
    orphans: HashMap<Hash, Orphan>,
    /// (missing parent txid, orphan txid).
    by_parent: BTreeSet<(Hash, Hash)>,
    per_peer: HashMap<PublicKeyBytes, usize>,
    expiries: Deadlines<Hash>,
    max_total: usize,
    max_per_peer: usize,
}

impl OrphanPool {
    pub fn new(max_total: usize, max_per_peer: usize) -> OrphanPool {
        OrphanPool {
            orphans: HashMap::new(),
            by_parent: BTreeSet::new(),
            per_peer: HashMap::new(),
            expiries: Deadlines::new(),
            max_total,
            max_per_peer,
        }
    }

    pub fn len(&self) -> usize {
        self.orphans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orphans.is_empty()
    }

    pub fn contains(&self, txid: &Hash) -> bool {
        self.orphans.contains_key(txid)
    }

    /// Holds `tx` until `parent` finalizes; `false` if a limit refuses it.
    pub fn insert(
        &mut self,
        txid: Hash,
        tx: Tx,
        from: PublicKeyBytes,
        parent: Hash,
        expires_at: MonoTime,
    ) -> bool {
        let peer_count = self.per_peer.get(&from).copied().unwrap_or(0);
        if self.orphans.contains_key(&txid)
            || self.orphans.len() >= self.max_total
            || peer_count >= self.max_per_peer
        {
            return false;
        }
        self.per_peer.insert(from, peer_count + 1);
        self.by_parent.insert((parent, txid));
        self.expiries.insert((expires_at, txid));
        self.orphans.insert(
            txid,
            Orphan {
                tx,
                from,
                parent,
                expires_at,
            },
        );
        true
    }

    /// Removes and returns every orphan waiting for `parent`, with its sender.
    pub fn take_children(&mut self, parent: &Hash) -> Vec<(Tx, PublicKeyBytes)> {
        let children: Vec<Hash> = self
            .by_parent
            .range((*parent, Hash::ZERO)..)
            .take_while(|(p, _)| p == parent)
            .map(|(_, child)| *child)
            .collect();
        children
            .iter()
            .filter_map(|txid| self.remove(txid))
            .map(|o| (o.tx, o.from))
            .collect()
    }

    /// Drops orphans whose time is up.
    pub fn expire(&mut self, now: MonoTime) {
        while let Some(&(at, txid)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            self.remove(&txid);
        }
    }

    pub fn next_expiry(&self) -> Option<MonoTime> {
        self.expiries.next_at()
    }

    fn remove(&mut self, txid: &Hash) -> Option<Orphan> {
        let orphan = self.orphans.remove(txid)?;
        self.by_parent.remove(&(orphan.parent, *txid));
        self.expiries.remove(&(orphan.expires_at, *txid));
        if let Some(count) = self.per_peer.get_mut(&orphan.from) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_peer.remove(&orphan.from);
            }
        }
        Some(orphan)
    }
}
