//! A blocking JSON-RPC client over plain HTTP/1.1 (one connection per call),
//! for `time-cli` and tests. The node's answer is not trusted either: the
//! response size is capped and every failure is a typed error.

use super::errors::RpcError;
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response accepted (a full `getrawmempool` fits).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
const MAX_HEADER_LINE_BYTES: usize = 8 * 1024;
const MAX_HEADER_LINES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the node's RPC at {addr}: {source}; is timed running?")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("RPC I/O with {addr} failed: {source}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("the node refused the credentials (HTTP 401); check --datadir (for its .cookie) or the user/password")]
    Unauthorized,
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("malformed answer from the node: {0}")]
    BadResponse(String),
    #[error("{} (code {})", .0.message, .0.code)]
    Rpc(RpcError),
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct RpcClient {
    addr: SocketAddr,
    authorization: String,
    timeout: Duration,
}

impl RpcClient {
    /// `authorization`: the whole header value (see [`super::auth::basic_header`]).
    pub fn new(addr: SocketAddr, authorization: String, timeout: Duration) -> RpcClient {
        RpcClient {
            addr,
            authorization,
            timeout,
        }
    }

    /// Calls `method` and returns its `result`, or its error as [`ClientError::Rpc`].
    pub fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = self.post(body.to_string().as_bytes())?;
        match response.status {
            200 => {}
            401 => return Err(ClientError::Unauthorized),
            status => {
                return Err(ClientError::Http {
                    status,
                    body: String::from_utf8_lossy(&response.body).trim().to_string(),
                })
            }
        }
        let mut reply: Value = serde_json::from_slice(&response.body)
            .map_err(|e| ClientError::BadResponse(e.to_string()))?;
        if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            return Err(ClientError::Rpc(RpcError::new(
                i32::try_from(code).unwrap_or(i32::MIN),
                message,
            )));
        }
        reply
            .get_mut("result")
            .map(Value::take)
            .ok_or_else(|| ClientError::BadResponse("neither result nor error".to_string()))
    }

    /// POSTs `body` to `/` with this client's credentials.
    pub fn post(&self, body: &[u8]) -> Result<HttpResponse, ClientError> {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            self.authorization,
            body.len()
        );
        self.exchange(head.as_bytes(), body)
    }

    /// GETs `path` (e.g. `/metrics`).
    pub fn get(&self, path: &str) -> Result<HttpResponse, ClientError> {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        self.exchange(head.as_bytes(), &[])
    }

    /// Sends a request head (and body) and reads one response.
    pub fn exchange(&self, head: &[u8], body: &[u8]) -> Result<HttpResponse, ClientError> {
        let addr = self.addr;
        let io = |source| ClientError::Io { addr, source };
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        stream.write_all(head).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        read_response(BufReader::new(stream)).map_err(|e| match e {
            ReadError::Io(source) => ClientError::Io { addr, source },
            ReadError::Bad(message) => ClientError::BadResponse(message),
        })
    }
}

enum ReadError {
    Io(io::Error),
    Bad(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

fn read_line(reader: &mut impl BufRead) -> Result<String, ReadError> {
    let mut line = Vec::new();
    reader
        .take(MAX_HEADER_LINE_BYTES as u64)
        .read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(ReadError::Bad("header line too long or cut".to_string()));
    }
    String::from_utf8(line)
        .map(|l| l.trim_end().to_string())
        .map_err(|_| ReadError::Bad("header is not UTF-8".to_string()))
}

/// Status line, headers, then a `Content-Length` body (or up to EOF).
fn read_response(mut reader: impl BufRead) -> Result<HttpResponse, ReadError> {
    let status_line = read_line(&mut reader)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ReadError::Bad(format!("bad status line '{status_line}'")))?;
    let mut content_length = None;
    for _ in 0..MAX_HEADER_LINES {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            let limit = content_length.unwrap_or(MAX_RESPONSE_BYTES);
            if limit > MAX_RESPONSE_BYTES {
                return Err(ReadError::Bad(format!(
                    "response of {limit} bytes is too large"
                )));
            }
            let mut body = Vec::new();
            reader.take(limit as u64).read_to_end(&mut body)?;
            return Ok(HttpResponse { status, body });
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = Some(value.trim().parse::<usize>().map_err(|_| {
                    ReadError::Bad(format!("bad Content-Length '{}'", value.trim()))
                })?);
            }
        }
    }
    Err(ReadError::Bad("too many header lines".to_string()))
}
