"""A payment request's stored FX table (`fx_rates`, issue 16 part 3) travels in ledger archives: exported,
imported into another copy unchanged; an archive written before the column existed still imports (into
another copy with none recorded, and into this database with nothing to compare on that field)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import psycopg

from stablepay.ledger import archive as ledger_archive
from stablepay.models import PaymentRequest
from tests.support.ledger_copies import RANGE, archive_lines, command_json, manage
from tests.support.random_ledgers import World

TABLE = {"HKD/MOP": "1.03", "USD/HKD": "7.8"}


def _copy_rates(url: str) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        return {str(pk): rates for pk, rates in conn.execute("SELECT id, fx_rates FROM stablepay_paymentrequest")}


def _write_without_fx_rates(source: Path, target: Path) -> None:
    """The archive as a version before `fx_rates` wrote it: no such key, and a valid trailer."""
    import hashlib

    lines = archive_lines(source)
    body = []
    for row in lines[:-1]:
        if row.get("kind") == "payment_request":
            row["data"].pop("fx_rates")
        body.append(ledger_archive._line(row))
    trailer = {**lines[-1], "sha256": hashlib.sha256(b"".join(body)).hexdigest()}
    with gzip.open(target, "wb") as gz:
        gz.write(b"".join([*body, ledger_archive._line(trailer)]))


def test_fx_rates_round_trip_and_older_archives_still_import(
    full_ledger: World,
    tmp_path: Path,
    copy_database: str,
) -> None:
    PaymentRequest.objects.update(fx_rates=TABLE)
    archive = tmp_path / "ledger.jsonl.gz"
    command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    exported = [r for r in archive_lines(archive)[1:-1] if r["kind"] == "payment_request"]
    assert exported and all(r["data"]["fx_rates"] == TABLE for r in exported)

    old = tmp_path / "old.jsonl.gz"
    _write_without_fx_rates(archive, old)
    assert all("fx_rates" not in r["data"] for r in archive_lines(old)[1:-1] if r["kind"] == "payment_request")
    # Into this database (rows already here): nothing to compare on the missing field, nothing written.
    assert set(ledger_archive.import_archive(old)["created"].values()) == {0}
    # Into another copy: imported, with no table recorded.
    done = manage(copy_database, "stablepay_import_ledger", str(old))
    assert done.returncode == 0, done.stderr
    assert set(_copy_rates(copy_database).values()) == {None}
    assert json.loads(done.stdout)["created"]["payment_request"] == len(exported)


def test_fx_rates_are_carried_to_another_copy(
    full_ledger: World,
    tmp_path: Path,
    copy_database: str,
) -> None:
    PaymentRequest.objects.update(fx_rates=TABLE)
    archive = tmp_path / "ledger.jsonl.gz"
    command_json("stablepay_export_ledger", *RANGE, "--output", str(archive))
    done = manage(copy_database, "stablepay_import_ledger", str(archive))
    assert done.returncode == 0, done.stderr
    copied = _copy_rates(copy_database)
    assert copied and all(rates == TABLE for rates in copied.values())
    again = manage(copy_database, "stablepay_import_ledger", str(archive))
    assert set(json.loads(again.stdout)["created"].values()) == {0}
