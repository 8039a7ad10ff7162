"""`manage.py stablepay_dev_pay ID [--amount BASE_UNITS]`: pay a request from a local anvil dev account."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.dev import tools as devtools
from stablepay.ledger import selectors


class Command(BaseCommand):
    help = "Development only: send a payment request's amount from an anvil test account (chain 31337)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request_id")
        parser.add_argument("--amount", type=int, help="base units to send (default: the amount due)")
        parser.add_argument("--sender-index", type=int, default=1, help="anvil account index (default 1)")

    def handle(self, *args: Any, **options: Any) -> None:
        request = selectors.payment_request_by_id(options["request_id"])
        if request is None:
            raise CommandError(f"request_id: no payment request {options['request_id']}")
        try:
            tx_hash = devtools.pay_request(
                request, amount_base_units=options["amount"], sender_index=options["sender_index"]
            )
        except devtools.NotALocalChain as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"sent {options['amount'] or request.amount_due_base_units} base units: {tx_hash}")
