//! Shared fixtures of the net tests: nodes on 127.0.0.1 port 0 with fast
//! timers and seeded randomness, waits bounded by generous timeouts (failure
//! bounds only, never for correctness), and a raw peer that speaks the wire
//! protocol by hand, honestly or not.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use timecoin::consensus::messages::{ConsensusMessage, NodeId};
use timecoin::crypto::Keypair;
use timecoin::net::frame::{encode_frame, FrameDecoder};
use timecoin::net::handshake::{Handshake, LocalHello};
use timecoin::net::{spawn_net, Message, MessageLimits, NetConfig, NetEvent, NetHandle};
use timecoin::time::{Clock, MonoTime, SystemClock};
use timecoin::types::{ChainId, Hash};

pub const CHAIN: ChainId = ChainId(3);
/// How long any wait may take before the test fails.
pub const FAIL_AFTER: Duration = Duration::from_secs(20);

pub fn genesis() -> Hash {
    Hash::digest(b"net test genesis")
}

pub fn key(label: &str) -> Keypair {
    Keypair::from_seed_label(label)
}

/// Fast timers so tests finish quickly; the seed fixes nonces and jitter.
pub fn config(seed: u64, peers: &[SocketAddr]) -> NetConfig {
    let mut c = NetConfig::new("127.0.0.1:0".parse().unwrap());
    c.configured_peers = peers.to_vec();
    c.tick_ms = 10;
    c.handshake_timeout_ms = 1_500;
    c.dial_backoff_base_ms = 50;
    c.dial_backoff_max_ms = 400;
    c.get_peers_interval_ms = 100;
    c.rng_seed = Some(seed);
    c
}

pub fn start(label: &str, config: NetConfig) -> NetHandle {
    spawn_net(config, key(label), CHAIN, genesis()).expect("net thread starts")
}

/// The first event matching `pred`, skipping others; fails after [`FAIL_AFTER`].
pub fn wait_for(
    rx: &crossbeam_channel::Receiver<NetEvent>,
    what: &str,
    mut pred: impl FnMut(&NetEvent) -> bool,
) -> NetEvent {
    let deadline = SystemClock.mono().saturating_add(FAIL_AFTER);
    loop {
        let left = deadline.saturating_since(SystemClock.mono());
        match rx.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

pub fn wait_connected(handle: &NetHandle, peer: NodeId) {
    wait_for(
        &handle.consensus_events,
        "a peer connection",
        |e| matches!(e, NetEvent::PeerConnected { node_id, .. } if *node_id == peer),
    );
}

pub fn wait_message(handle: &NetHandle, from_node: NodeId, want: &Message) {
    wait_for(
        &handle.consensus_events,
        "a message",
        |e| matches!(e, NetEvent::Message { from, msg } if *from == from_node && msg == want),
    );
}

/// Waits until `cond` holds, re-checking every few milliseconds; for state
/// the net thread publishes (peer lists, metrics) rather than sends.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = SystemClock.mono().saturating_add(FAIL_AFTER);
    while !cond() {
        assert!(
            SystemClock.mono() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A stranger sends garbage before its handshake: it is cut off and
/// counted, and no address is banned (`server`'s validators or configured
/// peers live on 127.0.0.1 too).
pub fn garbage_from_a_protected_host_bans_nobody(server: &NetHandle) {
    let mut hostile = RawPeer::connect(server.local_addr(), "hostile");
    hostile.recv_hello();
    hostile.send_raw(&[0xff; 64]).unwrap();
    hostile.expect_closed();
    eventually("the hostile peer is counted", || {
        server.metrics().misbehaviour_disconnects >= 1
    });
    assert_eq!(server.metrics().bans, 0, "the protected host is not banned");
}

pub fn established(handle: &NetHandle) -> Vec<NodeId> {
    handle.peers().iter().filter_map(|p| p.node_id).collect()
}

pub fn query(request_id: u64) -> Message {
    Message::Consensus(ConsensusMessage::Query {
        request_id,
        txids: vec![Hash::digest(&request_id.to_le_bytes())],
    })
}

/// A peer driven by hand over a blocking socket.
pub struct RawPeer {
    pub key: Keypair,
    stream: TcpStream,
    decoder: FrameDecoder,
    pending: std::collections::VecDeque<Vec<u8>>,
}

impl RawPeer {
    pub fn connect(addr: SocketAddr, label: &str) -> RawPeer {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(FAIL_AFTER)).unwrap();
        RawPeer {
            key: key(label),
            stream,
            decoder: FrameDecoder::new(MessageLimits::default().max_frame_bytes),
            pending: Default::default(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, msg: &Message) -> std::io::Result<()> {
        self.send_raw(&encode_frame(&msg.encode(), 1 << 24).unwrap())
    }

    /// The next message, or `None` once the node closed the connection.
    pub fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(msg) = self.take_pending() {
                return Some(msg);
            }
            match self.read_frames() {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if timed_out(&e) => {
                    panic!("node neither spoke nor closed within {FAIL_AFTER:?}")
                }
                Err(_) => return None,
            }
        }
    }

    /// Every message the node sends within the next `window` (fewer if it
    /// closes the connection).
    pub fn recv_for(&mut self, window: Duration) -> Vec<Message> {
        let mut got = Vec::new();
        let deadline = SystemClock.mono().saturating_add(window);
        loop {
            got.extend(std::iter::from_fn(|| self.take_pending()));
            let left = deadline.saturating_since(SystemClock.mono());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.read_frames() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if timed_out(&e) => {}
                Err(_) => break,
            }
        }
        self.stream.set_read_timeout(Some(FAIL_AFTER)).unwrap();
        got
    }

    /// A whole frame received already, decoded.
    fn take_pending(&mut self) -> Option<Message> {
        let payload = self.pending.pop_front()?;
        Some(
            Message::decode(&payload, &MessageLimits::default())
                .expect("node sends valid messages"),
        )
    }

    /// One read of the socket, its whole frames queued; `Ok(0)`: closed.
    fn read_frames(&mut self) -> std::io::Result<usize> {
        let mut buf = [0u8; 16 * 1024];
        let n = self.stream.read(&mut buf)?;
        let mut frames = Vec::new();
        self.decoder.push(&buf[..n], &mut frames).unwrap();
        self.pending.extend(frames);
        Ok(n)
    }

    /// This peer's `Hello` on `chain_id` speaking protocol `version`, to send by hand.
    pub fn hello(&self, chain_id: ChainId, version: u32) -> Message {
        Message::Hello(timecoin::net::Hello {
            chain_id,
            genesis_hash: genesis(),
            version,
            node_id: self.key.public(),
            listen_addr: None,
            tip_height: 0,
            nonce: Hash::digest(b"hand-made nonce"),
        })
    }

    /// Reads the node's Hello: proof the node accepted the connection.
    pub fn recv_hello(&mut self) -> timecoin::net::Hello {
        match self.recv() {
            Some(Message::Hello(h)) => h,
            other => panic!("expected the node's Hello, got {other:?}"),
        }
    }

    /// Blocks until the node closes the connection (ignoring what it sends).
    pub fn expect_closed(&mut self) {
        while self.recv().is_some() {}
    }

    /// An honest handshake after [`RawPeer::recv_hello`]; returns the node's id.
    pub fn complete_handshake(&mut self, their_hello: timecoin::net::Hello) -> NodeId {
        self.complete_handshake_on(CHAIN, genesis(), their_hello)
    }

    /// [`RawPeer::complete_handshake`] on another chain (e.g. a real devnet's).
    pub fn complete_handshake_on(
        &mut self,
        chain_id: ChainId,
        genesis_hash: Hash,
        their_hello: timecoin::net::Hello,
    ) -> NodeId {
        let local = LocalHello {
            chain_id,
            genesis_hash,
            node_id: self.key.public(),
            listen_addr: None,
            tip_height: 0,
        };
        let (mut hs, hello) =
            Handshake::start(local, Hash::digest(b"raw nonce"), MonoTime(0), u64::MAX);
        self.send(&hello).unwrap();
        let ack = hs.on_hello(their_hello, &self.key).unwrap();
        self.send(&ack).unwrap();
        match self.recv() {
            Some(Message::HelloAck { signature }) => hs.on_ack(signature).unwrap(),
            other => panic!("expected HelloAck, got {other:?}"),
        }
        hs.completed().expect("node proved its key").node_id
    }
}

/// A read timeout (its kind differs by platform).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
