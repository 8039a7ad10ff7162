"""`manage.py stablepay_reconcile [--chain-id C] [--dry-run | --report]`: the set-based sweep and report.

Without options: bring every request's status in line with its transfers (bulk_reconcile), with the
same timeline events, webhooks and signals as the per-row service, and print what changed as JSON.
`--dry-run` prints what would change and writes nothing. `--report` prints the ledger-consistency
report (ledger_report) and exits 1 when any check finds something, like `stablepay_audit`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.ledger.bulk_reconcile import payment_requests_reconcile_all
from stablepay.ledger.report import ledger_report
from stablepay.models import Chain


class Command(BaseCommand):
    help = "Recompute every payment request's status from its transfers in bulk, or report on the ledger."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain-id", type=int, help="only the requests in this chain's tokens")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
        mode.add_argument("--report", action="store_true", help="print the ledger-consistency report")
        parser.add_argument("--sample", type=int, default=10, help="ids listed per finding (default 10)")

    def handle(self, *args: Any, **options: Any) -> None:
        chain_id = options["chain_id"]
        if chain_id is not None and not Chain.objects.filter(chain_id=chain_id).exists():
            raise CommandError(f"chain-id: no registered chain {chain_id}")
        if options["sample"] < 0:
            raise CommandError("sample: must be >= 0")
        if options["report"]:
            report = ledger_report(chain_id=chain_id, sample=options["sample"])
            self.stdout.write(json.dumps(report, indent=2))
            if not report["ok"]:
                sys.exit(1)
            return
        result = payment_requests_reconcile_all(chain_id=chain_id, dry_run=options["dry_run"], sample=options["sample"])
        self.stdout.write(json.dumps({"dry_run": options["dry_run"], **result.as_dict()}, indent=2))
