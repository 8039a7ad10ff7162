"""Shared set-up for the benchmarks: Django on a scratch database, and open requests in bulk."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TMP = REPO_ROOT / "bench/results/tmp"
BATCH = 5_000


def setup_django(database_url: str | None = None, *, sqlite_name: str = "bench") -> None:
    """Configure Django on `database_url`, or on a fresh SQLite file under bench/results/tmp/, and migrate."""
    TMP.mkdir(parents=True, exist_ok=True)
    if database_url is None:
        db = TMP / f"{sqlite_name}.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        database_url = f"sqlite:///{db}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_merchant() -> Any:
    from stablepay.models import Merchant

    return Merchant.objects.create(
        slug="bench", name="Bench", xpub="xpub-bench", api_key_hash=hashlib.sha256(b"bench").hexdigest()
    )


def open_requests(
    count: int,
    start_index: int,
    merchant: Any,
    token: Any,
    rng: random.Random,
    addresses: Sequence[str] | None = None,
) -> list[str]:
    """Bulk-insert `count` open requests paying `addresses` (random ones by default); their deposit addresses."""
    from django.utils import timezone

    from stablepay.models import PaymentRequest

    now = timezone.now()
    out: list[str] = []
    for first in range(0, count, BATCH):  # in batches: the objects of one batch at a time in memory
        rows = [
            PaymentRequest(
                merchant=merchant,
                token=token,
                order_reference=f"bench-{start_index + i}",
                amount=Decimal("100.00"),
                currency="HKD",
                rate=Decimal(1),
                amount_due_base_units=Decimal(100_000_000),
                pay_to=addresses[i] if addresses else "0x" + rng.randbytes(20).hex(),
                derivation_index=start_index + i,
                created_at=now,
                expires_at=now + timedelta(hours=2),
                watch_until=now + timedelta(days=7),
            )
            for i in range(first, min(count, first + BATCH))
        ]
        PaymentRequest.objects.bulk_create(rows)
        out += [row.pay_to for row in rows]
    return out


def scratch_postgres(name: str) -> str:
    """A fresh, empty PostgreSQL database `name` on the local server (or a throwaway one); its URL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from tests.support.services import postgres_url

    server = urlsplit(postgres_url())
    admin = urlunsplit(server._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(server._replace(path=f"/{name}"))
