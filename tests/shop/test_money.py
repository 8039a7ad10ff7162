"""The `money` template filter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shop.templatetags.shop_money import money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("88"), "HKD", "HK$ 88.00"),
        (Decimal("128.00"), "MOP", "MOP$ 128.00"),
        (Decimal("1288.5"), "HKD", "HK$ 1,288.50"),
        (Decimal("0.1"), "USD", "US$ 0.10"),
        ("12.30", "MOP", "MOP$ 12.30"),
        (None, "HKD", ""),
        ("not money", "HKD", ""),
    ],
)
def test_money(amount: Decimal | str | None, currency: str, expected: str) -> None:
    assert money(amount, currency) == expected
