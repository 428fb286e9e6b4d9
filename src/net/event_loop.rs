//! The net thread: one `mio::Poll` owning the listener and every socket (the
//! only file that uses `mio`). It accepts and dials, feeds received bytes to
//! each [`Peer`], routes decoded messages to the consensus or block outbox,
//! executes [`NetCommand`]s from other threads, and drives timers from
//! the monotonic `time::SystemClock::mono` at every wake-up (never the wall clock).
//!
//! It never blocks on anything but `poll` and never touches disk: outboxes
//! are written with `try_send` (a full one is dropped and counted), and each
//! peer's write queue is capped. Sockets run with `TCP_NODELAY`, and what is
//! queued during one wake-up is written once at its end, so a poll's small
//! messages neither wait for Nagle nor cost one syscall each.

use super::admission::{
    admit_inbound, budget_victim, Admission, AdmissionLimits, Holder, Refusal, Slot,
};
use super::gossip::{seen_capacity, SeenSet};
use super::handshake::{HandshakeError, LocalHello, PeerHello};
use super::message::{Message, MessageClass, MessageLimits, MessageTag};
use super::metrics::{bump, NetMetrics, NetMetricsSnapshot};
use super::peer::{Peer, PeerError, PeerEvent, PeerLimits};
use super::peer_book::{new_connection_wins, BanKey, PeerBook, PeerBookConfig};
use super::rate_limit::{RateLimits, DESIGN_TX_PER_SEC};
use crate::consensus::messages::{ConsensusMessage, NodeId};
use crate::crypto::Keypair;
use crate::time::{Clock, MonoTime, SystemClock};
use crate::types::{ChainId, Hash};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_PEER_TOKEN: usize = 2;
/// Bytes read from a socket per `read` call.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// The smallest pre-handshake frame cap that still carries a `Hello`.
const MIN_HANDSHAKE_FRAME_BYTES: usize = 1024;

/// Everything the net layer is configured with; units are in the names.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Port 0 picks a free port (see [`NetHandle::local_addr`]).
    pub listen_addr: SocketAddr,
    /// Dialed at start and redialed with backoff whenever disconnected.
    pub configured_peers: Vec<SocketAddr>,
    /// Frame and per-message count limits (`messages.max_frame_bytes` is the frame cap).
    pub messages: MessageLimits,
    /// Inbound budget, per-address caps and eviction protections for
    /// strangers; validators and configured peers hold reserved slots.
    pub admission: AdmissionLimits,
    /// Dialed gossiped addresses; configured peers are dialed beyond it.
    pub max_outbound_peers: usize,
    /// Per peer; at least one largest frame, so any message can be sent.
    pub write_queue_bytes_max: usize,
    /// Frame cap until the handshake completes (a `Hello` fits).
    pub handshake_frame_bytes_max: usize,
    /// Read buffers plus write queues over all connections: past it the
    /// largest holders are disconnected (not banned).
    pub buffer_budget_bytes: usize,
    /// Request limits per peer (see [`RateLimits::for_load`]).
    pub rate_limits: RateLimits,
    /// The validator set's node ids: once one proves its id, its messages
    /// over a limit are dropped unscored and it is never banned by IP.
    pub validators: Vec<NodeId>,
    pub ban_duration_ms: u64,
    pub handshake_timeout_ms: u64,
    pub ping_interval_ms: u64,
    pub get_peers_interval_ms: u64,
    pub dial_backoff_base_ms: u64,
    pub dial_backoff_max_ms: u64,
    pub max_known_addrs: usize,
    pub max_bans: usize,
    /// Hashes remembered for gossip deduplication, each direction.
    pub gossip_seen_capacity: usize,
    /// Capacity of each outbox (consensus, block) and of the command channel.
    pub channel_capacity: usize,
    /// Longest sleep in `poll`: the resolution of timers (deadlines, dials, pings).
    pub tick_ms: u64,
    /// Seeds nonces and dial jitter; `None` draws it from the OS (production).
    pub rng_seed: Option<u64>,
    /// Announced in `Hello`; updated with [`NetCommand::SetTipHeight`].
    pub tip_height: u64,
}

impl NetConfig {
    /// Production defaults listening on `listen_addr`.
    pub fn new(listen_addr: SocketAddr) -> NetConfig {
        NetConfig {
            listen_addr,
            configured_peers: Vec::new(),
            messages: MessageLimits::default(),
            admission: AdmissionLimits::default(),
            max_outbound_peers: 16,
            // One largest frame (a `Blocks` answer) plus room for ordinary traffic.
            write_queue_bytes_max: MessageLimits::default().max_frame_bytes + 1024 * 1024,
            handshake_frame_bytes_max: 4 * 1024,
            // With an idle node at ~15 MiB, keeps a node under attack within ~64 MiB.
            buffer_budget_bytes: 32 * 1024 * 1024,
            rate_limits: RateLimits::default(),
            validators: Vec::new(),
            ban_duration_ms: 60 * 60 * 1000,
            handshake_timeout_ms: 5_000,
            ping_interval_ms: 30_000,
            get_peers_interval_ms: 60_000,
            dial_backoff_base_ms: 1_000,
            dial_backoff_max_ms: 60_000,
            max_known_addrs: 1_024,
            max_bans: 4_096,
            gossip_seen_capacity: seen_capacity(DESIGN_TX_PER_SEC),
            channel_capacity: 8_192,
            tick_ms: 100,
            rng_seed: None,
            tip_height: 0,
        }
    }

    /// Refuses settings under which the limits would defeat themselves.
    pub fn check(&self) -> Result<(), String> {
        self.admission.check()?;
        if self.handshake_frame_bytes_max < MIN_HANDSHAKE_FRAME_BYTES {
            return Err(format!(
                "handshake_frame_bytes_max ({}) must be at least {MIN_HANDSHAKE_FRAME_BYTES}: a Hello must fit",
                self.handshake_frame_bytes_max
            ));
        }
        if self.buffer_budget_bytes < self.write_queue_bytes_max {
            return Err(format!(
                "buffer_budget_bytes ({}) must be at least write_queue_bytes_max ({})",
                self.buffer_budget_bytes, self.write_queue_bytes_max
            ));
        }
        Ok(())
    }
}

/// What other threads ask of the net thread.
#[derive(Clone, Debug)]
pub enum NetCommand {
    SendTo(NodeId, Message),
    /// To every established peer but `skip`; a `Tx` or `Proof` already
    /// relayed is not sent again.
    Broadcast {
        msg: Message,
        skip: Vec<NodeId>,
    },
    /// As `Broadcast`, to peers that did not prove a validator's id.
    RelayToObservers {
        msg: Message,
        skip: Vec<NodeId>,
    },
    Disconnect(NodeId),
    /// Adds to a peer's misbehaviour score for a fault found above the
    /// wire (e.g. an invalid block); at the ban score it is cut off and banned.
    Penalize {
        node_id: NodeId,
        points: u32,
        reason: &'static str,
    },
    /// Dial `addr` now and keep redialing it like a configured peer (`addnode`).
    AddPeer(SocketAddr),
    SetTipHeight(u64),
    /// Replaces the validators' node ids as the epochs change (DESIGN §7):
    /// they hold reserved slots and are never scored for our limits.
    SetValidators(BTreeSet<NodeId>),
    Shutdown,
}

/// What the net thread reports. Peer lifecycle events go to every outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    PeerConnected {
        node_id: NodeId,
        addr: SocketAddr,
        inbound: bool,
        tip_height: u64,
    },
    PeerDisconnected {
        node_id: NodeId,
    },
    Message {
        from: NodeId,
        msg: Message,
    },
}

/// One connection as `getpeerinfo` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// `None` while the handshake is in progress.
    pub node_id: Option<NodeId>,
    pub addr: SocketAddr,
    pub inbound: bool,
    pub connected_at: MonoTime,
    /// The highest of its handshake tip and the blocks it announced since.
    pub tip_height: Option<u64>,
    pub queued_bytes: usize,
    /// Its share of the buffer budget: the frame being received plus `queued_bytes`.
    pub buffered_bytes: usize,
    pub misbehaviour_score: u32,
    /// It proved a validator's id (see [`NetCommand::SetValidators`]).
    pub validator: bool,
    /// It holds a reserved slot (a validator or a configured peer).
    pub reserved: bool,
}

/// Why a command was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetSendError {
    #[error("net command channel is full (the net thread is overloaded); command dropped")]
    Full,
    #[error("the net thread has stopped")]
    Stopped,
}

#[derive(Debug, Default)]
struct Shared {
    metrics: NetMetrics,
    peers: Mutex<Vec<PeerInfo>>,
    /// A wake-up is on its way and the net thread has not started draining
    /// commands since: a sender need not wake it again. A consensus batch
    /// of many messages then costs one wake-up, not one per message.
    wake_pending: AtomicBool,
}

/// The running net thread.
#[derive(Debug)]
pub struct NetHandle {
    commands: Sender<NetCommand>,
    waker: Arc<Waker>,
    /// `Tx`, `GetTxs`, `Txs`, `Query`, `Votes`, `Proof` and peer lifecycle events.
    pub consensus_events: Receiver<NetEvent>,
    /// `BlockAnnounce`, `GetBlocks`, `Blocks` and peer lifecycle events.
    pub block_events: Receiver<NetEvent>,
    /// `GetRecentProofs` and peer lifecycle events.
    pub catch_up_events: Receiver<NetEvent>,
    local_addr: SocketAddr,
    node_id: NodeId,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl NetHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Hands `command` to the net thread without blocking.
    pub fn send(&self, command: NetCommand) -> Result<(), NetSendError> {
        self.client().send(command)
    }

    /// Every connection at the last tick.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.client().peers()
    }

    pub fn metrics(&self) -> NetMetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// A cloneable sender and reader for other threads (consensus, RPC);
    /// only the `NetHandle` owner stops the thread.
    pub fn client(&self) -> NetClient {
        NetClient {
            commands: self.commands.clone(),
            waker: Arc::clone(&self.waker),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops the thread (closing every socket) and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Blocking here is fine: the net thread drains commands at every wake-up.
            let _ = self.commands.send(NetCommand::Shutdown);
            let _ = self.waker.wake();
            if thread.join().is_err() {
                log::error!("net thread panicked");
            }
        }
    }
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Another thread's end of the net thread: non-blocking commands, peers and metrics.
#[derive(Clone, Debug)]
pub struct NetClient {
    commands: Sender<NetCommand>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
}

impl NetClient {
    /// Hands `command` to the net thread without blocking; a full channel
    /// drops it and counts it in `command_drops`.
    pub fn send(&self, command: NetCommand) -> Result<(), NetSendError> {
        match self.commands.try_send(command) {
            Ok(()) => {
                let already_woken = self.shared.wake_pending.swap(true, Ordering::SeqCst);
                if already_woken {
                    return Ok(());
                }
                // A failed wake means the poll is gone: the thread is stopping.
                self.waker.wake().map_err(|_| NetSendError::Stopped)
            }
            Err(TrySendError::Full(_)) => {
                bump(&self.shared.metrics.command_drops);
                Err(NetSendError::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(NetSendError::Stopped),
        }
    }

    /// Every connection at the last tick.
    pub fn peers(&self) -> Vec<PeerInfo> {
        match self.shared.peers.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn metrics(&self) -> NetMetricsSnapshot {
        self.shared.metrics.snapshot()
    }
}

/// Binds the listener and starts the thread named `net`.
pub fn spawn_net(
    config: NetConfig,
    identity: Keypair,
    chain_id: ChainId,
    genesis_hash: Hash,
) -> io::Result<NetHandle> {
    config
        .check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let poll = Poll::new()?;
    let mut listener = TcpListener::bind(config.listen_addr)?;
    let local_addr = listener.local_addr()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (command_tx, commands) = bounded(config.channel_capacity);
    let (consensus_tx, consensus_events) = bounded(config.channel_capacity);
    let (block_tx, block_events) = bounded(config.channel_capacity);
    let (catch_up_tx, catch_up_events) = bounded(config.channel_capacity);
    let shared = Arc::new(Shared::default());
    let seed = config.rng_seed.unwrap_or_else(|| {
        // The seeding point of the net thread's RNG (tests pin `rng_seed`).
        #[allow(clippy::disallowed_types)]
        use rand_core::OsRng;
        OsRng.next_u64()
    });
    let now = SystemClock.mono();
    let node_id = identity.public();
    let book = PeerBook::new(
        PeerBookConfig {
            configured_peers: config.configured_peers.clone(),
            max_known_addrs: config.max_known_addrs,
            dial_backoff_base_ms: config.dial_backoff_base_ms,
            dial_backoff_max_ms: config.dial_backoff_max_ms,
            ban_duration_ms: config.ban_duration_ms,
            max_bans: config.max_bans,
        },
        Some(local_addr),
        seed,
        now,
    );
    let mut net = NetLoop {
        poll,
        listener,
        local: LocalHello {
            chain_id,
            genesis_hash,
            node_id,
            listen_addr: Some(local_addr),
            tip_height: config.tip_height,
        },
        limits: PeerLimits {
            messages: config.messages,
            write_queue_bytes_max: config.write_queue_bytes_max,
            rate_limits: config.rate_limits,
            handshake_timeout_ms: config.handshake_timeout_ms,
            handshake_frame_bytes_max: config.handshake_frame_bytes_max,
            validators: Arc::new(config.validators.iter().copied().collect()),
        },
        identity,
        conns: BTreeMap::new(),
        next_token: FIRST_PEER_TOKEN,
        by_node: BTreeMap::new(),
        book,
        unflushed: BTreeSet::new(),
        rng: ChaCha20Rng::seed_from_u64(seed.wrapping_add(1)),
        commands,
        consensus_tx,
        block_tx,
        catch_up_tx,
        delivered: SeenSet::new(config.gossip_seen_capacity),
        relayed: SeenSet::new(config.gossip_seen_capacity),
        shared: shared.clone(),
        buffered_bytes: 0,
        last_ping: now,
        last_get_peers: now,
        config,
    };
    let thread = std::thread::Builder::new()
        .name("net".into())
        .spawn(move || {
            if let Err(e) = net.run() {
                log::error!("net thread stopped: {e}");
            }
        })?;
    Ok(NetHandle {
        commands: command_tx,
        waker,
        consensus_events,
        block_events,
        catch_up_events,
        local_addr,
        node_id,
        shared,
        thread: Some(thread),
    })
}

struct Conn {
    stream: TcpStream,
    peer: Peer,
    /// Outbound, TCP connect not yet confirmed.
    connecting: bool,
    /// The address we dialed (outbound only).
    dialed: Option<SocketAddr>,
    /// A proven validator or configured peer: a reserved slot, never evicted or banned by IP.
    reserved: bool,
    /// When it last sent something new (protects it from eviction).
    last_useful_at: Option<MonoTime>,
    /// Its share of [`NetLoop::buffered_bytes`] at the last accounting.
    accounted_bytes: usize,
    /// The highest block it announced (shown by `getpeerinfo`, never trusted).
    announced_height: u64,
}

/// How a connection ended, for the peer book, bans and metrics.
enum Close {
    /// Remote closed, I/O error, or a local decision that blames no one.
    Quiet,
    /// Lost the one-connection-per-pair tie-break: no events, no backoff.
    Duplicate,
    /// An inbound stranger evicted to admit a newcomer.
    Evicted,
    /// The largest holder when all buffers together passed the budget.
    OverBudget,
    Error(PeerError),
}

struct NetLoop {
    poll: Poll,
    listener: TcpListener,
    config: NetConfig,
    identity: Keypair,
    local: LocalHello,
    limits: PeerLimits,
    conns: BTreeMap<Token, Conn>,
    next_token: usize,
    /// The one connection kept per established node.
    by_node: BTreeMap<NodeId, Token>,
    book: PeerBook,
    /// Connections with messages queued since the last flush.
    unflushed: BTreeSet<Token>,
    rng: ChaCha20Rng,
    commands: Receiver<NetCommand>,
    consensus_tx: Sender<NetEvent>,
    block_tx: Sender<NetEvent>,
    catch_up_tx: Sender<NetEvent>,
    delivered: SeenSet,
    relayed: SeenSet,
    shared: Arc<Shared>,
    /// Read buffers plus write queues over all connections (see `account`).
    buffered_bytes: usize,
    last_ping: MonoTime,
    last_get_peers: MonoTime,
}

impl NetLoop {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        let tick = Duration::from_millis(self.config.tick_ms.max(1));
        self.maintain(SystemClock.mono());
        loop {
            match self.poll.poll(&mut events, Some(tick)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = SystemClock.mono();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {}
                    token => self.on_socket(
                        token,
                        event.is_writable() || event.is_error(),
                        now,
                        &mut buf,
                    ),
                }
            }
            if self.drain_commands(now) {
                return Ok(());
            }
            self.maintain(now);
            self.flush_queued(now);
        }
    }

    fn nonce(&mut self) -> Hash {
        let mut nonce = [0u8; 32];
        self.rng.fill_bytes(&mut nonce);
        Hash(nonce)
    }

    fn add_conn(
        &mut self,
        mut stream: TcpStream,
        addr: SocketAddr,
        dialed: Option<SocketAddr>,
        now: MonoTime,
    ) {
        let token = Token(self.next_token);
        self.next_token += 1;
        // Polls are many small messages that must not wait for an ACK.
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY towards {addr}: {e}");
        }
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
            log::warn!("cannot register connection with {addr}: {e}");
            if let Some(d) = dialed {
                self.book.dial_failed(d, now);
            }
            return;
        }
        let nonce = self.nonce();
        let peer = Peer::new(
            addr,
            dialed.is_none(),
            self.local.clone(),
            nonce,
            now,
            self.limits.clone(),
        );
        self.conns.insert(
            token,
            Conn {
                stream,
                peer,
                connecting: dialed.is_some(),
                dialed,
                reserved: false,
                last_useful_at: None,
                accounted_bytes: 0,
                announced_height: 0,
            },
        );
        self.account(token);
    }

    fn accept_all(&mut self, now: MonoTime) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => {
                    match self.admission(addr, now) {
                        Admission::Admit => {}
                        Admission::Evict(victim) => {
                            bump(&self.shared.metrics.inbound_evicted);
                            self.close(Token(victim), Close::Evicted, now);
                        }
                        Admission::Refuse(refusal) => {
                            log::debug!("refusing {addr}: {}", refusal.name());
                            self.shared.metrics.refused(refusal);
                            continue; // dropping the stream closes it
                        }
                    }
                    bump(&self.shared.metrics.inbound_admitted);
                    self.add_conn(stream, addr, None, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: try again at the next readiness event.
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Whether a connection just accepted from `addr` may stay (see [`super::admission`]).
    fn admission(&self, addr: SocketAddr, now: MonoTime) -> Admission {
        let ip = addr.ip();
        if self.book.is_banned(&BanKey::Ip(ip), now) {
            return Admission::Refuse(Refusal::Banned);
        }
        let inbound: Vec<Slot> = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer.inbound)
            .map(|(token, c)| Slot {
                id: token.0,
                ip: c.peer.addr.ip(),
                connected_at: c.peer.connected_at,
                reserved: c.reserved,
                established: c.peer.node_id().is_some(),
                last_useful_at: c.last_useful_at,
            })
            .collect();
        let trusted = self.book.is_protected_ip(&ip);
        admit_inbound(&self.config.admission, &inbound, ip, trusted)
    }

    /// Brings `token`'s share of the buffer total up to date.
    fn account(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let held = conn.peer.buffered_bytes();
        self.buffered_bytes = self.buffered_bytes.saturating_sub(conn.accounted_bytes) + held;
        conn.accounted_bytes = held;
        let metrics = &self.shared.metrics;
        let total = self.buffered_bytes as u64;
        metrics.buffered_bytes.store(total, Ordering::Relaxed);
        metrics
            .buffered_bytes_peak
            .fetch_max(total, Ordering::Relaxed);
    }

    /// Closes the largest holders until all buffers fit the budget.
    fn enforce_budget(&mut self, now: MonoTime) {
        while self.buffered_bytes > self.config.buffer_budget_bytes {
            let holders: Vec<Holder> = self
                .conns
                .iter()
                .map(|(token, c)| Holder {
                    id: token.0,
                    bytes: c.accounted_bytes,
                    reserved: c.reserved,
                })
                .collect();
            let Some(victim) = budget_victim(&holders) else {
                return;
            };
            bump(&self.shared.metrics.budget_disconnects);
            self.close(Token(victim), Close::OverBudget, now);
        }
    }

    fn on_socket(&mut self, token: Token, writable: bool, now: MonoTime, buf: &mut [u8]) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.connecting {
            if !writable {
                return;
            }
            match conn.stream.take_error() {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return self.close(token, Close::Quiet, now),
            }
            match conn.stream.peer_addr() {
                Ok(_) => conn.connecting = false,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.close(token, Close::Quiet, now),
            }
        }
        let mut peer_events = Vec::new();
        let result = loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            match conn.stream.read(buf) {
                Ok(0) => break Err(Close::Quiet),
                Ok(n) => {
                    self.shared
                        .metrics
                        .bytes_in
                        .fetch_add(n as u64, Ordering::Relaxed);
                    let bytes = buf.get(..n).unwrap_or_default();
                    if let Err(e) = conn
                        .peer
                        .receive(now, bytes, &self.identity, &mut peer_events)
                    {
                        break Err(Close::Error(e));
                    }
                    self.handle_peer_events(token, &mut peer_events, now);
                    // Checked at every chunk: one fast sender cannot overshoot by more.
                    self.account(token);
                    self.enforce_budget(now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break Err(Close::Quiet),
            }
        };
        // Events decoded before an error still count (e.g. the frames before garbage).
        self.handle_peer_events(token, &mut peer_events, now);
        match result {
            Ok(()) => self.flush(token, now),
            Err(close) => self.close(token, close, now),
        }
    }

    fn handle_peer_events(&mut self, token: Token, events: &mut Vec<PeerEvent>, now: MonoTime) {
        for event in events.drain(..) {
            match event {
                PeerEvent::Established(hello) => self.on_established(token, hello, now),
                PeerEvent::Message { msg, hash } => self.on_message(token, msg, hash, now),
                PeerEvent::RateLimited(tag) => self.shared.metrics.rate_limited(tag.class()),
                PeerEvent::Unsolicited(_) => bump(&self.shared.metrics.unsolicited_responses),
            }
        }
    }

    fn on_established(&mut self, token: Token, hello: PeerHello, now: MonoTime) {
        let Some(conn) = self.conns.get(&token) else {
            return;
        };
        let (addr, inbound, dialed) = (conn.peer.addr, conn.peer.inbound, conn.dialed);
        if let Some(d) = dialed {
            self.book.dial_proved(d, hello.node_id);
        }
        if self.book.is_banned(&BanKey::Node(hello.node_id), now) {
            return self.close(token, Close::Quiet, now);
        }
        if let Some(&existing) = self.by_node.get(&hello.node_id) {
            let existing_outbound = self.conns.get(&existing).is_some_and(|c| !c.peer.inbound);
            bump(&self.shared.metrics.duplicate_connections);
            if !new_connection_wins(
                &self.local.node_id,
                &hello.node_id,
                existing_outbound,
                !inbound,
            ) {
                return self.close(token, Close::Duplicate, now);
            }
            self.by_node.insert(hello.node_id, token);
            self.close(existing, Close::Duplicate, now);
        } else {
            self.by_node.insert(hello.node_id, token);
            self.shared
                .metrics
                .peers
                .store(self.by_node.len() as u64, Ordering::Relaxed);
            let event = NetEvent::PeerConnected {
                node_id: hello.node_id,
                addr,
                inbound,
                tip_height: hello.tip_height,
            };
            self.deliver(MessageClass::TxGossip, event.clone());
            self.deliver(MessageClass::Block, event.clone());
            self.deliver_catch_up(event);
        }
        if let Some(reachable) = dialed.or(hello.listen_addr) {
            self.book.connected(reachable, hello.node_id, now);
        }
        let validator = self.limits.validators.contains(&hello.node_id);
        if validator {
            self.book.validator_seen(hello.node_id, addr.ip());
        }
        let reserved = validator || self.book.is_configured_node(&hello.node_id);
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.reserved = reserved;
        }
        self.send(token, &Message::GetPeers, now);
    }

    fn on_message(&mut self, token: Token, msg: Message, hash: Option<Hash>, now: MonoTime) {
        let Some(from) = self.conns.get(&token).and_then(|c| c.peer.node_id()) else {
            return;
        };
        let tag = msg.tag();
        self.shared.metrics.message_in(tag);
        if let Message::Consensus(ConsensusMessage::Votes { verdicts, .. }) = &msg {
            for (_, verdict) in verdicts {
                self.shared.metrics.verdict_in(*verdict);
            }
        }
        if let Message::BlockAnnounce { height, .. } = &msg {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.announced_height = conn.announced_height.max(*height);
            }
        }
        match msg {
            Message::GetPeers => {
                let addrs = self
                    .book
                    .addrs_to_share(self.config.messages.max_peer_addrs);
                self.send(token, &Message::Peers { addrs }, now);
            }
            Message::Peers { addrs } => self.book.add_gossiped(&addrs, now),
            Message::Pong { .. } => {}
            msg @ Message::GetRecentProofs { .. } => {
                self.deliver_catch_up(NetEvent::Message { from, msg })
            }
            _ if hash.is_some_and(|h| !self.delivered.insert(h)) => {
                bump(&self.shared.metrics.gossip_duplicates);
            }
            msg => {
                if is_useful(tag) {
                    if let Some(conn) = self.conns.get_mut(&token) {
                        conn.last_useful_at = Some(now);
                    }
                }
                self.deliver(tag.class(), NetEvent::Message { from, msg });
            }
        }
    }

    /// Routes to the block or the consensus outbox; a full one drops and counts.
    fn deliver(&self, class: MessageClass, event: NetEvent) {
        let outbox = match class {
            MessageClass::Block => &self.block_tx,
            _ => &self.consensus_tx,
        };
        if let Err(TrySendError::Full(_)) = outbox.try_send(event) {
            bump(&self.shared.metrics.outbox_drops);
        }
    }

    /// Routes to the catch-up thread's outbox; a full one drops and counts.
    /// Nobody reading it (a node without one) only fills it.
    fn deliver_catch_up(&self, event: NetEvent) {
        if let Err(TrySendError::Full(_)) = self.catch_up_tx.try_send(event) {
            bump(&self.shared.metrics.outbox_drops);
        }
    }

    fn send(&mut self, token: Token, msg: &Message, now: MonoTime) {
        self.send_payload(token, msg.tag(), &msg.encode(), now);
    }

    /// Queues a message; it is written at the end of this wake-up.
    fn send_payload(&mut self, token: Token, tag: MessageTag, payload: &[u8], now: MonoTime) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match conn.peer.send_payload(tag, payload) {
            Ok(()) => {
                self.shared.metrics.message_out(tag);
                self.unflushed.insert(token);
                self.account(token);
                self.enforce_budget(now);
            }
            Err(e) => self.close(token, Close::Error(e), now),
        }
    }

    /// Writes what this wake-up queued, one batch per connection.
    fn flush_queued(&mut self, now: MonoTime) {
        for token in std::mem::take(&mut self.unflushed) {
            self.flush(token, now);
        }
    }

    /// Writes queued frames until the socket would block.
    fn flush(&mut self, token: Token, now: MonoTime) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.connecting {
            return;
        }
        let result = Self::write_queued(conn, &self.shared.metrics);
        self.account(token);
        if result.is_err() {
            self.close(token, Close::Quiet, now);
        }
    }

    /// Writes until the queue is empty or the socket would block; `Err` if it is closed.
    fn write_queued(conn: &mut Conn, metrics: &NetMetrics) -> Result<(), ()> {
        while !conn.peer.write_queue().is_empty() {
            match conn.peer.write_queue().write_to(&mut conn.stream) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    metrics.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }

    fn close(&mut self, token: Token, close: Close, now: MonoTime) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.buffered_bytes = self.buffered_bytes.saturating_sub(conn.accounted_bytes);
        let node_id = conn.peer.node_id();
        let metrics = &self.shared.metrics;
        metrics
            .buffered_bytes
            .store(self.buffered_bytes as u64, Ordering::Relaxed);
        match &close {
            Close::Evicted => log::debug!("evicted inbound {} ({node_id:?})", conn.peer.addr),
            Close::OverBudget => log::info!(
                "closing {} ({node_id:?}): its {} buffered bytes passed the budget of {} over all peers",
                conn.peer.addr,
                conn.accounted_bytes,
                self.config.buffer_budget_bytes
            ),
            Close::Quiet | Close::Duplicate | Close::Error(_) => {}
        }
        if let Some(dialed) = conn.dialed {
            match (&close, node_id) {
                (Close::Error(PeerError::Handshake(HandshakeError::SelfConnection)), _) => {
                    self.book.is_own_addr(dialed)
                }
                (_, None) => self.book.dial_failed(dialed, now),
                (_, Some(_)) => self.book.disconnected(dialed, now),
            }
        } else if let Some(listen) = conn.peer.hello().and_then(|h| h.listen_addr) {
            if !matches!(close, Close::Duplicate) {
                self.book.disconnected(listen, now);
            }
        }
        if let Close::Error(e) = &close {
            if e.deserves_ban() {
                bump(&metrics.misbehaviour_disconnects);
                // A validator's or configured peer's IP may host other
                // nodes: its id answers for it.
                let ip_banned =
                    !conn.reserved && self.book.ban(BanKey::Ip(conn.peer.addr.ip()), now);
                if let Some(n) = node_id {
                    self.book.ban(BanKey::Node(n), now);
                }
                let banned = match (ip_banned, node_id.is_some()) {
                    (true, true) => "banned by address and node id",
                    (true, false) => "banned by address",
                    (false, true) => "banned by node id",
                    (false, false) => "not banned: a configured peer's or validator's host",
                };
                log::info!("closing {} ({node_id:?}), {banned}: {e}", conn.peer.addr);
            } else {
                log::debug!("closing {}: {e}", conn.peer.addr);
                match e {
                    PeerError::WriteQueueFull(_) => bump(&metrics.write_queue_overflows),
                    PeerError::Handshake(HandshakeError::SelfConnection) => {}
                    PeerError::Handshake(_) => bump(&metrics.handshake_drops),
                    _ => {}
                }
            }
        }
        if let Some(n) = node_id {
            if self.by_node.get(&n) == Some(&token) {
                self.by_node.remove(&n);
                metrics
                    .peers
                    .store(self.by_node.len() as u64, Ordering::Relaxed);
                let event = NetEvent::PeerDisconnected { node_id: n };
                self.deliver(MessageClass::TxGossip, event.clone());
                self.deliver(MessageClass::Block, event.clone());
                self.deliver_catch_up(event);
            }
        }
    }

    /// Executes pending commands; true on shutdown.
    fn drain_commands(&mut self, now: MonoTime) -> bool {
        // Before the first receive: a command sent from here on wakes us again.
        self.shared.wake_pending.store(false, Ordering::SeqCst);
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(crossbeam_channel::TryRecvError::Empty) => return false,
                // Every handle is gone: nobody can use the network any more.
                Err(crossbeam_channel::TryRecvError::Disconnected) => return true,
            };
            match command {
                NetCommand::SendTo(node_id, msg) => {
                    if let Some(&token) = self.by_node.get(&node_id) {
                        self.send(token, &msg, now);
                    }
                }
                NetCommand::Broadcast { msg, skip } => self.broadcast(&msg, &skip, false, now),
                NetCommand::RelayToObservers { msg, skip } => {
                    self.broadcast(&msg, &skip, true, now)
                }
                NetCommand::Disconnect(node_id) => {
                    if let Some(&token) = self.by_node.get(&node_id) {
                        self.close(token, Close::Quiet, now);
                    }
                }
                NetCommand::Penalize {
                    node_id,
                    points,
                    reason,
                } => self.penalize(node_id, points, reason, now),
                NetCommand::AddPeer(addr) => self.book.add_configured(addr, now),
                NetCommand::SetTipHeight(h) => self.local.tip_height = h,
                NetCommand::SetValidators(ids) => self.set_validators(ids),
                NetCommand::Shutdown => return true,
            }
        }
    }

    /// New validators' established connections move to reserved slots at
    /// once; former ones fall back to the strangers' rules.
    fn set_validators(&mut self, ids: BTreeSet<NodeId>) {
        let ids = Arc::new(ids);
        self.limits.validators = Arc::clone(&ids);
        self.book.keep_validators(&ids);
        for conn in self.conns.values_mut() {
            conn.peer.set_validators(Arc::clone(&ids));
            // A handshaking peer is judged when its hello arrives.
            let Some(node_id) = conn.peer.node_id() else {
                continue;
            };
            let validator = ids.contains(&node_id);
            if validator {
                self.book.validator_seen(node_id, conn.peer.addr.ip());
            }
            conn.reserved = validator || self.book.is_configured_node(&node_id);
        }
    }

    fn penalize(&mut self, node_id: NodeId, points: u32, reason: &'static str, now: MonoTime) {
        let Some(&token) = self.by_node.get(&node_id) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if let Err(e) = conn.peer.penalize(points, reason) {
            self.close(token, Close::Error(e), now);
        }
    }

    /// To every peer but `skip` (and, if `observers_only`, but validators).
    fn broadcast(&mut self, msg: &Message, skip: &[NodeId], observers_only: bool, now: MonoTime) {
        let payload = msg.encode();
        if msg.tag().is_gossip() && !self.relayed.insert(Hash::digest(&payload)) {
            bump(&self.shared.metrics.gossip_suppressed);
            return;
        }
        let validators = &self.limits.validators;
        let tokens: Vec<Token> = self
            .by_node
            .iter()
            .filter(|(node, _)| !skip.contains(node))
            .filter(|(node, _)| !observers_only || !validators.contains(*node))
            .map(|(_, token)| *token)
            .collect();
        for token in tokens {
            self.send_payload(token, msg.tag(), &payload, now);
        }
    }

    /// Timers: handshake deadlines, dials, pings, peer discovery, bans, snapshots.
    fn maintain(&mut self, now: MonoTime) {
        let expired: Vec<(Token, PeerError)> = self
            .conns
            .iter()
            .filter_map(|(t, c)| c.peer.check_deadline(now).err().map(|e| (*t, e)))
            .collect();
        for (token, e) in expired {
            self.close(token, Close::Error(e), now);
        }
        let outbound = self.conns.values().filter(|c| !c.peer.inbound).count();
        let budget = self.config.max_outbound_peers.saturating_sub(outbound);
        let by_node = &self.by_node;
        for addr in self
            .book
            .dials_due(now, budget, |n| by_node.contains_key(n))
        {
            bump(&self.shared.metrics.dials);
            match TcpStream::connect(addr) {
                Ok(stream) => self.add_conn(stream, addr, Some(addr), now),
                Err(_) => self.book.dial_failed(addr, now),
            }
        }
        if now.saturating_since(self.last_ping).as_millis() as u64 >= self.config.ping_interval_ms {
            self.last_ping = now;
            let nonce = self.rng.next_u64();
            self.broadcast(&Message::Ping { nonce }, &[], false, now);
        }
        if now.saturating_since(self.last_get_peers).as_millis() as u64
            >= self.config.get_peers_interval_ms
        {
            self.last_get_peers = now;
            self.broadcast(&Message::GetPeers, &[], false, now);
        }
        self.book.expire_bans(now);
        self.publish();
    }

    fn publish(&self) {
        let metrics = &self.shared.metrics;
        metrics
            .bans
            .store(self.book.ban_count() as u64, Ordering::Relaxed);
        let infos: Vec<PeerInfo> = self
            .conns
            .values()
            .map(|c| PeerInfo {
                node_id: c.peer.node_id(),
                addr: c.peer.addr,
                inbound: c.peer.inbound,
                connected_at: c.peer.connected_at,
                tip_height: c.peer.hello().map(|h| h.tip_height.max(c.announced_height)),
                queued_bytes: c.peer.queued_bytes(),
                buffered_bytes: c.accounted_bytes,
                misbehaviour_score: c.peer.score(),
                validator: c.peer.is_validator(),
                reserved: c.reserved,
            })
            .collect();
        let max_queue = infos.iter().map(|p| p.queued_bytes).max().unwrap_or(0);
        metrics
            .max_write_queue_bytes
            .fetch_max(max_queue as u64, Ordering::Relaxed);
        match self.shared.peers.lock() {
            Ok(mut p) => *p = infos,
            Err(poisoned) => *poisoned.into_inner() = infos,
        }
    }
}

/// Whether a message shows the peer serves us (fresh gossip, answers,
/// blocks): such peers are protected from eviction.
fn is_useful(tag: MessageTag) -> bool {
    tag.is_gossip()
        || matches!(
            tag,
            MessageTag::Votes | MessageTag::Txs | MessageTag::BlockAnnounce | MessageTag::Blocks
        )
}
