"""Issue 16 part 6: accepting an underpaid or wrong-token payment is one person's decision only below
STABLEPAY["ACCEPT_FOUR_EYES_ABOVE_HKD"]; at or above it a second ops user holding `stablepay.ops_approve`
must approve, and nobody approves their own request. Made for real on anvil (tests/support/ops.py).

Each four-eyes test first makes the attack: one ops user (alone, or through the merchant API, or the admin's
bulk action) marks a large shortfall paid. It used to be carried out at once; now it waits.

The shortfall is priced at the request's own quote: amount x (due - received) / due in its currency, then to
HKD at the exact ratio. A 10.00 HKD request half paid is short exactly HK$5.00; a 103.00 MOP one half paid
is short 51.50 MOP, exactly HK$50.00 at the 1.03 peg.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from shop.models import Order
from stablepay.ledger import services
from stablepay.models import ActionState, OpsAction, PaymentRequest
from stablepay.ops import selectors
from stablepay.ops.services import (
    NotAllowed,
    ops_action_approve,
    ops_action_bulk,
    ops_action_reject,
    ops_action_request,
)
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import AFTER_EXPIRY, Exceptions, due, expect

pytestmark = pytest.mark.django_db


def limit(settings: Any, value: object) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, "ACCEPT_FOUR_EYES_ABOVE_HKD": value}


def underpaid_mop(local_chain: LocalChain, exceptions: Exceptions) -> PaymentRequest:
    pr = create_request(exceptions.merchant, amount="103.00", currency="MOP", order_reference="MOP-1")
    local_chain.pay(pr.pay_to, due(pr) // 2)
    local_chain.settle()
    services.payment_requests_expire(now=timezone.now() + AFTER_EXPIRY)
    return expect(pr, "needs_review", "underpaid")


# the amount --------------------------------------------------------------------------------------------------
def test_the_shortfall_is_exact_at_the_requests_own_quote(local_chain: LocalChain, exceptions: Exceptions) -> None:
    rates = services.fx_rates()
    assert selectors.accept_shortfall(exceptions.underpaid(), rates) == (5_000_000, Fraction(5))
    assert selectors.accept_shortfall(underpaid_mop(local_chain, exceptions), rates) == (50_000_000, Fraction(50))
    # Wrong token: none of the requested coin arrived, so the whole price is taken on trust.
    assert selectors.accept_shortfall(exceptions.wrong_token(), rates) == (10_000_000, Fraction(10))
    # Late but complete, or overpaid: nothing is short.
    assert selectors.accept_shortfall(exceptions.late(), rates) == (0, Fraction(0))
    assert selectors.accept_shortfall(exceptions.overpaid(), rates) == (0, Fraction(0))
    assert selectors.DEFAULT_ACCEPT_FOUR_EYES_HKD == "1000.00"


# below the limit: one person --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["underpaid", "wrong_token"])
def test_below_the_limit_one_ops_user_decides_at_once(
    exceptions: Exceptions, ops_no_approve: User, settings: Any, kind: str
) -> None:
    limit(settings, "10.01" if kind == "wrong_token" else "5.01")  # HK$10.00 / HK$5.00 short: just below
    pr = getattr(exceptions, kind)()
    op = ops_action_request(request_id=pr.pk, action="accept", note="Customer called, accepts", user=ops_no_approve)
    assert op.state == ActionState.DONE and op.decided_at is not None
    assert expect(pr, "paid", "").resolution == "accept"


# at or above the limit: two people ---------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "at"), [("underpaid", "5.00"), ("wrong_token", "10.00"), ("underpaid", "0.01")])
def test_at_or_above_the_limit_an_accept_waits_for_a_second_ops_user(
    exceptions: Exceptions,
    shop_order: Any,
    local_chain: LocalChain,
    ops_user: User,
    ops_user2: User,
    ops_no_approve: User,
    settings: Any,
    kind: str,
    at: str,
) -> None:
    limit(settings, at)
    if kind == "underpaid":  # through the shop, so the order's own status shows what was (not) carried out
        order, pr = shop_order()
        local_chain.pay(pr.pay_to, due(pr) // 2)
        local_chain.settle()
        services.payment_requests_expire(now=timezone.now() + AFTER_EXPIRY)
        expect(pr, "needs_review", "underpaid")
    else:
        order, pr = None, exceptions.wrong_token()

    # The attack: Olivia, alone, marks the order paid.
    op = ops_action_request(request_id=pr.pk, action="accept", note="Trust me", user=ops_user)

    assert op.state == ActionState.PENDING_APPROVAL and op.decided_at is None and op.decided_by is None
    pr = expect(pr, "needs_review", kind)  # nothing carried out
    if order is not None:
        order.refresh_from_db()
        assert order.status == Order.Status.PENDING_PAYMENT
    event = pr.events.order_by("-id").first()
    assert event is not None and "awaiting a second ops user's approval" in event.note and "short HK$" in event.note

    # She cannot approve her own request; someone without ops_approve cannot approve at all.
    with pytest.raises(NotAllowed, match="four-eyes"):
        ops_action_approve(action_id=op.pk, user=ops_user, note="approving my own")
    with pytest.raises(NotAllowed, match="ops_approve"):
        ops_action_approve(action_id=op.pk, user=ops_no_approve, note="not mine to approve")
    assert OpsAction.objects.get(pk=op.pk).state == ActionState.PENDING_APPROVAL
    expect(pr, "needs_review", kind)

    approved = ops_action_approve(action_id=op.pk, user=ops_user2, note="Checked with the merchant")
    assert approved.state == ActionState.DONE and approved.decided_by == ops_user2
    pr = expect(pr, "paid", "")
    assert pr.resolution == "accept"
    if order is not None:
        order.refresh_from_db()
        assert order.status == Order.Status.PAID


def test_a_second_ops_user_may_reject_it(
    exceptions: Exceptions, ops_user: User, ops_user2: User, settings: Any
) -> None:
    limit(settings, "5.00")
    pr = exceptions.underpaid()
    op = ops_action_request(request_id=pr.pk, action="accept", note="Trust me", user=ops_user)
    rejected = ops_action_reject(action_id=op.pk, user=ops_user2, note="No: ask for the rest")
    assert rejected.state == ActionState.REJECTED
    expect(pr, "needs_review", "underpaid")


def test_an_exact_boundary_in_mop_is_four_eyes(
    local_chain: LocalChain, exceptions: Exceptions, ops_user: User, settings: Any
) -> None:
    limit(settings, "50.00")  # 51.50 MOP short = HK$50.00 exactly: at the limit
    pr = underpaid_mop(local_chain, exceptions)
    assert ops_action_request(request_id=pr.pk, action="accept", note="x", user=ops_user).state == "pending_approval"
    limit(settings, "50.000000001")
    other = underpaid_mop(local_chain, exceptions)
    assert ops_action_request(request_id=other.pk, action="accept", note="x", user=ops_user).state == "done"


def test_void_and_small_refunds_are_untouched_by_the_accept_limit(
    exceptions: Exceptions, ops_user: User, settings: Any
) -> None:
    limit(settings, "0.01")
    assert ops_action_request(request_id=exceptions.underpaid().pk, action="void", note="x", user=ops_user).state == (
        "done"
    )
    late = exceptions.late()  # paid in full, only late: nothing is short
    assert ops_action_request(request_id=late.pk, action="accept", note="x", user=ops_user).state == "done"


# the other ways in ----------------------------------------------------------------------------------------
def test_the_merchant_api_cannot_accept_a_large_shortfall_alone(
    exceptions: Exceptions, api: APIClient, settings: Any
) -> None:
    limit(settings, "5.00")
    pr = exceptions.underpaid()
    url = f"/api/v1/payment-requests/{pr.pk}/resolve/"
    refused = api.post(url, {"action": "accept", "note": "our call"}, format="json")
    assert refused.status_code == 403, refused.content
    assert "four-eyes" in refused.json()["action"][0] and "HK$5.00" in refused.json()["action"][0]
    expect(pr, "needs_review", "underpaid")
    limit(settings, "5.01")
    assert api.post(url, {"action": "accept", "note": "our call"}, format="json").status_code == 200
    expect(pr, "paid", "")


def test_the_bulk_action_leaves_large_ones_pending(exceptions: Exceptions, ops_user: User, settings: Any) -> None:
    limit(settings, "100.00")
    small = exceptions.underpaid()  # HK$5.00 short
    large = exceptions.underpaid(amount="400.00")  # HK$200.00 short
    outcomes = {
        o.request_id: o
        for o in ops_action_bulk(request_ids=[small.pk, large.pk], action="accept", note="batch", user=ops_user)
    }
    assert outcomes[str(small.pk)].message == ActionState.DONE
    assert outcomes[str(large.pk)].message == ActionState.PENDING_APPROVAL
    expect(small, "paid", "")
    expect(large, "needs_review", "underpaid")


def test_the_console_says_why(exceptions: Exceptions, ops_user: User, ops_user2: User, settings: Any) -> None:
    limit(settings, "5.00")
    pr = exceptions.underpaid()
    olivia = Client()
    login_as(olivia, ops_user)
    detail = reverse("stablepay:ops:detail", args=[pr.pk])
    html = olivia.get(detail).content.decode()
    assert 'id="accept-four-eyes"' in html and "HK$5.00" in html
    page = olivia.post(reverse("stablepay:ops:act", args=[pr.pk]), {"action": "accept", "note": "ok"}, follow=True)
    html = page.content.decode()
    assert "Accept requested. The shortfall is at or above the four-eyes limit" in html
    assert "Accepting a shortfall of HKD 5.00 or more" in html
    expect(pr, "needs_review", "underpaid")


# the setting ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["lots", "-1", "NaN", "Infinity", "", None, True])
def test_a_bad_limit_stops_start_up_and_fails_closed(
    exceptions: Exceptions, ops_user: User, settings: Any, value: object
) -> None:
    limit(settings, value)
    errors = [e for e in run_checks() if e.id == "stablepay.E121"]
    assert errors and "STABLEPAY_ACCEPT_FOUR_EYES_ABOVE_HKD" in errors[0].msg
    assert selectors.accept_four_eyes_threshold() == 0  # were it to run anyway: every shortfall needs two people
    pr = exceptions.underpaid()
    assert ops_action_request(request_id=pr.pk, action="accept", note="x", user=ops_user).state == "pending_approval"


@pytest.mark.parametrize("value", ["0", "1000.00", "25", " 7.5 "])
def test_a_good_limit_passes_the_check(settings: Any, value: str) -> None:
    limit(settings, value)
    assert not [e for e in run_checks() if e.id in ("stablepay.E121", "stablepay.E122")]
