//! The HTTP side of the RPC: a listener on 127.0.0.1, one thread per open
//! connection (`rpc-conn`, at most [`MAX_CONNECTIONS`], keep-alive) that reads
//! and answers its requests in turn, and a pool of named worker threads
//! (`rpc-0`, …) that run them. Each request is authenticated and
//! size-checked before its body is read, parsed as JSON-RPC 2.0 (single or
//! batch), dispatched through [`methods`], and answered.
//!
//! A connection owns its reader thread for its whole life, so a burst of
//! keep-alive clients is served at once. (tiny_http's shared pool, used
//! before, counted woken-but-not-yet-running threads as idle: a burst of
//! connections could leave one queued until another connection closed,
//! which the load generator saw as 10 s submit stalls.)
//!
//! Everything a client sends is hostile: the head is capped in bytes and
//! lines, a body needs a `Content-Length` within the limit, a silent
//! connection is closed after [`IDLE_TIMEOUT`], and the connection count
//! is capped. It writes `<datadir>/.cookie` and `<datadir>/rpc.port` at
//! start (the port file last: its presence means ready) and removes both
//! at stop.

use super::auth::{Cookie, Credentials, COOKIE_USER};
use super::errors::{self, RpcError};
use super::methods::{self, Method};
use super::{RpcConfig, RpcContext};
use crossbeam_channel::{bounded, Sender};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub const PORT_FILE: &str = "rpc.port";
/// Requests in one JSON-RPC batch.
pub const MAX_BATCH: usize = 1_000;
/// Connections served at once; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection silent (or stuck writing) this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line plus headers.
const MAX_HEAD_BYTES: u64 = 16 * 1024;
const MAX_HEADER_LINES: usize = 100;

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
    connections: Arc<Connections>,
    /// Dropped at stop, after the connections: workers then run out of work.
    work: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    cookie: Cookie,
    port_file: PathBuf,
}

/// What a worker needs for every request.
struct Handler {
    ctx: RpcContext,
    credentials: Credentials,
    max_body_bytes: usize,
}

/// A request read off a connection, for a worker to answer on `reply`.
struct Job {
    route: Route,
    body: Vec<u8>,
    reply: Sender<Reply>,
}

/// Where a request goes, decided from its head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    JsonRpc,
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

/// Each open connection's socket and reader thread, by connection number.
type OpenConnections = BTreeMap<u64, (TcpStream, JoinHandle<()>)>;

/// The open connections, so `stop` can end them.
#[derive(Default)]
struct Connections {
    open: Mutex<OpenConnections>,
    next_id: AtomicU64,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, OpenConnections> {
        // A panicking connection thread leaves a consistent map behind.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
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
        let handler = Arc::new(Handler {
            credentials: Credentials::new(pairs),
            ctx,
            max_body_bytes: config.max_body_bytes,
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
                        let _ = job.reply.send(handler.respond(job.route, &job.body));
                    }
                })
                .map_err(RpcStartError::Spawn)?;
            workers.push(worker);
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Connections::default());
        let accepting = listener.try_clone().map_err(RpcStartError::Spawn)?;
        let acceptor = {
            let (stopping, connections) = (Arc::clone(&stopping), Arc::clone(&connections));
            let work = work.clone();
            std::thread::Builder::new()
                .name("rpc-accept".into())
                .spawn(move || accept_loop(&accepting, &stopping, &connections, &handler, &work))
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
            connections,
            work: Some(work),
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
        // On Linux, shutting a listening socket down fails the blocking
        // accept (EINVAL); the acceptor then sees `stopping` and returns.
        // SAFETY: shutdown(2) on a descriptor `self.listener` owns and keeps open.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(acceptor) = self.acceptor.take() {
            if acceptor.join().is_err() {
                log::error!("the RPC accept thread panicked");
            }
        }
        let open = std::mem::take(&mut *self.connections.lock());
        for (stream, thread) in open.into_values() {
            // Reads end; an answer being written still goes out.
            let _ = stream.shutdown(Shutdown::Read);
            if thread.join().is_err() {
                log::error!("an RPC connection thread panicked");
            }
        }
        drop(self.work.take());
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

/// Accepts until stopped; each connection gets its own thread.
fn accept_loop(
    listener: &TcpListener,
    stopping: &AtomicBool,
    connections: &Arc<Connections>,
    handler: &Arc<Handler>,
    work: &Sender<Job>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: give the system a moment, then go on.
                log::warn!("RPC accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut open = connections.lock();
        if open.len() >= MAX_CONNECTIONS {
            drop(open);
            let reply = Reply::text(
                503,
                &format!("too many RPC connections (limit {MAX_CONNECTIONS}); retry later\n"),
            );
            let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
            let _ = write_reply(&mut stream, &reply, true);
            continue;
        }
        let id = connections.next_id.fetch_add(1, Ordering::Relaxed);
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let (handler, work, connections_of_thread) =
            (Arc::clone(handler), work.clone(), Arc::clone(connections));
        let thread = std::thread::Builder::new()
            .name("rpc-conn".into())
            .spawn(move || {
                serve_connection(stream, &handler, &work);
                connections_of_thread.lock().remove(&id);
            });
        match thread {
            Ok(thread) => {
                open.insert(id, (registered, thread));
            }
            Err(e) => log::warn!("cannot start an RPC connection thread: {e}"),
        }
    }
}

/// Reads requests off one connection and answers each, until the client
/// closes, asks to close, errs or stays silent past [`IDLE_TIMEOUT`].
fn serve_connection(stream: TcpStream, handler: &Handler, work: &Sender<Job>) {
    let setup = stream
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IDLE_TIMEOUT)))
        // Answers are small and awaited: never hold one back for Nagle.
        .and_then(|()| stream.set_nodelay(true));
    let Ok(reader) = setup.and_then(|()| stream.try_clone()) else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut writer = stream;
    loop {
        let head = match read_head(&mut reader).and_then(|lines| match lines {
            Some(lines) => parse_head(&lines).map(Some),
            None => Ok(None),
        }) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(HttpError::Io(_)) => return,
            Err(e) => {
                let _ = write_reply(
                    &mut writer,
                    &Reply::text(e.status(), &format!("{e}\n")),
                    true,
                );
                return;
            }
        };
        let route = match handler.admit(&head) {
            Ok(route) => route,
            Err(reply) => {
                // The body (if any) is left unread: the connection cannot go on.
                let _ = write_reply(&mut writer, &reply, true);
                return;
            }
        };
        let length = head.content_length.unwrap_or(0);
        if head.expect_continue
            && length > 0
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let mut body = Vec::with_capacity(length);
        match (&mut reader).take(length as u64).read_to_end(&mut body) {
            Ok(n) if n == length => {}
            _ => return, // cut short or timed out
        }
        let (reply, answer) = bounded(1);
        if work.send(Job { route, body, reply }).is_err() {
            return; // stopping
        }
        let Ok(reply) = answer.recv() else {
            return;
        };
        if write_reply(&mut writer, &reply, !head.keep_alive).is_err() || !head.keep_alive {
            return;
        }
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
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn write_reply(stream: &mut TcpStream, reply: &Reply, close: bool) -> io::Result<()> {
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
    /// body is read.
    fn admit(&self, head: &Head) -> Result<Route, Reply> {
        let route = match (head.method.as_str(), head.path.as_str()) {
            ("GET", "/metrics") => Route::Metrics,
            ("POST", "/") => Route::JsonRpc,
            _ => Route::NotFound,
        };
        if route == Route::JsonRpc {
            if !self.credentials.check(head.authorization.as_deref()) {
                let mut reply = Reply::text(
                    401,
                    "unauthorized: use HTTP Basic auth with the datadir's .cookie or the configured user\n",
                );
                reply.challenge = true;
                return Err(reply);
            }
            if head.content_length.is_none() {
                return Err(Reply::text(
                    411,
                    "a JSON-RPC request needs a Content-Length header\n",
                ));
            }
        }
        if head.content_length.is_some_and(|n| n > self.max_body_bytes) {
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

    fn respond(&self, route: Route, body: &[u8]) -> Reply {
        match route {
            Route::Metrics => {
                let mut text = self.ctx.metrics.render();
                if let Some(net) = &self.ctx.net {
                    text.push_str(&net.metrics().render());
                }
                Reply {
                    status: 200,
                    content_type: "text/plain; version=0.0.4",
                    body: text.into_bytes(),
                    challenge: false,
                }
            }
            Route::JsonRpc => Reply {
                status: 200,
                content_type: "application/json",
                body: self.json_rpc_body(body).to_string().into_bytes(),
                challenge: false,
            },
            Route::NotFound => Reply::text(
                404,
                "not found: send JSON-RPC as POST to /, or GET /metrics\n",
            ),
        }
    }

    /// A whole JSON-RPC body: one request or a batch.
    fn json_rpc_body(&self, body: &[u8]) -> Value {
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                let error = RpcError::new(errors::PARSE_ERROR, format!("malformed JSON: {e}"));
                return self.error_reply(Value::Null, &error);
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
                self.error_reply(Value::Null, &error)
            }
            Value::Array(batch) => Value::Array(batch.iter().map(|r| self.single(r)).collect()),
            single => self.single(&single),
        }
    }

    fn single(&self, request: &Value) -> Value {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let Some(object) = request.as_object() else {
            let error = RpcError::new(errors::INVALID_REQUEST, "a request must be a JSON object");
            return self.error_reply(id, &error);
        };
        let Some(name) = object.get("method").and_then(Value::as_str) else {
            let error = RpcError::new(errors::INVALID_REQUEST, "'method' must be a string");
            return self.error_reply(id, &error);
        };
        let params = object.get("params").unwrap_or(&Value::Null);
        self.ctx
            .metrics
            .rpc_requests
            .fetch_add(1, Ordering::Relaxed);
        let result = Method::parse(name, params, &self.ctx)
            .and_then(|method| methods::call(&self.ctx, method));
        match result {
            Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
            Err(error) => self.error_reply(id, &error),
        }
    }

    fn error_reply(&self, id: Value, error: &RpcError) -> Value {
        self.ctx.metrics.rpc_errors.fetch_add(1, Ordering::Relaxed);
        json!({ "jsonrpc": "2.0", "error": error.to_json(), "id": id })
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
