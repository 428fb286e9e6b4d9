//! Block sync (DESIGN §6): which heights this node asks which peer for,
//! when a request has waited too long, and who is asked next.
//!
//! A sans-IO state machine over any peer id: peers' claimed tips, our tip
//! and `now` in; [`BlockRequest`]s out. It never decodes or judges a block
//! (the caller does, and reports what a response held), never reads a
//! clock, and never grows with what peers claim: one entry per connected
//! peer (at most [`MAX_SYNC_PEERS`]) and at most one request in flight per
//! peer.
//!
//! Requests cover consecutive ranges above our tip, spread over several
//! peers in turn; a peer that lets a request time out rests for one timeout
//! while its range goes to another peer. A peer whose answer stops short
//! of the height it claimed has its claim lowered to what it served, so a
//! peer announcing a height it does not have cannot hold sync forever.

use crate::time::MonoTime;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Most peers whose tips are tracked; more are ignored until one leaves.
pub const MAX_SYNC_PEERS: usize = 256;

/// Sync settings; units in the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// Blocks asked for in one `GetBlocks` (at most the wire's per-message limit).
    pub batch_blocks: u32,
    /// Requests in flight at once, each to a different peer.
    pub max_requests_in_flight: usize,
    /// How long a peer has to answer before its range goes to another.
    pub request_timeout_ms: u64,
    /// Least time between two requests to one peer, so a fast sync stays
    /// under the peer's rate limit for block requests.
    pub min_request_gap_ms: u64,
}

/// Ask `peer` for up to `max` canonical blocks from height `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRequest<P> {
    pub peer: P,
    pub from: u64,
    pub max: u32,
}

#[derive(Clone, Copy, Debug)]
struct PeerTip {
    /// The height the peer claims (lowered when it serves less).
    height: u64,
    /// Not asked again before this (request pacing, or rest after a timeout).
    resting_until: MonoTime,
    /// Its chain forks from ours below our tip: ask it from here once.
    rewind_from: Option<u64>,
}

/// A range of heights asked for: in flight while `asked` names the peer,
/// then answered and waiting to be applied (a response may arrive before
/// the ranges below it), until our tip passes it or its deadline does.
#[derive(Clone, Copy, Debug)]
struct Range<P> {
    from: u64,
    max: u32,
    asked: Option<P>,
    deadline: MonoTime,
}

impl<P> Range<P> {
    fn end(&self) -> u64 {
        self.from.saturating_add(u64::from(self.max))
    }
}

/// The sync state machine.
#[derive(Clone, Debug)]
pub struct BlockSync<P: Ord + Copy> {
    config: SyncConfig,
    tip_height: u64,
    peers: BTreeMap<P, PeerTip>,
    /// At most `max_requests_in_flight` in flight and as many answered.
    ranges: Vec<Range<P>>,
    /// The peer asked last: the next request goes to the one after it.
    last_asked: Option<P>,
    /// When a peer that was left out for pacing may be asked.
    paced_until: Option<MonoTime>,
    timeouts: u64,
}

impl<P: Ord + Copy> BlockSync<P> {
    pub fn new(config: SyncConfig, tip_height: u64) -> BlockSync<P> {
        BlockSync {
            config: SyncConfig {
                batch_blocks: config.batch_blocks.max(1),
                max_requests_in_flight: config.max_requests_in_flight.max(1),
                ..config
            },
            tip_height,
            peers: BTreeMap::new(),
            ranges: Vec::new(),
            last_asked: None,
            paced_until: None,
            timeouts: 0,
        }
    }

    /// The highest height any peer claims, or our tip if none claims more.
    pub fn target(&self) -> u64 {
        self.peers
            .values()
            .map(|p| p.height)
            .max()
            .unwrap_or(0)
            .max(self.tip_height)
    }

    /// Whether some peer claims a chain longer than ours.
    pub fn is_behind(&self) -> bool {
        self.target() > self.tip_height
    }

    /// The peers whose tips are tracked.
    pub fn peers(&self) -> impl Iterator<Item = P> + '_ {
        self.peers.keys().copied()
    }

    /// Requests that timed out so far.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// A peer's claimed tip (from its handshake or an announcement); claims
    /// only grow here, [`Self::on_response`] lowers them.
    pub fn on_peer_height(&mut self, peer: P, height: u64) {
        if let Some(known) = self.peers.get_mut(&peer) {
            known.height = known.height.max(height);
        } else if self.peers.len() < MAX_SYNC_PEERS {
            self.peers.insert(
                peer,
                PeerTip {
                    height,
                    resting_until: MonoTime::ZERO,
                    rewind_from: None,
                },
            );
        }
    }

    /// The peer disconnected: forget it; its range goes to another.
    pub fn on_peer_gone(&mut self, peer: P) {
        self.peers.remove(&peer);
        self.ranges.retain(|r| r.asked != Some(peer));
    }

    /// Our tip moved (applied, undone or replaced blocks): answered ranges
    /// it passed are done.
    pub fn on_tip(&mut self, height: u64) {
        self.tip_height = height;
        self.ranges
            .retain(|r| r.asked.is_some() || r.end() > height.saturating_add(1));
    }

    /// `peer`'s chain forks from ours at or above `from`: its next request
    /// starts there, so the rivals and their successors come together.
    pub fn on_fork(&mut self, peer: P, from: u64) {
        if let Some(known) = self.peers.get_mut(&peer) {
            known.rewind_from = Some(from.max(1));
        }
    }

    /// `peer` sent blocks: `first_height` of the first (`None` if empty)
    /// and `count` of them. Returns true if that answered its request; a
    /// short answer lowers its claimed height to what it served. The
    /// answered heights are not asked again for one timeout, the time the
    /// caller has to apply them.
    pub fn on_response(
        &mut self,
        now: MonoTime,
        peer: P,
        first_height: Option<u64>,
        count: usize,
    ) -> bool {
        let Some(index) = self.ranges.iter().position(|r| r.asked == Some(peer)) else {
            return false;
        };
        let Some(range) = self.ranges.get_mut(index) else {
            return false;
        };
        if first_height.is_some_and(|h| h != range.from) {
            return false; // a block pushed to us, not the answer
        }
        let served = u32::try_from(count).unwrap_or(u32::MAX).min(range.max);
        let short = served < range.max;
        let last_served = range
            .from
            .saturating_add(u64::from(served))
            .saturating_sub(1);
        range.max = served;
        range.asked = None;
        range.deadline = now.plus_ms(self.config.request_timeout_ms);
        if served == 0 {
            self.ranges.remove(index);
        }
        if short {
            if let Some(known) = self.peers.get_mut(&peer) {
                known.height = known.height.min(last_served);
            }
        }
        true
    }

    /// The earliest deadline of a range in flight or waiting, or of a
    /// request held back by pacing.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        self.ranges
            .iter()
            .map(|r| r.deadline)
            .chain(self.paced_until)
            .min()
    }

    /// Drops ranges past their deadline, so they are asked again; a peer
    /// that did not answer in time rests one timeout and loses its claim
    /// (its next announcement restores it), so a peer that claims a long
    /// chain and never serves it cannot keep this node "behind".
    pub fn handle_timeout(&mut self, now: MonoTime) {
        let rest_until = now.plus_ms(self.config.request_timeout_ms);
        let mut slow = Vec::new();
        self.ranges.retain(|r| {
            let expired = r.deadline <= now;
            if let (true, Some(peer)) = (expired, r.asked) {
                slow.push(peer);
            }
            !expired
        });
        for peer in slow {
            self.timeouts += 1;
            if let Some(known) = self.peers.get_mut(&peer) {
                known.resting_until = rest_until;
                known.height = known.height.min(self.tip_height);
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.ranges.iter().filter(|r| r.asked.is_some()).count()
    }

    fn is_asked(&self, peer: &P) -> bool {
        self.ranges.iter().any(|r| r.asked.as_ref() == Some(peer))
    }

    /// The requests to send now: rewinds first, then the lowest missing
    /// ranges above our tip, each to the next idle peer that claims it.
    #[must_use]
    pub fn poll_requests(&mut self, now: MonoTime) -> Vec<BlockRequest<P>> {
        let mut out = Vec::new();
        self.paced_until = None;
        let rewinds: Vec<(P, u64)> = self
            .peers
            .iter()
            .filter_map(|(p, t)| t.rewind_from.map(|from| (*p, from)))
            .collect();
        for (peer, from) in rewinds {
            if self.in_flight() >= self.config.max_requests_in_flight {
                break;
            }
            if !self.is_asked(&peer) {
                if let Some(known) = self.peers.get_mut(&peer) {
                    known.rewind_from = None;
                }
                out.push(self.ask(peer, from, self.config.batch_blocks, now));
            }
        }
        let target = self.target();
        let mut next = self.tip_height.saturating_add(1);
        while next <= target && self.in_flight() < self.config.max_requests_in_flight {
            if let Some(covering) = self
                .ranges
                .iter()
                .filter(|r| r.from <= next && next < r.end())
                .map(Range::end)
                .max()
            {
                next = covering;
                continue;
            }
            let next_taken = self
                .ranges
                .iter()
                .map(|r| r.from)
                .filter(|&from| from > next)
                .min()
                .unwrap_or(u64::MAX);
            let room = next_taken
                .min(target.saturating_add(1))
                .saturating_sub(next);
            let max = u32::try_from(room)
                .unwrap_or(u32::MAX)
                .min(self.config.batch_blocks);
            let Some(peer) = self.next_idle_peer(next, now) else {
                self.paced_until = self.earliest_paced(next, now);
                break;
            };
            out.push(self.ask(peer, next, max, now));
            next = next.saturating_add(u64::from(max));
        }
        out
    }

    /// When the first peer that claims `height` and is only held back by
    /// pacing may be asked.
    fn earliest_paced(&self, height: u64, now: MonoTime) -> Option<MonoTime> {
        self.peers
            .iter()
            .filter(|(peer, tip)| {
                tip.height >= height && tip.resting_until > now && !self.is_asked(peer)
            })
            .map(|(_, tip)| tip.resting_until)
            .min()
    }

    fn ask(&mut self, peer: P, from: u64, max: u32, now: MonoTime) -> BlockRequest<P> {
        self.ranges.push(Range {
            from,
            max,
            asked: Some(peer),
            deadline: now.plus_ms(self.config.request_timeout_ms),
        });
        self.last_asked = Some(peer);
        let gap = self.config.min_request_gap_ms;
        if let Some(known) = self.peers.get_mut(&peer) {
            known.resting_until = known.resting_until.max(now.plus_ms(gap));
        }
        BlockRequest { peer, from, max }
    }

    /// The first peer after the one asked last (wrapping) that claims
    /// `height`, is not resting and has no request in flight.
    fn next_idle_peer(&self, height: u64, now: MonoTime) -> Option<P> {
        let usable = |(peer, tip): (&P, &PeerTip)| {
            (tip.height >= height && tip.resting_until <= now && !self.is_asked(peer))
                .then_some(*peer)
        };
        let after = match self.last_asked {
            Some(last) => self.peers.range((Bound::Excluded(last), Bound::Unbounded)),
            None => self.peers.range(..),
        };
        after
            .filter_map(usable)
            .next()
            .or_else(|| self.peers.iter().filter_map(usable).next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SyncConfig {
        SyncConfig {
            batch_blocks: 10,
            max_requests_in_flight: 3,
            request_timeout_ms: 1_000,
            min_request_gap_ms: 0,
        }
    }

    fn at(ms: u64) -> MonoTime {
        MonoTime(ms)
    }

    #[test]
    fn a_node_level_with_its_peers_asks_nothing() {
        let mut sync = BlockSync::new(config(), 5);
        sync.on_peer_height(1u8, 5);
        sync.on_peer_height(2u8, 3);
        assert!(!sync.is_behind());
        assert_eq!(sync.poll_requests(at(0)), vec![]);
        assert_eq!(sync.poll_timeout(), None);
    }

    #[test]
    fn consecutive_ranges_go_to_different_peers_in_turn() {
        let mut sync = BlockSync::new(config(), 0);
        for peer in 1u8..=4 {
            sync.on_peer_height(peer, 100);
        }
        let asked = sync.poll_requests(at(0));
        assert_eq!(
            asked,
            vec![
                BlockRequest {
                    peer: 1,
                    from: 1,
                    max: 10
                },
                BlockRequest {
                    peer: 2,
                    from: 11,
                    max: 10
                },
                BlockRequest {
                    peer: 3,
                    from: 21,
                    max: 10
                },
            ]
        );
        // Peer 2 answers in full: the next range goes on from the highest asked.
        assert!(sync.on_response(at(1), 2, Some(11), 10));
        assert_eq!(
            sync.poll_requests(at(1)),
            vec![BlockRequest {
                peer: 4,
                from: 31,
                max: 10
            }]
        );
    }

    #[test]
    fn the_last_range_stops_at_the_target() {
        let mut sync = BlockSync::new(config(), 10);
        sync.on_peer_height(7u8, 14);
        assert_eq!(sync.target(), 14);
        assert_eq!(
            sync.poll_requests(at(0)),
            vec![BlockRequest {
                peer: 7,
                from: 11,
                max: 4
            }]
        );
    }

    #[test]
    fn a_timed_out_range_goes_to_another_peer_while_the_slow_one_rests() {
        let mut sync = BlockSync::new(config(), 0);
        sync.on_peer_height(1u8, 5);
        sync.on_peer_height(2u8, 5);
        assert_eq!(
            sync.poll_requests(at(0)),
            vec![BlockRequest {
                peer: 1,
                from: 1,
                max: 5
            }]
        );
        assert_eq!(sync.poll_timeout(), Some(at(1_000)));
        sync.handle_timeout(at(999));
        assert_eq!(sync.poll_requests(at(999)), vec![]);
        sync.handle_timeout(at(1_000));
        assert_eq!(sync.timeouts(), 1);
        assert_eq!(
            sync.poll_requests(at(1_000)),
            vec![BlockRequest {
                peer: 2,
                from: 1,
                max: 5
            }]
        );
        // Peer 2 is gone too; peer 1 rested and announces again: asked again.
        sync.on_peer_gone(2);
        assert!(!sync.is_behind(), "a peer that timed out keeps no claim");
        sync.on_peer_height(1, 5);
        assert_eq!(
            sync.poll_requests(at(2_000)),
            vec![BlockRequest {
                peer: 1,
                from: 1,
                max: 5
            }]
        );
    }

    #[test]
    fn a_peer_serving_less_than_it_claimed_is_believed_no_more() {
        let mut sync = BlockSync::new(config(), 0);
        sync.on_peer_height(1u8, 1_000_000);
        let asked = sync.poll_requests(at(0));
        assert_eq!(
            asked,
            vec![BlockRequest {
                peer: 1,
                from: 1,
                max: 10
            }]
        );
        assert!(sync.on_response(at(1), 1, None, 0));
        assert_eq!(sync.target(), 0);
        assert!(!sync.is_behind());
        assert_eq!(sync.poll_requests(at(1)), vec![]);
    }

    #[test]
    fn a_pushed_block_is_not_taken_for_the_answer() {
        let mut sync = BlockSync::new(config(), 0);
        sync.on_peer_height(1u8, 30);
        let _ = sync.poll_requests(at(0));
        assert!(!sync.on_response(at(1), 1, Some(31), 1));
        assert!(sync.on_response(at(1), 1, Some(1), 10));
        assert!(!sync.on_response(at(1), 1, Some(1), 10));
    }

    #[test]
    fn a_forked_peer_is_asked_from_below_our_tip_once() {
        let mut sync = BlockSync::new(config(), 20);
        sync.on_peer_height(1u8, 21);
        sync.on_fork(1, 18);
        assert_eq!(
            sync.poll_requests(at(0)),
            vec![BlockRequest {
                peer: 1,
                from: 18,
                max: 10
            }]
        );
        // It served up to 21 and claims no more: nothing left to ask.
        assert!(sync.on_response(at(1), 1, Some(18), 4));
        assert_eq!(sync.target(), 21);
        assert_eq!(sync.poll_requests(at(1)), vec![]);
    }

    #[test]
    fn answered_heights_wait_to_be_applied_then_are_asked_again() {
        let mut sync = BlockSync::new(config(), 0);
        sync.on_peer_height(1u8, 20);
        sync.on_peer_height(2u8, 20);
        let _ = sync.poll_requests(at(0));
        // The upper range comes first and waits for the lower one.
        assert!(sync.on_response(at(10), 2, Some(11), 10));
        assert_eq!(sync.poll_requests(at(10)), vec![]);
        assert!(sync.on_response(at(20), 1, Some(1), 10));
        sync.on_tip(15);
        // Heights 16..=20 were answered but never applied (e.g. refused).
        sync.handle_timeout(at(1_010));
        assert_eq!(sync.timeouts(), 0, "an answered range is no peer's fault");
        assert_eq!(
            sync.poll_requests(at(1_010)),
            vec![BlockRequest {
                peer: 1,
                from: 16,
                max: 5
            }]
        );
    }

    #[test]
    fn one_peer_is_asked_no_faster_than_the_request_gap() {
        let mut sync = BlockSync::new(
            SyncConfig {
                min_request_gap_ms: 50,
                ..config()
            },
            0,
        );
        sync.on_peer_height(1u8, 100);
        assert_eq!(sync.poll_requests(at(0)).len(), 1);
        assert!(sync.on_response(at(10), 1, Some(1), 10));
        sync.on_tip(10);
        assert_eq!(sync.poll_requests(at(10)), vec![]);
        assert_eq!(sync.poll_timeout(), Some(at(50)));
        assert_eq!(
            sync.poll_requests(at(50)),
            vec![BlockRequest {
                peer: 1,
                from: 11,
                max: 10
            }]
        );
    }

    #[test]
    fn peers_tracked_are_bounded() {
        let mut sync = BlockSync::new(config(), 0);
        for peer in 0..(MAX_SYNC_PEERS as u32 + 10) {
            sync.on_peer_height(peer, 1);
        }
        assert_eq!(sync.peers.len(), MAX_SYNC_PEERS);
    }
}
