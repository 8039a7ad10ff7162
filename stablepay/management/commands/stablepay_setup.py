"""`manage.py stablepay_setup FILE.json`: idempotent upsert of chains, tokens, merchants and FX rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.governance import setup_file


class Command(BaseCommand):
    help = "Register chains, tokens, merchants and FX rates from a JSON file (all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"file: cannot read {path} ({exc})") from exc
        try:
            summary = setup_file.apply(setup_file.parse(text))
        except setup_file.SetupError as exc:
            raise CommandError(f"{exc} (nothing was changed)") from exc
        for warning in summary.warnings:
            self.stderr.write(self.style.WARNING(warning))
        self.stdout.write(
            self.style.SUCCESS(
                f"stablepay setup: {summary.chains} chains, {summary.tokens} tokens, "
                f"{summary.merchants} merchants, {summary.fx} FX rates"
            )
        )
