"""Real-chain tests for the dev helpers: TestStablecoin on a private anvil, logs, reorgs, admin switches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from stablepay.dev import chain as dc
from tests.support.services import Anvil

TRANSFER_TOPIC = Web3.to_hex(Web3.keccak(text="Transfer(address,address,uint256)"))
UPGRADED_TOPIC = Web3.to_hex(Web3.keccak(text="Upgraded(address)"))
MERCHANT = "0x000000000000000000000000000000000000dEaD"
ONE_THOUSAND_USDC = 1_000 * 10**6


def _topic_address(address: str) -> str:
    return "0x" + "0" * 24 + address[2:].lower()


@pytest.fixture
def chain() -> Iterator[Anvil]:
    with Anvil() as anvil:
        yield anvil


@pytest.fixture
def token(chain: Anvil) -> str:
    address = dc.deploy_token(chain.w3, name="Test USD Coin", symbol="tUSDC", decimals=6)
    dc.mint(chain.w3, address, dc.dev_account(1).address, ONE_THOUSAND_USDC)
    return address


def _transfer_logs(chain: Anvil, token: str, to: str = MERCHANT) -> list[dict[str, Any]]:
    flt = {
        "address": token,
        "fromBlock": "0x0",
        "toBlock": "latest",
        "topics": [TRANSFER_TOPIC, None, _topic_address(to)],
    }
    logs: list[dict[str, Any]] = chain.rpc("eth_getLogs", [flt])
    return logs


def _balance(chain: Anvil, token: str, owner: str) -> int:
    value: int = dc.token_contract(chain.w3, token).functions.balanceOf(Web3.to_checksum_address(owner)).call()
    return value


def test_dev_account_is_the_well_known_anvil_account() -> None:
    assert dc.dev_account(0).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert dc.dev_account(1).address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_deploy_mint_transfer_and_transfer_log(chain: Anvil, token: str) -> None:
    contract = dc.token_contract(chain.w3, token)
    assert (
        contract.functions.decimals().call(),
        contract.functions.symbol().call(),
    ) == (6, "tUSDC")
    assert contract.functions.totalSupply().call() == ONE_THOUSAND_USDC

    tx_hash = dc.transfer(chain.w3, token, MERCHANT, 12_340_000)

    assert tx_hash.startswith("0x") and len(tx_hash) == 66
    assert _balance(chain, token, MERCHANT) == 12_340_000
    assert _balance(chain, token, dc.dev_account(1).address) == ONE_THOUSAND_USDC - 12_340_000
    [log] = _transfer_logs(chain, token)
    assert log["transactionHash"] == tx_hash
    assert Web3.to_checksum_address(log["address"]) == token
    assert log["topics"] == [
        TRANSFER_TOPIC,
        _topic_address(dc.dev_account(1).address),
        _topic_address(MERCHANT),
    ]
    assert int(log["data"], 16) == 12_340_000


def test_zero_value_transfer_emits_a_log(chain: Anvil, token: str) -> None:
    tx_hash = dc.transfer(chain.w3, token, MERCHANT, 0)

    [log] = _transfer_logs(chain, token)
    assert log["transactionHash"] == tx_hash
    assert int(log["data"], 16) == 0


def test_reorg_without_reinclusion_drops_the_transfer(chain: Anvil, token: str) -> None:
    w3 = chain.w3
    tx_hash = dc.transfer(w3, token, MERCHANT, 5_000_000)
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    height, old_hash = receipt["blockNumber"], receipt["blockHash"]

    chain.reorg(1, [])

    assert w3.eth.block_number == height
    assert w3.eth.get_block(height)["hash"] != old_hash
    with pytest.raises(Exception, match="not found"):
        w3.eth.get_transaction_receipt(tx_hash)
    assert _transfer_logs(chain, token) == []
    assert _balance(chain, token, MERCHANT) == 0
    chain.mine(2)  # the dropped tx is not silently re-mined from the pool
    assert _transfer_logs(chain, token) == []


def test_reorg_reincluding_the_raw_tx_keeps_the_log_in_a_new_block(chain: Anvil, token: str) -> None:
    w3 = chain.w3
    raw = dc.send_transfer_raw(w3, token, MERCHANT, 7_000_000)
    tx_hash = Web3.to_hex(w3.eth.send_raw_transaction(raw))
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    height, old_hash = receipt["blockNumber"], Web3.to_hex(receipt["blockHash"])

    chain.reorg(1, [(raw, 0)])

    [log] = _transfer_logs(chain, token)
    assert log["transactionHash"] == tx_hash
    assert int(log["blockNumber"], 16) == height
    assert log["blockHash"] != old_hash
    assert log["blockHash"] == Web3.to_hex(w3.eth.get_block(height)["hash"])
    assert _balance(chain, token, MERCHANT) == 7_000_000


def test_pause_blocks_transfers_until_unpaused(chain: Anvil, token: str) -> None:
    w3 = chain.w3
    contract = dc.token_contract(w3, token)
    with pytest.raises(dc.TransactionFailed):
        dc.pause(w3, token, owner_index=1)  # not the owner

    dc.pause(w3, token)
    assert contract.functions.paused().call() is True
    with pytest.raises(dc.TransactionFailed):
        dc.transfer(w3, token, MERCHANT, 1)

    dc.unpause(w3, token)
    dc.transfer(w3, token, MERCHANT, 1)
    assert _balance(chain, token, MERCHANT) == 1


def test_blacklist_blocks_transfers_from_and_to(chain: Anvil, token: str) -> None:
    w3 = chain.w3
    contract = dc.token_contract(w3, token)
    sender = dc.dev_account(1).address

    dc.blacklist(w3, token, MERCHANT)
    assert contract.functions.isBlacklisted(MERCHANT).call() is True
    with pytest.raises(dc.TransactionFailed):
        dc.transfer(w3, token, MERCHANT, 1)

    dc.unblacklist(w3, token, MERCHANT)
    dc.blacklist(w3, token, sender)
    assert contract.functions.isBlacklisted(MERCHANT).call() is False
    with pytest.raises(dc.TransactionFailed):
        dc.transfer(w3, token, MERCHANT, 1)
    assert _balance(chain, token, MERCHANT) == 0


def test_upgrade_to_emits_upgraded(chain: Anvil, token: str) -> None:
    implementation = dc.dev_account(5).address
    tx_hash = dc.upgrade_to(chain.w3, token, implementation)

    receipt = chain.rpc("eth_getTransactionReceipt", [tx_hash])
    assert [log["topics"] for log in receipt["logs"]] == [[UPGRADED_TOPIC, _topic_address(implementation)]]


def test_helpers_work_with_interval_mining() -> None:
    with Anvil("--block-time", "1") as chain:
        token = dc.deploy_token(chain.w3, name="Tether USD", symbol="tUSDT", decimals=6)
        dc.mint(chain.w3, token, dc.dev_account(1).address, 100)
        dc.transfer(chain.w3, token, MERCHANT, 40, wait=False)
        dc.transfer(chain.w3, token, MERCHANT, 2)  # nonce from "pending" state
        assert _balance(chain, token, MERCHANT) == 42


def test_anvil_stops_cleanly() -> None:
    anvil = Anvil("--no-mining").start()
    pid = anvil._proc.pid if anvil._proc else 0
    assert anvil.w3.eth.chain_id == 31337
    anvil.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_amounts_must_be_integer_base_units(chain: Anvil, token: str) -> None:
    with pytest.raises(TypeError):
        dc.transfer(chain.w3, token, MERCHANT, 1.5)  # type: ignore[arg-type]
