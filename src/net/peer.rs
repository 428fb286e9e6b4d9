//! One connection's protocol state: frame decoder, handshake, a byte-capped
//! write queue, per-class token buckets for requests, credits for responses
//! ([`super::rate_limit`]) and a misbehaviour score.
//!
//! Sans-IO: the event loop feeds it received bytes and `now`, and drains its
//! write queue into the socket. It never touches a socket, a clock or an RNG,
//! and nothing a peer sends can make it buffer without bound: a peer that
//! does not read is cut off when its queue passes the cap. A validator's
//! messages over a limit are dropped but never scored: only malformed or
//! forged input can get a validator disconnected.

use super::frame::{encode_frame, FrameDecoder, FrameError};
use super::handshake::{Handshake, HandshakeError, LocalHello, PeerHello};
use super::message::{Message, MessageClass, MessageError, MessageLimits, MessageTag};
use super::rate_limit::{cost, Admission, RateLimits, ResponseCredits, TokenBucket};
use crate::consensus::messages::NodeId;
use crate::crypto::Keypair;
use crate::time::MonoTime;
use crate::types::Hash;
use std::collections::{BTreeSet, VecDeque};
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Score at which a peer is disconnected and banned.
pub const BAN_SCORE: u32 = 100;
/// Per message dropped for exceeding its class's rate, or a response we never asked for.
pub const RATE_LIMIT_PENALTY: u32 = 10;
/// Per message with a tag we do not know (a newer peer might send one).
pub const UNKNOWN_TAG_PENALTY: u32 = 20;
/// Per block that is provably invalid (a bad ticket, signature, proof,
/// reward...): an honest producer never sends one, but a node on a buggy
/// build might, so it takes several to ban.
pub const INVALID_BLOCK_PENALTY: u32 = 25;
/// Per window vote or proof that is provably invalid (a bad signature, a
/// non-validator's vote, a failing proof): every node checks what it relays,
/// so an honest peer never sends one; two ban.
pub const INVALID_CONSENSUS_PENALTY: u32 = 50;

/// Frames handed to one vectored write (Linux allows 1,024).
const MAX_IOVECS: usize = 64;

/// Frames waiting for the socket, capped in bytes.
#[derive(Debug, Default)]
pub struct WriteQueue {
    frames: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written.
    offset: usize,
    bytes: usize,
    cap_bytes: usize,
}

/// Queuing would pass the cap: the peer is not reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("write queue would hold {would_hold} bytes, over the cap of {cap_bytes}: the peer is not reading")]
pub struct WriteQueueFull {
    pub would_hold: usize,
    pub cap_bytes: usize,
}

impl WriteQueue {
    pub fn new(cap_bytes: usize) -> WriteQueue {
        WriteQueue {
            cap_bytes,
            ..WriteQueue::default()
        }
    }

    pub fn push(&mut self, frame: Vec<u8>) -> Result<(), WriteQueueFull> {
        let would_hold = self.bytes.saturating_add(frame.len());
        if would_hold > self.cap_bytes {
            return Err(WriteQueueFull {
                would_hold,
                cap_bytes: self.cap_bytes,
            });
        }
        self.bytes = would_hold;
        self.frames.push_back(frame);
        Ok(())
    }

    /// Writes as many queued frames as `out` takes in one vectored write
    /// (one syscall and, on TCP, as few segments as the kernel can make of
    /// them, instead of one of each per frame). Returns the bytes written.
    pub fn write_to(&mut self, out: &mut impl Write) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut used = 0;
        for (slot, frame) in slices.iter_mut().zip(&self.frames) {
            let unwritten = if used == 0 {
                frame.get(self.offset..).unwrap_or_default()
            } else {
                frame
            };
            *slot = IoSlice::new(unwritten);
            used += 1;
        }
        let n = out.write_vectored(slices.get(..used).unwrap_or_default())?;
        self.advance(n);
        Ok(n)
    }

    /// Records that `n` bytes from the front of the queue were written.
    fn advance(&mut self, mut n: usize) {
        self.bytes = self.bytes.saturating_sub(n);
        while let Some(front) = self.frames.front() {
            let left = front.len().saturating_sub(self.offset);
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.frames.pop_front();
            self.offset = 0;
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Per-connection limits, shared by every peer.
#[derive(Clone, Debug)]
pub struct PeerLimits {
    pub messages: MessageLimits,
    pub write_queue_bytes_max: usize,
    pub rate_limits: RateLimits,
    pub handshake_timeout_ms: u64,
    /// The frame cap until the handshake completes: a `Hello` fits, so a
    /// stranger cannot make us buffer a large frame before proving anything.
    pub handshake_frame_bytes_max: usize,
    /// Node ids (the validator set) whose messages over a limit are dropped
    /// without a score: an honest validator is never at fault for our
    /// limits, and disconnecting one costs every poll that samples it.
    pub validators: Arc<BTreeSet<NodeId>>,
}

/// Why a connection must close. [`PeerError::deserves_ban`] says whether the peer is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    #[error("message: {0}")]
    Message(#[from] MessageError),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("misbehaviour score reached {score} (last: {last})")]
    Misbehaving { score: u32, last: &'static str },
    #[error("{0}")]
    WriteQueueFull(#[from] WriteQueueFull),
}

impl PeerError {
    pub fn deserves_ban(&self) -> bool {
        match self {
            PeerError::Handshake(h) => h.deserves_ban(),
            PeerError::Frame(_) | PeerError::Message(_) | PeerError::Misbehaving { .. } => true,
            // Slow is not malicious: disconnect, let it come back.
            PeerError::WriteQueueFull(_) => false,
        }
    }
}

/// What a connection produced from received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The handshake completed: the peer proved `node_id`.
    Established(PeerHello),
    /// A message for the node (not `Hello`, `HelloAck` or `Ping`, handled here);
    /// for gossip, `hash` identifies its bytes for deduplication.
    Message { msg: Message, hash: Option<Hash> },
    /// A request dropped for exceeding its class's rate.
    RateLimited(MessageTag),
    /// A response (`Votes`, `Txs`) to no request of ours on this connection, dropped.
    Unsolicited(MessageTag),
}

#[derive(Debug)]
enum PeerState {
    Handshaking(Box<Handshake>),
    Established(PeerHello),
}

/// One connection.
#[derive(Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub inbound: bool,
    pub connected_at: MonoTime,
    limits: PeerLimits,
    decoder: FrameDecoder,
    queue: WriteQueue,
    /// One per [`MessageClass`], in [`MessageClass::ALL`] order.
    buckets: [TokenBucket; 4],
    credits: ResponseCredits,
    score: u32,
    state: PeerState,
}

impl Peer {
    /// A new connection; its `Hello` is already queued.
    pub fn new(
        addr: SocketAddr,
        inbound: bool,
        local: LocalHello,
        nonce: Hash,
        now: MonoTime,
        limits: PeerLimits,
    ) -> Peer {
        let (handshake, hello) = Handshake::start(local, nonce, now, limits.handshake_timeout_ms);
        let r = limits.rate_limits;
        let decoder = FrameDecoder::new(limits.handshake_frame_bytes_max);
        let queue = WriteQueue::new(limits.write_queue_bytes_max);
        let mut peer = Peer {
            addr,
            inbound,
            connected_at: now,
            limits,
            decoder,
            queue,
            buckets: MessageClass::ALL.map(|class| TokenBucket::new(r.of(class), now)),
            credits: ResponseCredits::default(),
            score: 0,
            state: PeerState::Handshaking(Box::new(handshake)),
        };
        // An empty queue always has room for a Hello (config validation keeps the cap above it).
        let _ = peer.send(&hello);
        peer
    }

    pub fn node_id(&self) -> Option<NodeId> {
        match &self.state {
            PeerState::Established(h) => Some(h.node_id),
            PeerState::Handshaking(_) => None,
        }
    }

    pub fn hello(&self) -> Option<&PeerHello> {
        match &self.state {
            PeerState::Established(h) => Some(h),
            PeerState::Handshaking(_) => None,
        }
    }

    pub fn score(&self) -> u32 {
        self.score
    }

    pub fn write_queue(&mut self) -> &mut WriteQueue {
        &mut self.queue
    }

    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Memory this connection holds in buffers: the frame being received and the write queue.
    pub fn buffered_bytes(&self) -> usize {
        self.decoder
            .buffered_bytes()
            .saturating_add(self.queue.bytes())
    }

    /// The validators' node ids from now on.
    pub fn set_validators(&mut self, ids: Arc<BTreeSet<NodeId>>) {
        self.limits.validators = ids;
    }

    /// Whether the peer proved a node id of the validator set.
    pub fn is_validator(&self) -> bool {
        self.node_id()
            .is_some_and(|id| self.limits.validators.contains(&id))
    }

    /// Queues `msg`.
    pub fn send(&mut self, msg: &Message) -> Result<(), PeerError> {
        self.send_payload(msg.tag(), &msg.encode())
    }

    /// Queues an already encoded message with `tag` (a broadcast encodes
    /// once); a request earns the credit for its response.
    pub fn send_payload(&mut self, tag: MessageTag, payload: &[u8]) -> Result<(), PeerError> {
        // Our own messages over the frame limit are a local bug; never send them.
        let frame = match encode_frame(payload, self.limits.messages.max_frame_bytes) {
            Ok(frame) => frame,
            Err(e) => {
                log::error!("not sending to {}: {e}", self.addr);
                return Ok(());
            }
        };
        self.queue.push(frame)?;
        self.credits.on_sent(tag);
        Ok(())
    }

    /// Errs once the handshake deadline passed.
    pub fn check_deadline(&self, now: MonoTime) -> Result<(), PeerError> {
        match &self.state {
            PeerState::Handshaking(h) => Ok(h.check_deadline(now)?),
            PeerState::Established(_) => Ok(()),
        }
    }

    /// Decodes `bytes` and handles the handshake; appends what the node must see to `events`.
    pub fn receive(
        &mut self,
        now: MonoTime,
        bytes: &[u8],
        identity: &Keypair,
        events: &mut Vec<PeerEvent>,
    ) -> Result<(), PeerError> {
        // Frame by frame: the handshake's completion raises the cap for the next one.
        let mut rest = bytes;
        while let Some(payload) = self.decoder.next_frame(&mut rest)? {
            self.receive_frame(now, &payload, identity, events)?;
        }
        Ok(())
    }

    /// Adds `points` to the misbehaviour score; errs (close and ban) once
    /// it reaches [`BAN_SCORE`].
    pub fn penalize(&mut self, points: u32, last: &'static str) -> Result<(), PeerError> {
        self.score = self.score.saturating_add(points);
        if self.score >= BAN_SCORE {
            return Err(PeerError::Misbehaving {
                score: self.score,
                last,
            });
        }
        Ok(())
    }

    fn receive_frame(
        &mut self,
        now: MonoTime,
        payload: &[u8],
        identity: &Keypair,
        events: &mut Vec<PeerEvent>,
    ) -> Result<(), PeerError> {
        let msg = match Message::decode(payload, &self.limits.messages) {
            Ok(msg) => msg,
            Err(MessageError::UnknownTag { .. }) => {
                return self.penalize(UNKNOWN_TAG_PENALTY, "unknown message tag")
            }
            Err(e) => return Err(e.into()),
        };
        let tag = msg.tag();
        let refused = match self.credits.on_received(tag) {
            Admission::Owed => None,
            Admission::Unsolicited => Some((
                PeerEvent::Unsolicited(tag),
                "a response to no request of ours",
            )),
            Admission::Request => {
                let admitted = self
                    .buckets
                    .get_mut(tag.class().index())
                    .is_some_and(|b| b.try_take_n(now, cost(&msg)));
                (!admitted).then_some((PeerEvent::RateLimited(tag), "message rate over its limit"))
            }
        };
        if let Some((event, why)) = refused {
            events.push(event);
            if self.is_validator() {
                return Ok(());
            }
            return self.penalize(RATE_LIMIT_PENALTY, why);
        }
        match (&mut self.state, msg) {
            (PeerState::Handshaking(hs), Message::Hello(hello)) => {
                let ack = hs.on_hello(hello, identity)?;
                self.send(&ack)?;
            }
            (PeerState::Handshaking(hs), Message::HelloAck { signature }) => {
                hs.on_ack(signature)?;
            }
            (PeerState::Handshaking(_), _) => {
                return Err(HandshakeError::OutOfOrder { what: tag.name() }.into())
            }
            (PeerState::Established(_), Message::Hello(_) | Message::HelloAck { .. }) => {
                return Err(HandshakeError::OutOfOrder {
                    what: "a handshake message after the handshake",
                }
                .into())
            }
            (PeerState::Established(_), Message::Ping { nonce }) => {
                self.send(&Message::Pong { nonce })?;
            }
            (PeerState::Established(_), msg) => {
                // Only gossip is deduplicated: hashing every poll would cost as much as reading it.
                let hash = tag.is_gossip().then(|| Hash::digest(payload));
                events.push(PeerEvent::Message { msg, hash });
            }
        }
        if let PeerState::Handshaking(hs) = &self.state {
            if let Some(hello) = hs.completed() {
                events.push(PeerEvent::Established(hello.clone()));
                self.state = PeerState::Established(hello);
                self.decoder
                    .set_max_frame_bytes(self.limits.messages.max_frame_bytes);
                if !self.is_validator() {
                    let limit = self.limits.rate_limits.of_stranger_polls();
                    if let Some(bucket) = self.buckets.get_mut(MessageClass::Poll.index()) {
                        *bucket = TokenBucket::new(limit, now);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::consensus::messages::{ConsensusMessage, Verdict};
    use crate::net::rate_limit::RateLimit;
    use crate::types::ChainId;

    pub(crate) fn limits() -> PeerLimits {
        PeerLimits {
            messages: MessageLimits::default(),
            write_queue_bytes_max: 4096,
            rate_limits: RateLimits::default(),
            handshake_timeout_ms: 1000,
            handshake_frame_bytes_max: 1024,
            validators: Arc::default(),
        }
    }

    /// [`limits`] with a poll bucket of 5 tokens refilled at 1 a second.
    fn tight_poll_limits() -> PeerLimits {
        let mut l = limits();
        l.rate_limits.poll = RateLimit {
            burst: 5,
            per_sec: 1,
        };
        l
    }

    fn local(key: &Keypair) -> LocalHello {
        LocalHello {
            chain_id: ChainId(3),
            genesis_hash: Hash::digest(b"genesis"),
            node_id: key.public(),
            listen_addr: None,
            tip_height: 0,
        }
    }

    fn drain(peer: &mut Peer) -> Vec<u8> {
        let mut out = Vec::new();
        while !peer.write_queue().is_empty() {
            peer.write_queue().write_to(&mut out).unwrap();
        }
        out
    }

    /// Two peers with completed handshakes, as seen from each side.
    pub(crate) fn connected(limits: PeerLimits) -> (Keypair, Peer, Keypair, Peer) {
        let (ka, kb) = (Keypair::from_seed_label("a"), Keypair::from_seed_label("b"));
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let now = MonoTime(0);
        let mut a = Peer::new(
            addr,
            false,
            local(&ka),
            Hash::digest(b"na"),
            now,
            limits.clone(),
        );
        let mut b = Peer::new(addr, true, local(&kb), Hash::digest(b"nb"), now, limits);
        let mut events = Vec::new();
        for _ in 0..2 {
            let to_b = drain(&mut a);
            b.receive(now, &to_b, &kb, &mut events).unwrap();
            let to_a = drain(&mut b);
            a.receive(now, &to_a, &ka, &mut events).unwrap();
        }
        assert_eq!(a.node_id(), Some(kb.public()));
        assert_eq!(b.node_id(), Some(ka.public()));
        (ka, a, kb, b)
    }

    /// An inbound connection before its handshake, and the local key.
    fn stranger() -> (Keypair, Peer) {
        let kb = Keypair::from_seed_label("b");
        let peer = Peer::new(
            "127.0.0.1:1".parse().unwrap(),
            true,
            local(&kb),
            Hash::ZERO,
            MonoTime(0),
            limits(),
        );
        (kb, peer)
    }

    fn frame_of(msg: &Message) -> Vec<u8> {
        encode_frame(&msg.encode(), 1 << 20).unwrap()
    }

    #[test]
    fn handshake_completes_and_messages_flow() {
        let (_, mut a, kb, mut b) = connected(limits());
        let msg = Message::Consensus(ConsensusMessage::GetTxs { txids: vec![] });
        a.send(&msg).unwrap();
        let mut events = Vec::new();
        b.receive(MonoTime(1), &drain(&mut a), &kb, &mut events)
            .unwrap();
        assert!(matches!(&events[..], [PeerEvent::Message { msg: m, .. }] if *m == msg));
    }

    #[test]
    fn a_message_before_the_handshake_is_refused() {
        let (kb, mut b) = stranger();
        let err = b
            .receive(
                MonoTime(0),
                &frame_of(&Message::GetPeers),
                &kb,
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(matches!(
            err,
            PeerError::Handshake(HandshakeError::OutOfOrder { .. })
        ));
        assert!(err.deserves_ban());
    }

    fn query_frame(txids: usize) -> Vec<u8> {
        frame_of(&Message::Consensus(ConsensusMessage::Query {
            request_id: 0,
            txids: vec![Hash::ZERO; txids],
        }))
    }

    fn votes_frame() -> Vec<u8> {
        frame_of(&Message::Consensus(ConsensusMessage::Votes {
            request_id: 0,
            verdicts: vec![(Hash::ZERO, Verdict::Valid)],
        }))
    }

    fn delivered(events: &[PeerEvent]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, PeerEvent::Message { .. }))
            .count()
    }

    #[test]
    fn rate_limit_trips_into_a_ban_score() {
        let (_, _, kb, mut b) = connected(tight_poll_limits());
        let query = query_frame(0);
        let mut events = Vec::new();
        for _ in 0..5 {
            b.receive(MonoTime(0), &query, &kb, &mut events).unwrap();
        }
        let mut result = Ok(());
        let mut dropped = 0;
        while result.is_ok() {
            result = b.receive(MonoTime(0), &query, &kb, &mut events);
            dropped += 1;
        }
        assert_eq!(dropped, (BAN_SCORE / RATE_LIMIT_PENALTY) as usize);
        assert!(matches!(result, Err(PeerError::Misbehaving { .. })));
        assert_eq!(delivered(&events), 5);
    }

    #[test]
    fn a_query_is_charged_per_txid() {
        let (_, _, kb, mut b) = connected(tight_poll_limits());
        let mut events = Vec::new();
        b.receive(MonoTime(0), &query_frame(3), &kb, &mut events)
            .unwrap();
        b.receive(MonoTime(0), &query_frame(3), &kb, &mut events)
            .unwrap();
        assert_eq!(delivered(&events), 1);
        assert!(matches!(
            events.last(),
            Some(PeerEvent::RateLimited(MessageTag::Query))
        ));
    }

    #[test]
    fn a_validator_over_its_limit_is_dropped_but_never_scored() {
        let mut l = tight_poll_limits();
        // `connected` names "a" as b's peer.
        l.validators = Arc::new([Keypair::from_seed_label("a").public()].into());
        let (_, _, kb, mut b) = connected(l);
        let mut events = Vec::new();
        for _ in 0..10 * BAN_SCORE {
            b.receive(MonoTime(0), &query_frame(1), &kb, &mut events)
                .unwrap();
            b.receive(MonoTime(0), &votes_frame(), &kb, &mut events)
                .unwrap();
        }
        assert_eq!(delivered(&events), 5);
        assert_eq!(b.score(), 0);
    }

    #[test]
    fn a_stranger_may_poll_only_what_its_work_budget_answers() {
        let mut l = limits();
        l.rate_limits.poll = RateLimit {
            burst: 50,
            per_sec: 1,
        };
        l.rate_limits.stranger_poll = RateLimit {
            burst: 5,
            per_sec: 1,
        };
        let flood = |l: PeerLimits| {
            let (_, _, kb, mut b) = connected(l);
            let mut events = Vec::new();
            for _ in 0..20 {
                // A stranger over its limit is scored, and cut off in the end.
                let _ = b.receive(MonoTime(0), &query_frame(1), &kb, &mut events);
            }
            delivered(&events)
        };
        assert_eq!(flood(l.clone()), 5);
        // `connected` names "a" as b's peer: as a validator it keeps `poll`.
        l.validators = Arc::new([Keypair::from_seed_label("a").public()].into());
        assert_eq!(flood(l), 20);
    }

    #[test]
    fn votes_pass_only_as_answers_to_our_queries() {
        // A poll bucket this small would throttle any peer's answers if
        // answers were charged to it: they are not, they spend credits.
        let (_, _, kb, mut b) = connected(tight_poll_limits());
        let mut events = Vec::new();
        for _ in 0..100 {
            b.send(&Message::Consensus(ConsensusMessage::Query {
                request_id: 0,
                txids: vec![],
            }))
            .unwrap();
            drain(&mut b);
            b.receive(MonoTime(0), &votes_frame(), &kb, &mut events)
                .unwrap();
        }
        assert_eq!(delivered(&events), 100);
        assert_eq!(b.score(), 0);
        // One more is unsolicited: dropped and scored.
        b.receive(MonoTime(0), &votes_frame(), &kb, &mut events)
            .unwrap();
        assert_eq!(delivered(&events), 100);
        assert!(matches!(
            events.last(),
            Some(PeerEvent::Unsolicited(MessageTag::Votes))
        ));
        assert_eq!(b.score(), RATE_LIMIT_PENALTY);
    }

    #[test]
    fn write_queue_refuses_past_its_cap() {
        let mut q = WriteQueue::new(10);
        q.push(vec![0; 6]).unwrap();
        assert_eq!(
            q.push(vec![0; 5]),
            Err(WriteQueueFull {
                would_hold: 11,
                cap_bytes: 10
            })
        );
        q.advance(4);
        assert_eq!(q.bytes(), 2);
        q.push(vec![1; 5]).unwrap();
        q.advance(2);
        assert_eq!(q.bytes(), 5);
    }

    /// A socket that takes at most `max` bytes per write, like a full one.
    struct Trickle {
        written: Vec<u8>,
        max: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.max);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.write(&all)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_vectored_writes_resume_mid_frame_and_keep_order() {
        let frames: Vec<Vec<u8>> = (1..=5u8).map(|i| vec![i; usize::from(i) * 3]).collect();
        let mut q = WriteQueue::new(1_000);
        for frame in &frames {
            q.push(frame.clone()).unwrap();
        }
        let mut out = Trickle {
            written: Vec::new(),
            max: 7,
        };
        let mut calls = 0;
        while !q.is_empty() {
            assert!(q.write_to(&mut out).unwrap() > 0);
            calls += 1;
        }
        assert_eq!(out.written, frames.concat());
        assert_eq!(q.bytes(), 0);
        assert_eq!(calls, frames.concat().len().div_ceil(7));
    }

    #[test]
    fn a_peer_that_never_reads_overflows_its_queue() {
        let (_, mut a, _, _) = connected(limits());
        let ping = Message::Ping { nonce: 0 };
        let mut sent = 0;
        let err = loop {
            match a.send(&ping) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, PeerError::WriteQueueFull(_)));
        assert!(!err.deserves_ban());
        assert!(a.queued_bytes() <= limits().write_queue_bytes_max);
        assert!(sent > 0);
    }

    #[test]
    fn a_large_frame_is_refused_before_the_handshake_and_allowed_after() {
        let big = encode_frame(&[0; 2048], 1 << 20).unwrap();
        let (kb, mut newcomer) = stranger();
        let err = newcomer
            .receive(MonoTime(0), &big[..8], &kb, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, PeerError::Frame(_)), "{err:?}");
        // Nothing reserved for the body: only the length prefix was held.
        assert_eq!(
            newcomer.buffered_bytes() - newcomer.queued_bytes(),
            crate::net::frame::FRAME_HEADER_BYTES
        );
        let (_, _, kb, mut b) = connected(limits());
        b.receive(MonoTime(0), &big[..8], &kb, &mut Vec::new())
            .unwrap();
        assert!(b.buffered_bytes() > b.queued_bytes());
    }

    #[test]
    fn unknown_tags_are_scored_not_fatal_at_once() {
        let (_, _, kb, mut b) = connected(limits());
        let unknown = encode_frame(&[0x34, 0x12], 16).unwrap();
        let mut events = Vec::new();
        for _ in 1..BAN_SCORE / UNKNOWN_TAG_PENALTY {
            b.receive(MonoTime(0), &unknown, &kb, &mut events).unwrap();
        }
        assert!(matches!(
            b.receive(MonoTime(0), &unknown, &kb, &mut events),
            Err(PeerError::Misbehaving { .. })
        ));
    }
}
