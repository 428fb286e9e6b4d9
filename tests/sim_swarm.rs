//! Simulation swarm (DESIGN §11.2): many seeds of the deterministic simulator,
//! each a whole run of real engines, judged for safety, agreement, validity
//! and liveness. Seeds come from `SIM_SEED` (one) or `SIM_SEEDS` (`1,5,9` or
//! `100..200`) when set; every failure names the seed that replays it.

use std::ops::Range;
use timecoin::sim::{self, ChurnConfig, Crash, Partition, SimConfig, SimReport, Strategy, TierMix};

/// The seeds to run: `SIM_SEED`, else `SIM_SEEDS`, else `default`.
fn seeds(default: Range<u64>) -> Vec<u64> {
    let parse = |s: &str| -> u64 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad seed '{s}' in SIM_SEED(S)"))
    };
    if let Ok(one) = std::env::var("SIM_SEED") {
        return vec![parse(&one)];
    }
    match std::env::var("SIM_SEEDS") {
        Ok(list) => match list.split_once("..") {
            Some((a, b)) => (parse(a)..parse(b)).collect(),
            None => list.split(',').map(parse).collect(),
        },
        Err(_) => default.collect(),
    }
}

/// A small cluster: `validators` Bronze validators, a few dozen payments
/// submitted over half a second.
fn small(seed: u64, validators: usize) -> SimConfig {
    let mut c = SimConfig::devnet(seed, validators).expect("devnet config");
    c.workload.txs = 24;
    c.workload.rate_per_sec = 50;
    c
}

/// `small`, with payments spread over 2.4 s so that some are submitted
/// during the faults (ending by 1.5 s) and some after.
fn spread(seed: u64, validators: usize) -> SimConfig {
    let mut c = small(seed, validators);
    c.workload.rate_per_sec = 10;
    c
}

/// Runs every seed, then fails once, listing each failing run's report and
/// its `reproduce with SIM_SEED=…` line.
fn swarm(seeds: Vec<u64>, make: impl Fn(u64) -> SimConfig) -> Vec<SimReport> {
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for seed in seeds {
        let report = sim::run(&make(seed)).expect("simulation config");
        if let Err(failure) = report.check() {
            failures.push(failure);
        } else if report.liveness_checked.unwrap_or(0) == 0 {
            failures.push(format!(
                "liveness judged no payment: the run proves nothing\n{report}\nreproduce with SIM_SEED={seed}"
            ));
        }
        reports.push(report);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    reports
}

#[test]
fn same_seed_replays_byte_for_byte() {
    let config = |seed| {
        let mut c = small(seed, 7);
        c.byzantine_ppm = 200_000;
        c.strategy = Strategy::KeepSplit;
        c.workload.conflict_ppm = 300_000;
        c.network.loss_ppm = 20_000;
        c.network.duplicate_ppm = 20_000;
        c.network.reorder_ppm = 50_000;
        c.network.reorder_window_ms = 200;
        c.network.faults_until_ms = 1_000;
        c
    };
    let seed = seeds(42..43)[0];
    let a = sim::run(&config(seed)).unwrap();
    let b = sim::run(&config(seed)).unwrap();
    assert_eq!(a.digest, b.digest, "reproduce with SIM_SEED={seed}");
    assert_eq!(a.latency_ms, b.latency_ms);
    assert_ne!(a.digest, sim::run(&config(seed + 1)).unwrap().digest);
}

#[test]
fn honest_cluster_finalizes_every_payment_everywhere() {
    let reports = swarm(seeds(0..6), |seed| small(seed, 4 + (seed as usize % 3) * 8));
    for r in reports {
        assert_eq!(r.finalized_everywhere, r.noncon_admitted, "seed {}", r.seed);
        assert_eq!(r.noncon_admitted, r.submitted, "seed {}", r.seed);
    }
}

#[test]
fn double_spends_finalize_at_most_one_side_and_honest_nodes_agree() {
    swarm(seeds(10..16), |seed| {
        let mut c = small(seed, 10);
        c.workload.conflict_ppm = 500_000;
        c
    });
}

#[test]
fn mixed_tier_weights_keep_safety_and_liveness() {
    swarm(seeds(20..24), |seed| {
        let mut c = small(seed, 12);
        c.tiers = TierMix::MIXED;
        c.workload.conflict_ppm = 250_000;
        c
    });
}

/// 20 % Byzantine weight (2 of 10 Bronze validators) following `strategy`,
/// with double spends in the workload.
fn byzantine(strategy: Strategy, seeds_: Range<u64>) {
    swarm(seeds(seeds_), |seed| {
        let mut c = small(seed, 10);
        c.byzantine_ppm = 200_000;
        c.strategy = strategy;
        c.workload.conflict_ppm = 250_000;
        c
    });
}

#[test]
fn byzantine_always_invalid_at_20_percent_is_harmless() {
    byzantine(Strategy::AlwaysInvalid, 30..34);
}

#[test]
fn byzantine_valid_for_all_at_20_percent_cannot_finalize_both_sides() {
    byzantine(Strategy::ValidForAll, 40..44);
}

#[test]
fn byzantine_keep_split_at_20_percent_cannot_stall_or_split() {
    byzantine(Strategy::KeepSplit, 50..54);
}

#[test]
fn byzantine_silent_at_20_percent_only_slows_polls() {
    byzantine(Strategy::Silent, 60..64);
}

#[test]
fn byzantine_replayed_votes_at_20_percent_never_count() {
    byzantine(Strategy::ReplayOldVotes, 70..74);
}

#[test]
fn byzantine_forged_votes_at_20_percent_never_count() {
    byzantine(Strategy::ForgeVotes, 80..84);
}

#[test]
fn partition_heals_and_payments_finalize_everywhere_after() {
    swarm(seeds(90..96), |seed| {
        let mut c = spread(seed, 10);
        c.workload.conflict_ppm = 250_000;
        let mut rng = sim::rng::concern_rng(seed, "test partition");
        let minority = 1 + sim::rng::below(&mut rng, 4) as usize;
        c.network.partitions = vec![Partition::random(&mut rng, 10, minority, 150, 1_500)];
        c
    });
}

/// A quarter of 40 validators cut off for 2.2 s under steady load, no
/// Byzantine nodes, no loss: after the heal every payment is final on
/// every node. Sampling only the responsive validators (reverted) broke
/// this: the cut-off side, no longer asked, never learned what was
/// finalized meanwhile (93 of 200 payments everywhere, CLI seed 7).
#[test]
fn a_quarter_cut_off_under_load_catches_up_after_the_heal() {
    swarm(seeds(110..112), |seed| {
        let mut c = SimConfig::devnet(seed, 40).expect("devnet config");
        c.workload.txs = 200;
        c.workload.rate_per_sec = 200;
        let mut rng = sim::rng::concern_rng(seed, "test partition");
        c.network.partitions = vec![Partition::random(&mut rng, 40, 10, 300, 2_500)];
        c
    });
}

#[test]
fn crashed_validators_restart_over_their_ledger_and_keep_up() {
    swarm(seeds(100..106), |seed| {
        let mut c = spread(seed, 10);
        c.persist_mempool = seed % 2 == 0;
        c.crashes = vec![
            Crash {
                node: seed as usize % 10,
                at_ms: 200,
                restart_ms: Some(1_200),
            },
            Crash {
                node: (seed as usize + 5) % 10,
                at_ms: 500,
                restart_ms: None,
            },
        ];
        c
    });
}

#[test]
fn lossy_duplicating_reordering_network_stays_safe_and_live_after_faults() {
    swarm(seeds(110..116), |seed| {
        let mut c = spread(seed, 10);
        c.workload.conflict_ppm = 250_000;
        c.network.loss_ppm = 50_000;
        c.network.duplicate_ppm = 50_000;
        c.network.reorder_ppm = 100_000;
        c.network.reorder_window_ms = 400;
        c.network.faults_until_ms = 1_000;
        c
    });
}

/// The long swarm: bigger clusters, every strategy, every fault at once
/// (equal weights: see the next test for mixed tiers). About 14 minutes:
/// `cargo test --release --test sim_swarm long -- --ignored`
#[test]
#[ignore]
fn long_swarm_every_strategy_with_faults() {
    swarm(seeds(1_000..1_012), |seed| {
        let mut c = SimConfig::devnet(seed, 40).expect("devnet config");
        c.byzantine_ppm = 200_000;
        c.strategy = Strategy::ALL[seed as usize % Strategy::ALL.len()];
        c.workload.txs = 200;
        c.workload.rate_per_sec = 200;
        c.workload.conflict_ppm = 200_000;
        c.network.loss_ppm = 20_000;
        c.network.duplicate_ppm = 20_000;
        c.network.reorder_ppm = 50_000;
        c.network.reorder_window_ms = 300;
        c.network.faults_until_ms = 2_000;
        let mut rng = sim::rng::concern_rng(seed, "test partition");
        c.network.partitions = vec![Partition::random(&mut rng, 40, 10, 300, 2_500)];
        c.crashes = vec![Crash {
            node: seed as usize % 40,
            at_ms: 400,
            restart_ms: Some(1_800),
        }];
        c
    });
}

/// The checkers are live against the real engine: past the protocol's
/// assumption (40 % Byzantine weight signing both sides of every double
/// spend, bridging a partition that splits the honest validators in two
/// halves, each half given one side), conflicting proofs do form, and the
/// run reports them as safety violations with the seed that reproduces
/// them. Whether the two sides' proofs race ahead of each other depends on
/// the seed's timing (about half of seeds 100..140 did, and any engine
/// timing change moves which), so this sweeps a range and asserts that
/// violations appear in several runs and are always reported.
#[test]
fn beyond_one_third_byzantine_a_bridged_partition_breaks_safety_and_is_caught() {
    let mut violated = 0;
    for seed in 100..112 {
        let mut c = small(seed, 10);
        c.byzantine_ppm = 400_000;
        c.strategy = Strategy::ValidForAll;
        c.workload.txs = 8;
        c.workload.conflict_ppm = 1_000_000;
        // A quiet network: every poll inside a half gets its 7 answers in time.
        c.network.latency_base_ms = 10;
        c.network.latency_tail_mean_ms = 5;
        let (_, roles) = sim::assign_roles(&c);
        let honest: Vec<usize> = (0..10).filter(|&i| roles[i] == sim::Role::Honest).collect();
        // The workload sends the two sides of a pair to consecutive honest
        // nodes: alternate halves put them on opposite sides of the cut.
        c.network.partitions = vec![Partition {
            start_ms: 0,
            heal_ms: 5_000,
            side: honest.iter().step_by(2).copied().collect(),
            bridges: (0..10).filter(|i| !honest.contains(i)).collect(),
        }];
        let report = sim::run(&c).unwrap();
        if report.safety_violations() > 0 {
            violated += 1;
            assert!(report
                .check()
                .unwrap_err()
                .contains(&format!("SIM_SEED={seed}")));
        }
    }
    assert!(violated >= 3, "only {violated} of 12 seeds broke safety");
}

/// Found by this simulator (seeds 1005, 1008, 1011 of the long swarm with
/// mixed tiers) when polls sampled `k` *distinct* validators: with 20 %
/// Byzantine weight spread over many small validators (36 of 40 nodes,
/// 19.5 % of the weight), every sample of 20 held 16 Byzantine validators and
/// nothing finalized. Slots now follow stake (`consensus::sampler`).
/// The bound is 30 s, not the default 10.2 s: with Silent validators holding
/// 20 % of the slots, a poll succeeds only if at most 2 of the 16 honest
/// slots answer late (latency tail), so runs of `beta` successes are rarer;
/// measured finality p50 2.6–5.1 s, p99 5.9–9.0 s (virtual) over these seeds.
#[test]
fn many_small_byzantine_validators_with_a_fifth_of_the_weight_cannot_stall_finality() {
    swarm(seeds(1_005..1_012), |seed| {
        let mut c = SimConfig::devnet(seed, 40).expect("devnet config");
        c.tiers = TierMix::MIXED;
        c.byzantine_ppm = 200_000;
        c.strategy = Strategy::Silent;
        c.workload.txs = 24;
        c.liveness_bound_ms = Some(30_000);
        c
    });
}

/// DESIGN §7: validators leave and join at every epoch change (every
/// 500 ms here, nodes entering each up to 100 ms apart), a fifth of the
/// weight Byzantine and a quarter of the payments double spends, one node
/// down across a change: safety, agreement and the liveness bound hold.
#[test]
fn validators_joining_and_leaving_every_epoch_keep_safety_and_liveness() {
    let reports = swarm(seeds(400..406), |seed| {
        let mut c = spread(seed, 14);
        c.byzantine_ppm = 200_000;
        c.strategy = if seed % 2 == 0 {
            Strategy::KeepSplit
        } else {
            Strategy::Silent
        };
        c.workload.conflict_ppm = 250_000;
        c.churn = Some(ChurnConfig {
            epoch_ms: 500,
            swaps: 2,
            skew_ms: 100,
        });
        c.crashes = vec![Crash {
            node: seed as usize % 14,
            at_ms: 900,
            restart_ms: Some(1_700),
        }];
        c
    });
    for report in reports {
        assert!(report.epochs >= 6, "{report}");
    }
}
