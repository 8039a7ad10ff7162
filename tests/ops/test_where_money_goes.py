"""Issue 16 part 3: where money goes needs two people.

The findings, each performed as the attacker would, and now doing no harm:
- one staff user (here a superuser, the strongest case) replaced a merchant's xpub in the admin and,
  seconds later, new payment requests paid to the attacker's wallet, nobody told. Now the admin only
  proposes: the xpub is unchanged, new requests still derive from the merchant's wallet, the merchant's
  users are emailed and its webhook receiver (a real local HTTP server checking the signature) is told.
  The proposer cannot approve it (service, page, database constraint); a second person holding
  `stablepay.approve_change` can, and only then do new requests derive from the new xpub.
- the same user set an FX rate to 0.000001 so that a HK$3,900 refund looked tiny and was decided without a
  second approval. Now an FX change through the admin is only proposed (quotes are unchanged), and a
  refund is valued at the FX table stored on its request: even with the live table bent directly in the
  database, the refund still needs four eyes.
- the tolerance and the four-eyes limits go the same way; a stale proposal (the value changed meanwhile) is
  refused; users without the permissions get 403.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from stablepay.governance import change_control
from stablepay.models import (
    ActionState,
    ChangeProposal,
    ChangeState,
    FxRate,
    LedgerAppendOnlyError,
    Merchant,
    PaymentRequest,
    WebhookDelivery,
)
from stablepay.ops import selectors
from stablepay.ops.services import NotAllowed, merchant_resolve, ops_action_request
from stablepay.registry import refdata
from stablepay.webhooks import delivery as webhooks
from tests.support.auth import login_as
from tests.support.local_chain import MERCHANT_MNEMONIC, LocalChain, account_xpub, create_request, mnemonic_address
from tests.support.ops import CONSOLE, expect, make_user
from tests.support.webhook_receiver import VerifyingReceiver

ATTACKER_MNEMONIC = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"
SECRET = "whsec-change-control-0123456789"
APPROVE_CHANGE = "stablepay.approve_change"


# people and the merchant's receiver ------------------------------------------------------------------
@pytest.fixture
def receiver(merchant: Merchant) -> Iterator[VerifyingReceiver]:
    live = VerifyingReceiver([SECRET])
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url=live.url, webhook_secret=SECRET)
    yield live
    live.close()


@pytest.fixture
def member(merchant: Merchant) -> User:
    """Mia, the merchant's own user, who must hear of every change."""
    user = make_user("mia", merchant=merchant)
    User.objects.filter(pk=user.pk).update(email="mia@acme.example")
    return User.objects.get(pk=user.pk)


@pytest.fixture
def mallory(db: None) -> User:
    """A superuser: every permission, staff; still only one pair of eyes."""
    return User.objects.create_superuser("mallory", "mallory@ops.example", "correct-horse-battery-staple-42")


@pytest.fixture
def treasurer(db: None) -> User:
    """Tara: may approve changes to where money goes (and use the console), may not propose them."""
    return make_user("tara", APPROVE_CHANGE, CONSOLE)


@pytest.fixture
def admin_user(db: None) -> User:
    """Adam: staff who may change merchants and FX rates in the admin (propose), not approve."""
    user = make_user(
        "adam",
        "stablepay.change_merchant",
        "stablepay.view_merchant",
        "stablepay.change_fxrate",
        "stablepay.add_fxrate",
    )
    User.objects.filter(pk=user.pk).update(is_staff=True)
    return User.objects.get(pk=user.pk)


def client_for(user: User) -> Client:
    client = Client()
    login_as(client, user)
    return client


def merchant_form(merchant: Merchant, **changes: Any) -> dict[str, Any]:
    """The admin's merchant change form as a browser posts it, with `changes` typed in."""
    merchant.refresh_from_db()
    data = {
        "slug": merchant.slug,
        "name": merchant.name,
        "xpub": merchant.xpub,
        "payment_tolerance_percent": str(merchant.payment_tolerance_percent),
        "expiry_minutes": str(merchant.expiry_minutes),
        "webhook_url": merchant.webhook_url,
        "accepted_licence_statuses": json.dumps(merchant.accepted_licence_statuses),
        "accepted_token_currencies": json.dumps(merchant.accepted_token_currencies),
        "members": [str(pk) for pk in merchant.members.values_list("pk", flat=True)],
        "refund_four_eyes_above_hkd": "",
        "accept_four_eyes_above_hkd": "",
        "change_note": "",
        "_save": "Save",
    }
    return {**data, **changes}


def deliveries(receiver: VerifyingReceiver, event_type: str) -> list[dict[str, Any]]:
    webhooks.deliver_due(now=timezone.now() + timedelta(seconds=1))
    bodies = [json.loads(d.body) for d in receiver.seen if d.accepted]
    return [b for b in bodies if b["type"] == event_type]


def next_index(merchant: Merchant) -> int:
    return Merchant.objects.get(pk=merchant.pk).next_address_index


# the xpub ------------------------------------------------------------------------------------------------
def test_an_xpub_replaced_in_the_admin_is_only_proposed_and_the_proposer_cannot_approve_it(
    merchant: Merchant,
    member: User,
    mallory: User,
    treasurer: User,
    receiver: VerifyingReceiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    original, attacker = merchant.xpub, account_xpub(ATTACKER_MNEMONIC)
    admin_page = reverse("admin:stablepay_merchant_change", args=[merchant.pk])
    mallory_client = client_for(mallory)

    # Without a note the admin refuses the change outright.
    refused = mallory_client.post(admin_page, merchant_form(merchant, xpub=attacker))
    assert refused.status_code == 200 and "needs a note" in refused.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        saved = mallory_client.post(
            admin_page, merchant_form(merchant, xpub=attacker, change_note="new cold wallet"), follow=True
        )
    assert saved.status_code == 200
    assert "Not applied yet" in saved.content.decode()

    # Nothing changed: the next request still pays the merchant's own wallet.
    merchant.refresh_from_db()
    assert merchant.xpub == original
    index = next_index(merchant)
    pr = create_request(merchant, order_reference="AFTER-ATTACK")
    assert pr.pay_to == mnemonic_address(MERCHANT_MNEMONIC, index)
    assert pr.pay_to != mnemonic_address(ATTACKER_MNEMONIC, index)

    [proposal] = ChangeProposal.objects.filter(merchant=merchant, state=ChangeState.PENDING)
    assert proposal.state == ChangeState.PENDING and proposal.proposed_by == mallory
    assert proposal.changes == {"xpub": {"from": original, "to": attacker}}

    # The merchant's user was told, with the new xpub's first address to compare with the wallet.
    [email] = mail.outbox
    assert email.to == ["mia@acme.example"] and "proposed" in email.subject
    assert mnemonic_address(ATTACKER_MNEMONIC, 0) in email.body and "new cold wallet" in email.body
    # ... and so was its webhook endpoint, signed like every event.
    [event] = deliveries(receiver, "merchant.change_proposed")
    assert event["data"]["id"] == proposal.pk and event["data"]["merchant"] == "acme"
    assert event["data"]["changes"]["xpub"] == {"from": original, "to": attacker}
    assert event["data"]["proposed_by"] == "ops:mallory" and event["data"]["state"] == "pending"

    # The proposer cannot approve it: not through the service, the page, or the database.
    with pytest.raises(change_control.ChangeNotAllowed):
        change_control.change_approve(proposal_id=proposal.pk, user=mallory, note="looks fine")
    page = mallory_client.post(reverse("stablepay:ops:change-approve", args=[proposal.pk]), {"note": "fine"})
    assert page.status_code == 403 and "four-eyes" in page.content.decode()
    with pytest.raises(IntegrityError), transaction.atomic():
        ChangeProposal.objects.filter(pk=proposal.pk).update(
            state=ChangeState.APPLIED, decided_by=mallory, decided_at=timezone.now()
        )
    merchant.refresh_from_db()
    assert merchant.xpub == original and ChangeProposal.objects.get(pk=proposal.pk).state == ChangeState.PENDING

    # The changes page shows the difference with both first addresses.
    tara = client_for(treasurer)
    listing = tara.get(reverse("stablepay:ops:changes")).content.decode()
    assert f'id="change-{proposal.pk}"' in listing
    assert mnemonic_address(MERCHANT_MNEMONIC, 0) in listing and mnemonic_address(ATTACKER_MNEMONIC, 0) in listing

    # A second person approves: now, and only now, new requests derive from the new xpub.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        approved = tara.post(
            reverse("stablepay:ops:change-approve", args=[proposal.pk]), {"note": "called the merchant back"}
        )
    assert approved.status_code == 302
    merchant.refresh_from_db()
    assert merchant.xpub == attacker
    index = next_index(merchant)
    assert create_request(merchant, order_reference="AFTER-APPROVAL").pay_to == mnemonic_address(
        ATTACKER_MNEMONIC, index
    )
    proposal.refresh_from_db()
    assert (proposal.state, proposal.decided_by) == (ChangeState.APPLIED, treasurer)
    [email] = mail.outbox
    assert email.to == ["mia@acme.example"] and "applied" in email.subject
    [event] = deliveries(receiver, "merchant.change_applied")
    assert event["data"]["decided_by"] == "ops:tara" and event["data"]["state"] == "applied"
    # The record never changes after the decision, and is never deleted.
    with pytest.raises(IntegrityError), transaction.atomic():
        ChangeProposal.objects.filter(pk=proposal.pk).update(state=ChangeState.REJECTED)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChangeProposal.objects.filter(pk=proposal.pk).update(note="nothing to see")
    with pytest.raises(LedgerAppendOnlyError):
        proposal.delete()


def test_non_guarded_fields_still_save_directly(merchant: Merchant, admin_user: User) -> None:
    page = reverse("admin:stablepay_merchant_change", args=[merchant.pk])
    response = client_for(admin_user).post(page, merchant_form(merchant, name="Acme Hong Kong", expiry_minutes="30"))
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.name, merchant.expiry_minutes) == ("Acme Hong Kong", 30)
    assert not ChangeProposal.objects.filter(merchant=merchant).exclude(actor="setup").exists()


def test_a_stale_proposal_is_refused(merchant: Merchant, admin_user: User, treasurer: User, member: User) -> None:
    proposal = change_control.propose_merchant_change(
        merchant_id=merchant.pk, changes={"payment_tolerance_percent": "2"}, note="seasonal", user=admin_user
    )
    assert proposal.changes == {"payment_tolerance_percent": {"from": "0.5", "to": "2"}}
    # Meanwhile the deployer's setup file sets the tolerance (applied at once, and on the record).
    change_control.change_record_applied(
        merchant=merchant,
        changes=change_control.merchant_changes(merchant, {"payment_tolerance_percent": Decimal("1")}),
        note="setup file",
        actor="setup",
    )
    Merchant.objects.filter(pk=merchant.pk).update(payment_tolerance_percent=Decimal("1"))
    with pytest.raises(change_control.Conflict, match="stale"):
        change_control.change_approve(proposal_id=proposal.pk, user=treasurer, note="ok")
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("1")
    proposal.refresh_from_db()
    assert proposal.state == ChangeState.REJECTED and proposal.decision_note.startswith("stale")


def test_tolerance_and_limits_through_the_admin_are_only_proposed(
    merchant: Merchant, admin_user: User, treasurer: User
) -> None:
    page = reverse("admin:stablepay_merchant_change", args=[merchant.pk])
    form = merchant_form(
        merchant,
        payment_tolerance_percent="50",
        refund_four_eyes_above_hkd="1000000",
        accept_four_eyes_above_hkd="1000000",
        change_note="loosen everything",
    )
    assert client_for(admin_user).post(page, form).status_code == 302
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("0.5")
    assert merchant.refund_four_eyes_above_hkd is None and merchant.accept_four_eyes_above_hkd is None
    [proposal] = ChangeProposal.objects.filter(merchant=merchant, state=ChangeState.PENDING)
    assert set(proposal.changes) == {
        "payment_tolerance_percent",
        "refund_four_eyes_above_hkd",
        "accept_four_eyes_above_hkd",
    }
    # A second proposal for the same merchant waits for the first to be decided.
    again = client_for(admin_user).post(page, {**form, "payment_tolerance_percent": "60"})
    assert again.status_code == 200 and "already awaits approval" in again.content.decode()
    change_control.change_approve(proposal_id=proposal.pk, user=treasurer, note="agreed with the merchant")
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("50")
    assert selectors.four_eyes_threshold(merchant) == Decimal("1000000")


# FX -------------------------------------------------------------------------------------------------
def test_an_fx_rate_set_in_the_admin_is_only_proposed_and_quotes_are_unchanged(
    merchant: Merchant, admin_user: User, treasurer: User, member: User, django_capture_on_commit_callbacks: Any
) -> None:
    row = FxRate.objects.get(base="HKD", quote="MOP")
    before = create_request(merchant, amount="103.00", currency="MOP", order_reference="MOP-1")
    assert int(before.amount_due_base_units) == 100_000_000  # MOP 103 = HKD 100 at 1.03
    page = reverse("admin:stablepay_fxrate_change", args=[row.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin_user).post(page, {"rate": "0.000001", "change_note": "market move"}, follow=True)
    assert response.status_code == 200 and "Not applied yet" in response.content.decode()
    assert FxRate.objects.get(pk=row.pk).rate == Decimal("1.03")
    refdata.clear()
    after = create_request(merchant, amount="103.00", currency="MOP", order_reference="MOP-2")
    assert int(after.amount_due_base_units) == 100_000_000
    [proposal] = ChangeProposal.objects.filter(fx_pair="HKD/MOP")
    assert proposal.changes == {"rate": {"from": "1.03", "to": "0.000001"}}
    # Every merchant's users hear of an FX change.
    assert [m.to for m in mail.outbox] == [["mia@acme.example"]]

    # A new pair through the admin's add form is a proposal too.
    add = reverse("admin:stablepay_fxrate_add")
    client_for(admin_user).post(add, {"base": "CNH", "quote": "HKD", "rate": "1.08", "change_note": "new coin"})
    assert not FxRate.objects.filter(base="CNH").exists()
    assert ChangeProposal.objects.get(fx_pair="CNH/HKD").state == ChangeState.PENDING

    # Approved by a second person, the rate applies to new quotes at once.
    change_control.change_approve(proposal_id=proposal.pk, user=treasurer, note="confirmed with the desk")
    assert FxRate.objects.get(base="HKD", quote="MOP").rate == Decimal("0.000001")
    moved = create_request(merchant, amount="0.01", currency="MOP", order_reference="MOP-3")
    assert int(moved.amount_due_base_units) == 10_000 * 1_000_000  # 0.01 MOP = HKD 10,000 at that rate


def test_ops_users_without_the_permissions_cannot_change_or_approve(
    merchant: Merchant, admin_user: User, ops_user: User, merchant_member: User
) -> None:
    ops = client_for(ops_user)  # console + refund approval, no change_merchant, no approve_change
    assert ops.get(reverse("admin:stablepay_merchant_change", args=[merchant.pk])).status_code in (302, 403)
    proposal = change_control.propose_fx_change(base="USD", quote="HKD", rate="0.000001", note="x", user=admin_user)
    assert ops.get(reverse("stablepay:ops:changes")).status_code == 200  # may see it
    refused = ops.post(reverse("stablepay:ops:change-approve", args=[proposal.pk]), {"note": "ok"})
    assert refused.status_code == 403
    with pytest.raises(change_control.ChangeNotAllowed):
        change_control.change_approve(proposal_id=proposal.pk, user=ops_user, note="ok")
    with pytest.raises(change_control.ChangeNotAllowed):
        change_control.propose_merchant_change(
            merchant_id=merchant.pk, changes={"xpub": account_xpub(ATTACKER_MNEMONIC)}, note="x", user=ops_user
        )
    # A merchant's user gets the console's 403; nobody signed in goes to the login page.
    shopper = client_for(merchant_member)
    assert shopper.get(reverse("stablepay:ops:changes")).status_code == 403
    assert shopper.post(reverse("stablepay:ops:change-reject", args=[proposal.pk]), {"note": "x"}).status_code == 403
    assert Client().get(reverse("stablepay:ops:changes")).status_code == 302
    assert ChangeProposal.objects.get(pk=proposal.pk).state == ChangeState.PENDING


# refunds and accepts valued at the request's own rates ------------------------------------------------------
def _bend_live_table(base: str, quote: str, rate: str) -> None:
    """The old attack, done straight in the database (as an admin could before): the live table lies."""
    FxRate.objects.update_or_create(base=base, quote=quote, defaults={"rate": Decimal(rate)})
    refdata.clear()


def test_a_large_refund_still_needs_four_eyes_when_the_live_fx_table_is_bent(
    local_chain: LocalChain, merchant: Merchant, ops_user: User
) -> None:
    # HK$3,900 paid in USDC (500 USDC at 7.80), after the request expired: a late payment to refund.
    pr = create_request(
        merchant,
        amount="3900.00",
        token="USDC",
        order_reference="BIG-LATE",
        now=timezone.now() - timedelta(minutes=20),
    )
    assert int(pr.amount_due_base_units) == 500_000_000 and pr.fx_rates["USD/HKD"] == "7.8"
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units), symbol="USDC")
    local_chain.settle()
    expect(pr, "needs_review", "late")

    _bend_live_table("USD", "HKD", "0.000001")  # 500 USDC would be HK$0.0005 at the live table

    detail = selectors.request_detail(pr.pk)
    assert detail is not None and detail.refund.hkd_text == "HK$3,900.00" and detail.refund_needs_approval
    with pytest.raises(NotAllowed, match="four-eyes"):  # nor can the merchant's API key decide it alone
        merchant_resolve(request_id=pr.pk, action="refund", note="refund", actor="api")
    op = ops_action_request(
        request_id=pr.pk,
        action="refund",
        note="customer paid late",
        user=ops_user,
        refund_address="0x" + "ab" * 20,
    )
    assert op.state == ActionState.PENDING_APPROVAL
    expect(pr, "needs_review", "late")


def test_an_accept_is_valued_at_the_requests_own_rates(
    local_chain: LocalChain, merchant: Merchant, ops_user: User
) -> None:
    # MOP 4,120.00 (HK$4,000 at 1.03), half paid: accepting counts HK$2,000 as paid that never arrived.
    pr = create_request(merchant, amount="4120.00", currency="MOP", order_reference="MOP-SHORT")
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units) // 2)
    local_chain.settle()
    from stablepay.ledger import services

    services.payment_requests_expire(now=timezone.now() + timedelta(minutes=16))
    expect(pr, "needs_review", "underpaid")

    _bend_live_table("HKD", "MOP", "1000000")  # MOP 2,060 would be HK$0.00206 at the live table
    op = ops_action_request(request_id=pr.pk, action="accept", note="close enough", user=ops_user)
    assert op.state == ActionState.PENDING_APPROVAL


def test_a_request_without_recorded_rates_cannot_be_priced_so_needs_four_eyes(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    pr = create_request(merchant, amount="10.00", token="USDC", order_reference="NO-RATES")
    PaymentRequest.objects.filter(pk=pr.pk).update(fx_rates=None)  # as bench fixtures or an old archive write it
    pr.refresh_from_db()
    refund = selectors.refund_amount(pr, [], selectors.request_rates(pr))
    assert selectors.request_rates(pr) == {} and refund.hkd == 0  # nothing received: nothing to value
    short = selectors.accept_shortfall(pr, selectors.request_rates(pr))
    assert short[1] is not None  # an HKD price needs no rate ...
    usd = create_request(merchant, amount="10.00", currency="USD", token="USDC", order_reference="USD-NO-RATES")
    PaymentRequest.objects.filter(pk=usd.pk).update(fx_rates=None)
    usd.refresh_from_db()
    assert selectors.accept_shortfall(usd, selectors.request_rates(usd))[1] is None  # ... a USD one does


# stablepay_setup: the deployer applies, on the record -----------------------------------------------------
def test_setup_applies_and_records_announces_its_changes(
    local_chain: LocalChain,
    merchant: Merchant,
    member: User,
    receiver: VerifyingReceiver,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.support.local_chain import setup_document

    document = setup_document(local_chain.anvil.url, local_chain.tokens)
    document["merchants"][0] |= {
        "payment_tolerance_percent": "1.5",
        "webhook_url": receiver.url,
        "webhook_secret": SECRET,
    }
    document["fx"]["HKD/MOP"] = "1.031"
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(document))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("stablepay_setup", str(path))
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("1.5")
    tolerance = ChangeProposal.objects.filter(merchant=merchant, actor="setup").latest("id")
    assert tolerance.state == ChangeState.APPLIED
    assert tolerance.changes == {"payment_tolerance_percent": {"from": "0.5", "to": "1.5"}}
    fx = ChangeProposal.objects.get(fx_pair="HKD/MOP", actor="setup")
    assert fx.changes == {"rate": {"from": "1.03", "to": "1.031"}}
    assert len(mail.outbox) == 2 and all(m.to == ["mia@acme.example"] for m in mail.outbox)
    applied = deliveries(receiver, "merchant.change_applied")
    assert {e["data"]["id"] for e in applied} == {tolerance.pk, fx.pk}
    assert all(e["data"]["proposed_by"] == "setup" for e in applied)
    # The same file again changes, and records, nothing.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("stablepay_setup", str(path))
    assert ChangeProposal.objects.filter(actor="setup", merchant=merchant).count() == 2  # registered, tolerance
    # The webhook log shows the account events next to the requests'.
    assert WebhookDelivery.objects.filter(payment_request__isnull=True).count() == 2


def test_the_merchant_settings_page_lists_changes_to_where_its_money_goes(
    merchant: Merchant, member: User, admin_user: User
) -> None:
    change_control.propose_merchant_change(
        merchant_id=merchant.pk, changes={"xpub": account_xpub(ATTACKER_MNEMONIC)}, note="rotate", user=admin_user
    )
    page = client_for(member).get(reverse("stablepay:merchant:settings")).content.decode()
    assert 'id="money-changes"' in page and "awaiting approval" in page
    assert mnemonic_address(ATTACKER_MNEMONIC, 0) in page
