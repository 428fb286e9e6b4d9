//! `time-cli proof TXID`: fetches a transaction's finality proof and checks
//! it here, against the committee of the epoch its votes name (DESIGN §5,
//! §7). Epochs 0 and 1 belong to the genesis set, so their committee comes
//! from the chain config alone; a later epoch's set is read from the node
//! (`getmasternodes`) with the block that seeded its draw, and the
//! committee is drawn here, so the node can lie about the set but not about
//! the signatures (`verifychain` replays every set from the genesis).

use super::{parse_txid, CliError, ProofArgs};
use serde_json::{json, Value};
use std::path::Path;
use timecoin::config::{ChainConfig, ChainSpec};
use timecoin::finality::{verify_proof, FinalityProof, ValidatorSet};
use timecoin::masternode::CommitteeRules;
use timecoin::node::dev_chain_spec;
use timecoin::rpc::client::RpcClient;
use timecoin::store::schema::PROOFS;
use timecoin::types::{Hash, Network, PublicKeyBytes, Validator, VrfPublicBytes};

/// The chain whose genesis validators judge a proof: `--config`, else the
/// known chain whose genesis the node reports.
fn proof_chain(
    client: &RpcClient,
    network: Network,
    config: Option<&Path>,
) -> Result<ChainSpec, CliError> {
    if let Some(path) = config {
        return Ok(ChainConfig::load(path)?);
    }
    let info = client.call("getblockchaininfo", json!([]))?;
    let genesis = info
        .get("genesis_hash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut known = vec![dev_chain_spec()];
    if let Ok(builtin) = ChainConfig::builtin(network) {
        known.push(builtin);
    }
    known
        .into_iter()
        .find(|spec| spec.genesis_hash().to_string() == genesis)
        .ok_or(CliError::UnknownChain { genesis, network })
}

fn unexpected(what: impl std::fmt::Display) -> CliError {
    CliError::Unexpected(what.to_string())
}

/// 32 bytes from a hex field of `member`.
fn key_bytes(member: &Value, field: &str) -> Result<[u8; 32], CliError> {
    let text = member
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(format!("a masternode without {field}")))?;
    let bytes = hex::decode(text).map_err(|e| unexpected(format!("{field}: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| unexpected(format!("{field} is not 32 bytes")))
}

/// Epoch `epoch`'s set as the node reports it, in its listed order.
fn reported_set(client: &RpcClient, epoch: u64) -> Result<ValidatorSet, CliError> {
    let answer = client.call("getmasternodes", json!([epoch]))?;
    let members = answer
        .get("members")
        .and_then(Value::as_array)
        .ok_or_else(|| unexpected("getmasternodes returned no members"))?;
    let validators = members
        .iter()
        .map(|m| {
            Ok(Validator {
                id: PublicKeyBytes(key_bytes(m, "id")?),
                vrf_key: VrfPublicBytes(key_bytes(m, "vrf_pubkey")?),
                weight: m
                    .get("weight")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| unexpected("a masternode without a weight"))?,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    ValidatorSet::new(validators).map_err(|e| unexpected(format!("epoch {epoch}'s set: {e}")))
}

/// The committee the votes of `epoch` are checked against, and where its
/// set came from.
fn committee_of(
    client: &RpcClient,
    spec: &ChainSpec,
    epoch: u64,
) -> Result<(ValidatorSet, String), CliError> {
    let rules = CommitteeRules::of(spec);
    let Some(height) = rules.deciding_height(epoch) else {
        let genesis = ValidatorSet::new(spec.validators.clone())
            .map_err(|e| unexpected(format!("genesis validator set: {e}")))?;
        let committee = rules.committee(epoch, &genesis, None).committee;
        return Ok((committee, "the genesis set".to_string()));
    };
    let set = reported_set(client, epoch)?;
    let block: Hash = client
        .call("getblockhash", json!([height]))?
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| unexpected(format!("getblockhash {height} returned no hash")))?;
    let committee = rules.committee(epoch, &set, Some(block)).committee;
    let source = format!(
        "epoch {epoch}'s set of {} as the node reports it, drawn with block {height}",
        set.len()
    );
    Ok((committee, source))
}

pub fn check(client: &RpcClient, network: Network, args: &ProofArgs) -> Result<String, CliError> {
    let txid = parse_txid(&args.txid)?;
    let spec = proof_chain(client, network, args.config.as_deref())?;
    let answer = client.call("getfinalityproof", json!([txid.to_string()]))?;
    let hex_text = answer
        .get("hex")
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected("getfinalityproof returned no hex"))?;
    if hex_text.len() > 2 * PROOFS.max_value_bytes {
        return Err(unexpected("the proof is over the size limit"));
    }
    let bytes = hex::decode(hex_text).map_err(|e| unexpected(format!("proof hex: {e}")))?;
    let proof: FinalityProof =
        timecoin::types::encoding::decode(&bytes, PROOFS.max_value_bytes, "finality proof")?;
    // A valid proof's votes all name one epoch; an empty one fails below.
    let epoch = proof.votes.first().map_or(0, |(vote, _)| vote.epoch);
    let (committee, source) = committee_of(client, &spec, epoch)?;
    let set = |e| (e == epoch).then_some(&committee);
    let proven = verify_proof(&proof, spec.chain_id(), spec.genesis_hash(), set)
        .map_err(|source| CliError::InvalidProof { txid, source })?;
    if proven != txid {
        return Err(CliError::ProofForOtherTx {
            expected: txid,
            found: proven,
        });
    }
    let weight: u64 = proof
        .votes
        .iter()
        .filter_map(|(vote, _)| committee.weight_of(&vote.voter))
        .sum();
    Ok(format!(
        "valid: transaction {txid} is final: {} vote(s) of epoch {epoch} weighing {weight} of the {} required (total {}), checked offline against genesis {} and {source}\n",
        proof.votes.len(),
        committee.required_weight(),
        committee.total_weight(),
        spec.genesis_hash()
    ))
}
