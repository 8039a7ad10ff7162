"""Ops staff work the exceptions queue in real Chromium: sign in through the login form, accept an
underpaid order (the shop order becomes paid), and a refund above the four-eyes limit requested by one
ops user and approved by another in a second browser. Real anvil, real PostgreSQL, the shop's own
checkout services; screenshots at 1280 and 390 px go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from shop.models import Order, Storefront
from shop.services import cart_add, order_place
from stablepay.ledger import services
from stablepay.models import ActionState, OpsAction, PaymentRequest
from tests.support.browser import shoot, sign_in
from tests.support.local_chain import LocalChain
from tests.support.ops import APPROVE, CONSOLE, make_user
from tests.support.ops import expect as expect_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
REFUND_TX = "0x" + "5e" * 32


@pytest.fixture
def place_order(local_chain: LocalChain) -> Callable[..., tuple[Order, PaymentRequest]]:
    call_command("shop_seed", merchant="acme", verbosity=0)

    def place(quantity: int = 1) -> tuple[Order, PaymentRequest]:
        storefront = Storefront.objects.get(code="hk")
        session = SessionStore()
        session.create()
        product = storefront.products.order_by("position", "sku").first()
        assert product is not None
        cart_add(session=session, storefront=storefront, product_id=product.pk, quantity=quantity)
        return order_place(session=session, storefront=storefront, chain_id=31337, token_symbol="HKDX")

    return place


def expire_now(pr: PaymentRequest) -> None:
    """The 15 minutes pass: the request now expires just after its last transfer, and the sweep runs."""
    last_mined = max(t.block_timestamp for t in pr.transfers.all())
    expires_at = last_mined + timedelta(seconds=1)
    PaymentRequest.objects.filter(pk=pr.pk).update(expires_at=expires_at)
    services.payment_requests_expire(now=max(timezone.now(), expires_at + timedelta(seconds=1)))


def phone_shots(browser: Browser, base_url: str, username: str, shots: dict[str, str]) -> None:
    context = browser.new_context(viewport=PHONE, locale="en-GB", device_scale_factor=2)
    try:
        page = context.new_page()
        sign_in(page, base_url, username)
        for name, path in shots.items():
            page.goto(f"{base_url}{path}")
            shoot(page, f"{name}-390")
    finally:
        context.close()


def test_ops_accepts_an_underpaid_order_and_the_shop_order_is_paid(
    browser: Browser,
    page: Page,
    live_server,
    local_chain: LocalChain,
    place_order,  # type: ignore[no-untyped-def]
) -> None:
    make_user("olivia", CONSOLE, APPROVE)
    order, pr = place_order()
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units) // 2)
    local_chain.settle()
    expire_now(pr)
    expect_state(pr, "needs_review", "underpaid")
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT

    sign_in(page, live_server.url, "olivia")
    expect(page.locator("h1")).to_have_text("Exceptions queue")
    group = page.locator("#group-underpaid")
    expect(group).to_have_text("Underpaid")
    row = page.locator(f"tr[data-request='{pr.pk}']")
    expect(row).to_contain_text(order.reference)
    expect(row).to_contain_text("\u221284.000000 HKDX")  # half of 168.00 HKD is short
    expect(row).to_contain_text("≈ HK$84.00")
    shoot(page, "queue")

    row.get_by_role("link", name=order.reference).click()
    expect(page.locator("#request-exception")).to_have_text("Underpaid")
    expect(page.locator("#amount-difference")).to_contain_text("84.000000 HKDX")
    expect(page.locator("table").first).to_contain_text("/3")
    shoot(page, "detail-underpaid")

    page.locator("label.choice", has_text="Accept").click()
    expect(page.locator("#refund-fields")).to_be_hidden()
    page.fill("#id_note", "Shopper confirmed by phone; accepting the shortfall as a discount.")
    page.locator("#submit-decision").click()
    expect(page.locator("#request-status")).to_have_text("Paid")
    expect(page.locator(".message-success")).to_contain_text("Decision recorded")
    expect(page.locator("#timeline")).to_contain_text("ops:olivia")
    expect(page.locator("#timeline")).to_contain_text("accepting the shortfall as a discount")
    page.reload()  # without the confirmation toast
    shoot(page, "detail-accepted")

    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.paid_at is not None
    expect_state(pr, "paid", "")

    # Money that is never credited: a zero-value transfer, and a fake token calling itself HKDX.
    local_chain.pay(pr.pay_to, 0)
    local_chain.pay(pr.pay_to, 25_000_000, symbol="FAKE")
    local_chain.settle()
    page.goto(f"{live_server.url}/ops/health/")
    expect(page.locator(".chain-card")).to_contain_text("Local")
    expect(page.locator("#uncredited")).to_contain_text("Zero value")
    page.locator("#probe-submit").click()
    expect(page.locator("#lookalike-table")).to_contain_text("Same symbol as a registered token, another contract")
    expect(page.locator("#lookalike-table")).to_contain_text("25.000000 HKDX")
    shoot(page, "health")
    phone_shots(
        browser,
        live_server.url,
        "olivia",
        {
            "queue-empty": "/ops/",
            "detail-accepted": f"/ops/requests/{pr.pk}/",
            "health": "/ops/health/?probe=31337&blocks=1000",
        },
    )


def test_a_large_refund_needs_a_second_ops_user(
    browser: Browser,
    page: Page,
    live_server,
    local_chain: LocalChain,
    place_order,  # type: ignore[no-untyped-def]
) -> None:
    make_user("olivia", CONSOLE, APPROVE)
    oscar = make_user("oscar", CONSOLE, APPROVE)
    order, pr = place_order(quantity=7)  # 7 x 168.00 = 1,176.00 HKD
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units) * 2)  # paid twice: 1,176.00 HKD excess
    local_chain.settle()
    expect_state(pr, "paid", "overpaid")
    _other, underpaid = place_order()
    local_chain.pay(underpaid.pay_to, int(underpaid.amount_due_base_units) // 4)
    local_chain.settle()
    expire_now(underpaid)
    expect_state(underpaid, "needs_review", "underpaid")

    # Ops user 1 requests the refund.
    sign_in(page, live_server.url, "olivia")
    expect(page.locator("#group-overpaid")).to_be_visible()
    expect(page.locator("#group-underpaid")).to_be_visible()
    shoot(page, "queue-two-groups")
    page.locator(f"tr[data-request='{pr.pk}']").get_by_role("link", name=order.reference).click()
    page.locator("label.choice", has_text="Refund").click()
    expect(page.locator("#refund-fields")).to_be_visible()
    expect(page.locator(".four-eyes-on")).to_contain_text("HK$1,176.00")
    page.locator(".payer-suggest button").first.click()  # fill in the address the payment came from
    expect(page.locator("#id_refund_address")).to_have_value(re.compile(r"^0x[0-9a-fA-F]{40}$"))
    page.fill("#id_note", "Customer paid twice (two wallet taps); refund the excess.")
    shoot(page, "refund-form")
    page.locator("#submit-decision").click()
    expect(page.locator("#pending-approval")).to_contain_text("Decision awaiting approval")
    expect(page.locator("#pending-action")).to_contain_text("Refund")
    expect(page.locator("#pending-approval")).to_contain_text("You requested this decision")
    expect(page.locator("#approve-pending")).to_have_count(0)
    expect(page.locator("#request-exception")).to_have_text("Overpaid")
    page.reload()
    shoot(page, "refund-pending")
    action = OpsAction.objects.get(payment_request=pr)
    assert action.state == ActionState.PENDING_APPROVAL
    assert action.refund_address == pr.transfers.get().from_address

    # Ops user 2, in a second browser, approves it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        second = context.new_page()
        sign_in(second, live_server.url, "oscar")
        expect(second.locator(".pill-alert")).to_have_text("1")
        second.get_by_role("link", name=re.compile("Approvals")).click()
        expect(second.locator("#actions-table")).to_contain_text(order.reference)
        shoot(second, "approvals")
        second.locator("#actions-table").get_by_role("link", name="Review").click()
        expect(second.locator("#pending-approval")).to_contain_text("ops:olivia")
        second.fill("#id_decision_note", "Checked both transfers on chain; approved.")
        expect(second.locator("#approve-pending")).to_have_text("Approve and refund")
        second.locator("#approve-pending").click()
        expect(second.locator(".message-success")).to_contain_text("Approved and carried out: Refund")
        expect(second.locator("#request-status")).to_have_text("Paid")
        expect(second.locator("#request-exception")).to_have_count(0)
        expect(second.locator("#timeline")).to_contain_text("approved by ops:oscar")
        expect(second.locator("#ops-actions")).to_contain_text("approved by ops:oscar")

        # Once sent, the refund's tx hash is recorded (once).
        second.fill("#id_tx_hash", REFUND_TX)
        second.get_by_role("button", name="Record refund tx").click()
        expect(second.locator("#refund-tx")).to_contain_text(REFUND_TX)
        expect(second.locator("#refund-tx-panel")).to_have_count(0)
        second.reload()
        shoot(second, "refund-approved")
    finally:
        context.close()

    action.refresh_from_db()
    assert action.state == ActionState.DONE and action.decided_by == oscar and action.refund_tx_hash == REFUND_TX
    pr = expect_state(pr, "paid", "")
    assert pr.resolution == "refund" and pr.refund_tx_hash == REFUND_TX
    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # a refunded excess leaves the order paid
    assert User.objects.filter(username="oscar").exists()

    phone_shots(
        browser,
        live_server.url,
        "olivia",
        {
            "queue": "/ops/",
            "detail-underpaid": f"/ops/requests/{underpaid.pk}/",
            "refund-approved": f"/ops/requests/{pr.pk}/",
        },
    )
