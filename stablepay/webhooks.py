"""Webhooks (CONTRACT §5): a transactional outbox, HMAC-SHA256 signatures with a timestamp, retries.

`enqueue` writes the outbox row inside the caller's transaction. `deliver_due` posts what is due,
signing each attempt afresh with the same event id, and backs off exponentially until a 2xx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stablepay.models import PaymentRequest, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stablepay-Signature"
# Delay before try n+1: 10 s, 1 min, 5 min, 30 min, 2 h, 6 h, 12 h, 24 h (9 tries over ~45 h).
BACKOFF = [timedelta(seconds=s) for s in (10, 60, 300, 1800, 7200, 21600, 43200, 86400)]
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT_SECONDS = 10


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, now: int, tolerance_seconds: int = 300) -> bool:
    """What a merchant's receiver does: check the HMAC and that the timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


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
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "stablepay-webhooks/1",
            SIGNATURE_HEADER: sign(delivery.merchant.webhook_secret, body, int(now.timestamp())),
        }
        delivery.attempts += 1
        try:
            response = requests.post(delivery.merchant.webhook_url, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
            delivery.last_status_code = response.status_code
            delivery.last_error = "" if response.ok else response.text[:500]
            ok = 200 <= response.status_code < 300
        except requests.RequestException as exc:
            delivery.last_status_code, delivery.last_error, ok = None, str(exc)[:500], False
        if ok:
            delivery.delivered_at, delivery.next_attempt_at = now, None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.next_attempt_at = None
            logger.error("webhook %s gave up after %d tries", delivery.event_id, delivery.attempts)
        else:
            delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
        delivery.save()
        return ok
