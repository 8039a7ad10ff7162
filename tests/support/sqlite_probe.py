"""For the SQLite probes that run inside `manage.py shell` (tests/*/sqlite_*_probe.py): try a write and
record whether the database allowed it or refused it (a trigger or a constraint)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction


def attempt(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """results[name] = "ok" when `fn` ran, or "refused: <reason>" when the database refused it (rolled back)."""
    try:
        with transaction.atomic():
            fn()
        results[name] = "ok"
    except IntegrityError as exc:
        results[name] = "refused: " + str(exc)
