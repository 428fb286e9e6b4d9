//! `time-cli`: the TIME Coin wallet and node client. Today it holds the
//! offline wallet commands (key file, addresses, building, signing and
//! decoding transactions); RPC commands slot in as more `Command` variants.
//!
//! Results go to stdout, so they can be piped; every error is one line on
//! stderr with exit code 1. It never prints a secret key.

use clap::{Args, Parser, Subcommand};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use timecoin::config::{ChainConfig, ConfigError};
use timecoin::crypto::{AddressError, Keypair};
use timecoin::genesis::devnet_wallet_key;
use timecoin::ledger::{check_structure, TxError, ValidationParams};
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
  time-cli decodetx <HEX>";

#[derive(Parser)]
#[command(
    name = "time-cli",
    version,
    about = "TIME Coin wallet: keys, addresses, offline transactions",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command understands (RPC and datadir flags join them later).
#[derive(Args)]
struct GlobalArgs {
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
    let GlobalArgs { network, wallet } = &cli.global;
    match &cli.command {
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
    let fee = match &args.fee {
        Some(text) => parse_amount("--fee", text, text)?,
        None => params.min_fee,
    };
    if fee < params.min_fee {
        return Err(CliError::FeeBelowMinimum {
            fee,
            min: params.min_fee,
        });
    }
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
