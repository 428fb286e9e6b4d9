//! The block thread (DESIGN §1 "ledger/block", §6): it builds checkpoint
//! blocks from finalized transactions, validates the blocks peers send,
//! chooses among competing candidates, persists the chosen chain in LMDB
//! and syncs missing blocks from peers.
//!
//! A thin driver around pure parts: it owns the [`ForkChoice`] and the
//! [`BlockSync`] state machines, feeds them `now` from the node's clock,
//! validates against a [`StoreChainView`] snapshot, and performs what they
//! decide: one `apply_block`/`undo_tip` write transaction per block,
//! `GetBlocks`/`Blocks`/`BlockAnnounce` through the net thread. It waits in
//! one `select!` on the net thread's block outbox, its stop channel and the
//! next deadline (slot start, own publish time, sync timeout).
//!
//! It never decides finality: a block only archives transactions whose
//! proofs it verified, and a proof learned from a block is committed as
//! finalized only because the proof is valid. It never holds a read
//! snapshot across its own writes, and it stops only between two writes.
//! A peer is scored for a block only when the block is provably wrong
//! (`BlockRejection::is_peer_fault`); disagreeing about the chain (an
//! unknown parent, a rival branch, a parent it cannot send) is never a
//! fault, or one fork would make honest validators ban each other.
//!
//! After it starts, and after it wakes from a pause (a stopped process, a
//! suspended host), the node produces nothing until it has heard its
//! peers' tips ([`CatchUp`]): a block built on a stale tip is a fork.

mod certify;
mod epochs;
pub(super) mod heartbeats;
mod slashing;
mod undone;

pub use epochs::epoch_committees;

use super::chain_view::{
    block_commit, carried_certified, spending_order, stored_proof, StoreChainView,
};
use super::channels::NodeEvent;
use crate::chain::{
    build_block, check_signatures, publish_delay_ms, validate_block_with, Block, BlockRejection,
    BlockRequest, BlockSummary, BlockSync, BlockTemplate, Certificate, ChainAction, ChainTip,
    ChainView, ChainViewError, Endorsements, ForkChoice, ForkChoiceConfig, ForkChoiceError,
    IgnoreReason, Payouts, Placement, SlotClock, SlotClockError, Standing, SyncConfig, Ticket,
    ValidBlock, MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES,
};
use crate::config::ChainSpec;
use crate::consensus::{NodeId, VerifiedVotes};
use crate::crypto::vrf::{SortitionInput, SortitionScore};
use crate::crypto::{Keypair, VrfKeypair};
use crate::finality::{verify_proof_with, ValidatorSet};
use crate::genesis::validator_vrf_key;
use crate::masternode::{CommitteeBook, CommitteeRules, EpochRules, Registry};
use crate::metrics::Metrics;
use crate::net::message::TAG_BYTES;
use crate::net::peer::INVALID_BLOCK_PENALTY;
use crate::net::{Message, MessageLimits, NetClient, NetCommand, NetEvent, RateLimits};
use crate::rpc::archive::EpochCommitteeError;
use crate::rpc::notify::Waiters;
use crate::store::{FinalizedTx, LedgerBatch, ReadView, Store, StoreError};
use crate::time::{Clock, MonoTime, Now, Timestamp};
use crate::types::encoding::{encode, DecodeError};
use crate::types::{ChainId, Hash};
use crossbeam_channel::{never, select, Receiver, Sender, TryRecvError};
use heartbeats::HeartbeatPool;
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use undone::UndoneBlocks;

/// Sync requests in flight at once, each to a different peer.
pub const SYNC_REQUESTS_IN_FLIGHT: usize = 4;
/// How long a peer has to answer a `GetBlocks` before another is asked.
pub const SYNC_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// A peer's block requests are limited to `RateLimits::block` (over it
/// they are dropped and a non-validator is scored): ask each peer a fifth
/// less often than that.
fn sync_request_gap_ms() -> u64 {
    let per_sec = u64::from(RateLimits::default().block.per_sec.max(1));
    1000 * 5 / (per_sec * 4)
}
/// A gap this long between two turns of the thread's loop (which turns at
/// least every [`MAX_SLEEP_MS`]) means the process was paused: catch up
/// before producing again.
const WAKE_GAP_MS: u64 = 3 * MAX_SLEEP_MS;
/// How long catching up waits for peers' answers before it settles for
/// those that came (a paused peer must not stop production for good).
const CATCH_UP_TIMEOUT_MS: u64 = SYNC_REQUEST_TIMEOUT_MS;
/// Least time between two fork probes of one peer (prompted by its
/// announcements or by its blocks on an unknown parent), so a peer whose
/// chain lost to ours costs a few requests a minute, not a request loop.
const FORK_PROBE_GAP_MS: u64 = 10_000;
/// A block of a slot at most this many slots old is live: relayed to
/// peers, and its proofs sent to consensus to clean its mempool. Older
/// ones come from sync: old news to the peers they came from.
const LIVE_SLOTS: u64 = 3;
/// Blocks remembered as on a branch that lost to ours, so their
/// descendants are dropped quietly instead of prompting fork probes.
const LOST_BLOCKS_KEPT: usize = 1_024;
/// Verified block votes remembered: a few blocks' worth at design load.
const VERIFIED_VOTES_KEPT: usize = 16_384;
/// Bytes of out-of-order blocks kept while the blocks below them arrive.
pub const MAX_WAITING_BYTES: usize = 64 * 1024 * 1024;
/// Room left in a frame for the `Blocks` wrapper of one block (tag,
/// list length, byte-string length) with a margin.
const BLOCKS_FRAME_OVERHEAD: usize = TAG_BYTES + 1024;
/// How often sync progress is logged.
const PROGRESS_EVERY_MS: u64 = 1_000;
/// The longest the thread sleeps without a deadline (to notice a stuck clock).
const MAX_SLEEP_MS: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum BlockThreadError {
    #[error("chain state: {0}")]
    Store(#[from] StoreError),
    #[error("block settings: {0}")]
    SlotClock(#[from] SlotClockError),
    #[error("fork choice cannot start from the stored chain: {0}")]
    ForkChoice(#[from] ForkChoiceError),
    #[error(
        "stored block {hash} at height {height} cannot be decoded ({source}); the datadir is \
         damaged: restore it or resync into an empty one"
    )]
    CorruptBlock {
        height: u64,
        hash: Hash,
        source: DecodeError,
    },
    #[error(
        "the heights table has no block at height {height} below the tip; the datadir is damaged"
    )]
    MissingHeight { height: u64 },
    #[error("masternode registry: {0}")]
    Registry(String),
    #[error(transparent)]
    ChainView(#[from] ChainViewError),
    #[error(transparent)]
    Committee(#[from] EpochCommitteeError),
    #[error(
        "the store holds no validator set for epoch {epoch}, which its final chain is in; the \
         datadir is damaged: restore it or resync into an empty one"
    )]
    MissingEpochSet { epoch: u64 },
}

/// Block timing and limits, from the chain config and the wire limits.
#[derive(Clone, Copy, Debug)]
pub struct BlockSettings {
    pub chain_id: ChainId,
    pub genesis: BlockSummary,
    pub slot_clock: SlotClock,
    pub fork_choice: ForkChoiceConfig,
    pub publish_step_ms: u64,
    pub all_producers_publish: bool,
    pub reward_maturity_blocks: u64,
    pub limits: MessageLimits,
    pub epoch_rules: EpochRules,
    pub sync: SyncConfig,
    /// Seats of the finality committee whose votes proofs carry.
    pub committee_seats: u32,
}

impl BlockSettings {
    /// How epochs' finality committees are drawn on this chain.
    pub fn committee_rules(&self) -> CommitteeRules {
        CommitteeRules {
            genesis_hash: self.genesis.hash,
            seats: self.committee_seats,
            epochs: self.epoch_rules,
        }
    }

    pub fn from_spec(
        spec: &ChainSpec,
        limits: MessageLimits,
    ) -> Result<BlockSettings, BlockThreadError> {
        let ledger = &spec.config.ledger;
        let blocks = &spec.config.blocks;
        let slot_clock = SlotClock::new(
            ledger.block_interval_secs.saturating_mul(1000),
            blocks.max_clock_skew_ms,
        )?;
        let reward_maturity_blocks = u64::from(ledger.reward_maturity_blocks);
        let fork_choice = ForkChoiceConfig::new(slot_clock, blocks.max_uncertified_blocks)?;
        // The store gives the genesis this slot (`Store::open`).
        let genesis_slot = spec.config.genesis.timestamp / ledger.block_interval_secs.max(1);
        Ok(BlockSettings {
            chain_id: spec.chain_id(),
            genesis: BlockSummary::genesis(spec.genesis_hash(), genesis_slot),
            slot_clock,
            fork_choice,
            publish_step_ms: blocks.publish_step_ms,
            all_producers_publish: blocks.all_producers_publish,
            reward_maturity_blocks,
            limits,
            epoch_rules: spec.epoch_rules,
            committee_seats: spec.config.consensus.finality_committee_seats,
            sync: SyncConfig {
                batch_blocks: u32::try_from(limits.max_blocks_per_message).unwrap_or(u32::MAX),
                max_requests_in_flight: SYNC_REQUESTS_IN_FLIGHT,
                request_timeout_ms: SYNC_REQUEST_TIMEOUT_MS,
                min_request_gap_ms: sync_request_gap_ms(),
            },
        })
    }

    /// The largest block we build or serve: one must fit a `Blocks` frame.
    fn max_block_bytes(&self) -> usize {
        self.limits
            .max_frame_bytes
            .saturating_sub(BLOCKS_FRAME_OVERHEAD)
            .min(MAX_BLOCK_BYTES)
    }
}

/// A masternode's keys for producing and endorsing blocks: it does so in
/// the epochs whose sets hold it.
pub struct Producer {
    identity: Keypair,
    vrf: VrfKeypair,
}

impl Producer {
    /// The keys of `identity` (its VRF key derived from it); a genesis
    /// member registered with another VRF key is told in the log that it
    /// cannot produce.
    pub fn new(identity: &Keypair, genesis: &ValidatorSet) -> Producer {
        let producer = Producer {
            identity: identity.clone(),
            vrf: validator_vrf_key(identity),
        };
        let registered = genesis
            .index_of(&identity.public())
            .and_then(|i| genesis.validators().get(i));
        if let Some(registered) = registered.filter(|_| !producer.registered_in(genesis)) {
            log::warn!(
                "our VRF key {:?} is not the one the genesis registers for our identity ({:?}): \
                 this node validates blocks but cannot produce any",
                producer.vrf.public(),
                registered.vrf_key
            );
        }
        producer
    }

    /// Whether `producers` hold our identity with our VRF key.
    fn registered_in(&self, producers: &ValidatorSet) -> bool {
        producers
            .index_of(&self.identity.public())
            .and_then(|i| producers.validators().get(i))
            .is_some_and(|v| v.vrf_key == self.vrf.public())
    }
}

/// The block thread's links to the rest of the node.
pub struct BlockChannels {
    /// The net thread's block outbox (`never()` without a network).
    pub net_events: Receiver<NetEvent>,
    /// The consensus inbox, for proofs learned from blocks.
    pub consensus: Sender<NodeEvent>,
    /// Dropped by the node to stop the thread.
    pub stop: Receiver<()>,
    /// Where it counts its LMDB writes.
    pub metrics: Arc<Metrics>,
    /// Parked RPC calls woken when the tip moves or txs are learned.
    pub waiters: Arc<Waiters>,
}

/// Our candidate for a slot, drawn at the slot's start.
#[derive(Clone, Copy, Debug)]
struct PlannedBlock {
    slot: u64,
    /// The tip when the ticket was drawn: the block to extend.
    parent: BlockSummary,
    ticket: Ticket,
    publish_at: Timestamp,
}

/// Blocks above `tip + 1` that arrived before the blocks below them.
#[derive(Default)]
struct WaitingBlocks {
    blocks: BTreeMap<(u64, Hash), (NodeId, Block)>,
    bytes: usize,
}

impl WaitingBlocks {
    /// Keeps `block` unless the buffer is full of lower heights; evicts the
    /// highest ones to make room.
    fn insert(&mut self, from: NodeId, block: Block, max_count: usize) {
        let len = block.encoded_len();
        self.blocks
            .insert((block.header.height, block.hash()), (from, block));
        self.bytes = self.bytes.saturating_add(len);
        while self.blocks.len() > max_count || self.bytes > MAX_WAITING_BYTES {
            match self.blocks.pop_last() {
                Some((_, (_, evicted))) => {
                    self.bytes = self.bytes.saturating_sub(evicted.encoded_len())
                }
                None => break,
            }
        }
    }

    /// The lowest waiting block at or below `height`.
    fn take_up_to(&mut self, height: u64) -> Option<(NodeId, Block)> {
        let key = *self.blocks.keys().next().filter(|(h, _)| *h <= height)?;
        let (from, block) = self.blocks.remove(&key)?;
        self.bytes = self.bytes.saturating_sub(block.encoded_len());
        Some((from, block))
    }
}

/// Hashes of blocks on branches that lost to ours, the oldest forgotten first.
#[derive(Default)]
struct LostBlocks {
    order: VecDeque<Hash>,
    hashes: HashSet<Hash>,
}

impl LostBlocks {
    fn insert(&mut self, hash: Hash) {
        if self.hashes.insert(hash) {
            self.order.push_back(hash);
        }
        while self.order.len() > LOST_BLOCKS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.hashes.remove(&old);
            }
        }
    }

    fn contains(&self, hash: &Hash) -> bool {
        self.hashes.contains(hash)
    }
}

/// Sync progress, logged while the node is behind.
#[derive(Clone, Copy, Debug)]
struct SyncProgress {
    started_at: MonoTime,
    start_height: u64,
    last_logged: MonoTime,
}

pub struct BlockThread<C: Clock> {
    settings: BlockSettings,
    store: Arc<Store>,
    /// The genesis set: the endorsers of every epoch's blocks (see
    /// `ChainView::endorsers_for_epoch`).
    validators: ValidatorSet,
    /// Recent epochs' sets, as the final chain decided them (§7): a
    /// block's producers and reward shares are its epoch's set, the
    /// signers of its proofs its epoch's committee.
    committees: CommitteeBook,
    /// The epoch the consensus thread was last told of (see `epochs`).
    epoch_published: u64,
    /// The epoch whose validators the net layer was last given (`None`:
    /// not yet since the start).
    net_epoch_published: Option<u64>,
    producer: Option<Producer>,
    fork_choice: ForkChoice,
    sync: BlockSync<NodeId>,
    net: Option<NetClient>,
    channels: BlockChannels,
    clock: C,
    plan: Option<PlannedBlock>,
    last_planned_slot: u64,
    waiting: WaitingBlocks,
    progress: Option<SyncProgress>,
    /// Votes already verified in blocks: a vote repeats in the proof of
    /// every txid it covers, and in rival and synced blocks.
    verified_votes: VerifiedVotes,
    /// `Some` while production waits for peers' tips (after start or a pause).
    catch_up: Option<CatchUp>,
    /// When each connected peer was last probed for a fork it announced.
    fork_probes: BTreeMap<NodeId, MonoTime>,
    /// Recent blocks of branches that lost to ours (see [`LOST_BLOCKS_KEPT`]).
    lost: LostBlocks,
    /// Blocks this node undid, should a certificate name one (see `undone`).
    undone: UndoneBlocks,
    /// When the loop last turned, to notice a pause.
    last_turn: MonoTime,
    /// Endorsements of recent heights (see `certify`).
    endorsements: Endorsements,
    /// The tip this node last endorsed (or declined to), so each tip
    /// costs one guard write at most.
    endorsed_tip: Option<Hash>,
    /// Who may vote in which epoch, as the final blocks decide (see `epochs`).
    registry: Registry,
    /// Members' heartbeats our blocks may carry, and when we sent ours.
    heartbeats: HeartbeatPool,
}

impl<C: Clock> BlockThread<C> {
    /// Loads the tip and the canonical blocks above the last certified one
    /// from the store (no replay: headers only, at most
    /// `max_uncertified_blocks` of them).
    pub fn new(
        settings: BlockSettings,
        store: Arc<Store>,
        validators: ValidatorSet,
        producer: Option<Producer>,
        net: Option<NetClient>,
        channels: BlockChannels,
        clock: C,
    ) -> Result<BlockThread<C>, BlockThreadError> {
        let (committees, epoch_published) =
            epochs::load_committees(&store, &settings.committee_rules(), &validators)?;
        let fork_choice = load_fork_choice(&store, &settings, &committees)?;
        let tip = fork_choice.tip();
        log::info!(
            "chain tip: height {} slot {} block {}",
            tip.height,
            tip.slot,
            tip.hash
        );
        let now = clock.read();
        let last_planned_slot = settings.slot_clock.slot_at(now.wall);
        let catch_up = hears_peers(&net, &validators).then(|| CatchUp::new(now.mono, "starting"));
        let registry =
            epochs::load_registry(&store, settings.epoch_rules, validators.validators())?;
        let thread = BlockThread {
            sync: BlockSync::new(settings.sync, tip.height),
            settings,
            store,
            validators,
            committees,
            epoch_published,
            net_epoch_published: None,
            producer,
            fork_choice,
            net,
            channels,
            clock,
            plan: None,
            last_planned_slot,
            waiting: WaitingBlocks::default(),
            progress: None,
            verified_votes: VerifiedVotes::new(VERIFIED_VOTES_KEPT),
            catch_up,
            fork_probes: BTreeMap::new(),
            lost: LostBlocks::default(),
            undone: UndoneBlocks::default(),
            last_turn: now.mono,
            endorsements: Endorsements::new(certify::VOTE_WINDOW_HEIGHTS, tip.height),
            endorsed_tip: None,
            registry,
            heartbeats: HeartbeatPool::default(),
        };
        thread.publish_set();
        Ok(thread)
    }

    /// The producers of a block on `parent` (at `parent_height`): the
    /// decided set of its `producing_epoch`, by the certificates the
    /// parent's branch carries; `None` if the parent is not stored or the
    /// set is not decided here.
    fn producers_on(&self, parent: Hash, parent_height: u64) -> Option<&ValidatorSet> {
        let read = self.store.read().ok()?;
        let certified = carried_certified(&read, parent, parent_height).ok()?;
        let height = parent_height.saturating_add(1);
        self.committees
            .producers_at(&self.settings.epoch_rules, height, certified)
    }

    /// Whether each of `blocks` (a batch, each on the one before it or on
    /// a stored block) has a valid ticket and signature of one of its
    /// producers. The certified prefix is carried along the batch, so a
    /// block whose parent is earlier in it needs no stored parent.
    fn made_by_producers(&self, read: &ReadView<'_>, blocks: &[Block]) -> Vec<bool> {
        let rules = &self.settings.epoch_rules;
        let mut certified_of: HashMap<Hash, u64> = HashMap::new();
        blocks
            .iter()
            .map(|b| {
                let h = &b.header;
                let parent_height = h.height.saturating_sub(1);
                let certified = certified_of
                    .get(&h.prev_hash)
                    .copied()
                    .or_else(|| carried_certified(read, h.prev_hash, parent_height).ok());
                let Some(certified) = certified else {
                    return false;
                };
                let carries = b.parent_certificate.is_some();
                certified_of.insert(b.hash(), if carries { parent_height } else { certified });
                let producers = self.committees.producers_at(rules, h.height, certified);
                producers.is_some_and(|set| check_signatures(b, set).is_ok())
            })
            .collect()
    }

    /// Runs until the stop channel closes; a store failure ends the thread
    /// (and the node) with the error.
    pub fn run(mut self) -> Result<(), BlockThreadError> {
        let mut net_events = self.channels.net_events.clone();
        loop {
            let now = self.clock.read();
            self.notice_pause(now);
            self.on_time(now)?;
            self.advance_registry()?;
            let syncing = self.catch_up.is_some() || self.sync.is_behind();
            self.channels
                .metrics
                .block_syncing
                .store(u64::from(syncing), Relaxed);
            let wait = self.next_wait(now);
            let stop = &self.channels.stop;
            let mut batch = Vec::new();
            select! {
                recv(stop) -> _ => return Ok(()),
                recv(net_events) -> event => match event {
                    Ok(event) => batch.push(event),
                    // The net thread stopped (shutdown under way).
                    Err(_) => net_events = never(),
                },
                default(wait) => {}
            }
            let ready = net_events.len();
            batch.extend(net_events.try_iter().take(ready));
            for event in batch {
                // A long sync batch still stops promptly, between two writes.
                if let Err(TryRecvError::Disconnected) = self.channels.stop.try_recv() {
                    return Ok(());
                }
                let now = self.clock.read();
                self.on_net_event(now, event)?;
            }
        }
    }

    /// How long until the earliest of: the next slot start, our publish
    /// time (both by the wall clock), a sync deadline (monotonic).
    fn next_wait(&self, now: Now) -> Duration {
        let clock = self.settings.slot_clock;
        let next_slot = Timestamp(clock.slot_end_ms(clock.slot_at(now.wall)));
        let by_wall = [Some(next_slot), self.plan.map(|p| p.publish_at)]
            .into_iter()
            .flatten()
            .map(|at| at.saturating_since(now.wall));
        let by_mono = self
            .sync
            .poll_timeout()
            .map(|at| at.saturating_since(now.mono));
        by_wall
            .chain(by_mono)
            .fold(Duration::from_millis(MAX_SLEEP_MS), Duration::min)
    }

    /// A long gap since the loop last turned means the process was paused:
    /// our tip may be stale, so production waits for the peers' tips again.
    fn notice_pause(&mut self, now: Now) {
        let gap = now.mono.saturating_since(self.last_turn);
        self.last_turn = now.mono;
        let paused = gap >= Duration::from_millis(WAKE_GAP_MS);
        if paused && self.catch_up.is_none() && hears_peers(&self.net, &self.validators) {
            log::info!(
                "no turn for {} ms (paused?): catching up with peers' tips before producing",
                gap.as_millis()
            );
            self.start_catch_up(now, "woke from a pause");
        }
    }

    fn start_catch_up(&mut self, now: Now, reason: &'static str) {
        self.catch_up = Some(CatchUp::new(now.mono, reason));
        let peers: Vec<NodeId> = self.sync.peers().collect();
        for peer in peers {
            self.probe_tip(peer);
        }
    }

    /// Asks `peer` for its blocks from our tip's height: the answer shows
    /// whether it is ahead, level, or on another branch.
    fn probe_tip(&mut self, peer: NodeId) {
        if let Some(catch_up) = &mut self.catch_up {
            catch_up.asked.insert(peer);
        }
        self.sync.on_fork(peer, self.fork_choice.tip().height);
    }

    /// Ends catching up once the peers' tips are heard and none is ahead;
    /// asks again if nobody answered in time.
    fn advance_catch_up(&mut self, now: Now) {
        let Some(catch_up) = &self.catch_up else {
            return;
        };
        if catch_up.heard(now.mono) && !self.sync.is_behind() {
            log::info!(
                "caught up with peers' tips at height {} ({} answered, after {}): producing again",
                self.fork_choice.tip().height,
                catch_up.answered,
                catch_up.reason
            );
            self.catch_up = None;
        } else if now.mono >= catch_up.deadline && catch_up.answered == 0 {
            log::debug!("no peer answered our tip probe yet; asking those connected now");
            self.start_catch_up(now, catch_up.reason);
        }
    }

    fn on_time(&mut self, now: Now) -> Result<(), BlockThreadError> {
        self.readopt_certified(now)?;
        self.sync.handle_timeout(now.mono);
        self.advance_catch_up(now);
        self.request_blocks(now);
        self.plan_slot(now);
        if self.plan.is_some_and(|p| p.publish_at <= now.wall) {
            self.publish(now)?;
        }
        self.send_heartbeat(now);
        self.endorse_tip()
    }

    fn on_net_event(&mut self, now: Now, event: NetEvent) -> Result<(), BlockThreadError> {
        match event {
            NetEvent::PeerConnected {
                node_id,
                tip_height,
                ..
            } => {
                self.sync.on_peer_height(node_id, tip_height);
                if self.catch_up.is_some() {
                    self.probe_tip(node_id);
                }
            }
            NetEvent::PeerDisconnected { node_id } => {
                self.sync.on_peer_gone(node_id);
                self.fork_probes.remove(&node_id);
                if let Some(catch_up) = &mut self.catch_up {
                    catch_up.asked.remove(&node_id);
                }
            }
            NetEvent::Message { from, msg } => match msg {
                Message::BlockAnnounce { height, hash } => {
                    self.on_announce(now, from, height, hash)?
                }
                Message::GetBlocks { from: height, max } => self.serve(from, height, max)?,
                Message::Blocks { blocks } => self.on_blocks(now, from, blocks)?,
                Message::BlockVote(vote) => self.on_block_vote(Some(from), *vote)?,
                Message::Certificates { certificates } => {
                    self.on_certificates(from, certificates)?
                }
                Message::Evidence(evidence) => self.on_evidence(from, *evidence)?,
                Message::Heartbeat(heartbeat) => self.on_heartbeat(from, *heartbeat),
                other => log::debug!("block thread ignores {:?} from {from:?}", other.tag()),
            },
        }
        self.log_progress(now);
        self.request_blocks(now);
        Ok(())
    }

    // ---- producing ----

    /// At a new slot, draws our ticket on the tip and schedules its publication.
    fn plan_slot(&mut self, now: Now) {
        let clock = self.settings.slot_clock;
        let slot = clock.slot_at(now.wall);
        if slot <= self.last_planned_slot {
            return;
        }
        self.last_planned_slot = slot;
        let Some(producer) = &self.producer else {
            return;
        };
        if self.sync.is_behind() {
            log::debug!("slot {slot}: not producing while behind peers (syncing)");
            return;
        }
        if self.catch_up.is_some() {
            log::debug!("slot {slot}: not producing until peers' tips are heard (catching up)");
            return;
        }
        if let Some((height, hash)) = self.fork_choice.certified_above_tip() {
            log::debug!("slot {slot}: not producing below certified block {hash} at {height}");
            return;
        }
        let depth = self.fork_choice.uncertified_depth();
        if depth >= self.settings.fork_choice.max_uncertified_blocks() {
            // Without a quorum (a partition side, most validators down) a
            // longer branch only means more to undo after the heal.
            log::debug!("slot {slot}: not producing on {depth} uncertified blocks");
            return;
        }
        // A block for this slot adopted already (a peer's clock runs a
        // little ahead) does not end the lottery: our ticket on its parent
        // may still be the better one.
        let tip = self.fork_choice.tip();
        let parent = if tip.slot < slot {
            tip
        } else if tip.slot == slot {
            match self
                .fork_choice
                .canonical()
                .find(|b| b.hash == tip.prev_hash)
            {
                Some(parent) => *parent,
                None => return,
            }
        } else {
            return;
        };
        let Some(producers) = self.producers_on(parent.hash, parent.height) else {
            log::debug!(
                "slot {slot}: the producers on {} are not known here yet",
                parent.hash
            );
            return;
        };
        if !producer.registered_in(producers) {
            return;
        }
        let input = SortitionInput {
            chain_id: self.settings.chain_id,
            prev_hash: parent.hash,
            slot,
        };
        let (output, _) = producer.vrf.sign_slot(&input);
        let ticket = Ticket::new(
            SortitionScore::of(&output),
            &producer.identity.public(),
            producers,
        );
        let delay_ms = if self.settings.all_producers_publish {
            0
        } else {
            let step_ms = self.settings.publish_step_ms;
            publish_delay_ms(&ticket, producers, step_ms, clock.block_interval_ms())
        };
        self.plan = Some(PlannedBlock {
            slot,
            parent,
            ticket,
            publish_at: Timestamp(clock.slot_start_ms(slot)).plus_ms(delay_ms),
        });
    }

    /// Builds and adopts our planned block, unless a better candidate is
    /// held or the chain moved on.
    fn publish(&mut self, now: Now) -> Result<(), BlockThreadError> {
        let Some(plan) = self.plan.take() else {
            return Ok(());
        };
        if self.settings.slot_clock.slot_at(now.wall) != plan.slot {
            log::debug!("slot {} ended before our publish time", plan.slot);
            return Ok(());
        }
        if !self.settings.all_producers_publish
            && !self.fork_choice.should_publish(plan.slot, &plan.ticket)
        {
            log::debug!(
                "slot {}: a better candidate is held; staying silent",
                plan.slot
            );
            return Ok(());
        }
        let tip = self.fork_choice.tip();
        // A worse candidate for our slot was adopted meanwhile: ours is its rival.
        let rival_of = if tip.hash == plan.parent.hash {
            None
        } else if tip.prev_hash == plan.parent.hash && tip.slot == plan.slot {
            Some(tip.hash)
        } else {
            return Ok(());
        };
        if let Some(block) = self.build(now, &plan, rival_of)? {
            self.accept_block(now, None, block)?;
        }
        Ok(())
    }

    /// Our block for `plan`: up to [`MAX_BLOCK_ENTRIES`] finalized,
    /// unarchived txs (plus those `rival_of` archives) with their proofs.
    fn build(
        &self,
        now: Now,
        plan: &PlannedBlock,
        rival_of: Option<Hash>,
    ) -> Result<Option<Block>, BlockThreadError> {
        let Some(producer) = &self.producer else {
            return Ok(None);
        };
        let view = chain_view(
            &self.store,
            &self.settings,
            (&self.committees, &self.validators, &self.registry),
            &self.heartbeats,
            plan.parent.tip(),
            now,
        )?;
        let Some(producers) = view.producers() else {
            return Ok(None);
        };
        let payouts = Payouts::of(producers, |id| view.payout_address(id))?;
        let mut txids = view.read.unarchived(MAX_BLOCK_ENTRIES)?;
        if let Some(record) = rival_of.map(|h| view.read.block_record(&h)).transpose()? {
            txids.extend(record.into_iter().flat_map(|r| r.archived));
        }
        let mut finalized = Vec::with_capacity(txids.len());
        for txid in txids {
            let Some(proof) = stored_proof(&view.read, &txid)? else {
                continue;
            };
            match view.fee_of(&proof.tx) {
                Ok(Some(fee)) => finalized.push((proof, fee)),
                Ok(None) => log::warn!("finalized tx {txid} has unknown inputs; not archiving it"),
                Err(e) => log::warn!("cannot compute the fee of {txid}: {e}"),
            }
        }
        let parent = plan.parent.tip();
        let parent_certificate = held_certificate(&view.read, parent.height, parent.hash)?
            .map(|certificate| self.endorsements.completed(certificate));
        let evidence = slashing::evidence_to_carry(&view)?;
        let epoch = self
            .settings
            .epoch_rules
            .epoch_of(parent.height.saturating_add(1));
        let heartbeats = self.heartbeats.to_carry(epoch, |id| {
            producers.contains(id) || matches!(view.standing(id), Ok(Standing::Member))
        });
        let template = BlockTemplate {
            chain_id: self.settings.chain_id,
            parent,
            slot: plan.slot,
            now: now.wall,
            slot_clock: self.settings.slot_clock,
            validators: producers,
            payouts: &payouts,
            parent_certificate: parent_certificate.as_ref(),
            evidence: &evidence,
            heartbeats: &heartbeats,
            max_block_bytes: self.settings.max_block_bytes(),
        };
        match build_block(&template, &producer.vrf, &producer.identity, finalized) {
            Ok(block) => Ok(Some(block)),
            Err(e) => {
                log::warn!("cannot build our block for slot {}: {e}", plan.slot);
                Ok(None)
            }
        }
    }

    // ---- receiving ----

    fn on_blocks(
        &mut self,
        now: Now,
        from: NodeId,
        encoded: Vec<Vec<u8>>,
    ) -> Result<(), BlockThreadError> {
        let (mut first, mut received) = (None, 0);
        let mut blocks = Vec::with_capacity(encoded.len());
        for bytes in &encoded {
            let decoded = Block::decode_header(bytes).and_then(|header| {
                // Every validator relays a new block to its peers, so most
                // arrive more than once: a copy of a canonical block is
                // dropped before its body (megabytes) is decoded.
                let held = matches!(
                    self.fork_choice.place(&header, None),
                    Err(IgnoreReason::AlreadyCanonical(_))
                );
                let body = (!held)
                    .then(|| Block::decode(bytes, self.settings.max_block_bytes()))
                    .transpose()?;
                Ok((header, body))
            });
            match decoded {
                Ok((header, body)) => {
                    first.get_or_insert(header.height);
                    received += 1;
                    blocks.extend(body);
                }
                Err(e) => {
                    log::warn!("refused an undecodable block from {from:?}: {e}");
                    self.penalize(from, "undecodable block");
                    break;
                }
            }
        }
        self.sync.on_response(now.mono, from, first, received);
        if let Some(catch_up) = &mut self.catch_up {
            catch_up.on_answer(from);
        }
        self.learn_finalized(now, from, &blocks)?;
        for block in blocks {
            self.accept_block(now, Some(from), block)?;
            self.drain_waiting(now)?;
        }
        Ok(())
    }

    /// A higher tip is synced; an unknown block at or below our height
    /// (a rival branch after a partition or a pause) is fetched with its
    /// branch from above our last final block, at most once per
    /// [`FORK_PROBE_GAP_MS`] per peer, so fork choice compares the two
    /// branches where they part.
    fn on_announce(
        &mut self,
        now: Now,
        from: NodeId,
        height: u64,
        hash: Hash,
    ) -> Result<(), BlockThreadError> {
        let tip = self.fork_choice.tip();
        if self.fork_choice.canonical().any(|b| b.hash == hash) {
            return Ok(());
        }
        if height > tip.height {
            self.sync.on_peer_height(from, height);
            return Ok(());
        }
        let oldest = self.fork_choice.oldest_switchable();
        if height >= oldest
            && !self.lost.contains(&hash)
            && self.store.block_record(&hash)?.is_none()
            && self.may_probe(now, from)
        {
            log::debug!(
                "{from:?} announces block {hash} at height {height}, not ours: fetching its \
                 branch from height {oldest}"
            );
            self.sync.on_fork(from, oldest);
        }
        Ok(())
    }

    /// Whether `peer` may be probed for its branch now (and if so, notes it).
    fn may_probe(&mut self, now: Now, peer: NodeId) -> bool {
        let recent = self.fork_probes.get(&peer).is_some_and(|at| {
            now.mono.saturating_since(*at) < Duration::from_millis(FORK_PROBE_GAP_MS)
        });
        if !recent {
            self.fork_probes.insert(peer, now.mono);
        }
        !recent
    }

    /// Places, validates and adopts one block (ours, or one we undid, when
    /// `from` is `None`).
    fn accept_block(
        &mut self,
        now: Now,
        from: Option<NodeId>,
        block: Block,
    ) -> Result<(), BlockThreadError> {
        let hash = block.hash();
        let height = block.header.height;
        let producers = self.producers_on(block.header.prev_hash, height.saturating_sub(1));
        let parent = match self.fork_choice.place(&block.header, producers) {
            Ok(Placement::ExtendsTip(parent)) => parent,
            Ok(Placement::Replaces { parent, .. }) => parent,
            Err(IgnoreReason::AlreadyCanonical(_)) => return Ok(()),
            Err(IgnoreReason::UnknownParent { .. }) => {
                return match from {
                    Some(from) => self.on_unlinked(now, from, block),
                    None => Ok(()),
                };
            }
            Err(reason) => {
                // A worse rival (or one beside a final block): its branch lost.
                self.lost.insert(hash);
                log::debug!("ignoring block {hash} at height {height}: {reason}");
                return Ok(());
            }
        };
        // A synced block's proofs name the epochs its producer was in: the
        // registry must have decided them from the final blocks below it.
        self.advance_registry()?;
        let validated = {
            // The vote cache is borrowed beside the view, not through `self`.
            let cache = &mut self.verified_votes;
            let sets = (&self.committees, &self.validators, &self.registry);
            let heartbeats = &self.heartbeats;
            let view = chain_view(&self.store, &self.settings, sets, heartbeats, parent, now)?;
            validate_block_with(block, &view, |vote| cache.check(vote))
        };
        self.count_verified_votes();
        match validated {
            Ok(valid) => {
                let carried = valid.block().parent_certificate.clone();
                let actions = self.fork_choice.handle_block(now.wall, valid);
                self.execute(now, from, actions)?;
                match carried {
                    Some(certificate) => self.keep_carried_certificate(&certificate),
                    None => Ok(()),
                }
            }
            Err(rejection) => {
                self.refuse(from, hash, height, &rejection);
                Ok(())
            }
        }
    }

    /// A block whose parent is not among our canonical blocks above the
    /// last final one: one from above our tip waits for the blocks below
    /// it; one we hold, one below our final block, or one on a branch that
    /// lost to ours is dropped; otherwise the sender's chain forks from
    /// ours, and sync asks it for its branch from above our last final
    /// block (at most once per [`FORK_PROBE_GAP_MS`]). A disagreement,
    /// never scored.
    fn on_unlinked(
        &mut self,
        now: Now,
        from: NodeId,
        block: Block,
    ) -> Result<(), BlockThreadError> {
        let height = block.header.height;
        let hash = block.hash();
        let tip = self.fork_choice.tip();
        self.sync.on_peer_height(from, height);
        if height > tip.height.saturating_add(1) {
            let max_count = self.settings.sync.max_requests_in_flight
                * self.settings.sync.batch_blocks as usize;
            self.waiting.insert(from, block, max_count.max(1));
            return Ok(());
        }
        if self.switch_towards_certified(from, height)? {
            return Ok(());
        }
        let oldest = self.fork_choice.oldest_switchable();
        if self.lost.contains(&block.header.prev_hash) {
            self.lost.insert(hash);
            log::debug!("ignoring block {hash} at height {height}: its branch lost to ours");
            return Ok(());
        }
        if height <= oldest || self.store.block_record(&hash)?.is_some() {
            // At `oldest` its parent would be our final block (or the
            // oldest kept one): it is not, so its branch forks below a
            // block this node holds final.
            log::debug!("ignoring block {hash} at height {height}: held already or below final");
            return Ok(());
        }
        if !self.may_probe(now, from) {
            log::debug!("not adopting block {hash} at height {height} from {from:?} yet: its branch is being fetched");
            return Ok(());
        }
        log::info!(
            "not adopting block {hash} at height {height} from {from:?} (UnknownParent): its \
             parent {} is not one of our blocks above the last final one; asking for its \
             branch from height {oldest}",
            block.header.prev_hash,
        );
        self.sync.on_fork(from, oldest);
        Ok(())
    }

    /// Offers waiting blocks that may now link to the tip, lowest first.
    fn drain_waiting(&mut self, now: Now) -> Result<(), BlockThreadError> {
        loop {
            let next = self.fork_choice.tip().height.saturating_add(1);
            let Some((from, block)) = self.waiting.take_up_to(next) else {
                return Ok(());
            };
            self.accept_block(now, Some(from), block)?;
        }
    }

    /// Commits as finalized, in ONE write, the entries of `blocks` this
    /// node has not finalized whose proofs verify and whose inputs are
    /// unspent here (in spending order), so a lagging node learns
    /// finalized txs from blocks and the blocks can archive them. A crash
    /// after this and before a block's own write leaves them finalized and
    /// unarchived: consistent. A valid proof is final whatever the block.
    fn learn_finalized(
        &mut self,
        now: Now,
        from: NodeId,
        blocks: &[Block],
    ) -> Result<(), BlockThreadError> {
        // A live block's proofs also go to consensus, so its mempool drops
        // their conflicts; old ones would only flood peers with proof gossip.
        let now_slot = self.settings.slot_clock.slot_at(now.wall);
        let mut live = HashSet::new();
        let ordered = {
            let read = self.store.read()?;
            let mut unknown = Vec::new();
            // Only blocks a validator made get per-entry work: a stranger's
            // block costs one VRF and one signature check, never its proofs.
            let made = self.made_by_producers(&read, blocks);
            let made_by_validators = blocks.iter().zip(made).filter(|(_, m)| *m).map(|(b, _)| b);
            for block in made_by_validators {
                let is_live = now_slot.saturating_sub(block.header.slot) <= LIVE_SLOTS;
                for proof in &block.entries {
                    let txid = proof.tx.txid();
                    if !read.has_tx(&txid)? {
                        unknown.push(proof);
                        if is_live {
                            live.insert(txid);
                        }
                    }
                }
            }
            if unknown.is_empty() {
                return Ok(());
            }
            let (chain_id, genesis) = (self.settings.chain_id, self.settings.genesis.hash);
            let committees = &self.committees;
            let cache = &mut self.verified_votes;
            unknown.retain(|p| {
                let set = |epoch| committees.get(epoch);
                verify_proof_with(p, chain_id, genesis, set, |v| cache.check(v)).is_ok()
            });
            self.count_verified_votes();
            spending_order(&read, unknown)?
        };
        if ordered.is_empty() {
            return Ok(());
        }
        let finalized: Vec<FinalizedTx> = ordered
            .iter()
            .map(|proof| FinalizedTx {
                tx: proof.tx.clone(),
                proof: encode(*proof),
                finalized_at_ms: now.wall.as_millis(),
            })
            .collect();
        for proof in ordered.iter().filter(|p| live.contains(&p.tx.txid())) {
            let proof = Box::new((*proof).clone());
            // A full inbox only costs the mempool cleanup, not finality.
            let _ = self
                .channels
                .consensus
                .try_send(NodeEvent::PeerProof { from, proof });
        }
        let report = self.store.commit_batch(&LedgerBatch {
            finalized: &finalized,
            ..LedgerBatch::default()
        })?;
        let learned: Vec<Hash> = finalized.iter().map(|f| f.tx.txid()).collect();
        self.channels.waiters.publish_txs(&learned);
        log::info!(
            "learned {} finalized txs from {} blocks sent by {from:?}",
            report.finalized.applied,
            blocks.len(),
        );
        Ok(())
    }

    fn refuse(&self, from: Option<NodeId>, hash: Hash, height: u64, rejection: &BlockRejection) {
        let name = variant_name(rejection);
        match from {
            Some(peer) if rejection.is_peer_fault() => {
                log::warn!(
                    "refused block {hash} at height {height} from {peer:?} ({name}): {rejection}"
                );
                self.penalize(peer, "invalid block");
            }
            Some(peer) => log::info!(
                "not adopting block {hash} at height {height} from {peer:?} ({name}): {rejection}"
            ),
            None => log::error!(
                "block {hash} at height {height}, ours or one we undid, is invalid ({name}): \
                 {rejection}"
            ),
        }
    }

    fn penalize(&self, node_id: NodeId, reason: &'static str) {
        self.send(NetCommand::Penalize {
            node_id,
            points: INVALID_BLOCK_PENALTY,
            reason,
        });
    }

    // ---- persisting ----

    /// Performs fork choice's actions in order, one write transaction each.
    /// A write the store refuses means fork choice and the store disagree:
    /// fork choice is rebuilt from the store, which is the truth.
    fn execute(
        &mut self,
        now: Now,
        from: Option<NodeId>,
        actions: Vec<ChainAction>,
    ) -> Result<(), BlockThreadError> {
        let mut adopted = None;
        for action in actions {
            let done = match action {
                ChainAction::Undo(hash) => self.undo(hash),
                ChainAction::Apply(valid) => self.apply(&valid).map(|bytes| {
                    adopted = Some((valid, bytes));
                }),
                ChainAction::Announce(_) => {
                    if let Some((valid, bytes)) = adopted.take() {
                        self.announce(now, &valid, bytes, from);
                    }
                    Ok(())
                }
                ChainAction::Ignore(reason) => {
                    log::debug!("fork choice ignores a block: {reason}");
                    Ok(())
                }
            };
            if let Err(e) = done {
                if !is_refusal(&e) {
                    return Err(e.into());
                }
                log::error!("the store refused a fork-choice action ({e}); reloading the chain");
                self.fork_choice = load_fork_choice(&self.store, &self.settings, &self.committees)?;
                break;
            }
        }
        let tip = self.fork_choice.tip().height;
        self.sync.on_tip(tip);
        self.endorsements.on_tip(tip);
        self.endorse_tip()
    }

    /// Rebuilds fork choice from the store (after a deep undo).
    fn reload_fork_choice(&mut self) -> Result<(), BlockThreadError> {
        self.fork_choice = load_fork_choice(&self.store, &self.settings, &self.committees)?;
        let tip = self.fork_choice.tip().height;
        self.sync.on_tip(tip);
        self.endorsements.on_tip(tip);
        Ok(())
    }

    /// Undoes the tip `hash` (one write) and keeps its block in `undone`.
    fn undo(&mut self, hash: Hash) -> Result<(), StoreError> {
        let bytes = self.store.block(&hash)?;
        let report = self.store.undo_tip(&hash)?;
        self.count_writes(report.writes);
        self.channels.waiters.publish_block();
        log::info!(
            "undid block {hash}: a better rival replaces it; tip back to height {}",
            report.tip.height
        );
        match bytes.map(|b| Block::decode(&b, self.settings.max_block_bytes())) {
            Some(Ok(block)) => {
                self.heartbeats.set_carried(&block.heartbeats, false);
                self.undone.insert(block);
            }
            Some(Err(e)) => log::warn!("undone block {hash} does not decode ({e}): not kept"),
            None => {}
        }
        Ok(())
    }

    /// A certified block above our tip that this node undid (every node
    /// may have, for a better-ranked rival) is adopted again with the
    /// undone blocks that link it to our tip: no peer may hold it any more.
    fn readopt_certified(&mut self, now: Now) -> Result<(), BlockThreadError> {
        // Every loop turn: nothing undone, nothing to look up.
        if self.undone.is_empty() {
            return Ok(());
        }
        let tip = self.fork_choice.tip().hash;
        let undone = &mut self.undone;
        let Some(branch) = self
            .fork_choice
            .all_certified_above_tip()
            .rev()
            .find_map(|(_, hash)| undone.take_branch(tip, hash))
        else {
            return Ok(());
        };
        for block in branch {
            log::info!(
                "adopting block {} at height {} again: certified after we undid it",
                block.hash(),
                block.header.height
            );
            self.accept_block(now, None, block)?;
        }
        Ok(())
    }

    fn count_verified_votes(&self) {
        let counter = &self.channels.metrics.block_vote_signatures_verified;
        counter.store(self.verified_votes.checked(), Relaxed);
    }

    fn count_writes(&self, writes: usize) {
        let counter = &self.channels.metrics.block_writes;
        counter.fetch_add(u64::try_from(writes).unwrap_or(u64::MAX), Relaxed);
    }

    /// Writes `valid` on the tip; returns its bytes for the announcement.
    fn apply(&mut self, valid: &ValidBlock) -> Result<Vec<u8>, StoreError> {
        let block = valid.block();
        let h = &block.header;
        let encoded = block.encode();
        let archived: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
        let commit = block_commit(
            block,
            &encoded,
            &archived,
            self.settings.reward_maturity_blocks,
        );
        let report = self.store.apply_block(&commit)?;
        self.count_writes(report.writes);
        self.heartbeats.set_carried(&block.heartbeats, true);
        self.channels.waiters.publish_block();
        let producer = self
            .validators
            .index_of(&h.producer)
            .map_or_else(|| format!("{:?}", h.producer), |i| format!("validator {i}"));
        log::info!(
            "block {} adopted: height {} slot {} entries {} producer {producer}",
            valid.hash(),
            h.height,
            h.slot,
            archived.len(),
        );
        if let Some(bytes) = report.map_grown_to_bytes {
            log::info!("LMDB map grown to {bytes} bytes");
        }
        Ok(encoded)
    }

    /// Pushes an adopted block to every peer and announces our new tip,
    /// if the block is recent enough to matter to fork choice: a block
    /// adopted by sync is old news to the peers it came from, and relaying
    /// a whole chain would flood their block rate limits.
    fn announce(&mut self, now: Now, valid: &ValidBlock, encoded: Vec<u8>, from: Option<NodeId>) {
        let header = &valid.block().header;
        let height = header.height;
        let now_slot = self.settings.slot_clock.slot_at(now.wall);
        if now_slot > header.slot.saturating_add(LIVE_SLOTS) {
            self.send(NetCommand::SetTipHeight(height));
            return;
        }
        // Not back to the peer that sent it.
        let skip: Vec<NodeId> = from.into_iter().collect();
        self.send(NetCommand::Broadcast {
            msg: Message::Blocks {
                blocks: vec![encoded],
            },
            skip: skip.clone(),
        });
        self.send(NetCommand::Broadcast {
            msg: Message::BlockAnnounce {
                height,
                hash: valid.hash(),
            },
            skip,
        });
        self.send(NetCommand::SetTipHeight(height));
    }

    // ---- sync ----

    /// Answers `GetBlocks` with canonical blocks from `from`, at most the
    /// per-message count and within one frame.
    fn serve(&self, peer: NodeId, from: u64, max: u32) -> Result<(), BlockThreadError> {
        let max = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(self.settings.limits.max_blocks_per_message);
        let budget = self
            .settings
            .limits
            .max_frame_bytes
            .saturating_sub(BLOCKS_FRAME_OVERHEAD);
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        let mut last_height = None;
        {
            let read = self.store.read()?;
            for stored in read.scan_blocks_from(from)?.take(max) {
                let stored = stored?;
                // Each byte string costs its length prefix too.
                let len = stored.encoded.len().saturating_add(8);
                if bytes.saturating_add(len) > budget {
                    break;
                }
                bytes += len;
                last_height = Some(stored.height);
                blocks.push(stored.encoded);
            }
        }
        self.send(NetCommand::SendTo(peer, Message::Blocks { blocks }));
        // The certificates of those heights follow in their own message.
        match last_height {
            Some(last) => self.serve_certificates(peer, from, last),
            None => Ok(()),
        }
    }

    fn request_blocks(&mut self, now: Now) {
        if self.net.is_none() {
            return;
        }
        for BlockRequest { peer, from, max } in self.sync.poll_requests(now.mono) {
            log::debug!("asking {peer:?} for {max} blocks from height {from}");
            self.send(NetCommand::SendTo(peer, Message::GetBlocks { from, max }));
        }
    }

    /// Logs `sync: height H / target T, B blocks/s` while behind, at most
    /// once per [`PROGRESS_EVERY_MS`], and once more when caught up.
    fn log_progress(&mut self, now: Now) {
        let height = self.fork_choice.tip().height;
        let target = self.sync.target();
        let Some(progress) = &mut self.progress else {
            if target > height.saturating_add(1) {
                self.progress = Some(SyncProgress {
                    started_at: now.mono,
                    start_height: height,
                    last_logged: now.mono,
                });
                log::info!("sync: height {height} / target {target}");
            }
            return;
        };
        let elapsed_ms = now
            .mono
            .saturating_since(progress.started_at)
            .as_millis()
            .max(1);
        let synced = height.saturating_sub(progress.start_height);
        let per_sec = u128::from(synced) * 1000 / elapsed_ms;
        if height >= target {
            log::info!(
                "sync: caught up at height {height}: {synced} blocks in {} ms, {per_sec} blocks/s",
                elapsed_ms
            );
            self.progress = None;
        } else if now.mono.saturating_since(progress.last_logged)
            >= Duration::from_millis(PROGRESS_EVERY_MS)
        {
            progress.last_logged = now.mono;
            log::info!("sync: height {height} / target {target}, {per_sec} blocks/s");
        }
    }

    // ---- helpers ----

    fn send(&self, command: NetCommand) {
        if let Some(net) = &self.net {
            // A full channel is counted by the net layer; sync retries.
            let _ = net.send(command);
        }
    }
}

/// Production held until the peers' tips are heard: every connected peer
/// is asked for its blocks from our tip's height; done when all asked
/// answered (or the timeout passed and at least one did), after which the
/// usual rule holds (never produce while some peer claims a longer chain).
#[derive(Debug)]
struct CatchUp {
    /// Why it started (for the log).
    reason: &'static str,
    /// Asked and not yet answered.
    asked: BTreeSet<NodeId>,
    answered: usize,
    deadline: MonoTime,
}

impl CatchUp {
    fn new(now: MonoTime, reason: &'static str) -> CatchUp {
        CatchUp {
            reason,
            asked: BTreeSet::new(),
            answered: 0,
            deadline: now.plus_ms(CATCH_UP_TIMEOUT_MS),
        }
    }

    fn on_answer(&mut self, peer: NodeId) {
        if self.asked.remove(&peer) {
            self.answered += 1;
        }
    }

    /// Heard enough: every asked peer answered, or the time is up and at
    /// least one did. With no answer at all it keeps waiting (and the
    /// caller asks the peers connected by then again).
    fn heard(&self, now: MonoTime) -> bool {
        self.answered > 0 && (self.asked.is_empty() || now >= self.deadline)
    }
}

/// Whether production must hear peers' tips first: not for a node without
/// a network or the only validator (it has nobody to hear).
fn hears_peers(net: &Option<NetClient>, validators: &ValidatorSet) -> bool {
    net.is_some() && validators.len() > 1
}

/// The chain state a block on `parent` is validated against, read from one
/// store snapshot; `sets` are the recent epochs' sets, the genesis set (the
/// endorsers) and the registry.
fn chain_view<'a>(
    store: &'a Store,
    settings: &BlockSettings,
    (committees, endorsers, registry): (&'a CommitteeBook, &'a ValidatorSet, &'a Registry),
    heartbeats: &'a HeartbeatPool,
    parent: ChainTip,
    now: Now,
) -> Result<StoreChainView<'a>, BlockThreadError> {
    Ok(StoreChainView {
        read: store.read()?,
        chain_id: settings.chain_id,
        genesis_hash: settings.genesis.hash,
        committees,
        endorsers,
        registry,
        heartbeats,
        parent,
        now: now.wall,
        slot_clock: settings.slot_clock,
        slashed_above_registry: OnceCell::new(),
        certified: OnceCell::new(),
    })
}

/// Fork choice over the stored tip and the canonical blocks above the
/// last certified one (at most `max_uncertified_blocks`), read as headers.
fn load_fork_choice(
    store: &Store,
    settings: &BlockSettings,
    sets: &CommitteeBook,
) -> Result<ForkChoice, BlockThreadError> {
    let read = store.read()?;
    let tip = read.tip()?;
    let kept = settings.fork_choice.max_uncertified_blocks();
    let mut first = tip.height.saturating_sub(kept);
    let certified_tip = read.certified_tip()?;
    if let Some((height, hash)) = certified_tip {
        if height <= tip.height && read.block_hash_at(height)? == Some(hash) {
            first = first.max(height);
        }
    }
    let mut recent = Vec::new();
    for height in first..=tip.height {
        if height == 0 {
            recent.push(settings.genesis);
            continue;
        }
        let hash = read
            .block_hash_at(height)?
            .ok_or(BlockThreadError::MissingHeight { height })?;
        let bytes = read
            .block(&hash)?
            .ok_or(BlockThreadError::MissingHeight { height })?;
        let header =
            Block::decode_header(&bytes).map_err(|source| BlockThreadError::CorruptBlock {
                height,
                hash,
                source,
            })?;
        let certified = carried_certified(&read, header.prev_hash, height - 1)?;
        let producers = sets.producers_at(&settings.epoch_rules, height, certified);
        recent.push(BlockSummary::of(&header, producers));
    }
    let mut fork_choice = ForkChoice::new(settings.fork_choice, recent)?;
    for height in first..=tip.height {
        if let Some(record) = read.certificate_at(height)? {
            fork_choice.certify(height, record.hash);
        }
    }
    if let Some((height, hash)) = certified_tip {
        fork_choice.certify(height, hash);
    }
    Ok(fork_choice)
}

/// The stored certificate of block `hash` at `height`, if this node holds
/// one (a record that does not decode is logged and left out).
fn held_certificate(
    read: &ReadView<'_>,
    height: u64,
    hash: Hash,
) -> Result<Option<Certificate>, BlockThreadError> {
    let Some(record) = read.certificate_at(height)?.filter(|r| r.hash == hash) else {
        return Ok(None);
    };
    match Certificate::decode(&record.certificate) {
        Ok(certificate) => Ok(Some(certificate)),
        Err(e) => {
            log::warn!("the stored certificate of height {height} does not decode: {e}");
            Ok(None)
        }
    }
}

/// The variant name of a rejection, as the log's short reason.
fn variant_name(rejection: &BlockRejection) -> String {
    format!("{rejection:?}")
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Store errors that refuse a write (nothing was written) rather than
/// report a failing disk or a damaged datadir.
fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::BlockNotOnTip { .. }
            | StoreError::ArchivesUnfinalized { .. }
            | StoreError::AlreadyArchived { .. }
            | StoreError::RewardExists { .. }
            | StoreError::BlockTooLarge { .. }
            | StoreError::UndoNotTip { .. }
            | StoreError::UndoGenesis { .. }
            | StoreError::UndoFinal { .. }
            | StoreError::RewardSpent { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{BlockHeader, RewardTx, BLOCK_VERSION};
    use crate::types::validator::{VrfOutputBytes, VrfProofBytes};
    use crate::types::{PublicKeyBytes, SignatureBytes};

    fn peer(i: u8) -> NodeId {
        PublicKeyBytes([i; 32])
    }

    #[test]
    fn catching_up_ends_when_every_asked_peer_answered() {
        let mut catch_up = CatchUp::new(MonoTime(0), "starting");
        catch_up.asked.extend([peer(1), peer(2)]);
        assert!(!catch_up.heard(MonoTime(1)));
        catch_up.on_answer(peer(1));
        assert!(!catch_up.heard(MonoTime(1)), "peer 2 has not answered");
        catch_up.on_answer(peer(3)); // never asked: does not count
        catch_up.on_answer(peer(2));
        assert!(catch_up.heard(MonoTime(1)));
    }

    #[test]
    fn catching_up_settles_for_the_answers_at_the_timeout_but_never_for_none() {
        let mut catch_up = CatchUp::new(MonoTime(0), "woke");
        catch_up.asked.extend([peer(1), peer(2)]);
        let timeout = MonoTime(CATCH_UP_TIMEOUT_MS);
        assert!(!catch_up.heard(timeout), "no peer answered at all");
        catch_up.on_answer(peer(2));
        assert!(!catch_up.heard(MonoTime(CATCH_UP_TIMEOUT_MS - 1)));
        assert!(catch_up.heard(timeout), "a paused peer holds nobody up");
    }

    pub(super) fn block_at(height: u64) -> Block {
        Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                chain_id: ChainId(3),
                height,
                slot: height,
                prev_hash: Hash::ZERO,
                producer: PublicKeyBytes([1; 32]),
                vrf_output: VrfOutputBytes([2; 32]),
                vrf_proof: VrfProofBytes([3; 64]),
                entries_root: Hash::ZERO,
                parent_certificate: Hash::ZERO,
                evidence: Hash::ZERO,
                heartbeats: Hash::ZERO,
                timestamp_ms: 0,
            },
            producer_sig: SignatureBytes([4; 64]),
            entries: Vec::new(),
            reward: RewardTx {
                height,
                outputs: Vec::new(),
            },
            parent_certificate: None,
            evidence: Vec::new(),
            heartbeats: Vec::new(),
        }
    }

    #[test]
    fn waiting_blocks_keep_the_lowest_heights_within_the_cap() {
        let peer = PublicKeyBytes([9; 32]);
        let mut waiting = WaitingBlocks::default();
        for height in [7, 5, 9, 6] {
            waiting.insert(peer, block_at(height), 3);
        }
        assert_eq!(waiting.blocks.len(), 3);
        assert_eq!(waiting.take_up_to(4).map(|(_, b)| b.header.height), None);
        let taken: Vec<u64> = std::iter::from_fn(|| waiting.take_up_to(8))
            .map(|(_, b)| b.header.height)
            .collect();
        assert_eq!(taken, vec![5, 6, 7], "9 was evicted first");
        assert_eq!(waiting.bytes, 0);
    }

    #[test]
    fn requests_to_one_peer_stay_under_its_block_rate_limit() {
        let per_sec = u64::from(RateLimits::default().block.per_sec);
        assert!(sync_request_gap_ms() * per_sec > 1000);
    }

    #[test]
    fn the_logged_reason_is_the_rejection_variant() {
        assert_eq!(variant_name(&BlockRejection::FeeOverflow), "FeeOverflow");
        let wrong = BlockRejection::WrongVersion {
            found: 2,
            expected: 1,
        };
        assert_eq!(variant_name(&wrong), "WrongVersion");
    }
}
