"""`manage.py stablepay_demo_code USER`: the current code of a demo user's demo authenticator (demo only).

`make demo` gives its staff and ops users a TOTP device with a published key (stablepay/dev/second_factor.py).
This prints the six digits an authenticator app with that key would show now, so the demo can be tried
without a phone. It refuses unless STABLEPAY_DEMO is on, and for any device that does not hold the demo key.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.conf import app_settings
from stablepay.dev.second_factor import current_code, demo_device


class Command(BaseCommand):
    help = "Demo only: print the current second-factor code of a demo user (STABLEPAY_DEMO must be on)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if not app_settings.DEMO_MODE:
            raise CommandError("demo only: run it with STABLEPAY_DEMO=true, against the demo's database")
        user = get_user_model().objects.filter(username=options["username"]).first()
        device = demo_device(user) if user is not None else None
        if device is None:
            raise CommandError(f"{options['username']!r} has no demo authenticator")
        self.stdout.write(current_code(device))
