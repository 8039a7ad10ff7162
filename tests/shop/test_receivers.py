"""The order follows its payment request through stablepay's signal: paid, canceled, refunded."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shop.models import Order, Product, Storefront
from stablepay.ledger.services import payment_request_cancel
from stablepay.ledger.signals import StatusChange, payment_request_status_changed, payment_requests_status_changed
from stablepay.models import PaymentRequest, Status, Token

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed(shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token) -> Order:
    shopper.post(reverse("shop:cart_add", args=["hk"]), {"product_id": egg_rolls.pk})
    shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    return Order.objects.get()


def _announce(pr: PaymentRequest, previous: str, status: str) -> None:
    """What stablepay's services send after writing the new status."""
    PaymentRequest.objects.filter(pk=pr.pk).update(status=status)
    payment_request_status_changed.send(
        sender=PaymentRequest, payment_request=pr, previous_status=previous, status=status, exception="", actor="test"
    )


def test_paid_marks_the_order_paid_once(placed: Order) -> None:
    pr = PaymentRequest.objects.get(pk=placed.payment_request_id)
    pr.paid_at = timezone.now() - timedelta(minutes=1)
    _announce(pr, Status.CONFIRMING, Status.PAID)
    placed.refresh_from_db()
    assert placed.status == Order.Status.PAID
    assert placed.paid_at == pr.paid_at

    pr.paid_at = timezone.now()
    _announce(pr, Status.CONFIRMING, Status.PAID)  # delivered again: nothing changes
    placed.refresh_from_db()
    assert placed.status == Order.Status.PAID and placed.paid_at != pr.paid_at


@pytest.mark.parametrize(("status", "expected"), [(Status.REFUNDED, "refunded"), (Status.CANCELED, "canceled")])
def test_refunded_and_canceled_follow(placed: Order, status: str, expected: str) -> None:
    _announce(PaymentRequest.objects.get(pk=placed.payment_request_id), Status.NEEDS_REVIEW, status)
    placed.refresh_from_db()
    assert placed.status == expected


@pytest.mark.parametrize("status", [Status.CONFIRMING, Status.EXPIRED, Status.NEEDS_REVIEW])
def test_other_statuses_leave_the_order_pending(placed: Order, status: str) -> None:
    _announce(PaymentRequest.objects.get(pk=placed.payment_request_id), Status.OPEN, status)
    placed.refresh_from_db()
    assert placed.status == Order.Status.PENDING_PAYMENT and placed.paid_at is None


def test_a_request_that_is_not_an_order_is_ignored(placed: Order, hkdx: Token) -> None:
    other = PaymentRequest.objects.get(pk=placed.payment_request_id)
    Order.objects.filter(pk=placed.pk).update(payment_request_id=None)
    _announce(other, Status.CONFIRMING, Status.PAID)
    placed.refresh_from_db()
    assert placed.status == Order.Status.PENDING_PAYMENT


def test_stablepay_cancel_cancels_the_order(placed: Order) -> None:
    payment_request_cancel(request_id=placed.payment_request_id, actor="merchant")
    placed.refresh_from_db()
    assert placed.status == Order.Status.CANCELED


def _announce_batch(*changes: tuple[Order, str, datetime | None]) -> None:
    """What stablepay's set-based status pass sends: one call for a batch of changes."""
    payment_requests_status_changed.send(
        sender=PaymentRequest,
        changes=[
            StatusChange(order.payment_request_id, Status.CONFIRMING, status, "", paid_at, "watcher")
            for order, status, paid_at in changes
        ],
    )


def test_a_batch_moves_each_order_once(placed: Order) -> None:
    when = timezone.now() - timedelta(minutes=2)
    _announce_batch((placed, Status.PAID, when), (placed, Status.EXPIRED, None))
    placed.refresh_from_db()
    assert placed.status == Order.Status.PAID and placed.paid_at == when
    _announce_batch((placed, Status.PAID, timezone.now()))  # delivered again: nothing changes
    placed.refresh_from_db()
    assert placed.paid_at == when
    _announce_batch((placed, Status.REFUNDED, None))
    placed.refresh_from_db()
    assert placed.status == Order.Status.REFUNDED and placed.paid_at == when
