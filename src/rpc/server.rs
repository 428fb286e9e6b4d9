//! The HTTP side of the RPC: a tiny_http listener on 127.0.0.1 and a pool
//! of named worker threads (`rpc-0`, …). Each request is authenticated,
//! size-checked before its body is read, parsed as JSON-RPC 2.0 (single or
//! batch), dispatched through [`methods`], and answered.
//!
//! It writes `<datadir>/.cookie` and `<datadir>/rpc.port` at start (the port
//! file last: its presence means ready) and removes both at stop.

use super::auth::{Cookie, Credentials, COOKIE_USER};
use super::errors::{self, RpcError};
use super::methods::{self, Method};
use super::{RpcConfig, RpcContext};
use serde_json::{json, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Header, Method as HttpMethod, Request, Response, Server};

pub const PORT_FILE: &str = "rpc.port";
/// Requests in one JSON-RPC batch.
pub const MAX_BATCH: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum RpcStartError {
    #[error("cannot listen for RPC on 127.0.0.1:{port}: {message}; pick another --rpc-port")]
    Bind { port: u16, message: String },
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start RPC worker thread: {0}")]
    Spawn(std::io::Error),
}

/// A running RPC server.
pub struct RpcServer {
    server: Arc<Server>,
    workers: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    addr: SocketAddr,
    cookie: Cookie,
    port_file: PathBuf,
}

/// What a worker needs for every request.
struct Handler {
    ctx: RpcContext,
    credentials: Credentials,
    max_body_bytes: usize,
}

impl RpcServer {
    pub fn start(
        config: RpcConfig,
        datadir: &Path,
        ctx: RpcContext,
    ) -> Result<RpcServer, RpcStartError> {
        let bind_error = |message: String| RpcStartError::Bind {
            port: config.port,
            message,
        };
        let server =
            Server::http(("127.0.0.1", config.port)).map_err(|e| bind_error(e.to_string()))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| bind_error("not an IP listener".to_string()))?;
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
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for i in 0..config.workers.max(1) {
            let server = Arc::clone(&server);
            let handler = Arc::clone(&handler);
            let stopping = Arc::clone(&stopping);
            let worker = std::thread::Builder::new()
                .name(format!("rpc-{i}"))
                .spawn(move || {
                    while !stopping.load(Ordering::SeqCst) {
                        // `Err` is an `unblock` at stop, or a failed accept.
                        if let Ok(request) = server.recv() {
                            handler.handle(request);
                        }
                    }
                })
                .map_err(RpcStartError::Spawn)?;
            workers.push(worker);
        }
        let port_file = datadir.join(PORT_FILE);
        write_atomically(&port_file, &addr.port().to_string()).map_err(|source| {
            RpcStartError::File {
                path: port_file.clone(),
                source,
            }
        })?;
        log::info!("JSON-RPC listening on http://{addr}");
        Ok(RpcServer {
            server,
            workers,
            stopping,
            addr,
            cookie,
            port_file,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, joins the workers,
    /// and removes the port and cookie files.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
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

/// Write to a temporary name, then rename: a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn text_response(status: u16, text: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut response = Response::from_string(text).with_status_code(status);
    if let Some(h) = header("Content-Type", "text/plain; charset=utf-8") {
        response.add_header(h);
    }
    response
}

impl Handler {
    fn handle(&self, mut request: Request) {
        let response = self.respond(&mut request);
        if let Err(e) = request.respond(response) {
            log::debug!("RPC client went away before its answer: {e}");
        }
    }

    fn respond(&self, request: &mut Request) -> Response<std::io::Cursor<Vec<u8>>> {
        let path = request.url().split('?').next().unwrap_or("");
        match (request.method(), path) {
            (HttpMethod::Get, "/metrics") => {
                let mut text = self.ctx.metrics.render();
                if let Some(net) = &self.ctx.net {
                    text.push_str(&net.metrics().render());
                }
                let mut response = text_response(200, &text);
                if let Some(h) = header("Content-Type", "text/plain; version=0.0.4") {
                    response.add_header(h);
                }
                response
            }
            (HttpMethod::Post, "/") => self.json_rpc(request),
            _ => text_response(
                404,
                "not found: send JSON-RPC as POST to /, or GET /metrics\n",
            ),
        }
    }

    fn json_rpc(&self, request: &mut Request) -> Response<std::io::Cursor<Vec<u8>>> {
        let authorization = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str());
        if !self.credentials.check(authorization) {
            let mut response = text_response(
                401,
                "unauthorized: use HTTP Basic auth with the datadir's .cookie or the configured user\n",
            );
            if let Some(h) = header("WWW-Authenticate", "Basic realm=\"jsonrpc\"") {
                response.add_header(h);
            }
            return response;
        }
        let too_large = || {
            text_response(
                413,
                &format!(
                    "request body over the limit of {} bytes\n",
                    self.max_body_bytes
                ),
            )
        };
        if request
            .body_length()
            .is_some_and(|n| n > self.max_body_bytes)
        {
            return too_large();
        }
        let mut body = Vec::new();
        let limit = u64::try_from(self.max_body_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if let Err(e) = request.as_reader().take(limit).read_to_end(&mut body) {
            return text_response(400, &format!("cannot read the request body: {e}\n"));
        }
        if body.len() > self.max_body_bytes {
            return too_large();
        }
        let reply = self.json_rpc_body(&body);
        let mut response = Response::from_data(reply.to_string().into_bytes());
        if let Some(h) = header("Content-Type", "application/json") {
            response.add_header(h);
        }
        response
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
