"""Forwarder deposit addresses (issue 18, CONTRACT §7): computed off-line, with no key, swept by anyone to
the merchant's settlement address. The contract is contracts/ForwarderFactory.sol.

    salt      = settlement address (20 bytes) ++ request number (12 bytes)
    deposit   = CREATE2(FACTORY, salt, keccak256(Forwarder creation code ++ abi.encode(settlement)))
    FACTORY   = CREATE2(DEPLOYER, FACTORY_SALT, keccak256(ForwarderFactory creation code))

The factory has one address on every EVM chain (deployed through the standard CREATE2 deployer, which
anvil and most chains carry), so a deposit address is the same on every chain too. The request number is
the low 96 bits of the payment request's UUID: unique across installations that share a settlement
address (a staging and a production site paying into one Safe never hand out the same address).

Everything here is pure computation (no RPC call, no database): the audit bundle's verifier and anyone
else can recompute a deposit address from (factory, salt, init-code hash, settlement).
"""

from __future__ import annotations

import json
import uuid
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_typing import ChecksumAddress
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

DEPLOYER = to_checksum_address("0x4e59b44847b379578588920ca78fbf26c0b4956c")
FACTORY_SALT = bytes(32)
# What FACTORY_SALT and the committed bytecode give: a rebuilt contract that moved it fails the tests
# (tests/treasury/test_forwarder_contract.py), since every deposit address already handed out depends on it.
EXPECTED_FACTORY_ADDRESS = "0x3a98e60F78d617369D95Dde31D225c0bd4F95b20"
REQUEST_NUMBER_BITS = 96
_ARTIFACTS = Path(__file__).resolve().with_name("contracts")
_SWEEP = function_signature_to_4byte_selector("sweep(address,bytes32[])")


class ForwarderError(ValueError):
    """A settlement address, salt or request number that cannot make a deposit address."""


@cache
def artifact(name: str) -> dict[str, Any]:
    """The committed {"abi", "bytecode"} of ForwarderFactory or Forwarder (contracts/build.sh)."""
    with (_ARTIFACTS / f"{name}.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _bytecode(name: str) -> bytes:
    return bytes.fromhex(artifact(name)["bytecode"].removeprefix("0x"))


def create2_address(deployer: str, salt: bytes, init_code_hash: bytes) -> ChecksumAddress:
    """The EIP-1014 address: keccak256(0xff ++ deployer ++ salt ++ init_code_hash)[12:]."""
    return to_checksum_address(keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + init_code_hash)[12:])


@cache
def factory_address() -> ChecksumAddress:
    return create2_address(DEPLOYER, FACTORY_SALT, keccak(_bytecode("ForwarderFactory")))


def _address_bytes(address: str, *, field: str = "settlement address") -> bytes:
    text = (address or "").strip()
    if len(text) != 42 or not text.startswith("0x"):
        raise ForwarderError(f"the {field} must be 0x followed by 40 hex digits")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError as exc:
        raise ForwarderError(f"the {field} must be 0x followed by 40 hex digits") from exc
    if raw == bytes(20):
        raise ForwarderError(f"the {field} cannot be the zero address")
    return raw


def settlement_addresses(value: Any) -> dict[str, ChecksumAddress]:
    """A merchant's {"<chain_id>": "0x..."} checked: chain ids are positive integers, each address a real one
    (checksummed when mixed-case); returns it with checksummed addresses. Raises ForwarderError naming the entry."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ForwarderError('must be a JSON object {"<chain_id>": "0x..."}') from exc
    if not isinstance(value, dict):
        raise ForwarderError('must be an object {"<chain_id>": "0x..."}')
    found: dict[str, ChecksumAddress] = {}
    for key, address in value.items():
        chain_id = str(key).strip()
        if not chain_id.isdigit() or int(chain_id) <= 0:
            raise ForwarderError(f"{key!r} is not a chain id (a positive integer)")
        if not isinstance(address, str):
            raise ForwarderError(f"the address for chain {chain_id} must be a string")
        raw = _address_bytes(address, field=f"settlement address for chain {chain_id}")
        checksummed = to_checksum_address(raw)
        text = address.strip()
        if text[2:] != text[2:].lower() and text[2:] != text[2:].upper() and text != checksummed:
            raise ForwarderError(f"the settlement address for chain {chain_id} has a wrong checksum")
        found[str(int(chain_id))] = checksummed
    return dict(sorted(found.items(), key=lambda item: int(item[0])))


@lru_cache(maxsize=256)
def init_code_hash(settlement: str) -> bytes:
    """keccak256 of the Forwarder's init code for this settlement address."""
    settlement_bytes = _address_bytes(settlement)
    return keccak(_bytecode("Forwarder") + encode(["address"], ["0x" + settlement_bytes.hex()]))


def request_number(request_id: uuid.UUID | str) -> int:
    """The low 96 bits of a payment request's UUID."""
    return uuid.UUID(str(request_id)).int & ((1 << REQUEST_NUMBER_BITS) - 1)


def salt_for(settlement: str, number: int) -> bytes:
    if not 0 <= number < 1 << REQUEST_NUMBER_BITS:
        raise ForwarderError(f"a request number has at most {REQUEST_NUMBER_BITS} bits")
    return _address_bytes(settlement) + number.to_bytes(REQUEST_NUMBER_BITS // 8, "big")


def settlement_of(salt: bytes) -> ChecksumAddress:
    """The settlement address a salt names (its high 20 bytes), as the factory reads it."""
    if len(salt) != 32:
        raise ForwarderError("a salt is 32 bytes")
    return to_checksum_address(salt[:20])


def deposit_address(settlement: str, salt: bytes) -> ChecksumAddress:
    """Where a shopper pays: the CREATE2 address of the Forwarder for (salt, settlement)."""
    if settlement_of(salt).lower() != settlement.strip().lower():
        raise ForwarderError("the salt names another settlement address")
    return create2_address(factory_address(), salt, init_code_hash(to_checksum_address(settlement.strip())))


def request_deposit(settlement: str, request_id: uuid.UUID | str) -> tuple[ChecksumAddress, bytes]:
    """(deposit address, salt) of a payment request paying into `settlement`."""
    salt = salt_for(settlement, request_number(request_id))
    return deposit_address(settlement, salt), salt


def deploy_factory_transaction() -> dict[str, Any]:
    """The transaction that deploys the factory through the CREATE2 deployer (anyone may send it)."""
    return {"to": DEPLOYER, "data": "0x" + (FACTORY_SALT + _bytecode("ForwarderFactory")).hex(), "value": 0}


def sweep_transaction(token: str, salts: list[bytes]) -> dict[str, Any]:
    """`sweep(token, salts)` on the factory: moves each salt's deposit balance of `token` to its settlement."""
    token_address = to_checksum_address("0x" + _address_bytes(token, field="token address").hex())
    data = _SWEEP + encode(["address", "bytes32[]"], [token_address, salts])
    return {"to": factory_address(), "data": "0x" + data.hex(), "value": 0}
