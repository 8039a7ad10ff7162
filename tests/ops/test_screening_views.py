"""Payer screening in the ops console: the screening page (who may open it, which transfers it lists, its
counts and configuration), the outage banner on the queue, the held request's detail page, and four-eyes
on every decision about a hold, through the pages.

Every transfer is real: paid on anvil and recorded by the watcher, which screens its payer with the
configured backend (tests/support/ops.py ScreenedPayments: a deny-listed payer, a backend that is down).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from stablepay.compliance import screening
from stablepay.models import ActionState, OpsAction, PaymentRequest, Transfer
from stablepay.ops import screening_selectors, views
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain
from tests.support.ops import FLAGGED, ScreenedPayments, expect, payer

pytestmark = pytest.mark.django_db


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        login_as(client, user)
    return client


def page_of(client: Client, url: str, **params: Any) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def outcome_of(pr: PaymentRequest) -> str:
    return str(pr.transfers.get().screening)


@dataclass
class Scene:
    clear: PaymentRequest
    hit: PaymentRequest
    failed_open: PaymentRequest
    failed_closed: PaymentRequest


@pytest.fixture
def scene(screened: ScreenedPayments, local_chain: LocalChain) -> Scene:
    chain = local_chain.chain
    chain.explorer_tx_url = "https://explorer.example/tx/{tx}"
    chain.save()
    made = Scene(
        clear=screened.clear(),
        hit=screened.hit(),
        failed_open=screened.failed_open(),
        failed_closed=screened.failed_closed(),
    )
    outcomes = [outcome_of(pr) for pr in (made.clear, made.hit, made.failed_open, made.failed_closed)]
    assert outcomes == ["clear", "hit", "failed_open", "failed_closed"]
    return made


SCREENING = "/ops/screening/"


# who may open the page ---------------------------------------------------------------------------------------
def test_the_screening_page_is_for_ops_only(
    db: None, plain_user: User, merchant_member: User, ops_no_approve: User
) -> None:
    assert reverse("stablepay:ops:screening") == SCREENING
    response = client_for(None).get(SCREENING)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={quote(SCREENING, safe='/')}"
    for user in (plain_user, merchant_member):
        response = client_for(user).get(SCREENING)
        assert response.status_code == 403 and b"This page is for operations staff" in response.content
    page = page_of(client_for(ops_no_approve), SCREENING)  # the console permission is enough
    assert "Payer screening" in page and "Every payer screened so far was cleared." in page
    assert f'href="{SCREENING}" aria-current="page"' in page  # its entry in the console's navigation


# what it lists -----------------------------------------------------------------------------------------------
def rows(page: str) -> list[tuple[str, str]]:
    """(outcome, tx hash) of each row of the list, in page order."""
    return re.findall(r'<tr data-outcome="(\w+)" data-tx="(0x[0-9a-f]+)">', page)


def tx_of(pr: PaymentRequest) -> str:
    return str(pr.transfers.get().tx_hash)


def test_the_page_lists_the_payments_screening_did_not_clear_newest_first(scene: Scene, ops_user: User) -> None:
    client = client_for(ops_user)
    page = page_of(client, SCREENING)
    assert rows(page) == [
        ("failed_closed", tx_of(scene.failed_closed)),
        ("failed_open", tx_of(scene.failed_open)),
        ("hit", tx_of(scene.hit)),
    ]  # the clear one is not listed
    assert tx_of(scene.clear) not in page

    table = page[page.index('id="screening-table"') :]
    hit = table[table.index(f'data-tx="{tx_of(scene.hit)}"') :].split("</tr>")[0]
    assert "Flagged" in hit and "screening list: denylist, OFAC SDN list 2026-11-20" in hit
    assert payer(FLAGGED).lower() in hit.lower()
    assert "10.000000 HKDX" in hit and "≈ HK$10.00" in hit  # exact token amount and its HKD-equivalent
    assert f"https://explorer.example/tx/{tx_of(scene.hit)}" in hit and "Local" in hit
    assert reverse("stablepay:ops:detail", args=[scene.hit.pk]) in hit and scene.hit.order_reference in hit
    assert "Compliance hold" in hit

    closed = table[table.index(f'data-tx="{tx_of(scene.failed_closed)}"') :].split("</tr>")[0]
    assert "No answer: held" in closed and "100.000000 HKDX" in closed and "≈ HK$100.00" in closed
    assert "the screening service did not answer" in closed and "not below HK$50.00: held" in closed
    assert "last tried" in closed  # still unanswered: retried
    opened = table[table.index(f'data-tx="{tx_of(scene.failed_open)}"') :].split("</tr>")[0]
    assert "No answer: passed" in opened and "below HK$50.00: passed" in opened and "Paid" in opened

    # One outcome at a time; an unknown one shows them all.
    assert rows(page_of(client, SCREENING, outcome="hit")) == [("hit", tx_of(scene.hit))]
    assert [o for o, _ in rows(page_of(client, SCREENING, outcome="failed_open"))] == ["failed_open"]
    assert len(rows(page_of(client, SCREENING, outcome="clear"))) == 3


def test_the_page_shows_the_configuration_and_the_counts(scene: Scene, ops_user: User) -> None:
    page = page_of(client_for(ops_user), SCREENING)  # the backend is down (HttpBackend) since failed_closed
    backend = page[page.index('id="screening-backend"') :].split("</dd>")[0]
    assert "screening service" in backend and "stablepay.compliance.screening.HttpBackend" in backend
    assert "127.0.0.1:9" in page  # the service's host only, never its credentials, path or query
    assert "ops:pw" not in page and "/v1/addresses" not in page and "k3y" not in page
    assert re.search(r'id="fail-open-limit"><strong>HK\$50\.00</strong>', page)
    assert "1 denied, 0 allowed" in page

    counts = dict(re.findall(r'<tr data-outcome="(\w+)">.*?data-window="24h">(\d+)</td>', page, re.S))
    assert counts == {"clear": "1", "hit": "1", "failed_closed": "1", "failed_open": "1"}

    # The windows, from the selector: recorded now, they are in the last 7 days two days on, in neither after 8.
    later = {c.outcome: (c.last_24h, c.last_7d) for c in screening_selectors.outcome_counts()}
    assert later == {"clear": (1, 1), "hit": (1, 1), "failed_closed": (1, 1), "failed_open": (1, 1)}
    later = {
        c.outcome: (c.last_24h, c.last_7d)
        for c in screening_selectors.outcome_counts(now=timezone.now() + timedelta(days=2))
    }
    assert later == {"clear": (0, 1), "hit": (0, 1), "failed_closed": (0, 1), "failed_open": (0, 1)}
    later = {
        c.outcome: (c.last_24h, c.last_7d)
        for c in screening_selectors.outcome_counts(now=timezone.now() + timedelta(days=8))
    }
    assert later == {"clear": (0, 0), "hit": (0, 0), "failed_closed": (0, 0), "failed_open": (0, 0)}


def test_the_list_is_paginated(scene: Scene, ops_user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "SCREENING_PAGE_ROWS", 2)
    client = client_for(ops_user)
    first = page_of(client, SCREENING)
    assert [o for o, _ in rows(first)] == ["failed_closed", "failed_open"] and "Page 1 of 2" in first
    second = page_of(client, SCREENING, page=2)
    assert rows(second) == [("hit", tx_of(scene.hit))] and "Page 2 of 2" in second


# the banner -----------------------------------------------------------------------------------------------
def banner(client: Client, url: str = "/ops/") -> str:
    page = page_of(client, url)
    found = re.search(r'<section class="notice notice-warning screening-alert".*?</section>', page, re.S)
    return found.group(0) if found else ""


def test_the_queue_warns_while_screening_has_no_answer(screened: ScreenedPayments, ops_user: User) -> None:
    client = client_for(ops_user)
    screened.clear()
    assert banner(client) == ""
    opened = screened.failed_open()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", banner(client)))
    assert "Screening backend unavailable" in text
    assert "1 payment passed unscreened (below HK$50.00), 0 held in the last hour" in text
    assert f'href="{SCREENING}"' in banner(client)
    closed = screened.failed_closed()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", banner(client)))
    assert "1 payment passed unscreened (below HK$50.00), 1 held" in text
    assert banner(client, reverse("stablepay:ops:detail", args=[opened.pk]))  # on every ops page

    # Tried last more than an hour ago: not "in the last hour" (the page still lists them).
    unanswered = Transfer.objects.filter(screening__in=screening.UNANSWERED)
    assert unanswered.count() == 2
    unanswered.update(screened_at=timezone.now() - timedelta(minutes=61))
    assert banner(client) == ""
    assert len(rows(page_of(client, SCREENING))) == 2

    # The re-screen sweep tries again, the backend still down: the banner is back.
    assert screening.rescreen_due() == 0
    assert "1 payment passed unscreened" in re.sub(r"<[^>]+>", "", banner(client))

    # The backend answers again: both payers are clear, the banner goes.
    screened.backend(down=False)
    assert screening.rescreen_due(now=timezone.now() + timedelta(minutes=2)) == 2
    assert outcome_of(opened) == "clear" and outcome_of(closed) == "clear"
    assert "re-screened" in closed.transfers.get().screening_detail
    assert banner(client) == ""
    assert rows(page_of(client, SCREENING)) == []


# the held request's page ----------------------------------------------------------------------------------
def test_the_detail_page_says_why_a_request_is_held(scene: Scene, ops_user: User) -> None:
    client = client_for(ops_user)
    page = page_of(client, reverse("stablepay:ops:detail", args=[scene.hit.pk]))
    hold = page[page.index('id="screening-hold"') :].split("</section>")[0]
    assert "Payer flagged by screening:" in hold and "screening list: denylist, OFAC SDN list 2026-11-20" in hold
    assert payer(FLAGGED).lower() in hold.lower()
    cell = page[page.index('class="screening-cell"') :].split("</td>")[0]
    assert 'data-screening="hit"' in cell and "Flagged" in cell and "OFAC SDN list" in cell
    assert 'id="held-four-eyes"' in page and "Request approval" in page

    page = page_of(client, reverse("stablepay:ops:detail", args=[scene.failed_closed.pk]))
    hold = page[page.index('id="screening-hold"') :].split("</section>")[0]
    assert "Screening backend unavailable, failed closed:" in hold and "did not answer" in hold
    assert "No answer: held" in page

    for pr, label in ((scene.clear, "Clear"), (scene.failed_open, "No answer: passed")):
        page = page_of(client, reverse("stablepay:ops:detail", args=[pr.pk]))
        assert 'id="screening-hold"' not in page and label in page and "Record decision" not in page


# four-eyes on a hold, through the pages ---------------------------------------------------------------------
def test_accepting_a_hold_waits_for_a_second_ops_user(
    screened: ScreenedPayments, ops_user: User, ops_user2: User, ops_no_approve: User
) -> None:
    pr = screened.hit()
    url = reverse("stablepay:ops:detail", args=[pr.pk])
    olivia = client_for(ops_user)
    response = olivia.post(
        reverse("stablepay:ops:act", args=[pr.pk]), {"action": "accept", "note": "Listed in error"}, follow=True
    )
    assert response.redirect_chain == [(url, 302)]
    page = response.content.decode()
    assert "Decision requested: Accept." in page and "awaits a second ops user&#x27;s approval" in page
    op = OpsAction.objects.get(payment_request=pr)
    assert op.state == ActionState.PENDING_APPROVAL and op.action == "accept" and op.exception == "held"
    expect(pr, "needs_review", "held")
    pending = page[page.index('id="pending-approval"') :].split("</section>")[0]
    assert "Decision awaiting approval" in pending and 'data-action="accept"' in pending
    assert "Every decision on a compliance hold needs a second ops user." in pending
    assert "You requested this decision" in pending and 'id="approve-pending"' not in page
    assert "Decision awaiting approval: Accept" in page  # the header's badge
    queue = page_of(olivia, "/ops/")
    assert "Awaiting approval: Accept" in queue
    approvals = page_of(olivia, "/ops/actions/", state="pending_approval")
    assert "Decisions awaiting approval" in approvals and pr.order_reference in approvals

    # The requester cannot approve it, nor can an ops user without the approver permission.
    response = olivia.post(reverse("stablepay:ops:approve", args=[op.pk]), {"note": "me again"})
    assert response.status_code == 403 and b"another ops user must decide" in response.content
    assert (
        client_for(ops_no_approve).post(reverse("stablepay:ops:approve", args=[op.pk]), {"note": "x"}).status_code
        == 403
    )
    expect(pr, "needs_review", "held")

    oscar = client_for(ops_user2)
    page = page_of(oscar, url)
    assert re.search(r'id="approve-pending">\s*Approve and accept', page) and 'id="reject-pending"' in page
    response = oscar.post(reverse("stablepay:ops:approve", args=[op.pk]), {"note": "Checked the listing"}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert "Approved and carried out: Accept." in response.content.decode()
    op.refresh_from_db()
    assert op.state == ActionState.DONE and op.decided_by == ops_user2
    pr = expect(pr, "paid", "")
    assert pr.resolution == "accept"


def test_voiding_a_hold_is_approved_or_rejected_by_a_second_ops_user(
    screened: ScreenedPayments, ops_user: User, ops_user2: User
) -> None:
    pr = screened.failed_closed()
    olivia, oscar = client_for(ops_user), client_for(ops_user2)
    act = reverse("stablepay:ops:act", args=[pr.pk])
    assert olivia.post(act, {"action": "void", "note": "Cannot verify the payer"}).status_code == 302
    first = OpsAction.objects.get(payment_request=pr)
    assert first.state == ActionState.PENDING_APPROVAL
    page = page_of(oscar, reverse("stablepay:ops:detail", args=[pr.pk]))
    assert re.search(r'id="approve-pending">\s*Approve and void', page)
    assert "Cancel the order; nothing is refunded here." in page
    # While it waits, no other decision is taken.
    response = oscar.post(act, {"action": "accept", "note": "keep it"})
    assert response.status_code == 409 and b"awaiting approval" in response.content

    response = oscar.post(
        reverse("stablepay:ops:reject", args=[first.pk]), {"note": "Wait for the re-screen"}, follow=True
    )
    assert "Rejected (Void): nothing was carried out." in response.content.decode()
    first.refresh_from_db()
    assert first.state == ActionState.REJECTED
    expect(pr, "needs_review", "held")

    assert olivia.post(act, {"action": "void", "note": "Still unverified"}).status_code == 302
    second = OpsAction.objects.get(payment_request=pr, state=ActionState.PENDING_APPROVAL)
    response = oscar.post(reverse("stablepay:ops:approve", args=[second.pk]), {"note": "Agreed"}, follow=True)
    assert "Approved and carried out: Void." in response.content.decode()
    pr = expect(pr, "canceled", "")
    assert pr.resolution == "void"


def test_bulk_accept_of_holds_reports_them_as_awaiting_approval(screened: ScreenedPayments, ops_user: User) -> None:
    held = screened.hit()
    client = client_for(ops_user)
    response = client.post(
        reverse("stablepay:ops:bulk"),
        {"requests": [str(held.pk)], "action": "accept", "note": "Batch", "query": ""},
        follow=True,
    )
    page = response.content.decode()
    assert "0 carried out, 0 refused." in page and "1 awaits a second ops user" in page
    assert 'badge-pending_approval">Awaiting approval' in page
    expect(held, "needs_review", "held")


def test_the_screening_pages_speak_traditional_chinese(scene: Scene, ops_user: User) -> None:
    # Hong Kong usage: full-width colons, commas and brackets.
    held, passed = "無回應：已凍結", "無回應：已放行"  # noqa: RUF001
    banner_text = "過去一小時內，1 筆付款未經篩查而放行（低於 HK$50.00），1 筆已凍結。"  # noqa: RUF001
    four_eyes = "合規凍結：無論你選擇哪項決定"  # noqa: RUF001
    requested = "已提出決定：作廢。"  # noqa: RUF001
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-HK")
    login_as(client, ops_user)
    page = page_of(client, SCREENING)
    for text in ("付款人篩查", "已標記", held, passed, "通過", "過去 24 小時", "拒絕名單 1 個"):
        assert text in page, text
    for text in ("Payer screening", "No answer: held", "Last 24 hours", "Configuration"):
        assert text not in page, text
    queue = page_of(client, "/ops/")
    assert "篩查服務無法使用" in queue and banner_text in queue
    detail = page_of(client, reverse("stablepay:ops:detail", args=[scene.hit.pk]))
    for text in ("此付款要求被凍結的原因", "付款人被篩查標記", "提交審批", four_eyes):
        assert text in detail, text
    assert "Why this request is held" not in detail and "Request approval" not in detail
    response = client.post(
        reverse("stablepay:ops:act", args=[scene.hit.pk]), {"action": "void", "note": "無法核實"}, follow=True
    )
    page = response.content.decode()
    assert requested in page and "決定等待審批" in page and "審批並作廢" not in page


def test_the_admin_action_on_a_hold_says_it_awaits_approval(screened: ScreenedPayments, ops_user: User) -> None:
    held = screened.hit()
    ops_user.is_staff = True
    ops_user.save()
    ops_user.user_permissions.add(Permission.objects.get(codename="view_paymentrequest"))
    client = client_for(User.objects.get(pk=ops_user.pk))
    response = client.post(
        reverse("admin:stablepay_paymentrequest_changelist"),
        {"action": "accept_exceptions", "_selected_action": [str(held.pk)], "apply": "1", "note": "From the admin"},
        follow=True,
    )
    assert f"{held.order_reference}: accept requested, awaiting a second ops user&#x27;s approval" in (
        response.content.decode()
    )
    assert OpsAction.objects.get(payment_request=held).state == ActionState.PENDING_APPROVAL
    expect(held, "needs_review", "held")
