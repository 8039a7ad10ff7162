"""Ops decisions (stablepay.ops.services) on exceptions made for real on anvil: accept, refund, void,
four-eyes approval, the refund tx, bulk, and the audit trail each leaves."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from shop.models import Order
from stablepay.errors import Conflict, InvalidInput
from stablepay.ledger.services import fx_rates
from stablepay.models import ActionState, Event, OpsAction, PaymentRequest
from stablepay.ops import selectors
from stablepay.ops.services import (
    NotAllowed,
    ops_action_approve,
    ops_action_bulk,
    ops_action_reject,
    ops_action_request,
    ops_refund_tx_record,
)
from tests.support.local_chain import LocalChain
from tests.support.ops import Exceptions, expect

pytestmark = pytest.mark.django_db

PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil dev account 1, the payer in these tests
REFUND_TX = "0x" + "ab" * 32


def last_event(pr: PaymentRequest) -> Event:
    return pr.events.order_by("-id").first()  # type: ignore[return-value]


# accept ------------------------------------------------------------------------------------------------
def test_accept_underpaid_marks_the_shop_order_paid(
    exceptions: Exceptions, local_chain: LocalChain, shop_order: Callable[..., tuple[Order, PaymentRequest]], ops_user
) -> None:
    order, pr = shop_order()
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units) // 2)
    local_chain.settle()
    from stablepay.ledger.services import payment_requests_expire
    from tests.support.ops import AFTER_EXPIRY

    payment_requests_expire(now=timezone.now() + AFTER_EXPIRY)
    expect(pr, "needs_review", "underpaid")
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT

    op = ops_action_request(
        request_id=pr.pk, action="accept", note="Customer called, accepts the shortfall", user=ops_user
    )

    assert op.state == ActionState.DONE and op.requested_by == ops_user and op.exception == "underpaid"
    pr = expect(pr, "paid", "")
    assert pr.resolution == "accept" and pr.paid_at is not None
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.paid_at is not None
    event = last_event(pr)
    assert event.actor == "ops:olivia"
    assert event.status == "paid"
    assert "Customer called, accepts the shortfall" in event.note and "accept underpaid" in event.note


def test_accept_late_and_wrong_token_mark_paid(exceptions: Exceptions, ops_user: User) -> None:
    late, wrong = exceptions.late(), exceptions.wrong_token()
    ops_action_request(request_id=late.pk, action="accept", note="late but fine", user=ops_user)
    ops_action_request(request_id=wrong.pk, action="accept", note="USDC is fine for us", user=ops_user)
    assert expect(late, "paid", "").resolution == "accept"
    assert expect(wrong, "paid", "").resolution == "accept"


def test_void_cancels(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.underpaid()
    ops_action_request(request_id=pr.pk, action="void", note="Shopper abandoned the order", user=ops_user)
    assert expect(pr, "canceled", "").resolution == "void"
    assert last_event(pr).actor == "ops:olivia"


# validation --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("note", ["", "   ", None])
def test_a_note_is_required(exceptions: Exceptions, ops_user: User, note: str | None) -> None:
    pr = exceptions.underpaid()
    with pytest.raises(InvalidInput) as info:
        ops_action_request(request_id=pr.pk, action="accept", note=note, user=ops_user)  # type: ignore[arg-type]
    assert info.value.field == "note"
    expect(pr, "needs_review", "underpaid")
    assert not OpsAction.objects.exists()


@pytest.mark.parametrize(
    "address",
    [None, "", "0x123", "70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x70997970c51812dc3a010c7d01b50e0d17dc79cX"],
)
def test_a_refund_needs_a_valid_0x_address(exceptions: Exceptions, ops_user: User, address: str | None) -> None:
    pr = exceptions.underpaid()
    with pytest.raises(InvalidInput) as info:
        ops_action_request(
            request_id=pr.pk, action="refund", note="send it back", user=ops_user, refund_address=address
        )
    assert info.value.field == "refund_address"


def test_a_mistyped_checksum_is_refused_and_lower_case_is_checksummed(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.underpaid()
    i = next(i for i, c in enumerate(PAYER) if i > 1 and c.isalpha())
    wrong_case = PAYER[:i] + PAYER[i].swapcase() + PAYER[i + 1 :]  # one letter in the wrong case
    with pytest.raises(InvalidInput, match="checksum"):
        ops_action_request(request_id=pr.pk, action="refund", note="x", user=ops_user, refund_address=wrong_case)
    op = ops_action_request(request_id=pr.pk, action="refund", note="x", user=ops_user, refund_address=PAYER.lower())
    assert op.refund_address == PAYER


def test_an_action_not_offered_for_the_exception_is_refused(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.overpaid()
    with pytest.raises(InvalidInput, match="not offered"):
        ops_action_request(request_id=pr.pk, action="void", note="no", user=ops_user)
    with pytest.raises(InvalidInput):
        ops_action_request(request_id=pr.pk, action="delete", note="no", user=ops_user)


def test_no_open_exception_is_a_conflict(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.underpaid()
    ops_action_request(request_id=pr.pk, action="accept", note="ok", user=ops_user)
    with pytest.raises(Conflict):
        ops_action_request(request_id=pr.pk, action="void", note="again", user=ops_user)
    assert OpsAction.objects.count() == 1


def test_users_without_the_ops_permission_are_refused(
    exceptions: Exceptions, plain_user: User, merchant_member: User
) -> None:
    pr = exceptions.underpaid()
    for user in (plain_user, merchant_member):
        with pytest.raises(NotAllowed):
            ops_action_request(request_id=pr.pk, action="accept", note="me", user=user)
    expect(pr, "needs_review", "underpaid")


# refunds and four-eyes -----------------------------------------------------------------------------------
def test_a_refund_below_the_threshold_is_done_at_once(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.underpaid()  # 5.00 HKD received; the default limit is HKD 1,000.00
    op = ops_action_request(
        request_id=pr.pk, action="refund", note="Refund the partial payment", user=ops_user, refund_address=PAYER
    )
    assert op.state == ActionState.DONE and op.decided_by is None and op.decided_at is not None
    pr = expect(pr, "refunded", "")
    assert pr.resolution == "refund" and pr.refund_address == PAYER and pr.refund_tx_hash == ""
    note = last_event(pr).note
    assert "Refund the partial payment" in note and PAYER in note


def test_refund_of_an_overpayment_keeps_the_order_paid(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.overpaid()  # 2x: 10.00 HKD excess
    refund = selectors.refund_amount(pr, list(pr.transfers.select_related("token")), fx_rates())
    assert [a.base_units for a in refund.amounts] == [10_000_000] and refund.hkd == Fraction(10)
    ops_action_request(
        request_id=pr.pk,
        action="refund",
        note="excess back",
        user=ops_user,
        refund_address=PAYER,
        refund_tx_hash=REFUND_TX,
    )
    pr = expect(pr, "paid", "")
    assert pr.resolution == "refund" and pr.refund_tx_hash == REFUND_TX


def test_a_refund_above_the_threshold_waits_for_a_second_ops_user(
    exceptions: Exceptions, ops_user: User, ops_user2: User, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()  # excess 10.00 HKD > 5.00
    op = ops_action_request(
        request_id=pr.pk, action="refund", note="Customer paid twice", user=ops_user, refund_address=PAYER
    )
    assert op.state == ActionState.PENDING_APPROVAL and op.decided_at is None
    pr = expect(pr, "paid", "overpaid")  # nothing carried out yet
    pending_event = last_event(pr)
    assert pending_event.actor == "ops:olivia" and "awaiting" in pending_event.note
    assert "Customer paid twice" in pending_event.note and "HK$10.00" in pending_event.note

    # No other decision while it waits, and the requester cannot approve it (four eyes).
    with pytest.raises(Conflict, match="awaiting approval"):
        ops_action_request(request_id=pr.pk, action="accept", note="keep it", user=ops_user2)
    with pytest.raises(NotAllowed, match="four-eyes"):
        ops_action_approve(action_id=op.pk, user=ops_user, note="approving my own")
    op.refresh_from_db()
    assert op.state == ActionState.PENDING_APPROVAL

    approved = ops_action_approve(action_id=op.pk, user=ops_user2, note="Checked the two transfers")
    assert approved.state == ActionState.DONE and approved.decided_by == ops_user2
    assert approved.decision_note == "Checked the two transfers"
    pr = expect(pr, "paid", "")
    assert pr.resolution == "refund" and pr.refund_address == PAYER
    event = last_event(pr)
    assert event.actor == "ops:oscar"
    assert "requested by ops:olivia" in event.note and "approved by ops:oscar" in event.note


def test_a_large_underpaid_refund_is_approved_and_the_request_refunded(
    exceptions: Exceptions, ops_user: User, ops_user2: User, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.underpaid(amount="20.00")  # 10.00 HKD received > 5.00
    op = ops_action_request(request_id=pr.pk, action="refund", note="refund all", user=ops_user, refund_address=PAYER)
    assert op.state == ActionState.PENDING_APPROVAL
    ops_action_approve(action_id=op.pk, user=ops_user2, note="ok")
    assert expect(pr, "refunded", "").resolution == "refund"


def test_approval_needs_the_approve_permission(
    exceptions: Exceptions, ops_user: User, ops_no_approve: User, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()
    op = ops_action_request(request_id=pr.pk, action="refund", note="twice", user=ops_user, refund_address=PAYER)
    with pytest.raises(NotAllowed):
        ops_action_approve(action_id=op.pk, user=ops_no_approve, note="I cannot")
    with pytest.raises(NotAllowed):
        ops_action_reject(action_id=op.pk, user=ops_no_approve, note="I cannot")


def test_the_database_refuses_a_self_approval_too(
    exceptions: Exceptions, ops_user: User, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()
    op = ops_action_request(request_id=pr.pk, action="refund", note="twice", user=ops_user, refund_address=PAYER)
    with pytest.raises(IntegrityError), transaction.atomic():
        OpsAction.objects.filter(pk=op.pk).update(state=ActionState.DONE, decided_by=ops_user)


def test_reject_keeps_the_exception_open(
    exceptions: Exceptions, ops_user: User, ops_user2: User, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()
    op = ops_action_request(request_id=pr.pk, action="refund", note="twice", user=ops_user, refund_address=PAYER)
    rejected = ops_action_reject(action_id=op.pk, user=ops_user2, note="Merchant will keep the excess as credit")
    assert rejected.state == ActionState.REJECTED and rejected.decided_by == ops_user2
    pr = expect(pr, "paid", "overpaid")
    assert pr.resolution == "" and pr.refund_address == ""
    event = last_event(pr)
    assert event.actor == "ops:oscar" and "rejected" in event.note and "keep the excess" in event.note
    with pytest.raises(Conflict):
        ops_action_approve(action_id=op.pk, user=ops_user2, note="changed my mind")
    # The exception is open again for a new decision.
    ops_action_request(request_id=pr.pk, action="accept", note="Keep as store credit", user=ops_user2)
    assert expect(pr, "paid", "").resolution == "accept"


def test_approval_is_refused_when_the_exception_was_closed_meanwhile(
    exceptions: Exceptions, ops_user: User, ops_user2: User, four_eyes_at_5_hkd: None
) -> None:
    from stablepay.ledger.services import payment_request_resolve

    pr = exceptions.overpaid()
    op = ops_action_request(request_id=pr.pk, action="refund", note="twice", user=ops_user, refund_address=PAYER)
    payment_request_resolve(request_id=pr.pk, action="accept", note="merchant kept it", actor="merchant:acme")
    with pytest.raises(Conflict, match="changed"):
        ops_action_approve(action_id=op.pk, user=ops_user2, note="ok")
    ops_action_reject(action_id=op.pk, user=ops_user2, note="resolved by the merchant")
    assert OpsAction.objects.get(pk=op.pk).state == ActionState.REJECTED


def test_threshold_is_exact_and_in_hkd(
    exceptions: Exceptions,
    ops_user: User,
    settings,
    four_eyes_at_5_hkd: None,  # type: ignore[no-untyped-def]
) -> None:
    # USDC 1.30 = HKD 10.14 (7.80 HKD per USD): above HKD 10.13, not above HKD 10.14.
    settings.STABLEPAY = {**settings.STABLEPAY, "FOUR_EYES_REFUND_ABOVE_HKD": "10.14"}
    pr = exceptions.wrong_token()
    refund = selectors.refund_amount(pr, list(pr.transfers.select_related("token")), fx_rates())
    assert refund.hkd == Fraction(Decimal("10.14"))
    assert not selectors.refund_needs_approval(pr, refund)
    settings.STABLEPAY = {**settings.STABLEPAY, "FOUR_EYES_REFUND_ABOVE_HKD": "10.13"}
    assert selectors.refund_needs_approval(pr, refund)
    op = ops_action_request(request_id=pr.pk, action="refund", note="USDC back", user=ops_user, refund_address=PAYER)
    assert op.state == ActionState.PENDING_APPROVAL


# the refund tx -------------------------------------------------------------------------------------------
def test_the_refund_tx_is_recorded_once(exceptions: Exceptions, ops_user: User, ops_user2: User) -> None:
    pr = exceptions.underpaid()
    with pytest.raises(Conflict, match="not refunded"):
        ops_refund_tx_record(request_id=pr.pk, tx_hash=REFUND_TX, user=ops_user)
    op = ops_action_request(request_id=pr.pk, action="refund", note="back", user=ops_user, refund_address=PAYER)
    for bad in ("", "0x123", "ab" * 32, "0x" + "zz" * 32):
        with pytest.raises(InvalidInput):
            ops_refund_tx_record(request_id=pr.pk, tx_hash=bad, user=ops_user2)
    ops_refund_tx_record(request_id=pr.pk, tx_hash=REFUND_TX.upper().replace("0X", "0x"), user=ops_user2)
    pr.refresh_from_db()
    op.refresh_from_db()
    assert pr.refund_tx_hash == REFUND_TX and op.refund_tx_hash == REFUND_TX
    event = last_event(pr)
    assert event.actor == "ops:oscar" and REFUND_TX in event.note
    with pytest.raises(Conflict, match="already recorded"):
        ops_refund_tx_record(request_id=pr.pk, tx_hash="0x" + "cd" * 32, user=ops_user)


# the audit trail ------------------------------------------------------------------------------------------
def test_every_decision_is_in_the_timeline_with_actor_and_note(
    exceptions: Exceptions, ops_user: User, ops_user2: User, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()
    op = ops_action_request(request_id=pr.pk, action="refund", note="N1 twice", user=ops_user, refund_address=PAYER)
    ops_action_reject(action_id=op.pk, user=ops_user2, note="N2 not yet")
    op2 = ops_action_request(request_id=pr.pk, action="refund", note="N3 now", user=ops_user2, refund_address=PAYER)
    ops_action_approve(action_id=op2.pk, user=ops_user, note="N4 confirmed")
    ops_refund_tx_record(request_id=pr.pk, tx_hash=REFUND_TX, user=ops_user)
    ops_entries = [(e.actor, e.note) for e in pr.events.order_by("at", "id") if e.actor.startswith("ops:")]
    assert [actor for actor, _ in ops_entries] == ["ops:olivia", "ops:oscar", "ops:oscar", "ops:olivia", "ops:olivia"]
    for marker, (_, note) in zip(["N1", "N2", "N3", "N4", REFUND_TX], ops_entries, strict=True):
        assert marker in note
    states = list(OpsAction.objects.filter(payment_request=pr).order_by("id").values_list("state", flat=True))
    assert states == [ActionState.REJECTED, ActionState.DONE]


# bulk ---------------------------------------------------------------------------------------------------
def test_bulk_accept_over_several_underpaid_requests(exceptions: Exceptions, ops_user: User) -> None:
    requests = exceptions.underpaid_many(3)
    done = requests[0]
    ops_action_request(request_id=done.pk, action="void", note="earlier", user=ops_user)
    outcomes = ops_action_bulk(
        request_ids=[pr.pk for pr in requests] + ["not-a-uuid"],
        action="accept",
        note="Batch: shortfalls under HKD 10 accepted",
        user=ops_user,
    )
    by_id = {o.request_id: o for o in outcomes}
    assert not by_id[str(done.pk)].ok and "no open exception" in by_id[str(done.pk)].message
    assert not by_id["not-a-uuid"].ok
    for pr in requests[1:]:
        assert by_id[str(pr.pk)].ok and by_id[str(pr.pk)].order_reference == pr.order_reference
        assert expect(pr, "paid", "").resolution == "accept"
        assert "Batch: shortfalls" in last_event(pr).note
    assert expect(done, "canceled", "").resolution == "void"


def test_bulk_refuses_refunds_and_blank_notes(exceptions: Exceptions, ops_user: User) -> None:
    pr = exceptions.underpaid()
    with pytest.raises(InvalidInput, match="one at a time"):
        ops_action_bulk(request_ids=[pr.pk], action="refund", note="all back", user=ops_user)
    with pytest.raises(InvalidInput):
        ops_action_bulk(request_ids=[pr.pk], action="accept", note=" ", user=ops_user)
    expect(pr, "needs_review", "underpaid")


# the queue's reads ------------------------------------------------------------------------------------------
def test_queue_groups_by_type_oldest_first_with_search(exceptions: Exceptions) -> None:
    first, second = exceptions.underpaid_many(2)
    over, late, wrong, reorged = (
        exceptions.overpaid(),
        exceptions.late(),
        exceptions.wrong_token(),
        exceptions.reorged(),
    )
    groups = selectors.exception_queue(selectors.QueueFilters())
    assert [g.exception for g in groups] == ["underpaid", "overpaid", "late", "wrong_token", "reorged"]
    assert [r.pr.pk for r in groups[0].rows] == [first.pk, second.pk]
    assert groups[0].rows[0].label == "short" and groups[0].rows[0].difference.hkd == Fraction(5)
    assert groups[1].rows[0].label == "excess" and groups[1].rows[0].difference.hkd == Fraction(10)

    def found(q: str) -> list[str]:
        return [r.pr.order_reference for g in selectors.exception_queue(selectors.QueueFilters(q=q)) for r in g.rows]

    assert found(over.order_reference) == [over.order_reference]
    assert found(late.pay_to.lower()) == [late.order_reference]
    tx = wrong.transfers.get().tx_hash
    assert found(tx) == [wrong.order_reference] and found(tx[:12]) == [wrong.order_reference]
    assert found("no-such-thing") == []
    only = selectors.exception_queue(selectors.QueueFilters(exception="reorged"))
    assert [r.pr.pk for g in only for r in g.rows] == [reorged.pk]
    counts = selectors.exception_counts(selectors.QueueFilters())
    assert counts == {"underpaid": 2, "overpaid": 1, "late": 1, "wrong_token": 1, "reorged": 1, "held": 0}


# the merchant's resolve API (below the four-eyes limit: the merchant's own call; above it, see
# tests/security/test_authorization.py) ----------------------------------------------------------------------
def test_the_resolve_api_still_resolves_the_merchants_own_exceptions(
    exceptions: Exceptions,
    api,
    other_api,  # type: ignore[no-untyped-def]
) -> None:
    pr = exceptions.overpaid()  # a 10.00 HKD excess: below the default HKD 1000.00 limit
    url = f"/api/v1/payment-requests/{pr.pk}/resolve/"
    assert other_api.post(url, {"action": "refund", "note": "x"}, format="json").status_code == 404
    response = api.post(url, {"action": "refund", "note": "Sent back", "refund_tx_hash": REFUND_TX}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "paid" and body["exception"] is None and body["resolution"] == "refund"
    assert body["timeline"][-1]["actor"] == "merchant:acme" and REFUND_TX in body["timeline"][-1]["note"]
    pr.refresh_from_db()
    assert pr.refund_tx_hash == REFUND_TX
    assert not OpsAction.objects.exists()
    assert api.post(url, {"action": "accept", "note": "again"}, format="json").status_code == 409


def test_a_refund_of_a_compliance_hold_always_needs_approval(exceptions: Exceptions) -> None:
    pr = exceptions.underpaid()  # 5.00 HKD, far below the limit
    refund = selectors.refund_amount(pr, list(pr.transfers.select_related("token")), fx_rates())
    assert not selectors.refund_needs_approval(pr, refund)
    pr.exception = "held"  # the screening hook's flag (no hook raises it yet)
    assert selectors.refund_needs_approval(pr, refund)
