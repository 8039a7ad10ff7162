"""Another copy of stablepay, and the ledger's append-only guards, for the retention, archive and screening
tests (tests/ledger, tests/compliance).

- `manage(database_url, *args)`: `manage.py` as a subprocess against another database (a second PostgreSQL
  database: tests/conftest.py's `copy_database`; a fresh SQLite file: its `sqlite_url`);
- `command_json(*args)`: a management command run here, its JSON answer;
- `archive_lines`, `archive_raw_lines`, `rewrite_archive`: the lines of a ledger archive (gzipped JSON lines);
- `refused(fn)`: fn must fail with the database's IntegrityError (in a savepoint); `raw(sql)`: plain SQL;
- `ops_action(request, by, at, ...)`: an ops decision written straight to its append-only table.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from stablepay.models import OpsAction, PaymentRequest
from tests.factories import OpsActionFactory
from tests.support.services import REPO_ROOT

RANGE = ("--from", "2026-11-01", "--to", "2026-11-30")  # the export range of tests/support/random_ledgers.py


def refused(fn: Any) -> str:
    """Run fn in a savepoint; it must fail with an IntegrityError. Returns the message."""
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        fn()
    return str(info.value)


def raw(sql: str, params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


def ops_action(request: PaymentRequest, by: User, at: datetime, **kwargs: Any) -> OpsAction:
    """A refund of an overpayment requested by `by` at `at`, pending approval unless kwargs say otherwise."""
    action: OpsAction = OpsActionFactory(payment_request=request, requested_by=by, requested_at=at, **kwargs)
    return action


def command_json(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(*args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def archive_lines(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rb") as gz:
        return [json.loads(line) for line in gz.read().splitlines()]


def rewrite_archive(path: Path, lines: list[bytes]) -> None:
    with gzip.open(path, "wb") as gz:
        gz.write(b"".join(lines))


def archive_raw_lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as gz:
        return gz.read().splitlines(keepends=True)


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py *args` against database_url, in the repository, with this environment otherwise."""
    env = os.environ | {"DATABASE_URL": database_url, "REDIS_URL": os.environ.get("REDIS_URL", "")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
