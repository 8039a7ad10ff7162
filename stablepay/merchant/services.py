"""Writes from the merchant dashboard's settings: webhook endpoint, API key rotation, payment rules, and
redelivery of a webhook event. Each runs in one transaction with the merchant row locked and logs who
did what (the actor is "user:<username>")."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from stablepay.errors import Conflict, InvalidInput
from stablepay.governance import change_control
from stablepay.ledger import outbox
from stablepay.models import TOKEN_CURRENCIES, ChangeProposal, LicenceStatus, Merchant, WebhookDelivery
from stablepay.registry.api_keys import hash_api_key
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks import target as webhook_target

logger = logging.getLogger(__name__)

API_KEY_PREFIX_LENGTH = 6
WEBHOOK_SECRET_PREFIX = "whsec_"


def _locked(merchant: Merchant) -> Merchant:
    return Merchant.objects.select_for_update().get(pk=merchant.pk)


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(24)


def merchant_webhook_update(
    *,
    merchant: Merchant,
    webhook_url: str,
    webhook_secret: str = "",
    new_secret: bool = False,
    actor: str,
    now: datetime | None = None,
) -> tuple[Merchant, bool]:
    """Set (or, with an empty URL, turn off) the webhook endpoint; returns (merchant, secret_changed).

    The signing secret is kept unless a new one is given or asked for; an endpoint without a secret gets
    a generated one, since every delivery is signed. A replaced secret keeps signing deliveries (as a
    second signature) for STABLEPAY["WEBHOOK_SECRET_GRACE_HOURS"] (webhooks.secret_replace).
    """
    now = now or timezone.now()
    if webhook_url:
        try:
            webhook_target.check(webhook_url)  # the rule every delivery applies again (issue 16)
        except webhook_target.TargetRefused as exc:
            raise InvalidInput("webhook_url", exc.reason) from exc
    with transaction.atomic():
        locked = _locked(merchant)
        locked.webhook_url = webhook_url
        changed = False
        if webhook_secret:
            changed = webhooks.secret_replace(locked, webhook_secret, now=now)
        elif new_secret or (webhook_url and not locked.webhook_secret):
            changed = webhooks.secret_replace(locked, new_webhook_secret(), now=now)
        locked.save(update_fields=["webhook_url", *(webhooks.SECRET_FIELDS if changed else [])])
    detail = ""
    if changed:
        until = locked.webhook_secret_previous_until
        detail = f", secret rotated (the previous one signs too until {until.isoformat()})" if until else ", secret set"
    logger.info("merchant %s: webhook url %s by %s%s", locked.slug, "set" if webhook_url else "cleared", actor, detail)
    return locked, changed


def merchant_rotate_api_key(*, merchant: Merchant, actor: str) -> str:
    """A new API key; the old one stops working at once. Only its hash is stored: the plaintext is
    returned once, to be shown once."""
    key = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = _locked(merchant)
        locked.api_key_hash = hash_api_key(key)
        locked.api_key_prefix = key[:API_KEY_PREFIX_LENGTH]
        locked.save(update_fields=["api_key_hash", "api_key_prefix"])
    merchant.api_key_hash, merchant.api_key_prefix = locked.api_key_hash, locked.api_key_prefix
    logger.info("merchant %s: API key rotated by %s (new prefix %s)", locked.slug, actor, locked.api_key_prefix)
    return key


def merchant_payment_settings_update(
    *, merchant: Merchant, payment_tolerance_percent: Decimal, expiry_minutes: int, user: Any
) -> tuple[Merchant, ChangeProposal | None]:
    """The expiry of new requests (requests already made keep theirs), saved at once; and the underpayment
    tolerance, one of the fields where money goes (stablepay.governance.change_control): a new value is only proposed,
    emailed to every member and announced by webhook (`merchant.change_proposed`), and applies once another
    member of the merchant, or the operator's approver, approves it. Returns (merchant, the proposal or None)."""
    if not Decimal(0) <= payment_tolerance_percent < Decimal(100):
        raise InvalidInput("payment_tolerance_percent", "must be at least 0 and less than 100")
    if not 1 <= expiry_minutes <= 1440:
        raise InvalidInput("expiry_minutes", "must be 1 to 1440")
    actor = f"user:{user.get_username()}"
    with transaction.atomic():
        locked = _locked(merchant)
        proposal = change_control.propose_member_change(
            merchant=locked,
            changes={"payment_tolerance_percent": payment_tolerance_percent},
            note="proposed on the merchant settings page",
            user=user,
        )
        locked.expiry_minutes = expiry_minutes
        locked.save(update_fields=["expiry_minutes"])
    logger.info(
        "merchant %s: expiry %s min, by %s%s",
        locked.slug,
        expiry_minutes,
        actor,
        f"; tolerance {payment_tolerance_percent} % proposed (change {proposal.pk})" if proposal else "",
    )
    return locked, proposal


def merchant_token_policy_update(
    *, merchant: Merchant, accepted_licence_statuses: list[str], accepted_token_currencies: list[str], actor: str
) -> Merchant:
    """Which tokens new quotes may use: licence statuses accepted, and coin currencies (empty: any)."""
    if any(s not in LicenceStatus.values for s in accepted_licence_statuses):
        raise InvalidInput("accepted_licence_statuses", f"must be from {', '.join(LicenceStatus.values)}")
    if any(c not in TOKEN_CURRENCIES for c in accepted_token_currencies):
        raise InvalidInput("accepted_token_currencies", "must be from HKD, USD, CNH")
    with transaction.atomic():
        locked = _locked(merchant)
        locked.accepted_licence_statuses = sorted(set(accepted_licence_statuses))
        locked.accepted_token_currencies = sorted(set(accepted_token_currencies))
        locked.save(update_fields=["accepted_licence_statuses", "accepted_token_currencies"])
    logger.info(
        "merchant %s: token policy statuses=%s currencies=%s, by %s",
        locked.slug,
        locked.accepted_licence_statuses,
        locked.accepted_token_currencies or "any",
        actor,
    )
    return locked


def webhook_redeliver(
    *, merchant: Merchant, delivery_id: int, actor: str, now: datetime | None = None
) -> WebhookDelivery | None:
    """A new attempt of the same event (same event id and payload, signed afresh when sent): due now.

    Returns None when the delivery is not this merchant's; raises Conflict while webhooks are off. In
    Celery mode the attempt is sent right after commit; otherwise the watcher's next pass sends it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if not _locked(merchant).webhook_url:
            if not WebhookDelivery.objects.filter(pk=delivery_id, merchant=merchant).exists():
                return None
            raise Conflict("webhook_url", "webhooks are off: set an endpoint URL first")
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id, merchant=merchant).first()
        if delivery is None:
            return None
        delivery.delivered_at = None
        delivery.next_attempt_at = now
        delivery.save(update_fields=["delivered_at", "next_attempt_at"])
        outbox.queued(delivery)
    logger.info("merchant %s: webhook %s redelivery queued by %s", merchant.slug, delivery.event_id, actor)
    return delivery
