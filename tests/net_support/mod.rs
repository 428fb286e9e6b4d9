//! Shared fixtures of the net tests: nodes on 127.0.0.1 port 0 with fast
//! timers and seeded randomness, waits bounded by generous timeouts (failure
//! bounds only, never for correctness), and a raw peer that speaks the wire
//! protocol by hand, honestly or not.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;
use timecoin::consensus::messages::{ConsensusMessage, NodeId};
use timecoin::crypto::Keypair;
use timecoin::net::event_loop::READ_CHUNK_BYTES;
use timecoin::net::frame::{encode_frame, FrameDecoder, MAX_GROWTH_BYTES};
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

/// Room for the small frames (Hello, HelloAck, GetPeers, votes) queued to each peer.
const SMALL_QUEUES_BYTES: usize = 64 * 1024;

/// The most all peers' buffers may hold under a buffer budget of `budget`
/// bytes: the budget is enforced after each read, so one read's growth and
/// the small queues may pass it.
pub fn buffered_bytes_bound(budget: usize) -> usize {
    budget + MAX_GROWTH_BYTES + READ_CHUNK_BYTES + SMALL_QUEUES_BYTES
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
        RawPeer::over(TcpStream::connect(addr).expect("connect"), label)
    }

    /// [`RawPeer::connect`] from source address `from` (any address of
    /// 127.0.0.0/8 reaches a node on 127.0.0.1, so one machine can pose as
    /// many hosts), or the connect error. Closing it resets the connection
    /// (no `TIME_WAIT`), so attackers can reconnect thousands of times.
    pub fn connect_from(from: IpAddr, addr: SocketAddr, label: &str) -> io::Result<RawPeer> {
        Ok(RawPeer::over(connect_from(from, addr)?, label))
    }

    fn over(stream: TcpStream, label: &str) -> RawPeer {
        stream.set_read_timeout(Some(FAIL_AFTER)).unwrap();
        RawPeer {
            key: key(label),
            stream,
            decoder: FrameDecoder::new(MessageLimits::default().max_frame_bytes),
            pending: Default::default(),
        }
    }

    /// How long a read waits for the node (at first [`FAIL_AFTER`]); past
    /// it [`RawPeer::try_recv`] returns a timeout error.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// A second handle on the socket, e.g. for one thread to write while
    /// another reads.
    pub fn writer(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, msg: &Message) -> std::io::Result<()> {
        self.send_raw(&encode_frame(&msg.encode(), 1 << 24).unwrap())
    }

    /// The next message, or `None` once the node closed the connection.
    pub fn recv(&mut self) -> Option<Message> {
        self.try_recv()
            .unwrap_or_else(|_| panic!("node neither spoke nor closed within {FAIL_AFTER:?}"))
    }

    /// [`RawPeer::recv`], or an error if the node neither spoke nor closed
    /// within [`FAIL_AFTER`] (for attackers, which must not panic).
    pub fn try_recv(&mut self) -> io::Result<Option<Message>> {
        loop {
            if let Some(msg) = self.take_pending() {
                return Ok(Some(msg));
            }
            match self.read_frames() {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if timed_out(&e) => return Err(e),
                Err(_) => return Ok(None),
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
        self.hello_on(chain_id, genesis(), version)
    }

    /// [`RawPeer::hello`] on another chain (e.g. a real devnet's).
    pub fn hello_on(&self, chain_id: ChainId, genesis_hash: Hash, version: u32) -> Message {
        Message::Hello(timecoin::net::Hello {
            chain_id,
            genesis_hash,
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
        self.try_handshake_on(chain_id, genesis_hash, their_hello)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads the node's Hello and completes the handshake on whatever chain
    /// it names (a stranger on a real devnet); `None` if the node closed the
    /// connection or failed it (e.g. evicted it meanwhile).
    pub fn try_handshake(&mut self) -> Option<NodeId> {
        let Ok(Some(Message::Hello(hello))) = self.try_recv() else {
            return None;
        };
        self.try_handshake_on(hello.chain_id, hello.genesis_hash, hello)
            .ok()
    }

    fn try_handshake_on(
        &mut self,
        chain_id: ChainId,
        genesis_hash: Hash,
        their_hello: timecoin::net::Hello,
    ) -> Result<NodeId, String> {
        let local = LocalHello {
            chain_id,
            genesis_hash,
            node_id: self.key.public(),
            listen_addr: None,
            tip_height: 0,
        };
        let (mut hs, hello) =
            Handshake::start(local, Hash::digest(b"raw nonce"), MonoTime(0), u64::MAX);
        self.send(&hello)
            .map_err(|e| format!("sending Hello: {e}"))?;
        let ack = hs
            .on_hello(their_hello, &self.key)
            .map_err(|e| format!("the node's Hello: {e}"))?;
        self.send(&ack)
            .map_err(|e| format!("sending HelloAck: {e}"))?;
        match self.try_recv() {
            Ok(Some(Message::HelloAck { signature })) => hs
                .on_ack(signature)
                .map_err(|e| format!("the node's HelloAck: {e}"))?,
            other => return Err(format!("expected HelloAck, got {other:?}")),
        }
        Ok(hs
            .completed()
            .ok_or("the node did not prove its key")?
            .node_id)
    }
}

/// A read timeout (its kind differs by platform).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The send buffer of a [`RawPeer::connect_from`] connection.
const SEND_BUFFER_BYTES: libc::c_int = 128 * 1024;

/// A TCP connection to `to` from source address `from` (IPv4), closed by
/// a reset (`SO_LINGER` 0), with a send buffer of [`SEND_BUFFER_BYTES`].
fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let (IpAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only"));
    };
    let address = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; the stream takes it
    // over at once and closes it on every path.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let stream = TcpStream::from_raw_fd(fd);
        set_option(
            fd,
            libc::SO_LINGER,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )?;
        // A small send buffer: a sender waits for the node to read, as over
        // a real network, instead of burning the cores it shares with the
        // node copying megabytes into loopback buffers.
        set_option(fd, libc::SO_SNDBUF, &SEND_BUFFER_BYTES)?;
        let source = address(from, 0);
        check(libc::bind(
            fd,
            (&source as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        let target = address(*to.ip(), to.port());
        check(libc::connect(
            fd,
            (&target as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        Ok(stream)
    }
}

/// `setsockopt(fd, SOL_SOCKET, name, value)`.
fn set_option<T>(fd: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live `T` of `len` bytes, as the option expects.
    let rc =
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, name, (value as *const T).cast(), len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
