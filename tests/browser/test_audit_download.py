"""The "Download audit bundle" buttons in a real browser: a merchant member on the payment page and an ops
user on the console's request page each download the file, and it verifies (signature and chain)."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from playwright.sync_api import Page, expect

from stablepay.models import Merchant, PaymentRequest
from tests.support.auth import pass_second_factor_if_required
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "audit-download-password-42"


@pytest.fixture
def paid(local_chain: LocalChain, merchant: Merchant) -> PaymentRequest:
    pr = create_request(merchant, order_reference="AUDIT-UI-1")
    local_chain.pay(pr.pay_to, int(pr.amount_due_base_units))
    local_chain.settle()
    pr.refresh_from_db()
    assert pr.status == "paid"
    return pr


def sign_in(page: Page, base_url: str, path: str, username: str) -> None:
    page.goto(f"{base_url}{path}")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor_if_required(page, username)
    page.wait_for_url(f"{base_url}{path}")


def download_and_verify(page: Page, tmp_path: Path, pr: PaymentRequest) -> None:
    with page.expect_download() as info:
        page.get_by_role("link", name="Download audit bundle").click()
    download = info.value
    assert download.suggested_filename == f"stablepay-audit-{pr.pk}.json"
    path = tmp_path / download.suggested_filename
    download.save_as(str(path))
    out = StringIO()
    call_command("stablepay_verify_bundle", str(path), stdout=out)  # exits 1 (SystemExit) on any problem
    assert '"ok": true' in out.getvalue()


def test_merchant_and_ops_download_a_bundle_that_verifies(
    page: Page,
    live_server,  # type: ignore[no-untyped-def]
    paid: PaymentRequest,
    merchant: Merchant,
    tmp_path: Path,
    screenshot,  # type: ignore[no-untyped-def]
) -> None:
    member = User.objects.create_user("mia", password=PASSWORD)
    merchant.members.add(member)
    sign_in(page, live_server.url, f"/merchant/payments/{paid.pk}/", "mia")
    expect(page.locator("#audit-download")).to_be_visible()
    screenshot("merchant-payment")
    download_and_verify(page, tmp_path, paid)

    page.context.clear_cookies()
    ops = User.objects.create_user("olivia", password=PASSWORD)
    ops.user_permissions.add(Permission.objects.get(content_type__app_label="stablepay", codename="ops_console"))
    sign_in(page, live_server.url, f"/ops/requests/{paid.pk}/", "olivia")
    expect(page.locator("#audit-download")).to_be_visible()
    screenshot("ops-request")
    download_and_verify(page, tmp_path, paid)
