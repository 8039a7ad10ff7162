"""Re-screening (screening.rescreen_due, run by the watcher's housekeeping): a transfer whose screening had
no answer is asked about again every SCREENING_RETRY_SECONDS until the service answers. A late hit holds
the request (even a paid one); a late clear is recorded, and a hold already raised stays for ops."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from shop.models import Order
from stablepay.compliance import screening
from stablepay.ingest import watcher
from stablepay.ledger import reconcile, services
from stablepay.models import ActionState, Merchant, Transfer
from stablepay.ops.services import ops_action_approve, ops_action_request
from tests.compliance.service import ScreeningService
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import expect
from tests.support.screening import DUE, PAYER, screening_settings, transfer_of

RETRY = timedelta(seconds=60)  # the default SCREENING_RETRY_SECONDS


def test_a_failed_open_payment_is_held_when_the_service_comes_back_and_flags_the_payer(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    http_backend.mode = "http500"
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    expect(pr, "paid", "")
    first = transfer_of(tx)
    assert first.screening == "failed_open"
    first_detail = "the screening service answered HTTP 500; worth HK$10.00, below HK$8,000.00: passed"
    assert first.screening_detail == first_detail
    assert len(http_backend.seen) == 1

    # Not due yet: nobody is asked.
    assert screening.rescreen_due() == 0
    assert len(http_backend.seen) == 1

    # Still down when due: no answer, tried again only a full interval later.
    down_at = timezone.now() + RETRY
    assert screening.rescreen_due(now=down_at) == 0
    assert len(http_backend.seen) == 2
    still = transfer_of(tx)
    assert (still.screening, still.screening_detail, still.screened_at) == ("failed_open", first_detail, down_at)
    assert screening.rescreen_due(now=down_at + RETRY / 2) == 0
    assert len(http_backend.seen) == 2

    # Back, and the payer is now on the service's list: the next watcher passes hold the paid request.
    http_backend.mode = "answer"
    http_backend.flag(PAYER, "added to a sanctions list today")
    later = down_at + RETRY
    watcher.housekeeping(now=later)
    assert http_backend.addresses_asked[-1] == [PAYER.lower()]
    answered = transfer_of(tx)
    assert (answered.screening, answered.screened_at) == ("hit", later)
    assert answered.screening_detail == (
        f"screening service: added to a sanctions list today (re-screened {later:%Y-%m-%d %H:%M} UTC;"
        f" first backend down: passed: {first_detail})"
    )
    assert pr.transfers.get().state == "confirmed"
    local_chain.scan(now=later)
    pr = expect(pr, "needs_review", "held")
    assert int(pr.amount_paid_base_units) == DUE and pr.paid_at is not None  # it was paid once
    held = pr.events.get(exception="held")
    assert held.status == "needs_review" and held.note == reconcile.HELD_REASON

    # Answered once: never asked again.
    asked = len(http_backend.seen)
    assert screening.rescreen_due(now=later + 10 * RETRY) == 0
    local_chain.settle(now=later + 10 * RETRY)
    assert len(http_backend.seen) == asked
    expect(pr, "needs_review", "held")


def test_a_failed_closed_hold_re_screened_clear_still_waits_for_ops(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService, settings: Any, ops_user: User
) -> None:
    screening_settings(settings, fail_open_below_hkd="0")
    http_backend.mode = "malformed"
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    expect(pr, "needs_review", "held")
    assert transfer_of(tx).screening == "failed_closed"

    http_backend.mode = "answer"
    later = timezone.now() + RETRY
    assert screening.rescreen_due(now=later) == 1
    t = transfer_of(tx)
    assert t.screening == "clear"
    assert t.screening_detail.startswith("screening service: no match (re-screened ")
    assert "first backend down: held: the screening service's answer is malformed" in t.screening_detail
    # The request was already held: a late clear is shown to ops, who decide (four-eyes), not the watcher.
    local_chain.settle(now=later)
    expect(pr, "needs_review", "held")
    op = ops_action_request(request_id=pr.pk, action="accept", note="Re-screened clear", user=ops_user)
    assert op.state == ActionState.PENDING_APPROVAL


def test_a_failed_closed_transfer_re_screened_clear_before_it_confirms_pays(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService, settings: Any
) -> None:
    screening_settings(settings, fail_open_below_hkd="0", retry_seconds=0)
    http_backend.mode = "http500"
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.scan()
    assert transfer_of(tx).screening == "failed_closed"
    expect(pr, "confirming", "")
    http_backend.mode = "answer"
    assert screening.rescreen_due() == 1  # SCREENING_RETRY_SECONDS 0: due at once
    local_chain.settle()
    expect(pr, "paid", "")
    assert not pr.events.filter(exception="held").exists()


def test_rescreening_asks_once_per_chain_for_many_transfers(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    http_backend.mode = "http500"
    requests = [create_request(merchant, order_reference=f"R-{i}") for i in range(3)]
    for i, pr in enumerate(requests):
        local_chain.pay(pr.pay_to, DUE, sender_index=1 + i % 2)
    local_chain.settle()
    assert Transfer.objects.filter(screening="failed_open").count() == 3
    http_backend.mode = "answer"
    calls = len(http_backend.seen)
    assert screening.rescreen_due(now=timezone.now() + RETRY) == 3
    assert len(http_backend.seen) == calls + 1
    assert sorted(http_backend.addresses_asked[-1]) == sorted({t.from_address.lower() for t in Transfer.objects.all()})
    assert set(Transfer.objects.values_list("screening", flat=True)) == {"clear"}


def test_the_set_based_sweep_holds_a_request_a_late_hit_left_stale(
    local_chain: LocalChain, http_backend: ScreeningService, shop_order: Any
) -> None:
    """A late hit marks the request for reconciliation; with no watcher pass since (workers down), the
    set-based sweep (`stablepay_reconcile`, bulk_reconcile) holds it by the same rule."""
    http_backend.mode = "http500"
    order, pr = shop_order()
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units), sender_index=1)
    local_chain.settle()
    expect(pr, "paid", "")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    http_backend.mode = "answer"
    http_backend.flag(PAYER, "late hit")
    assert screening.rescreen_due(now=timezone.now() + RETRY) == 1
    pr.refresh_from_db()
    assert pr.reconcile_pending and (pr.status, pr.exception) == ("paid", "")

    dry = sweep("--dry-run")
    assert dry["changed"] == 1 and dict(dry["transitions"]) == {"paid -> needs_review/held": 1}
    expect(pr, "paid", "")
    done = sweep()
    assert done["changed"] == 1 and done["events"] == 1
    pr = expect(pr, "needs_review", "held")
    assert not pr.reconcile_pending
    event = pr.events.get(exception="held")
    assert event.status == "needs_review" and event.note == reconcile.HELD_REASON
    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # the store is told; its order keeps the status it had
    assert sweep()["changed"] == 0
    local_chain.settle()
    expect(pr, "needs_review", "held")
    report = sweep("--report")
    assert report["ok"] is True, report


def sweep(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("stablepay_reconcile", *args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_a_late_hit_holds_a_request_ops_already_resolved_on_other_grounds(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService, ops_user: User, ops_user2: User
) -> None:
    """Found while testing: the ops resolution of an underpayment marks the transfer reviewed, and the
    rules then ignore its screening, so a late hit on it held nothing. It holds the request now."""
    http_backend.mode = "http500"
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE // 2, sender_index=1)
    local_chain.settle()
    expired = timezone.now() + timedelta(minutes=16)
    services.payment_requests_expire(now=expired)
    expect(pr, "needs_review", "underpaid")
    op = ops_action_request(request_id=pr.pk, action="accept", note="Customer will top up", user=ops_user, now=expired)
    assert op.state == ActionState.DONE
    expect(pr, "paid", "")
    assert transfer_of(tx).reviewed and transfer_of(tx).screening == "failed_open"

    http_backend.mode = "answer"
    http_backend.flag(PAYER, "late hit after the resolution")
    later = expired + RETRY
    watcher.housekeeping(now=later)
    assert transfer_of(tx).screening == "hit"
    local_chain.settle(now=later)
    pr = expect(pr, "needs_review", "held")
    event = pr.events.get(exception="held")
    assert (event.status, event.actor) == ("needs_review", "watcher")
    assert "re-screen" in event.note
    assert sweep()["changed"] == 0 and sweep("--report")["ok"] is True  # the set-based rules agree
    # And, held, it takes two ops users again.
    again = ops_action_request(request_id=pr.pk, action="accept", note="Cleared by compliance", user=ops_user)
    assert again.state == ActionState.PENDING_APPROVAL
    ops_action_approve(action_id=again.pk, user=ops_user2, note="Agreed")
    expect(pr, "paid", "")
    local_chain.settle(now=later)
    expect(pr, "paid", "")


def test_a_late_hit_after_ops_released_a_failed_closed_hold_holds_it_again(
    local_chain: LocalChain,
    merchant: Merchant,
    http_backend: ScreeningService,
    settings: Any,
    ops_user: User,
    ops_user2: User,
) -> None:
    screening_settings(settings, fail_open_below_hkd="0")
    http_backend.mode = "hang"
    http_backend.hang_s = 2.0
    screening_settings(settings, http_timeout_seconds=0.3)
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    expect(pr, "needs_review", "held")
    op = ops_action_request(request_id=pr.pk, action="accept", note="Service down, customer known", user=ops_user)
    ops_action_approve(action_id=op.pk, user=ops_user2, note="OK while the service is down")
    expect(pr, "paid", "")

    http_backend.mode = "answer"
    http_backend.flag(PAYER, "sanctioned after all")
    assert screening.rescreen_due(now=timezone.now() + RETRY) == 1
    assert transfer_of(tx).screening == "hit"
    local_chain.settle()
    expect(pr, "needs_review", "held")
    assert pr.events.filter(exception="held", actor="watcher").count() == 2  # held, released, held again
