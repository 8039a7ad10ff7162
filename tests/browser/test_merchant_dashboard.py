"""A merchant signs in and reads the dashboard in real Chromium: the overview with its chart drawn, the
settlement report and its CSV, and the settings, on a 1280px laptop and a 390px phone.

The payments are real transfers on anvil, recorded by the watcher; their times are then spread over the
last 30 days (request, block and paid times moved together) so the chart has a month to show.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone
from playwright.sync_api import Page, expect

from stablepay.merchant import selectors
from stablepay.models import Merchant, PaymentRequest, Transfer, WebhookDelivery
from tests.support.ledger_triggers import ledger_unguarded
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "merchant-demo-password"
# (days ago, amount, currency, token, seconds the shopper took to pay)
HISTORY = [
    (0, "388.00", "HKD", "HKDX", 42),
    (0, "128.00", "MOP", "HKDX", 65),
    (0, "1250.00", "HKD", "USDC", 31),
    (1, "96.00", "HKD", "HKDX", 54),
    (2, "560.00", "MOP", "USDC", 88),
    (3, "210.00", "HKD", "HKDX", 47),
    (5, "1480.00", "HKD", "HKDX", 120),
    (6, "75.50", "MOP", "HKDX", 39),
    (8, "640.00", "HKD", "USDC", 71),
    (11, "305.00", "HKD", "HKDX", 58),
    (13, "920.00", "MOP", "HKDX", 44),
    (16, "188.00", "HKD", "HKDX", 36),
    (20, "2100.00", "HKD", "USDC", 95),
    (24, "415.00", "HKD", "HKDX", 62),
    (27, "730.00", "MOP", "HKDX", 50),
]


@pytest.fixture
def shop_history(local_chain: LocalChain) -> Merchant:
    merchant = Merchant.objects.get(slug="acme")
    Merchant.objects.filter(pk=merchant.pk).update(
        webhook_url="https://shop.example.com/hooks/stablepay", webhook_secret="whsec_demo_0123456789abcdefghij"
    )
    merchant.refresh_from_db()
    chain = local_chain.chain
    chain.explorer_tx_url = "https://explorer.example.com/tx/{tx}"
    chain.save()
    requests = []
    for i, (_, amount, currency, token, _) in enumerate(HISTORY):
        request = create_request(
            merchant, amount=amount, currency=currency, token=token, order_reference=f"HK-2026-{1040 + i:05d}"
        )
        local_chain.pay(request.pay_to, int(request.amount_due_base_units), symbol=token)
        requests.append(request)
    local_chain.settle()
    now = timezone.now()
    for i, (request, (days, *_, took)) in enumerate(zip(requests, HISTORY, strict=True)):
        request.refresh_from_db()
        assert request.status == "paid"
        shift = timedelta(days=days, minutes=23 * i) if days else timedelta(minutes=9 * i)
        PaymentRequest.objects.filter(pk=request.pk).update(
            paid_at=F("paid_at") - shift, created_at=F("created_at") - shift - timedelta(seconds=took)
        )
        with ledger_unguarded():  # back-dating history on purpose: the ledger itself refuses it
            Transfer.objects.filter(payment_request=request).update(block_timestamp=F("block_timestamp") - shift)
    # Open requests waiting for their shoppers.
    for ref, amount in (("HK-2026-01060", "268.00"), ("HK-2026-01061", "1020.00")):
        create_request(merchant, amount=amount, currency="HKD", token="HKDX", order_reference=ref)
    # The webhook log: most delivered, the newest retrying after a 503.
    WebhookDelivery.objects.filter(merchant=merchant).update(
        attempts=1, delivered_at=now, next_attempt_at=None, last_status_code=204
    )
    latest = WebhookDelivery.objects.filter(merchant=merchant).order_by("-created_at", "-pk").first()
    assert latest is not None
    WebhookDelivery.objects.filter(pk=latest.pk).update(
        attempts=2,
        delivered_at=None,
        next_attempt_at=now + timedelta(minutes=1),
        last_status_code=503,
        last_error="HTTP 503 Service Unavailable",  # as stablepay.webhooks.target writes it
    )
    user = get_user_model().objects.create_user("merchant", password=PASSWORD)
    merchant.members.add(user)
    return merchant


def sign_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/merchant/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/merchant/$"))
    page.fill("#id_username", "merchant")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/merchant/")


def follow(page: Page, name: str) -> None:
    """Click a link and wait for the next page to load (styles included)."""
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name=name, exact=True).click()


def phone_fits(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"


def chart_pixels(page: Page) -> int:
    """How many of the canvas's pixels are drawn (not transparent)."""
    return int(
        page.evaluate(
            """() => {
              const c = document.getElementById('volume-chart');
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
              return n;
            }"""
        )
    )


def test_merchant_reads_the_dashboard(page: Page, live_server, shop_history: Merchant, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.emulate_media(reduced_motion="reduce")  # the chart draws at once, no animation to wait for
    sign_in(page, live_server.url)

    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    canvas = page.locator("#volume-chart")
    expect(canvas).to_have_attribute("data-rendered", "true")
    expect(canvas).to_have_attribute("aria-label", re.compile(r"last 30 days"))
    data = page.evaluate("() => Chart.getChart(document.getElementById('volume-chart')).data.datasets[0].data")
    assert len(data) == 30
    today = selectors.hk_today()
    paid_days = {
        selectors.hk_date(p.paid_at) for p in PaymentRequest.objects.filter(merchant=shop_history, status="paid")
    }
    assert {i for i, v in enumerate(data) if v > 0} == {29 - (today - day).days for day in paid_days}
    assert len(paid_days) >= 12
    assert chart_pixels(page) > 5000
    overview = selectors.merchant_overview(merchant=shop_history)
    expect(page.locator("[data-period='30d'] .kpi-value")).to_contain_text(f"{overview.periods[2].hkd:,.2f}")
    expect(page.locator("#recent-payments a.hash").first).to_have_attribute(
        "href", re.compile(r"^https://explorer\.example\.com/tx/0x[0-9a-f]{64}$")
    )
    expect(page.locator("#open-requests .item")).to_have_count(2)
    expect(page.locator(".timing")).to_contain_text("Seconds, not days")
    page.locator(".chart-table summary").click()
    expect(page.locator(".chart-table tbody tr")).to_have_count(30)
    page.locator(".chart-table summary").click()
    screenshot("overview-1280")

    follow(page, "Settlements")
    follow(page, "Last 30 days")
    expect(page.locator("#settlement-table tbody tr").first).to_be_visible()
    screenshot("settlements-1280")
    with page.expect_download() as download_info:
        page.locator("#csv-export").click()
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert len(rows) == len(HISTORY)
    paid = PaymentRequest.objects.filter(merchant=shop_history, status="paid")
    assert sum(int(r["amount_base_units"]) for r in rows) == sum(int(p.amount_paid_base_units) for p in paid)

    follow(page, "Settings")
    expect(page.locator("#deliveries")).to_contain_text("Retrying")
    screenshot("settings-1280")

    follow(page, "Payments")
    page.locator("#id_status").select_option("paid")
    page.get_by_role("button", name="Filter").click()
    page.locator("#payments-table tbody tr th a").first.click()
    expect(page.locator("#transfers-title")).to_be_visible()
    expect(page.locator("h1")).to_have_text(re.compile(r"HK-2026-\d{5}"))
    screenshot("payment-1280")

    page.set_viewport_size({"width": 390, "height": 844})
    follow(page, "Overview")
    expect(canvas).to_have_attribute("data-rendered", "true")
    assert chart_pixels(page) > 2000
    phone_fits(page)
    nav_fits = page.evaluate(
        "() => { const n = document.querySelector('.merchant-nav'); return n.scrollWidth <= n.clientWidth; }"
    )
    assert nav_fits, "the dashboard's links do not fit a phone's width"
    screenshot("overview-390")
    follow(page, "Settlements")
    follow(page, "Last 30 days")
    phone_fits(page)
    screenshot("settlements-390")
    follow(page, "Settings")
    phone_fits(page)
    screenshot("settings-390")
