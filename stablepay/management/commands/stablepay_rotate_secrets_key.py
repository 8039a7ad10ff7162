"""`manage.py stablepay_rotate_secrets_key`: re-encrypt every stored webhook secret with the first key of
STABLEPAY_SECRETS_KEY, after a new key was put first, so the old key can then be dropped.

`--print-derived-key` prints the key derived from the current SECRET_KEY (used when STABLEPAY_SECRETS_KEY
is unset): list it in STABLEPAY_SECRETS_KEY, after a new key, before changing SECRET_KEY.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from stablepay import secret_box

COLUMNS = ("webhook_secret", "webhook_secret_previous")


class Command(BaseCommand):
    help = "Re-encrypt stored webhook secrets with the first STABLEPAY_SECRETS_KEY key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print-derived-key", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_derived_key"]:
            self.stdout.write(secret_box.derive_key(settings.SECRET_KEY).decode())
            return
        count = 0
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, webhook_secret, webhook_secret_previous FROM stablepay_merchant FOR UPDATE"
                if connection.vendor == "postgresql"
                else "SELECT id, webhook_secret, webhook_secret_previous FROM stablepay_merchant"
            )
            for pk, *values in cursor.fetchall():
                try:
                    fresh = [secret_box.reencrypt(v) if v else v for v in values]
                except secret_box.SecretDecryptionError as exc:
                    raise CommandError(f"merchant {pk}: {exc} (nothing was changed)") from exc
                cursor.execute(
                    "UPDATE stablepay_merchant SET webhook_secret = %s, webhook_secret_previous = %s WHERE id = %s",
                    [*fresh, pk],
                )
                count += sum(1 for v in values if v)
        self.stdout.write(self.style.SUCCESS(f"re-encrypted {count} webhook secrets with the current key"))
