"""A shopper buys in the Macau store, pays with the demo wallet and sees the order paid: real Chromium,
real anvil, real PostgreSQL, the watcher running as it does in the demo."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from shop.models import Order
from tests.conftest import LocalChain

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_store(local_chain: LocalChain, settings) -> LocalChain:  # type: ignore[no-untyped-def]
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    call_command("shop_seed", merchant="acme", verbosity=0)
    return local_chain


def test_macau_purchase_paid_with_the_simulate_button(
    page: Page,
    live_server,
    demo_store: LocalChain,
    running_watcher: None,
    screenshot,  # type: ignore[no-untyped-def]
) -> None:
    page.goto(f"{live_server.url}/store/mo/")
    expect(page.get_by_text("MOP$128.00").first).to_be_visible()
    page.locator("form[action*='cart/add'] button[type=submit]").first.click()
    page.goto(f"{live_server.url}/store/mo/checkout/")
    page.locator("input[type=radio]").first.check()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))

    order = Order.objects.get()
    assert order.status == "pending_payment" and order.currency == "MOP"
    expect(page.locator("#status-badge")).to_have_text("Open")
    expect(page.locator("svg").first).to_be_visible()  # the EIP-681 QR code
    amount_due = page.locator("#amount-due").inner_text()
    assert re.fullmatch(r"\d+\.\d{6}", amount_due)
    screenshot("payment-page")

    page.locator("#simulate-payment").click()
    expect(page.locator("#pay")).to_have_attribute("data-status", "paid", timeout=30_000)
    expect(page.locator("#status-badge")).to_have_text("Paid")
    expect(page.locator("#transfers")).to_contain_text("Confirmed")
    screenshot("paid")

    order.refresh_from_db()
    assert order.status == "paid" and order.paid_at is not None
    page.get_by_role("link", name="Back to your order").click()
    expect(page.locator("body")).to_contain_text(order.reference)
    expect(page.locator("body")).to_contain_text("Paid")
    expect(page.locator(".timeline-item")).to_have_count(3)  # open, confirming, paid
    expect(page.locator(".timeline")).to_contain_text("Confirming")
    screenshot("order-paid")
