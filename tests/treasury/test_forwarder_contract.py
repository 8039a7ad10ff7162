"""The forwarder factory on anvil (issue 18): contracts/ForwarderFactory.sol and stablepay/chain/forwarder.py.

The factory is deployed as production deploys it, through the standard CREATE2 deployer that anvil carries,
and lands at the pinned address. Deposit addresses computed off-line are the ones the factory creates.
Sweeps move whole balances of any ERC-20 to the settlement address fixed in each address: our test
stablecoin, the Tether-like token (no bool, and a fee on transfer), a token that refuses (blacklisted
deposit address), ETH sent by mistake; a wrong salt, a salt listed twice, a late payment to a swept
address. A caller who is not the merchant can start a sweep but cannot send anything anywhere else.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from stablepay.chain import forwarder
from stablepay.chain.reader import TRANSFER_TOPIC
from stablepay.dev import chain as devchain
from tests.support import real_coins
from tests.support.safe import SafeWallet
from tests.support.treasury import PAYER

SETTLEMENT = devchain.dev_account(5).address  # the merchant's Safe or cold wallet
ATTACKER = 7
GAS = 8_000_000


def _send(w3: Web3, tx: dict[str, Any], *, sender: int = 0) -> TxReceipt:
    sent = {**tx, "from": devchain.dev_account(sender).address, "gas": GAS}
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(sent))  # type: ignore[arg-type]
    assert receipt["status"] == 1, receipt
    return receipt


def deploy_factory(w3: Web3) -> Contract:
    if not w3.eth.get_code(forwarder.factory_address()):
        _send(w3, forwarder.deploy_factory_transaction())
    return w3.eth.contract(address=forwarder.factory_address(), abi=forwarder.artifact("ForwarderFactory")["abi"])


def sweep(
    w3: Web3, token: str, salts: list[bytes], *, sender: int = 0
) -> tuple[list[tuple[str, str, int]], list[str], int]:
    """Send `sweep`; returns (the token's transfers in it as (from, to, value), the addresses whose forwarder
    failed, how many forwarders ran)."""
    factory = deploy_factory(w3)
    receipt = _send(w3, forwarder.sweep_transaction(token, salts), sender=sender)
    moved = [
        (
            Web3.to_checksum_address(log["topics"][1][-20:]),
            Web3.to_checksum_address(log["topics"][2][-20:]),
            int.from_bytes(log["data"], "big"),
        )
        for log in receipt["logs"]
        if log["address"] == Web3.to_checksum_address(token) and log["topics"][0].hex().endswith(TRANSFER_TOPIC[2:])
    ]
    failed = [e.args.depositAddress for e in factory.events.SweepFailed().process_receipt(receipt, errors=DISCARD)]
    (summary,) = factory.events.Swept().process_receipt(receipt, errors=DISCARD)
    assert summary.args.token == Web3.to_checksum_address(token)
    return moved, failed, summary.args.addresses


def deposits(n: int, settlement: str = SETTLEMENT) -> list[tuple[str, bytes]]:
    return [forwarder.request_deposit(settlement, uuid.uuid4()) for _ in range(n)]


def test_the_factory_lands_at_its_pinned_address_through_the_create2_deployer(w3: Web3) -> None:
    assert w3.eth.get_code(forwarder.DEPLOYER), "anvil carries the standard CREATE2 deployer"
    assert forwarder.factory_address() == forwarder.EXPECTED_FACTORY_ADDRESS
    assert not w3.eth.get_code(forwarder.factory_address())
    deploy_factory(w3)
    runtime = w3.eth.get_code(forwarder.factory_address())
    assert len(runtime) > 100
    assert forwarder.factory_address() == forwarder.create2_address(
        forwarder.DEPLOYER,
        forwarder.FACTORY_SALT,
        keccak(bytes.fromhex(forwarder.artifact("ForwarderFactory")["bytecode"][2:])),
    )


def test_deposit_addresses_computed_offline_are_where_the_factory_creates(w3: Web3, hkdx: str) -> None:
    factory = deploy_factory(w3)
    made = deposits(3) + deposits(2, settlement=devchain.dev_account(6).address)
    for address, salt in made:
        assert factory.functions.depositAddress(salt).call() == address
        assert not w3.eth.get_code(address)  # nothing deployed when a request is made
        devchain.transfer(w3, hkdx, address, 1_000_000, sender_index=PAYER)
    for settlement in (SETTLEMENT, devchain.dev_account(6).address):
        mine = [salt for _, salt in made if forwarder.settlement_of(salt) == settlement]
        moved, failed, ran = sweep(w3, hkdx, mine)
        assert not failed and ran == len(mine)
        assert moved == [(a, settlement, 1_000_000) for a, s in made if s in mine]


def test_one_transaction_sweeps_every_address_and_skips_a_wrong_salt(w3: Web3, hkdx: str) -> None:
    made = deposits(3)
    amounts = [1_680_000_000, 3_900_000_001, 7]
    for (address, _), amount in zip(made, amounts, strict=True):
        devchain.transfer(w3, hkdx, address, amount, sender_index=PAYER)
    wrong = forwarder.salt_for(SETTLEMENT, 12345)  # an address nobody paid: its forwarder moves nothing
    before = real_coins.balance_of(w3, hkdx, SETTLEMENT)
    moved, failed, ran = sweep(w3, hkdx, [salt for _, salt in made] + [wrong])
    assert moved == [(address, SETTLEMENT, amount) for (address, _), amount in zip(made, amounts, strict=True)]
    assert not failed and ran == 4
    assert real_coins.balance_of(w3, hkdx, SETTLEMENT) - before == sum(amounts)
    for address, _ in made:
        assert real_coins.balance_of(w3, hkdx, address) == 0
        assert not w3.eth.get_code(address)  # created and destroyed in the one transaction


def test_a_salt_listed_twice_and_a_late_payment_to_a_swept_address(w3: Web3, hkdx: str) -> None:
    ((address, salt),) = deposits(1)
    devchain.transfer(w3, hkdx, address, 500, sender_index=PAYER)
    moved, failed, _ = sweep(w3, hkdx, [salt, salt])
    assert moved == [(address, SETTLEMENT, 500)]
    assert failed == [address]  # the second time, in the same transaction, its forwarder cannot be created
    devchain.transfer(w3, hkdx, address, 250, sender_index=PAYER)  # the shopper pays again, late
    moved, failed, _ = sweep(w3, hkdx, [salt])
    assert moved == [(address, SETTLEMENT, 250)] and not failed


def test_a_token_that_returns_no_bool_and_takes_a_fee(w3: Web3) -> None:
    usdt = real_coins.deploy_tether_like_usdt(w3)
    made = deposits(2)
    for address, _ in made:
        real_coins.fund_tether_like_usdt(w3, usdt, address, 100_000_000)
    real_coins.set_tether_like_fees(w3, usdt, basis_points=10, max_fee_whole_tokens=1)  # 0.1 %, at most 1 USDT
    owner = real_coins.tether_like_owner(w3, usdt)
    fees_before = real_coins.balance_of(w3, usdt, owner)
    moved, failed, _ = sweep(w3, usdt, [salt for _, salt in made])
    assert not failed
    assert [m for m in moved if m[1] == SETTLEMENT] == [(a, SETTLEMENT, 100_000_000 - 100_000) for a, _ in made]
    assert real_coins.balance_of(w3, usdt, SETTLEMENT) == 2 * (100_000_000 - 100_000)  # what the token delivers
    assert real_coins.balance_of(w3, usdt, owner) - fees_before == 2 * 100_000
    assert all(real_coins.balance_of(w3, usdt, address) == 0 for address, _ in made)


def test_a_token_that_refuses_skips_that_address_and_the_batch_goes_on(w3: Web3, hkdx: str) -> None:
    (blocked, blocked_salt), (fine, fine_salt) = deposits(2)
    for address in (blocked, fine):
        devchain.transfer(w3, hkdx, address, 1_000, sender_index=PAYER)
    devchain.blacklist(w3, hkdx, blocked)
    moved, failed, _ = sweep(w3, hkdx, [blocked_salt, fine_salt])
    assert failed == [blocked]
    assert moved == [(fine, SETTLEMENT, 1_000)]
    assert real_coins.balance_of(w3, hkdx, blocked) == 1_000 and not w3.eth.get_code(blocked)
    devchain.unblacklist(w3, hkdx, blocked)  # the issuer lifts it: the next sweep moves it
    moved, failed, _ = sweep(w3, hkdx, [blocked_salt])
    assert moved == [(blocked, SETTLEMENT, 1_000)] and not failed


def test_an_unregistered_token_and_eth_sent_by_mistake_are_swept_too(w3: Web3) -> None:
    stray = devchain.deploy_token(w3, name="Some Coin", symbol="SOME", decimals=18)
    devchain.mint(w3, stray, devchain.dev_account(PAYER).address, 10**21)
    ((address, salt),) = deposits(1)
    devchain.transfer(w3, stray, address, 10**18 + 1, sender_index=PAYER)
    _send(w3, {"to": address, "value": 10**17}, sender=PAYER)
    eth_before = w3.eth.get_balance(SETTLEMENT)
    moved, _, _ = sweep(w3, stray, [salt], sender=ATTACKER)  # anyone may start it; the gas is theirs
    assert moved == [(address, SETTLEMENT, 10**18 + 1)]
    assert real_coins.balance_of(w3, stray, SETTLEMENT) == 10**18 + 1
    assert w3.eth.get_balance(SETTLEMENT) - eth_before == 10**17
    assert w3.eth.get_balance(address) == 0


def test_whoever_calls_sweep_cannot_send_the_money_anywhere_else(w3: Web3, hkdx: str) -> None:
    attacker = devchain.dev_account(ATTACKER).address
    ((address, salt),) = deposits(1)
    devchain.transfer(w3, hkdx, address, 9_999, sender_index=PAYER)
    # The same request number under the attacker's own address: another deposit address, holding nothing.
    forged = forwarder.salt_for(attacker, int.from_bytes(salt[20:], "big"))
    assert forwarder.deposit_address(attacker, forged) != address
    moved, failed, _ = sweep(w3, hkdx, [forged], sender=ATTACKER)
    assert not moved and not failed
    assert real_coins.balance_of(w3, hkdx, address) == 9_999 and real_coins.balance_of(w3, hkdx, attacker) == 0
    # A Forwarder deployed by the attacker with their own settlement address sits elsewhere (CREATE from their
    # nonce), and nothing but the factory can CREATE2 at a deposit address.
    code = forwarder.artifact("Forwarder")
    fake = w3.eth.contract(abi=code["abi"], bytecode=code["bytecode"])
    with pytest.raises(Exception):  # its constructor asks its creator for the token: an account has none
        _send(w3, {"data": fake.constructor(attacker).data_in_transaction}, sender=ATTACKER)
    # Sweeping the real salt, whoever calls, pays the settlement address written into it.
    moved, _, _ = sweep(w3, hkdx, [salt], sender=ATTACKER)
    assert moved == [(address, SETTLEMENT, 9_999)]
    assert real_coins.balance_of(w3, hkdx, attacker) == 0
    assert real_coins.balance_of(w3, hkdx, SETTLEMENT) == 9_999


def test_offline_refusals() -> None:
    with pytest.raises(forwarder.ForwarderError, match="zero address"):
        forwarder.salt_for("0x" + "00" * 20, 1)
    with pytest.raises(forwarder.ForwarderError, match="96 bits"):
        forwarder.salt_for(SETTLEMENT, 1 << 96)
    with pytest.raises(forwarder.ForwarderError, match="another settlement"):
        forwarder.deposit_address(devchain.dev_account(6).address, forwarder.salt_for(SETTLEMENT, 1))
    number = forwarder.request_number("3f2a9c1e-0000-4000-8000-0000000000ff")
    assert number == 0x0000_4000_8000_0000_0000_00FF  # the last 24 hex digits


def test_a_safe_as_settlement_address_runs_the_batch_itself(w3: Web3, hkdx: str) -> None:
    """The merchant's Safe (two owners of two) executes [deploy the factory, sweep] as one batch, the way the
    Safe web app runs a Transaction Builder file; the money lands in the Safe."""
    wallet = SafeWallet.deploy(w3, owners=[5, 6], threshold=2)
    made = deposits(2, settlement=wallet.address)
    for address, _ in made:
        devchain.transfer(w3, hkdx, address, 2_500_000, sender_index=PAYER)
    assert not w3.eth.get_code(forwarder.factory_address())
    batch = [forwarder.deploy_factory_transaction(), forwarder.sweep_transaction(hkdx, [s for _, s in made])]
    wallet.execute_batch(batch, sender=ATTACKER)  # anyone may submit what the owners signed
    assert w3.eth.get_code(forwarder.factory_address())
    assert real_coins.balance_of(w3, hkdx, wallet.address) == 5_000_000
    assert all(real_coins.balance_of(w3, hkdx, address) == 0 for address, _ in made)
