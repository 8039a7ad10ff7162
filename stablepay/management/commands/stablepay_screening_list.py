"""`manage.py stablepay_screening_list (--deny | --allow) FILE --reason TEXT`: load a file of addresses
onto the screening list (stablepay/compliance/screening_list.py), all or nothing; prints the counts as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.compliance.screening_list import ListFileError, import_addresses, parse_addresses


class Command(BaseCommand):
    help = "Add a file of payer addresses (one per line) to the screening allow or deny list."

    def add_arguments(self, parser: CommandParser) -> None:
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--deny", metavar="FILE", help="hold payments from these addresses")
        kind.add_argument("--allow", metavar="FILE", help="never flag these addresses (known false positives)")
        parser.add_argument("--reason", required=True, help="why: the list's name and date, e.g. 'OFAC SDN 2026-11-20'")

    def handle(self, *args: Any, **options: Any) -> None:
        kind, path = ("deny", options["deny"]) if options["deny"] else ("allow", options["allow"])
        try:
            with Path(path).open(encoding="utf-8") as lines:
                addresses = parse_addresses(lines)
            result = import_addresses(addresses, kind=kind, reason=options["reason"])
        except (OSError, UnicodeDecodeError, ListFileError) as exc:
            raise CommandError(f"{path}: {exc} (nothing was changed)") from exc
        self.stdout.write(json.dumps({"kind": kind, "addresses": len(addresses), **vars(result)}, sort_keys=True))
