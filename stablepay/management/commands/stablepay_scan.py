"""`manage.py stablepay_scan [--once | --dispatch]`: the embedded watcher (scan, expire, deliver webhooks)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from stablepay.conf import app_settings
from stablepay.ingest import watcher
from stablepay.ingest.watch_loop import WatchLoop


class Command(BaseCommand):
    help = (
        "Scan every chain once (--once) or forever: at each new head announced on a chain's ws_url, and "
        "every --interval seconds as the fallback, expiring requests and delivering webhooks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one full pass, then exit 0")
        parser.add_argument("--interval", type=float, default=app_settings.SCAN_INTERVAL_SECONDS)
        parser.add_argument(
            "--dispatch",
            action="store_true",
            help="Celery mode: only forward new heads to the workers as scan tasks (beat polls and sweeps)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            for result in watcher.scan_once():
                self.stdout.write(
                    f"chain {result.chain_id}: head {result.head}, scanned {result.scanned}, "
                    f"{result.recorded} transfers recorded, {result.orphaned} orphaned"
                )
            return
        dispatch = None
        if options["dispatch"]:
            from stablepay.tasks import forward_head

            dispatch = forward_head
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        mode = "forwarding new heads to Celery" if dispatch else f"scanning on each new head or {options['interval']} s"
        self.stdout.write(f"stablepay watcher: {mode} (Ctrl-C stops)")
        try:
            WatchLoop(interval=options["interval"], dispatch=dispatch).run(stop)
        except KeyboardInterrupt:
            stop.set()
        self.stdout.write("stablepay watcher stopped")
