"""The ops console's pages: who may enter (a permission matrix over every page and action endpoint),
CSRF on every form, and what the pages show. Exceptions are made on a real anvil chain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from stablepay.models import ActionState, OpsAction, PaymentRequest
from stablepay.ops.services import ops_action_request
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import Exceptions, expect

pytestmark = pytest.mark.django_db

PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TX = "0x" + "ab" * 32


@dataclass
class Scene:
    underpaid: PaymentRequest  # for a decision
    overpaid: PaymentRequest  # with a refund awaiting approval, requested by olivia
    refunded: PaymentRequest  # refunded, its tx still to be recorded
    pending: OpsAction

    def gets(self) -> list[str]:
        return [
            reverse("stablepay:ops:queue"),
            reverse("stablepay:ops:queue") + "?exception=underpaid&q=UND",
            reverse("stablepay:ops:detail", args=[self.underpaid.pk]),
            reverse("stablepay:ops:detail", args=[self.overpaid.pk]),
            reverse("stablepay:ops:actions"),
            reverse("stablepay:ops:actions") + "?state=pending_approval",
            reverse("stablepay:ops:health"),
            reverse("stablepay:ops:screening"),
            reverse("stablepay:ops:screening") + "?outcome=hit&page=2",
        ]

    def posts(self) -> dict[str, tuple[str, dict[str, object]]]:
        return {
            "decide": (
                reverse("stablepay:ops:act", args=[self.underpaid.pk]),
                {"action": "accept", "note": "Accepting the shortfall"},
            ),
            "refund-tx": (reverse("stablepay:ops:refund-tx", args=[self.refunded.pk]), {"tx_hash": TX}),
            "bulk": (
                reverse("stablepay:ops:bulk"),
                {"requests": [str(self.underpaid.pk)], "action": "accept", "note": "bulk"},
            ),
            "approve": (reverse("stablepay:ops:approve", args=[self.pending.pk]), {"note": "approved"}),
            "reject": (reverse("stablepay:ops:reject", args=[self.pending.pk]), {"note": "rejected"}),
        }


@pytest.fixture
def scene(exceptions: Exceptions, ops_user: User, four_eyes_at_5_hkd: None) -> Scene:
    underpaid, refunded = exceptions.underpaid_many(2)
    overpaid = exceptions.overpaid()
    pending = ops_action_request(
        request_id=overpaid.pk, action="refund", note="twice", user=ops_user, refund_address=PAYER
    )
    assert pending.state == ActionState.PENDING_APPROVAL
    ops_action_request(request_id=refunded.pk, action="refund", note="back", user=ops_user, refund_address=PAYER)
    return Scene(underpaid=underpaid, overpaid=overpaid, refunded=refunded, pending=pending)


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        login_as(client, user)
    return client


# the permission matrix ---------------------------------------------------------------------------------------
def test_anonymous_users_are_sent_to_the_login_page(scene: Scene) -> None:
    client = client_for(None)
    for url in scene.gets():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('login')}?next={quote(url, safe='/')}", url
    for name, (url, data) in scene.posts().items():
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name
    expect(scene.underpaid, "needs_review", "underpaid")


@pytest.mark.parametrize("who", ["plain_user", "merchant_member"])
def test_users_without_the_ops_permission_get_403(scene: Scene, who: str, request: pytest.FixtureRequest) -> None:
    client = client_for(request.getfixturevalue(who))
    for url in scene.gets():
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"This page is for operations staff" in response.content
    for name, (url, data) in scene.posts().items():
        assert client.post(url, data).status_code == 403, name
    expect(scene.underpaid, "needs_review", "underpaid")
    assert OpsAction.objects.get(pk=scene.pending.pk).state == ActionState.PENDING_APPROVAL


def test_ops_users_enter_every_page_and_act(scene: Scene, ops_no_approve: User) -> None:
    client = client_for(ops_no_approve)
    for url in scene.gets():
        assert client.get(url).status_code == 200, url
    posts = scene.posts()
    url, data = posts["decide"]
    assert client.post(url, data).status_code == 302
    expect(scene.underpaid, "paid", "")
    url, data = posts["refund-tx"]
    assert client.post(url, data).status_code == 302
    scene.refunded.refresh_from_db()
    assert scene.refunded.refund_tx_hash == TX
    # Approving needs the approve permission on top of the console's.
    for name in ("approve", "reject"):
        url, data = posts[name]
        assert client.post(url, data).status_code == 403, name
    assert OpsAction.objects.get(pk=scene.pending.pk).state == ActionState.PENDING_APPROVAL


def test_ops_cannot_approve_their_own_refund(scene: Scene, ops_user: User) -> None:
    client = client_for(ops_user)
    for name in ("approve", "reject"):
        url, data = scene.posts()[name]
        response = client.post(url, data)
        assert response.status_code == 403, name
        assert b"another ops user must decide" in response.content
    assert OpsAction.objects.get(pk=scene.pending.pk).state == ActionState.PENDING_APPROVAL
    expect(scene.overpaid, "paid", "overpaid")
    page = client.get(reverse("stablepay:ops:detail", args=[scene.overpaid.pk])).content.decode()
    assert "You requested this decision" in page and 'id="approve-pending"' not in page
    assert "Decision awaiting approval: Refund" in page and re.search(r'data-action="refund"', page)


def test_a_second_ops_user_approves(scene: Scene, ops_user2: User) -> None:
    client = client_for(ops_user2)
    page = client.get(reverse("stablepay:ops:detail", args=[scene.overpaid.pk])).content.decode()
    assert re.search(r'id="approve-pending">\s*Approve and refund', page) and 'id="reject-pending"' in page
    url, data = scene.posts()["approve"]
    response = client.post(url, data)
    assert response.status_code == 302
    assert response["Location"] == reverse("stablepay:ops:detail", args=[scene.overpaid.pk])
    pending = OpsAction.objects.get(pk=scene.pending.pk)
    assert pending.state == ActionState.DONE and pending.decided_by == ops_user2
    expect(scene.overpaid, "paid", "")


def test_a_second_ops_user_rejects(scene: Scene, ops_user2: User) -> None:
    url, data = scene.posts()["reject"]
    assert client_for(ops_user2).post(url, data).status_code == 302
    assert OpsAction.objects.get(pk=scene.pending.pk).state == ActionState.REJECTED
    expect(scene.overpaid, "paid", "overpaid")


def test_bulk_through_the_page(exceptions: Exceptions, ops_user: User) -> None:
    requests = exceptions.underpaid_many(3)
    client = client_for(ops_user)
    response = client.post(
        reverse("stablepay:ops:bulk"),
        {"requests": [str(pr.pk) for pr in requests], "action": "accept", "note": "Batch accept", "query": ""},
    )
    assert response.status_code == 302 and response["Location"] == reverse("stablepay:ops:bulk-result")
    page = client.get(response["Location"]).content.decode()
    assert page.count('data-ok="1"') == 3 and "3 carried out, 0 refused" in page
    for pr in requests:
        expect(pr, "paid", "")
    # A blank note is refused for all of them, and nothing changes.
    more = exceptions.underpaid()
    response = client.post(reverse("stablepay:ops:bulk"), {"requests": [str(more.pk)], "action": "accept", "note": ""})
    assert response.status_code == 302 and response["Location"] == reverse("stablepay:ops:queue")
    expect(more, "needs_review", "underpaid")


# CSRF --------------------------------------------------------------------------------------------------
def test_every_form_needs_the_csrf_token(scene: Scene, ops_user2: User) -> None:
    client = Client(enforce_csrf_checks=True)
    login_as(client, ops_user2)
    for name, (url, data) in scene.posts().items():
        assert client.post(url, data).status_code == 403, name
    assert client.post(reverse("logout")).status_code == 403
    expect(scene.underpaid, "needs_review", "underpaid")
    assert OpsAction.objects.get(pk=scene.pending.pk).state == ActionState.PENDING_APPROVAL

    # With the token from the page's own form, the same request goes through.
    page = client.get(reverse("stablepay:ops:detail", args=[scene.underpaid.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    url, data = scene.posts()["decide"]
    assert client.post(url, {**data, "csrfmiddlewaretoken": token.group(1)}).status_code == 302
    expect(scene.underpaid, "paid", "")


# what the pages show ---------------------------------------------------------------------------------------
def test_queue_page_groups_and_searches(exceptions: Exceptions, ops_user: User) -> None:
    under = exceptions.underpaid()
    over, wrong = exceptions.overpaid(), exceptions.wrong_token()
    client = client_for(ops_user)
    page = client.get(reverse("stablepay:ops:queue")).content.decode()
    groups = re.findall(r'id="group-(\w+)"', page)
    assert groups == ["underpaid", "overpaid", "wrong_token"]
    assert under.order_reference in page and over.order_reference in page
    assert "\u22125.000000 HKDX" in page and "+10.000000 HKDX" in page  # short and excess, in the token
    assert "≈ HK$5.00" in page and "≈ HK$10.00" in page  # and in HKD
    assert "1.300000 USDC" in page and "≈ HK$10.14" in page  # a wrong token at 7.80 HKD per USD

    tx = wrong.transfers.get().tx_hash
    page = client.get(reverse("stablepay:ops:queue"), {"q": tx}).content.decode()
    assert wrong.order_reference in page and under.order_reference not in page
    page = client.get(reverse("stablepay:ops:queue"), {"exception": "overpaid"}).content.decode()
    assert over.order_reference in page and under.order_reference not in page
    # A resolved request is still found by search, under "other requests".
    ops_action_request(request_id=under.pk, action="accept", note="fine", user=ops_user)
    page = client.get(reverse("stablepay:ops:queue"), {"q": under.order_reference}).content.decode()
    assert "Other requests matching your search" in page and under.order_reference in page


def test_detail_page_shows_quote_transfers_and_timeline(
    exceptions: Exceptions, local_chain: LocalChain, ops_user: User
) -> None:
    chain = local_chain.chain
    chain.explorer_tx_url = "https://explorer.example/tx/{tx}"
    chain.save()
    pr = exceptions.underpaid()
    transfer = pr.transfers.get()
    client = client_for(ops_user)
    url = reverse("stablepay:ops:detail", args=[pr.pk])
    page = client.get(url).content.decode()
    assert pr.order_reference in page and pr.pay_to in page
    assert re.search(r"10\.000000 (<[^>]+>)?HKDX", page) and "rate 1 HKDX per HKD" in page
    assert f"#{transfer.block_number}" in page
    assert f"https://explorer.example/tx/{transfer.tx_hash}" in page
    assert re.search(r">\s*[3-9]/3\s*<", page)  # confirmations against the chain's 3
    assert "Short" in page and "5.000000 HKDX" in page
    assert "expired with less than the amount due" in page  # the watcher's timeline entry

    response = client.post(reverse("stablepay:ops:act", args=[pr.pk]), {"action": "accept", "note": ""})
    assert response.status_code == 400 and b"A note is required" in response.content
    response = client.post(
        reverse("stablepay:ops:act", args=[pr.pk]), {"action": "refund", "note": "back", "refund_address": "0x12"}
    )
    assert response.status_code == 400 and b"40 hex digits" in response.content
    response = client.post(
        reverse("stablepay:ops:act", args=[pr.pk]), {"action": "accept", "note": "Shopper asked us to accept"}
    )
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "ops:olivia" in page and "Shopper asked us to accept" in page
    assert 'id="ops-actions"' in page


def test_health_page_lists_chains_uncredited_transfers_and_fake_tokens(
    local_chain: LocalChain,
    merchant,
    ops_user: User,  # type: ignore[no-untyped-def]
) -> None:
    pr = create_request(merchant, order_reference="FAKE-1")
    local_chain.pay(pr.pay_to, 0)  # zero value, registered token: recorded, never credited
    local_chain.pay(pr.pay_to, 10_000_000, symbol="FAKE")  # a contract calling itself HKDX: never recorded
    local_chain.settle()
    expect(pr, "open", "")
    client = client_for(ops_user)
    page = client.get(reverse("stablepay:ops:health")).content.decode()
    head = local_chain.anvil.w3.eth.block_number
    assert "Local" in page and f"#{head}" in page and 'data-verdict="ok"' in page
    assert 'id="uncredited"' in page and "Zero value" in page and "FAKE-1" in page
    assert "127.0.0.1:" in page and local_chain.anvil.url not in page.replace("http://127.0.0.1", "")

    page = client.get(reverse("stablepay:ops:health"), {"probe": 31337, "blocks": 200}).content.decode()
    assert 'id="lookalike-table"' in page, page[page.find("lookalikes") :][:2000]
    assert "Same symbol as a registered token, another contract" in page
    assert local_chain.fake_hkdx in page and "10.000000 HKDX" in page and "FAKE-1" in page


def test_health_page_shows_the_last_error(local_chain: LocalChain, ops_user: User) -> None:
    from stablepay.chain.reader import ChainError
    from stablepay.ingest import watcher

    local_chain.scan()
    watcher.record_error(local_chain.chain, ChainError("http://127.0.0.1:1: ConnectionError"))
    page = client_for(ops_user).get(reverse("stablepay:ops:health")).content.decode()
    assert 'data-verdict="error"' in page and "ConnectionError" in page and "Failing" in page


# the admin ---------------------------------------------------------------------------------------------
def test_ops_actions_are_read_only_in_the_admin(scene: Scene) -> None:
    admin_user = User.objects.create_superuser("root", password="x-root-password-1")
    client = client_for(admin_user)
    assert client.get(reverse("admin:stablepay_opsaction_changelist")).status_code == 200
    change = reverse("admin:stablepay_opsaction_change", args=[scene.pending.pk])
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"note": "rewritten", "state": "done"}).status_code == 403
    assert client.get(reverse("admin:stablepay_opsaction_add")).status_code == 403
    assert (
        client.post(reverse("admin:stablepay_opsaction_delete", args=[scene.pending.pk]), {"post": "yes"}).status_code
        == 403
    )
    pending = OpsAction.objects.get(pk=scene.pending.pk)
    assert pending.note == "twice" and pending.state == ActionState.PENDING_APPROVAL
    detail = client.get(reverse("admin:stablepay_paymentrequest_change", args=[scene.overpaid.pk]))
    assert b"Open in the ops console" in detail.content and b"twice" in detail.content


def test_admin_actions_call_the_services(exceptions: Exceptions, ops_user: User) -> None:
    a, b = exceptions.underpaid_many(2)
    ops_user.is_staff = True
    ops_user.save()
    ops_user.user_permissions.add(Permission.objects.get(codename="view_paymentrequest"))
    client = client_for(User.objects.get(pk=ops_user.pk))
    url = reverse("admin:stablepay_paymentrequest_changelist")
    ids = [str(a.pk), str(b.pk)]
    page = client.post(url, {"action": "accept_exceptions", "_selected_action": ids})
    assert page.status_code == 200 and b"Note (required)" in page.content
    expect(a, "needs_review", "underpaid")
    response = client.post(
        url, {"action": "accept_exceptions", "_selected_action": ids, "apply": "1", "note": "Accepted from the admin"}
    )
    assert response.status_code == 302
    for pr in (a, b):
        expect(pr, "paid", "")
        assert pr.events.order_by("-id").first().actor == "ops:olivia"  # type: ignore[union-attr]


def test_a_decision_while_a_refund_awaits_approval_is_refused_on_the_page(scene: Scene, ops_user2: User) -> None:
    response = client_for(ops_user2).post(
        reverse("stablepay:ops:act", args=[scene.overpaid.pk]), {"action": "accept", "note": "keep it"}
    )
    assert response.status_code == 409
    assert b'id="page-error"' in response.content and b"awaiting approval" in response.content
    expect(scene.overpaid, "paid", "overpaid")
