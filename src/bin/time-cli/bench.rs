//! `time-cli bench`: the load generator. It pre-funds many coins from the
//! wallet (a two-level fan-out, each level waited to finality), pre-signs
//! one transfer per coin (a fraction as double-spend pairs sent to two
//! nodes), offers them open-loop at a fixed rate from a small pool of sender
//! threads on keep-alive connections, tracks every transaction with batched
//! `gettxstatus` until it settles or the drain deadline passes (a 1-in-10
//! sample from the start, for the client-observed column; the rest once
//! they are a second old, so tracking loads the nodes little), and reports
//! rates, latency percentiles, outcome counts, each node's CPU and RSS
//! (pid from `<datadir>/timed.pid`) and, from each node's `/metrics` before
//! and after, the counts that explain latency: polls failed of started,
//! `Unknown` verdicts, requests dropped by rate limits or full queues.
//!
//! It must always end by itself: the send phase is bounded by the schedule
//! and the tracking by the drain deadline. It never reads the node's memory
//! beyond `/proc/<pid>/{stat,status}`.

use crate::ceiling::{self, Ceiling, CeilingError, CostPerTx};
use crate::{chain_rules, read_port, CliError, GlobalArgs};
use clap::Args;
use crossbeam_channel::{unbounded, Receiver, Sender};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use timecoin::rpc::auth::read_cookie;
use timecoin::rpc::client::{RpcClient, RpcConnection};
use timecoin::types::{Address, Amount, Hash, OutPoint, Tx, TxOut};
use timecoin::wallet::{build_transfer, Spendable, Wallet};

/// Where the load's transfers pay: a public throwaway key, so a run leaves
/// no dust in the wallet (`listunspent` answers at most 10,000 coins, and the
/// next run must still find its funding coin among them).
const SINK_LABEL: &str = "timecoin bench sink";
/// Outputs per fan-out transaction: well inside the devnet's 16 KiB tx limit.
const FANOUT: usize = 200;
/// Statuses asked in one JSON-RPC batch (the server takes up to 1,000).
const STATUS_BATCH: usize = 500;
/// Pause between two status rounds while funding (one tx waited on).
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Pause between two status rounds over every pending load tx. The
/// latencies come from the nodes' own timestamps, so this only coarsens
/// the client-observed column; asking every 20 ms cost the loaded nodes
/// ~4,500 status round trips a second each, CPU the load then lacked.
const TRACK_INTERVAL: Duration = Duration::from_millis(200);
/// One job in this many is asked from the moment it is sent, for the
/// client-observed column; the others are first asked `FIRST_ASK_AFTER`
/// later, when most are durable, so a tx costs its loaded node about one
/// status call (asking all from the start took ~1.7 per tx).
const OBSERVED_SAMPLE: usize = 10;
const FIRST_ASK_AFTER: Duration = Duration::from_secs(1);
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// Most transactions one run offers: bounds every table the bench keeps.
const MAX_SENDS: usize = 1_000_000;

#[derive(Args)]
pub struct BenchArgs {
    /// Offered send rate, transactions per second
    #[arg(long)]
    rate: f64,
    /// Length of the send phase in seconds
    #[arg(long)]
    duration: f64,
    /// Fraction of the sends made as double-spend pairs (each pair's two
    /// transactions go to two different nodes when there are several)
    #[arg(long, default_value_t = 0.0)]
    conflicts: f64,
    /// Nodes to load, each an RPC URL (credentials from the global flags)
    /// or a datadir [default: the global --datadir/--rpc-* node]
    #[arg(long, num_args = 1.., value_name = "URL|DATADIR")]
    nodes: Vec<String>,
    /// Coins to pre-fund [default: exactly the ones the run spends]
    #[arg(long)]
    inputs: Option<usize>,
    /// Sender threads, each with one keep-alive connection per node
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Seconds to keep tracking after the last send before giving up
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// Where the disk probe of the ceiling writes its scratch LMDB (use the
    /// nodes' disk)
    #[arg(long, default_value = ".")]
    ceiling_dir: PathBuf,
    /// Skip measuring the machine's ceiling after the load
    #[arg(long)]
    no_ceiling: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Follow the sampled transactions (1 in 10) with this many parked
    /// `waitfortx` calls instead of polling `gettxstatus` for them: what a
    /// client sees when it waits for finality without polling [default: poll]
    #[arg(long, default_value_t = 0)]
    waiters: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--{flag} {value}: {problem}")]
    BadArgument {
        flag: &'static str,
        value: String,
        problem: String,
    },
    #[error("--inputs {given} is fewer than the {needed} coins the run spends")]
    TooFewInputs { given: usize, needed: usize },
    #[error("the wallet has no coin of at least {needed} on the first node; fund it (devnet: time-cli devnet-wallet)")]
    NoFunds { needed: Amount },
    #[error("pre-funding transaction {txid} ended {status}; the node refused the fan-out")]
    FundingFailed { txid: Hash, status: String },
    #[error("pre-funding transaction {txid} did not finalize within {secs} s")]
    FundingTimeout { txid: Hash, secs: u64 },
    #[error("cannot start a bench thread: {0}")]
    Spawn(std::io::Error),
    #[error("measuring the machine's ceiling: {0}")]
    Ceiling(#[from] CeilingError),
}

/// One node under load.
struct Node {
    label: String,
    client: RpcClient,
    pid: Option<u32>,
}

/// One pre-signed transaction and where it goes.
struct Job {
    txid: Hash,
    hex: String,
    node: usize,
    /// Index of its double-spend pair, if any.
    pair: Option<usize>,
}

/// What a sender learnt about one job.
struct Sent {
    job: usize,
    at: Instant,
    /// How long `sendrawtransaction` took to answer.
    took: Duration,
    refused: Option<String>,
}

/// What tracking learnt about one job.
#[derive(Default, Clone)]
struct Tracked {
    sent_at: Option<Instant>,
    submit_ms: Option<u64>,
    refused: bool,
    status: Option<String>,
    /// Asked from the start (see `OBSERVED_SAMPLE`).
    sampled: bool,
    /// Followed by a `waitfortx` call (`--waiters`), not by polling.
    waited: bool,
    observed_final: Option<Duration>,
    accept_ms: Option<u64>,
    finality_ms: Option<u64>,
    durable_ms: Option<u64>,
}

#[derive(Serialize)]
pub struct Percentiles {
    count: usize,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
}

#[derive(Serialize)]
pub struct NodeUsage {
    node: String,
    pid: Option<u32>,
    cpu_percent: Option<f64>,
    rss_mib: Option<f64>,
    /// The node's own memory: RSS without the mapped LMDB file.
    rss_anon_mib: Option<f64>,
    peak_rss_mib: Option<f64>,
    /// Counter increases over the run; `None` if `/metrics` was unreadable.
    counters: Option<NodeCounters>,
}

/// What a node counted during the run (differences of `/metrics`).
#[derive(Serialize, Default, Clone, Copy)]
pub struct NodeCounters {
    polls_started: u64,
    polls_failed: u64,
    verdicts_valid: u64,
    verdicts_invalid: u64,
    verdicts_unknown: u64,
    /// Requests from peers dropped by a rate limit, every class.
    rate_limited: u64,
    unsolicited_responses: u64,
    /// Messages dropped because a queue between threads was full.
    queue_drops: u64,
    /// ed25519 checks (finality votes and tx inputs): the CPU ceiling's unit.
    signatures_verified: u64,
    /// LMDB puts and deletes committed (ledger and block threads): the
    /// disk ceiling's unit.
    lmdb_writes: u64,
}

impl NodeCounters {
    /// Reads the counters from a node's `/metrics` text.
    fn parse(text: &str) -> NodeCounters {
        let mut c = NodeCounters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            let slot = match name {
                "timecoin_polls_started_total" => &mut c.polls_started,
                "timecoin_polls_failed_total" => &mut c.polls_failed,
                "timecoin_net_verdicts_in_total{verdict=\"valid\"}" => &mut c.verdicts_valid,
                "timecoin_net_verdicts_in_total{verdict=\"invalid\"}" => &mut c.verdicts_invalid,
                "timecoin_net_verdicts_in_total{verdict=\"unknown\"}" => &mut c.verdicts_unknown,
                "timecoin_net_unsolicited_responses_total" => &mut c.unsolicited_responses,
                "timecoin_net_outbox_drops_total" | "timecoin_net_command_drops_total" => {
                    &mut c.queue_drops
                }
                "timecoin_vote_signatures_verified_total"
                | "timecoin_tx_signatures_verified_total"
                | "timecoin_block_vote_signatures_verified_total" => &mut c.signatures_verified,
                "timecoin_ledger_writes_total" | "timecoin_block_writes_total" => {
                    &mut c.lmdb_writes
                }
                _ if name.starts_with("timecoin_net_rate_limited_total{") => &mut c.rate_limited,
                _ => continue,
            };
            *slot = slot.saturating_add(value);
        }
        c
    }

    fn since(self, before: NodeCounters) -> NodeCounters {
        NodeCounters {
            polls_started: self.polls_started.saturating_sub(before.polls_started),
            polls_failed: self.polls_failed.saturating_sub(before.polls_failed),
            verdicts_valid: self.verdicts_valid.saturating_sub(before.verdicts_valid),
            verdicts_invalid: self
                .verdicts_invalid
                .saturating_sub(before.verdicts_invalid),
            verdicts_unknown: self
                .verdicts_unknown
                .saturating_sub(before.verdicts_unknown),
            rate_limited: self.rate_limited.saturating_sub(before.rate_limited),
            unsolicited_responses: self
                .unsolicited_responses
                .saturating_sub(before.unsolicited_responses),
            queue_drops: self.queue_drops.saturating_sub(before.queue_drops),
            signatures_verified: self
                .signatures_verified
                .saturating_sub(before.signatures_verified),
            lmdb_writes: self.lmdb_writes.saturating_sub(before.lmdb_writes),
        }
    }
}

/// A node's counters now, or `None` if its `/metrics` cannot be read.
fn counters(node: &Node) -> Option<NodeCounters> {
    let response = node.client.get("/metrics").ok()?;
    (response.status == 200).then(|| NodeCounters::parse(&String::from_utf8_lossy(&response.body)))
}

#[derive(Serialize)]
pub struct Report {
    offered_rate: f64,
    achieved_send_rate: f64,
    send_seconds: f64,
    sent: usize,
    plain_sent: usize,
    conflict_pairs: usize,
    refused_at_submit: usize,
    finalized: usize,
    plain_finalized: usize,
    /// Finalized over the load's span: first send to the last finality as
    /// the nodes timed it (not when the status poller happened to see it).
    finalized_per_sec: f64,
    rejected: usize,
    expired: usize,
    pending: usize,
    pairs_one_finalized: usize,
    pairs_both_finalized: usize,
    pairs_none_finalized: usize,
    submit_rpc_ms: Option<Percentiles>,
    submit_to_accepted_ms: Option<Percentiles>,
    submit_to_final_ms: Option<Percentiles>,
    submit_to_durable_ms: Option<Percentiles>,
    client_observed_final_ms: Option<Percentiles>,
    /// How long after the node's durable finality the client saw it, per
    /// sampled tx (client-observed minus submit→durable), in microseconds.
    client_gap_after_durable_us: Option<Percentiles>,
    /// `waitfortx` (`--waiters`) or `gettxstatus polling`.
    observed_by: &'static str,
    nodes: Vec<NodeUsage>,
    /// `None` with `--no-ceiling`, or when no node's `/metrics` was readable.
    ceiling: Option<Ceiling>,
}

pub fn run(global: &GlobalArgs, args: &BenchArgs) -> Result<String, CliError> {
    let sends = planned_sends(args)?;
    let pairs = pair_count(sends, args.conflicts);
    let coins_needed = sends - pairs;
    let inputs = args.inputs.unwrap_or(coins_needed);
    if inputs < coins_needed {
        return Err(BenchError::TooFewInputs {
            given: inputs,
            needed: coins_needed,
        }
        .into());
    }
    let nodes = nodes(global, &args.nodes)?;
    let wallet = Wallet::load(&global.wallet, global.network)?;
    let key = wallet
        .keys()
        .first()
        .ok_or_else(|| CliError::EmptyWallet {
            path: wallet.path().to_path_buf(),
        })?
        .keypair();
    let params = chain_rules(global.network)?;
    let fee = params.min_fee;
    let own = Address::from_pubkey(&key.public());
    // Each coin pays a transfer (one fee) or the second of a pair (two fees).
    let coin_value = Amount(fee.0.saturating_mul(3));
    let first = nodes
        .first()
        .map(|n| &n.client)
        .ok_or(CliError::NoCredentials)?;
    let funder = Funder {
        client: first,
        key,
        own,
        sink: Address::from_pubkey(
            &timecoin::crypto::Keypair::from_seed_label(SINK_LABEL).public(),
        ),
        fee,
        chain_id: params.chain_id,
        network: global.network,
    };
    let coins = funder.fund(inputs, coin_value)?;
    let jobs = plan_jobs(&coins, sends, pairs, nodes.len(), &funder)?;

    let cpu_before: Vec<Option<u64>> = nodes.iter().map(|n| n.pid.and_then(cpu_ticks)).collect();
    let counters_before: Vec<Option<NodeCounters>> = nodes.iter().map(counters).collect();
    let started = now();
    let (sent_tx, sent_rx) = unbounded();
    let (waited_tx, waited_rx) = unbounded();
    let send_phase = std::thread::scope(|scope| -> Result<_, CliError> {
        let to_wait = match args.waiters {
            0 => None,
            count => Some(spawn_waiters(scope, &nodes, &jobs, count, &waited_tx)?),
        };
        drop(waited_tx);
        let tracker = std::thread::Builder::new()
            .name("bench-status".into())
            .spawn_scoped(scope, || {
                let waited = (args.waiters > 0).then_some(waited_rx);
                track(
                    &nodes,
                    &jobs,
                    sent_rx,
                    waited,
                    Duration::from_secs(args.drain_secs),
                )
            })
            .map_err(BenchError::Spawn)?;
        let send_time = send_all(&nodes, &jobs, args, started, sent_tx, to_wait)?;
        let tracked = tracker
            .join()
            .map_err(|_| CliError::Unexpected("the status thread panicked".to_string()))?;
        Ok((send_time, tracked))
    })?;
    let (send_time, tracked) = send_phase;
    let wall = started.elapsed();
    let usage = nodes
        .iter()
        .zip(cpu_before.into_iter().zip(counters_before))
        .map(|(node, (cpu, counted))| node_usage(node, cpu, counted, wall))
        .collect();
    let mut report = summarize(args, &jobs, &tracked, send_time, wall, usage);
    if !args.no_ceiling {
        if let Some(cost) = cost_per_tx(&report) {
            report.ceiling = Some(
                ceiling::measure(&args.ceiling_dir, cost, report.finalized_per_sec)
                    .map_err(BenchError::from)?,
            );
        }
    }
    if args.json {
        // Building a JSON text from plain data cannot fail.
        Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ))
    } else {
        Ok(table(&report))
    }
}

/// The bench's one clock: a monotonic instant. It is an I/O driver that
/// measures real elapsed time, not a pure module, so it reads the OS clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

fn bad(flag: &'static str, value: impl ToString, problem: &str) -> BenchError {
    BenchError::BadArgument {
        flag,
        value: value.to_string(),
        problem: problem.to_string(),
    }
}

/// Transactions the schedule offers: rate × duration.
fn planned_sends(args: &BenchArgs) -> Result<usize, BenchError> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(bad("rate", args.rate, "must be above 0"));
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return Err(bad("duration", args.duration, "must be above 0"));
    }
    if !(0.0..=1.0).contains(&args.conflicts) {
        return Err(bad("conflicts", args.conflicts, "must be between 0 and 1"));
    }
    if args.threads == 0 || args.threads > 256 {
        return Err(bad("threads", args.threads, "must be 1 to 256"));
    }
    let sends = (args.rate * args.duration).ceil();
    if sends > MAX_SENDS as f64 {
        return Err(bad(
            "rate",
            args.rate,
            &format!("rate × duration is over {MAX_SENDS} transactions"),
        ));
    }
    Ok((sends as usize).max(1))
}

/// Double-spend pairs among `sends`: each pair is two of them.
fn pair_count(sends: usize, conflicts: f64) -> usize {
    ((sends as f64 * conflicts / 2.0).round() as usize).min(sends / 2)
}

/// The nodes under load: each `--nodes` entry, or the global node.
fn nodes(global: &GlobalArgs, specs: &[String]) -> Result<Vec<Node>, CliError> {
    if specs.is_empty() {
        let client = crate::rpc_client(global)?;
        let pid = global.datadir.as_deref().and_then(node_pid);
        let label = match &global.datadir {
            Some(dir) => dir.display().to_string(),
            None => client.addr().to_string(),
        };
        return Ok(vec![Node { label, client, pid }]);
    }
    specs
        .iter()
        .map(|spec| {
            if spec.starts_with("http://") {
                let mut one = global.clone();
                one.rpc_url = Some(spec.clone());
                Ok(Node {
                    label: spec.clone(),
                    client: crate::rpc_client(&one)?,
                    pid: None,
                })
            } else {
                let datadir = PathBuf::from(spec);
                let authorization = read_cookie(&datadir).map_err(|source| CliError::NodeFile {
                    path: datadir.join(".cookie"),
                    datadir: datadir.clone(),
                    source,
                })?;
                let port = read_port(&datadir)?;
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                Ok(Node {
                    label: spec.clone(),
                    client: RpcClient::new(addr, authorization, RPC_TIMEOUT),
                    pid: node_pid(&datadir),
                })
            }
        })
        .collect()
}

/// Builds, submits and waits for the fan-out transactions.
struct Funder<'a> {
    client: &'a RpcClient,
    key: &'a timecoin::crypto::Keypair,
    own: Address,
    sink: Address,
    fee: Amount,
    chain_id: timecoin::types::ChainId,
    network: timecoin::types::Network,
}

impl Funder<'_> {
    /// `count` coins of `value` each, finalized and owned by the wallet key.
    fn fund(&self, count: usize, value: Amount) -> Result<Vec<(OutPoint, Amount)>, CliError> {
        let branches = count.div_ceil(FANOUT);
        let branch_value = Amount(
            value
                .0
                .saturating_mul(FANOUT as u64)
                .saturating_add(self.fee.0),
        );
        let needed = Amount(
            branch_value
                .0
                .saturating_mul(branches as u64)
                .saturating_add(self.fee.0),
        );
        let source = self.largest_coin(needed)?;
        let trunk = self.transfer(&[source], &vec![branch_value; branches], self.own, self.fee)?;
        self.submit_and_wait(&[&trunk])?;
        let mut branch_txs = Vec::with_capacity(branches);
        for b in 0..branches {
            let leaves = FANOUT.min(count - b * FANOUT);
            let input = (trunk.outpoint(b as u32), branch_value);
            branch_txs.push(self.transfer(&[input], &vec![value; leaves], self.own, self.fee)?);
        }
        self.submit_and_wait(&branch_txs.iter().collect::<Vec<_>>())?;
        Ok(branch_txs
            .iter()
            .zip((0..count).step_by(FANOUT))
            .flat_map(|(tx, start)| {
                (0..FANOUT.min(count - start) as u32).map(move |vout| (tx.outpoint(vout), value))
            })
            .collect())
    }

    /// A signed transaction spending `inputs` to outputs of `values` paid to
    /// `to`, change (if any) back to the wallet, last.
    fn transfer(
        &self,
        inputs: &[(OutPoint, Amount)],
        values: &[Amount],
        to: Address,
        fee: Amount,
    ) -> Result<Tx, CliError> {
        let spendables: Vec<Spendable> = inputs
            .iter()
            .map(|&(outpoint, value)| Spendable {
                outpoint,
                value,
                key: self.key,
            })
            .collect();
        let outputs: Vec<TxOut> = values
            .iter()
            .map(|&value| TxOut { value, address: to })
            .collect();
        Ok(build_transfer(
            &spendables,
            &outputs,
            fee,
            self.own,
            self.chain_id,
        )?)
    }

    fn largest_coin(&self, needed: Amount) -> Result<(OutPoint, Amount), CliError> {
        let unspent = self.client.call(
            "listunspent",
            json!([
                0,
                crate::LISTUNSPENT_MAXCONF,
                [self.own.to_text(self.network)]
            ]),
        )?;
        unspent
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| {
                let txid: Hash = o.get("txid")?.as_str()?.parse().ok()?;
                let vout = u32::try_from(o.get("vout")?.as_u64()?).ok()?;
                let value = Amount(o.get("amount_units")?.as_u64()?);
                Some((OutPoint { txid, vout }, value))
            })
            .filter(|(_, value)| *value >= needed)
            .max_by_key(|(_, value)| *value)
            .ok_or_else(|| BenchError::NoFunds { needed }.into())
    }

    fn submit_and_wait(&self, txs: &[&Tx]) -> Result<(), CliError> {
        const WAIT_SECS: u64 = 60;
        let mut connection = self.client.connection();
        for tx in txs {
            connection.call("sendrawtransaction", json!([hex::encode(tx.encode())]))?;
        }
        let deadline = now() + Duration::from_secs(WAIT_SECS);
        let mut pending: Vec<Hash> = txs.iter().map(|tx| tx.txid()).collect();
        while let Some(&txid) = pending.first() {
            let status = status_of(&connection.call("gettxstatus", json!([txid.to_string()]))?);
            match status.as_str() {
                "finalized" => {
                    pending.remove(0);
                    continue;
                }
                "rejected" | "expired" => {
                    return Err(BenchError::FundingFailed { txid, status }.into())
                }
                _ => {}
            }
            if now() >= deadline {
                return Err(BenchError::FundingTimeout {
                    txid,
                    secs: WAIT_SECS,
                }
                .into());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }
}

fn status_of(report: &Value) -> String {
    report
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string()
}

/// Pre-signs the run: `pairs` double-spend pairs spread evenly among the
/// plain transfers, a pair's two halves in consecutive send slots and on
/// different nodes (when there are several).
fn plan_jobs(
    coins: &[(OutPoint, Amount)],
    sends: usize,
    pairs: usize,
    node_count: usize,
    funder: &Funder,
) -> Result<Vec<Job>, CliError> {
    let units = sends - pairs;
    let mut jobs = Vec::with_capacity(sends);
    let fee = funder.fee;
    for (unit, &coin) in coins.iter().take(units).enumerate() {
        let is_pair = (unit + 1) * pairs / units > unit * pairs / units;
        let node = jobs.len() % node_count;
        let spend = |fee: Amount| -> Result<Tx, CliError> {
            let value = Amount(coin.1 .0.saturating_sub(fee.0));
            funder.transfer(&[coin], &[value], funder.sink, fee)
        };
        let first = spend(fee)?;
        let index = jobs.len();
        jobs.push(Job {
            txid: first.txid(),
            hex: hex::encode(first.encode()),
            node,
            pair: is_pair.then_some(index + 1),
        });
        if is_pair {
            let second = spend(Amount(fee.0.saturating_mul(2)))?;
            jobs.push(Job {
                txid: second.txid(),
                hex: hex::encode(second.encode()),
                node: (node + 1) % node_count,
                pair: Some(index),
            });
        }
    }
    Ok(jobs)
}

/// A parked `waitfortx` call lasts at most this long (under the client's timeout).
const WAIT_TIMEOUT_MS: u64 = 20_000;

/// `count` threads that each park one `waitfortx` call at a time for the
/// sampled jobs they are handed, and report when the answer came (`None`
/// when it was not a finality). They end when the senders are done.
fn spawn_waiters<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    nodes: &'scope [Node],
    jobs: &'scope [Job],
    count: usize,
    waited: &Sender<(usize, Option<Duration>)>,
) -> Result<Sender<(usize, Instant)>, CliError> {
    let (to_wait, waits) = unbounded::<(usize, Instant)>();
    for thread in 0..count {
        let (waits, waited) = (waits.clone(), waited.clone());
        std::thread::Builder::new()
            .name(format!("bench-wait-{thread}"))
            .spawn_scoped(scope, move || {
                let mut connections: Vec<RpcConnection> =
                    nodes.iter().map(|n| n.client.connection()).collect();
                for (index, sent_at) in waits {
                    let Some(job) = jobs.get(index) else {
                        continue;
                    };
                    let answer = connections.get_mut(job.node).map(|c| {
                        c.call(
                            "waitfortx",
                            json!([job.txid.to_string(), WAIT_TIMEOUT_MS]),
                        )
                    });
                    let seen = now();
                    let finalized = matches!(
                        answer,
                        Some(Ok(ref v)) if v.get("status").and_then(Value::as_str) == Some("finalized")
                    );
                    let observed = finalized.then(|| seen.saturating_duration_since(sent_at));
                    if waited.send((index, observed)).is_err() {
                        return;
                    }
                }
            })
            .map_err(BenchError::Spawn)?;
    }
    Ok(to_wait)
}

/// Offers every job at its scheduled instant (`started` + i / rate), from
/// `args.threads` threads, job i on thread i mod threads. Returns how long
/// the sending took.
fn send_all(
    nodes: &[Node],
    jobs: &[Job],
    args: &BenchArgs,
    started: Instant,
    sent: Sender<Sent>,
    to_wait: Option<Sender<(usize, Instant)>>,
) -> Result<Duration, CliError> {
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(args.threads);
        for thread in 0..args.threads {
            let sent = sent.clone();
            let to_wait = to_wait.clone();
            let handle = std::thread::Builder::new()
                .name(format!("bench-send-{thread}"))
                .spawn_scoped(scope, move || {
                    let mut connections: Vec<RpcConnection> =
                        nodes.iter().map(|n| n.client.connection()).collect();
                    for (index, job) in jobs.iter().enumerate().skip(thread).step_by(args.threads) {
                        let due = started + interval.saturating_mul(index as u32);
                        // Pacing only: a late sender sends at once (open loop).
                        std::thread::sleep(due.saturating_duration_since(now()));
                        let at = now();
                        let refused = connections
                            .get_mut(job.node)
                            .map(|c| c.call("sendrawtransaction", json!([job.hex])))
                            .and_then(|answer| answer.err())
                            .map(|e| e.to_string());
                        if let (Some(to_wait), None) = (&to_wait, &refused) {
                            if index % OBSERVED_SAMPLE == 0 {
                                // The waiters outlive the senders: it cannot fail.
                                let _ = to_wait.send((index, at));
                            }
                        }
                        let report = Sent {
                            job: index,
                            at,
                            took: now().saturating_duration_since(at),
                            refused,
                        };
                        if sent.send(report).is_err() {
                            return;
                        }
                    }
                })
                .map_err(BenchError::Spawn)?;
            senders.push(handle);
        }
        drop(sent);
        drop(to_wait);
        for handle in senders {
            handle
                .join()
                .map_err(|_| CliError::Unexpected("a sender thread panicked".to_string()))?;
        }
        Ok(started.elapsed())
    })
}

/// Polls `gettxstatus` in batches, per node, for every sent job until all
/// have settled, or `drain` after the last send. With `waited` (the
/// `--waiters` mode) the sampled jobs' observed finality comes from there,
/// and they are polled only for the nodes' timings, like the rest.
fn track(
    nodes: &[Node],
    jobs: &[Job],
    sent: Receiver<Sent>,
    waited: Option<Receiver<(usize, Option<Duration>)>>,
    drain: Duration,
) -> Vec<Tracked> {
    let mut tracked = vec![Tracked::default(); jobs.len()];
    let mut awaiting_waits = 0usize;
    let mut connections: Vec<RpcConnection> = nodes.iter().map(|n| n.client.connection()).collect();
    let mut pending: HashMap<usize, ()> = HashMap::new();
    let mut deadline: Option<Instant> = None;
    loop {
        loop {
            match sent.try_recv() {
                Ok(s) => {
                    if let Some(t) = tracked.get_mut(s.job) {
                        t.sent_at = Some(s.at);
                        t.submit_ms = Some(millis(s.took));
                        t.refused = s.refused.is_some();
                        t.sampled = s.job % OBSERVED_SAMPLE == 0;
                        t.waited = t.sampled && waited.is_some() && s.refused.is_none();
                        awaiting_waits += usize::from(t.waited);
                        if s.refused.is_none() {
                            pending.insert(s.job, ());
                        }
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    deadline.get_or_insert_with(|| now() + drain);
                    break;
                }
            }
        }
        for (job, observed) in waited.iter().flat_map(|w| w.try_iter()) {
            if let Some(t) = tracked.get_mut(job) {
                t.observed_final = t.observed_final.or(observed);
                awaiting_waits = awaiting_waits.saturating_sub(1);
            }
        }
        let due = |t: &Tracked| {
            (t.sampled && !t.waited) || t.sent_at.is_some_and(|at| at + FIRST_ASK_AFTER <= now())
        };
        for (node, connection) in connections.iter_mut().enumerate() {
            let mine: Vec<usize> = pending
                .keys()
                .copied()
                .filter(|&j| jobs.get(j).is_some_and(|job| job.node == node))
                .filter(|&j| deadline.is_some() || tracked.get(j).is_some_and(due))
                .collect();
            for chunk in mine.chunks(STATUS_BATCH) {
                let calls: Vec<(&str, Value)> = chunk
                    .iter()
                    .filter_map(|&j| jobs.get(j))
                    .map(|job| ("gettxstatus", json!([job.txid.to_string()])))
                    .collect();
                let Ok(answers) = connection.batch(&calls) else {
                    continue;
                };
                let now = now();
                for (&j, answer) in chunk.iter().zip(answers) {
                    let (Some(t), Ok(report)) = (tracked.get_mut(j), answer) else {
                        continue;
                    };
                    if record(t, &report, now) {
                        pending.remove(&j);
                    }
                }
            }
        }
        let done = deadline.is_some() && pending.is_empty() && awaiting_waits == 0;
        if done || deadline.is_some_and(|d| now() >= d) {
            return tracked;
        }
        std::thread::sleep(TRACK_INTERVAL);
    }
}

/// Takes one `gettxstatus` report; true once the transaction has settled.
fn record(t: &mut Tracked, report: &Value, now: Instant) -> bool {
    let status = status_of(report);
    let field = |name: &str| report.get(name).and_then(Value::as_u64);
    let since_seen = |name: &str| {
        field(name)
            .zip(field("first_seen_ms"))
            .map(|(at, seen)| at.saturating_sub(seen))
    };
    t.accept_ms = t.accept_ms.or(since_seen("locally_accepted_at_ms"));
    t.finality_ms = t.finality_ms.or(field("finality_ms"));
    t.durable_ms = t.durable_ms.or(field("durable_ms"));
    // The ledger's record can be visible a moment before the consensus thread
    // files the durable timing, so a finalized tx gets one more poll for it.
    let settled = match status.as_str() {
        "finalized" => t.durable_ms.is_some() || t.observed_final.is_some(),
        "rejected" | "expired" => true,
        _ => false,
    };
    if status == "finalized" && t.observed_final.is_none() && !t.waited {
        t.observed_final = t.sent_at.map(|at| now.saturating_duration_since(at));
    }
    t.status = Some(status);
    settled
}

/// From the first send to the last finalization: a tx's send instant plus
/// its node-timed submit→durable latency (the client-observed one if the
/// node's timing is missing).
fn finality_span(tracked: &[Tracked]) -> Option<Duration> {
    let first_sent = tracked.iter().filter_map(|t| t.sent_at).min()?;
    let last_final = tracked
        .iter()
        .filter(|t| t.status.as_deref() == Some("finalized"))
        .filter_map(|t| {
            let after = t
                .durable_ms
                .map(Duration::from_millis)
                .or(t.observed_final)?;
            Some(t.sent_at? + after)
        })
        .max()?;
    Some(last_final.saturating_duration_since(first_sent))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn percentiles(mut values: Vec<u64>) -> Option<Percentiles> {
    values.sort_unstable();
    let at = |q: f64| {
        let rank = ((values.len() as f64 * q).ceil() as usize).saturating_sub(1);
        values.get(rank).copied().unwrap_or(0)
    };
    Some(Percentiles {
        count: values.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: *values.last()?,
    })
}

fn summarize(
    args: &BenchArgs,
    jobs: &[Job],
    tracked: &[Tracked],
    send_time: Duration,
    wall: Duration,
    nodes: Vec<NodeUsage>,
) -> Report {
    let is = |t: &Tracked, s: &str| t.status.as_deref() == Some(s);
    let count = |s: &str| tracked.iter().filter(|t| is(t, s)).count();
    let finalized = count("finalized");
    let sent = tracked.iter().filter(|t| t.sent_at.is_some()).count();
    let refused = tracked.iter().filter(|t| t.refused).count();
    let pending = tracked
        .iter()
        .filter(|t| t.sent_at.is_some() && !t.refused)
        .filter(|t| {
            !matches!(
                t.status.as_deref(),
                Some("finalized" | "rejected" | "expired")
            )
        })
        .count();
    let (mut one, mut both, mut none, mut plain, mut plain_finalized) = (0, 0, 0, 0, 0);
    for (i, (job, t)) in jobs.iter().zip(tracked).enumerate() {
        match job.pair {
            None => {
                plain += 1;
                plain_finalized += usize::from(is(t, "finalized"));
            }
            // Count each pair once, at its first half.
            Some(other) if other > i => {
                let other_final = tracked.get(other).is_some_and(|o| is(o, "finalized"));
                match (is(t, "finalized"), other_final) {
                    (true, true) => both += 1,
                    (false, false) => none += 1,
                    _ => one += 1,
                }
            }
            Some(_) => {}
        }
    }
    let collect =
        |f: fn(&Tracked) -> Option<u64>| percentiles(tracked.iter().filter_map(f).collect());
    let secs = send_time.as_secs_f64().max(f64::EPSILON);
    Report {
        offered_rate: args.rate,
        achieved_send_rate: sent as f64 / secs,
        send_seconds: send_time.as_secs_f64(),
        sent,
        plain_sent: plain,
        conflict_pairs: one + both + none,
        refused_at_submit: refused,
        finalized,
        plain_finalized,
        finalized_per_sec: finalized as f64
            / finality_span(tracked)
                .unwrap_or(wall)
                .as_secs_f64()
                .max(f64::EPSILON),
        rejected: count("rejected"),
        expired: count("expired"),
        pending,
        pairs_one_finalized: one,
        pairs_both_finalized: both,
        pairs_none_finalized: none,
        submit_rpc_ms: collect(|t| t.submit_ms),
        submit_to_accepted_ms: collect(|t| t.accept_ms),
        submit_to_final_ms: collect(|t| t.finality_ms),
        submit_to_durable_ms: collect(|t| t.durable_ms),
        client_observed_final_ms: collect(|t| t.observed_final.filter(|_| t.sampled).map(millis)),
        client_gap_after_durable_us: percentiles(
            tracked
                .iter()
                .filter(|t| t.sampled)
                .filter_map(|t| {
                    let observed = u64::try_from(t.observed_final?.as_micros()).ok()?;
                    Some(observed.saturating_sub(t.durable_ms?.saturating_mul(1_000)))
                })
                .collect(),
        ),
        observed_by: if args.waiters > 0 {
            "waitfortx"
        } else {
            "gettxstatus polling"
        },
        nodes,
        ceiling: None,
    }
}

/// Signatures and LMDB writes per finalized tx, summed over the nodes'
/// counters (so over every node when the bench loads all of them).
fn cost_per_tx(r: &Report) -> Option<CostPerTx> {
    let counted: Vec<&NodeCounters> = r.nodes.iter().filter_map(|n| n.counters.as_ref()).collect();
    if counted.is_empty() || r.finalized == 0 {
        return None;
    }
    let per_tx = |total: u64| total as f64 / r.finalized as f64;
    Some(CostPerTx {
        signatures: per_tx(counted.iter().map(|c| c.signatures_verified).sum()),
        puts: per_tx(counted.iter().map(|c| c.lmdb_writes).sum()),
    })
}

fn table(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "send rate     offered {:.0} tx/s, achieved {:.1} tx/s ({} sent in {:.2} s)",
        r.offered_rate, r.achieved_send_rate, r.sent, r.send_seconds
    ));
    line(format!(
        "outcomes      finalized {} ({:.1} tx/s), rejected {}, expired {}, pending {}, refused at submit {}",
        r.finalized, r.finalized_per_sec, r.rejected, r.expired, r.pending, r.refused_at_submit
    ));
    line(format!(
        "plain         {} of {} finalized",
        r.plain_finalized, r.plain_sent
    ));
    line(format!(
        "conflicts     {} pairs: exactly one finalized {}, both {}, none {}",
        r.conflict_pairs, r.pairs_one_finalized, r.pairs_both_finalized, r.pairs_none_finalized
    ));
    line(format!(
        "{:<28}{:>7}{:>8}{:>8}{:>8}{:>8}",
        "latency (ms)", "count", "p50", "p90", "p99", "max"
    ));
    for (name, p) in [
        ("sendrawtransaction answer", &r.submit_rpc_ms),
        ("submit→locally accepted", &r.submit_to_accepted_ms),
        ("submit→final (proof)", &r.submit_to_final_ms),
        ("submit→durable", &r.submit_to_durable_ms),
        ("client-observed (1 in 10)", &r.client_observed_final_ms),
    ] {
        match p {
            Some(p) => line(format!(
                "{:<28}{:>7}{:>8}{:>8}{:>8}{:>8}",
                name, p.count, p.p50, p.p90, p.p99, p.max
            )),
            None => line(format!("{name:<28}{:>7}", 0)),
        }
    }
    if let Some(p) = &r.client_gap_after_durable_us {
        line(format!(
            "client sees finality after the node (µs, by {}): p50 {} p90 {} p99 {} max {} ({} txs)",
            r.observed_by, p.p50, p.p90, p.p99, p.max, p.count
        ));
    }
    let show = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1}"));
    for n in &r.nodes {
        line(format!(
            "node {}  pid {}  cpu {}%  rss {} MiB (anon {})  peak rss {} MiB",
            n.node,
            n.pid.map_or("?".to_string(), |p| p.to_string()),
            show(n.cpu_percent),
            show(n.rss_mib),
            show(n.rss_anon_mib),
            show(n.peak_rss_mib)
        ));
        if let Some(c) = &n.counters {
            let verdicts = c.verdicts_valid + c.verdicts_invalid + c.verdicts_unknown;
            line(format!(
                "  polls failed {} of {} ({})  verdicts unknown {} / invalid {} of {}  \
                 rate-limited {}  unsolicited {}  queue drops {}",
                c.polls_failed,
                c.polls_started,
                percent(c.polls_failed, c.polls_started),
                percent(c.verdicts_unknown, verdicts),
                percent(c.verdicts_invalid, verdicts),
                verdicts,
                c.rate_limited,
                c.unsolicited_responses,
                c.queue_drops
            ));
        }
    }
    if let Some(c) = &r.ceiling {
        line(format!(
            "cost per tx   {:.1} signatures verified, {:.1} LMDB writes (all nodes loaded)",
            c.cost_per_tx.signatures, c.cost_per_tx.puts
        ));
        line(format!(
            "ceiling       cpu {:.0} tx/s ({} cores x {:.0} batched verifies/s), \
             disk {:.0} tx/s ({:.0} durable puts/s)",
            c.cpu_tx_per_sec,
            c.cores,
            c.batched_verify_per_core_per_sec,
            c.disk_tx_per_sec,
            c.durable_puts_per_sec
        ));
        line(format!(
            "saturation    {:.1} tx/s finalized = {:.0} % of the {} ceiling ({:.0} tx/s)",
            r.finalized_per_sec, c.reached_percent, c.binding, c.ceiling_tx_per_sec
        ));
    }
    out
}

/// `part` as a percentage of `whole`, one decimal.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_string();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

/// The node's pid, from the `<datadir>/timed.pid` a running `timed` keeps,
/// if that process is alive and is `timed` (a stale file after a SIGKILL
/// may name a pid reused by something else).
fn node_pid(datadir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(datadir.join("timed.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "timed").then_some(pid)
}

/// User plus system CPU ticks of `pid`, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of `/proc/<pid>/status` in MiB.
fn status_mib(pid: u32, name: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn node_usage(
    node: &Node,
    cpu_before: Option<u64>,
    counters_before: Option<NodeCounters>,
    wall: Duration,
) -> NodeUsage {
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_percent = node
        .pid
        .and_then(cpu_ticks)
        .zip(cpu_before)
        .map(|(after, before)| {
            after.saturating_sub(before) as f64
                / ticks_per_sec
                / wall.as_secs_f64().max(f64::EPSILON)
                * 100.0
        });
    NodeUsage {
        node: node.label.clone(),
        pid: node.pid,
        cpu_percent,
        rss_mib: node.pid.and_then(|p| status_mib(p, "VmRSS:")),
        rss_anon_mib: node.pid.and_then(|p| status_mib(p, "RssAnon:")),
        peak_rss_mib: node.pid.and_then(|p| status_mib(p, "VmHWM:")),
        counters: counters(node)
            .zip(counters_before)
            .map(|(after, before)| after.since(before)),
    }
}

impl From<BenchError> for CliError {
    fn from(e: BenchError) -> CliError {
        CliError::Bench(e)
    }
}
