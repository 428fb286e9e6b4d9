#!/usr/bin/env python3
"""Drives a `timed --dev` node with python-bitcoinrpc, unmodified, as code
written for Bitcoin Core would: every Bitcoin-named method is checked for
Bitcoin's key names and value types, error codes, and `batch_()`.

Run by tests/python_bitcoinrpc.rs: `python3 test_bitcoin_rpc.py FIXTURE.json`,
where the fixture names the RPC URL (with credentials) and the transactions
the Rust side prepared. Prints one line per check and "N passed, N failed".
"""
import json
import sys
from decimal import Decimal

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, go on
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def has(obj, **types):
    """Every key present with its Bitcoin type."""
    for key, kind in types.items():
        assert key in obj, f"missing key '{key}' in {sorted(obj)}"
        assert isinstance(obj[key], kind), f"'{key}' is {type(obj[key]).__name__}, not {kind}"
        if kind is int:
            assert not isinstance(obj[key], bool), f"'{key}' is a bool, not an int"


def error_code(fn):
    try:
        fn()
    except JSONRPCException as e:
        return e.error["code"]
    raise AssertionError("no error raised")


def is_hash(text):
    return isinstance(text, str) and len(text) == 64 and int(text, 16) >= 0


def main():
    fixture = json.load(open(sys.argv[1]))
    rpc = AuthServiceProxy(fixture["url"], timeout=30)
    txid = fixture["archived_txid"]
    address = fixture["address"]

    info = rpc.getblockchaininfo()
    genesis = rpc.getblockhash(0)

    def blockchaininfo():
        has(info, chain=str, blocks=int, headers=int, bestblockhash=str,
            verificationprogress=Decimal, initialblockdownload=bool)
        assert info["initialblockdownload"] is False
        assert info["headers"] >= info["blocks"] >= 1
    check("getblockchaininfo", blockchaininfo)

    def counts():
        assert isinstance(rpc.getblockcount(), int)
        assert is_hash(rpc.getbestblockhash())
        assert is_hash(genesis)
    check("getblockcount / getbestblockhash / getblockhash", counts)

    check("getblockhash out of range is -8",
          lambda: assert_eq(error_code(lambda: rpc.getblockhash(10**9)), -8))

    def genesis_block():
        assert isinstance(rpc.getblock(genesis, 0), str) and len(rpc.getblock(genesis, 0)) > 0
        for verbosity in (1, 2):
            block = rpc.getblock(genesis, verbosity)
            has(block, hash=str, height=int, tx=list, nTx=int, size=int, version=int,
                confirmations=int, time=int)
            assert block["nTx"] == len(block["tx"]) == 1
    check("getblock genesis at 0/1/2", genesis_block)

    raw = rpc.getrawtransaction(txid, True)

    def rawtransaction():
        assert rpc.getrawtransaction(txid) == raw["hex"]
        has(raw, txid=str, hash=str, version=int, size=int, vsize=int, vin=list, vout=list,
            hex=str, blockhash=str, confirmations=int, time=int, blocktime=int, finality=dict)
        assert raw["confirmations"] >= 1
        has(raw["vin"][0], txid=str, vout=int)
        out = raw["vout"][0]
        has(out, value=Decimal, n=int, scriptPubKey=dict)
        has(out["scriptPubKey"], address=str, hex=str, type=str)
        assert out["n"] == 0
        assert raw["finality"]["status"] == "final"
    check("getrawtransaction verbose", rawtransaction)

    def block_levels():
        for verbosity in (1, 2):
            block = rpc.getblock(raw["blockhash"], verbosity)
            has(block, hash=str, height=int, tx=list, nTx=int, size=int, version=int,
                confirmations=int, time=int, previousblockhash=str)
        full = rpc.getblock(raw["blockhash"], 2)
        entry = next(t for t in full["tx"] if t["txid"] == txid)
        has(entry, vin=list, vout=list)
        has(entry["vout"][0], value=Decimal, n=int)
        assert any(t == txid for t in rpc.getblock(raw["blockhash"], 1)["tx"])
        assert isinstance(rpc.getblock(raw["blockhash"], 0), str)
    check("getblock at 0/1/2", block_levels)

    def blockheader():
        header = rpc.getblockheader(raw["blockhash"])
        has(header, hash=str, height=int, version=int, merkleroot=str, time=int, nTx=int,
            confirmations=int, previousblockhash=str)
        assert isinstance(rpc.getblockheader(raw["blockhash"], False), str)
    check("getblockheader", blockheader)

    def chaintips():
        tips = rpc.getchaintips()
        has(tips[0], height=int, hash=str, branchlen=int, status=str)
        assert tips[0]["status"] == "active"
    check("getchaintips", chaintips)

    def decode():
        decoded = rpc.decoderawtransaction(raw["hex"])
        assert decoded["txid"] == txid
        has(decoded, vin=list, vout=list, size=int)
        assert decoded["vout"] == raw["vout"]
    check("decoderawtransaction", decode)

    def txout():
        out = rpc.gettxout(fixture["unspent_txid"], fixture["unspent_vout"])
        has(out, bestblock=str, confirmations=int, value=Decimal, scriptPubKey=dict)
        has(out["scriptPubKey"], address=str)
        assert rpc.gettxout(fixture["spent_txid"], 0) is None
    check("gettxout", txout)

    def txoutsetinfo():
        utxos = rpc.gettxoutsetinfo()
        has(utxos, height=int, bestblock=str, txouts=int, total_amount=Decimal,
            hash_serialized_3=str)
    check("gettxoutsetinfo", txoutsetinfo)

    def unspent():
        listed = rpc.listunspent(0, 9999999, [address])
        assert listed, "the funded address lists outputs"
        has(listed[0], txid=str, vout=int, address=str, amount=Decimal, confirmations=int,
            spendable=bool, scriptPubKey=str)
        total = sum(o["amount"] for o in listed)
        assert rpc.getbalance(address) == total
        assert isinstance(rpc.getbalance(address, 1), Decimal)
        assert all(o["confirmations"] >= 1 for o in rpc.listunspent(1, 9999999, [address]))
    check("listunspent / getbalance", unspent)

    def validate():
        assert rpc.validateaddress(address)["isvalid"] is True
        assert rpc.validateaddress("nope")["isvalid"] is False
    check("validateaddress", validate)

    def fee():
        has(rpc.estimatesmartfee(6), feerate=Decimal, blocks=int)
    check("estimatesmartfee", fee)

    def mempool():
        has(rpc.getmempoolinfo(), size=int, bytes=int)
        assert isinstance(rpc.getrawmempool(), list)
        assert isinstance(rpc.getrawmempool(True), dict)
        assert error_code(lambda: rpc.getmempoolentry("00" * 32)) == -5
    check("getmempoolinfo / getrawmempool / getmempoolentry", mempool)

    def network():
        net = rpc.getnetworkinfo()
        has(net, version=int, subversion=str, protocolversion=int, connections=int)
        assert isinstance(rpc.getpeerinfo(), list)
        assert isinstance(rpc.getconnectioncount(), int)
        assert rpc.ping() is None
        assert isinstance(rpc.uptime(), int)
    check("getnetworkinfo / getpeerinfo / getconnectioncount / ping", network)

    def help_text():
        assert "getblockchaininfo" in rpc.help()
        assert rpc.help("getblock").startswith("getblock ")
    check("help", help_text)

    def send_and_wait():
        sent = rpc.sendrawtransaction(fixture["fresh_hex"])
        assert is_hash(sent)
        final = rpc.waitfortx(sent, 10000)
        assert final["status"] == "finalized" and final["final"] is True, final
        height = rpc.getblockcount()
        block = rpc.waitfornewblock(10000)
        has(block, hash=str, height=int)
        assert block["height"] > height
        assert rpc.waitforblockheight(block["height"], 1000)["height"] >= block["height"]
    check("sendrawtransaction / waitfortx / waitfornewblock / waitforblockheight",
          send_and_wait)

    def errors():
        assert error_code(lambda: rpc.sendrawtransaction(fixture["bad_signature_hex"])) == -26
        assert error_code(lambda: rpc.sendrawtransaction(fixture["unknown_input_hex"])) == -25
        assert error_code(lambda: rpc.sendrawtransaction("zz")) == -22
        assert error_code(lambda: rpc.sendrawtransaction(raw["hex"])) == -27
        assert error_code(lambda: rpc.getrawtransaction("00" * 32)) == -5
        assert error_code(lambda: rpc.nosuchmethod()) == -32601
        assert error_code(lambda: rpc.getblock("xyz")) == -32602
    check("error codes", errors)

    def batch():
        results = rpc.batch_([["getblockcount"], ["getblockhash", 0], ["getbestblockhash"]])
        assert len(results) == 3
        assert isinstance(results[0], int)
        assert results[1] == genesis
    check("batch_", batch)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def assert_eq(a, b):
    assert a == b, f"{a!r} != {b!r}"


if __name__ == "__main__":
    sys.exit(main())
