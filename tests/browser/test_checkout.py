"""A shopper buys in the Macau store, pays with the demo wallet and sees the order paid: real Chromium,
real anvil, real PostgreSQL, the watcher running as it does in the demo."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from shop.models import Order
from tests.browser.qr_read import read_qr_codes
from tests.support.local_chain import LocalChain

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_store(local_chain: LocalChain, settings) -> LocalChain:  # type: ignore[no-untyped-def]
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    call_command("shop_seed", merchant="acme", verbosity=0)
    return local_chain


def _check_out_first_item(page: Page, base_url: str) -> None:
    """From the Macau storefront: the first product into the cart, check out with the first coin."""
    page.locator("form[action*='cart/add'] button[type=submit]").first.click()
    page.goto(f"{base_url}/store/mo/checkout/")
    page.locator("input[type=radio]").first.check()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))


def test_macau_purchase_paid_with_the_simulate_button(
    page: Page,
    live_server,
    demo_store: LocalChain,
    running_watcher: None,
    screenshot,  # type: ignore[no-untyped-def]
) -> None:
    page.goto(f"{live_server.url}/store/mo/")
    expect(page.get_by_text("MOP$128.00").first).to_be_visible()
    _check_out_first_item(page, live_server.url)

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


def test_macau_purchase_in_mop_paid_by_a_transfer_to_the_qr_address(
    page: Page,
    live_server,
    demo_store: LocalChain,
    running_watcher: None,
    screenshot,  # type: ignore[no-untyped-def]
) -> None:
    """The shopper's wallet app scans the QR: the EIP-681 URI it encodes is the whole instruction. The
    test reads the QR from a screenshot of the page with a real decoder (zxing-cpp), checks it is the
    request's `payment_uri`, and pays what it says from an anvil account."""
    page.goto(f"{live_server.url}/store/mo/")
    _check_out_first_item(page, live_server.url)
    order = Order.objects.get()
    assert order.currency == "MOP"

    status = page.request.get(page.url + "status/").json()
    page.locator("#pay-qr").scroll_into_view_if_needed()
    scanned = [qr.text for qr in read_qr_codes(page.screenshot())[1]]
    assert scanned == [status["payment_uri"]]  # the QR on screen reads as exactly this URI
    uri = scanned[0]
    match = re.fullmatch(r"ethereum:(0x[0-9a-fA-F]{40})@31337/transfer\?address=(0x[0-9a-fA-F]{40})&uint256=(\d+)", uri)
    assert match, uri
    token_address, pay_to, amount = match.group(1), match.group(2), int(match.group(3))
    assert page.locator("#pay-to").inner_text() == pay_to
    assert token_address.lower() == demo_store.tokens["HKDX"].lower()
    # The price in MOP, at the statutory 1 HKD = 1.03 MOP, rounded up to the token's base unit.
    assert amount == math.ceil(Fraction(status["amount"]) * 10**6 / Fraction("1.03"))

    demo_store.pay(pay_to, amount, sender_index=2)
    expect(page.locator("#pay")).to_have_attribute("data-status", "paid", timeout=30_000)
    expect(page.locator("#status-badge")).to_have_text("Paid")
    screenshot("paid-by-qr-transfer")
    order.refresh_from_db()
    assert order.status == "paid"
