"""`manage.py stablepay_audit --chain-id C --from-block A --to-block B`: chain vs ledger, as JSON.

Exit 0 when `missing`, `extra` and `mismatched` are all empty, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.chain.factory import reader_for_chain
from stablepay.chain.reader import ChainError
from stablepay.ingest.chain_audit import audit_chain
from stablepay.models import Chain


class Command(BaseCommand):
    help = "Re-read a block range from the chain, independently of the watcher, and compare it with the ledger."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain-id", type=int, required=True)
        parser.add_argument("--from-block", type=int, required=True)
        parser.add_argument("--to-block", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        chain = Chain.objects.filter(chain_id=options["chain_id"]).first()
        if chain is None:
            raise CommandError(f"chain-id: no registered chain {options['chain_id']}")
        if not 0 <= options["from_block"] <= options["to_block"]:
            raise CommandError("from-block: must be >= 0 and <= to-block")
        reader = reader_for_chain(chain)
        try:
            report = audit_chain(
                chain=chain, reader=reader, from_block=options["from_block"], to_block=options["to_block"]
            )
        except ChainError as exc:
            raise CommandError(f"chain: {exc}") from exc
        self.stdout.write(json.dumps(report, indent=2))
        if report["missing"] or report["extra"] or report["mismatched"]:
            sys.exit(1)
