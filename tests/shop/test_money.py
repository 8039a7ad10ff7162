"""The one fiat display rule (stablepay.money.format_fiat, the `money` filter) and exact token amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from shop.templatetags.shop_money import money
from stablepay.checkout.state import page_state
from stablepay.money import format_fiat, format_token


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("88"), "HKD", "HK$88.00"),
        (Decimal("128.00"), "MOP", "MOP$128.00"),
        (Decimal("1680"), "HKD", "HK$1,680.00"),
        (Decimal("1730.4"), "MOP", "MOP$1,730.40"),
        (Decimal("1288.5"), "HKD", "HK$1,288.50"),
        (Decimal("1234567.891"), "HKD", "HK$1,234,567.89"),
        (Decimal("0.005"), "HKD", "HK$0.01"),  # half-up, display only
        (Decimal("0.1"), "USD", "US$0.10"),
        (Decimal("12"), "CNH", "CNH¥12.00"),
        (Decimal("-5"), "HKD", "-HK$5.00"),
        (Decimal("3"), "EUR", "EUR 3.00"),
        (7, "MOP", "MOP$7.00"),
        ("12.30", "MOP", "MOP$12.30"),
        (None, "HKD", ""),
        ("not money", "HKD", ""),
        ("NaN", "HKD", ""),
        (1.5, "HKD", ""),  # a float is refused, never rounded through binary
    ],
)
def test_money(amount: Decimal | str | int | float | None, currency: str, expected: str) -> None:
    assert money(amount, currency) == expected
    assert format_fiat(amount, currency) == expected


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_money_is_the_same_in_both_languages_in_templates(language: str) -> None:
    template = Template("{% load shop_money %}{{ a|money:'HKD' }} {{ b|money:'MOP' }}")
    other = Template("{% load money_display %}{{ a|money:'HKD' }} {{ c|token:'HKDX' }}")
    with translation.override(language):
        assert template.render(Context({"a": Decimal("1680"), "b": Decimal("1730.40")})) == "HK$1,680.00 MOP$1,730.40"
        assert other.render(Context({"a": Decimal("1680"), "c": Decimal("1680.000000")})) == (
            "HK$1,680.00 1,680.000000 HKDX"
        )


def test_token_amounts_keep_every_place() -> None:
    assert format_token(Decimal("1680.000000"), "HKDX") == "1,680.000000 HKDX"
    assert format_token(Decimal("0.000001"), "USDC") == "0.000001 USDC"
    assert format_token(Decimal("123456789.123456789012345678")) == "123,456,789.123456789012345678"
    assert format_token(None) == "" and format_token(0.5) == ""


@pytest.mark.parametrize(
    ("status", "exception", "due", "paid", "state"),
    [
        ("open", None, 100, 0, "open"),
        ("open", None, 100, 40, "underpaid"),
        ("open", None, 100, 100, "open"),  # confirming is its own status
        ("confirming", None, 100, 100, "confirming"),
        ("paid", None, 100, 100, "paid"),
        ("paid", "overpaid", 100, 150, "overpaid"),
        ("paid", "wrong_token", 100, 100, "paid"),
        ("expired", None, 100, 0, "expired"),
        ("needs_review", "underpaid", 100, 40, "underpaid_expired"),
        ("needs_review", "late", 100, 100, "late"),
        ("needs_review", "wrong_token", 100, 0, "needs_review"),
        ("refunded", "overpaid", 100, 150, "refunded"),
    ],
)
def test_page_state(status: str, exception: str | None, due: int, paid: int, state: str) -> None:
    assert page_state(status, exception, due, paid) == state
