//! The real `time-cli` and `timed` binaries, run in a temporary directory:
//! wallet files, offline transactions checked by the ledger's own validation,
//! and the genesis summary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use timecoin::config::{ChainConfig, ChainSpec, DEVNET_TOML};
use timecoin::genesis::devnet_wallet_key;
use timecoin::ledger::{validate, MemUtxoSet};
use timecoin::types::{Address, Network, Tx};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(bin: &str, dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn cli(dir: &Path, args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_time-cli"), dir, args)
}

fn timed(dir: &Path, args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_timed"), dir, args)
}

/// Runs `time-cli` expecting success; returns stdout.
fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let r = cli(dir, args);
    assert_eq!(r.code, Some(0), "time-cli {args:?} failed: {}", r.stderr);
    r.stdout
}

/// Runs `time-cli` expecting a one-line error containing `needle`, exit code 1
/// and nothing on stdout.
fn cli_fails(dir: &Path, args: &[&str], needle: &str) {
    let r = cli(dir, args);
    assert_eq!(r.code, Some(1), "time-cli {args:?}: {}", r.stderr);
    assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
    assert!(r.stderr.starts_with("error: "), "stderr: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "expected '{needle}' in: {}",
        r.stderr
    );
}

fn devnet() -> ChainSpec {
    ChainConfig::builtin(Network::Devnet).unwrap()
}

/// `--input` spending the devnet demo wallet's genesis allocation.
fn genesis_input() -> String {
    format!("{}:0:1000000", devnet().genesis_hash())
}

fn validator_address() -> String {
    devnet().allocations[1].address.to_text(Network::Devnet)
}

#[test]
fn keygen_creates_an_owner_only_wallet_file() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(dir.path(), &["keygen"]);
    let mode = std::fs::metadata(dir.path().join("wallet.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn second_keygen_or_bad_label_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(dir.path(), &["keygen"]);
    let before = std::fs::read(dir.path().join("wallet.json")).unwrap();
    cli_fails(dir.path(), &["keygen"], "already exists; pass --add");
    let bad_label = ["keygen", "--add", "--label", "a\tb"];
    cli_fails(
        dir.path(),
        &bad_label,
        "--label 'a\tb': contains control characters",
    );
    assert_eq!(
        std::fs::read(dir.path().join("wallet.json")).unwrap(),
        before
    );
}

#[test]
fn address_prints_each_key_as_a_valid_devnet_address_with_its_label() {
    let dir = tempfile::tempdir().unwrap();
    let first = cli_ok(dir.path(), &["keygen"]);
    let second = cli_ok(dir.path(), &["keygen", "--add", "--label", "savings"]);
    let listed = cli_ok(dir.path(), &["address"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines,
        [first.trim(), &format!("{}\tsavings", second.trim())]
    );
    for line in lines {
        let address = line.split('\t').next().unwrap();
        assert!(address.starts_with("dtime1"), "{address}");
        Address::parse(address, Network::Devnet).unwrap();
    }
}

#[test]
fn createtx_spends_the_devnet_genesis_and_the_ledger_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let made = cli(dir.path(), &["devnet-wallet"]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    assert!(made.stderr.contains("public"), "warns: {}", made.stderr);
    let wallet_address = Address::from_pubkey(&devnet_wallet_key().public());
    assert_eq!(made.stdout.trim(), wallet_address.to_text(Network::Devnet));

    let to = format!("{}:12.5 TIME", validator_address());
    let hex = cli_ok(
        dir.path(),
        &["createtx", "--input", &genesis_input(), "--to", &to],
    );
    let tx = Tx::decode(&hex::decode(hex.trim()).unwrap(), 1 << 20).unwrap();

    let spec = devnet();
    // The genesis outputs: allocation `i` is output `i` of the genesis hash.
    let mut utxos = MemUtxoSet::default();
    utxos.add_outputs(spec.genesis_hash(), &spec.allocations);
    let valid = validate(&tx, &utxos, &spec.validation_params()).unwrap();
    assert_eq!(valid.fee, spec.config.ledger.min_fee, "default fee");

    let decoded: serde_json::Value =
        serde_json::from_str(&cli_ok(dir.path(), &["decodetx", hex.trim()])).unwrap();
    assert_eq!(decoded["txid"], tx.txid().to_string());
    assert_eq!(decoded["inputs"][0]["prev"], genesis_input()[..66]);
    assert_eq!(
        decoded["inputs"][0]["address"],
        wallet_address.to_text(Network::Devnet)
    );
    assert_eq!(decoded["outputs"][0]["value"]["units"], 1_250_000_000u64);
    assert_eq!(
        decoded["outputs"][1]["address"], decoded["inputs"][0]["address"],
        "change"
    );
}

#[test]
fn one_character_typo_in_to_address_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(dir.path(), &["devnet-wallet"]);
    let good = validator_address();
    let last = good.chars().last().unwrap();
    let typo = format!(
        "{}{}:1",
        &good[..good.len() - 1],
        if last == 'q' { 'p' } else { 'q' }
    );
    cli_fails(
        dir.path(),
        &["createtx", "--input", &genesis_input(), "--to", &typo],
        "check for a typo",
    );
}

#[test]
fn createtx_mistakes_are_one_line_errors_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(dir.path(), &["devnet-wallet"]);
    let input = genesis_input();
    let to = format!("{}:1", validator_address());
    let testnet_to = format!(
        "{}:1",
        devnet().allocations[1].address.to_text(Network::Testnet)
    );
    let small_input = format!("{}:0:0.5", devnet().genesis_hash());
    let cases: [(&[&str], &str); 6] = [
        (&["--to", &testnet_to], "is for testnet, but this is devnet"),
        (&["--to", &format!("{to}x")], "is not an amount"),
        (
            &["--to", &to, "--fee", "0.0001"],
            "below the network minimum",
        ),
        (&["--to", &to, "--change", "dtime1"], "not a valid address"),
        (
            &["--to", &to, "--input", &input],
            "already spent by input 0",
        ),
        (
            &["--to", &to, "--input", "abc:0:1"],
            "not a 64-digit hex hash",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["createtx", "--input", &input];
        args.extend_from_slice(extra);
        cli_fails(dir.path(), &args, needle);
    }
    cli_fails(
        dir.path(),
        &["createtx", "--input", &small_input, "--to", &to],
        "inputs total 0.5 TIME, but outputs plus fee need 1.001 TIME",
    );
}

#[test]
fn wallet_of_another_network_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(dir.path(), &["keygen"]);
    cli_fails(
        dir.path(),
        &["--network", "testnet", "address"],
        "holds devnet keys, but testnet was requested",
    );
}

#[test]
fn timed_print_genesis_shows_the_builtin_genesis_hash() {
    let dir = tempfile::tempdir().unwrap();
    let r = timed(dir.path(), &["--print-genesis"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let hash_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("genesis hash:"))
        .unwrap();
    assert!(hash_line.ends_with(&devnet().genesis_hash().to_string()));
    assert!(r.stdout.contains("chain id:     3"), "{}", r.stdout);
}

#[test]
fn timed_bad_config_names_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, DEVNET_TOML.replacen("alpha = 14", "alpha = 5", 1)).unwrap();
    let r = timed(dir.path(), &["--config", "bad.toml", "--print-genesis"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("consensus.alpha"), "{}", r.stderr);
}

#[test]
fn timed_without_datadir_or_dev_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let r = timed(dir.path(), &[]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("--datadir"), "{}", r.stderr);
}
