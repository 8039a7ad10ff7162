"""The screening columns of the ledger (migration 0012): written with the transfer, never rewritten once
answered (clear / hit), rewritten once from an unanswered outcome (failed_open / failed_closed). On
PostgreSQL with transfers the watcher recorded from anvil; on SQLite in a freshly migrated database file
probed by a real `manage.py` subprocess (tests/compliance/sqlite_screening_probe.py), where 0012 rebuilds
the transfer table and must put back every trigger 0011 made."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from stablepay.models import Merchant, Transfer
from tests.support.ledger_copies import manage, raw, refused
from tests.support.local_chain import LocalChain, create_request
from tests.support.screening import DUE, OTHER_PAYER, deny, screening_settings, transfer_of

PROBE = Path(__file__).with_name("sqlite_screening_probe.py")
RECORDED = "screening result is already recorded"


def _four_outcomes(local_chain: LocalChain, merchant: Merchant, settings: Any) -> dict[str, int]:
    """Transfers the watcher recorded as clear, hit, failed_open and failed_closed: name -> pk."""
    deny(OTHER_PAYER)
    clear, hit = (create_request(merchant, order_reference=f"A-{i}") for i in range(2))
    txs = {"clear": local_chain.pay(clear.pay_to, DUE, sender_index=1)}
    txs["hit"] = local_chain.pay(hit.pay_to, DUE, sender_index=2)
    local_chain.scan()
    screening_settings(settings, backend="tests.compliance.backends.ExplodingBackend", fail_open_below_hkd="10.00")
    small, big = create_request(merchant, amount="5.00"), create_request(merchant, amount="10.00")
    txs["failed_open"] = local_chain.pay(small.pay_to, DUE // 2, sender_index=1)
    txs["failed_closed"] = local_chain.pay(big.pay_to, DUE, sender_index=3)
    local_chain.scan()
    rows = {name: transfer_of(tx) for name, tx in txs.items()}
    assert {name: t.screening for name, t in rows.items()} == {name: name for name in rows}
    return {name: t.pk for name, t in rows.items()}


def test_postgres_keeps_an_answer_and_takes_one_late_answer(
    local_chain: LocalChain, merchant: Merchant, settings: Any
) -> None:
    assert connection.vendor == "postgresql"
    pk = _four_outcomes(local_chain, merchant, settings)
    later = timezone.now() + timedelta(minutes=5)

    for name in ("clear", "hit"):
        t = Transfer.objects.filter(pk=pk[name])
        other = "clear" if name == "hit" else "hit"
        assert RECORDED in refused(lambda t=t, other=other: t.update(screening=other))
        assert RECORDED in refused(lambda t=t: t.update(screening=""))
        assert RECORDED in refused(lambda t=t: t.update(screening_detail="rewritten"))
        assert RECORDED in refused(lambda t=t: t.update(screened_at=later))
        sql = "UPDATE stablepay_transfer SET screening = %s WHERE id = %s"
        assert RECORDED in refused(lambda other=other, name=name: raw(sql, [other, pk[name]]))
        detail = "UPDATE stablepay_transfer SET screening_detail = screening_detail || ' (edited)' WHERE id = %s"
        assert RECORDED in refused(lambda name=name: raw(detail, [pk[name]]))
        assert Transfer.objects.get(pk=pk[name]).screening == name

    # Unanswered: a retry moves screened_at; the answer is written once, then it is final.
    unanswered = Transfer.objects.filter(pk=pk["failed_open"])
    assert unanswered.update(screened_at=later) == 1
    assert unanswered.update(screening="hit", screening_detail="late hit", screened_at=later) == 1
    assert RECORDED in refused(lambda: unanswered.update(screening="clear"))
    set_screening = "UPDATE stablepay_transfer SET screening = %s WHERE id = %s"
    assert raw(set_screening, ["clear", pk["failed_closed"]]) == 1
    assert RECORDED in refused(lambda: raw(set_screening, ["hit", pk["failed_closed"]]))
    assert dict(Transfer.objects.values_list("pk", "screening")) == {
        pk["clear"]: "clear",
        pk["hit"]: "hit",
        pk["failed_open"]: "hit",
        pk["failed_closed"]: "clear",
    }

    # 0011's rules are still in the function 0012 replaced.
    clear = Transfer.objects.filter(pk=pk["clear"])
    assert "append-only" in refused(lambda: clear.update(amount_base_units=F("amount_base_units") + 1))
    assert "append-only" in refused(lambda: clear.update(tx_hash="0x" + "0" * 64))
    assert "append-only" in refused(lambda: raw("DELETE FROM stablepay_transfer WHERE id = %s", [pk["clear"]]))
    assert clear.update(state="confirmed", reviewed=True) == 1
    assert "append-only" in refused(lambda: clear.update(reviewed=False))
    assert Transfer.objects.get(pk=pk["clear"]).amount_base_units == Decimal(DUE)


def test_sqlite_migrations_keep_every_ledger_trigger_and_the_screening_rule(sqlite_url: str) -> None:
    run = manage(sqlite_url, "shell", "-c", f"exec(open({str(PROBE)!r}).read())")
    assert run.returncode == 0, run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    r: dict[str, Any] = json.loads(line.removeprefix("RESULT "))

    made_by_0011 = importlib.import_module("stablepay.migrations.0011_ledger_append_only").LITE_TRIGGERS
    assert {"transfer_no_delete", "transfer_guard_identity", "transfer_guard_update", "transfer_guard_reviewed"} <= set(
        made_by_0011
    )
    made_by_0016 = [f"changeproposal_{rule}" for rule in ("no_delete", "guard_facts", "guard_decision")]
    assert sorted(r["triggers"]) == sorted([*made_by_0011, "transfer_guard_screening", *made_by_0016])

    for name in (
        "clear_to_hit_orm",
        "clear_detail_raw",
        "clear_time_orm",
        "hit_to_clear_orm",
        "hit_to_clear_raw",
        "hit_to_unscreened_raw",
        "open_hit_again_to_clear",
        "closed_clear_again_raw",
    ):
        assert r[name].startswith("refused: "), (name, r[name])
        assert "the transfer screening result is already recorded" in r[name], (name, r[name])
    for name in ("amount_after_rebuild", "delete_after_rebuild", "tx_hash_after_rebuild", "unreviewed_after_rebuild"):
        assert r[name].startswith("refused: ") and "append-only" in r[name], (name, r[name])
    for name in (
        "open_retry_time",
        "open_to_hit",
        "closed_to_clear_raw",
        "legacy_screened_once",
        "confirm_after_rebuild",
        "reviewed_after_rebuild",
    ):
        assert r[name] == "ok", (name, r[name])
    assert r["final"] == {"1": "clear", "2": "hit", "3": "hit", "4": "clear", "5": "clear"}
