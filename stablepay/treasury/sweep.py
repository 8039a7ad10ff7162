"""Sweeps (issue 18, CONTRACT §7 `stablepay_sweep`): check what forwarder deposit addresses hold on chain,
split them into transactions that fit a block, and either send them with a gas-only sweeper key or write
them unsigned for the merchant's own wallet (raw transactions and a Safe Transaction Builder batch).

The funds can only reach the settlement address fixed in each deposit address (contracts/ForwarderFactory.sol),
so the sweeper key pays gas and nothing more; stablepay holds no key that can move money.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from web3 import Web3

from stablepay.chain import forwarder
from stablepay.treasury import safe_batch

# What one address costs in a sweep, with room to spare (bench P9 measures 50,835 in a batch of 100), and
# the share of a block's gas limit one sweep transaction may take.
GAS_PER_ADDRESS = 70_000
GAS_BASE = 100_000
BLOCK_SHARE = 0.5
MAX_PER_TRANSACTION = 500
_BALANCE_OF = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


@dataclass(frozen=True)
class Deposit:
    """A forwarder deposit address and its salt (the settlement address is the salt's high 20 bytes)."""

    address: ChecksumAddress
    salt: bytes

    @property
    def settlement(self) -> ChecksumAddress:
        return forwarder.settlement_of(self.salt)


@dataclass
class Plan:
    chain_id: int
    token: ChecksumAddress
    deploy_factory: bool
    batches: list[list[tuple[Deposit, int]]] = field(default_factory=list)  # (deposit, balance on chain)

    @property
    def transactions(self) -> list[dict[str, Any]]:
        """In order: the factory's deployment when it is missing, then one sweep per batch."""
        txs = [forwarder.deploy_factory_transaction()] if self.deploy_factory else []
        return txs + [forwarder.sweep_transaction(self.token, [d.salt for d, _ in batch]) for batch in self.batches]

    @property
    def total(self) -> int:
        return sum(amount for batch in self.batches for _, amount in batch)

    @property
    def addresses(self) -> int:
        return sum(len(batch) for batch in self.batches)

    def unsigned_document(self, *, created_at_ms: int | None = None) -> dict[str, Any]:
        """CONTRACT §7's `--unsigned` file for this plan alone."""
        return unsigned_document([self], chain_id=self.chain_id, created_at_ms=created_at_ms)


def unsigned_document(plans: Sequence[Plan], *, chain_id: int, created_at_ms: int | None = None) -> dict[str, Any]:
    """CONTRACT §7's `--unsigned` file: {"chain_id", "transactions", "safe_batch"}, the plans' transactions in
    order (the factory's deployment first when a plan needs it)."""
    settlements = sorted({d.settlement for p in plans for batch in p.batches for d, _ in batch})
    transactions = [
        {"to": to_checksum_address(tx["to"]), "data": tx["data"], "value": str(tx["value"])}
        for p in plans
        for tx in p.transactions
    ]
    addresses = sum(p.addresses for p in plans)
    moved = ", ".join(f"{p.total} base units of token {p.token}" for p in plans)
    return {
        "chain_id": chain_id,
        "transactions": transactions,
        "safe_batch": safe_batch.batch_file(
            chain_id=chain_id,
            safe_address=settlements[0] if settlements else forwarder.factory_address(),
            transactions=transactions,
            name=f"stablepay sweep: {addresses} deposit addresses",
            description=(
                f"Moves {moved} from {addresses} deposit addresses to "
                f"their settlement address{'es' if len(settlements) > 1 else ''} {', '.join(settlements)}. "
                "Anyone may execute it: the funds can reach no other address."
            ),
            created_at_ms=created_at_ms,
        ),
    }


def per_transaction(block_gas_limit: int) -> int:
    """How many addresses one sweep transaction takes, within BLOCK_SHARE of a block."""
    fits = int((block_gas_limit * BLOCK_SHARE - GAS_BASE) // GAS_PER_ADDRESS)
    return max(1, min(MAX_PER_TRANSACTION, fits))


def balances(w3: Web3, token: str, addresses: Sequence[str]) -> list[int]:
    """`balanceOf` of each address, in JSON-RPC batches of 100 calls."""
    contract = w3.eth.contract(address=to_checksum_address(token), abi=_BALANCE_OF)
    found: list[int] = []
    for start in range(0, len(addresses), 100):
        with w3.batch_requests() as batch:
            for address in addresses[start : start + 100]:
                batch.add(contract.functions.balanceOf(to_checksum_address(address)))
            found.extend(int(value) for value in batch.execute())  # type: ignore[call-overload]  # decoded uint256s
    return found


def plan(w3: Web3, *, token: str, deposits: Sequence[Deposit], min_amount: int = 0) -> Plan:
    """What to sweep of `token`: each deposit address whose balance on chain is above zero and at least
    `min_amount` base units, in transactions that fit the chain's blocks."""
    token_address = to_checksum_address(token)
    held = balances(w3, token_address, [d.address for d in deposits])
    chosen = [(d, amount) for d, amount in zip(deposits, held, strict=True) if amount > 0 and amount >= min_amount]
    size = per_transaction(int(w3.eth.get_block("latest")["gasLimit"]))
    return Plan(
        chain_id=int(w3.eth.chain_id),
        token=token_address,
        deploy_factory=not w3.eth.get_code(forwarder.factory_address()),
        batches=[chosen[i : i + size] for i in range(0, len(chosen), size)],
    )


@dataclass(frozen=True)
class Sent:
    tx_hash: str
    gas_used: int
    effective_gas_price: int
    block_number: int


def send(w3: Web3, plan_: Plan, *, sweeper_key: str, timeout: float = 120) -> list[Sent]:
    """Sign and send the plan's transactions in order with the gas-only sweeper key; wait for each."""
    account = Account.from_key(sweeper_key)
    sent: list[Sent] = []
    for tx in plan_.transactions:
        full: dict[str, Any] = {
            "to": to_checksum_address(tx["to"]),
            "data": tx["data"],
            "value": int(tx["value"]),
            "from": account.address,
            "chainId": plan_.chain_id,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        }
        full["gas"] = int(w3.eth.estimate_gas(full) * 1.2)  # type: ignore[arg-type]
        base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
        tip = int(w3.eth.max_priority_fee)
        full.update(type=2, maxPriorityFeePerGas=tip, maxFeePerGas=2 * base_fee + tip)
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(full).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
        if receipt["status"] != 1:
            raise SweepError(f"sweep transaction {Web3.to_hex(tx_hash)} reverted")
        sent.append(
            Sent(
                tx_hash=Web3.to_hex(tx_hash),
                gas_used=int(receipt["gasUsed"]),
                effective_gas_price=int(receipt.get("effectiveGasPrice", 0)),
                block_number=int(receipt["blockNumber"]),
            )
        )
    return sent


class SweepError(RuntimeError):
    """A sweep transaction failed on chain."""
