"""Migrations of issue 16 part 3 on a database that already holds rows (PostgreSQL; the demo's SQLite runs
the same migrations in tests/ledger/test_base_units_exact.py and `manage.py migrate`):

- 0015 backfills every existing payment request's `fx_rates` with the FX table as it stands at migration
  time (the built-in defaults overridden by the stored rows), so ops decisions on old requests are valued
  at a recorded table, never the live one afterwards;
- 0017 rewrites webhook deliveries that an older version left holding the receiver's response body or the
  HTTP client's exception text (which could carry the URL) in `last_error` to the short reason the
  current code stores: a kept short reason, "HTTP <code> <phrase>", "redirect not followed", "" for a 2xx,
  or "connection failed" without a status.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from stablepay.models import PaymentRequest, WebhookDelivery
from stablepay.webhooks import target as webhook_target

BEFORE = [("stablepay", "0014_base_units_exact")]
BODY = "<html><body>Internal error at https://hooks.example/cb?token=s3cr3t</body></html>"
OLD_ROWS = [
    # (last_status_code, last_error as an older version stored it, what the migration leaves)
    (500, BODY, "HTTP 500 Internal Server Error"),
    (404, "Not Found: no route /hooks", "HTTP 404 Not Found"),
    (302, "<a href='https://evil.example'>moved</a>", "redirect not followed"),
    (599, "upstream said no", "HTTP 599"),
    (
        None,
        "HTTPSConnectionPool(host='hooks.example', port=443): Max retries exceeded with url: /cb?token=s3cr3t",
        "connection failed",
    ),
    (None, "connection timed out", "connection timed out"),  # already short: kept
    (503, "HTTP 503 Service Unavailable", "HTTP 503 Service Unavailable"),
    (204, "", ""),
]


@pytest.mark.django_db(transaction=True)
def test_fx_backfill_and_short_webhook_reasons_on_existing_rows() -> None:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("stablepay")
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    now = timezone.now()
    chain = apps.get_model("stablepay", "Chain").objects.create(chain_id=31337, name="Local", rpc_urls=[])
    token = apps.get_model("stablepay", "Token").objects.create(
        chain=chain, address="0x" + "11" * 20, symbol="USDC", decimals=6, currency="USD"
    )
    merchant = apps.get_model("stablepay", "Merchant").objects.create(
        slug="old", name="Old", xpub="xpub-old", api_key_hash="b" * 64, webhook_url="https://hooks.example/cb"
    )
    apps.get_model("stablepay", "FxRate").objects.create(base="USD", quote="HKD", rate=Decimal("7.75"))
    request = apps.get_model("stablepay", "PaymentRequest").objects.create(
        merchant=merchant,
        token=token,
        order_reference="OLD-1",
        amount=Decimal("77.50"),
        currency="HKD",
        rate=Decimal("0.129032258064516129"),
        amount_due_base_units=Decimal(10_000_000),
        pay_to="0x" + "22" * 20,
        derivation_index=0,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        watch_until=now + timedelta(days=7),
    )
    Delivery = apps.get_model("stablepay", "WebhookDelivery")
    ids = [
        Delivery.objects.create(
            merchant=merchant,
            payment_request=request,
            type="payment_request.created",
            payload={},
            created_at=now,
            attempts=1,
            last_status_code=status,
            last_error=stored,
        ).pk
        for status, stored, _ in OLD_ROWS
    ]

    executor = MigrationExecutor(connection)
    executor.migrate(latest)

    # 0015: the table at migration time, the stored USD/HKD over the built-in default.
    assert PaymentRequest.objects.get(pk=request.pk).fx_rates == {"HKD/MOP": "1.03", "USD/HKD": "7.75"}
    # 0017: only short reasons of ours remain, each what the current code would have stored.
    for pk, (status, _, expected) in zip(ids, OLD_ROWS, strict=True):
        stored = WebhookDelivery.objects.get(pk=pk).last_error
        assert stored == expected, (status, stored)
        assert webhook_target.shown_reason(stored) == stored
        if status is not None and status >= 300:
            assert stored == webhook_target.status_reason(status)
    assert "s3cr3t" not in "".join(WebhookDelivery.objects.values_list("last_error", flat=True))
