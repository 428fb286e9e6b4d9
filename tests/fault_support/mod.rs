//! Fault-injection fixtures for the multi-process tests (DESIGN §11.3): a
//! devnet whose validators reach each other only through a
//! [`proxy::FaultProxy`], and the checks every fault scenario ends with:
//! one tip on every node, full peer sets without bans, `verifychain`, and
//! a fresh transfer finalized everywhere. A check returns what it measured,
//! or a failure that carries every node's state and its log evidence.

#![allow(dead_code)] // each test binary uses its own part

pub mod proxy;

use crate::devnet_support::{free_ports, pay, Devnet, Validator};
use proxy::{FaultProxy, Target};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use timecoin::genesis::devnet_validator_keys;
use timecoin::types::{Amount, Hash, OutPoint};

/// What "the same tip" means after a fault: the issue asks for one
/// certified tip (a best tip may still be replaced).
pub const AGREE_ON: TipKind = TipKind::Certified;
/// Poll period of the checks: fast next to a 2 s slot.
const POLL: Duration = Duration::from_millis(100);
/// Longest a node's chain may keep moving under a tip's two reads.
const RACE_LIMIT: Duration = Duration::from_secs(10);
/// Longest uncertified suffix walked back to find a certified block.
const MAX_UNCERTIFIED_WALK: u64 = 500;

/// Starts `n` validators whose genesis addresses are the proxy's front
/// ports (each listens on a port of its own behind it) and waits until all
/// are connected, through the proxy.
pub fn start_behind_proxy(n: usize) -> (Devnet, FaultProxy) {
    start_behind_proxy_with(n, |text| text)
}

/// [`start_behind_proxy`] on the generated chain config as `edit` changes it.
pub fn start_behind_proxy_with(
    n: usize,
    edit: impl FnOnce(String) -> String,
) -> (Devnet, FaultProxy) {
    // Bound first, so the nodes' free ports cannot collide with them.
    let fronts: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let advertised: Vec<u16> = fronts
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let mut devnet = Devnet::prepare_on(&free_ports(n), &advertised, edit);
    let targets = devnet
        .nodes
        .iter()
        .map(|v| Target {
            node_id: devnet_validator_keys(v.index).0.public(),
            addr: ([127, 0, 0, 1], v.p2p_port).into(),
        })
        .collect();
    let proxy = FaultProxy::start(fronts, targets);
    for i in 0..n {
        devnet.launch(i);
    }
    devnet.wait_connected();
    (devnet, proxy)
}

/// Wall time since a start, to report how long a recovery took.
#[derive(Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)] // measures a test's phases; no protocol logic
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Polls `ready` until it returns `Some` or `limit` has passed (`None`).
pub fn poll_within<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let clock = Stopwatch::start();
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if clock.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(POLL); // polling pace; the deadline bounds a failure only
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TipKind {
    /// The node's best block (`getblockchaininfo`).
    Best,
    /// The highest block of its best chain that `getblock` shows `certified`.
    Certified,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub hash: String,
    /// `getblock`'s `certified` field, if the node reports one.
    pub certified: Option<bool>,
}

/// `getblock`, or `None` if the block left the node's chain (a reorg
/// between two reads).
fn block(node: &Validator, hash: &str) -> Option<Value> {
    node.client().call("getblock", json!([hash, 1])).ok()
}

/// Node `node`'s tip of `kind`.
pub fn tip_of(node: &Validator, kind: TipKind) -> Tip {
    // A block read a moment ago may be reorganized away: read again.
    poll_within(RACE_LIMIT, || read_tip(node, kind))
        .unwrap_or_else(|| panic!("node {}: its chain kept changing under reads", node.index))
}

fn read_tip(node: &Validator, kind: TipKind) -> Option<Tip> {
    let info = node.call("getblockchaininfo", json!([]));
    let best = info["blocks"].as_u64().unwrap();
    let mut height = best;
    let mut hash = info["bestblockhash"].as_str().unwrap().to_string();
    loop {
        let header = if height > 0 {
            Some(block(node, &hash)?)
        } else {
            None
        };
        let certified = header.as_ref().and_then(|b| b["certified"].as_bool());
        if kind == TipKind::Best || height == 0 || certified == Some(true) {
            return Some(Tip {
                height,
                hash,
                certified,
            });
        }
        assert!(
            certified.is_some(),
            "node {}: getblock shows no `certified` field: certified blocks have not landed",
            node.index
        );
        assert!(
            best - height < MAX_UNCERTIFIED_WALK,
            "node {}: no certified block in the {} blocks under its tip",
            node.index,
            best - height
        );
        hash = header?["previousblockhash"].as_str()?.to_string();
        height -= 1;
    }
}

/// The tip all of `nodes` agree on, if they do: the same block at the
/// lowest of their tips, none more than one block above it (one may be in
/// flight).
pub fn agreed_tip(devnet: &Devnet, nodes: &[usize], kind: TipKind) -> Option<Tip> {
    let tips: Vec<Tip> = nodes
        .iter()
        .map(|&i| tip_of(&devnet.nodes[i], kind))
        .collect();
    let low = tips.iter().min_by_key(|t| t.height)?.clone();
    let high = tips.iter().map(|t| t.height).max()?;
    let same_block = nodes.iter().zip(&tips).all(|(&i, tip)| {
        tip.height == low.height && tip.hash == low.hash
            || devnet.nodes[i]
                .client()
                .call("getblockhash", json!([low.height]))
                .is_ok_and(|h| h == json!(low.hash))
    });
    (same_block && high <= low.height + 1).then_some(low)
}

/// Every running node's best and (if shown) certified state, one per line.
pub fn describe_tips(devnet: &Devnet) -> String {
    devnet
        .running()
        .map(|v| {
            let tip = tip_of(v, TipKind::Best);
            format!(
                "  node {}: height {} {} certified {:?}\n",
                v.index, tip.height, tip.hash, tip.certified
            )
        })
        .collect()
}

/// Waits up to `limit` for every running node to share one [`AGREE_ON`]
/// tip at least as high as the highest best tip when the wait began (so
/// the blocks held then, forks included, were settled by a certificate);
/// returns it and how long that took, or why not.
pub fn wait_one_tip(devnet: &Devnet, limit: Duration) -> Result<(Tip, Duration), String> {
    let nodes: Vec<usize> = devnet.running().map(|v| v.index).collect();
    let floor = devnet
        .running()
        .map(|v| tip_of(v, TipKind::Best).height)
        .max()
        .unwrap_or(0);
    let clock = Stopwatch::start();
    let settled = || agreed_tip(devnet, &nodes, AGREE_ON).filter(|tip| tip.height >= floor);
    match poll_within(limit, settled) {
        Some(tip) => Ok((tip, clock.elapsed())),
        None => Err(format!(
            "nodes {nodes:?} did not share one {AGREE_ON:?} tip at height {floor} or above \
             within {limit:?}:\n{}{}",
            describe_tips(devnet),
            evidence(devnet)
        )),
    }
}

/// A node's view of its links: established peers, active bans, and the
/// misbehaviour scores it holds against its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    pub peers: u64,
    pub bans: u64,
    pub misbehaviour_disconnects: u64,
    pub scores: Vec<u64>,
    /// Addresses this node dialled (outbound peers).
    pub dialled: Vec<String>,
}

pub fn links_of(node: &Validator) -> Links {
    let info = node.call("getnetworkinfo", json!([]));
    let peers = node.call("getpeerinfo", json!([]));
    let peers = peers.as_array().unwrap();
    Links {
        peers: info["connections"].as_u64().unwrap(),
        bans: info["bans"].as_u64().unwrap(),
        misbehaviour_disconnects: info["misbehaviour_disconnects"].as_u64().unwrap(),
        scores: peers
            .iter()
            .map(|p| p["misbehaviour_score"].as_u64().unwrap())
            .collect(),
        dialled: peers
            .iter()
            .filter(|p| p["inbound"] == json!(false))
            .map(|p| p["addr"].as_str().unwrap().to_string())
            .collect(),
    }
}

/// Waits up to `limit` until node `i` has exactly `peers` peers.
pub fn wait_peers(
    devnet: &Devnet,
    i: usize,
    peers: u64,
    limit: Duration,
) -> Result<Duration, String> {
    let clock = Stopwatch::start();
    poll_within(limit, || {
        (links_of(&devnet.nodes[i]).peers == peers).then_some(())
    })
    .map(|()| clock.elapsed())
    .ok_or_else(|| {
        format!(
            "node {i} did not reach {peers} peers within {limit:?}: {:?}",
            links_of(&devnet.nodes[i])
        )
    })
}

/// Waits up to `limit` for every running node to have every other as a
/// peer; then every node must hold no ban and score no peer.
pub fn wait_full_mesh_without_bans(devnet: &Devnet, limit: Duration) -> Result<Duration, String> {
    let want = devnet.running().count() as u64 - 1;
    let clock = Stopwatch::start();
    let all = || devnet.running().all(|v| links_of(v).peers == want);
    if poll_within(limit, || all().then_some(())).is_none() {
        return Err(format!(
            "not every node has {want} peers within {limit:?}:\n{}{}",
            describe_links(devnet),
            evidence(devnet)
        ));
    }
    let took = clock.elapsed();
    let clean = devnet.running().all(|v| {
        let l = links_of(v);
        l.bans == 0 && l.scores.iter().all(|&s| s == 0)
    });
    if !clean {
        return Err(format!(
            "a node banned or scored an honest peer:\n{}{}",
            describe_links(devnet),
            evidence(devnet)
        ));
    }
    Ok(took)
}

pub fn describe_links(devnet: &Devnet) -> String {
    devnet
        .running()
        .map(|v| format!("  node {}: {:?}\n", v.index, links_of(v)))
        .collect()
}

/// `verifychain` on every running node.
pub fn verify_all(devnet: &Devnet) -> Result<(), String> {
    for node in devnet.running() {
        let report = node.call("verifychain", json!([]));
        if report["valid"] != json!(true) {
            return Err(format!("node {}: verifychain failed: {report}", node.index));
        }
    }
    Ok(())
}

/// `gettxstatus`'s status on node `i` (`"unknown"` if it never saw it).
pub fn status_on(devnet: &Devnet, i: usize, txid: &Hash) -> String {
    devnet.nodes[i].status_of(txid)
}

/// Waits up to `limit` for `txid` to be finalized on every node of `on`;
/// a tx that settles otherwise fails at once.
pub fn wait_finalized_on(
    devnet: &Devnet,
    on: &[usize],
    txid: &Hash,
    limit: Duration,
) -> Result<Duration, String> {
    let clock = Stopwatch::start();
    let mut settled_otherwise = None;
    let done = poll_within(limit, || {
        let statuses: Vec<String> = on.iter().map(|&i| status_on(devnet, i, txid)).collect();
        if let Some(bad) = statuses
            .iter()
            .find(|s| *s == "rejected" || *s == "expired")
        {
            settled_otherwise = Some(bad.clone());
            return Some(());
        }
        statuses.iter().all(|s| s == "finalized").then_some(())
    });
    let statuses = || -> Vec<String> { on.iter().map(|&i| status_on(devnet, i, txid)).collect() };
    match (done, settled_otherwise) {
        (Some(()), None) => Ok(clock.elapsed()),
        (Some(()), Some(bad)) => Err(format!(
            "{txid} settled {bad} on nodes {on:?}: {:?}",
            statuses()
        )),
        (None, _) => Err(format!(
            "{txid} not finalized on nodes {on:?} within {limit:?}: {:?}\n{}",
            statuses(),
            evidence(devnet)
        )),
    }
}

/// Sends a fresh transfer of `coin` through node `via` and waits up to
/// `limit` for every running node to finalize it.
pub fn fresh_transfer_finalizes(
    devnet: &Devnet,
    via: usize,
    coin: (OutPoint, Amount),
    limit: Duration,
) -> Result<Duration, String> {
    let tx = pay(&devnet.spec, coin, "fresh");
    let txid = devnet.nodes[via]
        .submit(&tx)
        .map_err(|e| format!("node {via} refused a fresh transfer: {e:?}"))?;
    let all: Vec<usize> = devnet.running().map(|v| v.index).collect();
    wait_finalized_on(devnet, &all, &txid, limit)
}

/// Log lines that show block disagreement and bans.
const EVIDENCE: [&str; 7] = [
    "not adopting block",
    "refused block",
    "never sent that parent",
    "undid block",
    ", banned by",
    "misbehaviour",
    "sync: ",
];

/// Per node: how many log lines match each [`EVIDENCE`] pattern, and the
/// last line of each.
pub fn evidence(devnet: &Devnet) -> String {
    let mut out = String::new();
    for node in &devnet.nodes {
        let log = node.log();
        out.push_str(&format!(
            "  node {} log ({} lines):\n",
            node.index,
            log.lines().count()
        ));
        for pattern in EVIDENCE {
            let hits: Vec<&str> = log.lines().filter(|l| l.contains(pattern)).collect();
            if let Some(last) = hits.last() {
                out.push_str(&format!(
                    "    {:>6} × {pattern:?}; last: {last}\n",
                    hits.len()
                ));
            }
        }
    }
    out
}
