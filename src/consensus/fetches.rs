//! Transactions this node asked a peer for (`GetTxs`) after answering
//! `Unknown`. Bounded in total and per peer, and forgotten at a deadline,
//! so a peer can neither make us fetch without limit nor push unrequested
//! transactions through the fetch path.

use super::messages::NodeId;
use crate::mempool::Deadlines;
use crate::time::MonoTime;
use crate::types::Hash;
use foldhash::{HashMap, HashMapExt};

#[derive(Clone, Debug)]
pub struct Fetches {
    pending: HashMap<Hash, (NodeId, MonoTime)>,
    per_peer: HashMap<NodeId, usize>,
    deadlines: Deadlines<Hash>,
    max_total: usize,
    max_per_peer: usize,
}

impl Fetches {
    pub fn new(max_total: usize, max_per_peer: usize) -> Fetches {
        Fetches {
            pending: HashMap::new(),
            per_peer: HashMap::new(),
            deadlines: Deadlines::new(),
            max_total,
            max_per_peer,
        }
    }

    /// Records a fetch of `txid` from `peer`; `false` if already pending or a limit refuses it.
    pub fn request(&mut self, txid: Hash, peer: NodeId, deadline: MonoTime) -> bool {
        let count = self.per_peer.get(&peer).copied().unwrap_or(0);
        if self.pending.contains_key(&txid)
            || self.pending.len() >= self.max_total
            || count >= self.max_per_peer
        {
            return false;
        }
        self.pending.insert(txid, (peer, deadline));
        self.per_peer.insert(peer, count + 1);
        self.deadlines.insert((deadline, txid));
        true
    }

    /// Whether `txid` was requested from `peer`; the fetch is done either way it answers.
    pub fn take(&mut self, txid: &Hash, peer: &NodeId) -> bool {
        match self.pending.get(txid) {
            Some((asked, _)) if asked == peer => {
                self.remove(txid);
                true
            }
            _ => false,
        }
    }

    /// Forgets fetches whose deadline passed (the peer never answered).
    pub fn expire(&mut self, now: MonoTime) {
        while let Some(&(at, txid)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.remove(&txid);
        }
    }

    pub fn next_deadline(&self) -> Option<MonoTime> {
        self.deadlines.next_at()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn remove(&mut self, txid: &Hash) {
        let Some((peer, deadline)) = self.pending.remove(txid) else {
            return;
        };
        self.deadlines.remove(&(deadline, *txid));
        if let Some(count) = self.per_peer.get_mut(&peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}
