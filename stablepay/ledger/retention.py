"""Ledger retention: the one way ledger rows (transfers, events, ops actions) are ever deleted.

The database refuses every DELETE on those tables (migration 0010) unless the deleting transaction has
written a cutoff into `stablepay_ledger_purge_gate`, and then only for rows older than that cutoff.
`purge` computes the cutoff from STABLEPAY["LEDGER_RETENTION_YEARS"] (default 7: IRO s.51C; AMLO asks
for 5), opens the gate inside its own transaction, deletes the older rows with plain SQL, and closes
the gate before commit (a failure rolls the gate back with everything else). Payment requests,
merchants and the registry are not ledger rows and are kept. Export the range first
(stablepay_export_ledger) if the archive must outlive the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from stablepay.conf import app_settings

GATE = "stablepay_ledger_purge_gate"

# table -> the column whose age counts (the same pairs as the triggers of migration 0010)
LEDGER_AGE_COLUMNS = {
    "stablepay_opsaction": "requested_at",
    "stablepay_event": "at",
    "stablepay_transfer": "block_timestamp",
}


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    counts: dict[str, int]
    dry_run: bool


def retention_years() -> int:
    years = app_settings.LEDGER_RETENTION_YEARS
    if not isinstance(years, int) or isinstance(years, bool) or years < 1:
        raise ValueError(f"STABLEPAY['LEDGER_RETENTION_YEARS'] must be a whole number of years >= 1, not {years!r}")
    return years


def cutoff(now: datetime, years: int) -> datetime:
    """`now` minus whole calendar years (29 February falls back to the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def purge(*, now: datetime | None = None, dry_run: bool = False) -> PurgeResult:
    """Delete the ledger rows older than the retention period (count them only, with dry_run)."""
    limit = cutoff(now or timezone.now(), retention_years())
    value = connection.ops.adapt_datetimefield_value(limit)
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        if not dry_run:
            cursor.execute(f"INSERT INTO {GATE} (cutoff) VALUES (%s)", [value])  # noqa: S608
        for table, column in LEDGER_AGE_COLUMNS.items():
            if dry_run:
                cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} < %s", [value])  # noqa: S608
                counts[table] = int(cursor.fetchone()[0])
            else:
                cursor.execute(f"DELETE FROM {table} WHERE {column} < %s", [value])  # noqa: S608
                counts[table] = cursor.rowcount
        if not dry_run:
            cursor.execute(f"DELETE FROM {GATE}")  # noqa: S608
    return PurgeResult(cutoff=limit, counts=counts, dry_run=dry_run)
