//! The HTTP side of the RPC: a listener on 127.0.0.1, one thread per open
//! connection (`rpc-conn`, keep-alive) that reads and answers its requests
//! in turn, and a pool of named worker threads (`rpc-0`, …) that run them.
//! Each request is authenticated and size-checked on its head, before any
//! body byte is read, bounded in parse cost ([`json_cost`]), parsed as
//! JSON-RPC 2.0 (single or batch), dispatched through [`methods`], and
//! answered.
//!
//! A connection owns its reader thread for its whole life, so a burst of
//! keep-alive clients is served at once. (tiny_http's shared pool, used
//! before, counted woken-but-not-yet-running threads as idle: a burst of
//! connections could leave one queued until another connection closed,
//! which the load generator saw as 10 s submit stalls. It also has no
//! deadline on a whole request nor a way to drop idle connections for new
//! ones, which the limits below need.)
//!
//! Everything a client sends is hostile, and any local process may connect:
//! * slots are capped in total and per source address, and a new
//!   connection takes the slot of an idle or not-yet-speaking one
//!   ([`admission`]), so silent sockets cannot lock clients out; eviction
//!   shuts only the victim's reads, so one whose whole request head had
//!   already arrived is still answered once;
//! * every phase has a deadline on its total time, which a client sending
//!   one byte at a time cannot extend: [`HEAD_TIMEOUT`] to a complete first
//!   head, [`KEEP_ALIVE_TIMEOUT`] to the next, [`BODY_TIMEOUT`] to a
//!   complete body, [`WRITE_TIMEOUT`] to take the answer;
//! * the head is capped in bytes and lines, a body needs a `Content-Length`
//!   within the limit, and the bodies held at once share one budget.
//!
//! It writes `<datadir>/.cookie` and `<datadir>/rpc.port` at start (the
//! port file last: its presence means ready) and removes both at stop.

use super::admission::{self, Phase, Table};
use super::auth::{Cookie, Credentials, COOKIE_USER};
use super::errors::{self, RpcError};
use super::json_cost;
use super::methods::{self, Method};
use super::status;
use super::wait::{self, Parked};
use super::{RpcConfig, RpcContext};
use crossbeam_channel::{bounded, Sender};
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const PORT_FILE: &str = "rpc.port";
/// Requests in one JSON-RPC batch.
pub const MAX_BATCH: usize = 1_000;
/// Connections held at once; when all are serving requests, one more is
/// answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections held by one source address. The server listens on loopback,
/// so this mostly keeps room for a second local address; what keeps one
/// source's silent sockets from starving another client is eviction.
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
/// From accept to a complete first request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// From an answer to the complete head of the next request on the connection.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// From a complete head to a complete body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// For the client to take an answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies held in memory at once, over all connections (at least one
/// largest body).
const BODY_BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// Room beside a transaction's hex in a `sendrawtransaction` body.
const BODY_SLACK_BYTES: usize = 4 * 1024;
/// What every wait method's name starts with.
const WAIT_PREFIX: &[u8] = b"waitfor";
/// A wait request is parked only below this size (it is a few dozen bytes).
const MAX_WAIT_BODY_BYTES: usize = 1024;
/// Request line plus headers.
const MAX_HEAD_BYTES: u64 = 16 * 1024;
const MAX_HEADER_LINES: usize = 100;
/// For a refusal to reach a client that is not reading.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// After a refusal, unread request bytes are drained this long (up to
/// [`LINGER_BYTES`]) before the close, so the client reads the refusal
/// rather than a reset.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RpcStartError {
    #[error("cannot listen for RPC on 127.0.0.1:{port}: {message}; pick another --rpc-port")]
    Bind { port: u16, message: String },
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the RPC threads: {0}")]
    Spawn(std::io::Error),
}

/// A running RPC server.
pub struct RpcServer {
    addr: SocketAddr,
    /// The listening socket, to wake the blocking accept at stop.
    listener: TcpListener,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    /// Dropped at stop, after the connections: workers then run out of work.
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    cookie: Cookie,
    port_file: PathBuf,
}

/// What a worker needs for every request.
struct Handler {
    ctx: RpcContext,
    credentials: Credentials,
    max_body_bytes: usize,
    stats: Stats,
}

/// What the accept and connection threads share.
struct Shared {
    handler: Arc<Handler>,
    work: Sender<Job>,
    connections: Mutex<Table<Open>>,
    /// Body bytes that may still be taken in.
    body_budget: AtomicUsize,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Table<Open>> {
        // A panicking connection thread leaves a consistent table behind.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `id` still holds its slot, now in `phase`.
    fn enter(&self, id: u64, phase: Phase) -> bool {
        self.connections().set_phase(id, phase)
    }

    /// Reserves `bytes` of the body budget until the guard drops.
    fn take_body_budget(&self, bytes: usize) -> Option<BodyBudget<'_>> {
        self.body_budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .ok()
            .map(|_| BodyBudget {
                budget: &self.body_budget,
                bytes,
            })
    }
}

struct BodyBudget<'a> {
    budget: &'a AtomicUsize,
    bytes: usize,
}

impl Drop for BodyBudget<'_> {
    fn drop(&mut self) {
        self.budget.fetch_add(self.bytes, Ordering::AcqRel);
    }
}

/// An open connection's socket (to end it) and reader thread.
struct Open {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

/// Refusals and evictions, for `/metrics`.
#[derive(Default)]
struct Stats {
    evicted: AtomicU64,
    refused_full: AtomicU64,
    timed_out: AtomicU64,
    unauthorized: AtomicU64,
    bodies_refused: AtomicU64,
    over_cost: AtomicU64,
}

impl Stats {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        use std::fmt::Write;
        let counters = [
            (
                "timecoin_rpc_connections_evicted_total",
                "Idle or not-yet-speaking RPC connections closed to admit a new one",
                &self.evicted,
            ),
            (
                "timecoin_rpc_connections_refused_total",
                "RPC connections answered 503: every slot was serving a request",
                &self.refused_full,
            ),
            (
                "timecoin_rpc_requests_timed_out_total",
                "RPC connections closed for a request head or body not complete in time",
                &self.timed_out,
            ),
            (
                "timecoin_rpc_unauthorized_total",
                "RPC requests refused 401 before their body was read",
                &self.unauthorized,
            ),
            (
                "timecoin_rpc_bodies_refused_total",
                "RPC request bodies refused for their size or the memory budget (413, 503)",
                &self.bodies_refused,
            ),
            (
                "timecoin_rpc_json_over_cost_total",
                "JSON-RPC bodies refused for too many values or too deep nesting",
                &self.over_cost,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// A request read off a connection, for a worker to answer on `reply`.
struct Job {
    route: Route,
    body: Vec<u8>,
    /// Whom a parked wait is counted against.
    source: IpAddr,
    reply: Sender<Answer>,
}

/// A worker's answer: the reply, or a wait call for the connection's own
/// thread to park on (a parked call never holds a worker).
enum Answer {
    Now(Reply),
    Park(Box<ParkedCall>),
}

/// A single JSON-RPC wait request, registered, with what its reply needs.
struct ParkedCall {
    parked: Parked,
    id: Value,
    legacy: bool,
}

/// Where a request goes, decided from its head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    JsonRpc,
    /// The status page (`GET /`), behind the same auth as the RPC.
    StatusPage,
    NotFound,
}

/// An HTTP answer.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// Ask for Basic credentials (401).
    challenge: bool,
}

impl Reply {
    fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            challenge: false,
        }
    }
}

/// The thread drivers' clock: socket deadlines are I/O, not protocol logic.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// A socket whose reads (or writes) must all be done by `deadline`: each
/// call waits only for what is left, so trickling bytes cannot extend it.
struct Deadlined {
    stream: TcpStream,
    deadline: Instant,
}

impl Deadlined {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(now());
        if left.is_zero() {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            Ok(left)
        }
    }
}

/// A socket timeout surfaces as `WouldBlock` on Unix: name it for what it is.
fn timed_out(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
        _ => e,
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf).map_err(timed_out)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl RpcServer {
    pub fn start(
        config: RpcConfig,
        datadir: &Path,
        ctx: RpcContext,
    ) -> Result<RpcServer, RpcStartError> {
        let bind_error = |e: io::Error| RpcStartError::Bind {
            port: config.port,
            message: e.to_string(),
        };
        let listener = TcpListener::bind(("127.0.0.1", config.port)).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let cookie_path = datadir.join(super::auth::COOKIE_FILE);
        let cookie = Cookie::create(datadir).map_err(|source| RpcStartError::File {
            path: cookie_path,
            source,
        })?;
        let mut pairs = vec![(COOKIE_USER, cookie.secret())];
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            pairs.push((user.as_str(), password.as_str()));
        }
        // A `sendrawtransaction` of the largest transaction the chain allows
        // always fits.
        let largest_tx_hex = 2 * ctx.spec.config.ledger.max_tx_bytes as usize;
        let max_body_bytes = config.max_body_bytes.max(largest_tx_hex + BODY_SLACK_BYTES);
        let handler = Arc::new(Handler {
            credentials: Credentials::new(pairs),
            ctx,
            max_body_bytes,
            stats: Stats::default(),
        });
        // One request in flight per connection at most.
        let (work, jobs) = bounded::<Job>(MAX_CONNECTIONS);
        let mut workers = Vec::new();
        for i in 0..config.workers.max(1) {
            let (handler, jobs) = (Arc::clone(&handler), jobs.clone());
            let worker = std::thread::Builder::new()
                .name(format!("rpc-{i}"))
                .spawn(move || {
                    for job in jobs {
                        // The connection may have gone: nobody to answer.
                        let answer = handler.respond(job.route, &job.body, job.source);
                        let _ = job.reply.send(answer);
                    }
                })
                .map_err(RpcStartError::Spawn)?;
            workers.push(worker);
        }
        let shared = Arc::new(Shared {
            handler,
            work,
            connections: Mutex::new(Table::new(admission::Limits {
                total: MAX_CONNECTIONS,
                per_source: MAX_CONNECTIONS_PER_SOURCE,
            })),
            body_budget: AtomicUsize::new(BODY_BUDGET_BYTES.max(max_body_bytes)),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let accepting = listener.try_clone().map_err(RpcStartError::Spawn)?;
        let acceptor = {
            let (stopping, shared) = (Arc::clone(&stopping), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("rpc-accept".into())
                .spawn(move || accept_loop(&accepting, &stopping, &shared))
                .map_err(RpcStartError::Spawn)?
        };
        let port_file = datadir.join(PORT_FILE);
        write_atomically(&port_file, &addr.port().to_string()).map_err(|source| {
            RpcStartError::File {
                path: port_file.clone(),
                source,
            }
        })?;
        log::info!("JSON-RPC listening on http://{addr}");
        Ok(RpcServer {
            addr,
            listener,
            stopping,
            acceptor: Some(acceptor),
            shared,
            workers,
            cookie,
            port_file,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, closes every
    /// connection, joins the threads, and removes the port and cookie files.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Parked waits answer now, so their connections close promptly.
        self.shared.handler.ctx.waiters.close();
        // On Linux, shutting a listening socket down fails the blocking
        // accept (EINVAL); the acceptor then sees `stopping` and returns.
        // SAFETY: shutdown(2) on a descriptor `self.listener` owns and keeps open.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(acceptor) = self.acceptor.take() {
            if acceptor.join().is_err() {
                log::error!("the RPC accept thread panicked");
            }
        }
        let open: Vec<Open> = self.shared.connections().drain().collect();
        for Open { stream, thread } in open {
            // Reads end; an answer being written still goes out.
            let _ = stream.shutdown(Shutdown::Read);
            if thread.is_some_and(|thread| thread.join().is_err()) {
                log::error!("an RPC connection thread panicked");
            }
        }
        // The last sender of work goes (evicted connections' threads end at
        // once on their shut socket): the workers finish.
        drop(self.shared);
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                log::error!("an RPC worker panicked");
            }
        }
        if let Err(e) = std::fs::remove_file(&self.port_file) {
            log::warn!("cannot remove {}: {e}", self.port_file.display());
        }
        self.cookie.remove();
    }
}

/// Accepts until stopped; each connection gets a slot (see [`admission`])
/// and its own thread.
fn accept_loop(listener: &TcpListener, stopping: &AtomicBool, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: give the system a moment, then go on.
                log::warn!("RPC accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let accepted_at = now();
        let (Ok(peer), Ok(registered)) = (stream.peer_addr(), stream.try_clone()) else {
            continue;
        };
        let open = Open {
            stream: registered,
            thread: None,
        };
        let mut table = shared.connections();
        let admitted = match table.admit(peer.ip(), open) {
            Ok(admitted) => admitted,
            Err(full) => {
                drop(table);
                Stats::count(&shared.handler.stats.refused_full);
                let mut writer = Deadlined {
                    stream,
                    deadline: now() + REFUSAL_WRITE_TIMEOUT,
                };
                let _ = write_reply(&mut writer, &Reply::text(503, &format!("{full}\n")), true);
                continue;
            }
        };
        if let Some(evicted) = admitted.evicted {
            Stats::count(&shared.handler.stats.evicted);
            log::debug!(
                "RPC connection evicted ({:?}) for one from {peer}",
                evicted.phase
            );
            // Its thread, blocked reading, ends at once; it is not joined.
            // Only reads end: one whose whole head already arrived (read or
            // still buffered) is answered once, then closed.
            let _ = evicted.io.stream.shutdown(Shutdown::Read);
        }
        let id = admitted.id;
        let shared_of_thread = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("rpc-conn".into())
            .spawn(move || {
                serve_connection(&shared_of_thread, id, stream, accepted_at);
                shared_of_thread.connections().remove(id);
            });
        match thread {
            Ok(thread) => {
                if let Some(open) = table.get_mut(id) {
                    open.thread = Some(thread);
                }
            }
            Err(e) => {
                table.remove(id);
                log::warn!("cannot start an RPC connection thread: {e}");
            }
        }
    }
}

/// One connection's reading side (buffered) and writing side.
struct Connection {
    reader: BufReader<Deadlined>,
    writer: Deadlined,
}

impl Connection {
    fn new(stream: TcpStream, head_deadline: Instant) -> io::Result<Connection> {
        // Answers are small and awaited: never hold one back for Nagle.
        stream.set_nodelay(true)?;
        let reader = Deadlined {
            stream: stream.try_clone()?,
            deadline: head_deadline,
        };
        Ok(Connection {
            reader: BufReader::new(reader),
            writer: Deadlined {
                stream,
                deadline: head_deadline,
            },
        })
    }

    fn reply_continue(&mut self) -> io::Result<()> {
        self.writer.deadline = now() + REFUSAL_WRITE_TIMEOUT;
        self.writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
    }

    fn reply(&mut self, reply: &Reply, close: bool) -> io::Result<()> {
        self.writer.deadline = now() + WRITE_TIMEOUT;
        write_reply(&mut self.writer, reply, close)
    }

    /// Answers a request that cannot go on (its body, if any, unread) and
    /// closes: the answer, then a short drain of what the client already
    /// sent, so it reads the answer rather than a reset.
    fn refuse(mut self, reply: &Reply) {
        self.writer.deadline = now() + REFUSAL_WRITE_TIMEOUT;
        if write_reply(&mut self.writer, reply, true).is_err() {
            return;
        }
        let _ = self.writer.stream.shutdown(Shutdown::Write);
        self.reader.get_mut().deadline = now() + LINGER;
        let _ = io::copy(&mut self.reader.take(LINGER_BYTES), &mut io::sink());
    }
}

/// Reads requests off one connection and answers each, until the client
/// closes or asks to close, a deadline passes, an error, or eviction.
fn serve_connection(shared: &Shared, id: u64, stream: TcpStream, accepted_at: Instant) {
    let Ok(source) = stream.peer_addr().map(|a| a.ip()) else {
        return;
    };
    let Ok(mut connection) = Connection::new(stream, accepted_at + HEAD_TIMEOUT) else {
        return;
    };
    let handler = &shared.handler;
    let mut head_timeout = HEAD_TIMEOUT;
    loop {
        let head = match read_head(&mut connection.reader).and_then(|lines| match lines {
            Some(lines) => parse_head(&lines).map(Some),
            None => Ok(None),
        }) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(HttpError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                Stats::count(&handler.stats.timed_out);
                let text = format!(
                    "request head not complete within {} s\n",
                    head_timeout.as_secs()
                );
                return connection.refuse(&Reply::text(408, &text));
            }
            Err(HttpError::Io(_)) => return,
            Err(e) => return connection.refuse(&Reply::text(e.status(), &format!("{e}\n"))),
        };
        // Evicted while the head came in, or before this thread read it:
        // the whole head is here, so this request is answered (outside the
        // slots; eviction shut only the reads) and the connection closed. A
        // client whose head had arrived is served however fast other
        // connections churn the slots (issue 13's attack suite: a loaded
        // machine ran the connection's thread after ~64 newer connects).
        let slotted = shared.enter(id, Phase::Busy);
        let length = head.content_length.unwrap_or(0);
        let admitted = handler.admit(&head).and_then(|route| {
            let budget = shared.take_body_budget(length).ok_or_else(|| {
                Stats::count(&handler.stats.bodies_refused);
                let text = "the node is holding its limit of RPC request bodies; retry shortly\n";
                Reply::text(503, text)
            })?;
            Ok((route, budget))
        });
        let (route, _budget) = match admitted {
            Ok(admitted) => admitted,
            Err(reply) => {
                // A refused connection only lingers: its slot may go first.
                if slotted {
                    shared.enter(id, Phase::Idle);
                }
                return connection.refuse(&reply);
            }
        };
        if head.expect_continue && length > 0 && connection.reply_continue().is_err() {
            return;
        }
        connection.reader.get_mut().deadline = now() + BODY_TIMEOUT;
        let mut body = Vec::with_capacity(length);
        match (&mut connection.reader)
            .take(length as u64)
            .read_to_end(&mut body)
        {
            Ok(n) if n == length => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                Stats::count(&handler.stats.timed_out);
                let text = format!(
                    "request body not complete within {} s\n",
                    BODY_TIMEOUT.as_secs()
                );
                return connection.refuse(&Reply::text(408, &text));
            }
            _ => return, // cut short
        }
        let (reply, answer) = bounded(1);
        let job = Job {
            route,
            body,
            source,
            reply,
        };
        if shared.work.send(job).is_err() {
            return; // stopping
        }
        let reply = match answer.recv() {
            Ok(Answer::Now(reply)) => reply,
            Ok(Answer::Park(call)) => handler.finish_parked(*call),
            Err(_) => return,
        };
        let keep_alive = head.keep_alive && slotted;
        if connection.reply(&reply, !keep_alive).is_err()
            || !keep_alive
            || !shared.enter(id, Phase::Idle)
        {
            return;
        }
        head_timeout = KEEP_ALIVE_TIMEOUT;
        connection.reader.get_mut().deadline = now() + KEEP_ALIVE_TIMEOUT;
    }
}

/// Why a request head is refused. Always the client's fault.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("request head over {MAX_HEAD_BYTES} bytes or {MAX_HEADER_LINES} lines, or cut short")]
    HeadTooLarge,
    #[error("malformed request line '{0}'")]
    RequestLine(String),
    #[error("unsupported HTTP version '{0}': speak HTTP/1.1")]
    Version(String),
    #[error("malformed header line '{0}'")]
    Header(String),
    #[error("bad Content-Length '{0}'")]
    ContentLength(String),
    #[error("request bodies must be sent with Content-Length, not Transfer-Encoding")]
    TransferEncoding,
}

impl HttpError {
    fn status(&self) -> u16 {
        match self {
            HttpError::Version(_) => 505,
            HttpError::TransferEncoding => 501,
            HttpError::HeadTooLarge => 431,
            _ => 400,
        }
    }
}

/// What the server needs from a request's head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    method: String,
    /// Without the query string.
    path: String,
    keep_alive: bool,
    content_length: Option<usize>,
    authorization: Option<String>,
    expect_continue: bool,
}

/// The request line and header lines up to the empty line, CRLF removed;
/// `None` if the client closed before sending anything.
fn read_head(reader: &mut impl BufRead) -> Result<Option<Vec<String>>, HttpError> {
    let mut lines = Vec::new();
    let mut budget = MAX_HEAD_BYTES;
    loop {
        let mut line = Vec::new();
        let n = reader.by_ref().take(budget).read_until(b'\n', &mut line)?;
        if n == 0 && lines.is_empty() {
            return Ok(None);
        }
        if !line.ends_with(b"\n") || lines.len() > MAX_HEADER_LINES {
            return Err(HttpError::HeadTooLarge);
        }
        budget = budget.saturating_sub(n as u64);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // a stray CRLF between requests
            }
            return Ok(Some(lines));
        }
        lines.push(text);
    }
}

fn parse_head(lines: &[String]) -> Result<Head, HttpError> {
    let request_line = lines.first().map(String::as_str).unwrap_or_default();
    let mut words = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(HttpError::RequestLine(request_line.to_string()));
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        other => return Err(HttpError::Version(other.to_string())),
    };
    let mut head = Head {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or_default().to_string(),
        keep_alive,
        content_length: None,
        authorization: None,
        expect_continue: false,
    };
    for line in lines.iter().skip(1) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Header(line.clone()))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let length = value
                    .parse()
                    .map_err(|_| HttpError::ContentLength(value.to_string()))?;
                if head.content_length.is_some_and(|l| l != length) {
                    return Err(HttpError::ContentLength(value.to_string()));
                }
                head.content_length = Some(length);
            }
            "transfer-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(HttpError::TransferEncoding)
            }
            "authorization" => head.authorization = Some(value.to_string()),
            "expect" => head.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "connection" => {
                let value = value.to_ascii_lowercase();
                if value.contains("close") {
                    keep_alive = false;
                } else if value.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    head.keep_alive = keep_alive;
    Ok(head)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn write_reply(stream: &mut impl Write, reply: &Reply, close: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    if reply.challenge {
        head.push_str("WWW-Authenticate: Basic realm=\"jsonrpc\"\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&reply.body);
    stream.write_all(&bytes)?;
    stream.flush()
}

/// Write to a temporary name, then rename: a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Handler {
    /// Routes a request by its head, refusing it (401, 411, 413) before its
    /// body is read. Only an authenticated JSON-RPC request has a body.
    fn admit(&self, head: &Head) -> Result<Route, Reply> {
        let route = match (head.method.as_str(), head.path.as_str()) {
            ("GET", "/metrics") => Route::Metrics,
            ("POST", "/") => Route::JsonRpc,
            ("GET", "/") => Route::StatusPage,
            _ => Route::NotFound,
        };
        if matches!(route, Route::JsonRpc | Route::StatusPage) {
            if !self.credentials.check(head.authorization.as_deref()) {
                Stats::count(&self.stats.unauthorized);
                let mut reply = Reply::text(
                    401,
                    "unauthorized: use HTTP Basic auth with the datadir's .cookie or the configured user\n",
                );
                reply.challenge = true;
                return Err(reply);
            }
            if route == Route::JsonRpc && head.content_length.is_none() {
                return Err(Reply::text(
                    411,
                    "a JSON-RPC request needs a Content-Length header\n",
                ));
            }
        }
        if route != Route::JsonRpc && head.content_length.is_some_and(|n| n > 0) {
            // Unauthenticated routes: nothing of theirs is read into memory.
            Stats::count(&self.stats.bodies_refused);
            return Err(Reply::text(
                413,
                "only a JSON-RPC POST to / carries a body\n",
            ));
        }
        if head.content_length.is_some_and(|n| n > self.max_body_bytes) {
            Stats::count(&self.stats.bodies_refused);
            return Err(Reply::text(
                413,
                &format!(
                    "request body over the limit of {} bytes\n",
                    self.max_body_bytes
                ),
            ));
        }
        Ok(route)
    }

    fn respond(&self, route: Route, body: &[u8], source: IpAddr) -> Answer {
        if route == Route::JsonRpc {
            if let Some(call) = self.parked_call(body, source) {
                return call;
            }
        }
        Answer::Now(self.reply(route, body))
    }

    /// A single (not batched) wait request is parked, not run here.
    fn parked_call(&self, body: &[u8], source: IpAddr) -> Option<Answer> {
        // Wait calls are tiny; anything larger (or without the name, a cheap
        // scan of at most 1 KiB) is answered the usual way, so other calls
        // are not parsed twice. A wait in a batch answers at once.
        if body.len() > MAX_WAIT_BODY_BYTES
            || !body.windows(WAIT_PREFIX.len()).any(|w| w == WAIT_PREFIX)
            || json_cost::check(body).is_err()
        {
            return None;
        }
        let request: Value = serde_json::from_slice(body).ok()?;
        let name = request.get("method")?.as_str()?;
        if !name.as_bytes().starts_with(WAIT_PREFIX) {
            return None;
        }
        let params = request.get("params").unwrap_or(&Value::Null);
        let Ok(Method::Wait(wait)) = Method::parse(name, params, &self.ctx) else {
            return None;
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let legacy = is_legacy(&request);
        self.ctx
            .metrics
            .rpc_requests
            .fetch_add(1, Ordering::Relaxed);
        Some(match wait::park(&self.ctx, source, wait) {
            Ok(parked) => Answer::Park(Box::new(ParkedCall { parked, id, legacy })),
            Err(error) => Answer::Now(self.json_reply(&self.error_reply(id, legacy, &error))),
        })
    }

    /// Runs on the connection's thread: waits, then answers.
    fn finish_parked(&self, call: ParkedCall) -> Reply {
        let ParkedCall { parked, id, legacy } = call;
        let body = match parked.finish(&self.ctx) {
            Ok(result) => success(id, legacy, false, result),
            Err(error) => self.error_reply(id, legacy, &error),
        };
        self.json_reply(&body)
    }

    fn json_reply(&self, body: &Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            challenge: false,
        }
    }

    fn reply(&self, route: Route, body: &[u8]) -> Reply {
        match route {
            Route::Metrics => {
                let mut text = self.ctx.metrics.render();
                if let Some(net) = &self.ctx.net {
                    text.push_str(&net.metrics().render());
                }
                text.push_str(&self.stats.render());
                Reply {
                    status: 200,
                    content_type: "text/plain; version=0.0.4",
                    body: text.into_bytes(),
                    challenge: false,
                }
            }
            Route::JsonRpc => self.json_reply(&self.json_rpc_body(body)),
            Route::StatusPage => match status::status(&self.ctx) {
                Ok(data) => Reply {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: status::page(&data).into_bytes(),
                    challenge: false,
                },
                Err(e) => Reply::text(500, &format!("status unavailable: {}\n", e.message)),
            },
            Route::NotFound => Reply::text(
                404,
                "not found: send JSON-RPC as POST to /, GET / for the status page, or GET /metrics\n",
            ),
        }
    }

    /// A whole JSON-RPC body: one request or a batch.
    fn json_rpc_body(&self, body: &[u8]) -> Value {
        if let Err(e) = json_cost::check(body) {
            Stats::count(&self.stats.over_cost);
            let error = RpcError::new(errors::INVALID_REQUEST, format!("request refused: {e}"));
            return self.error_reply(Value::Null, false, &error);
        }
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                let error = RpcError::new(errors::PARSE_ERROR, format!("malformed JSON: {e}"));
                return self.error_reply(Value::Null, false, &error);
            }
        };
        match parsed {
            Value::Array(batch) if batch.is_empty() || batch.len() > MAX_BATCH => {
                let error = RpcError::new(
                    errors::INVALID_REQUEST,
                    format!(
                        "a batch holds 1 to {MAX_BATCH} requests, not {}",
                        batch.len()
                    ),
                );
                self.error_reply(Value::Null, false, &error)
            }
            Value::Array(batch) => {
                Value::Array(batch.iter().map(|r| self.single(r, true)).collect())
            }
            single => self.single(&single, false),
        }
    }

    /// One request; `in_batch` successes carry `"error": null` (see [`success`]).
    fn single(&self, request: &Value, in_batch: bool) -> Value {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let legacy = is_legacy(request);
        let Some(object) = request.as_object() else {
            let error = RpcError::new(errors::INVALID_REQUEST, "a request must be a JSON object");
            return self.error_reply(id, legacy, &error);
        };
        let Some(name) = object.get("method").and_then(Value::as_str) else {
            let error = RpcError::new(errors::INVALID_REQUEST, "'method' must be a string");
            return self.error_reply(id, legacy, &error);
        };
        let params = object.get("params").unwrap_or(&Value::Null);
        self.ctx
            .metrics
            .rpc_requests
            .fetch_add(1, Ordering::Relaxed);
        let result = Method::parse(name, params, &self.ctx)
            .and_then(|method| methods::call(&self.ctx, method));
        match result {
            Ok(result) => success(id, legacy, in_batch, result),
            Err(error) => self.error_reply(id, legacy, &error),
        }
    }

    fn error_reply(&self, id: Value, legacy: bool, error: &RpcError) -> Value {
        self.ctx.metrics.rpc_errors.fetch_add(1, Ordering::Relaxed);
        if legacy {
            json!({ "result": Value::Null, "error": error.to_json(), "id": id })
        } else {
            json!({ "jsonrpc": "2.0", "error": error.to_json(), "id": id })
        }
    }
}

/// A JSON-RPC 1.0/1.1-style request (no `"jsonrpc": "2.0"`, as
/// `python-bitcoinrpc` and bitcoin-cli send): its replies carry both
/// `result` and `error`, one of them null, as bitcoind's do.
fn is_legacy(request: &Value) -> bool {
    request.get("jsonrpc").and_then(Value::as_str) != Some("2.0")
}

/// A success reply. Inside a batch it also carries `"error": null`, as
/// Bitcoin Core's did before v28: `python-bitcoinrpc`'s `batch_()` sends
/// 2.0-style requests yet reads `error` from every answer.
fn success(id: Value, legacy: bool, in_batch: bool, result: Value) -> Value {
    match (legacy, in_batch) {
        (true, _) => json!({ "result": result, "error": Value::Null, "id": id }),
        (false, true) => {
            json!({ "jsonrpc": "2.0", "result": result, "error": Value::Null, "id": id })
        }
        (false, false) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Result<Option<Vec<String>>, HttpError> {
        read_head(&mut io::Cursor::new(text.as_bytes().to_vec()))
    }

    fn head(text: &str) -> Result<Head, HttpError> {
        parse_head(&lines(text)?.unwrap_or_default())
    }

    #[test]
    fn a_keep_alive_post_head_is_parsed_with_its_length_and_credentials() {
        let h = head("POST /?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12\r\nAuthorization: Basic eA==\r\nExpect: 100-continue\r\n\r\n{ignored}")
            .unwrap();
        assert_eq!(
            h,
            Head {
                method: "POST".into(),
                path: "/".into(),
                keep_alive: true,
                content_length: Some(12),
                authorization: Some("Basic eA==".into()),
                expect_continue: true,
            }
        );
        assert!(
            !head("GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!head("GET /metrics HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn a_closed_connection_before_any_byte_is_not_an_error() {
        assert!(matches!(lines(""), Ok(None)));
        assert!(matches!(lines("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Ok(Some(l)) if l.len() == 1));
    }

    #[test]
    fn hostile_heads_are_refused_with_their_status() {
        let status = |text: &str| head(text).map(|_| 200).unwrap_or_else(|e| e.status());
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("GARBAGE\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1 extra\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\n"),
            431,
            "cut before the empty line"
        );
        let long = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES as usize)
        );
        assert_eq!(status(&long), 431);
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADER_LINES + 1)
        );
        assert_eq!(status(&many), 431);
    }
}
