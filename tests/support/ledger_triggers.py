"""Test helper: switch off the ledger's append-only triggers (migration 0010) for a moment.

Only for tests that play a tamperer or rewrite history on purpose (a DBA with owner rights can do the
same: ALTER TABLE ... DISABLE TRIGGER). PostgreSQL only; the triggers are back on when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

LEDGER_TABLES = ("stablepay_transfer", "stablepay_event", "stablepay_opsaction")


@contextmanager
def ledger_unguarded() -> Iterator[None]:
    assert connection.vendor == "postgresql", "ledger_unguarded is for PostgreSQL"
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while deferred foreign-key checks are pending in this transaction: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in LEDGER_TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in LEDGER_TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
