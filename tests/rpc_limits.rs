//! The RPC port of a real `timed --dev` under hostile local clients: silent
//! and trickling sockets cannot lock an authenticated client out, a request
//! without credentials is refused before its body is read, and a body that
//! would be costly to parse is a JSON-RPC error.

mod node_support;

use node_support::rpc::{connect_nonblocking, hold_rpc_sockets, metric, StopOnDrop, TRICKLE_EVERY};
use node_support::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use timecoin::rpc::auth::{basic_header, read_cookie};
use timecoin::rpc::errors::INVALID_REQUEST;
use timecoin::rpc::json_cost;
use timecoin::rpc::server::HEAD_TIMEOUT;

/// How long an authenticated call may take while the port is attacked.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

#[allow(clippy::disallowed_methods)] // test timing only measures, it decides nothing
fn now() -> Instant {
    Instant::now()
}

fn node() -> (tempfile::TempDir, DevNode) {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("node"));
    (dir, node)
}

/// The HTTP status of a response head read off `stream` (0 if none came).
fn status_of(stream: &mut TcpStream) -> u16 {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn idle_and_trickling_sockets_do_not_lock_an_authenticated_client_out() {
    let (_dir, node) = node();
    let addr = node.client.addr();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| hold_rpc_sockets(addr, &stop));
        let _stop = StopOnDrop(&stop);
        // Let the attack fill the slots first, then call across the head
        // deadline, while the attackers' slots expire and are re-taken.
        std::thread::sleep(Duration::from_millis(300));
        let started = now();
        let mut calls = 0;
        while now() - started < HEAD_TIMEOUT + Duration::from_millis(800) {
            let sent = now();
            assert!(node.call("getblockcount", json!([])).is_u64());
            let took = now() - sent;
            assert!(took < ANSWER_WITHIN, "call {calls} took {took:?}");
            calls += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        let metrics = String::from_utf8(node.client.get("/metrics").unwrap().body).unwrap();
        assert!(calls >= 5, "{calls} calls");
        assert!(
            metric(&metrics, "timecoin_rpc_connections_evicted_total") > 0,
            "{metrics}"
        );
    });
}

#[test]
fn a_trickled_head_is_cut_at_the_deadline_however_often_bytes_come() {
    let (_dir, node) = node();
    let mut stream = connect_nonblocking(node.client.addr()).unwrap();
    let started = now();
    let head = b"GET /metrics HTTP/1.1\r\nX-Filler: ";
    let mut bytes = head.iter().chain(std::iter::repeat(&b'a'));
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    // One byte per tick until the server answers.
    while response.is_empty() && now() - started < 3 * HEAD_TIMEOUT {
        let _ = stream.write(std::slice::from_ref(bytes.next().unwrap()));
        std::thread::sleep(TRICKLE_EVERY);
        if let Ok(n) = stream.read(&mut buffer) {
            response.extend_from_slice(&buffer[..n]);
        }
    }
    let took = now() - started;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(
        took < HEAD_TIMEOUT + Duration::from_millis(500),
        "answered after {took:?}"
    );
}

#[test]
fn a_request_without_credentials_is_refused_before_its_body_is_read() {
    let (_dir, node) = node();
    let wrong = basic_header("__cookie__", "not-the-secret");
    for (request, authorization, length, status) in [
        ("POST /", String::new(), 1usize << 30, 401), // over the body limit too
        (
            "POST /",
            format!("Authorization: {wrong}\r\n"),
            512 * 1024,
            401,
        ),
        // The routes open to all take no body.
        ("GET /metrics", String::new(), 512 * 1024, 413),
    ] {
        let mut stream = TcpStream::connect(node.client.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "{request} HTTP/1.1\r\nHost: x\r\n{authorization}Content-Length: {length}\r\n\r\n"
        );
        // The head and a sliver of the body: the answer must come without the rest.
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[b' '; 1024]).unwrap();
        let sent = now();
        assert_eq!(status_of(&mut stream), status, "{request} {authorization}");
        assert!(now() - sent < ANSWER_WITHIN, "waited for the body");
    }
    let metrics = String::from_utf8(node.client.get("/metrics").unwrap().body).unwrap();
    assert_eq!(metric(&metrics, "timecoin_rpc_unauthorized_total"), 2);
    assert!(
        node.call("getblockcount", json!([])).is_u64(),
        "still serving"
    );
}

/// Posts `body` with the node's cookie; the JSON-RPC error it gets.
fn error_of(node: &DevNode, body: &[u8]) -> Value {
    let response = node.client.post(body).unwrap();
    assert_eq!(response.status, 200);
    let reply: Value = serde_json::from_slice(&response.body).unwrap();
    reply["error"].clone()
}

#[test]
fn a_body_costly_to_parse_is_a_json_rpc_error() {
    let (_dir, node) = node();
    let many = format!("[{}0]", "0,".repeat(json_cost::MAX_VALUES));
    let error = error_of(&node, many.as_bytes());
    assert_eq!(error["code"], INVALID_REQUEST);
    assert!(
        error["message"].as_str().unwrap().contains("values"),
        "{error}"
    );
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":{}{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let error = error_of(&node, deep.as_bytes());
    assert_eq!(error["code"], INVALID_REQUEST);
    assert!(
        error["message"].as_str().unwrap().contains("nested deeper"),
        "{error}"
    );
    // A body over the size limit never reaches the parser.
    let cookie = read_cookie(&node.datadir).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {cookie}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        4 * 1024 * 1024
    );
    assert_eq!(
        node.client.exchange(head.as_bytes(), &[]).unwrap().status,
        413
    );
    assert!(
        node.call("getblockcount", json!([])).is_u64(),
        "still serving"
    );
}
