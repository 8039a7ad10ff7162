"""No network call while a row lock is held (DESIGN.md): a webhook attempt is claimed and committed first,
then posted with no lock or transaction of ours open, then its outcome is written.

The receiver, while the POST is in flight, looks at the database from its own connection: the delivery row
and the merchant row are both free to lock, and the attempt is already counted and pushed ahead by the
claim, so a second worker neither waits on a slow receiver nor sends the same try.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from stablepay.ledger import outbox
from stablepay.models import Merchant, WebhookDelivery
from stablepay.webhooks import delivery as webhooks

pytestmark = pytest.mark.django_db(transaction=True)


class Inspector:
    """Answers 204 after noting, from its own database connection, what it could lock mid-request."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    outer.seen.append(outer.inspect())
                finally:
                    connection.close()  # this thread's own connection
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def inspect() -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, rows in (("delivery", WebhookDelivery.objects.all()), ("merchant", Merchant.objects.all())):
            try:
                with transaction.atomic():
                    list(rows.select_for_update(nowait=True))
                found[name] = "free"
            except DatabaseError:
                found[name] = "locked"
        found["claimed"] = WebhookDelivery.objects.values_list("attempts", "next_attempt_at").get()
        return found


@pytest.fixture
def inspector() -> Iterator[Inspector]:
    live = Inspector()
    yield live
    live.server.shutdown()


def test_the_post_runs_with_no_row_locked_and_the_try_already_claimed(inspector: Inspector) -> None:
    now = timezone.now()
    merchant = Merchant.objects.create(
        slug="acme", name="Acme", xpub="xpub-test", webhook_url=inspector.url, webhook_secret="whsec-test-0123456789"
    )
    delivery = outbox.enqueue_merchant_event(merchant, event_type="merchant.test", data={}, now=now)
    assert delivery is not None

    assert webhooks.deliver_due(now=now) == 1

    [seen] = inspector.seen
    assert seen["delivery"] == "free" and seen["merchant"] == "free"
    assert seen["claimed"] == (1, now + webhooks.CLAIM)  # counted and pushed ahead before the POST
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.delivered_at, delivery.next_attempt_at) == (1, now, None)
    assert webhooks.deliver(delivery.pk, now=now) is False  # delivered: never sent again
    assert len(inspector.seen) == 1


def test_a_claimed_try_is_not_sent_twice(inspector: Inspector) -> None:
    now = timezone.now()
    merchant = Merchant.objects.create(
        slug="acme", name="Acme", xpub="xpub-test", webhook_url=inspector.url, webhook_secret="whsec-test-0123456789"
    )
    delivery = outbox.enqueue_merchant_event(merchant, event_type="merchant.test", data={}, now=now)
    assert delivery is not None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1, next_attempt_at=now + webhooks.CLAIM)

    assert webhooks.deliver(delivery.pk, now=now) is False  # another worker's try is in flight
    assert webhooks.deliver_due(now=now + webhooks.CLAIM - webhooks.BACKOFF[0]) == 0
    assert inspector.seen == []
    assert webhooks.deliver_due(now=now + webhooks.CLAIM) == 1  # that worker died: the claim lapsed
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.delivered_at == now + webhooks.CLAIM
