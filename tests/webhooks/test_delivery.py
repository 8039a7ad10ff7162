"""Webhooks against a live local receiver: signed per attempt, retried with backoff, one event id."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.utils import timezone

from stablepay.models import Merchant, WebhookDelivery
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks.signature import is_valid
from tests.support.local_chain import LocalChain, create_request

SECRET = "whsec-test-0123456789abcdef"


class Receiver:
    """Fails the first `failures` tries with 500, then answers 204; keeps every request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[tuple[dict[str, Any], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.seen.append((dict(self.headers), body))
                self.send_response(500 if len(outer.seen) <= outer.failures else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/stablepay"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    live = Receiver(failures=3)
    yield live
    live.server.shutdown()


def test_retried_with_backoff_until_2xx_with_one_event_id(
    local_chain: LocalChain, merchant: Merchant, receiver: Receiver
) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url=receiver.url, webhook_secret=SECRET)
    merchant.refresh_from_db()
    start = timezone.now()
    request = create_request(merchant, now=start)
    delivery = WebhookDelivery.objects.get()
    assert delivery.type == "payment_request.created"

    clock = start
    for expected_wait in (10, 60, 300):
        assert webhooks.deliver_due(now=clock) == 0
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == clock + timedelta(seconds=expected_wait)
        assert webhooks.deliver_due(now=clock + timedelta(seconds=expected_wait - 1)) == 0  # not due yet
        clock += timedelta(seconds=expected_wait)
    assert webhooks.deliver_due(now=clock) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 4 and delivery.delivered_at == clock and delivery.last_status_code == 204
    assert webhooks.deliver_due(now=clock + timedelta(days=2)) == 0  # delivered: never sent again

    assert len(receiver.seen) == 4
    ids, stamps = set(), []
    for headers, body in receiver.seen:
        signature = headers["Stablepay-Signature"]
        stamp = int(signature.split(",")[0].removeprefix("t="))
        assert is_valid(signature, body, [SECRET], now=stamp)
        assert not is_valid(signature, body, ["wrong-secret"], now=stamp)
        assert not is_valid(signature, body + b" ", [SECRET], now=stamp)
        assert not is_valid(signature, body, [SECRET], now=stamp + 301)
        payload = json.loads(body)
        ids.add(payload["id"])
        stamps.append(stamp)
        assert payload["type"] == "payment_request.created" and payload["data"]["id"] == str(request.pk)
    assert ids == {str(delivery.event_id)}
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # each try signed afresh


def test_gives_up_after_the_last_try(local_chain: LocalChain, merchant: Merchant) -> None:
    dead = Receiver(failures=1000)
    try:
        Merchant.objects.filter(pk=merchant.pk).update(webhook_url=dead.url, webhook_secret=SECRET)
        merchant.refresh_from_db()
        now = timezone.now()
        create_request(merchant, now=now)
        for _ in range(webhooks.MAX_ATTEMPTS + 2):
            webhooks.deliver_due(now=now)
            now += timedelta(days=2)
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == webhooks.MAX_ATTEMPTS >= 6
        assert delivery.delivered_at is None and delivery.next_attempt_at is None
        assert sum(webhooks.BACKOFF, timedelta()) >= timedelta(hours=24)
    finally:
        dead.server.shutdown()
