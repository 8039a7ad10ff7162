"""Listens to stablepay: when a payment request is paid, refunded or canceled, its order follows.

The signals (one per request from stablepay's per-row services, one per batch from its set-based status
pass) are sent inside stablepay's transaction, so the order's update commits or rolls back with
the payment request's change. Other statuses (confirming, expired, needs_review) leave the order as is.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from shop.services import order_apply_payment_status, orders_apply_payment_statuses
from stablepay.interface import StatusChange, payment_request_status_changed, payment_requests_status_changed


@receiver(payment_request_status_changed, dispatch_uid="shop.order_follows_payment_request")
def order_follows_payment_request(*, payment_request: Any, status: str, **kwargs: Any) -> None:
    order_apply_payment_status(payment_request_id=payment_request.pk, status=status, paid_at=payment_request.paid_at)


@receiver(payment_requests_status_changed, dispatch_uid="shop.orders_follow_payment_requests")
def orders_follow_payment_requests(*, changes: list[StatusChange], **kwargs: Any) -> None:
    """The same for a batch from stablepay's set-based status pass."""
    orders_apply_payment_statuses(changes=[(c.payment_request_id, c.status, c.paid_at) for c in changes])
