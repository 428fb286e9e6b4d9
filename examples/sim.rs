//! Runs one deterministic simulation of N real consensus engines and prints
//! what it measured. Same flags and seed, same run.
//!
//! cargo run --release --example sim -- --validators 100 --byzantine 0.2 \
//!     --strategy split --txs 10000 --conflicts 0.1 --seed 7 --loss 0.01 \
//!     --partition 2000:6000:0.3
//!
//! Validator churn: `--validators 25 --churn 2 --epoch-ms 2000` keeps 23 in
//! the set and swaps 2 in and 2 out at every epoch change.

use clap::Parser;
use std::error::Error;
use std::time::Instant;
use timecoin::sim::rng::{concern_rng, PPM};
use timecoin::sim::{self, ChurnConfig, Crash, Partition, SimConfig, Strategy, TierMix};

/// A thousand engines allocate and free a proof's Merkle paths, query
/// lists and window records by the million: glibc's allocator was a tenth
/// of the 1,000-validator run. The node binaries keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Deterministic simulation of timecoin validators")]
struct Args {
    #[arg(long, default_value_t = 20)]
    validators: usize,
    /// Byzantine share of the total weight (0.0 – 1.0).
    #[arg(long, default_value_t = 0.0)]
    byzantine: f64,
    /// invalid, valid-for-all, split, silent, replay or forge.
    #[arg(long, default_value = "split")]
    strategy: Strategy,
    /// bronze, mixed, or free:bronze:silver:gold frequencies like 4:3:2:1.
    #[arg(long, default_value = "bronze")]
    tiers: TierMix,
    #[arg(long, default_value_t = 200)]
    txs: usize,
    /// Share of txs that are one side of a double spend (0.0 – 1.0).
    #[arg(long, default_value_t = 0.0)]
    conflicts: f64,
    /// Submission slots per virtual second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// The run seed; the environment variable SIM_SEED overrides it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Message loss probability while faults last.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Probability a message is held back by up to 500 ms.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Loss, duplication and reordering stop at this virtual time
    /// (default: when the last transaction is submitted).
    #[arg(long)]
    faults_until_ms: Option<u64>,
    /// START_MS:HEAL_MS:FRACTION — that fraction of nodes, chosen by the seed,
    /// is cut off from the rest between the two times. Repeatable.
    #[arg(long)]
    partition: Vec<String>,
    /// NODE:AT_MS[:RESTART_MS]. Repeatable.
    #[arg(long)]
    crash: Vec<String>,
    #[arg(long, default_value_t = 20)]
    latency_base_ms: u64,
    #[arg(long, default_value_t = 30)]
    latency_tail_ms: u64,
    #[arg(long, default_value_t = 16)]
    gossip_peers: usize,
    #[arg(long)]
    liveness_bound_ms: Option<u64>,
    /// Finality committee seats (default: the devnet config's).
    #[arg(long)]
    seats: Option<u32>,
    /// Validators that leave the set, and benched ones that join, at every
    /// epoch change (default: no churn, one epoch).
    #[arg(long)]
    churn: Option<usize>,
    /// Virtual time per epoch, with --churn.
    #[arg(long, default_value_t = 2_000)]
    epoch_ms: u64,
    /// Each node enters an epoch up to this long after its boundary, with --churn.
    #[arg(long, default_value_t = 200)]
    epoch_skew_ms: u64,
    /// Print every violation, not only the first 20.
    #[arg(long)]
    verbose: bool,
}

fn ppm(fraction: f64, flag: &str) -> Result<u32, Box<dyn Error>> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(format!("--{flag} must be between 0 and 1, got {fraction}").into());
    }
    Ok((fraction * f64::from(PPM)).round() as u32)
}

fn numbers(text: &str, flag: &str) -> Result<Vec<f64>, Box<dyn Error>> {
    text.split(':')
        .map(|p| {
            p.parse::<f64>()
                .map_err(|_| format!("--{flag} {text}: '{p}' is not a number").into())
        })
        .collect()
}

fn config(args: &Args) -> Result<SimConfig, Box<dyn Error>> {
    let mut c = SimConfig::devnet(args.seed, args.validators)?;
    c.tiers = args.tiers;
    c.byzantine_ppm = ppm(args.byzantine, "byzantine")?;
    c.strategy = args.strategy;
    c.gossip_peers = args.gossip_peers;
    c.liveness_bound_ms = args.liveness_bound_ms;
    c.committee_seats = args.seats.unwrap_or(c.committee_seats);
    c.churn = args.churn.map(|swaps| ChurnConfig {
        epoch_ms: args.epoch_ms,
        swaps,
        skew_ms: args.epoch_skew_ms,
    });
    c.workload.txs = args.txs;
    c.workload.conflict_ppm = ppm(args.conflicts, "conflicts")?;
    c.workload.rate_per_sec = args.rate;
    let last_slot_ms = c.workload.start_ms + (args.txs as u64) * 1000 / args.rate.max(1);
    let net = &mut c.network;
    net.latency_base_ms = args.latency_base_ms;
    net.latency_tail_mean_ms = args.latency_tail_ms;
    net.loss_ppm = ppm(args.loss, "loss")?;
    net.duplicate_ppm = ppm(args.duplicate, "duplicate")?;
    net.reorder_ppm = ppm(args.reorder, "reorder")?;
    net.reorder_window_ms = 500;
    let faulty = net.loss_ppm + net.duplicate_ppm + net.reorder_ppm > 0;
    net.faults_until_ms = args
        .faults_until_ms
        .unwrap_or(if faulty { last_slot_ms } else { 0 });
    let mut rng = concern_rng(args.seed, "example partitions");
    for text in &args.partition {
        match numbers(text, "partition")?.as_slice() {
            [start, heal, fraction] if (0.0..=1.0).contains(fraction) => {
                let count = (fraction * args.validators as f64).round() as usize;
                net.partitions.push(Partition::random(
                    &mut rng,
                    args.validators,
                    count,
                    *start as u64,
                    *heal as u64,
                ));
            }
            _ => {
                return Err(
                    format!("--partition {text}: expected START_MS:HEAL_MS:FRACTION").into(),
                )
            }
        }
    }
    for text in &args.crash {
        let crash = match numbers(text, "crash")?.as_slice() {
            [node, at] => Crash {
                node: *node as usize,
                at_ms: *at as u64,
                restart_ms: None,
            },
            [node, at, restart] => Crash {
                node: *node as usize,
                at_ms: *at as u64,
                restart_ms: Some(*restart as u64),
            },
            _ => return Err(format!("--crash {text}: expected NODE:AT_MS[:RESTART_MS]").into()),
        };
        c.crashes.push(crash);
    }
    Ok(c)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = Args::parse();
    if let Ok(seed) = std::env::var("SIM_SEED") {
        args.seed = seed
            .parse()
            .map_err(|_| format!("SIM_SEED={seed} is not an unsigned integer"))?;
    }
    let config = config(&args)?;
    #[allow(clippy::disallowed_methods)] // wall time of the run, reported only
    let started = Instant::now();
    let report = sim::run(&config)?;
    let wall = started.elapsed();
    print!("{report}");
    println!("wall time: {:.2} s", wall.as_secs_f64());
    if args.verbose {
        report.violations.iter().for_each(|v| println!("  {v}"));
    }
    report.check().map_err(|failure| {
        eprintln!("{failure}");
        "simulation found violations".into()
    })
}
