"""Run inside `manage.py shell` on a fresh, fully migrated SQLite database (tests/ledger/test_base_units_exact.py).

Takes the database back to 0013 (before migration 0014), writes amounts as the old decimal columns held
them, migrates forward again, then reads them back, tries to store what the new columns must refuse, and
compares and sorts amounts of different lengths in SQL. Prints one `RESULT {...}` JSON line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from stablepay.models import PaymentRequest, Transfer
from tests.support import sqlite_probe

assert connection.vendor == "sqlite"
BEFORE = [("stablepay", "0013_header_chain")]
results: dict[str, Any] = {}


def sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall()) if cursor.description else []


def triggers() -> list[str]:
    return [name for (name,) in sql("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")]


def attempt(name: str, fn: Any) -> None:
    sqlite_probe.attempt(results, name, fn)


def columns() -> dict[str, str]:
    found = {}
    for table in ("stablepay_paymentrequest", "stablepay_transfer"):
        for row in sql(f"PRAGMA table_info({table})"):
            if row[1].endswith("base_units"):
                found[f"{table}.{row[1]}"] = row[2]
    return found


results["triggers_latest"] = triggers()
results["columns_latest"] = columns()

# Back to 0013: the old decimal columns, with rows written through the models of that time.
MigrationExecutor(connection).migrate(BEFORE)
results["triggers_0013"] = triggers()
results["columns_0013"] = columns()
old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
now = datetime.now(UTC)
chain = old.get_model("stablepay", "Chain").objects.create(chain_id=31337, name="Anvil", confirmations=2)
token = old.get_model("stablepay", "Token").objects.create(
    chain=chain, address="0x" + "a1" * 20, symbol="HKDE", decimals=18, currency="HKD"
)
merchant = old.get_model("stablepay", "Merchant").objects.create(
    slug="m", name="M", xpub="xpub-m", api_key_hash="a" * 64
)
request = old.get_model("stablepay", "PaymentRequest").objects.create(
    merchant=merchant,
    token=token,
    order_reference="OLD-1",
    amount=Decimal("100.00"),
    currency="MOP",
    rate=Decimal(1),
    amount_due_base_units=Decimal(97087378640776699030),
    amount_paid_base_units=Decimal(10_000_000),
    pay_to="0x" + "1" * 40,
    derivation_index=0,
    created_at=now,
    expires_at=now + timedelta(minutes=15),
    watch_until=now + timedelta(days=7),
)
OldTransfer = old.get_model("stablepay", "Transfer")
for i, amount in enumerate([0, 10_000_000]):
    OldTransfer.objects.create(
        chain=chain,
        token=token,
        payment_request=request,
        tx_hash=f"0x{i:064x}",
        log_index=i,
        block_number=100 + i,
        block_hash=f"0x{i + 1000:064x}",
        block_timestamp=now,
        from_address="0x" + "f" * 40,
        to_address=request.pay_to,
        amount_base_units=Decimal(amount),
    )
results["stored_0013"] = sql(
    "SELECT typeof(amount_due_base_units), amount_due_base_units, typeof(amount_paid_base_units) "
    "FROM stablepay_paymentrequest"
)[0]

# Forward again, through 0014, with those rows in place.
warnings: list[str] = []


class Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        warnings.append(record.getMessage())


logging.getLogger("stablepay.migrations").addHandler(Collect())
executor = MigrationExecutor(connection)
executor.migrate(executor.loader.graph.leaf_nodes())
results["warnings"] = warnings
results["triggers_migrated"] = triggers()
results["columns_migrated"] = columns()
results["raw_request"] = sql("SELECT amount_due_base_units, amount_paid_base_units FROM stablepay_paymentrequest")[0]
results["raw_transfers"] = [v for (v,) in sql("SELECT amount_base_units FROM stablepay_transfer ORDER BY id")]
pr = PaymentRequest.objects.get()
results["orm_request"] = [str(pr.amount_due_base_units), str(pr.amount_paid_base_units)]


def raw(query: str, params: list[Any]) -> None:
    sql(query, params)


# What the columns refuse, from any client.
attempt("raw_unpadded", lambda: raw("UPDATE stablepay_paymentrequest SET amount_paid_base_units = '5'", []))
attempt("raw_float", lambda: raw("UPDATE stablepay_paymentrequest SET amount_paid_base_units = 5.0", []))
attempt("raw_integer", lambda: raw("UPDATE stablepay_paymentrequest SET amount_paid_base_units = 5", []))
attempt("raw_sign", lambda: raw("UPDATE stablepay_paymentrequest SET amount_paid_base_units = %s", ["-" + "0" * 77]))
attempt("orm_negative", lambda: PaymentRequest.objects.update(amount_paid_base_units=-1))
attempt("orm_zero_due", lambda: PaymentRequest.objects.update(amount_due_base_units=0))
attempt("transfer_amount_changed", lambda: Transfer.objects.filter(log_index=1).update(amount_base_units=7))
try:
    PaymentRequest.objects.update(amount_paid_base_units=Decimal("1.5"))
    results["orm_fraction"] = "ok"
except ValueError as exc:
    results["orm_fraction"] = "refused: " + str(exc)
attempt("orm_uint256_max", lambda: PaymentRequest.objects.update(amount_paid_base_units=2**256 - 1))
results["orm_uint256_max_read"] = str(PaymentRequest.objects.get().amount_paid_base_units)

# Compare and sort in SQL: amounts of different lengths, as numbers.
amounts = [2**256 - 1, 10**21 + 7, 9, 10, 123_456_789, 10**20, 10**77]
for i, amount in enumerate(amounts, start=10):
    Transfer.objects.create(
        chain_id=pr.token.chain_id,
        token=pr.token,
        payment_request=pr,
        tx_hash=f"0x{i:064x}",
        log_index=i,
        block_number=100 + i,
        block_hash=f"0x{i + 1000:064x}",
        block_timestamp=now,
        from_address="0x" + "f" * 40,
        to_address=pr.pay_to,
        amount_base_units=amount,
    )
ordered = Transfer.objects.order_by("amount_base_units").values_list("amount_base_units", flat=True)
results["ordered"] = [str(v) for v in ordered]
results["gt_10"] = sorted(
    str(v) for v in Transfer.objects.filter(amount_base_units__gt=10).values_list("amount_base_units", flat=True)
)
results["lte_10"] = sorted(
    str(v) for v in Transfer.objects.filter(amount_base_units__lte=10).values_list("amount_base_units", flat=True)
)

results["exact"] = Transfer.objects.filter(amount_base_units=10**21 + 7).count()
results["in"] = Transfer.objects.filter(amount_base_units__in=[9, 2**256 - 1]).count()
try:
    results["sql_sum"] = str(Transfer.objects.aggregate(total=Sum("amount_base_units"))["total"])
except ValueError as exc:
    results["sql_sum"] = "refused: " + str(exc)
print("RESULT " + json.dumps(results, default=str))
