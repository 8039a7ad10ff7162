"""Ledger retention on SQLite (the embedded/demo mode): a fresh database file, migrated and probed by
real `manage.py` subprocesses (tests/ledger/sqlite_ledger_probe.py), and a PostgreSQL archive
re-imported into it."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from stablepay.models import PaymentRequest, Transfer
from tests.support.ledger_copies import RANGE, archive_raw_lines, command_json, manage, ops_action
from tests.support.random_ledgers import NOW, World, random_ledger

PROBE = Path(__file__).with_name("sqlite_ledger_probe.py")


def test_sqlite_guards_lifecycle_and_purge(sqlite_url: str) -> None:
    run = manage(sqlite_url, "shell", "-c", f"exec(open({str(PROBE)!r}).read())")
    assert run.returncode == 0, run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    r: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    for name in (
        "transfer_update_amount",
        "transfer_raw_update_to",
        "transfer_update_tx_hash",
        "transfer_delete_orm",
        "transfer_delete_queryset",
        "transfer_delete_raw",
        "event_update_note",
        "event_delete_raw",
        "ops_update_requester",
        "ops_delete_raw",
        "transfer_move_same_hash",
        "transfer_unreviewed",
        "ops_decide_again",
        "ops_refund_tx_again",
        "old_transfer_delete_raw",
    ):
        assert r[name].startswith("refused: "), (name, r[name])
        assert "append-only" in r[name], (name, r[name])
    for name in (
        "transfer_confirm",
        "transfer_orphan",
        "transfer_revive_remined",
        "transfer_reviewed",
        "ops_approve",
        "ops_refund_tx",
    ):
        assert r[name] == "ok", (name, r[name])
    expected = {"stablepay_opsaction": 0, "stablepay_event": 1, "stablepay_transfer": 1}
    assert r["dry_run"] == r["purge"] == expected
    assert r["left"] == {"transfers": [1], "events": ["created"]}
    assert r["gate_rows"] == 0


@pytest.fixture
def sqlite_safe_ledger(world: World, request: pytest.FixtureRequest) -> World:
    """A random ledger whose numbers SQLite holds exactly, with decided and pending ops actions, and with
    base units beyond 2**63 (exact on SQLite since migration 0014). Rates are still decimal columns, which
    SQLite keeps to 15 significant digits: not the 18-digit 0.128205128205128205."""
    for seed in range(500):
        savepoint = transaction.savepoint()
        random_ledger(world, random.Random(seed), 5)
        biggest = max(
            max(Transfer.objects.values_list("amount_base_units", flat=True), default=0),
            max(PaymentRequest.objects.values_list("amount_due_base_units", flat=True), default=0),
        )
        if biggest > 2**63 and not PaymentRequest.objects.filter(rate=Decimal("0.128205128205128205")).exists():
            break
        transaction.savepoint_rollback(savepoint)  # a rollback, not a DELETE: the triggers do not object
    else:
        pytest.fail("no seed gave a ledger SQLite holds exactly")
    ann, ben = request.getfixturevalue("users")
    first, second = PaymentRequest.objects.order_by("id")[:2]
    ops_action(first, ann, NOW - timedelta(minutes=2), state="done", decided_by=ben, decided_at=NOW, decision_note="ok")
    ops_action(second, ben, NOW - timedelta(minutes=1))
    return world


@pytest.mark.usefixtures("sqlite_safe_ledger")
def test_postgres_archive_reimports_into_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    archive = tmp_path / "ledger.jsonl.gz"
    header = command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    assert header["lines"] > 10
    first = manage(sqlite_url, "stablepay_import_ledger", str(archive))
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)["created"]
    assert created["transfer"] == Transfer.objects.count() > 0 and created["ops_action"] == 2
    again = manage(sqlite_url, "stablepay_import_ledger", str(archive))
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["created"].values()) == {0}
    reexport = tmp_path / "sqlite.jsonl.gz"
    done = manage(sqlite_url, "stablepay_export_ledger", *RANGE, "--output", str(reexport))
    assert done.returncode == 0, done.stderr
    assert archive_raw_lines(reexport)[1:-1] == archive_raw_lines(archive)[1:-1]


@pytest.mark.usefixtures("full_ledger")
def test_sqlite_refuses_an_amount_it_cannot_hold_exactly(tmp_path: Path, sqlite_url: str) -> None:
    """SQLite keeps a decimal column to 15 significant digits: the 18-digit rate 0.128205128205128205 would
    be rounded. The import reads every row back and rolls back rather than keep a rounded value. (Base units
    are exact there since migration 0014: the 10**21 + 7 transfer is not what it refuses.)"""
    archive = tmp_path / "ledger.jsonl.gz"
    command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    run = manage(sqlite_url, "stablepay_import_ledger", str(archive))
    assert run.returncode == 1
    assert "did not store the archived value exactly" in run.stderr
    assert "0.128205128205128205" in run.stderr
    assert str(10**21 + 7) not in run.stderr
    count = manage(
        sqlite_url, "shell", "-c", "from stablepay.models import Transfer; print('N', Transfer.objects.count())"
    )
    assert "N 0" in count.stdout
