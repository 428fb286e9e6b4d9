//! `help` and `help METHOD`: one line per method, in one table, so the list
//! cannot drift from what [`super::methods::Method::parse`] accepts (a unit
//! test checks that every listed name parses).

/// (name, arguments, what it answers).
pub const METHODS: &[(&str, &str, &str)] = &[
    ("help", "( \"command\" )", "this list, or one command's line"),
    ("getblockchaininfo", "", "tip, headers, sync flag (initialblockdownload), slots; TIME extras"),
    ("getblockcount", "", "tip height"),
    ("getbestblockhash", "", "tip hash"),
    ("getblockhash", "height", "hash at height (-8 when out of range)"),
    ("getblock", "\"blockhash\" ( verbosity )", "0 hex, 1 header and txids, 2 whole txs"),
    ("getblockheader", "\"blockhash\" ( verbose )", "a block's header, or its hex"),
    ("getchaintips", "", "the active tip and any certified branch"),
    ("getrawtransaction", "\"txid\" ( verbose )", "a finalized tx: hex, or vin/vout, blockhash, confirmations and TIME's finality"),
    ("decoderawtransaction", "\"hexstring\"", "a tx's vin/vout without submitting it"),
    ("sendrawtransaction", "\"hexstring\"", "submit; answers the txid once admitted durably"),
    ("gettxout", "\"txid\" n", "an unspent output: bestblock, confirmations, value, scriptPubKey"),
    ("gettxoutsetinfo", "", "UTXO count, total amount, digest (compare across nodes)"),
    ("listunspent", "( minconf maxconf [\"address\",...] )", "spendable outputs of the addresses; minconf defaults to 0: TIME finality is instant, blocks only archive"),
    ("getbalance", "\"address\" ( minconf )", "spendable balance of an address (this node keeps no wallet)"),
    ("validateaddress", "\"address\"", "isvalid, address, scriptPubKey"),
    ("estimatesmartfee", "conf_target", "the chain's fixed minimum fee"),
    ("getmempoolinfo", "", "pending tx count and bytes"),
    ("getrawmempool", "( verbose )", "pending txids, or entries keyed by txid"),
    ("getmempoolentry", "\"txid\"", "one pending tx's entry"),
    ("getnetworkinfo", "", "version, subversion, protocolversion, connections"),
    ("getpeerinfo", "", "connected peers"),
    ("getconnectioncount", "", "connected peers"),
    ("ping", "", "null (liveness)"),
    ("uptime", "", "seconds since start"),
    ("stop", "", "stop the node"),
    ("waitfortx", "\"txid\" ( timeout_ms )", "long-poll: answers when the tx is durable-final or rejected, or at the timeout"),
    ("waitfornewblock", "( timeout_ms )", "long-poll: the next block (hash, height)"),
    ("waitforblockheight", "height ( timeout_ms )", "long-poll: a tip at or above height"),
    ("gettxstatus", "\"txid\"", "TIME: a tx's finality status and timings"),
    ("getfinalityproof", "\"txid\"", "TIME: the signed finality proof"),
    ("getconsensusinfo", "", "TIME: engine parameters and counters"),
    ("getvalidators", "", "TIME: validators and weights"),
    ("getrewardinfo", "( height )", "TIME: block reward rules and a block's reward"),
    ("verifychain", "", "TIME: replay every block and proof"),
    ("getevidence", "", "TIME: stored equivocation evidence"),
    ("getepochinfo", "", "TIME: the current epoch, its rules, and the current and latest decided masternode sets"),
    ("getmasternodes", "( epoch )", "TIME: an epoch's masternode set (default: the current epoch)"),
    ("getmasternode", "\"id\"", "TIME: one masternode's registration, status and epochs"),
    ("getstatus", "", "TIME: what the status page at GET / shows, as JSON"),
];

/// The whole list, or one method's line; `None` for an unknown method.
pub fn text(method: Option<&str>) -> Option<String> {
    let line = |(name, args, what): &(&str, &str, &str)| {
        if args.is_empty() {
            format!("{name}\n    {what}")
        } else {
            format!("{name} {args}\n    {what}")
        }
    };
    match method {
        None => Some(METHODS.iter().map(line).collect::<Vec<_>>().join("\n")),
        Some(name) => METHODS.iter().find(|m| m.0 == name).map(line),
    }
}
