"""In Chromium: a merchant rotates the webhook signing secret on /merchant/settings/, sees the new secret
once (and can copy it), is told until when the old one still signs, and never sees it again on reload.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from stablepay.models import Merchant
from tests.support.local_chain import LocalChain

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "rotate-the-secret-password"
OLD = "whsec_browser_old_0123456789abcdef"


def test_a_merchant_rotates_the_signing_secret(page: Page, live_server, local_chain: LocalChain, screenshot) -> None:  # type: ignore[no-untyped-def]
    merchant = Merchant.objects.get(slug="acme")
    merchant.webhook_url, merchant.webhook_secret = "https://shop.example.com/hooks/stablepay", OLD
    merchant.save()
    user = get_user_model().objects.create_user("rotator", password=PASSWORD)
    merchant.members.add(user)

    page.goto(f"{live_server.url}/merchant/settings/")
    page.fill("#id_username", "rotator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/merchant/settings/")
    expect(page.locator("#webhook-secret-state")).to_contain_text("shown only once")
    assert OLD not in page.content()

    page.check("#id_new_secret")
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name="Save webhook settings").click()
    merchant.refresh_from_db()
    new = merchant.webhook_secret
    assert new != OLD and merchant.webhook_secret_previous == OLD
    expect(page.locator("#webhook-secret")).to_have_text(new)
    expect(page.get_by_text("Copy it now: it is shown only once")).to_be_visible()
    expect(page.locator("#webhook-secret-grace")).to_contain_text("The previous secret also signs each delivery")
    screenshot("new-secret")

    page.reload(wait_until="load")
    assert new not in page.content() and OLD not in page.content()
    expect(page.locator("#webhook-secret-state")).to_be_visible()
    expect(page.locator("#webhook-secret-grace")).to_be_visible()  # still within the grace period
