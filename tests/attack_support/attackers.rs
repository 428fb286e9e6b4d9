//! Attackers of one `timed` node over real sockets (issue 13). Each is a
//! few threads that run until its [`Attack`] is stopped or dropped, and
//! never panic on what the node does to them (refuse, evict, cut off, ban):
//! they count it and carry on, as an attacker would, reconnecting where a
//! real one would.
//!
//! Many "hosts" on one machine: any address of 127.0.0.0/8 reaches a node
//! on 127.0.0.1, so an attacker can connect from 127.N.S.H ([`source`]).
//! 127.0.0.1 itself hosts the devnet's validators, so the node never bans
//! that address (DESIGN §8): attacks from it are the ones a ban cannot end.

use crate::fault_support::Stopwatch;
use crate::net_support::RawPeer;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use timecoin::consensus::messages::NodeId;
use timecoin::consensus::PeerWork;
use timecoin::finality::WindowVote;
use timecoin::net::frame::encode_frame;
use timecoin::net::{Message, PROTOCOL_VERSION};

/// How long a peer that must be disconnected waits for it.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
/// How long an attacker's read waits before it looks at its stop flag.
const READ_SLICE: Duration = Duration::from_millis(200);
/// An attacker cut off (evicted, refused) tries again after this.
const RECONNECT_PAUSE: Duration = Duration::from_millis(250);
/// An announced frame size: the largest frame the protocol allows.
pub const BIG_FRAME_BYTES: usize = 8 << 20;
/// Writes of a big frame's body.
const CHUNK_BYTES: usize = 64 << 10;
/// Threads that share a reconnect storm's rate.
const STORM_THREADS: usize = 16;
/// Senders of a flood, and the period of their pacing.
const PACE_TICK: Duration = Duration::from_millis(10);

/// `127.net.subnet.host`: one attacker address. One /24 (`net`, `subnet`)
/// holds at most the node's per-subnet cap of inbound strangers.
pub fn source(net: u8, subnet: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, net, subnet, host))
}

/// The loopback address the devnet's validators use (never banned by IP).
pub fn validators_host() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// What an attack did, and what the node did to it.
#[derive(Debug, Default)]
pub struct Tally {
    pub connects: AtomicU64,
    pub connect_errors: AtomicU64,
    pub handshakes: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Connections the node closed (refused, evicted, cut off).
    pub cut_off: AtomicU64,
    /// Every identity that completed a handshake, and the most consensus
    /// work the node reported charging it and dropping over its budget
    /// (see `attack_support::note_work`).
    pub identities: Mutex<BTreeMap<NodeId, PeerWork>>,
    /// From the attack's start to its stop: every unit charged to its
    /// identities was charged within it.
    pub ran_for: Mutex<Duration>,
}

impl Tally {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A connection from `from`, counted (an error is counted too).
    fn connect(&self, from: IpAddr, target: SocketAddr, label: &str) -> Option<RawPeer> {
        match RawPeer::connect_from(from, target, label) {
            Ok(peer) => {
                Tally::add(&self.connects, 1);
                peer.set_read_timeout(READ_SLICE * 5);
                Some(peer)
            }
            Err(_) => {
                Tally::add(&self.connect_errors, 1);
                None
            }
        }
    }

    /// A completed handshake, counted with its identity.
    fn handshake(&self, peer: &mut RawPeer) -> bool {
        let done = peer.try_handshake().is_some();
        if done {
            Tally::add(&self.handshakes, 1);
            self.identities
                .lock()
                .unwrap()
                .entry(peer.key.public())
                .or_default();
        } else {
            Tally::add(&self.cut_off, 1);
        }
        done
    }

    /// A summary for the table.
    pub fn describe(&self) -> String {
        let identities = self.identities.lock().unwrap().len();
        format!(
            "{} connects ({} failed), {} handshakes by {identities} identities, {} messages \
             ({} MiB), {} cut off",
            Tally::get(&self.connects),
            Tally::get(&self.connect_errors),
            Tally::get(&self.handshakes),
            Tally::get(&self.messages),
            Tally::get(&self.bytes) >> 20,
            Tally::get(&self.cut_off),
        )
    }
}

/// A running attack: its threads stop when it is stopped or dropped.
pub struct Attack {
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    started: Stopwatch,
}

impl Attack {
    /// Runs `body(i, stop, tally)` on `threads` threads; `body` returns
    /// once `stop` is raised.
    fn spawn<F>(threads: usize, body: F) -> Attack
    where
        F: Fn(usize, &AtomicBool, &Tally) + Send + Sync + 'static,
    {
        let started = Stopwatch::start();
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let body = Arc::new(body);
        let threads = (0..threads)
            .map(|i| {
                let (stop, tally, body) =
                    (Arc::clone(&stop), Arc::clone(&tally), Arc::clone(&body));
                std::thread::spawn(move || body(i, &stop, &tally))
            })
            .collect();
        Attack {
            tally,
            stop,
            threads,
            started,
        }
    }

    /// Stops every thread and waits for them; returns the tally.
    pub fn stop(mut self) -> Arc<Tally> {
        self.halt();
        Arc::clone(&self.tally)
    }

    fn halt(&mut self) {
        if self.threads.is_empty() {
            return; // halted already
        }
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        *self.tally.ran_for.lock().unwrap() = self.started.elapsed();
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps `d` in slices, returning early once `stop` is raised.
fn pause(d: Duration, stop: &AtomicBool) {
    let clock = Stopwatch::start();
    while !stop.load(Ordering::Relaxed) && clock.elapsed() < d {
        std::thread::sleep(d.saturating_sub(clock.elapsed()).min(READ_SLICE));
    }
}

/// Holds `peer` open, reading (and dropping) what the node sends, until
/// the node closes it (`true`) or `stop` is raised.
fn hold(peer: &mut RawPeer, stop: &AtomicBool) -> bool {
    peer.set_read_timeout(READ_SLICE);
    while !stop.load(Ordering::Relaxed) {
        match peer.try_recv() {
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => return true,
        }
    }
    false
}

/// Paces a sender at `per_s` items a second, in ticks of [`PACE_TICK`].
struct Pace {
    per_s: f64,
    clock: Stopwatch,
    sent: u64,
}

impl Pace {
    fn new(per_s: f64) -> Pace {
        Pace {
            per_s,
            clock: Stopwatch::start(),
            sent: 0,
        }
    }

    /// Items due now (at least one); sleeps a tick first if none are.
    fn due(&mut self) -> u64 {
        loop {
            let owed = (self.clock.elapsed().as_secs_f64() * self.per_s) as u64;
            if owed > self.sent {
                let n = owed - self.sent;
                self.sent = owed;
                return n;
            }
            std::thread::sleep(PACE_TICK);
        }
    }
}

/// `count` sybils, sybil `i` from its own address 127.1.(i / 16).(1 + i % 16)
/// (16 to a /24, the per-subnet cap), each handshaking with the node and
/// holding the connection, reading what it sends; one cut off (evicted)
/// comes back after [`RECONNECT_PAUSE`] with the same identity.
pub fn sybils(target: SocketAddr, count: usize) -> Attack {
    Attack::spawn(count, move |i, stop, tally| {
        let from = source(1, (i / 16) as u8, 1 + (i % 16) as u8);
        while !stop.load(Ordering::Relaxed) {
            if let Some(mut peer) = tally.connect(from, target, &format!("sybil {i}")) {
                if tally.handshake(&mut peer) && hold(&mut peer, stop) {
                    Tally::add(&tally.cut_off, 1);
                }
            }
            pause(RECONNECT_PAUSE, stop);
        }
    })
}

/// `connections` handshaked peers from 127.0.0.1, each sending
/// `make(sequence)` at `per_s` messages a second (and reading what the node
/// answers, so it is never cut off for not reading); one cut off comes
/// back as a new identity (node ids cost nothing).
pub fn flood<F>(
    target: SocketAddr,
    label: &'static str,
    connections: usize,
    per_s: f64,
    make: F,
) -> Attack
where
    F: Fn(u64) -> Message + Send + Sync + 'static,
{
    Attack::spawn(connections, move |i, stop, tally| {
        let mut sequence = i as u64;
        for round in 0.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let name = format!("{label} {i}.{round}");
            let Some(mut peer) = tally.connect(validators_host(), target, &name) else {
                pause(RECONNECT_PAUSE, stop);
                continue;
            };
            if !tally.handshake(&mut peer) {
                continue;
            }
            let Ok(mut writer) = peer.writer() else {
                continue;
            };
            let cut = AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    if hold(&mut peer, stop) {
                        cut.store(true, Ordering::Relaxed);
                    }
                });
                let mut pace = Pace::new(per_s);
                'send: while !stop.load(Ordering::Relaxed) && !cut.load(Ordering::Relaxed) {
                    for _ in 0..pace.due() {
                        let frame = encode_frame(&make(sequence).encode(), 1 << 24).unwrap();
                        sequence += connections as u64;
                        if writer.write_all(&frame).is_err() {
                            cut.store(true, Ordering::Relaxed);
                            break 'send;
                        }
                        Tally::add(&tally.messages, 1);
                        Tally::add(&tally.bytes, frame.len() as u64);
                    }
                }
                // Unblocks the reader if the node has not closed yet.
                let _ = writer.shutdown(std::net::Shutdown::Both);
            });
            if cut.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                Tally::add(&tally.cut_off, 1);
            }
        }
    })
}

/// `peers` strangers that each announce a [`BIG_FRAME_BYTES`] frame and
/// stream its body until the node cuts them off, then do it again from a
/// fresh address (their last one is banned) or, if `handshake`, after
/// completing the handshake first. Peer `i` of round `r` connects from
/// 127.(`first_net` + r % 100).(i / 16).(1 + i % 16).
pub fn big_frames(target: SocketAddr, peers: usize, handshake: bool, first_net: u8) -> Attack {
    Attack::spawn(peers, move |i, stop, tally| {
        for round in 0usize.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let net = first_net.wrapping_add((round % 100) as u8);
            let from = source(net, (i / 16) as u8, 1 + (i % 16) as u8);
            let Some(mut peer) = tally.connect(from, target, &format!("big frames {i}.{round}"))
            else {
                pause(RECONNECT_PAUSE, stop);
                continue;
            };
            if handshake && !tally.handshake(&mut peer) {
                pause(RECONNECT_PAUSE, stop);
                continue;
            }
            let mut frame = (BIG_FRAME_BYTES as u32).to_le_bytes().to_vec();
            frame.resize(4 + CHUNK_BYTES, 0x55);
            let mut sent = 0;
            while sent < BIG_FRAME_BYTES && !stop.load(Ordering::Relaxed) {
                let chunk = if sent == 0 { &frame[..] } else { &frame[4..] };
                if peer.send_raw(chunk).is_err() {
                    break;
                }
                sent += CHUNK_BYTES;
                Tally::add(&tally.bytes, chunk.len() as u64);
            }
            Tally::add(&tally.messages, 1);
            if hold(&mut peer, stop) {
                Tally::add(&tally.cut_off, 1);
            }
            // Cut off at once, a peer would reconnect as fast as it can
            // (thousands a second): the storm row's business, not this one's.
            pause(RECONNECT_PAUSE, stop);
        }
    })
}

/// Connections from 127.0.0.1 at `per_s` a second in all, each completing
/// the handshake (as a peer reconnecting in a loop does) and closing at
/// once; each of [`STORM_THREADS`] threads keeps one identity.
pub fn reconnect_storm(target: SocketAddr, per_s: f64) -> Attack {
    Attack::spawn(STORM_THREADS, move |i, stop, tally| {
        let mut pace = Pace::new(per_s / STORM_THREADS as f64);
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..pace.due() {
                if let Some(mut peer) =
                    tally.connect(validators_host(), target, &format!("storm {i}"))
                {
                    tally.handshake(&mut peer);
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    })
}

/// Connects from `from` `per_s` times a second, each time offering the
/// node's own chain but protocol version `PROTOCOL_VERSION + 1` (a peer on
/// another release), and waits to be disconnected.
pub fn wrong_version(target: SocketAddr, from: IpAddr, per_s: f64) -> Attack {
    Attack::spawn(1, move |_, stop, tally| {
        let mut pace = Pace::new(per_s);
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..pace.due() {
                let Some(mut peer) = tally.connect(from, target, "newer release") else {
                    continue;
                };
                let Ok(Some(Message::Hello(theirs))) = peer.try_recv() else {
                    Tally::add(&tally.cut_off, 1);
                    continue;
                };
                let ours =
                    peer.hello_on(theirs.chain_id, theirs.genesis_hash, PROTOCOL_VERSION + 1);
                if peer.send(&ours).is_ok() {
                    Tally::add(&tally.messages, 1);
                }
                // Waits for the node's answer even past the stop, so every offer is judged.
                peer.set_read_timeout(CLOSE_WITHIN);
                let closed = loop {
                    match peer.try_recv() {
                        Ok(Some(_)) => {}
                        Ok(None) => break true,
                        Err(_) => break false,
                    }
                };
                if closed {
                    Tally::add(&tally.cut_off, 1);
                }
            }
        }
    })
}

/// Whether a peer with the "newer release" identity, connecting from
/// `from` with the right version, is admitted (so it was not banned).
pub fn right_version_admitted(target: SocketAddr, from: IpAddr) -> bool {
    RawPeer::connect_from(from, target, "newer release")
        .ok()
        .and_then(|mut peer| peer.try_handshake())
        .is_some()
}

/// The RPC lock-out attack of `rpc_support`, on the RPC port `addr`.
pub fn rpc_sockets(addr: SocketAddr) -> Attack {
    Attack::spawn(1, move |_, stop, tally| {
        let connects = crate::devnet_support::rpc::hold_rpc_sockets(addr, stop);
        Tally::add(&tally.connects, connects);
    })
}

/// A handshaked stranger of `target` (from 127.0.0.1) that keeps the
/// first `max` window votes relayed to it: old valid votes to replay.
pub fn collect_windows(
    target: SocketAddr,
    max: usize,
) -> (Attack, Arc<Mutex<Vec<Arc<WindowVote>>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&kept);
    let attack = Attack::spawn(1, move |_, stop, tally| {
        let Some(mut peer) = tally.connect(validators_host(), target, "window collector") else {
            return;
        };
        if !tally.handshake(&mut peer) {
            return;
        }
        peer.set_read_timeout(READ_SLICE);
        while !stop.load(Ordering::Relaxed) {
            match peer.try_recv() {
                Ok(Some(Message::Consensus(
                    timecoin::consensus::ConsensusMessage::WindowVote(w),
                ))) => {
                    let mut kept = into.lock().unwrap();
                    if kept.len() < max {
                        kept.push(w);
                    }
                }
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => return,
            }
        }
    });
    (attack, kept)
}
