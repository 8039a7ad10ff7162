"""P9, gas per swept deposit address (issue 18): forwarder sweeps against the xpub way, in the same run.

Chain: a private anvil, our test stablecoin (6 decimals). Every deposit address received one payment from
a shopper account; the settlement address already holds the coin (as it does after the first sweep).

- **Forwarder** (contracts/ForwarderFactory.sol): one `sweep(token, salts)` transaction for a batch of 1,
  10 and 100 deposit addresses; gas used / addresses. Anyone may send it; the merchant signs nothing.
- **xpub way** (the mode stablepay had before): each deposit address is an ordinary account with its own
  key, so moving its coins takes an ETH top-up for gas from a funding account (a plain transfer) and then a
  token transfer signed by the deposit address's key; both counted, per address, for the same batch sizes
  (keys held by this benchmark only).
- **Floor**: a bare ERC-20 transfer between two warm accounts (both already hold the coin, the sender keeps
  some), the cheapest a coin can move.

Target: at most 60,000 gas per address in a batch of 100, and below the xpub way.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from stablepay.chain import forwarder
from stablepay.dev import chain as devchain

BATCHES = (1, 10, 100)
PAYMENT = 1_680_000_000  # HK$1,680.00 in 6-decimal base units
TARGET_PER_ADDRESS = 60_000
GAS = 30_000_000


def _send(w3: Web3, tx: dict[str, Any], sender: str) -> int:
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({**tx, "from": sender, "gas": GAS}))  # type: ignore[arg-type]
    assert receipt["status"] == 1, receipt
    return int(receipt["gasUsed"])


def _signed(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> int:
    full = {
        **tx,
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address),
        "chainId": w3.eth.chain_id,
        "gasPrice": w3.eth.gas_price,
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(full).raw_transaction)
    )
    assert receipt["status"] == 1, receipt
    return int(receipt["gasUsed"])


def _forwarder(w3: Web3, token: str, settlement: str, payer: str, n: int) -> int:
    made = [forwarder.request_deposit(settlement, uuid.uuid4()) for _ in range(n)]
    for address, _ in made:
        devchain.transfer(w3, token, address, PAYMENT, sender_index=1)
    return _send(w3, forwarder.sweep_transaction(token, [salt for _, salt in made]), payer)


def _xpub(w3: Web3, token: str, settlement: str, funder: str, n: int) -> tuple[int, int]:
    """(gas of the ETH top-ups, gas of the token transfers) for n deposit accounts."""
    contract = devchain.token_contract(w3, token)
    accounts = [Account.create() for _ in range(n)]
    for account in accounts:
        devchain.transfer(w3, token, account.address, PAYMENT, sender_index=1)
    transfer_gas = contract.functions.transfer(settlement, PAYMENT).estimate_gas({"from": accounts[0].address})
    top_ups = sum(_send(w3, {"to": a.address, "value": transfer_gas * w3.eth.gas_price * 2}, funder) for a in accounts)
    moves = sum(
        _signed(
            w3,
            a,
            {
                "to": contract.address,
                "data": contract.encode_abi("transfer", args=[settlement, PAYMENT]),
                "gas": transfer_gas * 2,
            },
        )
        for a in accounts
    )
    return top_ups, moves


def bench() -> dict[str, Any]:
    from tests.support.services import Anvil

    t0 = time.monotonic()
    with Anvil("--gas-limit", str(GAS * 2)) as node:
        w3 = node.w3
        token = devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6)
        devchain.mint(w3, token, devchain.dev_account(1).address, 10**18)
        settlement = devchain.dev_account(5).address
        devchain.mint(w3, token, settlement, 1)
        sweeper = devchain.dev_account(7).address
        deploy_gas = _send(w3, forwarder.deploy_factory_transaction(), sweeper)
        forwarder_gas = {n: _forwarder(w3, token, settlement, sweeper, n) for n in BATCHES}
        xpub_gas = {n: _xpub(w3, token, settlement, devchain.dev_account(0).address, n) for n in BATCHES}
        floor = devchain.token_contract(w3, token)
        devchain.mint(w3, token, devchain.dev_account(2).address, 1)
        floor_gas = _send(
            w3,
            {"to": token, "data": floor.encode_abi("transfer", args=[devchain.dev_account(2).address, PAYMENT])},
            devchain.dev_account(1).address,
        )
    per = {n: forwarder_gas[n] / n for n in BATCHES}
    xpub_per = {n: sum(xpub_gas[n]) / n for n in BATCHES}
    top_up = xpub_gas[100][0] / 100
    met = per[100] <= TARGET_PER_ADDRESS and all(per[n] < xpub_per[n] for n in (10, 100))
    cells = ", ".join(f"{n}: {per[n]:,.0f}" for n in BATCHES)
    xpub_cells = ", ".join(f"{n}: {xpub_per[n]:,.0f}" for n in BATCHES)
    return {
        "id": "P9",
        "what": "Gas per swept deposit address (forwarder sweep)",
        "workload": (
            "anvil, test stablecoin (6 decimals), one payment per deposit address, settlement address already "
            f"holding the coin; batches of {', '.join(map(str, BATCHES))} addresses"
        ),
        "figure": f"forwarder sweep, gas per address by batch size: {cells}",
        "baseline": (
            f"xpub way (ETH top-up + token transfer signed by each address's key), same run: {xpub_cells} "
            f"(top-up {top_up:,.0f} + transfer {xpub_gas[100][1] / 100:,.0f}); floor, a bare ERC-20 transfer "
            f"between two warm accounts: {floor_gas:,}"
        ),
        "ratio": (
            f"the xpub way costs {xpub_per[100] / per[100]:.2f}x the gas at 100; "
            f"the sweep {per[100] / floor_gas:.2f}x the floor"
        ),
        "target": f"<= {TARGET_PER_ADDRESS:,} gas per address in a batch of 100, and below the xpub way",
        "met": met,
        "seconds": round(time.monotonic() - t0, 1),
        "notes": (
            f"Deploying the factory once per chain through the CREATE2 deployer: {deploy_gas:,} gas. A batch "
            f"of 1 carries the transaction's own 21,000 and the sweep's lock (set and cleared once per call). "
            "The forwarder's gas buys more than the xpub way's: no ETH is left stranded on deposit addresses, "
            "no key is held, and the merchant (or anyone) signs one transaction per batch instead of one per "
            "address. Gas used as reported by each receipt (after refunds)"
        ),
    }
