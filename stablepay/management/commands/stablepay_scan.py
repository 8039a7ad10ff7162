"""`manage.py stablepay_scan [--once]`: the embedded watcher (scan, expire, deliver webhooks)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from stablepay import watcher

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Scan every chain once (--once) or forever, expiring requests and delivering webhooks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one full pass, then exit 0")
        parser.add_argument("--interval", type=float, default=settings.STABLEPAY["SCAN_INTERVAL_SECONDS"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            for result in watcher.scan_once():
                self.stdout.write(
                    f"chain {result.chain_id}: head {result.head}, scanned {result.scanned}, "
                    f"{result.recorded} transfers recorded, {result.orphaned} orphaned"
                )
            return
        self.stdout.write(f"stablepay watcher: scanning every {options['interval']} s (Ctrl-C stops)")
        try:
            while True:
                started = time.monotonic()
                try:
                    watcher.scan_once()
                except Exception:  # the loop must survive a bad pass; the next one retries
                    logger.exception("scan pass failed")
                close_old_connections()
                time.sleep(max(0.0, options["interval"] - (time.monotonic() - started)))
        except KeyboardInterrupt:
            self.stdout.write("stablepay watcher stopped")
