//! The deterministic simulator (DESIGN §11.2): many real `consensus::Engine`s,
//! each over its own `MemUtxoSet`, on a virtual clock and a seeded faulty
//! network, with Byzantine validators and checkers for safety, agreement,
//! validity and liveness. One seed expands into one whole run, byte for byte;
//! a failing run says `reproduce with SIM_SEED=<seed>`.
//!
//! Drives the real engine, never a copy or a mock of its logic. Must never
//! read a wall clock, a global RNG or HashMap iteration order.

pub mod byzantine;
pub mod checkers;
pub mod churn;
pub mod cluster;
pub mod network;
pub mod queue;
pub mod report;
pub mod rng;
pub mod workload;

pub use byzantine::Strategy;
pub use checkers::Violation;
pub use churn::ChurnConfig;
pub use cluster::{Crash, Role};
pub use network::{NetworkConfig, Partition};
pub use report::SimReport;
pub use workload::WorkloadConfig;

use crate::config::{ChainConfig, ConfigError};
use crate::consensus::EngineConfig;
use crate::crypto::Keypair;
use crate::finality::ValidatorSetError;
use crate::ledger::MemUtxoSet;
use crate::types::{Network as Chain, Tier, Validator, VrfPublicBytes};
use byzantine::Adversary;
use checkers::{Checkers, LivenessDuty, Period};
use churn::EpochSchedule;
use cluster::{Cluster, ClusterSetup};
use rng::{below, concern_rng, shuffled, PPM};
use std::fmt;
use std::str::FromStr;
use workload::{Workload, WorkloadError};

/// Relative frequencies of the tiers `[Free, Bronze, Silver, Gold]` among validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierMix(pub [u32; 4]);

impl TierMix {
    /// Every validator Bronze: equal weights.
    pub const BRONZE: TierMix = TierMix([0, 1, 0, 0]);
    /// Many small validators, few large ones.
    pub const MIXED: TierMix = TierMix([4, 3, 2, 1]);

    fn draw(&self, rng: &mut impl rand_chacha::rand_core::RngCore) -> Tier {
        let total: u64 = self.0.iter().map(|&f| u64::from(f)).sum();
        let mut r = below(rng, total);
        for (tier, &f) in Tier::ALL.iter().zip(&self.0) {
            if r < u64::from(f) {
                return *tier;
            }
            r -= u64::from(f);
        }
        Tier::Bronze
    }
}

impl fmt::Display for TierMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}:{b}:{c}:{d}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tier mix '{0}': expected bronze, mixed, or free:bronze:silver:gold counts such as 4:3:2:1 (not all 0)")]
pub struct BadTierMix(pub String);

impl FromStr for TierMix {
    type Err = BadTierMix;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTierMix(s.to_string());
        match s {
            "bronze" => return Ok(TierMix::BRONZE),
            "mixed" => return Ok(TierMix::MIXED),
            _ => {}
        }
        let parts: Vec<u32> = s
            .split(':')
            .map(|p| p.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let counts: [u32; 4] = parts.try_into().map_err(|_| bad())?;
        if counts.iter().all(|&c| c == 0) {
            return Err(bad());
        }
        Ok(TierMix(counts))
    }
}

/// Everything one run is made of. The same config gives the same run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub validators: usize,
    pub tiers: TierMix,
    /// Byzantine share of the total weight, in ppm (filled greedily, never exceeded).
    pub byzantine_ppm: u32,
    pub strategy: Strategy,
    pub network: NetworkConfig,
    pub crashes: Vec<Crash>,
    pub workload: WorkloadConfig,
    /// Chain rules and Snowball parameters; `rng_seed` is set per node.
    pub engine: EngineConfig,
    /// Gossip degree (everyone, in clusters up to `gossip_peers + 1`).
    pub gossip_peers: usize,
    /// Restarted nodes reload their mempool, as from the LMDB `mempool` table.
    pub persist_mempool: bool,
    /// Overrides [`SimConfig::default_liveness_bound_ms`].
    pub liveness_bound_ms: Option<u64>,
    /// Seats of the finality committee drawn from the set (DESIGN §5).
    pub committee_seats: u32,
    /// Validators joining and leaving at every epoch change (`None`: the
    /// whole pool is the set of one epoch).
    pub churn: Option<ChurnConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the built-in devnet chain config does not load: {0}")]
    Config(#[from] ConfigError),
    #[error("the simulated validator set is unusable: {0}")]
    Validators(#[from] ValidatorSetError),
    #[error("the workload cannot be built: {0}")]
    Workload(#[from] WorkloadError),
    #[error("a simulation needs at least one validator")]
    NoValidators,
    #[error("crash of node {node}: there are only {validators} nodes")]
    NoSuchNode { node: usize, validators: usize },
}

impl SimConfig {
    /// `validators` Bronze honest validators under the devnet rules and
    /// Snowball parameters, the default network and workload, no faults.
    pub fn devnet(seed: u64, validators: usize) -> Result<SimConfig, SimError> {
        let spec = ChainConfig::builtin(Chain::Devnet)?;
        Ok(SimConfig {
            seed,
            validators,
            tiers: TierMix::BRONZE,
            byzantine_ppm: 0,
            strategy: Strategy::Silent,
            network: NetworkConfig::default(),
            crashes: Vec::new(),
            workload: WorkloadConfig::default(),
            engine: EngineConfig::from_spec(&spec, 0),
            gossip_peers: 16,
            persist_mempool: true,
            liveness_bound_ms: None,
            committee_seats: spec.config.consensus.finality_committee_seats,
            churn: None,
        })
    }

    /// How long after `max(submission, faults end)` a non-conflicting honest
    /// tx may take to finalize on every honest node:
    /// `2·beta·poll_timeout + 20·(latency_base + 3·latency_tail_mean)`.
    ///
    /// Why: acceptance needs `beta` consecutive successful polls, and a poll
    /// ends at the latest at its `poll_timeout` (an unanswered sample, e.g. a
    /// Silent validator, costs exactly that), so `beta·poll_timeout` covers
    /// one clean run of polls even without pipelining; the factor 2 allows one
    /// confidence reset midway (a poll that missed `alpha'` because of
    /// Byzantine samples). The latency term pays for the hops that are not
    /// polls: gossip of the tx, fetches after `Unknown`, vote requests to
    /// unsampled validators, and proof gossip across the peer graph, each
    /// counted at three times the mean tail.
    pub fn default_liveness_bound_ms(&self) -> u64 {
        let s = &self.engine.snowball;
        let hop_ms = self.network.latency_base_ms + 3 * self.network.latency_tail_mean_ms;
        2 * u64::from(s.beta) * s.poll_timeout_ms + 20 * hop_ms
    }

    /// The end of the last fault: partitions healed, loss stopped, crashed
    /// nodes back (a node that never restarts counts from its crash).
    pub fn faults_end_ms(&self) -> u64 {
        self.crashes
            .iter()
            .map(|c| c.restart_ms.unwrap_or(c.at_ms))
            .chain([self.network.faults_end_ms()])
            .max()
            .unwrap_or(0)
    }
}

/// Runs one simulation to the end and judges it.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    let n = config.validators;
    if n == 0 {
        return Err(SimError::NoValidators);
    }
    if let Some(c) = config.crashes.iter().find(|c| c.node >= n) {
        return Err(SimError::NoSuchNode {
            node: c.node,
            validators: n,
        });
    }
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_seed_label(&format!("timecoin sim validator {i}")))
        .collect();
    let (weights, roles) = assign_roles(config);
    let total_weight: u64 = weights.iter().sum();
    let pool: Vec<Validator> = keys
        .iter()
        .zip(&weights)
        .map(|(k, &weight)| Validator {
            id: k.public(),
            // No block sortition in the simulator: any VRF key will do.
            vrf_key: VrfPublicBytes(k.public().0),
            weight,
        })
        .collect();
    let honest: Vec<bool> = roles.iter().map(|r| *r == Role::Honest).collect();
    let honest_nodes: Vec<usize> = (0..n).filter(|&i| honest[i]).collect();

    let params = config.engine.validation;
    let workload = Workload::generate(
        &config.workload,
        &params,
        &honest_nodes,
        &mut concern_rng(config.seed, "workload"),
    )?;
    let mut genesis = MemUtxoSet::default();
    genesis.add_outputs(workload.genesis_txid, &workload.allocations);

    let bound_ms = config
        .liveness_bound_ms
        .unwrap_or_else(|| config.default_liveness_bound_ms());
    let last_submission_ms = workload
        .submissions
        .iter()
        .map(|s| s.at_ms)
        .max()
        .unwrap_or(0);
    let faults_end_ms = config.faults_end_ms();
    let period = Period {
        faults_end_ms,
        bound_ms,
        run_end_ms: last_submission_ms.max(faults_end_ms) + bound_ms,
    };
    // Finality is the committees'; every node still runs and observes.
    let genesis_hash = config.engine.scope.genesis_hash;
    let seats = config.committee_seats;
    let epochs = match config.churn {
        None => EpochSchedule::single(&pool, genesis_hash, seats)?,
        Some(churn) => EpochSchedule::churning(
            &pool,
            churn,
            period.run_end_ms,
            genesis_hash,
            seats,
            &mut concern_rng(config.seed, "churn"),
        )?,
    };

    let adversary = Adversary::new(
        honest_nodes.iter().map(|&i| keys[i].public()).collect(),
        concern_rng(config.seed, "byzantine"),
    );
    let checkers = Checkers::new(
        epochs.committees.clone(),
        params,
        config.engine.scope.genesis_hash,
        honest.clone(),
        genesis.clone(),
    );
    let mut cluster = Cluster::new(ClusterSetup {
        seed: config.seed,
        roles,
        keys,
        epochs,
        engine: config.engine.clone(),
        genesis,
        network: network::Network::new(config.network.clone(), concern_rng(config.seed, "network")),
        adversary,
        checkers,
        gossip_peers: config.gossip_peers,
        persist_mempool: config.persist_mempool,
        submissions: workload.submissions,
        crashes: config.crashes.clone(),
    });

    cluster.run_until(period.run_end_ms);

    let up = cluster.up_nodes();
    let required: Vec<usize> = up.iter().copied().filter(|&i| honest[i]).collect();
    let honest_up_weight: u64 = required.iter().map(|&i| weights[i]).sum();
    // Liveness is promised with ≥ 80 % honest weight up and a connected network.
    let liveness_promised = honest_up_weight * 5 >= total_weight * 4;
    let mut liveness_checked = None;
    if liveness_promised {
        let duties: Vec<LivenessDuty> = cluster
            .submissions()
            .iter()
            .zip(cluster.admitted())
            .filter(|(s, admitted)| **admitted && s.double_spends.is_none())
            .map(|(s, _)| LivenessDuty {
                txid: s.tx.txid(),
                submitted_ms: s.at_ms,
            })
            .collect();
        let checkers = cluster.checkers_mut();
        liveness_checked = Some(checkers.check_liveness(&duties, &required, period));
        checkers.check_agreement(&required, period);
    }
    Ok(SimReport::new(
        config,
        &cluster,
        &weights,
        &required,
        period,
        liveness_checked,
    ))
}

/// Each validator's weight (drawn from the tier mix) and role: validators
/// are marked Byzantine in a seeded random order, each one only if the
/// Byzantine weight stays within `byzantine_ppm` of the total. A pure
/// function of the config, so tests can aim faults at chosen roles.
pub fn assign_roles(config: &SimConfig) -> (Vec<u64>, Vec<Role>) {
    let rng = &mut concern_rng(config.seed, "validators");
    let weights: Vec<u64> = (0..config.validators)
        .map(|_| config.tiers.draw(rng).weight())
        .collect();
    let total: u64 = weights.iter().sum();
    let budget = u128::from(total) * u128::from(config.byzantine_ppm) / u128::from(PPM);
    let mut roles = vec![Role::Honest; weights.len()];
    let mut used: u128 = 0;
    for i in shuffled(rng, weights.len()) {
        let w = u128::from(weights[i]);
        if used + w <= budget {
            used += w;
            roles[i] = Role::Byzantine(config.strategy);
        }
    }
    (weights, roles)
}
