"""The ledger-consistency report finds each planted discrepancy, and agrees with its per-row twin."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from stablepay.ledger.bulk_reconcile import payment_requests_reconcile_all
from stablepay.ledger.report import CHECKS, ledger_report, ledger_report_per_row
from stablepay.models import Event, PaymentRequest, Transfer
from tests.factories import PaymentRequestFactory, TransferFactory
from tests.support.ledger_triggers import ledger_unguarded
from tests.support.random_ledgers import NOW, World, random_ledger

pytestmark = pytest.mark.django_db


def _request(world: World, i: int, *, status: str = "open", expired: bool = False) -> PaymentRequest:
    """10.00 HKD in HKDX (6 decimals, rate 1): due 10_000_000 base units."""
    return PaymentRequestFactory(
        merchant=world.merchants[1],  # no tolerance, no webhook
        token=world.tokens[0],
        order_reference=f"K-{i}",
        pay_to="0x" + f"{i:040x}",
        derivation_index=i,
        status=status,
        created_at=NOW - timedelta(minutes=20),
        expires_at=NOW + timedelta(minutes=-5 if expired else 15),
    )


def _pay(request: PaymentRequest, n: int, *, amount: int = 10_000_000, **fields: Any) -> Transfer:
    values: dict[str, Any] = {
        "tx_hash": "0x" + f"{n:064x}",
        "block_number": 900,
        "block_hash": "0x" + "b" * 64,
        "block_timestamp": NOW - timedelta(minutes=10),
        "from_address": "0x" + "f" * 40,
        "amount_base_units": Decimal(amount),
        "state": "confirmed",
        **fields,
    }
    transfer: Transfer = TransferFactory(payment_request=request, **values)
    return transfer


def _both(**kwargs: Any) -> dict[str, Any]:
    report = ledger_report(now=NOW, **kwargs)
    assert report == ledger_report_per_row(now=NOW, **kwargs)
    return report


def test_a_consistent_ledger_is_ok(world: World) -> None:
    for i in range(4):
        _pay(_request(world, i), i)
    _request(world, 9, expired=True)
    assert not _both()["ok"]  # nothing reconciled yet: statuses and amounts are stale
    payment_requests_reconcile_all(now=NOW)
    report = _both()
    assert report["ok"], report
    assert report["requests"] == 5 and report["transfers"] == 4
    assert report["requests_by_status"]["paid"] == 4 and report["requests_by_status"]["expired"] == 1
    assert all(report["checks"][name] == {"count": 0, "sample": []} for name in CHECKS)


def test_each_planted_discrepancy_is_found(world: World) -> None:
    paid, short, closed, other = (_request(world, i) for i in range(4))
    _pay(paid, 1)
    _pay(short, 2)
    twin = _pay(other, 0xABCDEF)
    payment_requests_reconcile_all(now=NOW)
    assert _both()["ok"]

    # 1. a paid request whose transfer was orphaned, never reconciled since: paid, uncovered, stale.
    Transfer.objects.filter(payment_request=paid).update(state="orphaned")
    # 2. an amount paid that is not the sum of the transfers.
    PaymentRequest.objects.filter(pk=short.pk).update(amount_paid_base_units=Decimal(1))
    # 3. a payment to a canceled request, neither applied nor flagged (and its status is stale).
    PaymentRequest.objects.filter(pk=closed.pk).update(status="canceled")
    late = _pay(closed, 3)
    # 4. a live transfer applied to no request.
    loose = _pay(other, 5)
    with ledger_unguarded():  # a fact rewritten behind the ledger's back (its triggers refuse it otherwise)
        Transfer.objects.filter(pk=loose.pk).update(payment_request=None)
    # 5. a transfer applied to another request's deposit address.
    wrong = _pay(other, 6, to_address=short.pay_to, amount=0)
    # 6. the same log twice, the hash in another case.
    copy = _pay(other, 7, tx_hash=twin.tx_hash.upper().replace("0X", "0x"), amount=0)

    checks = _both(sample=5)["checks"]
    assert checks["status_mismatch"] == {"count": 2, "sample": sorted([str(paid.pk), str(closed.pk)])}
    assert checks["paid_uncovered"] == {"count": 1, "sample": [str(paid.pk)]}
    assert checks["amount_paid_mismatch"] == {"count": 3, "sample": sorted(str(r.pk) for r in (paid, short, closed))}
    assert checks["unflagged_transfers"] == {"count": 1, "sample": [str(late.pk)]}
    assert checks["unlinked_transfers"] == {"count": 1, "sample": [str(loose.pk)]}
    assert checks["misapplied_transfers"] == {"count": 1, "sample": [str(wrong.pk)]}
    assert checks["duplicate_transfers"] == {"count": 1, "sample": [f"{twin.pk},{copy.pk}"]}

    # The status pass mends what is the ledger's to mend; the planted transfer faults stay reported.
    payment_requests_reconcile_all(now=NOW)
    checks = _both()["checks"]
    for fixed in ("status_mismatch", "paid_uncovered", "amount_paid_mismatch", "unflagged_transfers"):
        assert checks[fixed]["count"] == 0, fixed
    assert [checks[n]["count"] for n in ("unlinked_transfers", "misapplied_transfers", "duplicate_transfers")] == [
        1
    ] * 3


@pytest.mark.parametrize("seed", [11, 12])
def test_the_sql_report_is_the_per_row_report_on_random_ledgers(world: World, seed: int) -> None:
    random_ledger(world, random.Random(seed), 120)
    before = _both(sample=1000)
    assert before["checks"]["status_mismatch"]["count"] > 0
    payment_requests_reconcile_all(now=NOW)
    after = _both(sample=1000)
    assert after["checks"]["status_mismatch"]["count"] == after["checks"]["amount_paid_mismatch"]["count"] == 0
    assert _both(chain_id=2, sample=1000)["requests"] < after["requests"]


def _command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = 0
    try:
        call_command("stablepay_reconcile", *args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(capsys.readouterr().out)


def test_the_command(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    random_ledger(world, random.Random(13), 50)
    code, report = _command(capsys, "--report")
    assert code == 1 and not report["ok"] and report["checks"]["status_mismatch"]["count"] > 0
    events = Event.objects.count()
    code, dry = _command(capsys, "--dry-run")
    assert code == 0 and dry["dry_run"] and dry["changed"] > 0 and Event.objects.count() == events
    code, first = _command(capsys)
    assert (first["changed"], first["transitions"]) == (dry["changed"], dry["transitions"])
    assert Event.objects.count() == events + first["changed"]
    code, second = _command(capsys, "--chain-id", "1")
    assert second["changed"] == second["amounts_only"] == 0
    code, report = _command(capsys, "--report", "--sample", "0")
    assert report["checks"]["status_mismatch"] == {"count": 0, "sample": []}
    with pytest.raises(CommandError, match="chain-id"):
        call_command("stablepay_reconcile", "--chain-id", "999")
