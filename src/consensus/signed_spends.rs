//! Which txid each voter signed a spend of each outpoint with, so a voter
//! that signs two spends of one outpoint is caught (DESIGN §5, equivocation).
//!
//! Every window passes here for every txid it lists and every input of
//! that tx, so the record is dense: per outpoint (one map entry), the
//! txids signed for it and, per txid, its signers by voter number (stable
//! across epochs, see `epochs::Committees::voter_id`) with the window seq. An outpoint almost always has one txid, and a signer costs
//! a bit and 8 bytes instead of a map entry keyed by its 32-byte id; both
//! arrays are sized for every voter number when the txid is first recorded, as
//! nearly every member signs every txid (growing them signer by signer
//! cost a reallocation each time the set's share doubled). Bounded:
//! oldest outpoints are forgotten first, at most
//! [`MAX_TXIDS_PER_OUTPOINT`] txids each, signers bounded by the voters
//! of the committees held.

use crate::finality::MemberBits;
use crate::mempool::RecentMap;
use crate::types::{Hash, OutPoint};

/// Txids recorded per outpoint: one conflicting pair is all evidence needs;
/// more are only other voters' choices among the same conflict set.
pub const MAX_TXIDS_PER_OUTPOINT: usize = 4;

/// One txid signed for an outpoint and who signed it.
#[derive(Debug)]
struct Signers {
    txid: Hash,
    /// Voter numbers that signed it (the common question, answered
    /// without a scan).
    signed: MemberBits,
    /// Per voter number, the seq of the window it signed this txid in
    /// (meaningful where its bit is set).
    seqs: Vec<u64>,
}

impl Signers {
    /// Sized for voter numbers `0..members`.
    fn new(txid: Hash, members: usize) -> Signers {
        Signers {
            txid,
            signed: MemberBits::new(members),
            seqs: vec![0; members],
        }
    }

    fn has(&self, member: u32) -> bool {
        self.signed.contains(member as usize)
    }

    fn add(&mut self, member: u32, seq: u64) {
        self.signed.insert(member as usize);
        // A voter numbered after the record was sized (an epoch change
        // brought new members) grows it.
        if self.seqs.len() <= member as usize {
            self.seqs.resize(member as usize + 1, 0);
        }
        if let Some(s) = self.seqs.get_mut(member as usize) {
            *s = seq;
        }
    }

    fn seq_of(&self, member: u32) -> Option<u64> {
        if !self.has(member) {
            return None;
        }
        self.seqs.get(member as usize).copied()
    }
}

/// The txids signed for one outpoint, the first held in the map entry
/// itself: the common case (one txid) costs no second lookup in memory.
#[derive(Debug)]
struct Spends {
    first: Signers,
    others: Vec<Signers>,
}

impl Spends {
    fn len(&self) -> usize {
        1 + self.others.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Signers> {
        std::iter::once(&self.first).chain(&self.others)
    }

    fn group_mut(&mut self, txid: &Hash) -> Option<&mut Signers> {
        if self.first.txid == *txid {
            return Some(&mut self.first);
        }
        self.others.iter_mut().find(|g| g.txid == *txid)
    }
}

pub struct SignedSpends {
    by_outpoint: RecentMap<OutPoint, Spends>,
    /// Voter numbers in use: what a new record is sized for.
    members: usize,
}

impl SignedSpends {
    /// Remembers at most `outpoints` outpoints, signed by voter numbers
    /// `0..members`.
    pub fn new(outpoints: usize, members: usize) -> SignedSpends {
        SignedSpends {
            by_outpoint: RecentMap::new(outpoints),
            members,
        }
    }

    /// Voter numbers now run up to `members` (an epoch brought new ones).
    pub fn set_members(&mut self, members: usize) {
        self.members = members;
    }

    /// Records that voter number `member` signed `txid`, spending `outpoint`,
    /// in its window `seq`; returns the other txid it signed for that
    /// outpoint before, and that window's seq, if any (equivocation).
    pub fn record(
        &mut self,
        member: u32,
        outpoint: OutPoint,
        txid: Hash,
        seq: u64,
    ) -> Option<(Hash, u64)> {
        let members = self.members;
        let signed = self.by_outpoint.get_or_insert_with(outpoint, || Spends {
            first: Signers::new(txid, members),
            others: Vec::new(),
        });
        if let Some(group) = signed.iter().find(|g| g.has(member)) {
            if group.txid == txid {
                return None;
            }
            return group.seq_of(member).map(|seq| (group.txid, seq));
        }
        let full = signed.len() >= MAX_TXIDS_PER_OUTPOINT;
        match signed.group_mut(&txid) {
            Some(group) => group.add(member, seq),
            None if !full => {
                let mut group = Signers::new(txid, members);
                group.add(member, seq);
                signed.others.push(group);
            }
            None => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outpoint(n: u8) -> OutPoint {
        OutPoint {
            txid: Hash::digest(&[n]),
            vout: 0,
        }
    }

    #[test]
    fn a_second_txid_for_one_outpoint_names_the_first_and_its_window() {
        let mut spends = SignedSpends::new(8, 16);
        let (a, b) = (Hash::digest(b"a"), Hash::digest(b"b"));
        assert_eq!(spends.record(7, outpoint(0), a, 1), None);
        assert_eq!(spends.record(7, outpoint(0), a, 2), None);
        // Another voter may sign the other side: not equivocation.
        assert_eq!(spends.record(8, outpoint(0), b, 5), None);
        assert_eq!(spends.record(7, outpoint(0), b, 3), Some((a, 1)));
        assert_eq!(spends.record(8, outpoint(0), a, 6), Some((b, 5)));
        // Another outpoint is another record.
        assert_eq!(spends.record(7, outpoint(1), b, 3), None);
    }

    #[test]
    fn the_oldest_outpoints_and_extra_txids_are_forgotten() {
        let mut spends = SignedSpends::new(2, 16);
        let a = Hash::digest(b"a");
        spends.record(1, outpoint(0), a, 1);
        spends.record(1, outpoint(1), a, 1);
        spends.record(1, outpoint(2), a, 1);
        // Outpoint 0 was forgotten: a conflict there goes unseen.
        assert_eq!(spends.record(1, outpoint(0), Hash::digest(b"b"), 2), None);
        let mut spends = SignedSpends::new(2, 16);
        for n in 0..=MAX_TXIDS_PER_OUTPOINT as u8 {
            spends.record(u32::from(n), outpoint(0), Hash::digest(&[n]), 1);
        }
        let last = MAX_TXIDS_PER_OUTPOINT as u32;
        // The txid over the cap was not recorded, so its signer is unknown.
        assert_eq!(spends.record(last, outpoint(0), a, 2), None);
        assert_eq!(
            spends.record(0, outpoint(0), a, 2),
            Some((Hash::digest(&[0]), 1))
        );
    }
}
