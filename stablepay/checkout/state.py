"""The payment page's state: one key per case the shopper must understand (open, underpaid, confirming,
paid, overpaid, expired, late, ...), worked out from the public status, plus display strings for amounts
(grouped, exact) and the paid time in the active language. Pure: no queries, no clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import formats, timezone

from stablepay.money import base_units_to_decimal, format_fiat, format_token

# The keys pay.html has a message for (its JSON i18n block: "state_<key>").
STATES = (
    "open",
    "underpaid",
    "confirming",
    "paid",
    "overpaid",
    "expired",
    "underpaid_expired",
    "late",
    "needs_review",
    "refunded",
    "canceled",
)


def page_state(status: str, exception: str | None, due_base_units: int, paid_base_units: int) -> str:
    """Open with a part received is `underpaid` (top up to the same address); needs_review is split by why."""
    if status == "open":
        return "underpaid" if 0 < paid_base_units < due_base_units else "open"
    if status == "paid":
        return "overpaid" if exception == "overpaid" else "paid"
    if status == "needs_review":
        if exception == "underpaid":
            return "underpaid_expired"
        if exception == "late":
            return "late"
        return "needs_review"
    return status if status in STATES else "needs_review"


def _when(value: str | None) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def with_page_state(public: dict[str, Any]) -> dict[str, Any]:
    """The public status plus `state`, `amount_remaining(_base_units)` and `display` strings."""
    decimals = int(public["decimals"])
    due = int(public["amount_due_base_units"])
    paid = int(public["amount_paid_base_units"])
    remaining = max(0, due - paid)
    token = public["token"]
    public["state"] = page_state(public["status"], public.get("exception"), due, paid)
    public["amount_remaining_base_units"] = str(remaining)
    public["amount_remaining"] = format(base_units_to_decimal(remaining, decimals), "f")
    public["display"] = {
        "price": format_fiat(public["amount"], public["currency"]),
        "amount_due": format_token(base_units_to_decimal(due, decimals), token),
        "amount_paid": format_token(base_units_to_decimal(paid, decimals), token),
        "amount_remaining": format_token(base_units_to_decimal(remaining, decimals), token),
        "paid_at": _when(public.get("paid_at")),
    }
    for transfer in public["transfers"]:
        amount = base_units_to_decimal(int(transfer["amount_base_units"]), int(transfer.get("decimals", decimals)))
        transfer["amount_display"] = format_token(amount, transfer["token"])
    return public
