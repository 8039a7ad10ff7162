"""The webhook outbox (CONTRACT §5): the `WebhookDelivery` row a change writes in its own transaction, and
the signal that announces new rows once that transaction commits.

`enqueue` (a payment request's event) and `enqueue_merchant_event` (an event about the merchant itself,
e.g. `merchant.change_applied`) save the row; `prepare` builds it unsaved for a writer that inserts it
with others in one statement, and then calls `queued`. Sending is stablepay/webhooks/delivery.py's
(`deliver_due`, run by the watcher's housekeeping or the beat tick, and `deliver`).

`webhooks_queued` is sent after commit, with `delivery_ids`: the new rows' ids, or None after a bulk
write ("several: deliver what is due"). Nothing here knows who listens: in Celery mode stablepay/tasks.py
connects a receiver in `AppConfig.ready` that hands the deliveries to the workers at once; in embedded
mode nothing is connected and the watcher's next pass sends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from stablepay.ledger.representation import payment_request_data
from stablepay.models import Merchant, PaymentRequest, WebhookDelivery

__all__ = ["enqueue", "enqueue_merchant_event", "prepare", "queued", "queued_in_bulk", "webhooks_queued"]

webhooks_queued = Signal()  # after commit; argument: delivery_ids (list of WebhookDelivery pks, or None)


def enqueue(request: PaymentRequest, *, event_type: str, now: datetime) -> WebhookDelivery | None:
    """The outbox row for a payment request's event (`payment_request.<event_type>`), saved in the caller's
    transaction; None when the merchant has no webhook."""
    delivery = prepare(request, event_type=event_type, now=now)
    if delivery is None:
        return None
    delivery.save()
    queued(delivery)
    return delivery


def prepare(request: PaymentRequest, *, event_type: str, now: datetime) -> WebhookDelivery | None:
    """The outbox row for this change, not saved yet (None when the merchant has no webhook).

    Whoever saves it calls `queued` afterwards, in the same transaction.
    """
    merchant = request.merchant
    if not merchant.webhook_url:
        return None
    delivery = WebhookDelivery(
        merchant=merchant, payment_request=request, type=f"payment_request.{event_type}", created_at=now
    )
    delivery.payload = {
        "id": str(delivery.event_id),
        "type": delivery.type,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "data": payment_request_data(request),
    }
    delivery.next_attempt_at = now
    return delivery


def enqueue_merchant_event(
    merchant: Merchant, *, event_type: str, data: dict[str, Any], now: datetime
) -> WebhookDelivery | None:
    """An outbox row for an event about the merchant itself (no payment request), e.g. `merchant.change_applied`
    (stablepay/governance/change_control.py), in the caller's transaction; None when the merchant has no webhook."""
    if not merchant.webhook_url:
        return None
    delivery = WebhookDelivery(merchant=merchant, payment_request=None, type=event_type, created_at=now)
    delivery.payload = {
        "id": str(delivery.event_id),
        "type": event_type,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    delivery.next_attempt_at = now
    delivery.save()
    queued(delivery)
    return delivery


def queued(delivery: WebhookDelivery) -> None:
    """A delivery was just saved, or made due again (a redelivery): announce it once the change commits."""
    _announce([delivery.pk])


def queued_in_bulk() -> None:
    """A set-based writer saved several deliveries: announce, once it commits, that some are due."""
    _announce(None)


def _announce(delivery_ids: Sequence[int] | None) -> None:
    if not webhooks_queued.has_listeners():  # embedded mode: the watcher's next pass sends them
        return
    ids = list(delivery_ids) if delivery_ids is not None else None
    transaction.on_commit(lambda: webhooks_queued.send(sender=WebhookDelivery, delivery_ids=ids))
