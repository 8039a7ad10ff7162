"""System checks for the four-eyes limits of the ops decisions (stablepay/ops/services.py), so a typo stops
start-up instead of surfacing as a 500 in the ops console or, worse, a limit that is not the one meant:

- stablepay.E121: STABLEPAY_ACCEPT_FOUR_EYES_ABOVE_HKD (STABLEPAY["ACCEPT_FOUR_EYES_ABOVE_HKD"]) is not an
  amount >= 0. Accepting an underpaid or wrong-token payment whose shortfall is worth this much HKD or more
  needs a second ops user; 0 makes every such accept four-eyes.
- stablepay.E122: STABLEPAY_FOUR_EYES_ABOVE_HKD (STABLEPAY["FOUR_EYES_REFUND_ABOVE_HKD"], the refund limit)
  is not an amount >= 0.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from stablepay.ops.selectors import DEFAULT_ACCEPT_FOUR_EYES_HKD

ACCEPT_ENV = "STABLEPAY_ACCEPT_FOUR_EYES_ABOVE_HKD"
LIMITS = (
    # (STABLEPAY key, its environment variable, default, check id)
    ("ACCEPT_FOUR_EYES_ABOVE_HKD", ACCEPT_ENV, DEFAULT_ACCEPT_FOUR_EYES_HKD, "stablepay.E121"),
    ("FOUR_EYES_REFUND_ABOVE_HKD", "STABLEPAY_FOUR_EYES_ABOVE_HKD", "1000.00", "stablepay.E122"),
)


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


@register()
def four_eyes_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key, variable, default, check_id in LIMITS:
        value = settings.STABLEPAY.get(key, default)
        if _amount(value) is None:
            errors.append(
                Error(
                    f"{variable} {value!r} is not an amount in HKD >= 0",
                    hint='A decimal string such as "1000.00".',
                    id=check_id,
                )
            )
    return errors
