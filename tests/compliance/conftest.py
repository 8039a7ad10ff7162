"""Fixtures of the payer screening tests (stablepay/compliance/screening.py), on a real anvil chain with real ERC-20
transfers and the real watcher.

Chain: 3 confirmations. Merchant "acme": tolerance 0.5 %, expiry 15 minutes. A 10.00 HKD request in
HKDX (6 decimals) is due 10_000_000 base units. Payers are anvil dev accounts 1, 2 and 3 (funded).
The HTTP backend talks to tests/compliance/service.py, a real screening service on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.compliance.service import ScreeningService
from tests.support.screening import SERVICE_TOKEN, screening_settings


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
