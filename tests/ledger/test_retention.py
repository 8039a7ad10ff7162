"""Ledger retention (issue 8 part 4): append-only triggers, the retention purge, export and re-import.

PostgreSQL here (pytest-django's database); SQLite through a fresh database file and real
subprocesses (tests/ledger/test_retention_sqlite.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.test import Client

from stablepay.ledger import archive as ledger_archive
from stablepay.ledger import retention
from stablepay.models import Event, OpsAction, PaymentRequest, Transfer
from tests.factories import EventFactory, TransferFactory
from tests.support.auth import login_as
from tests.support.ledger_copies import (
    RANGE,
    archive_lines,
    archive_raw_lines,
    command_json,
    manage,
    ops_action,
    raw,
    refused,
    rewrite_archive,
)
from tests.support.random_ledgers import NOW, World

# --- append-only ----------------------------------------------------------------------------------


def test_transfer_facts_and_deletes_are_refused_everywhere(ledger: World) -> None:
    t = Transfer.objects.exclude(state="orphaned").first()
    assert t is not None
    pk = t.pk
    message = refused(lambda: Transfer.objects.filter(pk=pk).update(amount_base_units=F("amount_base_units") + 1))
    assert "append-only" in message
    refused(lambda: Transfer.objects.filter(pk=pk).update(from_address="0x" + "e" * 40))
    refused(lambda: Transfer.objects.filter(pk=pk).update(tx_hash="0x" + "0" * 64))
    refused(lambda: raw("UPDATE stablepay_transfer SET amount_base_units = 2 WHERE id = %s", [pk]))
    refused(lambda: raw("UPDATE stablepay_transfer SET log_index = log_index + 1000 WHERE id = %s", [pk]))
    t.amount_base_units = Decimal(3)
    refused(lambda: t.save())
    assert "may not be deleted" in refused(lambda: Transfer.objects.get(pk=pk).delete())
    refused(lambda: Transfer.objects.filter(pk=pk).delete())
    assert "may not be deleted" in refused(lambda: raw("DELETE FROM stablepay_transfer WHERE id = %s", [pk]))
    refused(lambda: raw("DELETE FROM stablepay_transfer"))
    t.refresh_from_db()
    assert t.amount_base_units != 3
    assert Transfer.objects.count() == Transfer.objects.all().count() > 0


def test_transfer_lifecycle_still_moves(ledger: World) -> None:
    t = Transfer.objects.filter(state="seen").first() or Transfer.objects.exclude(state="orphaned").first()
    assert t is not None
    pk = t.pk
    assert Transfer.objects.filter(pk=pk).update(state="confirmed") == 1
    # A reorg orphans; the log mined again in another block is re-recorded in place (watcher._record_hits).
    assert Transfer.objects.filter(pk=pk).update(state="orphaned") == 1
    moved = {"block_number": t.block_number + 5, "block_hash": "0x" + "5" * 64, "block_timestamp": NOW}
    assert Transfer.objects.filter(pk=pk).update(state="seen", **moved) == 1
    # ...or while still seen when the block hash differs (reorg not yet detected).
    assert Transfer.objects.filter(pk=pk).update(block_number=t.block_number + 6, block_hash="0x" + "6" * 64) == 1
    # Same block hash, not orphaned: the observation is fixed.
    refused(lambda: Transfer.objects.filter(pk=pk).update(block_number=t.block_number + 7))
    assert Transfer.objects.filter(pk=pk).update(reviewed=True) == 1
    assert "stays reviewed" in refused(lambda: Transfer.objects.filter(pk=pk).update(reviewed=False))


def test_events_never_change(ledger: World) -> None:
    e = Event.objects.first()
    assert e is not None
    refused(lambda: Event.objects.filter(pk=e.pk).update(note="rewritten"))
    refused(lambda: Event.objects.filter(pk=e.pk).update(actor="someone else"))
    refused(lambda: raw("UPDATE stablepay_event SET at = at - interval '1 day' WHERE id = %s", [e.pk]))
    refused(lambda: e.delete())
    refused(lambda: Event.objects.all().delete())
    refused(lambda: raw("DELETE FROM stablepay_event WHERE id = %s", [e.pk]))
    # A same-value UPDATE (the ORM's save() of an unchanged row) changes nothing and passes.
    e.save()


def test_ops_action_decision_once_facts_never(ledger: World, users: tuple[User, User]) -> None:
    ann, ben = users
    pr = PaymentRequest.objects.first()
    assert pr is not None
    op = ops_action(pr, ann, NOW)
    refused(lambda: OpsAction.objects.filter(pk=op.pk).update(refund_address="0x" + "1" * 40))
    refused(lambda: OpsAction.objects.filter(pk=op.pk).update(requested_by=ben))
    refused(lambda: OpsAction.objects.filter(pk=op.pk).update(note="other reason"))
    refused(lambda: OpsAction.objects.filter(pk=op.pk).update(requested_at=NOW - timedelta(days=1)))
    # The four-eyes decision, written once while pending (ops_action_approve's UPDATE).
    assert (
        OpsAction.objects.filter(pk=op.pk).update(state="done", decided_by=ben, decided_at=NOW, decision_note="ok") == 1
    )
    assert "already decided" in refused(lambda: OpsAction.objects.filter(pk=op.pk).update(state="rejected"))
    refused(lambda: OpsAction.objects.filter(pk=op.pk).update(decision_note="changed my mind"))
    assert OpsAction.objects.filter(pk=op.pk).update(refund_tx_hash="0x" + "7" * 64) == 1
    assert "already recorded" in refused(
        lambda: OpsAction.objects.filter(pk=op.pk).update(refund_tx_hash="0x" + "8" * 64)
    )
    refused(lambda: OpsAction.objects.get(pk=op.pk).delete())
    refused(lambda: raw("DELETE FROM stablepay_opsaction WHERE id = %s", [op.pk]))


def test_admin_cannot_change_or_delete_ledger_rows(ledger: World, client: Client) -> None:
    admin = User.objects.create_superuser("root", password="pw-0123456789")
    login_as(client, admin)
    t = Transfer.objects.first()
    assert t is not None
    assert client.get(f"/admin/stablepay/transfer/{t.pk}/change/").status_code == 200  # viewable
    assert client.get(f"/admin/stablepay/transfer/{t.pk}/delete/").status_code == 403
    response = client.post(f"/admin/stablepay/transfer/{t.pk}/change/", {"amount_base_units": "1"})
    assert response.status_code == 403
    response = client.post("/admin/stablepay/transfer/", {"action": "delete_selected", "_selected_action": [t.pk]})
    assert Transfer.objects.filter(pk=t.pk, amount_base_units=t.amount_base_units).exists()
    pr = PaymentRequest.objects.first()
    assert pr is not None
    op = ops_action(pr, admin, NOW)
    assert client.get(f"/admin/stablepay/opsaction/{op.pk}/delete/").status_code == 403
    assert OpsAction.objects.filter(pk=op.pk).exists()


# --- retention purge ------------------------------------------------------------------------------


def test_purge_deletes_only_rows_past_the_retention_period(
    ledger: World, users: tuple[User, User], settings: Any
) -> None:
    ann, _ = users
    now = datetime.now(UTC)
    pr = PaymentRequest.objects.first()
    assert pr is not None
    young_transfer = Transfer.objects.first()
    assert young_transfer is not None
    old_at = now - timedelta(days=365 * 7 + 10)  # past 7 years
    mid_at = now - timedelta(days=365 * 6)  # within 7 years, past 5
    for i, at in enumerate((old_at, mid_at)):
        TransferFactory(
            token=young_transfer.token,
            payment_request=pr,
            tx_hash=f"0x{'d' * 63}{i}",
            block_number=1,
            block_hash="0x" + "d" * 64,
            block_timestamp=at,
            amount_base_units=Decimal(10**21 + 7),
        )
        EventFactory(payment_request=pr, at=at, status="open", note=f"old {i}")
        ops_action(pr, ann, at, state="rejected")
    totals = (Transfer.objects.count(), Event.objects.count(), OpsAction.objects.count())

    # Too young for a purge: the database refuses even the purge's own statement without the gate.
    refused(lambda: raw("DELETE FROM stablepay_transfer WHERE block_timestamp < %s", [now]))

    out = command_json("stablepay_purge_ledger", "--dry-run")
    assert out["dry_run"] is True and out["retention_years"] == 7
    assert out["would_delete"] == {"stablepay_opsaction": 1, "stablepay_event": 1, "stablepay_transfer": 1}
    assert (Transfer.objects.count(), Event.objects.count(), OpsAction.objects.count()) == totals

    out = command_json("stablepay_purge_ledger")
    assert out["deleted"] == {"stablepay_opsaction": 1, "stablepay_event": 1, "stablepay_transfer": 1}
    assert not Transfer.objects.filter(block_timestamp=old_at).exists()
    assert Transfer.objects.filter(block_timestamp=mid_at).exists()
    assert raw("SELECT 1 FROM stablepay_ledger_purge_gate") in (0, -1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM stablepay_ledger_purge_gate")
        assert cursor.fetchone()[0] == 0  # the gate is closed again
    refused(lambda: raw("DELETE FROM stablepay_transfer WHERE block_timestamp = %s", [mid_at]))

    settings.STABLEPAY = settings.STABLEPAY | {"LEDGER_RETENTION_YEARS": 5}
    assert command_json("stablepay_purge_ledger")["deleted"] == {
        "stablepay_opsaction": 1,
        "stablepay_event": 1,
        "stablepay_transfer": 1,
    }
    assert (Transfer.objects.count(), Event.objects.count(), OpsAction.objects.count()) == tuple(n - 2 for n in totals)
    settings.STABLEPAY = settings.STABLEPAY | {"LEDGER_RETENTION_YEARS": 0}
    with pytest.raises(CommandError, match="LEDGER_RETENTION_YEARS"):
        call_command("stablepay_purge_ledger")


def test_cutoff_is_calendar_years() -> None:
    assert retention.cutoff(datetime(2031, 2, 28, 9, tzinfo=UTC), 7) == datetime(2024, 2, 28, 9, tzinfo=UTC)
    assert retention.cutoff(datetime(2032, 2, 29, 9, tzinfo=UTC), 7) == datetime(2025, 2, 28, 9, tzinfo=UTC)


# --- export and re-import -------------------------------------------------------------------------


def test_export_reimport_gives_an_identical_ledger(full_ledger: World, tmp_path: Path, copy_database: str) -> None:
    archive = tmp_path / "ledger.jsonl.gz"
    out = command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    lines = archive_lines(archive)
    header, rows, trailer = lines[0], lines[1:-1], lines[-1]
    assert out["sha256"] == trailer["sha256"] == hashlib.sha256(b"".join(archive_raw_lines(archive)[:-1])).hexdigest()
    assert header["format"] == "stablepay-ledger/1" and header["from"] == "2026-11-01"
    assert header["counts"]["transfer"] == Transfer.objects.count() > 0
    assert header["counts"]["event"] == Event.objects.count() - 1  # the October one is outside
    assert header["counts"]["ops_action"] == 3
    # Money stays exact: base units and Decimals as strings.
    amounts = {r["data"]["amount_base_units"] for r in rows if r["kind"] == "transfer"}
    assert all(isinstance(a, str) for a in amounts) and str(10**21 + 7) in amounts | {
        r["data"]["amount_due_base_units"] for r in rows if r["kind"] == "payment_request"
    }
    assert "0.128205128205128205" in {r["data"]["rate"] for r in rows if r["kind"] == "payment_request"}

    first = manage(copy_database, "stablepay_import_ledger", str(archive))
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)["created"]
    assert created["transfer"] == header["counts"]["transfer"] and created["ops_action"] == 3
    again = manage(copy_database, "stablepay_import_ledger", str(archive))
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["created"].values()) == {0}  # idempotent

    # The copy's own export of the range has the same rows, line for line.
    reexport = tmp_path / "copy.jsonl.gz"
    done = manage(copy_database, "stablepay_export_ledger", *RANGE, "--output", str(reexport))
    assert done.returncode == 0, done.stderr
    assert archive_raw_lines(reexport)[1:-1] == archive_raw_lines(archive)[1:-1]
    assert archive_lines(reexport)[0]["counts"] == header["counts"]

    # Importing into the database it came from changes nothing either.
    assert set(ledger_archive.import_archive(archive)["created"].values()) == {0}


def test_tampered_archives_are_refused(full_ledger: World, tmp_path: Path) -> None:
    archive = tmp_path / "ledger.jsonl.gz"
    command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    assert command_json("stablepay_import_ledger", str(archive), "--verify-only")["verified"] is True
    good = archive_raw_lines(archive)
    transfer_at = next(i for i, line in enumerate(good) if b'"kind":"transfer"' in line)

    # One byte changed inside a line (an amount digit).
    changed = list(good)
    line = changed[transfer_at]
    at = line.index(b'"amount_base_units":"') + len(b'"amount_base_units":"')
    changed[transfer_at] = line[:at] + (b"9" if line[at : at + 1] != b"9" else b"8") + line[at + 1 :]
    rewrite_archive(archive, changed)
    with pytest.raises(CommandError, match="SHA-256 mismatch"):
        call_command("stablepay_import_ledger", str(archive))

    # A line removed.
    rewrite_archive(archive, good[:transfer_at] + good[transfer_at + 1 :])
    with pytest.raises(CommandError, match="lines were added or removed"):
        call_command("stablepay_import_ledger", str(archive), "--verify-only")

    # The trailer cut off.
    rewrite_archive(archive, good[:-1])
    with pytest.raises(CommandError, match="truncated or tampered"):
        call_command("stablepay_import_ledger", str(archive))

    # A byte of the compressed file flipped.
    rewrite_archive(archive, good)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="damaged or tampered"):
        call_command("stablepay_import_ledger", str(archive))


def test_a_conflicting_row_is_named_and_nothing_is_written(full_ledger: World, tmp_path: Path) -> None:
    """A forger who recomputes the digest still cannot overwrite: existing rows must match exactly."""
    archive = tmp_path / "ledger.jsonl.gz"
    command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    lines = archive_lines(archive)
    rows = lines[1:-1]
    target = next(r for r in rows if r["kind"] == "transfer")
    target["data"]["amount_base_units"] = str(int(target["data"]["amount_base_units"]) + 1)
    extra_event = {
        "kind": "event",
        "key": dict(next(r for r in rows if r["kind"] == "event")["key"], note="new"),
        "data": {},
    }
    rows = [*rows, extra_event]
    header = lines[0] | {"counts": lines[0]["counts"] | {"event": lines[0]["counts"]["event"] + 1}}
    body = [ledger_archive._line(obj) for obj in [header, *rows]]
    trailer = {"kind": "trailer", "lines": len(body), "sha256": hashlib.sha256(b"".join(body)).hexdigest()}
    rewrite_archive(archive, [*body, ledger_archive._line(trailer)])
    events = Event.objects.count()
    named = re.escape(f"conflict: transfer {json.dumps(target['key'])}")
    with pytest.raises(CommandError, match=named + ".*amount_base_units"):
        call_command("stablepay_import_ledger", str(archive))
    assert Event.objects.count() == events  # all or nothing


def test_export_arguments_are_checked(db: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a date"):
        call_command("stablepay_export_ledger", "--from", "2026-13-01", "--to", "2026-12-01")
    with pytest.raises(CommandError, match="before"):
        call_command("stablepay_export_ledger", "--from", "2026-12-02", "--to", "2026-12-01")
    empty = tmp_path / "empty.jsonl.gz"
    command_json("stablepay_export_ledger", "--from", "2001-01-01", "--to", "2001-01-31", "--output", str(empty))
    assert ledger_archive.read(empty)[0]["counts"] == dict.fromkeys(ledger_archive.KINDS, 0)
    assert date(2001, 1, 1).isoformat() == ledger_archive.read(empty)[0]["from"]
