"""Screening results travel with the evidence: a held request's audit bundle holds each transfer's outcome
and verifies (offline and against anvil), and a ledger archive carries the screening columns to another
copy of stablepay and back, byte for byte."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from stablepay.compliance import audit_bundle, screening
from stablepay.models import Merchant, Transfer
from stablepay.ops.services import ops_action_request
from tests.support.audit_bundles import download, verify, write
from tests.support.ledger_copies import archive_lines, archive_raw_lines, command_json, manage
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import expect
from tests.support.screening import DUE, OTHER_PAYER, PAYER, deny, screening_settings, transfer_of

REASON = "OFAC SDN list 2026-11-20: test entry"


def test_a_held_requests_bundle_holds_the_screening_result_and_verifies(
    local_chain: LocalChain, merchant: Merchant, api: APIClient, tmp_path: Path, ops_user: User
) -> None:
    deny(PAYER, REASON)
    pr = create_request(merchant, order_reference="AUD-HELD")
    clean_tx = local_chain.pay(pr.pay_to, DUE // 2, sender_index=2)
    held_tx = local_chain.pay(pr.pay_to, DUE // 2, sender_index=1)
    local_chain.settle()
    expect(pr, "needs_review", "held")
    ops_action_request(request_id=pr.pk, action="accept", note="Asking a second opinion", user=ops_user)

    data = download(api, pr)
    bundle = json.loads(data)["bundle"]
    by_tx = {s["tx_hash"]: s for s in bundle["screening"]}
    assert set(by_tx) == {clean_tx.lower(), held_tx.lower()}
    held = by_tx[held_tx.lower()]
    assert (held["outcome"], held["detail"], held["address"]) == ("hit", f"screening list: denylist, {REASON}", PAYER)
    assert held["chain_id"] == 31337 and held["screened_at"] == transfer_of(held_tx).screened_at.isoformat().replace(
        "+00:00", "Z"
    )
    clean = by_tx[clean_tx.lower()]
    assert (clean["outcome"], clean["detail"], clean["address"]) == ("clear", "screening list: not listed", OTHER_PAYER)
    assert {t["tx_hash"] for t in bundle["transfers"]} == set(by_tx)
    assert bundle["payment_request"]["status"] == "needs_review"
    assert bundle["payment_request"]["exception"] == "held"
    timeline = [(e["status"], e["exception"], e["actor"]) for e in bundle["timeline"]]
    assert ("needs_review", "held", "watcher") in timeline
    assert timeline[-1] == ("needs_review", "held", "ops:olivia")  # the pending four-eyes request

    path = write(tmp_path, data)
    code, report = verify(path, "--offline")
    assert (code, report["ok"], report["signature_ok"], report["problems"]) == (0, True, True, [])
    code, report = verify(path)
    assert (code, report["ok"], report["problems"]) == (0, True, [])
    assert {t["tx_hash"] for t in report["chain"]["transfers"] if t["ok"]} == set(by_tx)

    # The screening result is signed like the rest: changing the outcome breaks the signature.
    document = json.loads(data)
    for entry in document["bundle"]["screening"]:
        entry["outcome"] = "clear"
    code, report = verify(write(tmp_path, audit_bundle.canonical(document), "edited.json"), "--offline")
    assert code == 1 and report["problems"] == [
        "signature: does not match the bundle (the bundle or the signature was changed)"
    ]


def test_an_archive_carries_the_screening_columns_to_another_copy(
    local_chain: LocalChain,
    merchant: Merchant,
    settings: Any,
    tmp_path: Path,
    copy_database: str,
) -> None:
    deny(PAYER, REASON)
    hit, clear = create_request(merchant, order_reference="ARC-HIT"), create_request(merchant, order_reference="ARC-OK")
    local_chain.pay(hit.pay_to, DUE, sender_index=1)
    local_chain.pay(clear.pay_to, DUE, sender_index=2)
    local_chain.settle()
    # One more payer while the backend is broken (failed open), then answered by a re-screen: its detail
    # keeps the first outcome.
    screening_settings(settings, backend="tests.compliance.backends.ExplodingBackend")
    late = create_request(merchant, order_reference="ARC-LATE")
    late_tx = local_chain.pay(late.pay_to, DUE, sender_index=3)
    local_chain.settle()
    assert transfer_of(late_tx).screening == "failed_open"
    screening_settings(settings, backend="stablepay.compliance.screening.ListBackend")
    assert screening.rescreen_due(now=timezone.now() + timedelta(minutes=2)) == 1
    expect(hit, "needs_review", "held")
    expect(clear, "paid", "")

    today = timezone.now().date()
    window = ("--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1)))
    archive = tmp_path / "ledger.jsonl.gz"
    command_json("stablepay_export_ledger", *window, "--output", str(archive))
    header = archive_lines(archive)[0]
    transfers = {row["key"][1]: row["data"] for row in archive_lines(archive) if row.get("kind") == "transfer"}
    assert len(transfers) == Transfer.objects.count() == 3
    for t in Transfer.objects.all():
        data = transfers[t.tx_hash]
        assert (data["screening"], data["screening_detail"]) == (t.screening, t.screening_detail)
        assert data["screened_at"] == t.screened_at.isoformat()  # type: ignore[union-attr]
    assert sorted(d["screening"] for d in transfers.values()) == ["clear", "clear", "hit"]
    assert (
        "first backend down: passed: the screening backend failed: RuntimeError"
        in (transfers[late_tx.lower()]["screening_detail"])
    )

    first = manage(copy_database, "stablepay_import_ledger", str(archive))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["created"]["transfer"] == 3
    again = manage(copy_database, "stablepay_import_ledger", str(archive))
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["created"].values()) == {0}
    reexport = tmp_path / "copy.jsonl.gz"
    done = manage(copy_database, "stablepay_export_ledger", *window, "--output", str(reexport))
    assert done.returncode == 0, done.stderr
    assert archive_raw_lines(reexport)[1:-1] == archive_raw_lines(archive)[1:-1]
    assert archive_lines(reexport)[0]["counts"] == header["counts"]

    # The copy guards the screening columns too: an answered result cannot be rewritten there.
    probe = (
        "from django.db import IntegrityError\n"
        "from stablepay.models import Transfer\n"
        "try:\n"
        "    Transfer.objects.filter(screening='hit').update(screening='clear')\n"
        "    print('REWRITTEN')\n"
        "except IntegrityError as exc:\n"
        "    print('REFUSED', exc)\n"
    )
    run = manage(copy_database, "shell", "-c", probe)
    assert run.returncode == 0, run.stderr
    assert "REFUSED" in run.stdout and "screening result is already recorded" in run.stdout
