//! Heartbeats in the block thread (DESIGN §7, liveness): a member of the
//! set that does not endorse blocks signs one heartbeat per epoch and
//! gossips it; every node keeps the verified heartbeats of the coming
//! epochs, and its blocks carry those no block on its chain carries yet.
//!
//! Bounded whatever peers send: only heartbeats of registered members, of
//! the next block's epoch and the one after, one per member and epoch.
//! Each distinct one is verified and relayed once; a forged one is its
//! sender's fault.

use super::BlockThread;
use crate::chain::Heartbeat;
use crate::consensus::NodeId;
use crate::masternode::MemberStatus;
use crate::net::Message;
use crate::time::{Clock, MonoTime, Now};
use crate::types::PublicKeyBytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// Slots our heartbeat may wait for a block of our chain to carry it
/// before it is sent again (a peer may have missed it).
const RESEND_SLOTS: u64 = 3;

/// The heartbeats of the next block's epoch and the one after.
#[derive(Default)]
pub(in crate::node) struct HeartbeatPool {
    held: BTreeMap<(u64, PublicKeyBytes), Held>,
    /// The oldest epoch held (see `advance`).
    from_epoch: u64,
    /// Our own: the epoch we last sent one for (or found we need none), and when.
    own_sent: Option<(u64, MonoTime)>,
}

struct Held {
    heartbeat: Heartbeat,
    /// A block on our chain carries it.
    carried: bool,
}

impl HeartbeatPool {
    /// Forgets the heartbeats of epochs before `epoch` (called every loop
    /// turn: free until the epoch moves on).
    pub(super) fn advance(&mut self, epoch: u64) {
        if epoch > self.from_epoch {
            self.from_epoch = epoch;
            self.held = self.held.split_off(&(epoch, PublicKeyBytes([0; 32])));
        }
    }

    pub(super) fn holds(&self, epoch: u64, validator: &PublicKeyBytes) -> bool {
        self.held.contains_key(&(epoch, *validator))
    }

    /// Whether exactly `heartbeat` is held: verified when it came in.
    pub(in crate::node) fn holds_verified(&self, heartbeat: &Heartbeat) -> bool {
        self.held
            .get(&(heartbeat.epoch, heartbeat.validator))
            .is_some_and(|held| held.heartbeat == *heartbeat)
    }

    /// Keeps a verified heartbeat (a second one of its member and epoch
    /// changes nothing).
    pub(super) fn insert(&mut self, heartbeat: Heartbeat) {
        self.held
            .entry((heartbeat.epoch, heartbeat.validator))
            .or_insert(Held {
                heartbeat,
                carried: false,
            });
    }

    /// The held heartbeats of `epoch` that no block on our chain carries,
    /// by validators `may_carry` admits, ascending by validator.
    pub(super) fn to_carry(
        &self,
        epoch: u64,
        mut may_carry: impl FnMut(&PublicKeyBytes) -> bool,
    ) -> Vec<Heartbeat> {
        let from = (epoch, PublicKeyBytes([0; 32]));
        self.held
            .range(from..)
            .take_while(|((e, _), _)| *e == epoch)
            .filter(|((_, id), held)| !held.carried && may_carry(id))
            .map(|(_, held)| held.heartbeat.clone())
            .collect()
    }

    /// Marks the held ones among `heartbeats` as carried by a block on our
    /// chain, or no longer (the block was undone).
    pub(super) fn set_carried(&mut self, heartbeats: &[Heartbeat], carried: bool) {
        for heartbeat in heartbeats {
            if let Some(held) = self.held.get_mut(&(heartbeat.epoch, heartbeat.validator)) {
                held.carried = carried;
            }
        }
    }

    /// Whether our heartbeat for `epoch` is due: none sent for it yet, or
    /// sent `gap` ago and carried by no block of our chain.
    fn own_due(&self, epoch: u64, me: &PublicKeyBytes, now: MonoTime, gap: Duration) -> bool {
        match self.own_sent {
            Some((sent_for, at)) if sent_for == epoch => {
                now.saturating_since(at) >= gap
                    && !self.held.get(&(epoch, *me)).is_some_and(|h| h.carried)
            }
            _ => true,
        }
    }
}

impl<C: Clock> BlockThread<C> {
    /// The epoch of the block that extends our tip: the heartbeats our
    /// next block may carry are of it.
    fn next_block_epoch(&self) -> u64 {
        let height = self.fork_choice.tip().height.saturating_add(1);
        self.settings.epoch_rules.epoch_of(height)
    }

    /// Sends our heartbeat for the next block's epoch when it is due, if
    /// this node is caught up, does not endorse (endorsements show the
    /// endorsers live) and is a registered member from that epoch on:
    /// seated, or dropped as inactive and signing to return.
    pub(super) fn send_heartbeat(&mut self, now: Now) {
        let epoch = self.next_block_epoch();
        self.heartbeats.advance(epoch);
        let Some(producer) = &self.producer else {
            return;
        };
        let me = producer.identity.public();
        let slot_ms = self.settings.slot_clock.block_interval_ms();
        let gap = Duration::from_millis(slot_ms.saturating_mul(RESEND_SLOTS));
        if self.validators.contains(&me)
            || self.catch_up.is_some()
            || self.sync.is_behind()
            || !self.heartbeats.own_due(epoch, &me, now.mono, gap)
        {
            return;
        }
        self.heartbeats.own_sent = Some((epoch, now.mono));
        let rules = &self.settings.epoch_rules;
        let member = self
            .registry
            .member(&me)
            .is_some_and(|m| m.status == MemberStatus::Registered && m.active_from(rules) <= epoch);
        if !member {
            return;
        }
        let chain = (self.settings.chain_id, self.settings.genesis.hash);
        let heartbeat = Heartbeat::sign(&producer.identity, chain, epoch);
        log::debug!("sending our heartbeat for epoch {epoch}");
        self.heartbeats.insert(heartbeat.clone());
        self.broadcast(Message::Heartbeat(Box::new(heartbeat)), None);
    }

    /// A peer's heartbeat: kept and relayed once if it is of a registered
    /// member, for the next block's epoch or the one after, and signed by
    /// that member.
    pub(super) fn on_heartbeat(&mut self, from: NodeId, heartbeat: Heartbeat) {
        let epoch = self.next_block_epoch();
        self.heartbeats.advance(epoch);
        let (of, validator) = (heartbeat.epoch, heartbeat.validator);
        if of < epoch || of > epoch.saturating_add(1) || self.heartbeats.holds(of, &validator) {
            return;
        }
        let registered = self
            .registry
            .member(&validator)
            .is_some_and(|m| m.status == MemberStatus::Registered);
        if !registered {
            // Perhaps registered in a block not final here yet.
            log::debug!("ignored a heartbeat of {validator:?}: not a registered member here");
            return;
        }
        let chain = (self.settings.chain_id, self.settings.genesis.hash);
        if let Err(e) = heartbeat.verify_signature(chain) {
            log::warn!("refused a heartbeat of {validator:?} from {from:?}: {e}");
            self.penalize(from, "invalid heartbeat");
            return;
        }
        self.heartbeats.insert(heartbeat.clone());
        self.broadcast(Message::Heartbeat(Box::new(heartbeat)), Some(from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::finality::ValidatorSet;
    use crate::types::{ChainId, Hash, Validator, VrfPublicBytes};

    const CHAIN: (ChainId, Hash) = (ChainId(1), Hash::ZERO);

    fn keys(n: usize) -> Vec<Keypair> {
        (0..n)
            .map(|i| Keypair::from_seed_label(&format!("pool {i}")))
            .collect()
    }

    fn set(keys: &[Keypair]) -> ValidatorSet {
        let validators = keys.iter().map(|k| Validator {
            id: k.public(),
            vrf_key: VrfPublicBytes([0; 32]),
            weight: 10,
        });
        ValidatorSet::new(validators.collect()).unwrap()
    }

    #[test]
    fn a_pool_offers_uncarried_heartbeats_of_one_epoch_by_members_in_order() {
        let keys = keys(4);
        let members = set(&keys[..3]);
        let members = |id: &PublicKeyBytes| members.contains(id);
        let mut pool = HeartbeatPool::default();
        for key in keys.iter().rev() {
            pool.insert(Heartbeat::sign(key, CHAIN, 5));
            pool.insert(Heartbeat::sign(key, CHAIN, 6));
        }
        let offered = pool.to_carry(5, members);
        // The fourth key is no member; the rest ascend by validator.
        assert_eq!(offered.len(), 3);
        assert!(offered.windows(2).all(|w| w[0].validator < w[1].validator));
        assert!(offered.iter().all(|h| h.epoch == 5));

        let first = offered[..1].to_vec();
        pool.set_carried(&first, true);
        assert_eq!(pool.to_carry(5, members).len(), 2);
        // Its block undone: offered again.
        pool.set_carried(&first, false);
        assert_eq!(pool.to_carry(5, members).len(), 3);

        // Held means verified only for the very same bytes.
        let held = Heartbeat::sign(&keys[0], CHAIN, 5);
        assert!(pool.holds_verified(&held));
        let forged = Heartbeat {
            sig: Heartbeat::sign(&keys[1], CHAIN, 5).sig,
            ..held
        };
        assert!(!pool.holds_verified(&forged));

        pool.advance(6);
        assert!(pool.to_carry(5, members).is_empty());
        assert!(!pool.holds(5, &keys[0].public()));
        assert!(pool.holds(6, &keys[0].public()));
    }

    #[test]
    fn our_heartbeat_is_due_once_an_epoch_and_again_only_while_uncarried() {
        let key = Keypair::from_seed_label("ours");
        let me = key.public();
        let gap = Duration::from_secs(3);
        let t0 = MonoTime::ZERO;
        let mut pool = HeartbeatPool::default();
        assert!(pool.own_due(2, &me, t0, gap));
        pool.own_sent = Some((2, t0));
        pool.insert(Heartbeat::sign(&key, CHAIN, 2));
        assert!(!pool.own_due(2, &me, t0.plus_ms(1_000), gap));
        assert!(pool.own_due(2, &me, t0.plus_ms(3_000), gap));
        pool.set_carried(&[Heartbeat::sign(&key, CHAIN, 2)], true);
        assert!(!pool.own_due(2, &me, t0.plus_ms(3_000), gap));
        // A new epoch: due at once.
        assert!(pool.own_due(3, &me, t0.plus_ms(1_000), gap));
    }
}
