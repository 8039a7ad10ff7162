"""The Content Security Policy in real Chromium: the payment page, checkout, merchant dashboard and ops
console render and work (QR, countdown, live status, copy button, chart) with zero CSP violations.

Every page gets an init script that records `securitypolicyviolation` events before any of the page's
own code runs, and the console's errors are kept too; a control test shows both catch a violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from playwright.sync_api import Browser, BrowserContext, Page, expect

from stablepay.models import Merchant
from tests.support.auth import pass_second_factor, totp_device
from tests.support.browser import ARTIFACTS, CSP_RECORDER
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "csp-check-password-42"


class Watched:
    """A page whose CSP violations and console errors are collected across navigations."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page = context.new_page()
        self.console_errors: list[str] = []
        self.violations: list[str] = []
        self.csp_headers: dict[str, str] = {}
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.csp_headers[response.url] = response.headers.get("content-security-policy", "")

    def collect(self) -> list[str]:
        """The violations recorded on the current document (call before leaving it)."""
        found = self.page.evaluate("() => window.__csp || []")
        self.violations.extend(found)
        return list(found)

    def goto(self, url: str) -> None:
        self.collect_safely()
        self.page.goto(url)

    def collect_safely(self) -> None:
        try:
            self.collect()
        except Exception:  # no document yet (about:blank before the first navigation)
            return

    def assert_clean(self, *, expected_status: int | None = None) -> None:
        """No violation, and no console error but the one Chromium logs for an expected error status."""
        self.collect_safely()
        assert self.violations == [], self.violations
        assert [e for e in self.console_errors if "Content Security Policy" in e or "Refused" in e] == []
        expected = f"the server responded with a status of {expected_status}"
        assert [e for e in self.console_errors if expected_status is None or expected not in e] == []
        assert self.csp_headers, "no document was loaded"
        for url, header in self.csp_headers.items():
            assert "default-src 'self'" in header and "frame-ancestors 'none'" in header, url


def shoot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"csp-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", permissions=["clipboard-read", "clipboard-write"]
    )
    context.add_init_script(CSP_RECORDER)
    yield Watched(context)
    context.close()


@pytest.fixture
def demo_store(local_chain: LocalChain, settings: Any) -> LocalChain:
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    call_command("shop_seed", merchant="acme", verbosity=0)
    return local_chain


def test_the_control_catches_inline_script_and_style(
    watched: Watched, live_server: Any, demo_store: LocalChain
) -> None:
    """Without this, "zero violations" below could mean the listener never fires."""
    watched.goto(f"{live_server.url}/store/hk/")
    watched.page.evaluate(
        """() => {
          const s = document.createElement("script"); s.textContent = "window.__ran = true"; document.body.append(s);
          document.body.setAttribute("style", "background: red");
        }"""
    )
    watched.page.wait_for_function("() => window.__csp.length >= 2")
    found = watched.collect()
    assert watched.page.evaluate("() => window.__ran === undefined")  # the inline script did not run
    assert any(v.startswith("script-src") for v in found), found
    assert any(v.startswith("style-src") for v in found), found
    assert any("Content Security Policy" in e for e in watched.console_errors)


def test_checkout_and_payment_page_work_under_csp(
    watched: Watched,
    live_server: Any,
    demo_store: LocalChain,
    running_watcher: None,
) -> None:
    page = watched.page
    watched.goto(f"{live_server.url}/store/hk/")
    page.locator("form[action*='cart/add'] button[type=submit]").first.click()
    watched.goto(f"{live_server.url}/store/hk/checkout/")
    page.locator("input[type=radio]").first.check()
    watched.collect()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))

    # The QR code, drawn (an inline SVG with its modules as a path).
    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 150 and box["height"] > 150
    # The countdown ticks.
    countdown = page.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"^\d{1,2}:\d{2}$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=5_000)
    # The copy button writes the address to the clipboard and says so.
    address = page.locator("#pay-to").inner_text()
    copy = page.locator("button.copy[data-copy]").nth(1)
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == address
    shoot(page, "payment-page")
    watched.collect()

    # Live status: the demo wallet pays, the page follows the watcher to "paid" by polling.
    page.locator("#simulate-payment").click()
    expect(page.locator("#pay")).to_have_attribute("data-status", "paid", timeout=30_000)
    expect(page.locator("#status-badge")).to_have_text("Paid")
    expect(page.locator("#transfers")).to_contain_text("Confirmed")
    expect(page.locator("#progress-bar")).to_have_css("width", re.compile(r"^[1-9]\d*(\.\d+)?px$"))
    shoot(page, "payment-page-paid")
    page.get_by_role("link", name="Back to your order").click()
    expect(page.locator(".timeline-item")).to_have_count(3)
    watched.assert_clean()


def test_merchant_dashboard_and_ops_console_work_under_csp(
    watched: Watched, live_server: Any, local_chain: LocalChain
) -> None:
    merchant = Merchant.objects.get(slug="acme")
    for i, amount in enumerate(("388.00", "128.00")):
        request = create_request(merchant, amount=amount, order_reference=f"CSP-{i}")
        local_chain.pay(request.pay_to, int(request.amount_due_base_units), symbol="HKDX")
    local_chain.settle()
    user = get_user_model().objects.create_user("csp-merchant", password=PASSWORD)
    merchant.members.add(user)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="stablepay"))
    totp_device(user)  # all of stablepay's permissions: the verify page comes after the password

    page = watched.page
    page.emulate_media(reduced_motion="reduce")
    watched.goto(f"{live_server.url}/merchant/")
    page.fill("#id_username", "csp-merchant")
    page.fill("#id_password", PASSWORD)
    watched.collect()
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r"/accounts/two-factor/"))
    watched.collect()
    pass_second_factor(page, user)
    page.wait_for_url(re.compile(r"/merchant/$"))
    expect(page.locator("#volume-chart")).to_have_attribute("data-rendered", "true")  # Chart.js drew it
    shoot(page, "merchant-overview")
    for path in ("/merchant/payments/", "/merchant/settlements/", "/merchant/settings/"):
        watched.goto(f"{live_server.url}{path}")
        expect(page.locator("main")).to_be_visible()

    # The ops console: the queue, and a request's page with its confirmation meters.
    watched.goto(f"{live_server.url}/ops/")
    expect(page.locator("main")).to_be_visible()
    request = create_request(merchant, amount="50.00", order_reference="CSP-OPS")
    local_chain.pay(request.pay_to, int(request.amount_due_base_units) // 2, symbol="HKDX")
    local_chain.settle()
    watched.goto(f"{live_server.url}/ops/requests/{request.pk}/")
    meter = page.locator(".confirm-meter meter").first
    expect(meter).to_be_visible()
    shoot(page, "ops-detail")
    watched.assert_clean()


def test_the_checkout_rate_limit_page_is_clear_and_clean(
    watched: Watched, live_server: Any, demo_store: LocalChain, settings: Any
) -> None:
    """A shopper over the per-IP checkout limit sees why, and for how long, on the checkout page (429)."""
    settings.STABLEPAY = {**settings.STABLEPAY, "RATE_LIMIT_PER_IP": "1/60", "RATE_LIMIT_REDIS_URL": ""}
    page = watched.page
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.request.method == "POST" else None)
    for _ in range(2):
        watched.goto(f"{live_server.url}/store/hk/")
        page.locator("form[action*='cart/add'] button[type=submit]").first.click()
        watched.goto(f"{live_server.url}/store/hk/checkout/")
        page.locator("input[type=radio]").first.check()
        watched.collect()
        page.locator("form[data-submit-once] button[type=submit]").click()
        page.wait_for_load_state()
    expect(page).to_have_url(re.compile(r"/checkout/$"))
    expect(page.locator(".form-errors")).to_contain_text(
        re.compile(r"Too many checkouts from your network just now\. Please wait \d+ seconds and try again\.")
    )
    assert 429 in statuses
    shoot(page, "checkout-rate-limited")
    watched.assert_clean(expected_status=429)
