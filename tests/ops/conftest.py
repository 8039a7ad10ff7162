"""Fixtures of the ops console's tests alone: requests paid by screened payers (tests/support/ops.py's
ScreenedPayments). The ops users, the exceptions made on anvil and the shop order are shared with other
directories and live in tests/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest

from stablepay.models import Merchant
from tests.support.local_chain import LocalChain
from tests.support.ops import ScreenedPayments


@pytest.fixture
def screened(local_chain: LocalChain, merchant: Merchant, settings: Any) -> ScreenedPayments:
    return ScreenedPayments(local_chain, merchant, settings)
