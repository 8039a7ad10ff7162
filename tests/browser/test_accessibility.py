"""axe-core (npm) in headless Chromium: 0 serious or critical violations on the storefront, checkout, the
payment page in each state (open, confirming, underpaid, paid, expired; English and zh-Hant), the merchant
dashboard and the ops console. Lesser findings are printed. Controls show axe is really running and can fail.
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from stablepay.ingest import watcher
from stablepay.models import Merchant, PaymentRequest
from tests.browser.a11y import AXE, assert_accessible, run_axe, shoot_both
from tests.support.auth import pass_second_factor, totp_device
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a11y-check-password-42"


@pytest.fixture
def demo_store(local_chain: LocalChain, settings: Any) -> LocalChain:
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    call_command("shop_seed", merchant="acme", verbosity=0)
    chain = local_chain.chain
    chain.explorer_tx_url = "https://explorer.example.com/tx/{tx}"
    chain.save()
    return local_chain


def test_axe_runs_under_the_csp_and_finds_a_planted_violation(
    page: Page, live_server: Any, demo_store: LocalChain
) -> None:
    """The site's CSP blocks a <script> with the file's text inlined (add_script_tag), so axe is evaluated
    through the DevTools protocol; and the checks can fail: an unnamed button is reported as critical."""
    page.goto(f"{live_server.url}/store/hk/")
    with contextlib.suppress(PlaywrightError):  # Playwright may also report the blocked script as an error
        page.add_script_tag(path=str(AXE))
    assert page.evaluate("() => typeof window.axe") == "undefined"
    assert run_axe(page) is not None and page.evaluate("() => typeof window.axe") == "object"
    page.evaluate("() => document.querySelector('main').append(document.createElement('button'))")
    found = {v["id"]: v["impact"] for v in run_axe(page)}
    assert found.get("button-name") == "critical", found
    with pytest.raises(AssertionError, match="button-name"):
        assert_accessible(page, "planted")


def test_storefront_checkout_and_payment_states(page: Page, live_server: Any, demo_store: LocalChain) -> None:
    base = live_server.url
    page.goto(f"{base}/")
    assert_accessible(page, "home")
    page.goto(f"{base}/store/hk/")
    assert_accessible(page, "storefront")
    shoot_both(page, "a11y-storefront")
    page.locator("form[action*='cart/add'] button[type=submit]").first.click()
    page.goto(f"{base}/store/hk/cart/")
    assert_accessible(page, "cart")
    shoot_both(page, "a11y-cart")
    page.goto(f"{base}/store/hk/checkout/")
    expect(page.locator("input[type=radio]").first).to_be_visible()
    assert_accessible(page, "checkout")
    shoot_both(page, "a11y-checkout")
    page.locator("input[type=radio]").first.check()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))
    expect(page.locator("#pay")).to_have_attribute("data-state", "open")
    assert_accessible(page, "pay open")

    # Confirming: the watcher has seen the transfer with 1 of 3 confirmations.
    request = PaymentRequest.objects.get()
    demo_store.pay(request.pay_to, int(request.amount_due_base_units))
    demo_store.scan()
    expect(page.locator("#pay")).to_have_attribute("data-state", "confirming", timeout=10_000)
    expect(page.locator("#progress")).to_be_visible()
    assert_accessible(page, "pay confirming")
    shoot_both(page, "pay-confirming")

    demo_store.settle()
    expect(page.locator("#pay")).to_have_attribute("data-state", "paid", timeout=10_000)
    expect(page.locator("#receipt")).to_be_visible()
    assert_accessible(page, "pay paid")

    page.get_by_role("link", name="Back to your order").click()
    expect(page.locator(".timeline-item").first).to_be_visible()
    assert_accessible(page, "order paid")
    page.goto(f"{base}/orders/")
    assert_accessible(page, "order history")


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_payment_page_underpaid_and_expired(
    page: Page, live_server: Any, demo_store: LocalChain, language: str
) -> None:
    merchant = Merchant.objects.get(slug="acme")
    underpaid = create_request(merchant, amount="1680.00", order_reference="A11Y-UNDER", metadata={"return_url": "/"})
    expired = create_request(
        merchant, amount="1730.40", currency="MOP", order_reference="A11Y-EXP", metadata={"return_url": "/"}
    )
    page.goto(f"{live_server.url}/pay/{underpaid.pk}/")
    if language != "en":
        page.locator(f".lang-switch button[value='{language}']").click()
    expect(page.locator("html")).to_have_attribute("lang", language)

    demo_store.pay(underpaid.pay_to, int(underpaid.amount_due_base_units) // 3)
    demo_store.settle()
    expect(page.locator("#pay")).to_have_attribute("data-state", "underpaid", timeout=10_000)
    assert_accessible(page, f"pay underpaid {language}")

    PaymentRequest.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    watcher.scan_once()
    page.goto(f"{live_server.url}/pay/{expired.pk}/")
    expect(page.locator("#pay")).to_have_attribute("data-state", "expired")
    expect(page.locator(".pay-network")).to_contain_text("MOP$1,730.40")
    assert_accessible(page, f"pay expired {language}")


def test_merchant_dashboard_and_ops_console(page: Page, live_server: Any, local_chain: LocalChain) -> None:
    merchant = Merchant.objects.get(slug="acme")
    for i, amount in enumerate(("388.00", "1280.00")):
        request = create_request(merchant, amount=amount, order_reference=f"A11Y-{i}")
        local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    short = create_request(merchant, amount="50.00", order_reference="A11Y-SHORT")
    local_chain.pay(short.pay_to, int(short.amount_due_base_units) // 2)
    local_chain.settle()
    PaymentRequest.objects.filter(pk=short.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    watcher.scan_once()  # expired with less than due: needs review, in the ops queue
    user = get_user_model().objects.create_user("a11y-merchant", password=PASSWORD)
    merchant.members.add(user)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="stablepay"))
    totp_device(user)

    page.emulate_media(reduced_motion="reduce")
    page.goto(f"{live_server.url}/merchant/")
    assert_accessible(page, "sign in")
    page.fill("#id_username", "a11y-merchant")
    page.fill("#id_password", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r"/accounts/two-factor/"))  # all of stablepay's permissions: a second factor
    assert_accessible(page, "second factor")
    pass_second_factor(page, user)
    page.wait_for_url(re.compile(r"/merchant/$"))
    expect(page.locator("#volume-chart")).to_have_attribute("data-rendered", "true")
    expect(page.locator("main")).to_contain_text("HK$1,280.00")
    assert_accessible(page, "merchant overview")
    shoot_both(page, "a11y-merchant-overview")
    for path in ("/merchant/payments/", "/merchant/settlements/", "/merchant/settings/"):
        page.goto(f"{live_server.url}{path}")
        assert_accessible(page, f"merchant {path}")
    page.goto(f"{live_server.url}/merchant/payments/")
    page.locator("#payments-table tbody tr th a").first.click()
    expect(page.locator("#transfers-title")).to_be_visible()
    assert_accessible(page, "merchant payment detail")

    page.goto(f"{live_server.url}/ops/")
    expect(page.locator("main")).to_contain_text("A11Y-SHORT")
    assert_accessible(page, "ops queue")
    page.goto(f"{live_server.url}/ops/requests/{short.pk}/")
    expect(page.locator(".confirm-meter meter").first).to_be_visible()
    assert_accessible(page, "ops request")
    shoot_both(page, "a11y-ops-request")
