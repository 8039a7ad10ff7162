"""Who may see and change what (issue 6, "Authorization"), beyond tests/test_permission_matrix.py and
tests/ops/test_views.py:

- merchant B against every object of merchant A: the API by id (detail, cancel, resolve), by list filters
  and in settlements; the dashboard by id, by search, by the ?m= picker, in the CSV export, in webhook
  redelivery and in every settings form. A's objects answer 404 or are absent, and nothing of A's changes.
- the ops console's actions for users who lack the permission: a staff user, an inactive ops user.
- four-eyes bypass attempts: approving twice, approving or rejecting after the other, approving a
  changed proposal, forged action ids, approving through the admin, and an API key refunding above the
  limit, accepting a compliance hold or acting while a refund awaits approval (decision: the API is held
  to the console's rules, see stablepay.ops.services.merchant_resolve).
"""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from stablepay.models import ActionState, Merchant, OpsAction, PaymentRequest
from stablepay.ops.services import ops_action_request
from tests.factories import WebhookDeliveryFactory
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import APPROVE, CONSOLE, Exceptions, due, expect, make_user

pytestmark = pytest.mark.django_db

PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TX = "0x" + "cd" * 32


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        login_as(client, user)
    return client


def snapshot(pr: PaymentRequest) -> tuple[object, ...]:
    pr.refresh_from_db()
    return (pr.status, pr.exception, pr.resolution, pr.refund_tx_hash, pr.events.count())


# the API: merchant "other" against acme's requests -----------------------------------------------------------
def test_another_merchants_requests_answer_404_by_id_and_change_nothing(
    local_chain: LocalChain, exceptions: Exceptions, api: APIClient, other_api: APIClient
) -> None:
    underpaid = exceptions.underpaid()
    open_one = create_request(exceptions.merchant, order_reference="A-OPEN")
    before = {pr.pk: snapshot(pr) for pr in (underpaid, open_one)}
    for pr in (underpaid, open_one):
        base = f"/api/v1/payment-requests/{pr.pk}/"
        assert other_api.get(base).status_code == 404
        assert other_api.post(base + "cancel/").status_code == 404
        for action in ("accept", "refund", "void"):
            response = other_api.post(base + "resolve/", {"action": action, "note": "mine now"}, format="json")
            assert response.status_code == 404, (action, response.json())
            assert response.json() == {"detail": "no such payment request"}  # the same as for an unknown id
    assert {pr.pk: snapshot(pr) for pr in (underpaid, open_one)} == before
    # A 404 for another merchant's id is indistinguishable from one for an id that does not exist.
    unknown = other_api.get("/api/v1/payment-requests/00000000-0000-4000-8000-000000000000/")
    assert (
        unknown.status_code == 404
        and unknown.json() == other_api.get(f"/api/v1/payment-requests/{open_one.pk}/").json()
    )
    # The owner still sees and acts on them.
    assert api.get(f"/api/v1/payment-requests/{open_one.pk}/").status_code == 200
    assert api.post(f"/api/v1/payment-requests/{open_one.pk}/cancel/").status_code == 200


def test_list_filters_and_settlements_show_only_the_merchants_own(
    local_chain: LocalChain, exceptions: Exceptions, api: APIClient, other_api: APIClient
) -> None:
    acme = exceptions.merchant
    other = Merchant.objects.get(slug="other")
    paid = create_request(acme, order_reference="SHARED-REF")
    local_chain.pay(paid.pay_to, due(paid))
    local_chain.settle()
    expect(paid, "paid", "")
    create_request(acme, order_reference="A-ONLY")
    theirs = create_request(other, order_reference="SHARED-REF", currency="MOP")

    def ids(client: APIClient, **query: str) -> set[str]:
        response = client.get("/api/v1/payment-requests/", query)
        assert response.status_code == 200
        return {r["id"] for r in response.json()["results"]}

    assert ids(other_api) == {str(theirs.pk)}
    assert ids(other_api, order_reference="SHARED-REF") == {str(theirs.pk)}
    assert ids(other_api, order_reference="A-ONLY") == set()
    assert ids(other_api, status="paid") == set()
    assert ids(other_api, status="open") == {str(theirs.pk)}
    assert ids(api, order_reference="SHARED-REF") == {str(paid.pk)}
    assert ids(api, status="paid") == {str(paid.pk)}
    # Page through everything: still only their own.
    assert other_api.get("/api/v1/payment-requests/", {"page": 2}).status_code == 404

    today = timezone.localdate()
    window = {"date_from": (today - timedelta(days=1)).isoformat(), "date_to": (today + timedelta(days=1)).isoformat()}
    mine = api.get("/api/v1/settlements/", window).json()
    assert [(r["token"], r["count"]) for r in mine] == [("HKDX", 1)]
    assert other_api.get("/api/v1/settlements/", window).json() == []


# the dashboard: a member of "other" against acme ------------------------------------------------------------
@pytest.fixture
def members(local_chain: LocalChain) -> dict[str, User]:
    acme, other = Merchant.objects.get(slug="acme"), Merchant.objects.get(slug="other")
    both = make_user("bo", merchant=acme)
    other.members.add(both)
    return {"a": make_user("amy", merchant=acme), "b": make_user("ben", merchant=other), "both": both}


def test_the_dashboard_hides_another_merchants_payments(
    local_chain: LocalChain, members: dict[str, User], exceptions: Exceptions
) -> None:
    pr = create_request(exceptions.merchant, order_reference="ACME-SECRET-1")
    local_chain.pay(pr.pay_to, due(pr))
    local_chain.settle()
    b, a, both = client_for(members["b"]), client_for(members["a"]), client_for(members["both"])
    detail = f"/merchant/payments/{pr.pk}/"
    assert a.get(detail).status_code == 200
    assert b.get(detail).status_code == 404
    assert b.get(detail + "?m=acme").status_code == 404
    assert b.get(detail + "?m=other").status_code == 404
    for url in (
        "/merchant/",
        "/merchant/payments/",
        "/merchant/payments/?q=ACME-SECRET",
        "/merchant/payments/?status=paid",
    ):
        response = b.get(url)
        assert response.status_code == 200, url
        assert "ACME-SECRET-1" not in response.content.decode(), url
        assert b.get(url + ("&" if "?" in url else "?") + "m=acme").status_code == 404, url
    # A member of both sees acme's only when acme is picked, and the other's page never lists it.
    assert both.get(detail + "?m=acme").status_code == 200
    assert both.get(detail + "?m=other").status_code == 404
    assert "ACME-SECRET-1" not in both.get("/merchant/payments/?m=other").content.decode()
    assert "ACME-SECRET-1" in both.get("/merchant/payments/?m=acme").content.decode()
    # A slug that does not exist, and tricks on the picker.
    for slug in ("nope", "acme ", "ACME", "acme&m=other", ""):
        status = b.get("/merchant/payments/", {"m": slug}).status_code
        assert status == (200 if slug == "" else 404), slug


def test_the_csv_export_is_the_merchants_own(
    local_chain: LocalChain, members: dict[str, User], exceptions: Exceptions
) -> None:
    acme, other = exceptions.merchant, Merchant.objects.get(slug="other")
    for merchant, ref in ((acme, "ACME-CSV"), (other, "OTHER-CSV")):
        pr = create_request(merchant, order_reference=ref, currency="MOP" if merchant == other else "HKD")
        local_chain.pay(pr.pay_to, due(pr))
    local_chain.settle()
    today = timezone.localdate()
    window = {"date_from": (today - timedelta(days=1)).isoformat(), "date_to": (today + timedelta(days=1)).isoformat()}

    def references(client: Client, **extra: str) -> set[str] | int:
        response = client.get("/merchant/settlements.csv", {**window, **extra})
        if response.status_code != 200:
            return response.status_code
        text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        return {row["order_reference"] for row in csv.DictReader(io.StringIO(text))}

    b, both = client_for(members["b"]), client_for(members["both"])
    assert references(b) == {"OTHER-CSV"}
    assert references(b, m="acme") == 404
    assert references(client_for(members["a"])) == {"ACME-CSV"}
    assert references(both, m="acme") == {"ACME-CSV"}
    assert references(both, m="other") == {"OTHER-CSV"}
    assert client_for(None).get("/merchant/settlements.csv", window).status_code == 302


def test_dashboard_forms_cannot_reach_another_merchant(
    local_chain: LocalChain, members: dict[str, User], merchant: Merchant
) -> None:
    merchant.webhook_url = "https://acme.example/hooks"
    merchant.save(update_fields=["webhook_url"])
    pr = create_request(merchant, order_reference="HOOKED")
    delivery = WebhookDeliveryFactory(merchant=merchant, payment_request=pr, delivered_at=timezone.now())
    b = client_for(members["b"])
    redeliver = f"/merchant/webhooks/{delivery.pk}/redeliver/"
    assert b.post(redeliver).status_code == 404
    assert b.post(redeliver, {"m": "acme"}).status_code == 404
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    posts = {
        "/merchant/settings/webhook/": {"webhook_url": "https://evil.example/", "webhook_secret": "x" * 32},
        "/merchant/settings/payments/": {"payment_tolerance_percent": "50", "expiry_minutes": "1440"},
        "/merchant/settings/api-key/": {"confirm": "on"},
    }
    acme_before = Merchant.objects.filter(pk=merchant.pk).values().get()
    for url, data in posts.items():
        assert b.post(url, {**data, "m": "acme"}).status_code == 404, url
    assert Merchant.objects.filter(pk=merchant.pk).values().get() == acme_before
    # A member of both must say which merchant a change is for.
    both = client_for(members["both"])
    assert both.post("/merchant/settings/payments/", posts["/merchant/settings/payments/"]).status_code == 400
    assert Merchant.objects.filter(pk=merchant.pk).values().get() == acme_before
    # And the owner's own redelivery works, returning only to a page of this site.
    a = client_for(members["a"])
    assert a.post(redeliver).status_code == 302
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/", "javascript:alert(1)"):
        response = a.post(redeliver, {"next": target})
        assert response.status_code == 302 and "evil" not in response["Location"], target
        assert not response["Location"].startswith("javascript")
    assert a.post(redeliver, {"next": "/merchant/payments/"})["Location"] == "/merchant/payments/"


# the ops console: who lacks the permission -------------------------------------------------------------------
def test_staff_or_inactive_users_without_the_ops_permission_cannot_act(
    exceptions: Exceptions, ops_user: User, four_eyes_at_5_hkd: None
) -> None:
    underpaid = exceptions.underpaid()
    overpaid = exceptions.overpaid()
    pending = ops_action_request(
        request_id=overpaid.pk, action="refund", note="back", user=ops_user, refund_address=PAYER
    )
    staff = make_user("stan")
    staff.is_staff = True
    staff.save()
    approve_only = make_user("apu", APPROVE)  # the approve permission without the console's
    inactive = make_user("ivy", CONSOLE, APPROVE)
    inactive.is_active = False
    inactive.save()
    posts = {
        reverse("stablepay:ops:act", args=[underpaid.pk]): {"action": "accept", "note": "x"},
        reverse("stablepay:ops:bulk"): {"requests": [str(underpaid.pk)], "action": "accept", "note": "x"},
        reverse("stablepay:ops:approve", args=[pending.pk]): {"note": "ok"},
        reverse("stablepay:ops:reject", args=[pending.pk]): {"note": "no"},
        reverse("stablepay:ops:refund-tx", args=[overpaid.pk]): {"tx_hash": TX},
    }
    for user in (staff, approve_only):
        client = client_for(user)
        for url, data in posts.items():
            assert client.post(url, data).status_code == 403, (user.username, url)
        assert client.get(reverse("stablepay:ops:queue")).status_code == 403
    client = client_for(inactive)  # force_login of an inactive user: the session is not honoured
    for url, data in posts.items():
        assert client.post(url, data).status_code in (302, 403), url
    expect(underpaid, "needs_review", "underpaid")
    assert OpsAction.objects.get(pk=pending.pk).state == ActionState.PENDING_APPROVAL


# four-eyes bypass attempts ---------------------------------------------------------------------------------
@pytest.fixture
def pending(exceptions: Exceptions, ops_user: User, four_eyes_at_5_hkd: None) -> OpsAction:
    overpaid = exceptions.overpaid()  # a 10.00 HKD excess: above the 5.00 limit
    op = ops_action_request(request_id=overpaid.pk, action="refund", note="back", user=ops_user, refund_address=PAYER)
    assert op.state == ActionState.PENDING_APPROVAL
    return op


def test_a_refund_is_approved_once_and_then_neither_again_nor_rejected(
    pending: OpsAction, ops_user2: User, ops_user: User
) -> None:
    third = make_user("tess", CONSOLE, APPROVE)
    approve = reverse("stablepay:ops:approve", args=[pending.pk])
    reject = reverse("stablepay:ops:reject", args=[pending.pk])
    assert client_for(ops_user2).post(approve, {"note": "ok"}).status_code == 302
    events = pending.payment_request.events.count()
    for user in (ops_user2, third, ops_user):
        for url in (approve, reject):
            response = client_for(user).post(url, {"note": "again"})
            assert response.status_code in (403, 409), (user.username, url, response.status_code)
    pending.refresh_from_db()
    assert pending.state == ActionState.DONE and pending.decided_by == ops_user2
    assert pending.payment_request.events.count() == events
    assert OpsAction.objects.filter(payment_request=pending.payment_request).count() == 1


def test_a_rejected_refund_cannot_be_approved_afterwards(pending: OpsAction, ops_user2: User) -> None:
    third = make_user("tess", CONSOLE, APPROVE)
    assert (
        client_for(ops_user2).post(reverse("stablepay:ops:reject", args=[pending.pk]), {"note": "no"}).status_code
        == 302
    )
    response = client_for(third).post(reverse("stablepay:ops:approve", args=[pending.pk]), {"note": "yes"})
    assert response.status_code == 409
    pending.refresh_from_db()
    assert pending.state == ActionState.REJECTED
    expect(pending.payment_request, "paid", "overpaid")


def test_a_changed_proposal_cannot_be_approved(
    pending: OpsAction, ops_user2: User, exceptions: Exceptions, local_chain: LocalChain
) -> None:
    """The exception the refund was proposed for changed (here: resolved behind the console's back)."""
    pr = pending.payment_request
    PaymentRequest.objects.filter(pk=pr.pk).update(exception="late")
    response = client_for(ops_user2).post(reverse("stablepay:ops:approve", args=[pending.pk]), {"note": "ok"})
    assert response.status_code == 409
    assert OpsAction.objects.get(pk=pending.pk).state == ActionState.PENDING_APPROVAL
    expect(pr, "paid", "late")


def test_forged_action_ids_and_request_ids(pending: OpsAction, ops_user2: User, exceptions: Exceptions) -> None:
    client = client_for(ops_user2)
    for forged in (pending.pk + 1000, 0, 2**31 - 1):
        for name in ("approve", "reject"):
            assert client.post(reverse(f"stablepay:ops:{name}", args=[forged]), {"note": "x"}).status_code == 404
    for path in ("/ops/actions/-1/approve/", "/ops/actions/1e3/approve/", "/ops/actions/99999999999999999999/approve/"):
        assert client.post(path, {"note": "x"}).status_code == 404, path
    for forged_request in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", "' OR 1=1 --"):
        for name in ("act", "refund-tx"):
            url = reverse(f"stablepay:ops:{name}", args=[forged_request])
            response = client.post(url, {"action": "accept", "note": "x", "tx_hash": TX})
            assert response.status_code == 404, (name, forged_request, response.status_code)
    # A done action's id is no pending proposal.
    underpaid = exceptions.underpaid()
    done = ops_action_request(request_id=underpaid.pk, action="accept", note="fine", user=ops_user2)
    assert done.state == ActionState.DONE
    other = make_user("tess", CONSOLE, APPROVE)
    assert client_for(other).post(reverse("stablepay:ops:approve", args=[done.pk]), {"note": "x"}).status_code == 409
    assert OpsAction.objects.get(pk=pending.pk).state == ActionState.PENDING_APPROVAL


def test_the_proposer_cannot_approve_by_a_second_session_or_by_bulk(pending: OpsAction, ops_user: User) -> None:
    approve = reverse("stablepay:ops:approve", args=[pending.pk])
    for _ in range(2):  # two sessions of the same user
        assert client_for(ops_user).post(approve, {"note": "it's me"}).status_code == 403
    bulk = client_for(ops_user).post(
        reverse("stablepay:ops:bulk"),
        {"requests": [str(pending.payment_request_id)], "action": "accept", "note": "sneak"},
    )
    assert bulk.status_code in (200, 302, 400)
    assert OpsAction.objects.get(pk=pending.pk).state == ActionState.PENDING_APPROVAL
    expect(pending.payment_request, "paid", "overpaid")


# the merchant's API within the four-eyes rule ------------------------------------------------------------
def resolve(client: APIClient, pr: PaymentRequest, action: str, **extra: str) -> tuple[int, dict[str, object]]:
    response = client.post(
        f"/api/v1/payment-requests/{pr.pk}/resolve/", {"action": action, "note": "api", **extra}, format="json"
    )
    return response.status_code, response.json()


def test_an_api_key_cannot_refund_above_the_four_eyes_limit(
    exceptions: Exceptions, api: APIClient, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()  # 10.00 HKD to refund
    before = snapshot(pr)
    status, body = resolve(api, pr, "refund", refund_tx_hash=TX)
    assert status == 403 and "four-eyes" in body["action"][0], body  # type: ignore[index]
    assert snapshot(pr) == before
    # Below the limit it is the merchant's own call, as before.
    small = exceptions.underpaid()  # 5.00 HKD received: not above 5.00
    status, body = resolve(api, small, "refund", refund_tx_hash=TX)
    assert status == 200 and body["status"] == "refunded", body


def test_an_api_key_refund_at_the_default_limit(exceptions: Exceptions, api: APIClient, settings: object) -> None:
    big = exceptions.overpaid(amount="1001.00", factor=2)  # 1001 HKD excess > HKD 1000.00 (the default)
    status, body = resolve(api, big, "refund")
    assert status == 403, body
    assert resolve(api, big, "accept")[0] == 200  # keeping the excess needs no second pair of eyes


def test_the_api_honours_a_pending_approval_and_the_offered_actions(
    pending: OpsAction, api: APIClient, exceptions: Exceptions
) -> None:
    pr = pending.payment_request
    for action in ("accept", "refund", "void"):
        status, body = resolve(api, pr, action)
        assert status == 409 and "awaiting" in str(body), (action, body)
    expect(pr, "paid", "overpaid")
    assert OpsAction.objects.get(pk=pending.pk).state == ActionState.PENDING_APPROVAL
    # void is not offered for an overpayment (the order is paid): it would have canceled a paid order.
    overpaid = exceptions.overpaid()
    status, body = resolve(api, overpaid, "void")
    assert status == 400 and "action" in body, body
    expect(overpaid, "paid", "overpaid")
    # A refund's tx hash is a tx hash; other actions take none.
    status, body = resolve(api, overpaid, "accept", refund_tx_hash=TX)
    assert status == 400 and "refund_tx_hash" in body
    status, body = resolve(api, overpaid, "refund", refund_tx_hash="0xnope")
    assert status == 400 and "refund_tx_hash" in body


def test_the_api_cannot_decide_a_compliance_hold(exceptions: Exceptions, api: APIClient) -> None:
    pr = exceptions.underpaid()
    PaymentRequest.objects.filter(pk=pr.pk).update(exception="held")  # the screening hook's flag
    for action in ("accept", "refund", "void"):
        status, body = resolve(api, pr, action)
        assert status == 403 and "compliance" in str(body), (action, body)
    expect(pr, "needs_review", "held")


def test_amounts_do_not_leak_through_the_four_eyes_message_to_another_merchant(
    exceptions: Exceptions, other_api: APIClient, four_eyes_at_5_hkd: None
) -> None:
    pr = exceptions.overpaid()
    status, body = resolve(other_api, pr, "refund")
    assert status == 404 and body == {"detail": "no such payment request"}
    assert Decimal(pr.amount) == Decimal("10.00")


def test_an_idempotency_key_is_the_merchants_own(local_chain: LocalChain, api: APIClient, other_api: APIClient) -> None:
    """Another merchant reusing a key (same body, or another) gets its own request, never A's, and no 409."""
    body = {"order_reference": "IDEM-1", "amount": "10.00", "currency": "HKD", "chain_id": 31337, "token": "HKDX"}
    mine = api.post("/api/v1/payment-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    theirs = other_api.post("/api/v1/payment-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    changed = other_api.post(
        "/api/v1/payment-requests/", {**body, "amount": "99.00"}, format="json", HTTP_IDEMPOTENCY_KEY="order-2"
    )
    assert mine.status_code == theirs.status_code == changed.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert mine.json()["pay_to"] != theirs.json()["pay_to"]
    assert PaymentRequest.objects.get(pk=theirs.json()["id"]).merchant.slug == "other"
    again = api.post("/api/v1/payment-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert again.json()["id"] == mine.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_carry_the_refund_out_once(pending: OpsAction, ops_user2: User) -> None:
    """Two second pairs of eyes press approve at the same moment, on separate connections: one wins."""
    from django.db import connection

    from stablepay.errors import StablepayError
    from stablepay.ops.services import ops_action_approve

    third = make_user("tess", CONSOLE, APPROVE)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user: User) -> None:
        try:
            barrier.wait(timeout=10)
            ops_action_approve(action_id=pending.pk, user=user, note=f"ok by {user.username}")
            outcomes.append("done")
        except StablepayError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(user,)) for user in (ops_user2, third)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["Conflict", "done"], outcomes
    pending.refresh_from_db()
    assert pending.state == ActionState.DONE
    pr = expect(pending.payment_request, "paid", "")
    assert pr.resolution == "refund"
    assert pr.events.filter(note__contains="approved by").count() == 1
