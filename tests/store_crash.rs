//! Crash safety, in two tests of one shape: a child process (this test
//! binary, re-executed) writes to a store in a loop and announces each write
//! on stdout; the parent SIGKILLs it at seeded random moments, reopens the
//! datadir and audits it.
//!
//! # Ledger batches
//!
//! The child commits ledger batches: random valid finalized transfers,
//! plus pending transfers for the mempool table and local acceptances for
//! the vote-safety record (spending coins the child sets aside, so nothing
//! later finalizes them); the parent SIGKILLs it at seeded random moments,
//! reopens the datadir and audits it.
//!
//! After every kill the store must be whole:
//! * every batch the child announced is wholly present or wholly absent
//!   (its finalized txs, mempool records and acceptance records alike), a
//!   batch whose commit the child reported is present, and a batch's
//!   presence never changes in later rounds;
//! * the address index agrees exactly with the UTXO set, no outpoint is
//!   spent twice or both spent and indexed as unspent (`store_support::audit`);
//! * value is conserved: test txs pay fees (the devnet minimum plus a
//!   per-tx number of units that makes every txid unique across rounds),
//!   and unspent values + fees of recorded txs = genesis supply.
//!
//! Kill moments: the parent waits for a seeded number of the child's lines
//! and kills on the last one; killing on an "applying" line lands inside
//! `commit_batch` (its writes or its fsync). A SIGKILL keeps the page
//! cache, so this proves atomicity, not durability across power loss.
//!
//! # Checkpoint blocks
//!
//! The child finalizes a few transfers, then applies a block on the tip
//! archiving some unarchived txs and paying rewards, or undoes the tip
//! (as fork choice does). After every kill:
//! * the chain tables agree (`Store::check_chain_consistency`: tip,
//!   heights, blocks, archived set, reward outputs) and the whole-store
//!   audit holds, value conservation counting the rewards;
//! * the chain is the one the child's finished operations built, or that
//!   plus the operation in flight at the kill: each apply or undo is whole.
//!
//! A failure prints its seed; rerun it with `STORE_CRASH_SEED=<seed>`.

mod store_support;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use store_support::{audit, finalized, pick, reward_outputs, FundedChain, TestBlock, Wallet};
use timecoin::store::{LedgerBatch, Store, StoreOptions};
use timecoin::types::{Amount, Hash, OutPoint, Tx};

const KILLS: usize = 32;
/// After its trigger line the parent waits up to this long before the kill,
/// so kills land anywhere in the batch's writes, commit or fsync (timing
/// variety only; no assertion depends on it).
const MAX_KILL_DELAY_US: usize = 3_000;
const DEFAULT_SEED: u64 = 7;
const CHILD_TEST: &str = "crash_child_applies_random_batches_until_killed";
const BLOCKS_CHILD_TEST: &str = "crash_child_applies_and_undoes_blocks_until_killed";
const DATADIR_VAR: &str = "STORE_CRASH_CHILD_DATADIR";
const CHILD_SEED_VAR: &str = "STORE_CRASH_CHILD_SEED";
/// The child numbers its batches from here, so ids are unique across rounds.
const FIRST_BATCH_VAR: &str = "STORE_CRASH_CHILD_FIRST_BATCH";
/// The child stops by itself after this many batches if nobody kills it.
const CHILD_MAX_BATCHES: u64 = 10_000;

fn chain() -> FundedChain {
    FundedChain::new("store crash", 16, 8, Amount::from_time(1_000).unwrap())
}

/// The txids of one announced batch, by the table that must hold them.
#[derive(Clone, Debug, Default)]
struct Announced {
    finalized: Vec<Hash>,
    pending: Vec<Hash>,
    accepted: Vec<Hash>,
}

/// What the child prints: `applying <id> <f> <p> <a> <txid>…` (`f`
/// finalized, `p` pending, `a` accepted txids, in that order) right before
/// `commit_batch`, `committed <id>` right after it returns.
enum Line {
    Applying { batch: u64, txids: Announced },
    Committed { batch: u64 },
}

fn parse(line: &str) -> Option<Line> {
    let mut words = line.split_whitespace();
    match words.next()? {
        "applying" => {
            let batch = words.next()?.parse().ok()?;
            let mut lens = [0usize; 3];
            for len in &mut lens {
                *len = words.next()?.parse().ok()?;
            }
            let txids: Vec<Hash> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
            if txids.len() != lens.iter().sum::<usize>() {
                return None;
            }
            let (finalized, rest) = txids.split_at(lens[0]);
            let (pending, accepted) = rest.split_at(lens[1]);
            let txids = Announced {
                finalized: finalized.to_vec(),
                pending: pending.to_vec(),
                accepted: accepted.to_vec(),
            };
            Some(Line::Applying { batch, txids })
        }
        "committed" => Some(Line::Committed {
            batch: words.next()?.parse().ok()?,
        }),
        _ => None,
    }
}

/// Kills the child if the parent fails half-way.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(test: &str, datadir: &Path, seed: u64, first_batch: u64) -> ChildGuard {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(DATADIR_VAR, datadir)
        .env(CHILD_SEED_VAR, seed.to_string())
        .env(FIRST_BATCH_VAR, first_batch.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child test process");
    ChildGuard(child)
}

/// Reads whole lines (ending in '\n') that `is_ours`; a line cut by the
/// kill is dropped.
fn next_line(reader: &mut BufReader<ChildStdout>, is_ours: fn(&str) -> bool) -> Option<String> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 || line.last() != Some(&b'\n') {
            return None;
        }
        if let Some(text) = String::from_utf8_lossy(&line).strip_suffix('\n') {
            if is_ours(text) {
                return Some(text.to_string());
            }
        }
    }
}

/// What the reopened store holds, by table.
struct Held {
    recorded: BTreeSet<Hash>,
    pending: BTreeSet<Hash>,
    accepted: BTreeSet<Hash>,
}

impl Held {
    fn read(store: &Store, recorded: BTreeSet<Hash>) -> Held {
        let txids = |txs: Vec<Tx>| txs.iter().map(Tx::txid).collect();
        Held {
            recorded,
            pending: txids(store.mempool_load(usize::MAX).unwrap()),
            accepted: txids(store.accepted_load(usize::MAX).unwrap()),
        }
    }

    /// How many of `txids` the store holds, out of how many.
    fn count(&self, txids: &Announced) -> (usize, usize) {
        let parts = [
            (&txids.finalized, &self.recorded),
            (&txids.pending, &self.pending),
            (&txids.accepted, &self.accepted),
        ];
        parts.iter().fold((0, 0), |(held, all), (txids, table)| {
            let found = txids.iter().filter(|t| table.contains(t)).count();
            (held + found, all + txids.len())
        })
    }
}

/// Every batch the child announced, across rounds, and what was seen of it.
#[derive(Default)]
struct Ledger {
    announced: BTreeMap<u64, Announced>,
    committed: BTreeSet<u64>,
    /// Presence as judged after an earlier kill; it must never change.
    judged: BTreeMap<u64, bool>,
}

impl Ledger {
    fn record(&mut self, line: &str) {
        match parse(line) {
            Some(Line::Applying { batch, txids }) => {
                self.announced.insert(batch, txids);
            }
            Some(Line::Committed { batch }) => {
                self.committed.insert(batch);
            }
            None => {}
        }
    }

    /// The last announced batch, if the child never reported its commit.
    fn in_flight(&self) -> Option<u64> {
        let (last, _) = self.announced.last_key_value()?;
        (!self.committed.contains(last)).then_some(*last)
    }

    /// Each announced batch is all-or-nothing, committed ones are present,
    /// and earlier verdicts hold.
    fn check(&mut self, held: &Held) {
        for (batch, txids) in &self.announced {
            let (present, all) = held.count(txids);
            assert!(
                present == 0 || present == all,
                "batch {batch} is partial: {present} of {all} records held ({txids:?})"
            );
            let present = present > 0;
            if self.committed.contains(batch) {
                assert!(present, "batch {batch} was committed but is missing");
            }
            let verdict = *self.judged.entry(*batch).or_insert(present);
            assert_eq!(verdict, present, "batch {batch} changed presence");
        }
    }
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_partial_batch() {
    with_seed(batch_crash_rounds);
}

/// Runs `rounds` with the seed from `STORE_CRASH_SEED` (or the default),
/// printing how to reproduce a failure.
fn with_seed(rounds: fn(u64)) {
    let seed = std::env::var("STORE_CRASH_SEED").map_or(DEFAULT_SEED, |s| {
        s.parse().expect("STORE_CRASH_SEED is a u64")
    });
    let outcome = std::panic::catch_unwind(|| rounds(seed));
    if let Err(panic) = outcome {
        eprintln!("crash test failed: reproduce with STORE_CRASH_SEED={seed}");
        std::panic::resume_unwind(panic);
    }
}

/// Runs `child_test` in a child process on `datadir`, feeds its lines to
/// `record` and SIGKILLs it after a seeded number of them plus a seeded
/// delay; returns once the child is dead and every line it wrote is read.
fn run_and_kill(
    rng: &mut ChaCha20Rng,
    child_test: &str,
    datadir: &Path,
    first_id: u64,
    is_ours: fn(&str) -> bool,
    mut record: impl FnMut(&str),
) {
    let mut child = spawn_child(child_test, datadir, rng.next_u64(), first_id);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let lines_before_kill = 1 + pick(rng, 12);
    for _ in 0..lines_before_kill {
        match next_line(&mut stdout, is_ours) {
            Some(line) => record(&line),
            None => panic!("child from id {first_id} stopped before being killed"),
        }
    }
    let delay_us = pick(rng, MAX_KILL_DELAY_US) as u64;
    std::thread::sleep(std::time::Duration::from_micros(delay_us));
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().unwrap();
    // Lines the child wrote before the signal landed still count.
    while let Some(line) = next_line(&mut stdout, is_ours) {
        record(&line);
    }
    let _ = stdout.read_to_end(&mut Vec::new());
}

fn batch_crash_rounds(seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::default();
    // How often the batch being applied at the kill was lost vs. kept.
    let mut in_flight_outcomes = [0usize; 2];
    for round in 0..KILLS as u64 {
        let first_batch = round * CHILD_MAX_BATCHES;
        let is_ours = |line: &str| parse(line).is_some();
        run_and_kill(
            &mut rng,
            CHILD_TEST,
            dir.path(),
            first_batch,
            is_ours,
            |line| ledger.record(line),
        );
        let store = Store::open(dir.path(), &chain.spec, StoreOptions::default())
            .unwrap_or_else(|e| panic!("reopen after kill {round}: {e}"));
        let audit = audit(&store, &chain);
        ledger.check(&Held::read(&store, audit.recorded));
        if let Some(in_flight) = ledger.in_flight() {
            in_flight_outcomes[usize::from(ledger.judged[&in_flight])] += 1;
        }
    }
    let present = ledger.judged.values().filter(|p| **p).count();
    eprintln!(
        "{KILLS} kills, {present} batches present; batch in flight at the kill: \
         {} absent, {} present",
        in_flight_outcomes[0], in_flight_outcomes[1]
    );
    assert!(
        present >= KILLS,
        "only {present} batches survived {KILLS} rounds"
    );
}

/// The child: not a test on its own (ignored, and a no-op without the
/// parent's environment).
#[test]
#[ignore = "run by sigkill_at_random_moments_never_leaves_a_partial_batch"]
fn crash_child_applies_random_batches_until_killed() {
    let Ok(datadir) = std::env::var(DATADIR_VAR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_VAR).unwrap().parse().unwrap();
    let first_batch: u64 = std::env::var(FIRST_BATCH_VAR).unwrap().parse().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let chain = chain();
    let store = Store::open(Path::new(&datadir), &chain.spec, StoreOptions::default()).unwrap();
    let mut wallet = Wallet::from_store(&chain, &store);
    // Coins guarded by an acceptance record stay unspent, so every record
    // of every round stays (only a durable spend would remove it).
    let guarded: BTreeSet<OutPoint> = store
        .accepted_load(usize::MAX)
        .unwrap()
        .iter()
        .flat_map(|tx| tx.inputs.iter().map(|i| i.prev))
        .collect();
    wallet
        .coins
        .retain(|(outpoint, _)| !guarded.contains(outpoint));
    // A fee unique to each tx makes its txid unique, so no later batch can
    // rebuild (and record) a tx of a batch lost here.
    let fee = |tx_id: u64| chain.min_fee().checked_add(Amount(tx_id)).unwrap();
    // End libtest's "test … " prefix so the first batch line starts a line.
    println!();
    for batch_id in first_batch..first_batch + CHILD_MAX_BATCHES {
        let finalized: Vec<_> = (0..1 + pick(&mut rng, 16))
            .map(|i| {
                let shape = (1 + pick(&mut rng, 2), 1 + pick(&mut rng, 3));
                let tx_id = batch_id * 100 + i as u64;
                let tx = wallet.transfer(&chain, &mut rng, shape, fee(tx_id));
                finalized(&tx, 1500, tx_id)
            })
            .collect();
        let counts = [pick(&mut rng, 3), pick(&mut rng, 3)];
        let [pending, accepted] = [(counts[0], 50), (counts[1], 60)].map(|(n, first)| {
            (0..n as u64)
                .map(|i| wallet.spend_set_aside(&chain, &mut rng, fee(batch_id * 100 + first + i)))
                .collect::<Vec<Tx>>()
        });
        let txids: Vec<String> = finalized
            .iter()
            .map(|f| &f.tx)
            .chain(&pending)
            .chain(&accepted)
            .map(|tx| tx.txid().to_string())
            .collect();
        println!(
            "applying {batch_id} {} {} {} {}",
            finalized.len(),
            pending.len(),
            accepted.len(),
            txids.join(" ")
        );
        let report = store
            .commit_batch(&LedgerBatch {
                mempool_puts: &pending,
                finalized: &finalized,
                accepted: &accepted,
                ..LedgerBatch::default()
            })
            .unwrap();
        assert!(report.refused_acceptances.is_empty());
        println!("committed {batch_id}");
    }
}

/// Block operations the child announces: `apply <op> <from> <to>` or
/// `undo <op> <from> <to>` (tip hashes before and after) right before the
/// write, `done <op>` right after it returns.
enum BlockLine {
    Start { op: u64, step: Step },
    Done { op: u64 },
}

/// One move of the tip.
#[derive(Clone, Copy, Debug)]
struct Step {
    undo: bool,
    from: Hash,
    to: Hash,
}

fn parse_block_line(line: &str) -> Option<BlockLine> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let op = words.next()?.parse().ok()?;
    let mut step = |undo| -> Option<BlockLine> {
        let (from, to) = (words.next()?.parse().ok()?, words.next()?.parse().ok()?);
        let step = Step { undo, from, to };
        Some(BlockLine::Start { op, step })
    };
    match kind {
        "apply" => step(false),
        "undo" => step(true),
        "done" => Some(BlockLine::Done { op }),
        _ => None,
    }
}

/// The chain the child's finished operations built (block hashes from
/// height 1), and the operation it started last, if unfinished.
struct ChainModel {
    genesis: Hash,
    chain: Vec<Hash>,
    in_flight: Option<(u64, Step)>,
}

impl ChainModel {
    fn record(&mut self, line: &str) {
        match parse_block_line(line) {
            Some(BlockLine::Start { op, step }) => self.in_flight = Some((op, step)),
            Some(BlockLine::Done { op }) => {
                let (started, step) = self.in_flight.take().expect("done after a start");
                assert_eq!(started, op, "the child reports operations in order");
                self.take(step);
            }
            None => {}
        }
    }

    fn tip(&self) -> Hash {
        self.chain.last().copied().unwrap_or(self.genesis)
    }

    fn take(&mut self, step: Step) {
        assert_eq!(step.from, self.tip(), "{step:?} starts on the tip");
        if step.undo {
            self.chain.pop();
            assert_eq!(step.to, self.tip(), "{step:?} ends on the parent");
        } else {
            self.chain.push(step.to);
        }
    }

    /// The store's chain must be the finished one, or that plus the
    /// operation in flight (which then counts as finished). Returns
    /// whether the operation in flight was kept.
    fn check(&mut self, store: &Store) -> bool {
        let stored: Vec<Hash> = store
            .blocks_from(1, usize::MAX)
            .unwrap()
            .iter()
            .map(|b| b.hash)
            .collect();
        let in_flight = self.in_flight.take();
        if stored == self.chain {
            return false;
        }
        let (_, step) = in_flight
            .unwrap_or_else(|| panic!("store chain {stored:?} differs from {:?}", self.chain));
        self.take(step);
        assert_eq!(stored, self.chain, "store holds neither side of {step:?}");
        true
    }
}

#[test]
fn sigkill_during_block_apply_and_undo_leaves_a_consistent_chain() {
    with_seed(block_crash_rounds);
}

fn block_crash_rounds(seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let chain = chain();
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainModel {
        genesis: chain.spec.genesis_hash(),
        chain: Vec::new(),
        in_flight: None,
    };
    // How often the op in flight at the kill was lost vs. kept.
    let mut in_flight_outcomes = [0usize; 2];
    for round in 0..KILLS as u64 {
        let first_op = round * CHILD_MAX_BATCHES;
        let is_ours = |line: &str| parse_block_line(line).is_some();
        run_and_kill(
            &mut rng,
            BLOCKS_CHILD_TEST,
            dir.path(),
            first_op,
            is_ours,
            |line| model.record(line),
        );
        let store = Store::open(dir.path(), &chain.spec, StoreOptions::default())
            .unwrap_or_else(|e| panic!("reopen after kill {round}: {e}"));
        audit(&store, &chain);
        let had_in_flight = model.in_flight.is_some();
        let kept = model.check(&store);
        if had_in_flight {
            in_flight_outcomes[usize::from(kept)] += 1;
        }
        assert_eq!(store.tip().unwrap().hash, model.tip());
    }
    eprintln!(
        "{KILLS} kills, chain at height {}; op in flight at the kill: {} absent, {} present",
        model.chain.len(),
        in_flight_outcomes[0],
        in_flight_outcomes[1]
    );
    assert!(model.chain.len() >= 2, "the chain barely grew");
}

/// The child of the block test (ignored, and a no-op without the parent's
/// environment): finalizes transfers, applies blocks, undoes the tip.
#[test]
#[ignore = "run by sigkill_during_block_apply_and_undo_leaves_a_consistent_chain"]
fn crash_child_applies_and_undoes_blocks_until_killed() {
    let Ok(datadir) = std::env::var(DATADIR_VAR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_VAR).unwrap().parse().unwrap();
    let first_op: u64 = std::env::var(FIRST_BATCH_VAR).unwrap().parse().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let chain = chain();
    let store = Store::open(Path::new(&datadir), &chain.spec, StoreOptions::default()).unwrap();
    let mut wallet = Wallet::from_store(&chain, &store);
    let maturity = u64::from(chain.spec.config.ledger.reward_maturity_blocks);
    println!();
    for op in first_op..first_op + CHILD_MAX_BATCHES {
        let tip = store.tip().unwrap();
        if tip.height > 0 && pick(&mut rng, 3) == 0 {
            let parent = store.block_record(&tip.hash).unwrap().unwrap().parent;
            println!("undo {op} {} {}", tip.hash, parent.hash);
            store.undo_tip(&tip.hash).unwrap();
            println!("done {op}");
            continue;
        }
        let finalized: Vec<_> = (0..1 + pick(&mut rng, 4))
            .map(|i| {
                let fee = chain
                    .min_fee()
                    .checked_add(Amount(op * 10 + i as u64))
                    .unwrap();
                let tx = wallet.transfer(&chain, &mut rng, (1, 2), fee);
                finalized(&tx, 256, op)
            })
            .collect();
        store.apply_finalized(&finalized).unwrap();
        let archived = store.unarchived(pick(&mut rng, 12)).unwrap();
        let paid = 1 + pick(&mut rng, 3);
        let rewards = reward_outputs(&chain, &mut rng, paid, Amount(op + 1));
        let block = TestBlock::on(&tip, archived, rewards, maturity, op);
        println!("apply {op} {} {}", tip.hash, block.hash);
        store.apply_block(&block.commit()).unwrap();
        println!("done {op}");
    }
}
