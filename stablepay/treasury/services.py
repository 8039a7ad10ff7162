"""`stablepay_sweep` (CONTRACT §7): from the ledger to a sweep on chain.

The ledger says which forwarder deposit addresses of a chain hold money (confirmed transfers of the token);
for a token the ledger does not know (an ERC-20 sent by mistake) every forwarder deposit address of the chain
is a candidate. `treasury.sweep.plan` then reads what each really holds, so the plan moves what is on chain,
never what the ledger assumed. The result is sent with the gas-only sweeper key, or written unsigned for the
merchant's own wallet (raw transactions plus a Safe Transaction Builder batch). Nothing to sweep is not an
error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from eth_utils import is_hex_address, to_checksum_address
from web3 import Web3

from stablepay.errors import InvalidInput
from stablepay.models import Chain, PaymentRequest, Token, TransferState
from stablepay.money import ceil_fraction
from stablepay.treasury.sweep import Deposit, Plan, Sent, plan, send, unsigned_document

_DECIMALS = [
    {
        "name": "decimals",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    }
]


@dataclass
class SweepResult:
    chain_id: int
    plans: list[Plan] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    unsigned_path: Path | None = None

    @property
    def addresses(self) -> int:
        return sum(p.addresses for p in self.plans)

    def summary(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "tokens": [{"token": p.token, "addresses": p.addresses, "base_units": str(p.total)} for p in self.plans],
            "transactions": [
                {"tx_hash": s.tx_hash, "block": s.block_number, "gas_used": s.gas_used} for s in self.sent
            ],
            "unsigned_file": str(self.unsigned_path) if self.unsigned_path else None,
        }


def forwarder_deposits(chain: Chain, *, token: Token | None) -> list[Deposit]:
    """The chain's forwarder deposit addresses worth checking: those with a confirmed transfer of `token`
    in the ledger, or all of them when the token is not registered (None)."""
    requests = PaymentRequest.objects.filter(token__chain=chain).exclude(deposit_salt="")
    if token is not None:
        requests = requests.filter(transfers__token=token, transfers__state=TransferState.CONFIRMED)
    rows = requests.order_by("created_at").values_list("pay_to", "deposit_salt").distinct()
    return [Deposit(address=to_checksum_address(pay_to), salt=bytes.fromhex(salt[2:])) for pay_to, salt in rows]


def _tokens(w3: Web3, chain: Chain, token_arg: str | None) -> list[tuple[str, Token | None, int | None]]:
    """(address, registered token or None, decimals or None) for each token to sweep."""
    if not token_arg:
        return [(t.address, t, t.decimals) for t in chain.tokens.order_by("symbol")]
    registered = chain.tokens.filter(symbol=token_arg).first() or (
        chain.tokens.filter(address__iexact=token_arg).first() if is_hex_address(token_arg) else None
    )
    if registered is not None:
        return [(registered.address, registered, registered.decimals)]
    if not is_hex_address(token_arg):
        raise InvalidInput("token", f"{token_arg!r} is neither a token of chain {chain.chain_id} nor an address")
    address = to_checksum_address(token_arg)
    try:
        decimals: int | None = int(w3.eth.contract(address=address, abi=_DECIMALS).functions.decimals().call())
    except Exception:  # a token without decimals(): only --min-amount 0 can be read for it
        decimals = None
    return [(address, None, decimals)]


def _min_base_units(min_amount: Decimal, decimals: int | None, token: str) -> int:
    if min_amount == 0:
        return 0
    if decimals is None:
        raise InvalidInput("min_amount", f"token {token} has no decimals(): give --min-amount 0")
    return ceil_fraction(Fraction(min_amount) * 10**decimals)  # a minimum: a part of a base unit rounds up


def sweep_run(
    *,
    chain_id: int,
    token: str | None = None,
    min_amount: Decimal = Decimal(0),
    unsigned_path: Path | None = None,
    sweeper_key: str = "",
    w3: Web3 | None = None,
) -> SweepResult:
    """Plan the chain's sweep and send it (sweeper key) or write it (unsigned_path). One of the two is needed
    when there is something to sweep."""
    chain = Chain.objects.filter(chain_id=chain_id).first()
    if chain is None:
        raise InvalidInput("chain_id", f"no registered chain with id {chain_id}")
    if min_amount < 0:
        raise InvalidInput("min_amount", "must be 0 or more")
    if unsigned_path is None and not sweeper_key:
        raise InvalidInput("unsigned", "give --unsigned FILE, or set STABLEPAY_SWEEPER_KEY to send the sweep")
    w3 = w3 or Web3(Web3.HTTPProvider(chain.rpc_urls[0], request_kwargs={"timeout": 30}))
    result = SweepResult(chain_id=chain_id)
    for address, registered, decimals in _tokens(w3, chain, token):
        deposits = forwarder_deposits(chain, token=registered)
        if not deposits:
            continue
        found = plan(w3, token=address, deposits=deposits, min_amount=_min_base_units(min_amount, decimals, address))
        if found.addresses:
            found.deploy_factory = found.deploy_factory and not any(p.deploy_factory for p in result.plans)
            result.plans.append(found)
    if not result.plans:
        return result
    if unsigned_path is not None:
        unsigned_path.write_text(
            json.dumps(unsigned_document(result.plans, chain_id=chain_id), indent=2) + "\n", encoding="utf-8"
        )
        result.unsigned_path = unsigned_path
    else:
        for found in result.plans:
            result.sent.extend(send(w3, found, sweeper_key=sweeper_key))
    return result
