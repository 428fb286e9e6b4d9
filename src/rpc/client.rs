//! A blocking JSON-RPC client over plain HTTP/1.1, for `time-cli` and tests:
//! [`RpcClient`] opens one connection per call; [`RpcConnection`] keeps one
//! alive for a thread that makes many calls (the load generator), and
//! reconnects once when the server closed it while idle. Each request goes
//! out in one write, so it never waits on Nagle and a delayed ACK. The
//! node's answer is not trusted either: the response size is capped and
//! every failure is a typed error.

use super::errors::RpcError;
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
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
        let response = self.post(request_body(method, params).as_bytes())?;
        single_result(&response)
    }

    /// A keep-alive connection to the same node, for one thread's many calls.
    pub fn connection(&self) -> RpcConnection {
        RpcConnection {
            client: self.clone(),
            stream: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
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
        stream.write_all(&request_bytes(head, body)).map_err(io)?;
        read_response(&mut BufReader::new(stream))
            .map(|(response, _)| response)
            .map_err(|e| match e {
                ReadError::Io(source) => ClientError::Io { addr, source },
                ReadError::Bad(message) => ClientError::BadResponse(message),
            })
    }
}

/// Head and body as one buffer, written at once.
fn request_bytes(head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(head.len() + body.len());
    bytes.extend_from_slice(head);
    bytes.extend_from_slice(body);
    bytes
}

/// One JSON-RPC 2.0 request as text.
fn request_body(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()
}

/// Refuses non-200 answers with the error an operator can act on.
fn check_status(response: &HttpResponse) -> Result<(), ClientError> {
    match response.status {
        200 => Ok(()),
        401 => Err(ClientError::Unauthorized),
        status => Err(ClientError::Http {
            status,
            body: String::from_utf8_lossy(&response.body).trim().to_string(),
        }),
    }
}

fn single_result(response: &HttpResponse) -> Result<Value, ClientError> {
    check_status(response)?;
    let reply: Value = serde_json::from_slice(&response.body)
        .map_err(|e| ClientError::BadResponse(e.to_string()))?;
    reply_result(reply)
}

/// A reply object's `result`, or its `error` as [`ClientError::Rpc`].
fn reply_result(mut reply: Value) -> Result<Value, ClientError> {
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

/// Ids of batch requests: unique per process, so a stale reply is never taken
/// for a fresh one.
static NEXT_BATCH_ID: AtomicU64 = AtomicU64::new(1);

/// One kept-alive HTTP connection to a node. It reconnects once when the node
/// closed the idle connection; a failed exchange drops the connection.
#[derive(Debug)]
pub struct RpcConnection {
    client: RpcClient,
    stream: Option<BufReader<TcpStream>>,
}

impl RpcConnection {
    /// Calls `method` and returns its `result`, or its error as [`ClientError::Rpc`].
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let response = self.post(request_body(method, params).as_bytes())?;
        single_result(&response)
    }

    /// Sends `calls` as one JSON-RPC batch; each answer is in the calls' order.
    pub fn batch(
        &mut self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        let first = NEXT_BATCH_ID.fetch_add(calls.len() as u64, Ordering::Relaxed);
        let requests: Vec<Value> = calls
            .iter()
            .zip(first..)
            .map(|((method, params), id)| {
                json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
            })
            .collect();
        let response = self.post(Value::Array(requests).to_string().as_bytes())?;
        check_status(&response)?;
        let replies: Vec<Value> = serde_json::from_slice(&response.body)
            .map_err(|e| ClientError::BadResponse(format!("batch answer: {e}")))?;
        let mut answers: Vec<Option<Value>> = vec![None; calls.len()];
        for reply in replies {
            let slot = reply
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| id.checked_sub(first))
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| answers.get_mut(i));
            if let Some(slot) = slot {
                *slot = Some(reply);
            }
        }
        Ok(answers
            .into_iter()
            .map(|reply| {
                reply
                    .ok_or_else(|| ClientError::BadResponse("batch reply missing".to_string()))
                    .and_then(reply_result)
            })
            .collect())
    }

    fn post(&mut self, body: &[u8]) -> Result<HttpResponse, ClientError> {
        let client = &self.client;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            client.addr,
            client.authorization,
            body.len()
        );
        let reused = self.stream.is_some();
        match self.exchange(head.as_bytes(), body) {
            Err(ClientError::Io { .. }) if reused => self.exchange(head.as_bytes(), body),
            other => other,
        }
    }

    fn exchange(&mut self, head: &[u8], body: &[u8]) -> Result<HttpResponse, ClientError> {
        let addr = self.client.addr;
        let timeout = self.client.timeout;
        let io = |source| ClientError::Io { addr, source };
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect_timeout(&addr, timeout)
                    .map_err(|source| ClientError::Connect { addr, source })?;
                stream.set_read_timeout(Some(timeout)).map_err(io)?;
                stream.set_write_timeout(Some(timeout)).map_err(io)?;
                // Small requests back to back: don't wait for Nagle.
                stream.set_nodelay(true).map_err(io)?;
                BufReader::new(stream)
            }
        };
        stream
            .get_mut()
            .write_all(&request_bytes(head, body))
            .map_err(io)?;
        let (response, keep_alive) = read_response(&mut stream).map_err(|e| match e {
            ReadError::Io(source) => ClientError::Io { addr, source },
            ReadError::Bad(message) => ClientError::BadResponse(message),
        })?;
        if keep_alive {
            self.stream = Some(stream);
        }
        Ok(response)
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
    if line.is_empty() {
        // Closed by the server (e.g. an idle keep-alive connection): an I/O
        // error, so a reused connection is retried on a fresh one.
        return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\n") {
        return Err(ReadError::Bad("header line too long or cut".to_string()));
    }
    String::from_utf8(line)
        .map(|l| l.trim_end().to_string())
        .map_err(|_| ReadError::Bad("header is not UTF-8".to_string()))
}

/// A `Transfer-Encoding: chunked` body (the server chunks large answers),
/// capped at [`MAX_RESPONSE_BYTES`].
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Bad(format!("bad chunk size '{size_text}'")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            for _ in 0..MAX_HEADER_LINES {
                if read_line(reader)?.is_empty() {
                    return Ok(body);
                }
            }
            return Err(ReadError::Bad("too many trailer lines".to_string()));
        }
        if body.len().saturating_add(size) > MAX_RESPONSE_BYTES {
            return Err(ReadError::Bad(format!(
                "response over {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let start = body.len();
        reader.by_ref().take(size as u64).read_to_end(&mut body)?;
        if body.len() - start < size {
            return Err(ReadError::Bad("chunk cut short".to_string()));
        }
        if !read_line(reader)?.is_empty() {
            return Err(ReadError::Bad("chunk not followed by CRLF".to_string()));
        }
    }
}

/// Status line, headers, then a `Content-Length` body (or up to EOF). Also
/// says whether the connection can carry another request: only with a
/// `Content-Length` and no `Connection: close`.
fn read_response(reader: &mut impl BufRead) -> Result<(HttpResponse, bool), ReadError> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ReadError::Bad(format!("bad status line '{status_line}'")))?;
    let mut content_length = None;
    let mut close = false;
    let mut chunked = false;
    for _ in 0..MAX_HEADER_LINES {
        let line = read_line(reader)?;
        if line.is_empty() {
            if chunked {
                let body = read_chunked(reader)?;
                return Ok((HttpResponse { status, body }, !close));
            }
            let limit = content_length.unwrap_or(MAX_RESPONSE_BYTES);
            if limit > MAX_RESPONSE_BYTES {
                return Err(ReadError::Bad(format!(
                    "response of {limit} bytes is too large"
                )));
            }
            let mut body = Vec::new();
            reader.by_ref().take(limit as u64).read_to_end(&mut body)?;
            if body.len() < limit && content_length.is_some() {
                return Err(ReadError::Bad("response body cut short".to_string()));
            }
            let keep_alive = content_length.is_some() && !close;
            return Ok((HttpResponse { status, body }, keep_alive));
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
            if name.trim().eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            }
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = Some(value.trim().parse::<usize>().map_err(|_| {
                    ReadError::Bad(format!("bad Content-Length '{}'", value.trim()))
                })?);
            }
        }
    }
    Err(ReadError::Bad("too many header lines".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<(HttpResponse, bool), ReadError> {
        read_response(&mut io::Cursor::new(bytes))
    }

    #[test]
    fn chunked_body_is_reassembled_and_the_connection_stays_open() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        let (response, keep_alive) = read(raw).ok().unwrap();
        assert_eq!(response.body, b"{\"a\":1}");
        assert!(keep_alive);
    }

    #[test]
    fn content_length_answer_with_connection_close_is_not_reused() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let (response, keep_alive) = read(raw).ok().unwrap();
        assert_eq!(response.body, b"{}");
        assert!(!keep_alive);
    }

    #[test]
    fn a_kept_alive_connection_the_server_closed_is_retried_once_on_a_new_one() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let body = r#"{"jsonrpc":"2.0","result":7}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            for _ in 0..2 {
                // Answers one request, then closes: as after an idle timeout.
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let (mut line, mut length) = (String::new(), 0);
                while line != "\r\n" {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.trim().parse().unwrap();
                    }
                }
                // Read the whole request: closing on unread bytes would reset.
                reader.read_exact(&mut vec![0; length]).unwrap();
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
            }
        });
        let client = RpcClient::new(addr, "Basic x".into(), Duration::from_secs(10));
        let mut connection = client.connection();
        assert_eq!(connection.call("a", json!([])).unwrap(), json!(7));
        assert_eq!(connection.call("b", json!([])).unwrap(), json!(7));
        server.join().unwrap();
    }

    #[test]
    fn cut_or_oversized_chunks_are_bad_responses() {
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort";
        assert!(matches!(read(cut), Err(ReadError::Bad(_))));
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n";
        assert!(matches!(read(huge), Err(ReadError::Bad(_))));
        let bad_size = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(read(bad_size), Err(ReadError::Bad(_))));
    }
}
