"""`manage.py stablepay_export_ledger --from YYYY-MM-DD --to YYYY-MM-DD [--output FILE]`: archive a range.

Writes the gzip JSON Lines archive of stablepay/ledger/archive.py (default file:
stablepay-ledger-<from>-<to>.jsonl.gz) and prints its line count and SHA-256 as JSON.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.ledger import archive as ledger_archive


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Export the ledger rows of a date range as a verifiable gzip JSON Lines archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC), inclusive")
        parser.add_argument("--output", help="archive file (default stablepay-ledger-<from>-<to>.jsonl.gz)")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = _date(options["start"]), _date(options["end"])
        if end < start:
            raise CommandError("--to is before --from")
        path = Path(options["output"] or f"stablepay-ledger-{start}-{end}.jsonl.gz")
        tmp = path.with_name(path.name + ".part")
        with tmp.open("wb") as out:
            trailer = ledger_archive.export(start, end, out)
        tmp.replace(path)
        self.stdout.write(json.dumps({"file": str(path), "lines": trailer["lines"], "sha256": trailer["sha256"]}))
