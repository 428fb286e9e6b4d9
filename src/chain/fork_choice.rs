//! Fork choice among valid checkpoint blocks (DESIGN §6): which block is
//! canonical at each height, and what the node must undo and apply when a
//! better rival arrives.
//!
//! A sans-IO state machine: validated blocks and `now` in, [`ChainAction`]s
//! out; the caller performs them (store writes, announcements) in order.
//! Memory is bounded: the last final block and at most
//! `max_uncertified_blocks` canonical blocks above it, the best ticket of
//! the last few slots and the certified hashes of recent heights.
//!
//! A certified block and its ancestors are final: never undone. Above the
//! last final block only the rule decides, whenever a rival arrives: a
//! time limit on switching would make two nodes that saw the same blocks
//! at different times keep different chains, which is how a partition
//! used to leave the network forked for good. Every node holding both
//! branches of a fork compares them where they part, so all converge on
//! one branch, whose next height every validator can endorse; that
//! certificate finalizes the whole branch. A certified rival always wins,
//! whatever its rank; the switch to a certified branch beyond the kept
//! blocks is the block thread's (undo to the last certified block, then sync).
//!
//! Rule: among blocks with the same parent, the better is the one for the
//! earlier slot, then the better stake-weighted ticket
//! ([`Ticket`]), then the lower block hash. For one slot this is the
//! protocol's "best rank, tie → lowest hash";
//! the earlier-slot rule makes the order total, so two nodes that saw a
//! late block for a skipped slot and its successor in different orders
//! still converge.

use super::block::BlockHeader;
use super::slot::SlotClock;
use super::sortition::Ticket;
use super::validity::{ChainTip, ValidBlock};
use crate::finality::ValidatorSet;
use crate::time::Timestamp;
use crate::types::Hash;
use std::collections::{BTreeMap, VecDeque};

/// Slots whose best ticket is remembered for [`ForkChoice::should_publish`]:
/// a producer asks about the current slot only, a peer's clock may run a
/// little ahead or behind.
const TICKET_SLOTS: u64 = 4;

/// Fork-choice settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkChoiceConfig {
    slot_clock: SlotClock,
    max_uncertified_blocks: u64,
}

/// Why a fork-choice setting or starting chain is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkChoiceError {
    #[error("at least one uncertified block must be allowed above the last certified one")]
    NoUncertifiedRoom,
    #[error("fork choice needs at least the tip to start from")]
    NoTip,
    #[error("recent block {index} does not extend the block before it")]
    NotLinked { index: usize },
}

impl ForkChoiceConfig {
    /// `max_uncertified_blocks`: most canonical blocks kept (and switchable)
    /// above the last certified one.
    pub fn new(
        slot_clock: SlotClock,
        max_uncertified_blocks: u64,
    ) -> Result<ForkChoiceConfig, ForkChoiceError> {
        if max_uncertified_blocks == 0 {
            return Err(ForkChoiceError::NoUncertifiedRoom);
        }
        Ok(ForkChoiceConfig {
            slot_clock,
            max_uncertified_blocks,
        })
    }

    pub fn max_uncertified_blocks(&self) -> u64 {
        self.max_uncertified_blocks
    }

    /// Canonical headers kept: the last final block (the fork point of any
    /// rival branch), its parent (to name a rival of it as such) and the
    /// uncertified blocks after it.
    pub fn canonical_capacity(&self) -> usize {
        usize::try_from(self.max_uncertified_blocks)
            .unwrap_or(usize::MAX)
            .saturating_add(2)
    }
}

/// What fork choice needs to know of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSummary {
    pub hash: Hash,
    pub prev_hash: Hash,
    pub height: u64,
    pub slot: u64,
    pub ticket: Ticket,
}

impl BlockSummary {
    /// `header`'s summary, its ticket weighted by the producer's weight in
    /// `producers` (its epoch's set; `None` while undecided: no weight).
    pub fn of(header: &BlockHeader, producers: Option<&ValidatorSet>) -> BlockSummary {
        let weight = producers.and_then(|set| set.weight_of(&header.producer));
        BlockSummary {
            hash: header.hash(),
            prev_hash: header.prev_hash,
            height: header.height,
            slot: header.slot,
            ticket: Ticket::of_weight(header.score(), weight.unwrap_or(0)),
        }
    }

    /// The summary of a validated block (its ticket is already weighted).
    pub fn of_valid(block: &ValidBlock) -> BlockSummary {
        let header = &block.block().header;
        BlockSummary {
            hash: block.hash(),
            prev_hash: header.prev_hash,
            height: header.height,
            slot: header.slot,
            ticket: block.ticket(),
        }
    }

    /// The genesis as a chain's first block (it has no ticket).
    pub fn genesis(genesis_hash: Hash, genesis_slot: u64) -> BlockSummary {
        BlockSummary {
            hash: genesis_hash,
            prev_hash: Hash::ZERO,
            height: 0,
            slot: genesis_slot,
            ticket: Ticket::BEST,
        }
    }

    pub fn tip(&self) -> ChainTip {
        ChainTip {
            hash: self.hash,
            height: self.height,
            slot: self.slot,
        }
    }

    /// Lower is better among blocks with the same parent.
    fn rank(&self) -> (u64, Ticket, Hash) {
        (self.slot, self.ticket, self.hash)
    }
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainAction {
    /// Undo the tip block with this hash: un-archive its entries, remove its reward.
    Undo(Hash),
    /// Apply this block on the current tip.
    Apply(Box<ValidBlock>),
    /// Tell peers about our new tip.
    Announce(Hash),
    /// Keep the block out of the chain (and do not relay it).
    Ignore(IgnoreReason),
}

/// Why fork choice left a valid block out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    #[error("block {0} is already canonical")]
    AlreadyCanonical(Hash),
    #[error("parent {prev_hash} is not a recent canonical block (sync from peers if it is ahead)")]
    UnknownParent { prev_hash: Hash },
    #[error("canonical block {held} for the same parent is better (earlier slot, better weighted ticket, lower hash)")]
    NotBetter { held: Hash },
    #[error("canonical block {held} at height {height} is certified (or an ancestor of a certified block): it is final")]
    Certified { held: Hash, height: u64 },
    #[error("block {hash} at height {height} conflicts with the certified block {certified}")]
    ConflictsWithCertified {
        hash: Hash,
        height: u64,
        certified: Hash,
    },
}

/// Where a block would go, before the cost of validating it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// It extends the tip: validate it against the tip.
    ExtendsTip(ChainTip),
    /// It would replace the canonical block after `parent`: validate it
    /// against a view positioned at `parent`.
    Replaces { parent: ChainTip, rival: Hash },
}

/// The fork-choice state machine.
#[derive(Clone, Debug)]
pub struct ForkChoice {
    config: ForkChoiceConfig,
    /// Recent canonical blocks, oldest first; the last is the tip.
    canonical: VecDeque<BlockSummary>,
    /// The best ticket seen per recent slot (any parent), for `should_publish`.
    best_by_slot: BTreeMap<u64, Ticket>,
    /// Certified block per recent height (ours or not yet held).
    certified: BTreeMap<u64, Hash>,
    /// The highest canonical height known certified: nothing at or below
    /// it is ever undone.
    final_height: u64,
}

impl ForkChoice {
    /// Starts from the store's recent canonical blocks, oldest first, ending
    /// with the tip (the genesis alone on a fresh chain).
    pub fn new(
        config: ForkChoiceConfig,
        recent: impl IntoIterator<Item = BlockSummary>,
    ) -> Result<ForkChoice, ForkChoiceError> {
        let mut canonical: VecDeque<BlockSummary> = VecDeque::new();
        for (index, block) in recent.into_iter().enumerate() {
            if let Some(prev) = canonical.back() {
                if block.prev_hash != prev.hash || block.height != prev.height.saturating_add(1) {
                    return Err(ForkChoiceError::NotLinked { index });
                }
            }
            canonical.push_back(block);
            if canonical.len() > config.canonical_capacity() {
                canonical.pop_front();
            }
        }
        if canonical.is_empty() {
            return Err(ForkChoiceError::NoTip);
        }
        Ok(ForkChoice {
            config,
            canonical,
            best_by_slot: BTreeMap::new(),
            certified: BTreeMap::new(),
            final_height: 0,
        })
    }

    pub fn tip(&self) -> BlockSummary {
        // `new` refuses an empty chain and no path removes the last entry.
        self.canonical
            .back()
            .copied()
            .unwrap_or_else(|| BlockSummary::genesis(Hash::ZERO, 0))
    }

    /// The recent canonical blocks, oldest first.
    pub fn canonical(&self) -> impl Iterator<Item = &BlockSummary> {
        self.canonical.iter()
    }

    /// Records that `hash` is certified at `height`. If it is canonical,
    /// it and every block below it become final.
    pub fn certify(&mut self, height: u64, hash: Hash) {
        self.certified.insert(height, hash);
        let oldest = self.canonical.front().map_or(0, |b| b.height);
        self.certified = self.certified.split_off(&oldest);
        while self.certified.len() > self.config.canonical_capacity().saturating_mul(2) {
            self.certified.pop_first();
        }
        if self
            .canonical
            .iter()
            .any(|b| b.hash == hash && b.height == height)
        {
            self.final_height = self.final_height.max(height);
            self.trim();
        }
    }

    /// Drops canonical blocks below the last final one's parent (no rival
    /// can replace them, nor anything built on them), and the oldest beyond
    /// the capacity. The tip always stays.
    fn trim(&mut self) {
        let keep_from = self.final_height.saturating_sub(1);
        while self.canonical.len() > 1
            && self.canonical.front().is_some_and(|b| b.height < keep_from)
        {
            self.canonical.pop_front();
        }
        while self.canonical.len() > self.config.canonical_capacity() {
            self.canonical.pop_front();
        }
    }

    /// The lowest height a rival block may still replace: above the last
    /// final block, and with its parent among the kept blocks.
    pub fn oldest_switchable(&self) -> u64 {
        let front = self.canonical.front().map_or(0, |b| b.height);
        front.max(self.final_height).saturating_add(1)
    }

    /// How many canonical blocks sit above the last final one.
    pub fn uncertified_depth(&self) -> u64 {
        self.tip().height.saturating_sub(self.final_height)
    }

    /// The highest canonical height that is final.
    pub fn final_height(&self) -> u64 {
        self.final_height
    }

    /// A certified block above our tip (one we lack): sync towards it
    /// rather than produce beside it.
    pub fn certified_above_tip(&self) -> Option<(u64, Hash)> {
        self.all_certified_above_tip().next_back()
    }

    /// Every known certified block above our tip, lowest first.
    pub fn all_certified_above_tip(&self) -> impl DoubleEndedIterator<Item = (u64, Hash)> + '_ {
        let tip = self.tip().height;
        self.certified
            .range(tip.saturating_add(1)..)
            .map(|(h, hash)| (*h, *hash))
    }

    /// How many slots currently hold a remembered best ticket.
    pub fn tracked_slots(&self) -> usize {
        self.best_by_slot.len()
    }

    /// Where `header`'s block would go, or why it would be ignored, so the
    /// caller validates only blocks that can matter, against the right
    /// parent. `producers` is the block's epoch's set (it weights the ticket).
    pub fn place(
        &self,
        header: &BlockHeader,
        producers: Option<&ValidatorSet>,
    ) -> Result<Placement, IgnoreReason> {
        self.place_summary(&BlockSummary::of(header, producers))
    }

    fn place_summary(&self, block: &BlockSummary) -> Result<Placement, IgnoreReason> {
        if self.canonical.iter().any(|b| b.hash == block.hash) {
            return Err(IgnoreReason::AlreadyCanonical(block.hash));
        }
        let mut from_parent = self
            .canonical
            .iter()
            .skip_while(|b| b.hash != block.prev_hash);
        let parent = from_parent.next().ok_or(IgnoreReason::UnknownParent {
            prev_hash: block.prev_hash,
        })?;
        let certified = self.certified.get(&block.height).copied();
        let conflicts = |certified: Hash| IgnoreReason::ConflictsWithCertified {
            hash: block.hash,
            height: block.height,
            certified,
        };
        let Some(rival) = from_parent.next() else {
            // The votes certifying a block can come before the block: its
            // rival must not take the height meanwhile, even on our tip.
            if let Some(c) = certified.filter(|c| *c != block.hash) {
                return Err(conflicts(c));
            }
            return Ok(Placement::ExtendsTip(parent.tip()));
        };
        if rival.height <= self.final_height {
            return Err(IgnoreReason::Certified {
                held: rival.hash,
                height: rival.height,
            });
        }
        match certified {
            Some(c) if c == block.hash => {
                return Ok(Placement::Replaces {
                    parent: parent.tip(),
                    rival: rival.hash,
                })
            }
            Some(c) => return Err(conflicts(c)),
            None => {}
        }
        if block.rank() >= rival.rank() {
            return Err(IgnoreReason::NotBetter { held: rival.hash });
        }
        Ok(Placement::Replaces {
            parent: parent.tip(),
            rival: rival.hash,
        })
    }

    /// Takes a block validated against the parent [`ForkChoice::place`]
    /// named, and says what to undo and apply. The caller must perform the
    /// actions in order; if it cannot, it rebuilds fork choice from its store.
    #[must_use]
    pub fn handle_block(&mut self, now: Timestamp, block: ValidBlock) -> Vec<ChainAction> {
        let summary = BlockSummary::of_valid(&block);
        self.remember_ticket(&summary, now);
        match self.place_summary(&summary) {
            Err(reason) => vec![ChainAction::Ignore(reason)],
            Ok(placement) => {
                let mut actions = Vec::new();
                if let Placement::Replaces { parent, .. } = placement {
                    while let Some(undone) = self.canonical.pop_back() {
                        if undone.hash == parent.hash {
                            self.canonical.push_back(undone);
                            break;
                        }
                        actions.push(ChainAction::Undo(undone.hash));
                    }
                }
                self.canonical.push_back(summary);
                if self.certified.get(&summary.height) == Some(&summary.hash) {
                    self.final_height = self.final_height.max(summary.height);
                }
                self.trim();
                actions.push(ChainAction::Apply(Box::new(block)));
                actions.push(ChainAction::Announce(summary.hash));
                actions
            }
        }
    }

    /// False if a ticket at least as good as `mine` is already held for
    /// `slot`: publishing would only lose (or repeat our own block).
    pub fn should_publish(&self, slot: u64, mine: &Ticket) -> bool {
        !matches!(self.best_by_slot.get(&slot), Some(best) if best <= mine)
    }

    /// Records `block`'s ticket as its slot's best if it is, keeping only
    /// the last [`TICKET_SLOTS`] slots, so memory stays bounded.
    fn remember_ticket(&mut self, block: &BlockSummary, now: Timestamp) {
        let now_slot = self.config.slot_clock.slot_at(now);
        let oldest = now_slot.saturating_sub(TICKET_SLOTS);
        if block.slot < oldest {
            return;
        }
        let best = self.best_by_slot.entry(block.slot).or_insert(block.ticket);
        if block.ticket < *best {
            *best = block.ticket;
        }
        self.best_by_slot = self.best_by_slot.split_off(&oldest);
        while self.best_by_slot.len() as u64 > TICKET_SLOTS.saturating_add(1) {
            self.best_by_slot.pop_first();
        }
    }
}
