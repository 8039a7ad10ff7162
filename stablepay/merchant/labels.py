"""Translatable labels for the dashboard (the model choices carry English-only labels)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

STATUS_LABELS = {
    "open": pgettext_lazy("payment status", "Open"),
    "confirming": pgettext_lazy("payment status", "Confirming"),
    "paid": pgettext_lazy("payment status", "Paid"),
    "expired": pgettext_lazy("payment status", "Expired"),
    "needs_review": pgettext_lazy("payment status", "Needs review"),
    "refunded": pgettext_lazy("payment status", "Refunded"),
    "canceled": pgettext_lazy("payment status", "Canceled"),
}

EXCEPTION_LABELS = {
    "": "",
    "underpaid": _("Underpaid"),
    "overpaid": _("Overpaid"),
    "late": _("Late payment"),
    "wrong_token": _("Wrong token"),
    "reorged": _("Reorged"),
    "held": _("Held for compliance"),
}

TRANSFER_STATE_LABELS = {
    "seen": _("Seen"),
    "confirmed": _("Confirmed"),
    "orphaned": _("Orphaned"),
}

PERIOD_LABELS = {
    "today": pgettext_lazy("stablepay", "Today"),
    "7d": _("Last 7 days"),
    "30d": _("Last 30 days"),
}
