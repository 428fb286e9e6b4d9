//! `time-cli masternode …` (DESIGN §7): register a masternode by locking a
//! tier's collateral from the wallet, show its status and the epoch's set,
//! and deregister it by spending the collateral back to its owner.

use super::{
    bad_argument, chain_rules, fee_or_minimum, first_owner, parse_address, pretty, select_coins,
    submit, CliError,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use timecoin::crypto::Keypair;
use timecoin::genesis::validator_vrf_key;
use timecoin::node::key_file::read_key_file;
use timecoin::rpc::client::RpcClient;
use timecoin::types::{Amount, Network, OutPoint, Tier, TxOut};
use timecoin::wallet::{build_registration, build_transfer, MasternodeInfo, Spendable, Wallet};

#[derive(Subcommand)]
pub(super) enum MasternodeCommand {
    /// Lock a tier's collateral from the wallet and register the identity
    /// key as a masternode; prints the registration's txid
    #[command(after_help = "\
The identity key file is the one `timed --masternode-key FILE` (or
--validator-key) signs with. Its VRF key is derived from it. The collateral
is owned by the wallet key that funds it; spending it deregisters.

Example:
  time-cli --datadir node0 --wallet demo.json masternode register --tier bronze \\
      --identity-key mn.json --listen 203.0.113.7:24100")]
    Register(RegisterArgs),
    /// A masternode's registration, status and epochs
    Status(IdentityArgs),
    /// The masternode set of an epoch (default: the current one)
    List {
        #[arg(long)]
        epoch: Option<u64>,
    },
    /// Spend the masternode's collateral back to its owner: it leaves the
    /// set two epochs on; prints the txid
    Deregister(DeregisterArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum TierArg {
    Bronze,
    Silver,
    Gold,
}

impl From<TierArg> for Tier {
    fn from(tier: TierArg) -> Tier {
        match tier {
            TierArg::Bronze => Tier::Bronze,
            TierArg::Silver => Tier::Silver,
            TierArg::Gold => Tier::Gold,
        }
    }
}

#[derive(Args)]
pub(super) struct RegisterArgs {
    #[arg(long, value_enum)]
    tier: TierArg,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Where peers dial it
    #[arg(long, value_name = "IP:PORT")]
    listen: SocketAddr,
    /// Where its rewards go [default: the collateral's owner]
    #[arg(long, value_name = "ADDRESS")]
    payout: Option<String>,
    #[arg(long, value_name = "AMOUNT")]
    fee: Option<String>,
}

#[derive(Args)]
pub(super) struct IdentityArgs {
    /// The masternode's identity key file
    #[arg(long, value_name = "FILE")]
    identity_key: PathBuf,
}

#[derive(Args)]
pub(super) struct DeregisterArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[arg(long, value_name = "AMOUNT")]
    fee: Option<String>,
}

pub(super) fn run(
    client: &RpcClient,
    wallet: &Path,
    network: Network,
    command: &MasternodeCommand,
) -> Result<String, CliError> {
    match command {
        MasternodeCommand::Register(args) => register(client, wallet, network, args),
        MasternodeCommand::Status(args) => Ok(pretty(&status(client, args)?)),
        MasternodeCommand::List { epoch } => {
            let params = epoch.map_or(json!([]), |e| json!([e]));
            Ok(pretty(&client.call("getmasternodes", params)?))
        }
        MasternodeCommand::Deregister(args) => deregister(client, wallet, network, args),
    }
}

fn identity(args: &IdentityArgs) -> Result<Keypair, CliError> {
    read_key_file(&args.identity_key).map_err(|e| {
        bad_argument(
            "--identity-key",
            &args.identity_key.display().to_string(),
            e.to_string(),
        )
    })
}

fn status(client: &RpcClient, args: &IdentityArgs) -> Result<Value, CliError> {
    let id = hex::encode(identity(args)?.public().0);
    Ok(client.call("getmasternode", json!([id]))?)
}

fn register(
    client: &RpcClient,
    path: &Path,
    network: Network,
    args: &RegisterArgs,
) -> Result<String, CliError> {
    let params = chain_rules(network)?;
    let fee = fee_or_minimum(args.fee.as_deref(), &params)?;
    let tier = Tier::from(args.tier);
    let identity = identity(&args.identity)?;
    let needed = tier
        .collateral()
        .checked_add(fee)
        .ok_or_else(|| bad_argument("--fee", "", "too large".to_string()))?;
    let wallet = Wallet::load(path, network)?;
    let chosen = select_coins(client, &wallet, network, needed)?;
    let owner = first_owner(&chosen)?;
    let payout = match &args.payout {
        Some(text) => parse_address("--payout", text, text, network)?,
        None => owner,
    };
    let info = MasternodeInfo {
        tier,
        identity: &identity,
        vrf_key: validator_vrf_key(&identity).public(),
        listen_addr: args.listen,
        payout,
    };
    let tx = build_registration(&chosen, &info, owner, fee, owner, params.chain_id)?;
    submit(client, &tx, &params)
}

fn deregister(
    client: &RpcClient,
    path: &Path,
    network: Network,
    args: &DeregisterArgs,
) -> Result<String, CliError> {
    let params = chain_rules(network)?;
    let fee = fee_or_minimum(args.fee.as_deref(), &params)?;
    let member = status(client, &args.identity)?;
    let unexpected = || CliError::Unexpected(format!("not a registered masternode: {member}"));
    if member.get("status") != Some(&json!("registered")) {
        return Err(unexpected());
    }
    let collateral: OutPoint = member
        .get("collateral")
        .and_then(Value::as_str)
        .and_then(parse_outpoint)
        .ok_or_else(unexpected)?;
    let output = client.call(
        "gettxout",
        json!([collateral.txid.to_string(), collateral.vout]),
    )?;
    let owner_text = output
        .pointer("/scriptPubKey/address")
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::Unexpected(format!("collateral not unspent: {output}")))?;
    let owner = parse_address("collateral owner", owner_text, owner_text, network)?;
    let value = output
        .get("value_units")
        .and_then(Value::as_u64)
        .map(Amount)
        .ok_or_else(|| CliError::Unexpected(format!("collateral without a value: {output}")))?;
    let wallet = Wallet::load(path, network)?;
    let key = wallet.key_for(&owner).ok_or_else(|| {
        CliError::Unexpected(format!(
            "the wallet holds no key for the collateral's owner {owner_text}"
        ))
    })?;
    let back = value
        .checked_sub(fee)
        .ok_or_else(|| bad_argument("--fee", "", "above the collateral".to_string()))?;
    let tx = build_transfer(
        &[Spendable {
            outpoint: collateral,
            value,
            key,
        }],
        &[TxOut {
            value: back,
            address: owner,
        }],
        fee,
        owner,
        params.chain_id,
    )?;
    submit(client, &tx, &params)
}

/// `"<txid>:<vout>"`, as the node prints outpoints.
fn parse_outpoint(text: &str) -> Option<OutPoint> {
    let (txid, vout) = text.split_once(':')?;
    Some(OutPoint {
        txid: txid.parse().ok()?,
        vout: vout.parse().ok()?,
    })
}
