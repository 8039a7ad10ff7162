"""Run inside `manage.py shell` on a fresh, fully migrated SQLite database (tests/compliance/test_ledger_rules.py).

Lists the triggers migration 0012 must leave on SQLite (it rebuilds the transfer table, which drops 0011's
triggers), then tries to rewrite the screening columns of transfers in each outcome, through the ORM and
raw SQL, and prints one `RESULT {...}` JSON line with what each attempt did.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from stablepay.models import Chain, Merchant, PaymentRequest, Token, Transfer
from tests.support import sqlite_probe

assert connection.vendor == "sqlite"
results: dict[str, Any] = {}


def attempt(name: str, fn: Any) -> None:
    sqlite_probe.attempt(results, name, fn)


def raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


with connection.cursor() as cursor:
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    results["triggers"] = [row[0] for row in cursor.fetchall()]

now = datetime.now(UTC)
chain = Chain.objects.create(chain_id=31337, name="Anvil", confirmations=2)
token = Token.objects.create(chain=chain, address="0x" + "a1" * 20, symbol="HKDX", decimals=6, currency="HKD")
merchant = Merchant.objects.create(slug="m", name="M", xpub="xpub-m", api_key_hash="a" * 64)
pr = PaymentRequest.objects.create(
    merchant=merchant,
    token=token,
    order_reference="R-1",
    amount=Decimal("10.00"),
    currency="HKD",
    rate=Decimal(1),
    amount_due_base_units=Decimal(10_000_000),
    pay_to="0x" + "1" * 40,
    derivation_index=0,
    created_at=now,
    expires_at=now + timedelta(minutes=15),
    watch_until=now + timedelta(days=7),
)


def transfer(i: int, outcome: str) -> int:
    return Transfer.objects.create(
        chain=chain,
        token=token,
        payment_request=pr,
        tx_hash=f"0x{i:064x}",
        log_index=i,
        block_number=100 + i,
        block_hash=f"0x{i + 1000:064x}",
        block_timestamp=now,
        from_address="0x" + "f" * 40,
        to_address=pr.pay_to,
        amount_base_units=Decimal(10_000_000),
        screening=outcome,
        screening_detail=f"first: {outcome}",
        screened_at=now,
    ).pk


clear, hit, failed_open, failed_closed, legacy = (
    transfer(i, outcome) for i, outcome in enumerate(["clear", "hit", "failed_open", "failed_closed", ""], start=1)
)
later = now + timedelta(minutes=1)
# Answered: never rewritten, column by column, through the ORM and raw SQL.
attempt("clear_to_hit_orm", lambda: Transfer.objects.filter(pk=clear).update(screening="hit"))
attempt("clear_detail_raw", lambda: raw("UPDATE stablepay_transfer SET screening_detail = 'x' WHERE id = %s", [clear]))
attempt("clear_time_orm", lambda: Transfer.objects.filter(pk=clear).update(screened_at=later))
attempt("hit_to_clear_orm", lambda: Transfer.objects.filter(pk=hit).update(screening="clear"))
attempt("hit_to_clear_raw", lambda: raw("UPDATE stablepay_transfer SET screening = 'clear' WHERE id = %s", [hit]))
attempt("hit_to_unscreened_raw", lambda: raw("UPDATE stablepay_transfer SET screening = '' WHERE id = %s", [hit]))
# Unanswered: a retry moves screened_at, an answer is written once.
attempt("open_retry_time", lambda: Transfer.objects.filter(pk=failed_open).update(screened_at=later))
attempt(
    "open_to_hit",
    lambda: Transfer.objects.filter(pk=failed_open).update(screening="hit", screening_detail="late hit"),
)
attempt("open_hit_again_to_clear", lambda: Transfer.objects.filter(pk=failed_open).update(screening="clear"))
SET_SCREENING = "UPDATE stablepay_transfer SET screening = %s WHERE id = %s"
attempt(
    "closed_to_clear_raw",
    lambda: raw(
        "UPDATE stablepay_transfer SET screening = 'clear', screened_at = %s WHERE id = %s", [later, failed_closed]
    ),
)

attempt("closed_clear_again_raw", lambda: raw(SET_SCREENING, ["hit", failed_closed]))
attempt("legacy_screened_once", lambda: Transfer.objects.filter(pk=legacy).update(screening="clear"))
# 0011's rules on the rebuilt table still hold, next to the screening one.
attempt("amount_after_rebuild", lambda: Transfer.objects.filter(pk=clear).update(amount_base_units=Decimal(1)))
attempt("delete_after_rebuild", lambda: raw("DELETE FROM stablepay_transfer WHERE id = %s", [clear]))
attempt("tx_hash_after_rebuild", lambda: Transfer.objects.filter(pk=clear).update(tx_hash="0x0"))
attempt("confirm_after_rebuild", lambda: Transfer.objects.filter(pk=clear).update(state="confirmed"))
attempt("reviewed_after_rebuild", lambda: Transfer.objects.filter(pk=clear).update(reviewed=True))
attempt("unreviewed_after_rebuild", lambda: Transfer.objects.filter(pk=clear).update(reviewed=False))
results["final"] = dict(Transfer.objects.order_by("pk").values_list("log_index", "screening"))
print("RESULT " + json.dumps(results))
