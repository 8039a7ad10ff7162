"""System checks for payer screening's settings (see stablepay/compliance/screening.py), so a typo stops start-up
instead of surfacing in the watcher:

- stablepay.E111: STABLEPAY_SCREENING_BACKEND does not name an importable ScreeningBackend subclass.
- stablepay.E112: STABLEPAY_SCREENING_FAIL_OPEN_BELOW_HKD is not an amount >= 0.
- stablepay.E113: an HttpBackend without STABLEPAY_SCREENING_HTTP_URL, or a timeout that is not a number > 0.
- stablepay.E114: STABLEPAY_SCREENING_RETRY_SECONDS is not a number > 0.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

from stablepay.compliance.screening import DEFAULT_BACKEND, HttpBackend, ScreeningBackend


@register()
def screening_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    options = settings.STABLEPAY
    errors: list[CheckMessage] = []
    name = options.get("SCREENING_BACKEND", DEFAULT_BACKEND)
    backend: Any = None
    try:
        backend = import_string(name)
    except Exception as exc:  # ImportError, or a module that fails as it is imported, or a name that is no path
        errors.append(Error(f"STABLEPAY_SCREENING_BACKEND {name!r} cannot be imported: {exc}", id="stablepay.E111"))
    if backend is not None and not (isinstance(backend, type) and issubclass(backend, ScreeningBackend)):
        errors.append(
            Error(f"STABLEPAY_SCREENING_BACKEND {name!r} is not a ScreeningBackend subclass", id="stablepay.E111")
        )
    limit = str(options.get("SCREENING_FAIL_OPEN_BELOW_HKD", "8000.00"))
    try:
        valid = Decimal(limit).is_finite() and Decimal(limit) >= 0
    except InvalidOperation:
        valid = False
    if not valid:
        errors.append(
            Error(f"STABLEPAY_SCREENING_FAIL_OPEN_BELOW_HKD {limit!r} is not an amount >= 0", id="stablepay.E112")
        )
    if isinstance(backend, type) and issubclass(backend, HttpBackend) and not options.get("SCREENING_HTTP_URL"):
        errors.append(Error("the HTTP screening backend needs STABLEPAY_SCREENING_HTTP_URL", id="stablepay.E113"))
    timeout = options.get("SCREENING_HTTP_TIMEOUT_SECONDS", 3.0)
    if not _positive_seconds(timeout):
        errors.append(
            Error(
                f"STABLEPAY_SCREENING_HTTP_TIMEOUT {timeout!r} must be a number of seconds more than 0",
                id="stablepay.E113",
            )
        )
    retry = options.get("SCREENING_RETRY_SECONDS", 60)
    if not _positive_seconds(retry):
        errors.append(
            Error(
                f"STABLEPAY_SCREENING_RETRY_SECONDS {retry!r} must be a number of seconds more than 0",
                id="stablepay.E114",
            )
        )
    return errors


def _positive_seconds(value: Any) -> bool:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(seconds) and seconds > 0
