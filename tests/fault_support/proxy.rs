//! A fault proxy between real `timed` processes: every node is dialled at a
//! front port the proxy owns, and the proxy forwards frames both ways
//! unless a partition puts the two nodes on different sides. A partition
//! comes in two kinds. A cut closes the forwarded connections that cross
//! the sides. A silent one keeps them open but drops every frame across
//! (a blackhole: TCP survives, nothing arrives), as a pulled cable between
//! two switches does. Either refuses new dials across (accepted, then
//! closed before the handshake completes: a failed dial to the node
//! behind); healing lets frames and dials through again.
//!
//! The proxy reads the first frame of each direction, the `Hello`, for two
//! reasons. It names the dialler by the node id in it, not by the port it
//! dialled, so a front port a node learned from gossip still routes as
//! itself. And it rewrites the announced `listen_addr` to the sender's front
//! port: a node announces its real listen address and gossips what it learns
//! (`Peers`), so without that a node cut off from a peer would redial the
//! real address and walk around the partition. (`listen_addr` is not covered
//! by the handshake signature, so this needs no key.) After the `Hello`s,
//! frames pass untouched.
//!
//! A node can also be made slow: every frame it sends is held for a set
//! delay (kept in order, so the link's throughput is unchanged), as a
//! distant or loaded validator's are.
//!
//! Threads: one acceptor per front port, one thread per direction of each
//! forwarded connection. Every blocking call has a timeout and every loop
//! checks the stop flag, so dropping the proxy ends and joins them all.
//! Nothing is random: a connection is cut exactly when a partition says so.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use timecoin::consensus::messages::NodeId;
use timecoin::net::frame::{encode_frame, FrameDecoder, FRAME_HEADER_BYTES};
use timecoin::net::{Message, MessageLimits};

/// How often idle loops look at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// Longest wait for a side's `Hello` (a node sends it at once).
const HELLO_WAIT: Duration = Duration::from_secs(5);
/// Longest wait to connect to the node behind a front port.
const CONNECT_WAIT: Duration = Duration::from_secs(2);
/// A `Hello` is tiny; anything larger is not one.
const MAX_HELLO_BYTES: usize = 4 * 1024;

/// A node behind the proxy: who it is and where it really listens.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub node_id: NodeId,
    pub addr: SocketAddr,
}

/// Counters of what the proxy did, for a test's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections forwarded (both `Hello`s passed).
    pub forwarded: u64,
    /// Dials refused because a partition separates the two nodes.
    pub refused: u64,
    /// Forwarded connections closed by a partition.
    pub cut: u64,
    /// Frames dropped by a silent partition.
    pub dropped: u64,
}

pub struct FaultProxy {
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
}

struct Shared {
    targets: Vec<Target>,
    fronts: Vec<SocketAddr>,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Threads of forwarded connections, joined when the proxy drops.
    threads: Mutex<Vec<JoinHandle<()>>>,
    forwarded: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    dropped: AtomicU64,
}

/// The partition and the live links it applies to, under one lock so a
/// link is never registered across a cut that has just been made.
struct State {
    /// `side[i]`: nodes on different sides cannot reach each other.
    side: Vec<usize>,
    /// `delay[i]`: how long every frame node `i` sends is held.
    delay: Vec<Duration>,
    links: Vec<Link>,
    next_link: u64,
}

/// One forwarded connection: clones of both sockets, to shut them on a cut.
struct Link {
    id: u64,
    /// The dialler, if it is one of the targets (an outside node is never cut).
    from: Option<usize>,
    to: usize,
    sockets: [TcpStream; 2],
}

impl State {
    fn allowed(&self, from: Option<usize>, to: usize) -> bool {
        from.map_or(true, |f| self.side[f] == self.side[to])
    }
}

impl FaultProxy {
    /// Forwards `fronts[i]` (already bound, so the ports could be written in
    /// the chain config first) to `targets[i]`; every node on one side.
    pub fn start(fronts: Vec<TcpListener>, targets: Vec<Target>) -> FaultProxy {
        assert_eq!(fronts.len(), targets.len(), "one front port per target");
        let shared = Arc::new(Shared {
            fronts: fronts.iter().map(|l| l.local_addr().unwrap()).collect(),
            state: Mutex::new(State {
                side: vec![0; targets.len()],
                delay: vec![Duration::ZERO; targets.len()],
                links: Vec::new(),
                next_link: 0,
            }),
            targets,
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let acceptors = fronts
            .into_iter()
            .enumerate()
            .map(|(to, listener)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("proxy-accept-{to}"))
                    .spawn(move || accept_loop(&shared, &listener, to))
                    .unwrap()
            })
            .collect();
        FaultProxy { shared, acceptors }
    }

    /// The addresses the nodes are dialled at, by node index.
    pub fn fronts(&self) -> &[SocketAddr] {
        &self.shared.fronts
    }

    /// Splits the nodes into `groups` (a node in no group is alone): links
    /// between groups are closed now and refused until [`FaultProxy::heal`].
    pub fn partition(&self, groups: &[&[usize]]) {
        self.set_sides(sides_of(self.shared.targets.len(), groups), true);
    }

    /// Like [`FaultProxy::partition`], but links between groups stay open
    /// and carry nothing until [`FaultProxy::heal`].
    pub fn silence(&self, groups: &[&[usize]]) {
        self.set_sides(sides_of(self.shared.targets.len(), groups), false);
    }

    /// Holds every frame node `i` sends for `delay` from now on (zero: none).
    pub fn delay(&self, i: usize, delay: Duration) {
        self.shared.state.lock().unwrap().delay[i] = delay;
    }

    /// Every node on one side again: frames and dials pass, nothing is closed.
    pub fn heal(&self) {
        self.set_sides(vec![0; self.shared.targets.len()], true);
    }

    fn set_sides(&self, side: Vec<usize>, cut: bool) {
        let mut state = self.shared.state.lock().unwrap();
        state.side = side;
        if !cut {
            return;
        }
        let (keep, cross): (Vec<Link>, Vec<Link>) = std::mem::take(&mut state.links)
            .into_iter()
            .partition(|l| state.allowed(l.from, l.to));
        state.links = keep;
        drop(state);
        for link in cross {
            self.shared.cut.fetch_add(1, Ordering::Relaxed);
            link.shut();
        }
    }

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            forwarded: s.forwarded.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            cut: s.cut.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        }
    }
}

/// `side[i]` for `groups`; a node no group names gets a side of its own.
fn sides_of(n: usize, groups: &[&[usize]]) -> Vec<usize> {
    let mut side: Vec<usize> = (n..2 * n).collect();
    for (g, members) in groups.iter().enumerate() {
        for &i in *members {
            side[i] = g;
        }
    }
    side
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for acceptor in self.acceptors.drain(..) {
            let _ = acceptor.join();
        }
        for link in std::mem::take(&mut self.shared.state.lock().unwrap().links) {
            link.shut();
        }
        // A connection thread may still spawn its pump: drain until none is left.
        loop {
            let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

impl Link {
    fn shut(&self) {
        for socket in &self.sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn spawn(self: &Arc<Self>, name: String, work: impl FnOnce(&Arc<Shared>) + Send + 'static) {
        let shared = self.clone();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || work(&shared))
            .unwrap();
        let mut threads = self.threads.lock().unwrap();
        threads.retain(|t| !t.is_finished()); // a finished thread needs no join
        threads.push(handle);
    }

    fn index_of(&self, node_id: &NodeId) -> Option<usize> {
        self.targets.iter().position(|t| t.node_id == *node_id)
    }

    fn allowed(&self, from: Option<usize>, to: usize) -> bool {
        self.state.lock().unwrap().allowed(from, to)
    }

    fn delay_of(&self, sender: Option<usize>) -> Duration {
        let state = self.state.lock().unwrap();
        sender.map_or(Duration::ZERO, |i| state.delay[i])
    }

    /// Registers a forwarded link unless a partition now separates its ends.
    fn register(
        &self,
        from: Option<usize>,
        to: usize,
        a: &TcpStream,
        b: &TcpStream,
    ) -> Option<u64> {
        let mut state = self.state.lock().unwrap();
        if !state.allowed(from, to) {
            return None;
        }
        let id = state.next_link;
        state.next_link += 1;
        let sockets = [a.try_clone().ok()?, b.try_clone().ok()?];
        state.links.push(Link {
            id,
            from,
            to,
            sockets,
        });
        Some(id)
    }

    fn unregister(&self, id: u64) {
        self.state.lock().unwrap().links.retain(|l| l.id != id);
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, to: usize) {
    listener.set_nonblocking(true).unwrap();
    let mut accepted = 0u64;
    while !shared.stopped() {
        match listener.accept() {
            Ok((client, _)) => {
                accepted += 1;
                shared.spawn(format!("proxy-{to}-{accepted}"), move |shared| {
                    // Any failure just closes the connection: to a node, a failed dial.
                    let _ = forward(shared, client, to);
                });
            }
            // Sleeping is the acceptor's pace, not a correctness wait.
            Err(_) => std::thread::sleep(TICK),
        }
    }
}

/// Reads the dialler's `Hello`, refuses it if a partition says so, else
/// connects to the node behind and pumps bytes until either end closes.
fn forward(shared: &Arc<Shared>, mut client: TcpStream, to: usize) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(HELLO_WAIT))?;
    let mut hello = read_hello(&mut client)?;
    let from = shared.index_of(&hello.node_id);
    if !shared.allowed(from, to) {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(()); // dropping `client` closes it
    }
    hello.listen_addr = from.map(|f| shared.fronts[f]);
    let mut server = TcpStream::connect_timeout(&shared.targets[to].addr, CONNECT_WAIT)?;
    server.set_read_timeout(Some(HELLO_WAIT))?;
    write_hello(&mut server, hello)?;
    let mut reply = read_hello(&mut server)?;
    reply.listen_addr = Some(shared.fronts[to]);
    write_hello(&mut client, reply)?;
    let Some(id) = shared.register(from, to, &client, &server) else {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let (back_from, back_to) = (server.try_clone()?, client.try_clone()?);
    shared.spawn(format!("proxy-{to}-back"), move |shared| {
        pump(shared, (from, to), Some(to), back_from, back_to);
    });
    pump(shared, (from, to), from, client, server);
    shared.unregister(id);
    Ok(())
}

fn read_hello(stream: &mut TcpStream) -> io::Result<timecoin::net::Hello> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    stream.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_HELLO_BYTES {
        return Err(io::Error::other(format!(
            "first frame of {len} bytes is no Hello"
        )));
    }
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload)?;
    match Message::decode(&payload, &MessageLimits::default()) {
        Ok(Message::Hello(hello)) => Ok(hello),
        Ok(other) => Err(io::Error::other(format!(
            "first message is {:?}",
            other.tag()
        ))),
        Err(e) => Err(io::Error::other(e)),
    }
}

fn write_hello(stream: &mut TcpStream, hello: timecoin::net::Hello) -> io::Result<()> {
    let frame = encode_frame(&Message::Hello(hello).encode(), MAX_HELLO_BYTES)
        .map_err(|_| io::Error::other("Hello over its size"))?;
    stream.write_all(&frame)
}

/// Copies the frames of `from` to `to` until either closes, a cut shuts
/// them, or the proxy stops (then shuts both so the other direction ends
/// too); drops each frame while a silent partition separates `ends`, and
/// holds each for the delay of `sender` (the node writing to `from`).
#[allow(clippy::disallowed_methods)] // a test proxy's delay; no protocol logic
fn pump(
    shared: &Shared,
    ends: (Option<usize>, usize),
    sender: Option<usize>,
    mut from: TcpStream,
    mut to: TcpStream,
) {
    let _ = from.set_read_timeout(Some(TICK));
    let _ = to.set_write_timeout(Some(TICK));
    let max_frame = MessageLimits::default().max_frame_bytes;
    let mut decoder = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 64 * 1024];
    'copy: while !shared.stopped() {
        while held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            let Some((_, frame)) = held.pop_front() else {
                break;
            };
            if !write_until_stopped(shared, &mut to, &frame) {
                break 'copy;
            }
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        };
        if decoder.push(&buf[..n], &mut frames).is_err() {
            break;
        }
        for payload in frames.drain(..) {
            if !shared.allowed(ends.0, ends.1) {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(frame) = encode_frame(&payload, max_frame) else {
                break 'copy;
            };
            let delay = shared.delay_of(sender);
            if delay.is_zero() && held.is_empty() {
                if !write_until_stopped(shared, &mut to, &frame) {
                    break 'copy;
                }
            } else {
                held.push_back((Instant::now() + delay, frame));
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Writes all of `bytes`; a frozen receiver (SIGSTOP) fills its socket
/// buffer, so keep trying, as the kernel would, until it reads or the
/// proxy stops. False if the socket failed or the proxy stopped.
fn write_until_stopped(shared: &Shared, to: &mut TcpStream, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        if shared.stopped() {
            return false;
        }
        match to.write(bytes) {
            Ok(0) => return false,
            Ok(k) => bytes = &bytes[k..],
            Err(e) if is_timeout(&e) => {}
            Err(_) => return false,
        }
    }
    true
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
