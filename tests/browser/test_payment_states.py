"""The payment page's states in real Chromium, live (no reloads), with real anvil transfers found by the
watcher: underpaid then topped up (remaining amount, then a receipt), an expired request started again
from the order, and the page in Traditional Chinese. Screenshots of each state at phone and desktop size.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from shop.models import Order
from stablepay.ingest import watcher
from stablepay.models import Merchant, PaymentRequest
from stablepay.money import base_units_to_decimal, format_token
from tests.browser.a11y import shoot_both
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every text the polite live region is given, in order (the page's own script only fills it on a change).
RECORD_ANNOUNCEMENTS = """
window.__announced = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("announce");
  if (el) new MutationObserver(() => window.__announced.push(el.textContent))
    .observe(el, {childList: true, characterData: true, subtree: true});
});
"""
EXPLORER = "https://explorer.example.com/tx/{tx}"


@pytest.fixture
def shop_request(local_chain: LocalChain) -> PaymentRequest:
    chain = local_chain.chain
    chain.explorer_tx_url = EXPLORER
    chain.save()
    merchant = Merchant.objects.get(slug="acme")
    return create_request(
        merchant, amount="1680.00", currency="HKD", order_reference="HK-2026-01680", metadata={"return_url": "/"}
    )


def announcements(page: Page) -> list[str]:
    return list(page.evaluate("() => window.__announced"))


def token_text(base_units: int) -> str:
    return format_token(base_units_to_decimal(base_units, 6), "HKDX")


def test_underpay_then_top_up(
    page: Page, live_server: Any, local_chain: LocalChain, shop_request: PaymentRequest, running_watcher: None
) -> None:
    page.context.add_init_script(RECORD_ANNOUNCEMENTS)
    due = int(shop_request.amount_due_base_units)
    first = due * 6 // 10
    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    expect(page.locator("#pay")).to_have_attribute("data-state", "open")
    expect(page.locator(".pay-network")).to_contain_text("HK$1,680.00")
    expect(page.locator("#status-text")).to_have_text("Waiting for your payment")
    expect(page.locator("#receipt")).to_be_hidden()
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^1[45]:\d{2}$"))
    shoot_both(page, "pay-open")

    local_chain.pay(shop_request.pay_to, first)
    expect(page.locator("#pay")).to_have_attribute("data-state", "underpaid", timeout=20_000)
    remaining = due - first
    detail = page.locator("#status-detail")
    expect(detail).to_contain_text(f"Still to pay: {token_text(remaining)}")
    expect(detail).to_contain_text(f"Received {token_text(first)}")
    expect(detail).to_contain_text("Top up to the same address")
    expect(page.locator("#amount-copy")).to_have_text(format(base_units_to_decimal(remaining, 6), "f"))
    expect(page.locator("#send-label")).to_have_text("Send the rest")
    expect(page.locator("#pay-qr")).to_be_hidden()  # it holds the full amount
    expect(page.locator("#countdown-wrap")).to_be_visible()
    expect(page.locator("#status-badge")).to_have_text("Open")
    shoot_both(page, "pay-underpaid")
    # The live region spoke once for the change, and stays quiet while the countdown ticks.
    said = announcements(page)
    assert len(said) >= 1 and "Still to pay" in said[-1], said
    countdown = page.locator("#countdown").inner_text()
    expect(page.locator("#countdown")).not_to_have_text(countdown, timeout=3_000)
    page.wait_for_timeout(2_500)
    assert announcements(page) == said

    local_chain.pay(shop_request.pay_to, remaining, sender_index=2)
    expect(page.locator("#pay")).to_have_attribute("data-state", "paid", timeout=20_000)
    expect(page.locator("#status-text")).to_have_text("Paid. Thank you!")
    receipt = page.locator("#receipt")
    expect(receipt).to_be_visible()
    expect(page.locator("#receipt-price")).to_have_text("HK$1,680.00")
    expect(page.locator("#receipt-amount")).to_have_text(token_text(due))
    expect(page.locator("#receipt-time")).to_have_text(re.compile(r"\d"))
    links = page.locator("#receipt-txs a")
    expect(links).to_have_count(2)
    for i in range(2):
        expect(links.nth(i)).to_have_attribute(
            "href", re.compile(r"^https://explorer\.example\.com/tx/0x[0-9a-f]{64}$")
        )
    expect(page.locator("#pay-instructions")).to_be_hidden()
    expect(page.locator("#countdown-wrap")).to_be_hidden()
    assert announcements(page)[-1] == "Paid. Thank you!"
    assert len(announcements(page)) <= 8  # state changes and confirmation steps, not seconds
    shoot_both(page, "pay-paid-receipt")
    shop_request.refresh_from_db()
    assert shop_request.status == "paid" and int(shop_request.amount_paid_base_units) == due


def test_overpaid_says_the_excess_is_refunded(
    page: Page, live_server: Any, local_chain: LocalChain, shop_request: PaymentRequest, running_watcher: None
) -> None:
    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    local_chain.pay(shop_request.pay_to, int(shop_request.amount_due_base_units) * 2)
    expect(page.locator("#pay")).to_have_attribute("data-state", "overpaid", timeout=20_000)
    expect(page.locator("#status-text")).to_have_text("Paid. You sent more than due; the excess will be refunded.")
    expect(page.locator("#receipt")).to_be_visible()
    shoot_both(page, "pay-overpaid")


def test_confirming_hides_the_qr_so_nobody_pays_twice(
    page: Page, live_server: Any, local_chain: LocalChain, shop_request: PaymentRequest
) -> None:
    """Everything due has arrived and waits for confirmations: the QR, "send exactly" (the full amount again)
    and the wallet buttons go away; the progress and the payment received show the depth."""
    chain = local_chain.chain
    chain.confirmations = 50  # stays confirming for this test
    chain.save()
    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    expect(page.locator("#pay-qr")).to_be_visible()
    local_chain.pay(shop_request.pay_to, int(shop_request.amount_due_base_units))
    local_chain.mine(1)
    watcher.scan_once()
    expect(page.locator("#pay")).to_have_attribute("data-state", "confirming", timeout=10_000)
    expect(page.locator("#status-text")).to_contain_text("/50")
    expect(page.locator("#pay-qr")).to_be_hidden()
    expect(page.locator("#pay-instructions")).to_be_hidden()
    expect(page.locator("#wallet-pay-button")).to_be_hidden()
    expect(page.locator("#transfers")).to_contain_text("/50 confirmations")
    expect(page.locator("#countdown-wrap")).to_be_hidden()
    expect(page.locator("#progress")).to_be_visible()
    shoot_both(page, "pay-confirming")


def test_late_payment_is_for_the_merchant_to_review(
    page: Page, live_server: Any, local_chain: LocalChain, shop_request: PaymentRequest
) -> None:
    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    PaymentRequest.objects.filter(pk=shop_request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    local_chain.mine(1)
    watcher.scan_once()  # the embedded watcher's pass: scans, then expires what is due
    expect(page.locator("#pay")).to_have_attribute("data-state", "expired", timeout=10_000)
    local_chain.pay(shop_request.pay_to, int(shop_request.amount_due_base_units))
    local_chain.settle()
    expect(page.locator("#pay")).to_have_attribute("data-state", "late", timeout=10_000)
    expect(page.locator("#status-text")).to_have_text(
        "We received your payment after the request expired. The merchant will review it."
    )
    expect(page.locator("#status-badge")).to_have_text("Needs review")
    expect(page.locator("#transfers")).to_contain_text(token_text(int(shop_request.amount_due_base_units)))
    shoot_both(page, "pay-late")


@pytest.fixture
def demo_store(local_chain: LocalChain, settings: Any) -> LocalChain:
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    call_command("shop_seed", merchant="acme", verbosity=0)
    return local_chain


def checkout(page: Page, base_url: str) -> str:
    page.goto(f"{base_url}/store/hk/")
    page.locator("form[action*='cart/add'] button[type=submit]").first.click()
    page.goto(f"{base_url}/store/hk/checkout/")
    page.locator("input[type=radio]").first.check()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))
    return page.url


def test_an_expired_request_is_started_again(
    page: Page, live_server: Any, demo_store: LocalChain, running_watcher: None
) -> None:
    page.context.add_init_script(RECORD_ANNOUNCEMENTS)
    first_url = checkout(page, live_server.url)
    order = Order.objects.get()
    expect(page.locator("#restart")).to_be_hidden()
    PaymentRequest.objects.filter(pk=order.payment_request_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    expect(page.locator("#pay")).to_have_attribute("data-state", "expired", timeout=20_000)
    expect(page.locator("#status-text")).to_have_text(
        "This payment request expired before any payment arrived. Nothing was charged."
    )
    expect(page.locator("#countdown-wrap")).to_be_hidden()
    expect(page.locator("#pay-instructions")).to_be_hidden()
    expect(page.locator("#demo-wallet")).to_be_hidden()
    restart = page.get_by_role("link", name="Start again from your order")
    expect(restart).to_be_visible()
    assert "expired before any payment arrived" in announcements(page)[-1]
    shoot_both(page, "pay-expired")

    restart.click()
    expect(page.locator("body")).to_contain_text(order.reference)
    page.get_by_role("button", name="Order these items again").click()
    page.goto(f"{live_server.url}/store/hk/checkout/")
    page.locator("input[type=radio]").first.check()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))
    assert page.url != first_url
    expect(page.locator("#pay")).to_have_attribute("data-state", "open")
    assert Order.objects.count() == 2 and PaymentRequest.objects.filter(status="open").count() == 1


def test_the_payment_page_in_traditional_chinese(
    page: Page, live_server: Any, local_chain: LocalChain, shop_request: PaymentRequest, running_watcher: None
) -> None:
    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    page.get_by_role("button", name="繁體中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hant")
    expect(page.locator("#status-text")).to_have_text("等待你的付款")
    expect(page.locator(".pay-network")).to_contain_text("HK$1,680.00")
    due = int(shop_request.amount_due_base_units)
    local_chain.pay(shop_request.pay_to, due // 2)
    expect(page.locator("#pay")).to_have_attribute("data-state", "underpaid", timeout=20_000)
    expect(page.locator("#status-detail")).to_contain_text(token_text(due - due // 2))
    expect(page.locator("#status-detail")).to_contain_text("同一地址")
    expect(page.locator("#send-label")).to_have_text("請補付餘額")
    shoot_both(page, "pay-zh-underpaid")
    local_chain.pay(shop_request.pay_to, due - due // 2)
    expect(page.locator("#pay")).to_have_attribute("data-state", "paid", timeout=20_000)
    expect(page.locator("#status-badge")).to_have_text("已付款")
    expect(page.locator("#receipt-title")).to_have_text("收據")
    shoot_both(page, "pay-zh-paid")
