"""The payment page's texts for pay.js, in Django i18n (the zh-Hant catalogue), handed to the page with
json_script (`{% pay_texts as texts %}{{ texts|json_script:"pay-i18n" }}`) so any translation is escaped
properly. `{paid}` and `{remaining}` are filled in by pay.js with the display amounts from the status JSON."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

PAY_TEXTS = {
    "state_open": _("Waiting for your payment"),
    "state_underpaid": _("Part of the payment arrived. Please send the rest."),
    "detail_underpaid": _(
        "Received {paid}. Still to pay: {remaining}. Top up to the same address before the time runs out."
    ),
    "state_confirming": _("Payment seen, confirming"),
    "state_paid": _("Paid. Thank you!"),
    "state_overpaid": _("Paid. You sent more than due; the excess will be refunded."),
    "state_expired": _("This payment request expired before any payment arrived. Nothing was charged."),
    "detail_expired": _("Start again from your order to get a new payment request."),
    "state_underpaid_expired": _("The time ran out before the full amount arrived."),
    "detail_underpaid_expired": _("We have {paid}. The merchant will review it and contact you: no need to send more."),
    "state_late": _("We received your payment after the request expired. The merchant will review it."),
    "state_needs_review": _("We received a payment that needs a review. The merchant will contact you."),
    "state_refunded": _("Refunded"),
    "state_canceled": _("Canceled"),
    "send_exactly": _("Send exactly"),
    "send_rest": _("Send the rest"),
    "confirmations": _("confirmations"),
    "confirmed": _("Confirmed"),
    "orphaned": _("Dropped by a chain reorganisation"),
    "expired_short": _("Expired"),
    "view": _("View on explorer"),
    "none_yet": _("None yet"),
    "copied": _("Copied"),
    "status_open": _("Open"),
    "status_confirming": _("Confirming"),
    "status_paid": _("Paid"),
    "status_expired": _("Expired"),
    "status_needs_review": _("Needs review"),
    "status_refunded": _("Refunded"),
    "status_canceled": _("Canceled"),
}


@register.simple_tag
def pay_texts() -> dict[str, str]:
    """Every text pay.js shows, in the active language."""
    return {key: str(text) for key, text in PAY_TEXTS.items()}
