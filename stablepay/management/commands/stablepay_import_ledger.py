"""`manage.py stablepay_import_ledger FILE [--verify-only]`: verify an archive and re-import it.

Checks the archive's SHA-256 trailer and counts (stablepay/ledger/archive.py), then writes what this
database lacks in one transaction; rows already there must be identical (a conflict names the row and
writes nothing). Prints the result as JSON; exits with an error on a damaged or tampered archive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.ledger import archive as ledger_archive


class Command(BaseCommand):
    help = "Verify a ledger archive and import what this database lacks (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a stablepay_export_ledger archive")
        parser.add_argument("--verify-only", action="store_true", help="check the archive, import nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            result = ledger_archive.import_archive(path, verify_only=options["verify_only"])
        except ledger_archive.ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result))
