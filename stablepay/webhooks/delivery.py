"""Webhook delivery (CONTRACT §5): HMAC-SHA256 signatures with a timestamp, retries, and signing-secret
rotation with a grace period.

The outbox rows are written with the change they report by stablepay/ledger/outbox.py. `deliver_due` posts
what is due, signing each attempt afresh with the same event id, and backs off exponentially until a 2xx.
Each attempt is claimed under a short row lock and committed before the POST, which runs with no lock or
transaction of ours held (a slow receiver never holds a row lock); the outcome is written afterwards.
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

from django.db import transaction
from django.utils import timezone

from stablepay.conf import app_settings
from stablepay.models import Merchant, WebhookDelivery
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
# A claimed try belongs to its worker this long (next_attempt_at is pushed this far ahead while it posts):
# longer than one attempt can take, so no other worker sends the same try; a worker that dies mid-try
# leaves the claim to lapse, and the next try comes this much later.
CLAIM = timedelta(minutes=2)


def grace_period() -> timedelta:
    hours = app_settings.WEBHOOK_SECRET_GRACE_HOURS
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
    """One attempt of a delivery that is due: claimed under the row lock and committed (so two workers never
    send the same try), posted with no lock held, then its outcome written. Returns whether it was a 2xx."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now=now)
    if delivery is None:
        return False
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    secrets = signing_secrets(delivery.merchant, now=now)
    if not secrets:  # never sent unsigned
        status_code, reason, ok = None, "no webhook signing secret is set", False
    else:
        at = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "stablepay-webhooks/1",
            SIGNATURE_HEADER: sign(secrets, body, at),
            **standard_headers(secrets, str(delivery.event_id), body, at),  # webhook-id: the payload's id
        }
        outcome = webhook_target.post(delivery.merchant.webhook_url, body, headers, timeout=TIMEOUT_SECONDS)
        status_code, reason, ok = outcome.status_code, outcome.reason, outcome.ok
        if reason.startswith("refused: "):
            logger.warning("webhook %s of %s %s", delivery.event_id, delivery.merchant.slug, reason)
    _record(delivery, status_code=status_code, reason=reason, ok=ok, now=now)
    return ok


def _claim(delivery_id: int, *, now: datetime) -> WebhookDelivery | None:
    """The delivery, with this try counted and next_attempt_at pushed CLAIM ahead, committed; None when it
    is delivered, not due, or being claimed by another worker right now."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant")
            .filter(pk=delivery_id, delivered_at__isnull=True, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + CLAIM
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    return delivery


def _record(delivery: WebhookDelivery, *, status_code: int | None, reason: str, ok: bool, now: datetime) -> None:
    """The try's outcome: delivered, the next try's time, or given up. A failure is written only while no
    later try was claimed since (a claim that lapsed mid-POST); a success always is."""
    if ok:
        next_attempt_at, delivered_at = None, now
    elif delivery.attempts >= MAX_ATTEMPTS:
        next_attempt_at, delivered_at = None, None
        logger.error("webhook %s gave up after %d tries", delivery.event_id, delivery.attempts)
    else:
        next_attempt_at, delivered_at = now + BACKOFF[delivery.attempts - 1], None
    rows = WebhookDelivery.objects.filter(pk=delivery.pk, delivered_at__isnull=True)
    if not ok:
        rows = rows.filter(attempts=delivery.attempts)
    rows.update(
        last_status_code=status_code, last_error=reason, delivered_at=delivered_at, next_attempt_at=next_attempt_at
    )
