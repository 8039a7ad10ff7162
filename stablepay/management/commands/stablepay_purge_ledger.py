"""`manage.py stablepay_purge_ledger [--dry-run]`: delete ledger rows past the retention period.

Deletes the transfers, timeline events and ops actions older than STABLEPAY["LEDGER_RETENTION_YEARS"]
(stablepay/ledger/retention.py) and prints the counts as JSON; `--dry-run` only counts them. Nothing younger
can be deleted: the database triggers refuse it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.ledger import retention


class Command(BaseCommand):
    help = "Delete ledger rows (transfers, events, ops actions) older than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = retention.purge(dry_run=options["dry_run"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "dry_run": result.dry_run,
                    "retention_years": retention.retention_years(),
                    "cutoff": result.cutoff.isoformat(),
                    "deleted" if not result.dry_run else "would_delete": result.counts,
                }
            )
        )
