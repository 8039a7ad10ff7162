"""Money: fiat Decimals, token base units, exact FX ratios and the one rounding rule (ceil for amounts due).

FX rates are held as exact Fractions of the configured Decimals, so a quote is computed from the exact
ratio and rounded once, up, at the end. No float appears anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction

AMOUNT_PATTERN = re.compile(r"^[0-9]+(\.[0-9]{1,2})?\Z", re.ASCII)  # \Z: "$" would allow a final newline
MAX_AMOUNT_DIGITS = 15  # integer digits of a fiat amount: up to 999 trillion
PIVOT = "HKD"
DEFAULT_FX: dict[tuple[str, str], Decimal] = {("HKD", "MOP"): Decimal("1.03"), ("USD", "HKD"): Decimal("7.80")}
RATE_PLACES = Decimal("1E-18")
# Token amounts reach 78 digits (a uint256) and fiat figures derived from them more: Python's default decimal
# context keeps 28 significant digits (and refuses to quantize beyond), so amounts are scaled, quantized
# and added in this one.
EXACT = Context(prec=200)


class FxError(ValueError):
    """No rate links the two currencies."""


def parse_fiat_amount(text: str) -> Decimal:
    """A fiat amount from its contract form: ASCII digits, at most 2 decimals, > 0. Raises ValueError."""
    if not isinstance(text, str) or not AMOUNT_PATTERN.match(text):
        raise ValueError('must be a string of digits with at most 2 decimals, e.g. "103.00"')
    if len(text.split(".")[0].lstrip("0")) > MAX_AMOUNT_DIGITS:
        raise ValueError(f"must have at most {MAX_AMOUNT_DIGITS} digits before the decimal point")
    amount = Decimal(text)
    if amount <= 0:
        raise ValueError("must be greater than 0")
    return amount.quantize(Decimal("0.01"))


def fx_ratio(source: str, target: str, rates: Mapping[tuple[str, str], Decimal]) -> Fraction:
    """Units of `target` per 1 unit of `source`, exactly: direct, inverse, or through HKD."""
    if source == target:
        return Fraction(1)
    if (source, target) in rates:
        return Fraction(rates[(source, target)])
    if (target, source) in rates:
        return 1 / Fraction(rates[(target, source)])
    if PIVOT not in (source, target):
        return fx_ratio(source, PIVOT, rates) * fx_ratio(PIVOT, target, rates)
    raise FxError(f"no FX rate for {source}/{target}")


def rates_as_json(rates: Mapping[tuple[str, str], Decimal]) -> dict[str, str]:
    """An FX table as stored on a payment request: {"USD/HKD": "7.8", ...}, exact decimal strings."""
    return {f"{base}/{quote_ccy}": decimal_text(rate) for (base, quote_ccy), rate in sorted(rates.items())}


def rates_from_json(stored: Mapping[str, str] | None) -> dict[tuple[str, str], Decimal]:
    """The FX table `rates_as_json` wrote; None or a malformed entry: no rate (nothing can be converted)."""
    rates: dict[tuple[str, str], Decimal] = {}
    for pair, text in (stored or {}).items():
        base, _, quote_ccy = str(pair).partition("/")
        try:
            rate = Decimal(str(text))
        except InvalidOperation:
            continue
        if base and quote_ccy and rate.is_finite() and rate > 0:
            rates[(base, quote_ccy)] = rate
    return rates


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain digits, without exponent or trailing zeros: 7.80 -> "7.8", 5.00 -> "5"."""
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def ceil_fraction(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


@dataclass(frozen=True)
class Quote:
    amount_due_base_units: int
    rate: Decimal  # token units per 1 unit of fiat, informative (rounded to 18 places)


def quote(amount: Decimal, ratio: Fraction, decimals: int) -> Quote:
    """The amount due in base units, ceil(amount x ratio x 10^decimals): the merchant never gets less."""
    due = ceil_fraction(Fraction(amount) * ratio * 10**decimals)
    rate = (Decimal(ratio.numerator) / Decimal(ratio.denominator)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)
    return Quote(amount_due_base_units=due, rate=rate)


def base_units_to_decimal(base_units: int | Decimal, decimals: int) -> Decimal:
    """Base units as a token Decimal with exactly `decimals` places: 100000000, 6 -> 100.000000. Exact at
    any size a token amount can have."""
    places = Decimal(1).scaleb(-decimals)
    return Decimal(int(base_units)).scaleb(-decimals, context=EXACT).quantize(places, context=EXACT)


def format_token_amount(base_units: int | Decimal, decimals: int) -> str:
    return format(base_units_to_decimal(base_units, decimals), "f")


# display ------------------------------------------------------------------------------------------------
CURRENCY_SYMBOLS = {"HKD": "HK$", "MOP": "MOP$", "USD": "US$", "CNH": "CNH¥"}
CENT = Decimal("0.01")


def format_fiat(amount: Decimal | int | str | None, currency: str) -> str:
    """The one fiat display rule, in every language: HK$1,680.00, MOP$1,730.40, US$0.10, CNH¥12.00, -HK$5.00.
    Half-up to the cent (display only), thousands separators, the local symbol before the number; an unknown
    currency keeps its code and a space ("EUR 3.00"); '' for a missing or non-numeric amount. Never a float."""
    if amount is None or amount == "" or isinstance(amount, float):
        return ""
    try:
        value = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP, context=EXACT)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    if not value.is_finite():
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def format_token(amount: Decimal | int | str | None, symbol: str = "") -> str:
    """A token amount with thousands separators, keeping every place it has: 1,680.000000 HKDX. Exact."""
    if amount is None or amount == "" or isinstance(amount, float):
        return ""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    if not value.is_finite():
        return ""
    text = f"{value:,f}"
    return f"{text} {symbol}" if symbol else text
