"""Display filters for the merchant dashboard: statuses, amounts (Decimal in, never float), durations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from stablepay.merchant.labels import EXCEPTION_LABELS, PERIOD_LABELS, STATUS_LABELS, TRANSFER_STATE_LABELS
from stablepay.models import PaymentRequest, Transfer, WebhookDelivery
from stablepay.money import EXACT, base_units_to_decimal
from stablepay.webhooks import target as webhook_target

register = template.Library()


@register.filter
def status_label(value: str) -> str:
    return str(STATUS_LABELS.get(value, value))


@register.filter
def exception_label(value: str) -> str:
    return str(EXCEPTION_LABELS.get(value or "", value))


@register.filter
def transfer_state_label(value: str) -> str:
    return str(TRANSFER_STATE_LABELS.get(value, value))


@register.filter
def period_label(value: str) -> str:
    return str(PERIOD_LABELS.get(value, value))


@register.filter
def grouped(value: Decimal | int | str | None, places: int | None = None) -> str:
    """Thousands separators, keeping the value's own places (or `places` of them): 1234.5 -> 1,234.50."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(value)
        if places is not None:
            number = number.quantize(Decimal(1).scaleb(-int(places)), context=EXACT)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    return f"{number:,}" if places is None else f"{number:,.{int(places)}f}"


@register.filter
def duration(value: timedelta | None) -> str:
    """Seconds, not days: 4.2 s, 38 s, 3 min 12 s, 2 h 5 min, 3 d 4 h. Integer arithmetic only."""
    if value is None:
        return "—"
    tenths = (value // timedelta(milliseconds=100)) if value > timedelta(0) else 0
    seconds = tenths // 10
    if seconds < 10:
        return _("%(s)s s") % {"s": f"{tenths // 10}.{tenths % 10}"}
    if seconds < 60:
        return _("%(s)s s") % {"s": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": seconds}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)s d %(h)s h") % {"d": days, "h": hours}


@register.filter
def short_hash(value: str, keep: int = 6) -> str:
    """0x12ab34…9f8e: the start and end of a hash or address, for narrow screens."""
    if not value or len(value) <= 2 * keep + 3:
        return value or ""
    return f"{value[: keep + 2]}…{value[-keep:]}"


@register.filter
def explorer_url(transfer: Transfer) -> str:
    """The block explorer link of a transfer's transaction; '' when its chain has no explorer."""
    return transfer.chain.explorer_link(transfer.tx_hash)


DELIVERY_STATES = {
    "delivered": _lazy("Delivered"),
    "pending": _lazy("Pending"),
    "retrying": _lazy("Retrying"),
    "failed": _lazy("Gave up"),
}
DELIVERY_BADGES = {"delivered": "paid", "pending": "confirming", "retrying": "open", "failed": "needs_review"}


def _delivery_state(delivery: WebhookDelivery) -> str:
    if delivery.delivered_at is not None:
        return "delivered"
    if delivery.next_attempt_at is None:
        return "failed"
    return "retrying" if delivery.attempts else "pending"


@register.filter
def delivery_state(delivery: WebhookDelivery) -> str:
    return str(DELIVERY_STATES[_delivery_state(delivery)])


@register.filter
def delivery_badge(delivery: WebhookDelivery) -> str:
    return DELIVERY_BADGES[_delivery_state(delivery)]


@register.filter
def delivery_reason(delivery: WebhookDelivery) -> str:
    """The last attempt's short reason (status code aside): only reasons stablepay wrote, never a receiver's
    answer (one an older version stored shows as "delivery failed"). See stablepay/webhooks/target.py."""
    return webhook_target.shown_reason(delivery.last_error)


@register.filter
def paid_amount(request: PaymentRequest) -> Decimal:
    """What the request received, as a token Decimal with the token's places."""
    return base_units_to_decimal(request.amount_paid_base_units, request.token.decimals)


@register.filter
def due_amount(request: PaymentRequest) -> Decimal:
    return base_units_to_decimal(request.amount_due_base_units, request.token.decimals)


@register.filter
def transfer_amount(transfer: Transfer) -> Decimal:
    return base_units_to_decimal(transfer.amount_base_units, transfer.token.decimals)


@register.filter
def transfer_confirmations(transfer: Transfer) -> int:
    cursor = getattr(transfer.chain, "cursor", None)
    return transfer.confirmations_at(cursor.head_block if cursor is not None else None)
