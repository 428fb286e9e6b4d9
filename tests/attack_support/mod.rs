//! Fixtures of the multi-process attack suite (issue 13, `tests/attack_suite.rs`):
//! an honest load through the target and another node whose finality is
//! measured on the target (submit → durable-final, as a client sees it);
//! phases that measure what the target process spends (CPU from /proc, per
//! named thread too, RSS sampled and its peak); a row per attack that sets
//! an attacked phase against a quiet one of the same length; and the
//! attackers ([`attackers`]).
//!
//! Nothing here decides a result by timing: phases have a fixed length,
//! waits poll until a condition holds and fail at a deadline.

#![allow(dead_code)] // the CI and the long variant use different parts

pub mod attackers;
pub mod procfs;

use crate::devnet_support::{pay, Devnet, Validator};
use crate::fault_support::{poll_within, Stopwatch};
use attackers::Tally;
use procfs::Cpu;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use timecoin::config::ChainSpec;
use timecoin::consensus::messages::NodeId;
use timecoin::consensus::WorkBudgetParams;
use timecoin::genesis::devnet_validator_keys;
use timecoin::rpc::client::RpcClient;
use timecoin::types::{Amount, Hash, OutPoint};

pub type Coin = (OutPoint, Amount);

/// A load tx not durable-final on the target within this is a failure.
const FINAL_WITHIN: Duration = Duration::from_secs(30);
/// Load threads waiting (`waitfortx`) for the target to finalize a tx; the
/// node parks at most 32 waits per client address.
const WAITERS: usize = 16;
/// How often a phase samples the target's RSS.
const RSS_EVERY: Duration = Duration::from_millis(50);
/// Bounds a wait for the devnet to heal after an attack.
pub const HEAL_WITHIN: Duration = Duration::from_secs(60);

/// Finality of the load txs submitted during one phase.
#[derive(Clone, Debug, Default)]
pub struct PhaseLoad {
    pub sent: usize,
    /// Submit → durable-final on the target, one per tx finalized.
    pub latencies_ms: Vec<u64>,
    /// Txs refused at submit, or not final on the target in [`FINAL_WITHIN`].
    pub failures: Vec<String>,
}

impl PhaseLoad {
    fn settled(&self) -> bool {
        self.latencies_ms.len() + self.failures.len() >= self.sent
    }

    /// The `q`-th percentile of the latencies (nearest rank), if any.
    pub fn percentile_ms(&self, q: usize) -> Option<u64> {
        let mut ms = self.latencies_ms.clone();
        ms.sort_unstable();
        let rank = (ms.len() * q).div_ceil(100).max(1);
        ms.get(rank - 1).copied()
    }
}

struct Job {
    phase: usize,
    txid: Hash,
    clock: Stopwatch,
}

struct LoadState {
    spec: ChainSpec,
    /// Where the load submits, in turn: the target first.
    via: Vec<RpcClient>,
    /// The target, for `waitfortx`.
    target: RpcClient,
    gap: Duration,
    stop: AtomicBool,
    ran_dry: AtomicBool,
    phases: Mutex<Vec<PhaseLoad>>,
    finalized: Mutex<Vec<Hash>>,
}

/// The honest load: one transfer per `gap`, through the target and another
/// node in turn, each waited for on the target by one of [`WAITERS`]
/// threads. Latencies go to the phase current at submission.
pub struct Load {
    state: Arc<LoadState>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(
        devnet: &Devnet,
        target: usize,
        other: usize,
        coins: Vec<Coin>,
        gap: Duration,
    ) -> Load {
        let client = |i: usize| devnet.nodes[i].client_with_timeout(Duration::from_secs(10));
        let state = Arc::new(LoadState {
            spec: devnet.spec.clone(),
            via: vec![client(target), client(other)],
            target: devnet.nodes[target]
                .client_with_timeout(FINAL_WITHIN + Duration::from_secs(10)),
            gap,
            stop: AtomicBool::new(false),
            ran_dry: AtomicBool::new(false),
            phases: Mutex::new(vec![PhaseLoad::default()]),
            finalized: Mutex::new(Vec::new()),
        });
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let mut threads: Vec<JoinHandle<()>> = (0..WAITERS)
            .map(|_| {
                let (state, queue) = (Arc::clone(&state), queue.clone());
                std::thread::spawn(move || queue.iter().for_each(|job| state.wait(job)))
            })
            .collect();
        let submitter = Arc::clone(&state);
        threads.push(std::thread::spawn(move || {
            submitter.submit_all(coins, &jobs)
        }));
        Load { state, threads }
    }

    /// Starts a new phase; returns its number.
    pub fn begin_phase(&self) -> usize {
        let mut phases = self.state.phases.lock().unwrap();
        phases.push(PhaseLoad::default());
        phases.len() - 1
    }

    /// Waits until every tx of `phase` is final on the target or failed.
    pub fn settle(&self, phase: usize) -> PhaseLoad {
        let phases = &self.state.phases;
        let settled = poll_within(FINAL_WITHIN + Duration::from_secs(30), || {
            let phases = phases.lock().unwrap();
            phases[phase].settled().then(|| phases[phase].clone())
        });
        settled.unwrap_or_else(|| panic!("load phase {phase} never settled"))
    }

    /// Every load txid the target has finalized so far.
    pub fn finalized(&self) -> Vec<Hash> {
        self.state.finalized.lock().unwrap().clone()
    }

    /// Whether the load ran out of coins (phases after that have no txs).
    pub fn ran_dry(&self) -> bool {
        self.state.ran_dry.load(Ordering::Relaxed)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl LoadState {
    fn current(&self) -> usize {
        self.phases.lock().unwrap().len() - 1
    }

    fn record(&self, phase: usize, outcome: Result<u64, String>) {
        let mut phases = self.phases.lock().unwrap();
        match outcome {
            Ok(ms) => phases[phase].latencies_ms.push(ms),
            Err(why) => phases[phase].failures.push(why),
        }
    }

    fn submit_all(&self, coins: Vec<Coin>, jobs: &crossbeam_channel::Sender<Job>) {
        for (k, coin) in coins.into_iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let pace = Stopwatch::start();
            let phase = self.current();
            self.phases.lock().unwrap()[phase].sent += 1;
            let tx = pay(&self.spec, coin, "honest load");
            let clock = Stopwatch::start();
            let via = &self.via[k % self.via.len()];
            match via.call("sendrawtransaction", json!([hex::encode(tx.encode())])) {
                Ok(txid) => {
                    let txid = txid.as_str().unwrap().parse().unwrap();
                    jobs.send(Job { phase, txid, clock }).unwrap();
                }
                Err(e) => self.record(phase, Err(format!("submit via {}: {e}", via.addr()))),
            }
            std::thread::sleep(self.gap.saturating_sub(pace.elapsed())); // the load's pace
        }
        self.ran_dry.store(true, Ordering::Relaxed);
    }

    fn wait(&self, job: Job) {
        let params = json!([job.txid.to_string(), FINAL_WITHIN.as_millis() as u64]);
        let outcome = match self.target.call("waitfortx", params) {
            Ok(answer) if answer["status"] == json!("finalized") => {
                self.finalized.lock().unwrap().push(job.txid);
                Ok(job.clock.elapsed().as_millis() as u64)
            }
            Ok(answer) => Err(format!("{}: {answer}", job.txid)),
            Err(e) => Err(format!("{}: waitfortx: {e}", job.txid)),
        };
        self.record(job.phase, outcome);
    }
}

/// What the target spent during one phase, and the load's finality.
#[derive(Clone, Debug, Default)]
pub struct PhaseReport {
    pub wall: Duration,
    pub cpu: Cpu,
    pub rss_max_kib: u64,
    /// `RssAnon` sampled with `VmRSS`: heap and stacks, without the
    /// file-backed pages (LMDB's map, the binary) the kernel can drop.
    pub anon_max_kib: u64,
    /// `VmHWM` since the phase began.
    pub hwm_kib: u64,
    /// At the phase's end.
    pub memory: procfs::Memory,
    pub load: PhaseLoad,
}

impl PhaseReport {
    /// Process CPU as a percentage of one core.
    pub fn cpu_pct(&self) -> f64 {
        pct(self.cpu.process, self.wall)
    }

    /// Thread `name`'s CPU as a percentage of one core.
    pub fn thread_pct(&self, name: &str) -> f64 {
        pct(self.cpu.thread(name), self.wall)
    }

    pub fn p50_ms(&self) -> Option<u64> {
        self.load.percentile_ms(50)
    }

    pub fn p99_ms(&self) -> Option<u64> {
        self.load.percentile_ms(99)
    }
}

fn pct(cpu: Duration, wall: Duration) -> f64 {
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-3)
}

/// Runs `action` as one phase of at least `length` on process `pid` (the
/// phase waits out the rest of `length` if `action` ends sooner), then
/// waits for the phase's load txs to settle. The load goes on meanwhile.
pub fn measure<T>(
    pid: u32,
    load: &Load,
    length: Duration,
    action: impl FnOnce() -> T,
) -> (PhaseReport, T) {
    let phase = load.begin_phase();
    procfs::reset_peak(pid);
    let before = Cpu::read(pid);
    let clock = Stopwatch::start();
    let done = AtomicBool::new(false);
    let (result, (rss_max_kib, anon_max_kib)) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let (mut rss, mut anon) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                let now = procfs::Memory::read(pid);
                rss = rss.max(now.rss);
                anon = anon.max(now.anon);
                std::thread::sleep(RSS_EVERY); // sampling period
            }
            (rss, anon)
        });
        let result = action();
        std::thread::sleep(length.saturating_sub(clock.elapsed())); // the phase's length
        done.store(true, Ordering::Relaxed);
        (result, sampler.join().unwrap())
    });
    let wall = clock.elapsed();
    let cpu = Cpu::read(pid).since(&before);
    let memory = procfs::Memory::read(pid);
    load.begin_phase(); // what follows (an attack's start or end) is not measured
    let report = PhaseReport {
        wall,
        cpu,
        rss_max_kib,
        anon_max_kib,
        hwm_kib: memory.hwm,
        memory,
        load: load.settle(phase),
    };
    (report, result)
}

/// One bound of the must-show list, checked on a row.
#[derive(Clone, Debug)]
pub struct Bound {
    pub what: String,
    pub met: bool,
    /// `false`: timing-dependent on a shared 2-core machine, so reported only.
    pub asserted: bool,
}

/// One attack: its quiet and attacked phases, what happened, its bounds.
#[derive(Clone, Debug)]
pub struct Row {
    pub attack: String,
    pub quiet: PhaseReport,
    pub attacked: PhaseReport,
    pub notes: Vec<String>,
    pub bounds: Vec<Bound>,
}

impl Row {
    /// A row with the bound every attack shares: every honest tx of both
    /// phases is final on the target (finality continues), asserted; and
    /// honest p50 within 2× of quiet, reported.
    pub fn new(attack: &str, quiet: PhaseReport, attacked: PhaseReport) -> Row {
        let mut row = Row {
            attack: attack.to_string(),
            quiet,
            attacked,
            notes: Vec::new(),
            bounds: Vec::new(),
        };
        let loads = [
            ("quiet", row.quiet.load.clone()),
            ("attacked", row.attacked.load.clone()),
        ];
        for (name, load) in loads {
            let what = format!("every honest tx of the {name} phase final on the target");
            let met = load.failures.is_empty() && !load.latencies_ms.is_empty();
            row.check(what, met);
            for failure in load.failures.iter().take(3) {
                row.note(format!("{name}: {failure}"));
            }
        }
        let (q, a) = (row.quiet.memory, row.attacked.memory);
        row.note(format!(
            "RSS at each phase's end: anon {} → {} MiB, file-backed {} → {} MiB",
            mib(q.anon),
            mib(a.anon),
            mib(q.file),
            mib(a.file)
        ));
        let (quiet, attacked) = (row.quiet.p50_ms(), row.attacked.p50_ms());
        let within = matches!((quiet, attacked), (Some(q), Some(a)) if a <= 2 * q.max(1));
        row.report("honest p50 within 2× of quiet", within);
        row
    }

    /// A bound the test asserts.
    pub fn check(&mut self, what: impl Into<String>, met: bool) {
        self.bounds.push(Bound {
            what: what.into(),
            met,
            asserted: true,
        });
    }

    /// A timing bound, reported only.
    pub fn report(&mut self, what: impl Into<String>, met: bool) {
        self.bounds.push(Bound {
            what: what.into(),
            met,
            asserted: false,
        });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Asserted bounds not met.
    pub fn failures(&self) -> Vec<String> {
        self.bounds
            .iter()
            .filter(|b| b.asserted && !b.met)
            .map(|b| format!("{}: {}", self.attack, b.what))
            .collect()
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The rows as a Markdown table (quiet → attacked in each cell), then each
/// row's bounds and notes.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| attack | s | CPU % of a core | consensus thread % | net thread % | RSS max MiB | VmHWM MiB | p50 ms | p99 ms | final/sent |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (q, a) = (&r.quiet, &r.attacked);
        let _ = writeln!(
            out,
            "| {} | {:.0} / {:.0} | {:.0} → {:.0} | {:.0} → {:.0} | {:.0} → {:.0} | {} → {} | {} → {} | {} → {} | {} → {} | {}/{} → {}/{} |",
            r.attack,
            q.wall.as_secs_f64(),
            a.wall.as_secs_f64(),
            q.cpu_pct(),
            a.cpu_pct(),
            q.thread_pct("consensus"),
            a.thread_pct("consensus"),
            q.thread_pct("net"),
            a.thread_pct("net"),
            mib(q.rss_max_kib),
            mib(a.rss_max_kib),
            mib(q.hwm_kib),
            mib(a.hwm_kib),
            ms(q.p50_ms()),
            ms(a.p50_ms()),
            ms(q.p99_ms()),
            ms(a.p99_ms()),
            q.load.latencies_ms.len(),
            q.load.sent,
            a.load.latencies_ms.len(),
            a.load.sent,
        );
    }
    for r in rows {
        let _ = writeln!(out, "\n{}:", r.attack);
        for b in &r.bounds {
            let verdict = if b.met { "met" } else { "NOT MET" };
            let kind = if b.asserted { "asserted" } else { "reported" };
            let _ = writeln!(out, "  - {verdict} ({kind}): {}", b.what);
        }
        for n in &r.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

/// Node `node`'s Prometheus text (`GET /metrics`).
pub fn metrics(node: &Validator) -> String {
    String::from_utf8(node.client().get("/metrics").unwrap().body).unwrap()
}

/// One unlabelled sample of `node`'s `/metrics`.
pub fn metric(node: &Validator, name: &str) -> u64 {
    crate::devnet_support::rpc::metric(&metrics(node), name)
}

pub fn validator_id(i: usize) -> NodeId {
    devnet_validator_keys(i).0.public()
}

/// One link of a node to a devnet validator.
#[derive(Clone, Copy, Debug)]
pub struct ValidatorLink {
    pub validator: usize,
    /// The misbehaviour score the node holds against it.
    pub score: u64,
    /// The validator dialled the node.
    pub inbound: bool,
}

/// `node`'s established peers that are devnet validators.
pub fn validator_links(node: &Validator, validators: usize) -> Vec<ValidatorLink> {
    let ids: Vec<String> = (0..validators)
        .map(|i| hex::encode(validator_id(i).0))
        .collect();
    let peers = node.call("getpeerinfo", json!([]));
    peers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some(ValidatorLink {
                validator: ids
                    .iter()
                    .position(|id| p["node_id"].as_str() == Some(id))?,
                score: p["misbehaviour_score"].as_u64().unwrap_or(0),
                inbound: p["inbound"] == json!(true),
            })
        })
        .collect()
}

/// Waits until every running validator has every other as a peer, and
/// checks that no validator scores another and that the nodes other than
/// `target` hold no ban (the target's bans are the attackers'); returns
/// how long the links took to heal.
pub fn honest_links_clean(devnet: &Devnet, target: usize) -> Result<Duration, String> {
    let n = devnet.nodes.len();
    let running: BTreeSet<usize> = devnet.running().map(|v| v.index).collect();
    let clock = Stopwatch::start();
    let linked = poll_within(HEAL_WITHIN, || {
        devnet
            .running()
            .all(|v| {
                let linked: BTreeSet<usize> =
                    validator_links(v, n).iter().map(|l| l.validator).collect();
                running.iter().all(|i| *i == v.index || linked.contains(i))
            })
            .then_some(())
    });
    let describe = || -> String {
        devnet
            .running()
            .map(|v| format!("node {}: {:?}; ", v.index, validator_links(v, n)))
            .collect()
    };
    if linked.is_none() {
        return Err(format!(
            "validators not all linked within {HEAL_WITHIN:?}: {}",
            describe()
        ));
    }
    let took = clock.elapsed();
    for v in devnet.running() {
        if validator_links(v, n).iter().any(|l| l.score > 0) {
            return Err(format!(
                "node {} scores an honest validator: {}",
                v.index,
                describe()
            ));
        }
        let bans = v.call("getnetworkinfo", json!([]))["bans"]
            .as_u64()
            .unwrap_or(0);
        if v.index != target && bans > 0 {
            return Err(format!("node {} (not attacked) holds {bans} bans", v.index));
        }
    }
    Ok(took)
}

/// Updates `tally`'s identities with the consensus work `node` reports
/// charging each one (`getpeerinfo`, connected peers only): the most seen.
pub fn note_work(node: &Validator, tally: &Tally) {
    let peers = node.call("getpeerinfo", json!([]));
    let mut identities = tally.identities.lock().unwrap();
    for p in peers.as_array().unwrap() {
        let Some(id) = p["node_id"].as_str().and_then(|h| hex::decode(h).ok()) else {
            continue;
        };
        let charged = p["consensus_work_charged"].as_u64().unwrap_or(0);
        let dropped = p["consensus_work_dropped"].as_u64().unwrap_or(0);
        for (identity, most) in identities.iter_mut() {
            if identity.0[..] == id[..] {
                most.charged = most.charged.max(charged);
                most.dropped = most.dropped.max(dropped);
            }
        }
    }
}

/// Calls [`note_work`] every `every` until `length` has passed.
pub fn watch_work(node: &Validator, tally: &Tally, length: Duration, every: Duration) {
    let clock = Stopwatch::start();
    while clock.elapsed() < length {
        note_work(node, tally);
        std::thread::sleep(every); // sampling period
    }
    note_work(node, tally);
}

/// Checks the work a flood's identities were charged against the
/// stranger budget over the attack's run (burst plus rate, per identity), and
/// reports the target's CPU the attack added (all threads: decoding on the
/// net thread too) against what the budget's sustained rate buys
/// (`verify` per unit).
pub fn work_bounds(row: &mut Row, tally: &Tally, verify: Duration) {
    let budget = WorkBudgetParams::default();
    let secs = tally.ran_for.lock().unwrap().as_secs_f64();
    let allowed = budget.stranger_burst_units as f64 + budget.stranger_units_per_s as f64 * secs;
    let identities = tally.identities.lock().unwrap().clone();
    let charged: u64 = identities.values().map(|w| w.charged).sum();
    let dropped: u64 = identities.values().map(|w| w.dropped).sum();
    let most = identities.values().map(|w| w.charged).max().unwrap_or(0);
    row.check(
        format!(
            "consensus work charged to each attacker identity ≤ its budget ({allowed:.0} units \
             in {secs:.1} s; most charged {most}, all {} identities {charged}, {dropped} \
             messages dropped over budget)",
            identities.len()
        ),
        most as f64 <= allowed,
    );
    let extra_pct = row.attacked.cpu_pct() - row.quiet.cpu_pct();
    let extra_consensus = row.attacked.thread_pct("consensus") - row.quiet.thread_pct("consensus");
    let sustained = budget.stranger_units_per_s as f64 * identities.len() as f64;
    let budget_pct = 100.0 * sustained * verify.as_secs_f64();
    row.report(
        format!(
            "target CPU the attack added (process {extra_pct:+.1} %, consensus thread \
             {extra_consensus:+.1} % of a core) within the sustained work budget of its {} \
             identities ({sustained:.0} units/s × {} µs = {budget_pct:.1} % of a core)",
            identities.len(),
            verify.as_micros()
        ),
        extra_pct <= budget_pct,
    );
}

/// What one ed25519 verification costs on this machine now (the work
/// budget's unit).
pub fn verify_cost() -> Duration {
    let key = timecoin::crypto::Keypair::from_seed_label("verify cost");
    let message = b"a window vote's bytes, about this long, signed once";
    let signature = key.sign(message);
    let public = key.public();
    const N: u32 = 2_000;
    let clock = Stopwatch::start();
    for _ in 0..N {
        assert!(timecoin::crypto::verify(&public, message, &signature).is_ok());
    }
    clock.elapsed() / N
}

/// Node `i`'s finalized proofs as the wire carries them (read from its store).
pub fn stored_proofs(
    devnet: &Devnet,
    i: usize,
    max: usize,
) -> Vec<timecoin::finality::FinalityProof> {
    use timecoin::store::schema::PROOFS;
    let store = devnet.store(i);
    let view = store.read().unwrap();
    let txids: Vec<Hash> = view
        .scan_txs()
        .unwrap()
        .filter_map(Result::ok)
        .map(|(txid, _)| txid)
        .take(max)
        .collect();
    txids
        .iter()
        .filter_map(|txid| view.proof(txid).ok().flatten())
        .map(|bytes| {
            timecoin::types::encoding::decode(&bytes, PROOFS.max_value_bytes, "proof").unwrap()
        })
        .collect()
}
