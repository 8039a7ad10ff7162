"""Our TetherLikeToken (contracts/TetherLikeToken.sol) shows the quirks of Tether's USDT that a watcher and a
wallet meet: the ABI's types, issuance without Transfer logs, the fee's two logs (fee first), pause, the
blacklist, the approve guard and the forwarding after `deprecate`. It is our own contract, not Tether's
bytecode; the watcher's handling of it is in test_one_pass.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from stablepay.dev import chain as devchain
from tests.support import real_coins
from tests.support.services import Anvil

OWNER, ALICE, BOB = (devchain.dev_account(i).address for i in (0, 1, 2))
INITIAL = 10_000 * 10**6


@pytest.fixture
def chain() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture
def usdt(chain: Anvil) -> Contract:
    address = real_coins.deploy_tether_like_usdt(chain.w3, initial_supply=INITIAL)
    return real_coins.tether_like_usdt(chain.w3, address)


def send(usdt: Contract, fn: str, *args: Any, sender: str = OWNER) -> TxReceipt:
    """Send from an unlocked dev account; a revert raises ContractLogicError (from gas estimation)."""
    tx_hash = getattr(usdt.functions, fn)(*args).transact({"from": sender})
    receipt = usdt.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=real_coins.RECEIPT_TIMEOUT_S)
    assert receipt["status"] == 1
    return receipt


def transfers(usdt: Contract, receipt: TxReceipt) -> list[tuple[str, str, int]]:
    logged = usdt.events.Transfer().process_receipt(receipt, errors=DISCARD)  # other events: not Transfers
    return [(e["args"]["from"], e["args"]["to"], e["args"]["value"]) for e in logged]


def outputs(name: str) -> list[str]:
    """The output types of a function in the committed artifact's ABI."""
    abi: list[dict[str, Any]] = real_coins.tether_like_artifact()["abi"]
    (entry,) = [e for e in abi if e["type"] == "function" and e["name"] == name]
    return [o["type"] for o in entry["outputs"]]


def test_the_abi_has_usdt_types(usdt: Contract) -> None:
    assert outputs("decimals") == ["uint256"]
    assert outputs("name") == outputs("symbol") == ["string"]
    assert outputs("transfer") == outputs("transferFrom") == outputs("approve") == []
    assert (usdt.functions.name().call(), usdt.functions.symbol().call()) == ("Tether USD", "USDT")
    assert usdt.functions.decimals().call() == 6
    # A transfer answers with no data at all: a caller that insists on a bool gets nothing to decode.
    data = usdt.encode_abi("transfer", args=[BOB, 1])
    assert usdt.w3.eth.call({"from": OWNER, "to": usdt.address, "data": data}) == b""


def test_the_constructor_issue_and_redeem_log_no_transfer(chain: Anvil, usdt: Contract) -> None:
    (deployment,) = chain.w3.eth.get_block(1)["transactions"]  # the deployment is the first transaction
    assert isinstance(deployment, bytes)
    creation = chain.w3.eth.get_transaction_receipt(deployment)
    assert creation["contractAddress"] == usdt.address and creation["logs"] == []
    assert usdt.functions.balanceOf(OWNER).call() == usdt.functions.totalSupply().call() == INITIAL

    issued = send(usdt, "issue", 5 * 10**6)
    assert transfers(usdt, issued) == [] and len(issued["logs"]) == 1
    assert [e["args"]["amount"] for e in usdt.events.Issue().process_receipt(issued)] == [5 * 10**6]
    redeemed = send(usdt, "redeem", 2 * 10**6)
    assert transfers(usdt, redeemed) == [] and len(redeemed["logs"]) == 1  # Redeem only
    assert usdt.functions.balanceOf(OWNER).call() == usdt.functions.totalSupply().call() == INITIAL + 3 * 10**6
    with pytest.raises(ContractLogicError):
        send(usdt, "issue", 1, sender=ALICE)  # owner only


def test_a_fee_is_logged_to_the_owner_first_and_capped(usdt: Contract) -> None:
    send(usdt, "transfer", ALICE, 5_000 * 10**6)
    send(usdt, "setParams", 10, 1)  # 0.10 %, at most 1 whole token
    assert (usdt.functions.basisPointsRate().call(), usdt.functions.maximumFee().call()) == (10, 10**6)

    small = send(usdt, "transfer", BOB, 100 * 10**6, sender=ALICE)  # 0.10 % of 100 = 0.1
    assert transfers(usdt, small) == [(ALICE, OWNER, 100_000), (ALICE, BOB, 99_900_000)]
    large = send(usdt, "transfer", BOB, 2_000 * 10**6, sender=ALICE)  # 0.10 % of 2000 = 2: capped at 1
    assert transfers(usdt, large) == [(ALICE, OWNER, 10**6), (ALICE, BOB, 1_999 * 10**6)]
    assert usdt.functions.balanceOf(BOB).call() == 99_900_000 + 1_999 * 10**6

    send(usdt, "setParams", 19, 0)  # a 0 maximum: no fee, one log
    assert transfers(usdt, send(usdt, "transfer", BOB, 10**6, sender=ALICE)) == [(ALICE, BOB, 10**6)]
    for basis_points, max_fee in ((20, 1), (1, 50)):  # USDT's hard limits: below 20 and below 50
        with pytest.raises(ContractLogicError):
            send(usdt, "setParams", basis_points, max_fee)


def test_pause_and_the_blacklist_stop_transfers(usdt: Contract) -> None:
    send(usdt, "transfer", ALICE, 10 * 10**6)
    send(usdt, "pause")
    with pytest.raises(ContractLogicError):
        send(usdt, "transfer", BOB, 1, sender=ALICE)
    send(usdt, "unpause")
    send(usdt, "addBlackList", ALICE)
    assert usdt.functions.isBlackListed(ALICE).call() and usdt.functions.getBlackListStatus(ALICE).call()
    with pytest.raises(ContractLogicError):
        send(usdt, "transfer", BOB, 1, sender=ALICE)
    send(usdt, "transfer", ALICE, 1)  # a blacklisted address may still receive
    destroyed = send(usdt, "destroyBlackFunds", ALICE)
    assert transfers(usdt, destroyed) == [] and usdt.functions.balanceOf(ALICE).call() == 0
    send(usdt, "removeBlackList", ALICE)


def test_approve_from_a_non_zero_allowance_must_go_through_zero(usdt: Contract) -> None:
    send(usdt, "approve", BOB, 5, sender=ALICE)
    with pytest.raises(ContractLogicError):
        send(usdt, "approve", BOB, 6, sender=ALICE)
    send(usdt, "approve", BOB, 0, sender=ALICE)
    send(usdt, "approve", BOB, 6, sender=ALICE)
    assert usdt.functions.allowance(ALICE, BOB).call() == 6
    send(usdt, "transfer", ALICE, 10)
    moved = send(usdt, "transferFrom", ALICE, OWNER, 4, sender=BOB)
    assert transfers(usdt, moved) == [(ALICE, OWNER, 4)] and usdt.functions.allowance(ALICE, BOB).call() == 2


def test_after_deprecate_the_views_and_transfers_are_forwarded(chain: Anvil, usdt: Contract) -> None:
    """No upgraded USDT is deployed here: a TestStablecoin stands in for the views (it has balanceOf and
    totalSupply, not transferByLegacy), which shows the calls leave this contract."""
    other = devchain.deploy_token(chain.w3, name="Next", symbol="NXT", decimals=6)
    devchain.mint(chain.w3, other, ALICE, 7)
    send(usdt, "deprecate", other)
    assert usdt.functions.deprecated().call()
    assert usdt.functions.upgradedAddress().call() == Web3.to_checksum_address(other)
    assert usdt.functions.balanceOf(ALICE).call() == 7 and usdt.functions.totalSupply().call() == 7
    assert usdt.functions.balances(OWNER).call() == INITIAL  # the old ledger stays readable
    with pytest.raises(ContractLogicError):  # forwarded to transferByLegacy, which the stand-in lacks
        send(usdt, "transfer", BOB, 1)
