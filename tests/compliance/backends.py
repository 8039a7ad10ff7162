"""Custom screening backends, named in STABLEPAY["SCREENING_BACKEND"] by the tests as a deployment would
name its own: each misbehaves in one way the watcher must survive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from stablepay.compliance.screening import ScreeningBackend, Verdict


class ExplodingBackend(ScreeningBackend):
    """A bug in the backend: it raises something other than ScreeningUnavailable."""

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        raise RuntimeError("bug in the vendor's client library")


class HalfAnsweringBackend(ScreeningBackend):
    """Answers for every address but the first (sorted)."""

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        return {address: Verdict(False, "half: clear") for address in addresses[1:]}


class WrongTypeBackend(ScreeningBackend):
    """Answers True/False instead of a Verdict."""

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Any]:
        return dict.fromkeys(addresses, True)


class ChecksumKeysBackend(ScreeningBackend):
    """Answers for each address, keyed by its checksummed form (0xAbC...), flagging every one."""

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        return {to_checksum_address(address): Verdict(True, "vendor: flagged") for address in addresses}


class NotABackend:
    """Has a screen method, but is no ScreeningBackend (stablepay.E111)."""

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        return {}
