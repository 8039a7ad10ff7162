"""A real Safe (Safe{Wallet} 1.4.1, from the npm package @safe-global/safe-contracts) on anvil, for tests.

`SafeWallet.deploy` deploys the singleton, the proxy factory, the fallback handler and MultiSendCallOnly
from Safe's own compiled artifacts, then creates a Safe proxy with the given owners and threshold, as the
Safe web app does. `execute_batch` runs a list of transactions the way the Safe web app runs a Transaction
Builder batch: one call on its own, several as a delegatecall to MultiSendCallOnly; the owners sign the
EIP-712 safeTxHash the Safe computes, and any account sends `execTransaction`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.packed import encode_packed
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from stablepay.dev.chain import TransactionFailed, dev_account

ARTIFACTS = Path(__file__).resolve().parents[2] / "node_modules/@safe-global/safe-contracts/build/artifacts/contracts"
ZERO = "0x" + "00" * 20
GAS = 10_000_000
CALL, DELEGATECALL = 0, 1


@cache
def artifact(path: str) -> dict[str, Any]:
    with (ARTIFACTS / path).open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _send(w3: Web3, tx: dict[str, Any], sender: int) -> TxReceipt:
    sent = {"value": 0, **tx, "from": dev_account(sender).address, "gas": GAS}
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(sent))  # type: ignore[arg-type]
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {Web3.to_hex(receipt['transactionHash'])} reverted")
    return receipt


def _deploy(w3: Web3, path: str, sender: int) -> ChecksumAddress:
    code = artifact(path)
    data = w3.eth.contract(abi=code["abi"], bytecode=code["bytecode"]).constructor().data_in_transaction
    address = _send(w3, {"data": data}, sender)["contractAddress"]
    assert address is not None
    return Web3.to_checksum_address(address)


def multisend_payload(transactions: list[dict[str, Any]]) -> bytes:
    """MultiSend's packed encoding: operation, to, value, data length, data, per transaction."""
    return b"".join(
        encode_packed(
            ["uint8", "address", "uint256", "uint256", "bytes"],
            [CALL, Web3.to_checksum_address(tx["to"]), int(tx["value"]), len(data), data],
        )
        for tx in transactions
        for data in [bytes.fromhex(str(tx["data"] or "0x").removeprefix("0x"))]
    )


@dataclass
class SafeWallet:
    w3: Web3
    safe: Contract
    multisend: Contract
    owners: list[int]  # dev account indices

    @property
    def address(self) -> ChecksumAddress:
        return self.safe.address

    @classmethod
    def deploy(cls, w3: Web3, owners: list[int], threshold: int, *, deployer: int = 0) -> SafeWallet:
        singleton = _deploy(w3, "Safe.sol/Safe.json", deployer)
        factory_address = _deploy(w3, "proxies/SafeProxyFactory.sol/SafeProxyFactory.json", deployer)
        handler = _deploy(w3, "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json", deployer)
        multisend_address = _deploy(w3, "libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json", deployer)
        safe_abi = artifact("Safe.sol/Safe.json")["abi"]
        setup = w3.eth.contract(abi=safe_abi).encode_abi(
            "setup",
            args=[[dev_account(i).address for i in owners], threshold, ZERO, b"", handler, ZERO, 0, ZERO],
        )
        factory = w3.eth.contract(
            address=factory_address, abi=artifact("proxies/SafeProxyFactory.sol/SafeProxyFactory.json")["abi"]
        )
        receipt = _send(
            w3,
            {"to": factory_address, "data": factory.encode_abi("createProxyWithNonce", args=[singleton, setup, 1])},
            deployer,
        )
        (created,) = factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
        safe = w3.eth.contract(address=created.args.proxy, abi=safe_abi)
        multisend = w3.eth.contract(
            address=multisend_address, abi=artifact("libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json")["abi"]
        )
        return cls(w3=w3, safe=safe, multisend=multisend, owners=owners)

    def execute_batch(self, transactions: list[dict[str, Any]], *, sender: int) -> TxReceipt:
        """Execute a Transaction Builder batch: each owner signs the safeTxHash, `sender` submits it."""
        if len(transactions) == 1:
            (only,) = transactions
            to, value, operation = only["to"], int(only["value"]), CALL
            data = bytes.fromhex(str(only["data"] or "0x").removeprefix("0x"))
        else:
            to, value, operation = self.multisend.address, 0, DELEGATECALL
            data = bytes.fromhex(
                self.multisend.encode_abi("multiSend", args=[multisend_payload(transactions)]).removeprefix("0x")
            )
        nonce = self.safe.functions.nonce().call()
        to = Web3.to_checksum_address(to)
        safe_tx_hash = self.safe.functions.getTransactionHash(
            to, value, data, operation, 0, 0, 0, ZERO, ZERO, nonce
        ).call()
        signers = sorted((dev_account(i) for i in self.owners), key=lambda a: int(a.address, 16))
        signatures = b"".join(
            signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
            for account in signers
            for signed in [account.unsafe_sign_hash(safe_tx_hash)]
        )
        call = self.safe.encode_abi(
            "execTransaction", args=[to, value, data, operation, 0, 0, 0, ZERO, ZERO, signatures]
        )
        receipt = _send(self.w3, {"to": self.address, "data": call}, sender)
        failures = self.safe.events.ExecutionFailure().process_receipt(receipt, errors=DISCARD)
        if failures:
            raise TransactionFailed("the Safe executed the batch and it failed")
        return receipt
