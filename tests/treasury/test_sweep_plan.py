"""Planning and sending sweeps (stablepay/treasury/sweep.py) on anvil, without the ledger: balances read
on chain in JSON-RPC batches, empty and small addresses left out, transactions split to fit a block, sent
with a gas-only sweeper key, or written unsigned and executed by a real Safe from its Transaction Builder
batch."""

from __future__ import annotations

import json
import uuid

import pytest
from eth_account import Account
from web3 import Web3

from stablepay.chain import forwarder
from stablepay.dev import chain as devchain
from stablepay.treasury import sweep
from tests.support import real_coins
from tests.support.safe import SafeWallet
from tests.support.treasury import PAYER


def paid_deposits(w3: Web3, token: str, settlement: str, amounts: list[int]) -> list[sweep.Deposit]:
    made = []
    for amount in amounts:
        address, salt = forwarder.request_deposit(settlement, uuid.uuid4())
        if amount:
            devchain.transfer(w3, token, address, amount, sender_index=PAYER)
        made.append(sweep.Deposit(address=address, salt=salt))
    return made


def test_how_many_addresses_fit_one_transaction() -> None:
    assert sweep.per_transaction(30_000_000) == (15_000_000 - 100_000) // 70_000 == 212
    assert sweep.per_transaction(1_000_000_000) == sweep.MAX_PER_TRANSACTION
    assert sweep.per_transaction(100_000) == 1


def test_the_plan_reads_balances_on_chain_and_splits_into_transactions(
    w3: Web3, hkdx: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settlement = devchain.dev_account(5).address
    deposits = paid_deposits(w3, hkdx, settlement, [5_000_000, 0, 999, 7_000_000, 3_000_000, 1_000_000])
    monkeypatch.setattr(sweep, "GAS_PER_ADDRESS", 5_000_000)  # 2 addresses per transaction on anvil's 30M blocks
    planned = sweep.plan(w3, token=hkdx, deposits=deposits, min_amount=1_000)
    assert planned.deploy_factory  # a fresh chain: the factory comes first
    assert [[d.address for d, _ in batch] for batch in planned.batches] == [
        [deposits[0].address, deposits[3].address],
        [deposits[4].address, deposits[5].address],
    ]
    assert planned.total == 16_000_000 and planned.addresses == 4
    assert [tx["to"] for tx in planned.transactions] == [forwarder.DEPLOYER] + [forwarder.factory_address()] * 2


def test_sent_with_a_gas_only_key_the_money_reaches_only_the_settlement_address(w3: Web3, hkdx: str) -> None:
    settlement = devchain.dev_account(5).address
    deposits = paid_deposits(w3, hkdx, settlement, [1_680_000_000, 3_900_000_000, 1])
    sweeper = Account.create()
    w3.eth.send_transaction({"from": devchain.dev_account(0).address, "to": sweeper.address, "value": 10**18})
    before = real_coins.balance_of(w3, hkdx, settlement)
    sent = sweep.send(w3, sweep.plan(w3, token=hkdx, deposits=deposits), sweeper_key=sweeper.key.hex())
    assert len(sent) == 2 and all(s.gas_used > 0 for s in sent)  # the factory, then one sweep
    assert real_coins.balance_of(w3, hkdx, settlement) - before == 1_680_000_000 + 3_900_000_000 + 1
    assert real_coins.balance_of(w3, hkdx, sweeper.address) == 0
    assert w3.eth.get_balance(sweeper.address) < 10**18  # it paid the gas, and that is all it could do
    again = sweep.plan(w3, token=hkdx, deposits=deposits)
    assert not again.deploy_factory and again.transactions == []  # nothing left: nothing to send


def test_the_unsigned_file_is_executed_by_the_merchants_safe(w3: Web3, hkdx: str) -> None:
    wallet = SafeWallet.deploy(w3, owners=[5, 6], threshold=2)
    deposits = paid_deposits(w3, hkdx, wallet.address, [2_000_000, 3_000_000])
    document = json.loads(json.dumps(sweep.plan(w3, token=hkdx, deposits=deposits).unsigned_document()))
    assert document["chain_id"] == 31337
    assert [tx["to"] for tx in document["transactions"]] == [forwarder.DEPLOYER, forwarder.factory_address()]
    batch = document["safe_batch"]
    assert batch["meta"]["createdFromSafeAddress"] == wallet.address
    assert [tx["data"] for tx in batch["transactions"]] == [tx["data"] for tx in document["transactions"]]
    wallet.execute_batch(batch["transactions"], sender=9)
    assert real_coins.balance_of(w3, hkdx, wallet.address) == 5_000_000
