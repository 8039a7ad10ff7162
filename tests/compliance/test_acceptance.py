"""Issue 8 part 2, acceptance: a denylisted payer pays a storefront order exactly on anvil. The request ends
`needs_review` / `held`, the order is not paid, the merchant is told (timeline and a signed webhook), and
only two ops users together can release it: the API key cannot, one ops user cannot, and a user without
the approve permission cannot."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from shop.models import Order
from stablepay.errors import Conflict
from stablepay.ledger import reconcile
from stablepay.models import ActionState, Merchant, OpsAction, PaymentRequest
from stablepay.ops.services import (
    NotAllowed,
    ops_action_approve,
    ops_action_bulk,
    ops_action_reject,
    ops_action_request,
)
from stablepay.webhooks import delivery as webhooks
from tests.support.local_chain import LocalChain
from tests.support.ops import expect
from tests.support.screening import PAYER, deny, transfer_of
from tests.support.webhook_receiver import VerifyingReceiver

SECRET = "whsec-screening-0123456789abcdef"
REASON = "OFAC SDN list 2026-11-20: test entry"

PlaceOrder = Callable[..., tuple[Order, PaymentRequest]]


@pytest.fixture
def receiver(merchant: Merchant) -> Iterator[VerifyingReceiver]:
    """The merchant's webhook endpoint, checking every signature."""
    live = VerifyingReceiver([SECRET])
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url=live.url, webhook_secret=SECRET)
    yield live
    live.close()


def order_status(order: Order) -> str:
    order.refresh_from_db()
    return order.status


def held_order(local_chain: LocalChain, shop_order: PlaceOrder) -> tuple[Order, PaymentRequest, str]:
    """A storefront order paid exactly by the denylisted payer, confirmed: held."""
    deny(PAYER, REASON)
    order, pr = shop_order()
    tx = local_chain.pay(pr.pay_to, int(pr.amount_due_base_units), sender_index=1)
    local_chain.settle()
    expect(pr, "needs_review", "held")
    return order, pr, tx


def test_a_denylisted_payer_is_held_and_the_order_is_not_paid(
    local_chain: LocalChain,
    shop_order: PlaceOrder,
    api: APIClient,
    receiver: VerifyingReceiver,
    ops_user: User,
    ops_user2: User,
    ops_no_approve: User,
) -> None:
    deny(PAYER.lower(), REASON)
    order, pr = shop_order()
    due = int(pr.amount_due_base_units)
    order.refresh_from_db()
    assert due > 0 and order.payment_request_id == pr.pk
    tx = local_chain.pay(pr.pay_to, due, sender_index=1)

    # Seen at one confirmation: screened before it was recorded, shown as received, nothing decided yet
    # (a reorg may still remove it), and nothing credited.
    local_chain.scan()
    t = transfer_of(tx)
    assert (t.screening, t.screening_detail) == ("hit", f"screening list: denylist, {REASON}")
    assert t.screened_at is not None and t.from_address == PAYER
    expect(pr, "confirming", "")

    local_chain.settle()
    pr = expect(pr, "needs_review", "held")
    assert int(pr.amount_paid_base_units) == due  # received and shown, never credited
    assert pr.paid_at is None and pr.resolution == ""
    assert order_status(order) == Order.Status.PENDING_PAYMENT and order.paid_at is None
    assert transfer_of(tx).state == "confirmed"
    held = pr.events.get(exception="held")
    assert (held.status, held.actor) == ("needs_review", "watcher")
    assert held.note == reconcile.HELD_REASON
    assert not pr.events.filter(status="paid").exists()

    # The merchant's API shows what was received, and its key cannot decide a compliance hold.
    body = api.get(f"/api/v1/payment-requests/{pr.pk}/").json()
    assert (body["status"], body["exception"]) == ("needs_review", "held")
    assert body["amount_paid_base_units"] == str(due) and body["amount_paid"] == body["amount_due"]
    assert body["timeline"][-1]["exception"] == "held"
    url = f"/api/v1/payment-requests/{pr.pk}/resolve/"
    for action in ("accept", "void", "refund"):
        refused = api.post(url, {"action": action, "note": "we know this customer"}, format="json")
        assert refused.status_code == 403, (action, refused.content)
    expect(pr, "needs_review", "held")

    # The webhook: created, confirming, then needs_review with the exception, each signed.
    assert webhooks.deliver_due() == 3
    assert all(d.accepted for d in receiver.seen)
    sent = [json.loads(d.body) for d in receiver.seen]
    assert [s["type"] for s in sent] == [
        "payment_request.created",
        "payment_request.confirming",
        "payment_request.needs_review",
    ]
    data = sent[-1]["data"]
    assert (data["status"], data["exception"], data["amount_paid_base_units"]) == ("needs_review", "held", str(due))

    # Four-eyes: the first ops user asks, the request waits, and neither they nor a user without the
    # approve permission can carry it out.
    op = ops_action_request(
        request_id=pr.pk, action="accept", note="False positive: name match only, KYC on file", user=ops_user
    )
    assert (op.state, op.exception, op.decided_at) == (ActionState.PENDING_APPROVAL, "held", None)
    expect(pr, "needs_review", "held")
    assert order_status(order) == Order.Status.PENDING_PAYMENT
    waiting = pr.events.order_by("-id").first()
    assert waiting is not None and waiting.actor == "ops:olivia"
    assert waiting.note.startswith("accept held requested, awaiting a second ops user's approval")
    with pytest.raises(Conflict):
        ops_action_request(request_id=pr.pk, action="void", note="another decision", user=ops_user2)
    with pytest.raises(NotAllowed, match="four-eyes"):
        ops_action_approve(action_id=op.pk, user=ops_user, note="approving my own")
    with pytest.raises(NotAllowed, match="ops_approve"):
        ops_action_approve(action_id=op.pk, user=ops_no_approve, note="no right to")
    assert api.post(url, {"action": "accept", "note": "meanwhile"}, format="json").status_code in (403, 409)
    expect(pr, "needs_review", "held")

    approved = ops_action_approve(action_id=op.pk, user=ops_user2, note="Checked the KYC file")
    assert (approved.state, approved.decided_by) == (ActionState.DONE, ops_user2)
    pr = expect(pr, "paid", "")
    assert pr.resolution == "accept" and pr.paid_at is not None
    assert order_status(order) == Order.Status.PAID and order.paid_at is not None
    assert transfer_of(tx).reviewed
    last = pr.events.order_by("-id").first()
    assert last is not None and last.status == "paid" and last.actor == "ops:oscar"
    assert "requested by ops:olivia; approved by ops:oscar" in last.note

    # Later passes leave the decision alone: the reviewed transfer no longer holds anything.
    local_chain.settle(blocks=2)
    expect(pr, "paid", "")
    assert pr.events.filter(status="paid").count() == 1
    assert webhooks.deliver_due() == 1
    assert json.loads(receiver.seen[-1].body)["type"] == "payment_request.resolved"


def test_voiding_a_hold_also_needs_a_second_ops_user_and_cancels_the_order(
    local_chain: LocalChain, shop_order: PlaceOrder, ops_user: User, ops_user2: User
) -> None:
    order, pr, _ = held_order(local_chain, shop_order)
    op = ops_action_request(request_id=pr.pk, action="void", note="Confirmed sanctioned: funds frozen", user=ops_user)
    assert op.state == ActionState.PENDING_APPROVAL
    expect(pr, "needs_review", "held")
    ops_action_approve(action_id=op.pk, user=ops_user2, note="Agreed")
    assert expect(pr, "canceled", "").resolution == "void"
    assert order_status(order) == Order.Status.CANCELED


def test_a_small_refund_of_a_hold_still_waits_and_a_rejection_keeps_it_held(
    local_chain: LocalChain, shop_order: PlaceOrder, ops_user: User, ops_user2: User
) -> None:
    order, pr, _ = held_order(local_chain, shop_order)
    # Far below the FOUR_EYES_REFUND_ABOVE_HKD limit, and still pending: any decision on a hold is.
    op = ops_action_request(request_id=pr.pk, action="refund", note="Send it back", user=ops_user, refund_address=PAYER)
    assert op.state == ActionState.PENDING_APPROVAL and op.refund_address == PAYER
    rejected = ops_action_reject(action_id=op.pk, user=ops_user2, note="Not to a sanctioned wallet")
    assert rejected.state == ActionState.REJECTED
    pr = expect(pr, "needs_review", "held")
    assert pr.events.order_by("-id").first().note == (  # type: ignore[union-attr]
        "refund request by ops:olivia rejected: Not to a sanctioned wallet"
    )
    assert order_status(order) == Order.Status.PENDING_PAYMENT
    local_chain.settle(blocks=1)
    expect(pr, "needs_review", "held")


def test_a_bulk_accept_never_releases_a_hold_on_its_own(
    local_chain: LocalChain, shop_order: PlaceOrder, ops_user: User
) -> None:
    order, pr, _ = held_order(local_chain, shop_order)
    [outcome] = ops_action_bulk(request_ids=[pr.pk], action="accept", note="clear the queue", user=ops_user)
    assert (outcome.ok, outcome.message) == (True, ActionState.PENDING_APPROVAL)
    assert OpsAction.objects.get(payment_request=pr).state == ActionState.PENDING_APPROVAL
    expect(pr, "needs_review", "held")
    assert order_status(order) == Order.Status.PENDING_PAYMENT
