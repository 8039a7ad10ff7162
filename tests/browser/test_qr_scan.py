"""The payment page's QR code read as a shopper's phone reads it (issue 15): real Chromium at phone and
desktop sizes, in English and Traditional Chinese, in the state that shows the QR (open; once the full
amount has arrived and while a top-up is due it is gone), a screenshot of the viewport as the person sees it, and a
real decoder (zxing-cpp) on its pixels. The decoded text must be exactly the API's `payment_uri`; around
the code, at least 4 modules of quiet zone; the code big enough for a camera at arm's length; and beside
it, the exact amount and the network to check in the wallet before sending.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from stablepay.ledger.representation import payment_request_data
from stablepay.models import Merchant, PaymentRequest
from stablepay.money import base_units_to_decimal, format_token
from tests.browser.qr_read import quiet_zone_modules, read_qr_codes
from tests.support.browser import ARTIFACTS
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# CSS viewport, the device's pixel ratio, and the smallest symbol (quiet zone excluded) in CSS pixels.
# A desktop screen is scanned by a phone held at arm's length (~60 cm): by the usual 10:1 rule the code
# wants ~6 cm, about 230 CSS px at 96 dpi. On a phone the code may take no more than the screen's width.
DEVICES = {
    "phone": ({"width": 390, "height": 844}, 3, 200),
    "small-phone": ({"width": 320, "height": 640}, 2, 200),
    "desktop": ({"width": 1280, "height": 800}, 1, 230),
}
LANGUAGES = {"en": "en-GB", "zh-hant": "zh-HK"}  # the browser's language: the page follows Accept-Language
CHECK_TEXT = {
    "en": "Before you send, check that your wallet shows exactly {amount} on the {chain} network (chain id {id}).",
    "zh-hant": "轉帳前，請確認錢包顯示的金額正是 {amount}，網絡為 {chain}（鏈 ID {id}）。",  # noqa: RUF001
}


@pytest.fixture
def shop_request(local_chain: LocalChain) -> PaymentRequest:
    merchant = Merchant.objects.get(slug="acme")
    return create_request(merchant, amount="1680.00", currency="HKD", order_reference="HK-2026-01680")


@pytest.fixture(params=list(DEVICES))
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(LANGUAGES))
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shopper_page(browser: Browser, device: str, language: str) -> Iterator[Page]:
    viewport, scale, _ = DEVICES[device]
    mobile = device != "desktop"
    context = browser.new_context(
        viewport=viewport,
        device_scale_factor=scale,
        is_mobile=mobile,
        has_touch=mobile,
        locale=LANGUAGES[language],
    )
    yield context.new_page()
    context.close()


def scan_as_a_phone(page: Page, name: str) -> Any:
    """Scrolls the QR into the middle of the screen, screenshots the viewport (what the person sees) and
    decodes it. Returns the one code found, with the screenshot."""
    page.locator("#pay-qr").evaluate("el => el.scrollIntoView({block: 'center', inline: 'center'})")
    page.wait_for_timeout(100)
    png = page.screenshot()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"qr-{name}.png").write_bytes(png)
    image, codes = read_qr_codes(png)
    assert len(codes) == 1, f"{name}: the decoder found {len(codes)} QR codes in test-artifacts/qr-{name}.png"
    return image, codes[0]


def test_the_qr_on_the_payment_page_scans_to_the_payment_uri(
    shopper_page: Page,
    live_server: Any,
    local_chain: LocalChain,
    shop_request: PaymentRequest,
    device: str,
    language: str,
) -> None:
    page = shopper_page
    viewport, scale, min_symbol_css = DEVICES[device]
    uri = payment_request_data(shop_request)["payment_uri"]  # exactly what the API returns
    chain = local_chain.chain
    due = format_token(base_units_to_decimal(int(shop_request.amount_due_base_units), 6), "HKDX")
    check = CHECK_TEXT[language].format(amount=due, chain=chain.name, id=chain.chain_id)

    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#pay")).to_have_attribute("data-state", "open")

    def look(state: str) -> None:
        name = f"{device}-{language}-{state}"
        image, qr = scan_as_a_phone(page, name)
        assert qr.text == uri, name
        # A camera needs a light margin round the code, and modules it can resolve from a distance.
        assert quiet_zone_modules(image, qr) >= 4, f"{name}: less than 4 modules of quiet zone"
        symbol_css = (qr.right - qr.left) / scale
        assert symbol_css >= min_symbol_css, f"{name}: the code is {symbol_css:.0f} CSS px wide"
        # Nothing cut off: the code and its caption on screen below the sticky header, no sideways scrolling.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"], name
        header = page.evaluate("() => document.querySelector('.site-header').getBoundingClientRect().bottom")
        for part in ("#pay-qr .qr svg", "#qr-check"):
            box = page.locator(part).bounding_box()
            assert box is not None, (name, part)
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (name, part, box)
            assert box["y"] >= header and box["y"] + box["height"] <= viewport["height"], (name, part, box)
        # Next to the code, in words: the exact amount and the network to check before sending.
        expect(page.locator("#qr-check")).to_be_visible()
        expect(page.locator("#qr-check")).to_have_text(check)

    look("open")

    # Paid in full but not yet confirmed: the code is gone, so nobody scans it and pays twice.
    local_chain.pay(shop_request.pay_to, int(shop_request.amount_due_base_units))
    local_chain.scan()
    expect(page.locator("#pay")).to_have_attribute("data-state", "confirming", timeout=10_000)
    expect(page.locator("#pay-qr")).to_be_hidden()
    png = page.screenshot(full_page=True)
    (ARTIFACTS / f"qr-{device}-{language}-confirming.png").write_bytes(png)
    assert read_qr_codes(png)[1] == []


def test_the_qr_hides_while_a_top_up_is_due(
    page: Page, live_server: Any, local_chain: LocalChain, shop_request: PaymentRequest
) -> None:
    """Part paid: the code (which holds the full amount) is gone, so no screenshot holds a code to scan."""
    page.goto(f"{live_server.url}/pay/{shop_request.pk}/")
    expect(page.locator("#pay")).to_have_attribute("data-state", "open")
    ARTIFACTS.mkdir(exist_ok=True)
    codes = read_qr_codes(page.screenshot(full_page=True))[1]
    assert [qr.text for qr in codes] == [payment_request_data(shop_request)["payment_uri"]]
    local_chain.pay(shop_request.pay_to, int(shop_request.amount_due_base_units) // 2)
    local_chain.scan()
    expect(page.locator("#pay")).to_have_attribute("data-state", "underpaid", timeout=10_000)
    expect(page.locator("#pay-qr")).to_be_hidden()
    png = page.screenshot(full_page=True)
    (ARTIFACTS / "qr-desktop-en-underpaid.png").write_bytes(png)
    assert read_qr_codes(png)[1] == []
