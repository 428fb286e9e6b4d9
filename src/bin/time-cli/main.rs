//! `time-cli`: the TIME Coin wallet and node client: offline wallet commands
//! (key file, addresses, building, signing and decoding transactions), wallet
//! commands through a node's JSON-RPC (`balance`, `send`, `status`, `proof`,
//! the last verifying the finality proof offline), and any RPC method by
//! name, bitcoin-cli style (`time-cli getblockcount`).
//!
//! Results go to stdout, so they can be piped; every error is one line on
//! stderr with exit code 1. It never prints a secret key.

mod bench;
mod ceiling;
mod masternode;
mod proof;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use timecoin::config::{ChainConfig, ConfigError};
use timecoin::crypto::{AddressError, Keypair};
use timecoin::finality::ProofError;
use timecoin::genesis::devnet_wallet_key;
use timecoin::ledger::{check_structure, TxError, ValidationParams};
use timecoin::rpc::auth::{basic_header, read_cookie};
use timecoin::rpc::client::{ClientError, RpcClient};
use timecoin::time::{Clock, SystemClock};
use timecoin::types::amount::ParseAmountError;
use timecoin::types::hash::ParseHashError;
use timecoin::types::tx::MAX_TX_BYTES_HARD;
use timecoin::types::{json, Address, Amount, DecodeError, Hash, Network, OutPoint, Tx, TxOut};
use timecoin::wallet::{build_transfer, check_label, BuildError, Spendable, Wallet, WalletError};

const EXAMPLES: &str = "\
Examples:
  time-cli --wallet demo.json devnet-wallet      # spendable devnet funds (public key!)
  time-cli keygen --label savings                # new wallet.json with one key
  time-cli address
  time-cli createtx --input <TXID>:0:1000000 --to <ADDRESS>:12.5
  time-cli decodetx <HEX>
  time-cli --datadir /tmp/dev getblockchaininfo  # any RPC method, params as JSON or text
  time-cli --datadir /tmp/dev --wallet demo.json send <ADDRESS> 12.5
  time-cli --datadir /tmp/dev status <TXID> --wait
  time-cli --datadir /tmp/dev proof <TXID>      # verified offline against the genesis validators
  time-cli --datadir /tmp/dev getblock $(time-cli --datadir /tmp/dev getbestblockhash) 2
  time-cli --datadir /tmp/dev verifychain       # replays every block; exit 1 names the first bad one

Chain reads (any RPC method works the same way): getblockchaininfo, getblockcount,
getbestblockhash, getblockhash HEIGHT, getblock HASH [0|1|2], getrawtransaction TXID
[true], getvalidators, getrewardinfo [HEIGHT].";

#[derive(Parser)]
#[command(
    name = "time-cli",
    version,
    about = "TIME Coin wallet and node client: keys, transactions, JSON-RPC",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command understands.
#[derive(Args, Clone)]
struct GlobalArgs {
    /// The node's datadir: its .cookie authenticates, its rpc.port locates the RPC
    #[arg(long, global = true, value_name = "PATH")]
    datadir: Option<PathBuf>,
    /// RPC port on 127.0.0.1 [default: read from <datadir>/rpc.port]
    #[arg(long, global = true)]
    rpc_port: Option<u16>,
    /// RPC address, e.g. http://127.0.0.1:24101 (overrides --rpc-port)
    #[arg(long, global = true, value_name = "URL")]
    rpc_url: Option<String>,
    /// RPC user and password instead of the datadir's cookie
    #[arg(long, global = true, requires = "rpc_password")]
    rpc_user: Option<String>,
    #[arg(long, global = true, requires = "rpc_user")]
    rpc_password: Option<String>,
    /// Network: devnet, testnet or mainnet (address prefix, chain id, fee rules)
    #[arg(long, global = true, default_value = "devnet")]
    network: Network,
    /// Wallet key file (created with mode 0600, never overwritten)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "wallet.json"
    )]
    wallet: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Add a new key to the wallet file (creating it) and print its address
    #[command(after_help = "\
Examples:
  time-cli keygen                       # creates ./wallet.json; refuses if it exists
  time-cli keygen --add --label savings # adds a key to the existing wallet")]
    Keygen(KeygenArgs),
    /// Print the wallet's addresses, one per line, each with its label
    #[command(after_help = "Example:\n  time-cli --wallet demo.json address")]
    Address,
    /// Build and sign a transaction offline and print it as hex
    #[command(after_help = "\
Each input is signed by the wallet key of its ADDRESS field, or by the
wallet's first key when ADDRESS is omitted. AMOUNT is the spent output's exact
value: anything the outputs, the fee and the change do not take is lost as fee.
Amounts are decimal TIME: 12.5 or '12.5 TIME'.

Example:
  time-cli createtx --input <TXID>:0:1000000 \\
      --to dtime1deauj9r4mkukqz58ypac4zce3ypm87pm9hfr90:12.5 --fee 0.001")]
    Createtx(CreateTxArgs),
    /// Decode a hex transaction and print it as JSON
    #[command(
        after_help = "Example:\n  time-cli decodetx \"$(time-cli createtx --input ... --to ...)\""
    )]
    Decodetx {
        /// The transaction's canonical encoding in hex
        hex: String,
    },
    /// Write the devnet demo key, funded in the devnet genesis, into a new wallet file
    #[command(after_help = "\
The key is derived from a public label: anyone can spend its coins. Use it
only to try the devnet.

Example:
  time-cli --wallet demo.json devnet-wallet")]
    DevnetWallet,
    /// Balance of every wallet address, from the node
    #[command(after_help = "Example:\n  time-cli --datadir /tmp/dev --wallet demo.json balance")]
    Balance,
    /// Pay AMOUNT to ADDRESS from the wallet's unspent outputs; prints the txid
    #[command(
        after_help = "Examples:\n  time-cli --datadir /tmp/dev --wallet demo.json send dtime1... 12.5\n  time-cli --datadir /tmp/dev --wallet demo.json send dtime1... 12.5TIME --fee 0.002"
    )]
    Send(SendArgs),
    /// Show a transaction's consensus status; --wait blocks until it settles
    #[command(after_help = "\
--wait parks in the node's waitfortx call (no polling): it returns the
moment the tx is durable-final, rejected or expired.

Example:
  time-cli --datadir /tmp/dev status <TXID> --wait")]
    Status(StatusArgs),
    /// Fetch a transaction's finality proof and verify it offline against the
    /// genesis validator set
    #[command(after_help = "Example:\n  time-cli --datadir /tmp/dev proof <TXID>")]
    Proof(ProofArgs),
    /// Replay the node's whole chain from the genesis (every block, proof
    /// and reward) and check its tables; exit 1 names the first bad block
    #[command(after_help = "Example:\n  time-cli --datadir /tmp/dev verifychain")]
    Verifychain(VerifychainArgs),
    /// Load generator: pre-funds coins, offers signed transfers at a fixed
    /// rate to one or more nodes, and reports rates, latencies and node usage
    #[command(after_help = "\
Examples:
  time-cli --datadir /tmp/dev --wallet demo.json bench --rate 500 --duration 10
  time-cli --wallet demo.json bench --rate 1000 --duration 5 --conflicts 0.1 \\
      --nodes /tmp/devnet/node0 /tmp/devnet/node1 --json")]
    Bench(bench::BenchArgs),
    /// Register, inspect or deregister a masternode (collateral from the wallet)
    Masternode {
        #[command(subcommand)]
        command: masternode::MasternodeCommand,
    },
    /// Any RPC method: time-cli METHOD [PARAM...], each PARAM JSON or plain
    /// text (`time-cli help` lists the node's methods)
    #[command(external_subcommand)]
    Rpc(Vec<String>),
}

#[derive(Args)]
struct SendArgs {
    /// Recipient address
    address: String,
    /// Amount in TIME: 12.5, 12.5TIME or '12.5 TIME'
    amount: String,
    /// Fee [default: the network's minimum fee]
    #[arg(long, value_name = "AMOUNT")]
    fee: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    txid: String,
    /// Block until finalized, rejected or expired
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

#[derive(Args)]
pub struct ProofArgs {
    pub txid: String,
    /// Chain config whose genesis validators judge the proof [default: the
    /// built-in chain (or timed --dev's) whose genesis the node reports]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
struct VerifychainArgs {
    /// Give up waiting for the node's answer after this many seconds (a
    /// long chain takes a while)
    #[arg(long, default_value_t = 3_600)]
    timeout_secs: u64,
}

#[derive(Args)]
struct KeygenArgs {
    /// Label stored with the key and shown by `address`
    #[arg(long, default_value = "")]
    label: String,
    /// Add the key to an existing wallet file instead of refusing
    #[arg(long)]
    add: bool,
}

#[derive(Args)]
struct CreateTxArgs {
    /// Output to spend (repeatable); ADDRESS picks the signing key
    #[arg(
        long = "input",
        value_name = "TXID:VOUT:AMOUNT[:ADDRESS]",
        required = true
    )]
    inputs: Vec<String>,
    /// Payment to make (repeatable)
    #[arg(long = "to", value_name = "ADDRESS:AMOUNT", required = true)]
    outputs: Vec<String>,
    /// Fee to pay [default: the network's minimum fee, 0.001 on devnet]
    #[arg(long, value_name = "AMOUNT")]
    fee: Option<String>,
    /// Where the change goes [default: the address of the first input's key]
    #[arg(long, value_name = "ADDRESS")]
    change: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Bench(bench::BenchError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("wallet file {path} already exists; pass --add to add a key to it, or choose another --wallet path")]
    WalletExists { path: PathBuf },
    #[error("{flag} '{text}': {problem}")]
    BadArgument {
        flag: &'static str,
        text: String,
        problem: String,
    },
    #[error("createtx needs the chain rules of {network} (fee, size limit), and time-cli has none built in")]
    NoChainRules {
        network: Network,
        source: ConfigError,
    },
    #[error("wallet file {path} has no keys; add one with `time-cli keygen --add`")]
    EmptyWallet { path: PathBuf },
    #[error("--input {outpoint}: wallet file {path} holds no key for {address}")]
    NoKeyFor {
        outpoint: OutPoint,
        path: PathBuf,
        address: String,
    },
    #[error(
        "--fee {fee} is below the network minimum of {min}; nodes would reject the transaction"
    )]
    FeeBelowMinimum { fee: Amount, min: Amount },
    #[error("cannot build the transaction: {0}")]
    Build(#[from] BuildError),
    #[error("the transaction breaks a chain rule: {0}")]
    ChainRule(#[from] TxError),
    #[error("cannot decode the transaction: {0}")]
    Decode(#[from] DecodeError),
    #[error("devnet-wallet writes a public, well-known key; it only works with --network devnet")]
    DevnetOnly,
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error("{0}")]
    Rpc(#[from] ClientError),
    #[error("no RPC credentials: pass --datadir (for its .cookie) or --rpc-user/--rpc-password")]
    NoCredentials,
    #[error("cannot read {path}: {source}; is timed running with --datadir {datadir}?")]
    NodeFile {
        path: PathBuf,
        datadir: PathBuf,
        source: io::Error,
    },
    #[error(
        "the chain is invalid at height {height} (block {block}): {reason}: {message}; \
         {blocks} block(s) before it verified"
    )]
    ChainInvalid {
        height: String,
        block: String,
        reason: String,
        message: String,
        blocks: u64,
    },
    #[error("the node answered unexpectedly: {0}")]
    Unexpected(String),
    #[error("the wallet's addresses hold {available}; {needed} is needed (amount plus fee)")]
    InsufficientFunds { available: Amount, needed: Amount },
    #[error("gave up after {secs} s: transaction {txid} is still {status}")]
    WaitTimeout {
        txid: Hash,
        secs: u64,
        status: String,
    },
    #[error("the node runs genesis {genesis}, which is neither the built-in {network} chain nor timed --dev's; pass --config with its chain file")]
    UnknownChain { genesis: String, network: Network },
    #[error("chain config: {0}")]
    Config(#[from] ConfigError),
    #[error("INVALID finality proof for {txid}: {source}")]
    InvalidProof { txid: Hash, source: ProofError },
    #[error("INVALID finality proof: it proves transaction {found}, not {expected}")]
    ProofForOtherTx { expected: Hash, found: Hash },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(&cli).and_then(|out| {
        io::stdout()
            .write_all(out.as_bytes())
            .map_err(CliError::Output)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command and returns what it prints on stdout.
fn run(cli: &Cli) -> Result<String, CliError> {
    let GlobalArgs {
        network, wallet, ..
    } = &cli.global;
    match &cli.command {
        Command::Balance => balance(&rpc_client(&cli.global)?, wallet, *network),
        Command::Send(args) => send(&rpc_client(&cli.global)?, wallet, *network, args),
        Command::Status(args) => status(&rpc_client(&cli.global)?, args),
        Command::Proof(args) => proof::check(&rpc_client(&cli.global)?, *network, args),
        Command::Verifychain(args) => verify_chain(&cli.global, args),
        Command::Bench(args) => bench::run(&cli.global, args),
        Command::Masternode { command } => {
            masternode::run(&rpc_client(&cli.global)?, wallet, *network, command)
        }
        Command::Rpc(words) => passthrough(&rpc_client(&cli.global)?, words),
        Command::Keygen(args) => keygen(wallet, *network, args),
        Command::Address => address(wallet, *network),
        Command::Createtx(args) => create_tx(wallet, *network, args),
        Command::Decodetx { hex } => decode_tx(hex, *network),
        Command::DevnetWallet => devnet_wallet(wallet, *network),
    }
}

fn keygen(path: &Path, network: Network, args: &KeygenArgs) -> Result<String, CliError> {
    check_label(&args.label).map_err(|e| bad_argument("--label", &args.label, e.to_string()))?;
    let keypair = Keypair::generate();
    let address = Address::from_pubkey(&keypair.public());
    match Wallet::create_with_key(path, network, keypair.clone(), &args.label) {
        Err(WalletError::AlreadyExists { .. }) if args.add => {
            Wallet::load(path, network)?.add_key(keypair, &args.label)?;
        }
        Err(WalletError::AlreadyExists { path }) => return Err(CliError::WalletExists { path }),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    Ok(format!("{}\n", address.to_text(network)))
}

fn address(path: &Path, network: Network) -> Result<String, CliError> {
    let wallet = Wallet::load(path, network)?;
    Ok(wallet
        .keys()
        .iter()
        .map(|k| {
            let text = k.address().to_text(network);
            match k.label() {
                "" => format!("{text}\n"),
                label => format!("{text}\t{label}\n"),
            }
        })
        .collect())
}

fn devnet_wallet(path: &Path, network: Network) -> Result<String, CliError> {
    if network != Network::Devnet {
        return Err(CliError::DevnetOnly);
    }
    let key = devnet_wallet_key();
    let address = Address::from_pubkey(&key.public());
    Wallet::create_with_key(path, network, key, "devnet demo (public key)")?;
    let _ = writeln!(
        io::stderr(),
        "warning: this key is public (derived from a well-known label): anyone can spend \
         its coins. Use it only on devnet, never for real funds."
    );
    Ok(format!("{}\n", address.to_text(network)))
}

/// One `--input`: an outpoint, its value, and optionally the address owning it.
struct InputSpec {
    outpoint: OutPoint,
    value: Amount,
    owner: Option<Address>,
}

fn create_tx(path: &Path, network: Network, args: &CreateTxArgs) -> Result<String, CliError> {
    let params = chain_rules(network)?;
    let inputs = args
        .inputs
        .iter()
        .map(|text| parse_input(text, network))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = args
        .outputs
        .iter()
        .map(|text| parse_output(text, network))
        .collect::<Result<Vec<_>, _>>()?;
    let fee = fee_or_minimum(args.fee.as_deref(), &params)?;
    let change = args
        .change
        .as_deref()
        .map(|text| parse_address("--change", text, text, network))
        .transpose()?;

    let wallet = Wallet::load(path, network)?;
    let spendables = inputs
        .iter()
        .map(|input| {
            Ok(Spendable {
                outpoint: input.outpoint,
                value: input.value,
                key: signing_key(&wallet, input)?,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let change = match (change, spendables.first()) {
        (Some(address), _) => address,
        (None, Some(first)) => Address::from_pubkey(&first.key.public()),
        (None, None) => return Err(BuildError::NoInputs.into()),
    };
    let tx = build_transfer(&spendables, &outputs, fee, change, params.chain_id)?;
    check_structure(&tx, &params)?;
    Ok(format!("{}\n", hex::encode(tx.encode())))
}

/// The wallet key that signs `input`: its owner's, or the wallet's first.
fn signing_key<'w>(wallet: &'w Wallet, input: &InputSpec) -> Result<&'w Keypair, CliError> {
    match input.owner {
        Some(address) => wallet.key_for(&address).ok_or_else(|| CliError::NoKeyFor {
            outpoint: input.outpoint,
            path: wallet.path().to_path_buf(),
            address: address.to_text(wallet.network()),
        }),
        None => wallet
            .keys()
            .first()
            .map(|k| k.keypair())
            .ok_or_else(|| CliError::EmptyWallet {
                path: wallet.path().to_path_buf(),
            }),
    }
}

fn decode_tx(text: &str, network: Network) -> Result<String, CliError> {
    let text = text.trim();
    let bad = |problem: String| bad_argument("decodetx HEX", text, problem);
    if text.len() > 2 * MAX_TX_BYTES_HARD {
        return Err(bad(format!(
            "longer than the largest transaction ({MAX_TX_BYTES_HARD} bytes)"
        )));
    }
    let bytes = hex::decode(text).map_err(|e| bad(format!("not hex: {e}")))?;
    let tx = Tx::decode(&bytes, MAX_TX_BYTES_HARD)?;
    // Building a JSON text from a `Value` cannot fail.
    let pretty = serde_json::to_string_pretty(&json::tx(&tx, network)).unwrap_or_default();
    Ok(format!("{pretty}\n"))
}

/// The network's chain rules (fee, size, chain id) from its built-in config.
fn chain_rules(network: Network) -> Result<ValidationParams, CliError> {
    ChainConfig::builtin(network)
        .map(|spec| spec.validation_params())
        .map_err(|source| CliError::NoChainRules { network, source })
}

/// Parses `TXID:VOUT:AMOUNT[:ADDRESS]`.
fn parse_input(text: &str, network: Network) -> Result<InputSpec, CliError> {
    const FLAG: &str = "--input";
    let fields: Vec<&str> = text.split(':').collect();
    let (txid, vout, value, owner) = match fields.as_slice() {
        [txid, vout, value] => (*txid, *vout, *value, None),
        [txid, vout, value, owner] => (*txid, *vout, *value, Some(*owner)),
        _ => {
            return Err(bad_argument(
                FLAG,
                text,
                "expected TXID:VOUT:AMOUNT or TXID:VOUT:AMOUNT:ADDRESS".to_string(),
            ))
        }
    };
    let txid: Hash = txid
        .parse()
        .map_err(|e: ParseHashError| bad_argument(FLAG, text, format!("txid {e}")))?;
    let vout: u32 = vout.parse().map_err(|_| {
        bad_argument(
            FLAG,
            text,
            format!("vout '{}' is not an output index", clip(vout)),
        )
    })?;
    Ok(InputSpec {
        outpoint: OutPoint { txid, vout },
        value: parse_amount(FLAG, text, value)?,
        owner: owner
            .map(|o| parse_address(FLAG, text, o, network))
            .transpose()?,
    })
}

/// Parses `ADDRESS:AMOUNT`; a payment of 0 is refused.
fn parse_output(text: &str, network: Network) -> Result<TxOut, CliError> {
    const FLAG: &str = "--to";
    let (address, value) = text
        .split_once(':')
        .ok_or_else(|| bad_argument(FLAG, text, "expected ADDRESS:AMOUNT".to_string()))?;
    let address = parse_address(FLAG, text, address, network)?;
    let value = parse_amount(FLAG, text, value)?;
    if value == Amount::ZERO {
        return Err(bad_argument(
            FLAG,
            text,
            "amount must be above 0".to_string(),
        ));
    }
    Ok(TxOut { value, address })
}

/// Parses the `part` of `flag`'s argument `text` that is an amount.
fn parse_amount(flag: &'static str, text: &str, part: &str) -> Result<Amount, CliError> {
    part.parse()
        .map_err(|e: ParseAmountError| bad_argument(flag, text, e.to_string()))
}

/// Parses the `part` of `flag`'s argument `text` that is an address on `network`.
fn parse_address(
    flag: &'static str,
    text: &str,
    part: &str,
    network: Network,
) -> Result<Address, CliError> {
    Address::parse(part, network).map_err(|e: AddressError| bad_argument(flag, text, e.to_string()))
}

fn bad_argument(flag: &'static str, text: &str, problem: String) -> CliError {
    CliError::BadArgument {
        flag,
        text: clip(text),
        problem,
    }
}

/// Arguments are echoed in errors; keep a pasted blob from flooding the terminal.
fn clip(text: &str) -> String {
    const MAX_ECHO_CHARS: usize = 200;
    if text.chars().count() <= MAX_ECHO_CHARS {
        text.to_string()
    } else {
        text.chars()
            .take(MAX_ECHO_CHARS)
            .chain("…".chars())
            .collect()
    }
}

// ---- RPC commands ----

/// Calls to a node answer within this, `status --wait` polls aside.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Extra `status --wait` polls for the durable time of a finalized tx (1 s).
const DURABLE_TIMING_POLLS: u32 = 20;

fn rpc_client(global: &GlobalArgs) -> Result<RpcClient, CliError> {
    rpc_client_waiting(global, RPC_TIMEOUT)
}

fn rpc_client_waiting(global: &GlobalArgs, timeout: Duration) -> Result<RpcClient, CliError> {
    let authorization = match (&global.rpc_user, &global.rpc_password, &global.datadir) {
        (Some(user), Some(password), _) => basic_header(user, password),
        (_, _, Some(datadir)) => read_cookie(datadir).map_err(|source| CliError::NodeFile {
            path: datadir.join(".cookie"),
            datadir: datadir.clone(),
            source,
        })?,
        _ => return Err(CliError::NoCredentials),
    };
    let addr = rpc_addr(global)?;
    Ok(RpcClient::new(addr, authorization, timeout))
}

fn rpc_addr(global: &GlobalArgs) -> Result<SocketAddr, CliError> {
    if let Some(url) = &global.rpc_url {
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        return host
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                bad_argument("--rpc-url", url, "expected http://HOST:PORT".to_string())
            });
    }
    let port = match (global.rpc_port, &global.datadir) {
        (Some(port), _) => port,
        (None, Some(datadir)) => read_port(datadir)?,
        (None, None) => return Err(CliError::NoCredentials),
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The RPC port a running node wrote into `<datadir>/rpc.port`.
fn read_port(datadir: &Path) -> Result<u16, CliError> {
    let path = datadir.join("rpc.port");
    let text = std::fs::read_to_string(&path).map_err(|source| CliError::NodeFile {
        path: path.clone(),
        datadir: datadir.to_path_buf(),
        source,
    })?;
    text.trim().parse().map_err(|_| {
        bad_argument(
            "--datadir",
            &path.display().to_string(),
            "rpc.port holds no port".to_string(),
        )
    })
}

fn pretty(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text}\n"),
        // Building a JSON text from a `Value` cannot fail.
        other => format!(
            "{}\n",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}

/// `time-cli METHOD [PARAM...]`: each PARAM is JSON if it parses, else text.
fn passthrough(client: &RpcClient, words: &[String]) -> Result<String, CliError> {
    let Some((method, params)) = words.split_first() else {
        return Err(CliError::Unexpected("no method given".to_string()));
    };
    let params: Vec<Value> = params
        .iter()
        .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.clone())))
        .collect();
    Ok(pretty(&client.call(method, Value::Array(params))?))
}

/// A Bitcoin-style amount (a JSON number with up to 8 decimals), exactly.
/// `listunspent`'s `maxconf` for "any".
pub const LISTUNSPENT_MAXCONF: u64 = 9_999_999;

fn amount_of(value: &Value) -> Result<Amount, CliError> {
    value
        .as_number()
        .and_then(|n| n.to_string().parse().ok())
        .ok_or_else(|| CliError::Unexpected(format!("not an amount: {value}")))
}

fn balance(client: &RpcClient, path: &Path, network: Network) -> Result<String, CliError> {
    let wallet = Wallet::load(path, network)?;
    let mut total = Amount::ZERO;
    let mut out = String::new();
    for address in wallet.addresses() {
        let text = address.to_text(network);
        let value = amount_of(&client.call("getbalance", json!([text]))?)?;
        total = total
            .checked_add(value)
            .ok_or_else(|| CliError::Unexpected("balances overflow".to_string()))?;
        out.push_str(&format!("{text}\t{value}\n"));
    }
    out.push_str(&format!("total\t{total}\n"));
    Ok(out)
}

fn send(
    client: &RpcClient,
    path: &Path,
    network: Network,
    args: &SendArgs,
) -> Result<String, CliError> {
    let params = chain_rules(network)?;
    let to = parse_address("ADDRESS", &args.address, &args.address, network)?;
    let value = parse_amount("AMOUNT", &args.amount, &args.amount)?;
    let fee = fee_or_minimum(args.fee.as_deref(), &params)?;
    let needed = value
        .checked_add(fee)
        .ok_or_else(|| bad_argument("AMOUNT", &args.amount, "too large".to_string()))?;
    let wallet = Wallet::load(path, network)?;
    let chosen = select_coins(client, &wallet, network, needed)?;
    let change = first_owner(&chosen)?;
    let tx = build_transfer(
        &chosen,
        &[TxOut { value, address: to }],
        fee,
        change,
        params.chain_id,
    )?;
    submit(client, &tx, &params)
}

/// The address of the first chosen coin's key: where change goes, and who
/// owns a masternode's collateral.
fn first_owner(chosen: &[Spendable<'_>]) -> Result<Address, CliError> {
    chosen
        .first()
        .map(|s| Address::from_pubkey(&s.key.public()))
        .ok_or(CliError::Build(BuildError::NoInputs))
}

/// Checks `tx`'s structure locally, submits it, and prints its txid.
fn submit(client: &RpcClient, tx: &Tx, params: &ValidationParams) -> Result<String, CliError> {
    check_structure(tx, params)?;
    let txid = client.call("sendrawtransaction", json!([hex::encode(tx.encode())]))?;
    Ok(pretty(&txid))
}

/// The wallet's unspent outputs, largest first, until they cover
/// `needed`: the fewest inputs, so the smallest tx and fee, and small
/// coins stay for small payments. Never a masternode's collateral
/// (`masternode deregister` spends that).
fn select_coins<'w>(
    client: &RpcClient,
    wallet: &'w Wallet,
    network: Network,
    needed: Amount,
) -> Result<Vec<Spendable<'w>>, CliError> {
    let mut coins = Vec::new();
    for key in wallet.keys() {
        let address = key.address().to_text(network);
        let unspent = client.call("listunspent", json!([0, LISTUNSPENT_MAXCONF, [address]]))?;
        for output in unspent.as_array().into_iter().flatten() {
            // A masternode's collateral: spending it would deregister it.
            if output.get("masternode_collateral") == Some(&Value::Bool(true)) {
                continue;
            }
            let txid: Hash = output
                .get("txid")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| CliError::Unexpected(format!("bad listunspent entry {output}")))?;
            let vout = output
                .get("vout")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| CliError::Unexpected(format!("bad listunspent entry {output}")))?;
            let amount = amount_of(output.get("amount").unwrap_or(&Value::Null))?;
            coins.push(Spendable {
                outpoint: OutPoint { txid, vout },
                value: amount,
                key: key.keypair(),
            });
        }
    }
    coins.sort_by(|a, b| b.value.cmp(&a.value).then(a.outpoint.cmp(&b.outpoint)));
    let mut chosen = Vec::new();
    let mut available = Amount::ZERO;
    for coin in coins {
        if available >= needed && !chosen.is_empty() {
            break;
        }
        available = available.checked_add(coin.value).unwrap_or(available);
        chosen.push(coin);
    }
    if available < needed {
        return Err(CliError::InsufficientFunds { available, needed });
    }
    Ok(chosen)
}

fn parse_txid(text: &str) -> Result<Hash, CliError> {
    text.parse()
        .map_err(|e: ParseHashError| bad_argument("TXID", text, e.to_string()))
}

/// Statuses after which a transaction never changes again.
fn is_settled(status: &str) -> bool {
    matches!(status, "finalized" | "rejected" | "expired")
}

fn status(client: &RpcClient, args: &StatusArgs) -> Result<String, CliError> {
    let txid = parse_txid(&args.txid)?;
    let deadline = SystemClock
        .mono()
        .plus_ms(args.timeout_secs.saturating_mul(1000));
    if args.wait {
        // An unknown txid fails here at once rather than at the timeout.
        client.call("gettxstatus", json!([txid.to_string()]))?;
        wait_settled(client, txid, args.timeout_secs)?;
    }
    let mut timing_polls_left = DURABLE_TIMING_POLLS;
    let report = loop {
        let report = client.call("gettxstatus", json!([txid.to_string()]))?;
        let status = report
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        // The ledger's record is visible a moment before the node files the
        // durable time: a finalized tx gets a few more polls for it.
        let timing_pending = status == "finalized" && report.get("durable_ms").is_none();
        if !args.wait || (is_settled(status) && (!timing_pending || timing_polls_left == 0)) {
            break report;
        }
        if timing_pending {
            timing_polls_left -= 1;
        }
        if SystemClock.mono() >= deadline {
            return Err(CliError::WaitTimeout {
                txid,
                secs: args.timeout_secs,
                status: status.to_string(),
            });
        }
        std::thread::sleep(STATUS_POLL_INTERVAL);
    };
    let mut out = pretty(&report);
    let ms = |name: &str| report.get(name).and_then(Value::as_u64);
    if let Some(proof_ms) = ms("finality_ms") {
        out.push_str(&format!("finality proof complete in {proof_ms} ms\n"));
    }
    // Durable is what counts: only then does the node report `finalized`.
    if let Some(durable_ms) = ms("durable_ms") {
        out.push_str(&format!("finalized in {durable_ms} ms (durable)\n"));
    }
    Ok(out)
}

/// A parked `waitfortx` call lasts at most this long: under [`RPC_TIMEOUT`].
const WAIT_CALL_MS: u64 = 20_000;

/// Blocks in `waitfortx` (no polling) until the node says the tx is
/// durable-final, rejected or expired, or `timeout_secs` pass.
fn wait_settled(client: &RpcClient, txid: Hash, timeout_secs: u64) -> Result<(), CliError> {
    let deadline = SystemClock
        .mono()
        .plus_ms(timeout_secs.saturating_mul(1000));
    loop {
        let left_ms = deadline
            .as_millis()
            .saturating_sub(SystemClock.mono().as_millis());
        let answer = client.call(
            "waitfortx",
            json!([txid.to_string(), left_ms.clamp(1, WAIT_CALL_MS)]),
        )?;
        let status = answer
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        if is_settled(status) {
            return Ok(());
        }
        if SystemClock.mono() >= deadline {
            return Err(CliError::WaitTimeout {
                txid,
                secs: timeout_secs,
                status: status.to_string(),
            });
        }
    }
}

/// `verifychain`, failing (exit 1) with the first bad block named.
fn verify_chain(global: &GlobalArgs, args: &VerifychainArgs) -> Result<String, CliError> {
    let client = rpc_client_waiting(global, Duration::from_secs(args.timeout_secs))?;
    let report = client.call("verifychain", json!([]))?;
    if report.get("valid").and_then(Value::as_bool) == Some(true) {
        return Ok(pretty(&report));
    }
    let failure = report.get("failure").unwrap_or(&Value::Null);
    let text = |key: &str| match failure.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "none".to_string(),
        Some(other) => other.to_string(),
    };
    Err(CliError::ChainInvalid {
        height: text("height"),
        block: text("block"),
        reason: text("reason"),
        message: text("message"),
        blocks: report.get("blocks").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// `--fee` if given (refused below the chain's minimum), else the minimum.
fn fee_or_minimum(fee: Option<&str>, params: &ValidationParams) -> Result<Amount, CliError> {
    let Some(text) = fee else {
        return Ok(params.min_fee);
    };
    let fee = parse_amount("--fee", text, text)?;
    if fee < params.min_fee {
        return Err(CliError::FeeBelowMinimum {
            fee,
            min: params.min_fee,
        });
    }
    Ok(fee)
}
