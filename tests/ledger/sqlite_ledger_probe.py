"""Run inside `manage.py shell` on a fresh SQLite database (tests/ledger/test_retention_sqlite.py).

Tries every way to rewrite or delete ledger rows, the allowed lifecycle moves, and the purge, and
prints one `RESULT {...}` JSON line with what each attempt did.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connection

from stablepay.ledger import retention
from stablepay.models import Chain, Event, Merchant, OpsAction, PaymentRequest, Token, Transfer
from tests.support import sqlite_probe

assert connection.vendor == "sqlite"
results: dict[str, Any] = {}


def attempt(name: str, fn: Any) -> None:
    sqlite_probe.attempt(results, name, fn)


def raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
ann, ben = User.objects.create_user("ann"), User.objects.create_user("ben")


def transfer(i: int, at: datetime) -> Transfer:
    return Transfer.objects.create(
        chain=chain,
        token=token,
        payment_request=pr,
        tx_hash=f"0x{i:064x}",
        log_index=i,
        block_number=100 + i,
        block_hash=f"0x{i + 1000:064x}",
        block_timestamp=at,
        from_address="0x" + "f" * 40,
        to_address=pr.pay_to,
        amount_base_units=Decimal(10_000_000),
    )


t = transfer(1, now)
e = Event.objects.create(payment_request=pr, at=now, status="open", note="created", actor="api")
op = OpsAction.objects.create(
    payment_request=pr,
    action="refund",
    note="twice",
    exception="overpaid",
    refund_address="0x" + "9" * 40,
    state="pending_approval",
    requested_by=ann,
    requested_at=now,
)

# Facts and deletes: refused.
attempt("transfer_update_amount", lambda: Transfer.objects.filter(pk=t.pk).update(amount_base_units=Decimal(1)))
attempt("transfer_raw_update_to", lambda: raw("UPDATE stablepay_transfer SET to_address = 'x' WHERE id = %s", [t.pk]))
attempt("transfer_update_tx_hash", lambda: Transfer.objects.filter(pk=t.pk).update(tx_hash="0x0"))
attempt("transfer_delete_orm", lambda: Transfer.objects.get(pk=t.pk).delete())
attempt("transfer_delete_queryset", lambda: Transfer.objects.all().delete())
attempt("transfer_delete_raw", lambda: raw("DELETE FROM stablepay_transfer WHERE id = %s", [t.pk]))
attempt("event_update_note", lambda: Event.objects.filter(pk=e.pk).update(note="rewritten"))
attempt("event_delete_raw", lambda: raw("DELETE FROM stablepay_event WHERE id = %s", [e.pk]))
attempt("ops_update_requester", lambda: OpsAction.objects.filter(pk=op.pk).update(requested_by=ben))
attempt("ops_delete_raw", lambda: raw("DELETE FROM stablepay_opsaction WHERE id = %s", [op.pk]))
# Lifecycle: allowed.
attempt("transfer_confirm", lambda: Transfer.objects.filter(pk=t.pk).update(state="confirmed"))
attempt("transfer_orphan", lambda: Transfer.objects.filter(pk=t.pk).update(state="orphaned"))
attempt(
    "transfer_revive_remined",
    lambda: Transfer.objects.filter(pk=t.pk).update(state="seen", block_number=200, block_hash="0x" + "2" * 64),
)
attempt("transfer_move_same_hash", lambda: Transfer.objects.filter(pk=t.pk).update(block_number=201))
attempt("transfer_reviewed", lambda: Transfer.objects.filter(pk=t.pk).update(reviewed=True))
attempt("transfer_unreviewed", lambda: Transfer.objects.filter(pk=t.pk).update(reviewed=False))
attempt(
    "ops_approve",
    lambda: OpsAction.objects.filter(pk=op.pk, state="pending_approval").update(
        state="done", decided_by=ben, decided_at=now, decision_note="ok"
    ),
)

attempt("ops_decide_again", lambda: OpsAction.objects.filter(pk=op.pk).update(state="rejected"))
attempt("ops_refund_tx", lambda: OpsAction.objects.filter(pk=op.pk).update(refund_tx_hash="0x" + "7" * 64))
attempt("ops_refund_tx_again", lambda: OpsAction.objects.filter(pk=op.pk).update(refund_tx_hash="0x" + "8" * 64))

# Retention: only rows older than the cutoff go, and only through the purge.
old = now - timedelta(days=365 * 7 + 30)
transfer(2, old)
Event.objects.create(payment_request=pr, at=old, status="open", note="old", actor="api")
attempt("old_transfer_delete_raw", lambda: raw("DELETE FROM stablepay_transfer WHERE log_index = 2", []))
results["dry_run"] = retention.purge(dry_run=True).counts
results["purge"] = retention.purge().counts
results["left"] = {
    "transfers": sorted(Transfer.objects.values_list("log_index", flat=True)),
    "events": sorted(Event.objects.values_list("note", flat=True)),
}
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM stablepay_ledger_purge_gate")
    results["gate_rows"] = cursor.fetchone()[0]
print("RESULT " + json.dumps(results))
