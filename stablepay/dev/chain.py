"""Dev/test-only helpers to drive a local anvil chain with the TestStablecoin double.

Never used by the production path. The only keys here are derived from the public, well-known
anvil/hardhat test mnemonic ("test ... junk"); they hold nothing of value on any real network.
Amounts are integers in token base units throughout.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt, Wei

DEV_MNEMONIC = "test test test test test test test test test test test junk"
# Inside the package (contracts/build.sh writes them here), so an installed stablepay has them too.
ARTIFACT_PATH = Path(__file__).resolve().parent / "contracts" / "TestStablecoin.json"
PROXY_ARTIFACT_PATH = ARTIFACT_PATH.with_name("TestProxy.json")
TOKEN_CALL_GAS = 200_000  # fixed: avoids eth_estimateGas races against pending state
DEPLOY_GAS = 3_000_000
PRIORITY_FEE_WEI = 1_000_000_000
RECEIPT_TIMEOUT_S = 30

Account.enable_unaudited_hdwallet_features()


class TransactionFailed(RuntimeError):
    """A mined transaction reverted (receipt status 0)."""


@lru_cache(maxsize=64)
def dev_account(i: int) -> LocalAccount:
    """Account i of the anvil test mnemonic (path m/44'/60'/0'/0/i)."""
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
    return account


def load_token_artifact() -> dict[str, Any]:
    """The committed {"abi": [...], "bytecode": "0x..."} built by contracts/build.sh."""
    with ARTIFACT_PATH.open(encoding="utf-8") as f:
        artifact: dict[str, Any] = json.load(f)
    return artifact


def token_contract(w3: Web3, token_address: str) -> Contract:
    return w3.eth.contract(
        address=Web3.to_checksum_address(token_address),
        abi=load_token_artifact()["abi"],
    )


def _check_amount(amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise TypeError(f"amount must be a non-negative int of base units, got {amount!r}")
    return amount


def _sign(w3: Web3, account: LocalAccount, tx: TxParams, nonce: int | None = None) -> bytes:
    """Fill nonce/chain/EIP-1559 fees and sign locally; returns the raw signed transaction."""
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    full: dict[str, Any] = {
        **tx,
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending") if nonce is None else nonce,
        "chainId": w3.eth.chain_id,
        "type": 2,
        "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
        "maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI,
    }
    return bytes(account.sign_transaction(full).raw_transaction)


def _submit(w3: Web3, raw: bytes, *, wait: bool) -> tuple[HexStr, TxReceipt | None]:
    tx_hash = w3.eth.send_raw_transaction(raw)
    if not wait:
        return Web3.to_hex(tx_hash), None
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {Web3.to_hex(tx_hash)} reverted")
    return Web3.to_hex(tx_hash), receipt


def _token_call_tx(w3: Web3, token_address: str, fn_name: str, args: list[Any]) -> TxParams:
    contract = token_contract(w3, token_address)
    return {
        "to": contract.address,
        "data": contract.encode_abi(fn_name, args=args),
        "value": Wei(0),
        "gas": TOKEN_CALL_GAS,
    }


def _call(w3: Web3, token_address: str, fn_name: str, args: list[Any], signer_index: int) -> HexStr:
    raw = _sign(w3, dev_account(signer_index), _token_call_tx(w3, token_address, fn_name, args))
    return _submit(w3, raw, wait=True)[0]


def deploy_token(w3: Web3, *, name: str, symbol: str, decimals: int, deployer_index: int = 0) -> ChecksumAddress:
    """Deploy TestStablecoin (owner = dev account deployer_index); returns its checksum address."""
    artifact = load_token_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = factory.constructor(name, symbol, decimals).data_in_transaction
    raw = _sign(
        w3,
        dev_account(deployer_index),
        {"data": data, "value": Wei(0), "gas": DEPLOY_GAS},
    )
    _, receipt = _submit(w3, raw, wait=True)
    if receipt is None or receipt["contractAddress"] is None:
        raise TransactionFailed("deployment receipt has no contract address")
    return Web3.to_checksum_address(receipt["contractAddress"])


def deploy_proxied_token(
    w3: Web3, *, name: str, symbol: str, decimals: int, deployer_index: int = 0
) -> tuple[ChecksumAddress, ChecksumAddress]:
    """A TestStablecoin behind a TestProxy (ERC-1967, admin and owner = dev account deployer_index).

    Returns (proxy, implementation): register the proxy as the token. `upgrade_to` on the proxy, from
    its admin, swaps the implementation and emits the proxy's own Upgraded(address).
    """
    implementation = deploy_token(w3, name=name, symbol=symbol, decimals=decimals, deployer_index=deployer_index)
    init = token_contract(w3, implementation).encode_abi(
        "initialize", args=[name, symbol, dev_account(deployer_index).address]
    )
    with PROXY_ARTIFACT_PATH.open(encoding="utf-8") as f:
        artifact = json.load(f)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = factory.constructor(implementation, Web3.to_bytes(hexstr=init)).data_in_transaction
    raw = _sign(w3, dev_account(deployer_index), {"data": data, "value": Wei(0), "gas": DEPLOY_GAS})
    _, receipt = _submit(w3, raw, wait=True)
    if receipt is None or receipt["contractAddress"] is None:
        raise TransactionFailed("deployment receipt has no contract address")
    return Web3.to_checksum_address(receipt["contractAddress"]), implementation


def mint(
    w3: Web3,
    token_address: str,
    to: str,
    amount_base_units: int,
    *,
    owner_index: int = 0,
) -> HexStr:
    to_addr = Web3.to_checksum_address(to)
    return _call(
        w3,
        token_address,
        "mint",
        [to_addr, _check_amount(amount_base_units)],
        owner_index,
    )


def send_transfer_raw(
    w3: Web3,
    token_address: str,
    to: str,
    amount_base_units: int,
    *,
    sender_index: int = 1,
    nonce: int | None = None,
) -> HexStr:
    """Signed raw `transfer` transaction as 0x-hex, NOT sent (e.g. for anvil_reorg re-inclusion)."""
    args = [Web3.to_checksum_address(to), _check_amount(amount_base_units)]
    raw = _sign(
        w3,
        dev_account(sender_index),
        _token_call_tx(w3, token_address, "transfer", args),
        nonce,
    )
    return Web3.to_hex(raw)


def transfer(
    w3: Web3,
    token_address: str,
    to: str,
    amount_base_units: int,
    *,
    sender_index: int = 1,
    wait: bool = True,
) -> HexStr:
    """Send a token transfer from dev account sender_index; returns the 0x tx hash.

    With wait=True, blocks until mined and raises TransactionFailed if it reverted.
    """
    raw = send_transfer_raw(w3, token_address, to, amount_base_units, sender_index=sender_index)
    return _submit(w3, Web3.to_bytes(hexstr=raw), wait=wait)[0]


def pause(w3: Web3, token_address: str, *, owner_index: int = 0) -> HexStr:
    return _call(w3, token_address, "pause", [], owner_index)


def unpause(w3: Web3, token_address: str, *, owner_index: int = 0) -> HexStr:
    return _call(w3, token_address, "unpause", [], owner_index)


def blacklist(w3: Web3, token_address: str, account: str, *, owner_index: int = 0) -> HexStr:
    return _call(w3, token_address, "blacklist", [Web3.to_checksum_address(account)], owner_index)


def unblacklist(w3: Web3, token_address: str, account: str, *, owner_index: int = 0) -> HexStr:
    return _call(
        w3,
        token_address,
        "unBlacklist",
        [Web3.to_checksum_address(account)],
        owner_index,
    )


def upgrade_to(w3: Web3, token_address: str, implementation: str, *, owner_index: int = 0) -> HexStr:
    """Emit Upgraded(implementation): a test double for a proxy upgrade."""
    return _call(
        w3,
        token_address,
        "upgradeTo",
        [Web3.to_checksum_address(implementation)],
        owner_index,
    )
