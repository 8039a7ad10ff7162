"""The set-based status pass agrees with the per-row service, write for write, on random ledgers.

The oracle is `services.payment_request_reconcile` run over every request (inside a savepoint that is
rolled back); then the bulk pass runs on the same rows and must leave the same statuses, exceptions,
amounts, paid_at, timeline events, webhook payloads and signals. A second pass must change nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from stablepay import bulk_reconcile, services
from stablepay.api.serializers import payment_request_data
from stablepay.models import (
    Chain,
    Cursor,
    Event,
    Merchant,
    PaymentRequest,
    Token,
    Transfer,
    WebhookDelivery,
)
from stablepay.signals import payment_request_status_changed, payment_requests_status_changed

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
STATUS_EXCEPTIONS = {
    "open": [""],
    "confirming": [""],
    "paid": ["", "", "", "overpaid", "wrong_token", "reorged", "held"],
    "expired": [""],
    "needs_review": ["underpaid", "late", "wrong_token", "reorged", "held"],
    "refunded": [""],
    "canceled": [""],
}


@dataclass
class World:
    tokens: list[Token]
    merchants: list[Merchant]


@pytest.fixture
def world() -> World:
    templated = Chain.objects.create(
        chain_id=1, name="One", confirmations=3, explorer_tx_url="https://one.example/tx/{tx}?x=1"
    )
    plain = Chain.objects.create(chain_id=2, name="Two", confirmations=12, explorer_tx_url="https://two.example/tx//")
    Chain.objects.create(chain_id=3, name="Three", confirmations=1)  # no explorer, no cursor yet
    Cursor.objects.create(chain=templated, scanned_block=1_000, head_block=1_000)
    Cursor.objects.create(chain=plain, scanned_block=5_000, head_block=5_000)
    three = Chain.objects.get(chain_id=3)
    tokens = [
        Token.objects.create(chain=templated, address="0x" + "a1" * 20, symbol="HKDX", decimals=6, currency="HKD"),
        Token.objects.create(chain=templated, address="0x" + "a2" * 20, symbol="USDC", decimals=6, currency="USD"),
        Token.objects.create(chain=plain, address="0x" + "b1" * 20, symbol="HKDW", decimals=18, currency="HKD"),
        Token.objects.create(chain=plain, address="0x" + "b2" * 20, symbol="USDT", decimals=0, currency="USD"),
        Token.objects.create(chain=three, address="0x" + "c1" * 20, symbol="HKDZ", decimals=2, currency="HKD"),
    ]
    merchants = [
        Merchant.objects.create(
            slug="hooked",
            name="Hooked",
            xpub="xpub-a",
            api_key_hash="a" * 64,
            payment_tolerance_percent=Decimal("0.5"),
            webhook_url="https://hooks.example/stablepay",
            webhook_secret="s" * 32,
        ),
        Merchant.objects.create(slug="exact", name="Exact", xpub="xpub-b", api_key_hash="b" * 64),
        Merchant.objects.create(
            slug="loose",
            name="Loose",
            xpub="xpub-c",
            api_key_hash="c" * 64,
            payment_tolerance_percent=Decimal("2.37"),
            webhook_url="https://loose.example/h",
        ),
    ]
    return World(tokens, merchants)


def _random_ledger(world: World, rng: random.Random, n: int) -> None:
    log = 0
    for i in range(n):
        token = rng.choice(world.tokens)
        merchant = rng.choice(world.merchants)
        due = rng.choice([1, 7, 100_000_000, 123_456_789, 10**21 + 7])
        status = rng.choice(list(STATUS_EXCEPTIONS))
        created = NOW - timedelta(minutes=rng.randint(1, 60), microseconds=rng.choice([0, rng.randint(1, 999_999)]))
        expires = NOW + timedelta(minutes=rng.choice([-30, -1, 1, 30]))
        request = PaymentRequest.objects.create(
            merchant=merchant,
            token=token,
            order_reference=f"R-{i}",
            amount=Decimal(rng.randint(1, 99_999)) / 100,
            currency="HKD",
            rate=rng.choice([Decimal("1"), Decimal("0.128205128205128205"), Decimal("7.8"), Decimal("100")]),
            amount_due_base_units=Decimal(due),
            amount_paid_base_units=Decimal(rng.choice([0, 0, due, due // 2])),
            pay_to="0x" + f"{i:040x}",
            derivation_index=i,
            status=status,
            exception=rng.choice(STATUS_EXCEPTIONS[status]),
            resolution=rng.choice(["", "", "", "accept", "refund"]),
            metadata=rng.choice([{}, {"order": i, "note": "茶餐廳", "nested": {"a": [1, 2]}}]),
            created_at=created,
            expires_at=expires,
            paid_at=rng.choice([None, created + timedelta(seconds=5)]) if status == "paid" else None,
            watch_until=expires + timedelta(days=7),
            reconcile_pending=rng.random() < 0.2,
        )
        Event.objects.create(payment_request=request, at=created, status=status, note="created", actor="api")
        siblings = [t for t in world.tokens if t.chain_id == token.chain_id]
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            log += 1
            paid_with = token if rng.random() < 0.85 else rng.choice(siblings)
            head = 1_000 if token.chain.chain_id == 1 else 5_000
            amount = rng.choice(
                [due, due, due // 2, due * 2, due - due // 400, due + due // 40, 0, max(due - due // 100, 0)]
            )
            Transfer.objects.create(
                chain=token.chain,
                token=paid_with,
                payment_request=request,
                tx_hash="0x" + f"{log:064x}",
                log_index=rng.randint(0, 3),
                block_number=head - rng.randint(0, 20),
                block_hash="0x" + f"{log + 7:064x}",
                block_timestamp=expires + timedelta(seconds=rng.choice([-120, -1, 0, 1, 120])),
                from_address="0x" + "f" * 40,
                to_address=request.pay_to,
                amount_base_units=Decimal(amount),
                state=rng.choice(["seen", "confirmed", "confirmed", "confirmed", "orphaned"]),
                reviewed=rng.random() < 0.2,
            )


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
    _random_ledger(world, random.Random(seed), 120)
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
    _random_ledger(world, random.Random(9), 60)
    bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    deliveries = WebhookDelivery.objects.select_related("payment_request")
    assert deliveries.count() > 10
    for delivery in deliveries:
        # Nothing changed since: the payload's data is what the API shows now.
        assert delivery.payload["data"] == payment_request_data(delivery.payment_request)


def test_without_a_batch_receiver_each_change_gets_the_per_row_signal(world: World) -> None:
    _random_ledger(world, random.Random(5), 60)
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
    _random_ledger(world, random.Random(6), 80)
    result = bulk_reconcile.payment_requests_reconcile_all(now=NOW, chain_id=1)
    assert result.examined == PaymentRequest.objects.filter(token__chain__chain_id=1).count()
    rest = bulk_reconcile.payment_requests_reconcile_all(now=NOW, dry_run=True)
    assert rest.examined == PaymentRequest.objects.count()
    on_chain_1 = set(PaymentRequest.objects.filter(token__chain__chain_id=1).values_list("pk", flat=True))
    assert on_chain_1.isdisjoint(rest.sample) and rest.changed > 0


def test_a_row_written_since_the_pass_read_it_is_left_for_the_next_pass(world: World, monkeypatch: Any) -> None:
    _random_ledger(world, random.Random(7), 40)
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
    _random_ledger(world, random.Random(8), 60)
    expected, expected_signals = _per_row_oracle(heard)
    marks = _marks()
    monkeypatch.setattr(connection, "vendor", "sqlite")
    dry = bulk_reconcile.payment_requests_reconcile_all(now=NOW, dry_run=True)
    result = bulk_reconcile.payment_requests_reconcile_all(now=NOW)
    assert result.per_row and dry.per_row
    assert _state(*marks) == expected and sorted(heard) == expected_signals
    assert result.changed == dry.changed == len(expected["events"]) and result.transitions == dry.transitions
    assert bulk_reconcile.payment_requests_reconcile_all(now=NOW).rows_written == 0
