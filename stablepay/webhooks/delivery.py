"""Webhooks (CONTRACT §5): a transactional outbox, HMAC-SHA256 signatures with a timestamp, retries,
and signing-secret rotation with a grace period.

`enqueue` writes the outbox row inside the caller's transaction. `deliver_due` posts what is due,
signing each attempt afresh with the same event id, and backs off exponentially until a 2xx.
`secret_replace` rotates a merchant's secret: for STABLEPAY["WEBHOOK_SECRET_GRACE_HOURS"] afterwards,
each delivery carries two signatures (`t=..,v1=<new>,v1=<old>`), so a receiver still holding the old
secret keeps accepting until it is updated. The signature format and the receiver-side check
(`verify_signature`) live in stablepay/webhooks/signature.py, which needs no Django.

Where a delivery may go is stablepay/webhooks/target.py's rule (issue 16), checked again at every attempt:
the connection goes to the address that was checked, redirects are not followed, and only the status code
and a short reason of ours are stored, never what the receiver answered.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stablepay.models import Merchant, PaymentRequest, WebhookDelivery
from stablepay.webhooks import target as webhook_target
from stablepay.webhooks.signature import (
    SIGNATURE_HEADER,
    SignatureVerificationError,
    sign,
    standard_headers,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "SignatureVerificationError",
    "deliver",
    "deliver_due",
    "enqueue",
    "enqueue_merchant_event",
    "secret_replace",
    "sign",
    "signing_secrets",
    "verify_signature",
]

logger = logging.getLogger(__name__)

# Delay before try n+1: 10 s, 1 min, 5 min, 30 min, 2 h, 6 h, 12 h, 24 h (9 tries over ~45 h).
BACKOFF = [timedelta(seconds=s) for s in (10, 60, 300, 1800, 7200, 21600, 43200, 86400)]
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT_SECONDS = 10


def grace_period() -> timedelta:
    hours = float(settings.STABLEPAY.get("WEBHOOK_SECRET_GRACE_HOURS", 24))
    return timedelta(hours=max(hours, 0.0))


def signing_secrets(merchant: Merchant, *, now: datetime) -> list[str]:
    """The secrets a delivery made at `now` is signed with: the current one, then the previous one
    while its grace period lasts."""
    secrets = [merchant.webhook_secret] if merchant.webhook_secret else []
    until = merchant.webhook_secret_previous_until
    previous = merchant.webhook_secret_previous
    if previous and until is not None and now < until and previous not in secrets:
        secrets.append(previous)
    return secrets


def secret_replace(merchant: Merchant, new_secret: str, *, now: datetime) -> bool:
    """Set a new signing secret on `merchant` (not saved; the caller holds the row lock and saves
    webhook_secret, webhook_secret_previous and webhook_secret_previous_until). The old secret stays
    valid for the grace period; one rotated away earlier is dropped. Returns whether it changed."""
    if new_secret == merchant.webhook_secret:
        return False
    if not new_secret:  # webhooks off: nothing signs any more
        merchant.webhook_secret = merchant.webhook_secret_previous = ""
        merchant.webhook_secret_previous_until = None
        return True
    grace = grace_period()
    if merchant.webhook_secret and grace > timedelta(0):
        merchant.webhook_secret_previous = merchant.webhook_secret
        merchant.webhook_secret_previous_until = now + grace
    else:
        merchant.webhook_secret_previous, merchant.webhook_secret_previous_until = "", None
    merchant.webhook_secret = new_secret
    return True


SECRET_FIELDS = ["webhook_secret", "webhook_secret_previous", "webhook_secret_previous_until"]


def enqueue(request: PaymentRequest, *, event_type: str, now: datetime) -> WebhookDelivery | None:
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
    from stablepay.api.serializers import payment_request_data

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
    """A delivery was just saved: in Celery mode, deliver it right after the change commits, not at the next sweep."""
    if settings.REDIS_URL:
        from stablepay.tasks import deliver_webhook_task

        transaction.on_commit(lambda: deliver_webhook_task.delay(delivery.pk))


def deliver_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Try every delivery that is due; returns how many succeeded."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(delivered_at__isnull=True, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in ids if deliver(pk, now=now))


def deliver(delivery_id: int, *, now: datetime | None = None) -> bool:
    """One attempt, with the row locked so two workers never send the same try."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("merchant")
            .filter(pk=delivery_id, delivered_at__isnull=True)
            .first()
        )
        if delivery is None:
            return False
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        secrets = signing_secrets(delivery.merchant, now=now)
        delivery.attempts += 1
        if not secrets:  # never sent unsigned
            delivery.last_status_code, delivery.last_error, ok = None, "no webhook signing secret is set", False
        else:
            at = int(now.timestamp())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "stablepay-webhooks/1",
                SIGNATURE_HEADER: sign(secrets, body, at),
                **standard_headers(secrets, str(delivery.event_id), body, at),  # webhook-id: the payload's id
            }
            outcome = webhook_target.post(delivery.merchant.webhook_url, body, headers, timeout=TIMEOUT_SECONDS)
            delivery.last_status_code, delivery.last_error, ok = outcome.status_code, outcome.reason, outcome.ok
            if outcome.reason.startswith("refused: "):
                logger.warning("webhook %s of %s %s", delivery.event_id, delivery.merchant.slug, outcome.reason)
        if ok:
            delivery.delivered_at, delivery.next_attempt_at = now, None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.next_attempt_at = None
            logger.error("webhook %s gave up after %d tries", delivery.event_id, delivery.attempts)
        else:
            delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
        delivery.save()
        return ok
