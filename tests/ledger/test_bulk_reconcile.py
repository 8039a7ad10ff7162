"""The set-based status pass agrees with the per-row service, write for write, on random ledgers.

The oracle is `services.payment_request_reconcile` run over every request (inside a savepoint that is
rolled back); then the bulk pass runs on the same rows and must leave the same statuses, exceptions,
amounts, paid_at, timeline events, webhook payloads and signals. A second pass must change nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from stablepay.ledger import bulk_reconcile, services
from stablepay.ledger.representation import payment_request_data
from stablepay.ledger.signals import payment_request_status_changed, payment_requests_status_changed
from stablepay.models import (
    Event,
    PaymentRequest,
    WebhookDelivery,
)
from tests.support.random_ledgers import NOW, World, random_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard() -> Iterator[list[tuple[Any, ...]]]:
    """Every status change either signal announced: (request id, previous, status, exception, paid_at)."""
    changes: list[tuple[Any, ...]] = []

    def one(*, payment_request: PaymentRequest, previous_status: str, status: str, exception: str, **_: Any) -> None:
        changes.append((payment_request.pk, previous_status, status, exception, payment_request.paid_at))

    def many(**kwargs: Any) -> None:
        changes.extend(
            (c.payment_request_id, c.previous_status, c.status, c.exception, c.paid_at) for c in kwargs["changes"]
        )

    payment_request_status_changed.connect(one, weak=False)
    payment_requests_status_changed.connect(many, weak=False)
    yield changes
    payment_request_status_changed.disconnect(one)
    payment_requests_status_changed.disconnect(many)


def _state(after_event: int, after_webhook: int) -> dict[str, Any]:
    requests = sorted(
        PaymentRequest.objects.values_list(
            "pk", "status", "exception", "amount_paid_base_units", "paid_at", "reconcile_pending", "resolution"
        )
    )
    events = sorted(
        Event.objects.filter(pk__gt=after_event).values_list(
            "payment_request_id", "at", "status", "exception", "note", "actor"
        )
    )
    webhooks = []
    for w in WebhookDelivery.objects.filter(pk__gt=after_webhook):
        assert w.payload["id"] == str(w.event_id)
        payload = dict(w.payload, id="<event id>")
        webhooks.append((str(w.payment_request_id), w.type, w.created_at, w.next_attempt_at, w.attempts, payload))
    webhooks.sort(key=lambda row: (row[0], row[1]))
    return {"requests": requests, "events": events, "webhooks": webhooks}


def _marks() -> tuple[int, int]:
    return (Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0), (
        WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    )


def _per_row_oracle(heard: list[tuple[Any, ...]]) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """What the per-row service writes over every request, rolled back afterwards."""
    marks = _marks()
    with transaction.atomic():
        for pk in PaymentRequest.objects.order_by("pk").values_list("pk", flat=True):
            services.payment_request_reconcile(request_id=pk, now=NOW)
        expected = _state(*marks)
        signals = sorted(heard)
        transaction.set_rollback(True)
    heard.clear()
    return expected, signals


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_bulk_pass_writes_what_the_per_row_service_writes(
    world: World, heard: list[tuple[Any, ...]], seed: int
) -> None:
    random_ledger(world, random.Random(seed), 120)
    expected, expected_signals = _per_row_oracle(heard)
    assert expected["events"], "the random ledger should give the pass some work"

    marks = _marks()
    dry = bulk_reconcile.payment_requests_reconcile_all(now=NOW, dry_run=True)
    assert _state(*marks)["events"] == [] and not heard
    result = bulk_reconcile.payment_requests_reconcile_all(now=NOW)

    assert _state(*marks) == expected
    assert sorted(heard) == expected_signals
    assert result.changed == dry.changed == len(expected["events"]) == result.events
    assert result.transitions == dry.transitions
    assert result.webhooks == len(expected["webhooks"]) and result.skipped == 0
    assert result.signals == len(expected_signals)
    again = bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    assert again.rows_written == 0 and again.events == again.webhooks == again.signals == 0


def test_the_webhook_payload_is_the_api_representation(world: World) -> None:
    random_ledger(world, random.Random(9), 60)
    bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    deliveries = WebhookDelivery.objects.select_related("payment_request")
    assert deliveries.count() > 10
    for delivery in deliveries:
        # Nothing changed since: the payload's data is what the API shows now.
        assert delivery.payload["data"] == payment_request_data(delivery.payment_request)


def test_without_a_batch_receiver_each_change_gets_the_per_row_signal(world: World) -> None:
    random_ledger(world, random.Random(5), 60)
    received: list[tuple[Any, str, str]] = []

    def one(*, payment_request: PaymentRequest, previous_status: str, status: str, **_: Any) -> None:
        assert payment_request.status == status  # the instance carries the new state
        received.append((payment_request.pk, previous_status, status))

    saved = payment_requests_status_changed.receivers
    payment_requests_status_changed.receivers = []  # the shop's batch receiver among them
    payment_requests_status_changed.sender_receivers_cache.clear()
    payment_request_status_changed.connect(one, weak=False)
    try:
        result = bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    finally:
        payment_request_status_changed.disconnect(one)
        payment_requests_status_changed.receivers = saved
        payment_requests_status_changed.sender_receivers_cache.clear()
    assert received and len(received) == result.signals
    assert all(previous != status for _, previous, status in received)


def test_one_chain_only(world: World) -> None:
    random_ledger(world, random.Random(6), 80)
    result = bulk_reconcile.payment_requests_reconcile_all(now=NOW, chain_id=1)
    assert result.examined == PaymentRequest.objects.filter(token__chain__chain_id=1).count()
    rest = bulk_reconcile.payment_requests_reconcile_all(now=NOW, dry_run=True)
    assert rest.examined == PaymentRequest.objects.count()
    on_chain_1 = set(PaymentRequest.objects.filter(token__chain__chain_id=1).values_list("pk", flat=True))
    assert on_chain_1.isdisjoint(rest.sample) and rest.changed > 0


def test_a_row_written_since_the_pass_read_it_is_left_for_the_next_pass(world: World, monkeypatch: Any) -> None:
    random_ledger(world, random.Random(7), 40)
    marks = _marks()
    real_apply = bulk_reconcile._apply
    raced: list[Any] = []

    def racing_apply(cur: Any, *args: Any) -> None:
        cur.execute("SELECT id FROM stablepay_sweep ORDER BY id LIMIT 1")
        (pk,) = cur.fetchone()
        raced.append(pk)
        PaymentRequest.objects.filter(pk=pk).update(reconcile_pending=True)  # as the watcher flags it
        real_apply(cur, *args)

    monkeypatch.setattr(bulk_reconcile, "_apply", racing_apply)
    result = bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    assert result.skipped == 1
    assert not Event.objects.filter(pk__gt=marks[0], payment_request_id=raced[0]).exists()
    assert PaymentRequest.objects.get(pk=raced[0]).reconcile_pending
    monkeypatch.setattr(bulk_reconcile, "_apply", real_apply)
    assert bulk_reconcile.payment_requests_reconcile_all(now=NOW).skipped == 0


def test_other_databases_fall_back_to_the_per_row_service(
    world: World, heard: list[tuple[Any, ...]], monkeypatch: Any
) -> None:
    random_ledger(world, random.Random(8), 60)
    expected, expected_signals = _per_row_oracle(heard)
    marks = _marks()
    monkeypatch.setattr(connection, "vendor", "sqlite")
    dry = bulk_reconcile.payment_requests_reconcile_all(now=NOW, dry_run=True)
    result = bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    assert result.per_row and dry.per_row
    assert _state(*marks) == expected and sorted(heard) == expected_signals
    assert result.changed == dry.changed == len(expected["events"]) and result.transitions == dry.transitions
    assert bulk_reconcile.payment_requests_reconcile_all(now=NOW).rows_written == 0
