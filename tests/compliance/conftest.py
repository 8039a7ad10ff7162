"""Fixtures for the payer screening tests (stablepay/compliance/screening.py), on a real anvil chain with real ERC-20
transfers and the real watcher.

Chain: 3 confirmations. Merchant "acme": tolerance 0.5 %, expiry 15 minutes. A 10.00 HKD request in
HKDX (6 decimals) is due 10_000_000 base units. Payers are anvil dev accounts 1, 2 and 3 (funded).
The HTTP backend talks to tests/compliance/service.py, a real screening service on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stablepay.dev import chain as devchain
from stablepay.models import ScreeningListEntry, Transfer
from tests.compliance.service import ScreeningService
from tests.ops.conftest import ops_no_approve, ops_user, ops_user2, shop_order  # noqa: F401 - fixtures

PAYER = devchain.dev_account(1).address  # checksummed
OTHER_PAYER = devchain.dev_account(2).address
THIRD_PAYER = devchain.dev_account(3).address
SERVICE_TOKEN = "scr-test-token-0123456789"
DUE = 10_000_000  # 10.00 HKD in HKDX


def screening_settings(settings: Any, **options: Any) -> None:
    """Override STABLEPAY["SCREENING_<NAME>"] for one test: screening_settings(settings, backend=...)."""
    settings.STABLEPAY = {**settings.STABLEPAY, **{f"SCREENING_{k.upper()}": v for k, v in options.items()}}


def deny(address: str, reason: str = "OFAC SDN list 2026-11-20") -> ScreeningListEntry:
    return ScreeningListEntry.objects.create(address=address, kind="deny", reason=reason)


def allow(address: str, reason: str = "known false positive, checked 2026-11-21") -> ScreeningListEntry:
    return ScreeningListEntry.objects.create(address=address, kind="allow", reason=reason)


def transfer_of(tx_hash: str) -> Transfer:
    """The live (not orphaned) ledger row of a one-log transaction."""
    return Transfer.objects.exclude(state="orphaned").get(tx_hash=tx_hash.lower())


@pytest.fixture
def service() -> Iterator[ScreeningService]:
    live = ScreeningService()
    yield live
    live.close()


@pytest.fixture
def http_backend(settings: Any, service: ScreeningService) -> ScreeningService:
    """HttpBackend against the test service, with a Bearer token and a 1 s budget."""
    screening_settings(
        settings,
        backend="stablepay.compliance.screening.HttpBackend",
        http_url=service.url,
        http_token=SERVICE_TOKEN,
        http_timeout_seconds=1.0,
    )
    return service
