"""Issue 16 part 5: token amounts are exact on every backend, up to 78 digits (a uint256).

SQLite, the embedded default, kept a decimal column to 15 significant digits: an 18-decimal coin's
amount due of 97087378640776699030 base units came back as 97087378640776700000, and the API, which
formatted token amounts in Python's default 28-digit decimal context, answered 500 for a 78-digit one.
The attack (tests/ledger/base_units_scenario.py) runs through `stablepay_setup`, the API, real
transfers on anvil and `stablepay_scan --once`, then reads every figure back through the ORM, the API
(request, transfers, settlements) and the payment page: on PostgreSQL in-process, and on a fresh SQLite
file migrated and driven by `manage.py` subprocesses. Then migration 0014 on an SQLite database that
already holds amounts (tests/ledger/sqlite_base_units_probe.py): every trigger kept, the values kept,
and what the new columns refuse.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from django.db import connection

from stablepay.dev import chain as devchain
from tests.ledger.base_units_scenario import BIG, DUE, REST, SUPPLY, run, setup_document
from tests.support.ledger_copies import manage
from tests.support.local_chain import MERCHANT_MNEMONIC, account_xpub
from tests.support.services import Anvil

PRICE_CENTS = 10_000  # 100.00 MOP
PROBE = Path(__file__).with_name("sqlite_base_units_probe.py")


def _token_text(units: int) -> str:
    """An 18-decimal token amount as the contract writes it, by integer arithmetic only."""
    return f"{units // 10**18}.{units % 10**18:018d}"


def _fiat_cents(paid: int) -> int:
    """DESIGN's fiat rule: round_half_up(price x paid / due), in cents."""
    return (2 * paid * PRICE_CENTS + DUE) // (2 * DUE)


def _chain(anvil: Anvil, tmp_path: Path) -> dict[str, str]:
    token = devchain.deploy_token(anvil.w3, name="HKD Eighteen", symbol="HKDE", decimals=18)
    devchain.mint(anvil.w3, token, devchain.dev_account(1).address, SUPPLY)
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(setup_document(anvil.url, token, account_xpub(MERCHANT_MNEMONIC))))
    return {"anvil_url": anvil.url, "token": token, "setup_path": str(path)}


def _check(found: dict[str, Any]) -> None:
    assert len(str(SUPPLY)) == len(str(BIG)) == len(str(BIG + DUE)) == 78
    paid = [BIG + DUE, REST]
    assert found["created_due"] == [str(DUE), str(DUE)]
    assert found["orm_due"] == [str(DUE), str(DUE)]
    assert found["orm_paid"] == [str(p) for p in paid]
    assert found["orm_transfers"] == sorted(str(a) for a in (DUE, BIG, REST))

    for body, received, amounts in zip(found["api"], paid, [[DUE, BIG], [REST]], strict=True):
        assert (body["status"], body["exception"]) == ("paid", "overpaid")
        assert body["amount_due_base_units"] == str(DUE)
        assert body["amount_due"] == _token_text(DUE) == "97.087378640776699030"
        assert body["payment_uri"].endswith(f"&uint256={DUE}")
        assert body["amount_paid_base_units"] == str(received)
        assert body["amount_paid"] == _token_text(received)
        assert sorted(int(t["amount_base_units"]) for t in body["transfers"]) == sorted(amounts)

    [row] = found["settlements"]
    assert (row["chain_id"], row["token"], row["count"], row["fiat_currency"]) == (31337, "HKDE", 2, "MOP")
    assert row["amount_base_units"] == str(SUPPLY)
    assert row["amount"] == _token_text(SUPPLY)
    cents = sum(_fiat_cents(p) for p in paid)
    assert row["fiat_amount"] == f"{cents // 100}.{cents % 100:02d}"

    for page, received in zip(found["page"], paid, strict=True):
        assert page["amount_due_base_units"] == str(DUE)
        assert page["amount_paid_base_units"] == str(received)
        assert page["amount_remaining_base_units"] == "0"


def test_postgres_keeps_78_digit_base_units_exactly(anvil: Anvil, tmp_path: Path, db: None) -> None:
    assert connection.vendor == "postgresql"
    _check(run(**_chain(anvil, tmp_path)))


def test_sqlite_keeps_78_digit_base_units_exactly(anvil: Anvil, tmp_path: Path, sqlite_url: str) -> None:
    arguments = json.dumps(_chain(anvil, tmp_path))
    done = manage(sqlite_url, "shell", "-c", f"from tests.ledger.base_units_scenario import main; main({arguments!r})")
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    _check(json.loads(line.removeprefix("RESULT ")))


def test_sqlite_upgrade_keeps_amounts_triggers_and_refuses_inexact_ones(sqlite_url: str) -> None:
    """Migration 0014 on a database that already holds amounts (down to 0013 and up again), then what the
    new columns refuse from any client, and amounts of different lengths compared and sorted in SQL."""
    run_probe = manage(sqlite_url, "shell", "-c", f"exec(open({str(PROBE)!r}).read())")
    assert run_probe.returncode == 0, run_probe.stderr[-3000:]
    line = next(x for x in run_probe.stdout.splitlines() if x.startswith("RESULT "))
    r: dict[str, Any] = json.loads(line.removeprefix("RESULT "))

    made_by_0011 = importlib.import_module("stablepay.migrations.0011_ledger_append_only").LITE_TRIGGERS
    every_trigger = sorted([*made_by_0011, "transfer_guard_screening"])

    def ledger(names: list[str]) -> list[str]:  # without migration 0016's change-record triggers (not there at 0013)
        return [name for name in names if not name.startswith("changeproposal_")]

    assert ledger(r["triggers_latest"]) == r["triggers_0013"] == ledger(r["triggers_migrated"]) == every_trigger
    assert set(r["columns_0013"].values()) == {"decimal"}
    assert set(r["columns_latest"].values()) == set(r["columns_migrated"].values()) == {"varchar(78)"}

    # Before 0014 SQLite held the 20-digit amount due as a float: the upgrade keeps what was read, says so.
    assert r["stored_0013"][0] == "real"
    assert r["orm_request"] == ["97087378640776700000", "10000000"]
    [warning] = r["warnings"]
    assert "amount_due_base_units" in warning and "97087378640776700000" in warning
    assert r["raw_request"] == [f"{97087378640776700000:078d}", f"{10_000_000:078d}"]
    assert r["raw_transfers"] == [f"{0:078d}", f"{10_000_000:078d}"]

    for name in ("raw_unpadded", "raw_float", "raw_integer", "raw_sign", "orm_negative"):
        assert r[name].startswith("refused: CHECK constraint failed"), (name, r[name])
    assert "pr_due_positive" in r["orm_zero_due"]
    assert "append-only" in r["transfer_amount_changed"]
    assert r["orm_fraction"].startswith("refused: base units must be a whole number")
    assert r["orm_uint256_max"] == "ok"
    assert r["orm_uint256_max_read"] == str(2**256 - 1)

    amounts = [0, 10_000_000, 2**256 - 1, 10**21 + 7, 9, 10, 123_456_789, 10**20, 10**77]
    assert r["ordered"] == [str(a) for a in sorted(amounts)]
    assert r["gt_10"] == sorted(str(a) for a in amounts if a > 10)
    assert r["lte_10"] == sorted(str(a) for a in amounts if a <= 10)
    assert (r["exact"], r["in"]) == (1, 2)
    # SQLite's SUM over the column would add through floats: reading such a sum is refused, never rounded.
    assert r["sql_sum"].startswith("refused: base units read as float")
