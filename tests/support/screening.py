"""Helpers of the payer screening tests (stablepay/compliance/screening.py): the payers (anvil dev accounts
1, 2 and 3, funded), a 10.00 HKD request's amount due in HKDX, the STABLEPAY screening settings of one test,
the allow and deny lists, and the ledger row of a transfer."""

from __future__ import annotations

from typing import Any

from stablepay.dev import chain as devchain
from stablepay.models import ScreeningListEntry, Transfer

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
