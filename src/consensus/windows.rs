//! Window votes inside the engine (DESIGN §5): our own open window, and what
//! every node keeps of everyone's windows: which it has seen (relay once,
//! dedupe by `(voter, seq)`), the latest ones (to answer a peer that missed
//! one), each voter's highest seq (to notice a gap) and, per txid, the
//! verified votes collected so far.
//!
//! Pure bookkeeping, every map bounded: the engine decides, signs and sends.

use super::messages::NodeId;
use crate::finality::{ProofBuilder, WindowError, WindowTree, WindowVote};
use crate::mempool::RecentMap;
use crate::time::MonoTime;
use crate::types::Hash;
use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::{Arc, Mutex};

/// Seqs of one engine incarnation: `session << 32 | n`. The driver hands
/// each start a session number it made durable first, so a restarted
/// validator never reuses a seq and its windows always sort after the old.
pub const SEQS_PER_SESSION: u64 = 1 << 32;

/// Tallies one txid may hold at once: the previous, current and next
/// epoch's, the epochs whose votes are accepted.
pub const MAX_EPOCH_TALLIES: usize = 3;

/// Missing windows asked for at one gap, newest first (older ones are
/// left to proofs in catch-up and block sync).
pub const MAX_GAP_FETCH: u64 = 8;

/// The window this validator is filling: txids whose local acceptance is
/// durable, not yet under any of our votes.
#[derive(Debug)]
pub struct OwnWindow {
    txids: Vec<Hash>,
    opened_at: Option<MonoTime>,
    session: u64,
    next: u64,
}

impl OwnWindow {
    pub fn new(session: u32) -> OwnWindow {
        OwnWindow {
            txids: Vec::new(),
            opened_at: None,
            session: u64::from(session),
            next: 0,
        }
    }

    /// Adds a txid we may sign; the first one opens the window.
    pub fn push(&mut self, now: MonoTime, txid: Hash) {
        self.opened_at.get_or_insert(now);
        self.txids.push(txid);
    }

    /// Adds txids signed before under an older epoch, to sign again under
    /// the new one; those still in the open window are signed with it.
    pub fn push_again(&mut self, now: MonoTime, txids: impl IntoIterator<Item = Hash>) {
        let open: HashSet<Hash> = self.txids.iter().copied().collect();
        for txid in txids {
            if !open.contains(&txid) {
                self.push(now, txid);
            }
        }
    }

    /// When the window must close: `window_ms` after it opened, or at once
    /// when it holds `max_txs`; `None` while empty (an empty window sends nothing).
    pub fn due_at(&self, window_ms: u64, max_txs: usize) -> Option<MonoTime> {
        let opened = self.opened_at?;
        Some(if self.txids.len() >= max_txs {
            opened
        } else {
            opened.plus_ms(window_ms)
        })
    }

    /// Closes the window: its seq and up to `max_txs` txids (the rest stay,
    /// and the window reopens at `now`). `None` once the session's seqs are
    /// spent: we stop signing until a restart brings a new session.
    pub fn close(&mut self, now: MonoTime, max_txs: usize) -> Option<(u64, Vec<Hash>)> {
        if self.next >= SEQS_PER_SESSION {
            return None;
        }
        let seq = self.session * SEQS_PER_SESSION + self.next;
        self.next += 1;
        let rest = self.txids.split_off(max_txs.min(self.txids.len()));
        let txids = std::mem::replace(&mut self.txids, rest);
        self.opened_at = (!self.txids.is_empty()).then_some(now);
        Some((seq, txids))
    }
}

/// What the engine keeps of received (and our own) windows.
pub struct WindowBook {
    seen: RecentMap<(NodeId, u64), ()>,
    /// Recent windows, whole, for peers that ask for one they missed.
    kept: RecentMap<(NodeId, u64), Arc<WindowTree>>,
    /// Highest seq seen per voter (members only, so bounded by the set).
    highest: HashMap<NodeId, u64>,
    /// Verified votes per txid, collected until the quorum: one tally per
    /// epoch the votes are of.
    tallies: RecentMap<Hash, Vec<(u64, ProofBuilder)>>,
}

/// Capacities of a [`WindowBook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimits {
    pub seen: usize,
    pub kept: usize,
    pub tallies: usize,
}

impl WindowBook {
    pub fn new(limits: WindowLimits) -> WindowBook {
        WindowBook {
            seen: RecentMap::new(limits.seen),
            kept: RecentMap::new(limits.kept),
            highest: HashMap::new(),
            tallies: RecentMap::new(limits.tallies),
        }
    }

    pub fn is_seen(&self, key: &(NodeId, u64)) -> bool {
        self.seen.contains(key)
    }

    /// Records a verified window; returns the seqs of `voter` missing just
    /// before it (same session only: a new session starts a new count).
    pub fn record(&mut self, window: &Arc<WindowTree>) -> Vec<u64> {
        let (voter, seq) = window.window().key();
        self.seen.insert((voter, seq), ());
        self.kept.insert((voter, seq), Arc::clone(window));
        let previous = self.highest.get(&voter).copied();
        if previous.map_or(true, |p| seq > p) {
            self.highest.insert(voter, seq);
        }
        let Some(previous) = previous else {
            return Vec::new();
        };
        let same_session = previous / SEQS_PER_SESSION == seq / SEQS_PER_SESSION;
        if !same_session || seq <= previous.saturating_add(1) {
            return Vec::new();
        }
        let from = (previous + 1).max(seq.saturating_sub(MAX_GAP_FETCH));
        (from..seq)
            .filter(|s| !self.seen.contains(&(voter, *s)))
            .collect()
    }

    /// The highest seq recorded of `voter`.
    pub fn highest(&self, voter: &NodeId) -> Option<u64> {
        self.highest.get(voter).copied()
    }

    pub fn kept(&self, voter: &NodeId, seq: u64) -> Option<&Arc<WindowTree>> {
        self.kept.get(&(*voter, seq))
    }

    /// The tally of `txid` closest to a proof: a complete one, else the
    /// heaviest of its epochs.
    pub fn tally(&self, txid: &Hash) -> Option<&ProofBuilder> {
        self.tallies
            .get(txid)?
            .iter()
            .map(|(_, tally)| tally)
            .max_by_key(|tally| (tally.is_complete(), tally.weight()))
    }

    /// The tally of `txid` holding votes of `epoch`.
    pub fn tally_in(&self, txid: &Hash, epoch: u64) -> Option<&ProofBuilder> {
        self.tallies
            .get(txid)?
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, tally)| tally)
    }

    /// The tally of `txid` for votes of `epoch`, opened with `open` if it
    /// has none. A proof holds votes of one epoch, so around a boundary a
    /// txid has one tally per epoch (at most [`MAX_EPOCH_TALLIES`]; the
    /// oldest gives way to a newer one, and a vote older than all of a
    /// full set is left out: `None`).
    pub fn tally_mut(
        &mut self,
        txid: Hash,
        epoch: u64,
        open: impl FnOnce() -> ProofBuilder,
    ) -> Option<&mut ProofBuilder> {
        let tallies = self.tallies.get_or_insert_with(txid, Vec::new);
        let at = match tallies.iter().position(|(e, _)| *e == epoch) {
            Some(at) => at,
            None if tallies.len() < MAX_EPOCH_TALLIES => {
                tallies.push((epoch, open()));
                tallies.len() - 1
            }
            None => {
                let (oldest, _) = tallies.iter().enumerate().min_by_key(|(_, (e, _))| *e)?;
                let slot = tallies.get_mut(oldest)?;
                if slot.0 > epoch {
                    return None;
                }
                *slot = (epoch, open());
                oldest
            }
        };
        tallies.get_mut(at).map(|(_, tally)| tally)
    }

    /// Forgets a settled txid's votes (its proof is durable or moot).
    pub fn forget(&mut self, txid: &Hash) {
        self.tallies.remove(txid);
    }
}

/// Checked window trees shared by every engine of one process, as
/// [`SharedVerdicts`](super::SharedVerdicts) shares signature verdicts: the
/// simulator's thousand engines receive one `Arc<WindowVote>` per sent
/// window and build its tree once in wall time. Keyed by that `Arc`'s
/// address and holding the `Arc`, so no other window can take the address
/// while cached; the same content in another allocation is checked again.
/// Simulator only: it keeps every window of the run.
#[derive(Clone, Default)]
pub struct SharedTrees(Arc<Mutex<SharedTreeMap>>);

type SharedTreeMap = HashMap<usize, (Arc<WindowVote>, Result<Arc<WindowTree>, WindowError>)>;

impl SharedTrees {
    /// [`WindowTree::check`] of `window`, computed once per allocation.
    pub fn check(&self, window: Arc<WindowVote>) -> Result<Arc<WindowTree>, WindowError> {
        // A poisoned lock only means another engine panicked mid-insert: the map is still sound.
        let mut trees = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let address = Arc::as_ptr(&window) as usize;
        let (_, checked) = trees.entry(address).or_insert_with(|| {
            let checked = WindowTree::check(Arc::clone(&window)).map(Arc::new);
            (window, checked)
        });
        checked.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::finality::VoteScope;
    use crate::types::ChainId;

    fn window(key: &Keypair, seq: u64) -> Arc<WindowTree> {
        let scope = VoteScope {
            chain_id: ChainId(1),
            genesis_hash: Hash::ZERO,
            epoch: 0,
        };
        Arc::new(WindowTree::sign(
            key,
            scope,
            seq,
            vec![Hash::digest(&seq.to_le_bytes())],
        ))
    }

    fn book() -> WindowBook {
        WindowBook::new(WindowLimits {
            seen: 64,
            kept: 8,
            tallies: 8,
        })
    }

    #[test]
    fn own_window_closes_on_time_or_size_and_never_reuses_a_seq() {
        let mut own = OwnWindow::new(3);
        assert_eq!(own.due_at(50, 2), None);
        own.push(MonoTime(10), Hash::digest(b"a"));
        assert_eq!(own.due_at(50, 2), Some(MonoTime(60)));
        own.push(MonoTime(20), Hash::digest(b"b"));
        own.push(MonoTime(20), Hash::digest(b"c"));
        assert_eq!(own.due_at(50, 2), Some(MonoTime(10)));
        let (seq, txids) = own.close(MonoTime(20), 2).unwrap();
        assert_eq!((seq, txids.len()), (3 * SEQS_PER_SESSION, 2));
        assert_eq!(own.due_at(50, 2), Some(MonoTime(70)));
        let (next, rest) = own.close(MonoTime(70), 2).unwrap();
        assert_eq!((next, rest.len()), (seq + 1, 1));
        assert_eq!(own.due_at(50, 2), None);
    }

    #[test]
    fn a_gap_in_one_session_asks_for_the_latest_missing_seqs_only() {
        let key = Keypair::from_seed_label("v");
        let mut book = book();
        assert!(book.record(&window(&key, 5)).is_empty());
        assert!(book.record(&window(&key, 6)).is_empty());
        assert_eq!(book.record(&window(&key, 9)), vec![7, 8]);
        assert_eq!(book.record(&window(&key, 30)).len() as u64, MAX_GAP_FETCH);
        // A new session restarts the count: nothing to fetch.
        assert!(book.record(&window(&key, SEQS_PER_SESSION + 2)).is_empty());
        assert!(book.is_seen(&(key.public(), 9)));
        assert!(book.kept(&key.public(), SEQS_PER_SESSION + 2).is_some());
    }
}
