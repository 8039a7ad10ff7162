"""The production stack exactly as the README's Production section starts it (issue 15): its environment
(DEBUG=false, SECRET_KEY, STABLEPAY_SECRETS_KEY, ALLOWED_HOSTS, HTTPS=true, STABLEPAY_BASE_URL, PostgreSQL,
Redis), `migrate`, `collectstatic --noinput`, `gunicorn shop.wsgi --workers 4`; gunicorn's own TLS stands in
for the TLS proxy (tests/support/production.py). The rest of the suite renders pages with the development
set-up (plain static storage, the live server's static handler), which is why it never noticed that
nothing served /static/ in production.

Over HTTP: the store, a payment page and the merchant dashboard answer 200, and so does every file they
reference (<link href>, <script src>, <img src>, and each stylesheet's url()s), under its hashed name with a
year-long immutable cache, in Brotli or gzip when asked; the pages themselves come gzipped.

In Chromium: the same three pages load with no failed request, no CSP violation and no script error; the
payment page's scripts run (the countdown ticks, the live status is polled, the wallet button appears for
an injected wallet) and its stylesheets apply; the dashboard's chart is drawn by Chart.js.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect, sync_playwright

from stablepay.models import Merchant
from tests.support.browser import ARTIFACTS
from tests.support.chromium import ARGS, CHROMIUM
from tests.support.local_chain import LocalChain, create_request, subprocess_database_url
from tests.support.production import ProductionStack
from tests.support.services import redis_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "production-stack-password-42"
HASHED = re.compile(r"\.[0-9a-f]{12}\.\w+$")  # ManifestStaticFilesStorage's name.<12 hex>.ext
TEXT_TYPES = ("text/css", "text/javascript", "application/javascript", "image/svg+xml")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)""")
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""
# A wallet extension's provider, enough for wallet.js to offer its button (nothing is paid here).
WALLET = "window.ethereum = { request: async () => { throw new Error('test'); }, on() {}, removeListener() {} };"


class Assets(HTMLParser):
    """The files a page references: stylesheets, icons, scripts, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        url = a.get("href") if tag == "link" else a.get("src") if tag in ("script", "img", "source") else None
        if url:
            self.urls.append(url)


def assets_of(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


@dataclass
class Site:
    stack: ProductionStack
    pay_path: str
    username: str

    @property
    def url(self) -> str:
        return self.stack.url

    def signed_in(self) -> requests.Session:
        """A session signed in to the dashboard through the login form, as a merchant does."""
        client = self.stack.session()
        login = f"{self.url}/accounts/login/"
        form = client.get(login, params={"next": "/merchant/"}, timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token, form.status_code
        answer = client.post(
            f"{login}?next=/merchant/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token[1],
                "next": "/merchant/",
            },
            headers={"Referer": login},  # Django's CSRF check over HTTPS wants it
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302 and answer.headers["Location"] == "/merchant/", answer.text[:500]
        return client


@pytest.fixture
def site(local_chain: LocalChain, tmp_path: Path, collected_static: Path) -> Iterator[Site]:
    call_command("shop_seed", merchant="acme", verbosity=0)  # the Hong Kong and Macau storefronts
    merchant = Merchant.objects.get(slug="acme")
    request = create_request(merchant, amount="388.00", order_reference="PROD-1")
    user = get_user_model().objects.create_user("prod-merchant", password=PASSWORD)
    merchant.members.add(user)
    database_url = subprocess_database_url()
    with ProductionStack(
        database_url=database_url, redis_url=redis_url(), workdir=tmp_path, static_root=collected_static
    ) as stack:
        yield Site(stack=stack, pay_path=f"/pay/{request.pk}/", username="prod-merchant")


def test_collectstatic_and_every_asset_of_the_three_pages(site: Site) -> None:
    stack = site.stack
    manifest = stack.static_root / "staticfiles.json"
    assert manifest.exists(), "collectstatic wrote no manifest"
    merchant_client = site.signed_in()
    pages = {
        "store": (stack.session(), "/store/hk/"),
        "payment page": (stack.session(), site.pay_path),
        "dashboard": (merchant_client, "/merchant/"),
    }
    checked: dict[str, str] = {}
    for name, (client, path) in pages.items():
        page = client.get(f"{site.url}{path}", headers={"Accept-Encoding": "gzip"}, allow_redirects=False, timeout=30)
        assert page.status_code == 200, (name, page.status_code, page.text[:300])
        assert page.headers["Content-Encoding"] == "gzip", name  # pages are compressed too
        assert "default-src 'self'" in page.headers["Content-Security-Policy"], name
        assert "max-age=31536000" in page.headers["Strict-Transport-Security"], name  # HTTPS=true
        urls = [urljoin(page.url, u) for u in assets_of(page.text)]
        static = [u for u in urls if urlsplit(u).path.startswith("/static/")]
        assert static, f"{name} references no static file"
        assert all(urlsplit(u).netloc == urlsplit(site.url).netloc for u in urls), urls  # nothing off-site
        for url in urls:
            checked.setdefault(url, name)
    assert any("/vendor/chart.umd.min." in u for u in checked), "the dashboard's Chart.js is not referenced"
    assert any("/shop/products/" in u for u in checked), "the store's product images are not referenced"

    client = stack.session()
    queue = list(checked)
    while queue:
        url = queue.pop()
        path = urlsplit(url).path
        plain = client.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
        assert plain.status_code == 200, (checked[url], url, plain.status_code)
        assert "Content-Encoding" not in plain.headers, url
        assert HASHED.search(path), f"{url} is not a hashed name: {{% static %}} bypassed the manifest"
        assert plain.headers["Cache-Control"] == "max-age=315360000, public, immutable", url
        assert plain.headers["X-Content-Type-Options"] == "nosniff", url
        content_type = plain.headers["Content-Type"].split(";")[0]
        if content_type in TEXT_TYPES and len(plain.content) > 256:
            for encoding in ("br", "gzip"):
                packed = client.get(url, headers={"Accept-Encoding": encoding}, timeout=30)
                assert packed.headers.get("Content-Encoding") == encoding, (url, encoding)
                assert packed.headers["Vary"] == "Accept-Encoding", url
                assert int(packed.headers["Content-Length"]) < len(plain.content), (url, encoding)
                assert packed.content == plain.content, (url, encoding)  # decoded by requests
        if content_type == "text/css":
            for ref in CSS_URL.findall(plain.text):
                if not ref.startswith(("data:", "#")):
                    target = urljoin(url, ref)
                    if target not in checked:
                        checked[target] = f"{url}"
                        queue.append(target)
    # The unhashed names answer too (the admin's scripts build some icon URLs without {% static %}), but
    # with a short cache; an unknown file is a 404, not a page.
    unhashed = client.get(f"{site.url}/static/shop/site.css", timeout=30)
    assert unhashed.status_code == 200 and unhashed.headers["Cache-Control"] == "max-age=60, public"
    assert client.get(f"{site.url}/static/shop/nothing-here.css", timeout=30).status_code == 404


def test_the_three_pages_work_in_chromium(site: Site) -> None:
    cookies = site.signed_in().cookies
    session = {"name": "sessionid", "value": cookies["sessionid"], "url": site.url, "secure": True, "httpOnly": True}
    # In a thread of its own: the browser tests' session-wide Playwright keeps its event loop on this one,
    # and a second sync Playwright refuses to start beside it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        failed, violations, errors, seen = pool.submit(_drive_the_three_pages, site, session).result()
    assert failed == [], failed
    assert violations == [], violations
    assert errors == [], errors
    assert any(urlsplit(u).path.startswith("/static/") for u in seen)


def _drive_the_three_pages(site: Site, session: dict[str, Any]) -> tuple[list[str], list[str], list[str], list[str]]:
    """Load the store, the payment page and the dashboard in Chromium: failed requests, CSP violations,
    script errors, and the URLs that answered."""
    failed: list[str] = []
    errors: list[str] = []
    seen: list[str] = []
    violations: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, f"--ignore-certificate-errors-spki-list={site.stack.spki_pin}"]
        )
        context = browser.new_context(viewport={"width": 412, "height": 823}, is_mobile=True, locale="en-GB")
        context.add_init_script(RECORD_VIOLATIONS)
        context.add_init_script(WALLET)
        page = context.new_page()

        def request_failed(request: Any) -> None:
            if request.resource_type == "fetch" and request.failure == "net::ERR_ABORTED":
                return  # a live-status poll still in flight when the test moved on to the next page
            failed.append(f"{request.url}: {request.failure}")

        page.on("requestfailed", request_failed)
        page.on("response", lambda r: seen.append(r.url) if r.status < 400 else failed.append(f"{r.url}: {r.status}"))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def visit(path: str) -> None:
            response = page.goto(f"{site.url}{path}", wait_until="load")
            assert response is not None and response.status == 200, path
            assert response.headers["content-encoding"] == "gzip", path
            # Every stylesheet arrived and applies (a 404'd sheet has no rules).
            sheets = page.evaluate("() => [...document.styleSheets].map((s) => [s.href, s.cssRules.length])")
            assert sheets and all(rules > 0 for _, rules in sheets), sheets
            assert page.evaluate("() => getComputedStyle(document.querySelector('.site-header')).display") != "inline"

        try:
            visit("/store/hk/")
            images = page.locator("img.product-image")
            assert images.count() > 0
            images.first.scroll_into_view_if_needed()
            page.wait_for_function(
                "() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length > 0"
            )
            violations += page.evaluate("() => window.__csp")

            visit(site.pay_path)
            expect(page.locator("#countdown")).to_have_text(re.compile(r"^\d+:\d{2}"))  # pay.js ran
            first = page.locator("#countdown").inner_text()
            expect(page.locator("#countdown")).not_to_have_text(first, timeout=5000)  # and it ticks
            for _ in range(100):  # the live status is polled (every 1.5 s)
                if any(u.endswith("/status/") for u in seen):
                    break
                page.wait_for_timeout(100)
            assert any(u.endswith("/status/") for u in seen), seen
            expect(page.locator("#wallet-pay")).to_be_visible()  # wallet.js found the injected wallet
            qr = page.locator("#pay-qr svg").bounding_box()
            assert qr and qr["width"] > 100 and qr["height"] > 100, qr  # pay.css applied to the QR
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "production-stack-payment-page.png"), full_page=True)
            violations += page.evaluate("() => window.__csp")

            context.add_cookies([session])
            visit("/merchant/")
            expect(page.locator("#volume-chart")).to_have_attribute("data-rendered", "true")  # Chart.js drew it
            page.screenshot(path=str(ARTIFACTS / "production-stack-dashboard.png"), full_page=True)
            violations += page.evaluate("() => window.__csp")
        finally:
            context.close()
            browser.close()
    return failed, violations, errors, seen
