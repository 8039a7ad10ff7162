"""`{{ amount|money:currency }}`: HK$ 88.00, MOP$ 128.00, US$ 1,250.00. Decimal in, never float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()

CURRENCY_SYMBOLS = {"HKD": "HK$", "MOP": "MOP$", "USD": "US$", "CNH": "CNH ¥"}
CENTS = Decimal("0.01")


@register.filter
def money(amount: Decimal | int | str | None, currency: str) -> str:
    """Two decimals with thousands separators after the currency's symbol; '' for a missing amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(amount).quantize(CENTS)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    return f"{symbol} {value:,.2f}"
