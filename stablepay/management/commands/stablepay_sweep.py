"""`manage.py stablepay_sweep --chain-id C [--token SYMBOL_OR_ADDRESS] [--min-amount X] [--unsigned FILE]`
(CONTRACT §7): move what forwarder deposit addresses hold to their settlement addresses, sent with the gas-only
STABLEPAY_SWEEPER_KEY or written unsigned for the merchant's wallet. The work is stablepay/treasury/services.py."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.conf import app_settings
from stablepay.errors import StablepayError
from stablepay.treasury.services import sweep_run


class Command(BaseCommand):
    help = "Sweep forwarder deposit addresses to their settlement addresses (sent, or written unsigned)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain-id", type=int, required=True)
        parser.add_argument("--token", help="A registered symbol or any ERC-20 address (default: every registered)")
        parser.add_argument("--min-amount", default="0", help="Skip addresses holding less (token units)")
        parser.add_argument("--unsigned", metavar="FILE", help="Write the transactions here instead of sending them")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            min_amount = Decimal(options["min_amount"])
        except InvalidOperation:
            raise CommandError("--min-amount: must be a decimal number") from None
        if not min_amount.is_finite():
            raise CommandError("--min-amount: must be a decimal number")
        try:
            result = sweep_run(
                chain_id=options["chain_id"],
                token=options["token"],
                min_amount=min_amount,
                unsigned_path=Path(options["unsigned"]) if options["unsigned"] else None,
                sweeper_key=app_settings.SWEEPER_KEY,
            )
        except StablepayError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from exc
        if not result.plans:
            self.stdout.write(f"nothing to sweep on chain {result.chain_id}")
        self.stdout.write(json.dumps(result.summary(), indent=2))
