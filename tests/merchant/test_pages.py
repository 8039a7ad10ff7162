"""The merchant dashboard pages: sign-in, membership, the overview, settings and their safety rails."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from stablepay.merchant import selectors
from stablepay.models import ChangeProposal, ChangeState, Merchant, PaymentRequest, Transfer, WebhookDelivery
from stablepay.registry.api_keys import hash_api_key
from stablepay.webhooks import delivery as webhooks
from tests.support.local_chain import LocalChain, create_request
from tests.support.merchant import Ledger, login, make_user

pytestmark = pytest.mark.django_db

PAGES = ["/merchant/", "/merchant/payments/", "/merchant/settlements/", "/merchant/settings/"]


# Access -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [*PAGES, "/merchant/settlements.csv?date_from=2026-01-01&date_to=2026-01-02"])
def test_anonymous_users_are_sent_to_the_login_page(local_chain: LocalChain, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", PAGES)
def test_a_member_sees_each_page(member_client: Client, path: str) -> None:
    response = member_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme HK" in html
    assert 'action="/accounts/logout/"' in html  # the sign-out form
    assert 'aria-current="page"' in html


def test_a_user_without_a_merchant_gets_a_clear_404(local_chain: LocalChain) -> None:
    client = login(make_user("nobody"))
    response = client.get("/merchant/")
    assert response.status_code == 404
    assert "not a member of any merchant" in response.content.decode()


def test_a_member_of_b_gets_404_for_a(outsider_client: Client, ledger: Ledger, merchant: Merchant) -> None:
    paid = ledger["hkd_hkdx"]
    for path in PAGES:
        assert outsider_client.get(path, {"m": "acme"}).status_code == 404
    assert outsider_client.get(f"/merchant/payments/{paid.pk}/").status_code == 404
    assert outsider_client.get("/merchant/payments/not-a-uuid/").status_code == 404
    # Its own pages show nothing of A's.
    html = outsider_client.get("/merchant/").content.decode()
    assert "Other Macau" in html and "hkd_hkdx" not in html and "Acme HK" not in html
    html = outsider_client.get("/merchant/payments/").content.decode()
    assert "hkd_hkdx" not in html
    # Nor can it change A: settings posted "for acme" are refused, and A is untouched.
    before = Merchant.objects.get(slug="acme")
    response = outsider_client.post(
        "/merchant/settings/payments/", {"m": "acme", "payment_tolerance_percent": "5", "expiry_minutes": "60"}
    )
    assert response.status_code == 404
    assert outsider_client.post("/merchant/settings/api-key/", {"m": "acme", "confirm": "on"}).status_code == 404
    after = Merchant.objects.get(slug="acme")
    assert (after.payment_tolerance_percent, after.expiry_minutes, after.api_key_hash) == (
        before.payment_tolerance_percent,
        before.expiry_minutes,
        before.api_key_hash,
    )


def test_a_member_of_b_cannot_redeliver_a_webhook_of_a(outsider_client: Client, merchant: Merchant) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url="https://hooks.example.com/a", webhook_secret="s" * 20)
    merchant.refresh_from_db()
    create_request(merchant)
    delivery = WebhookDelivery.objects.get()
    response = outsider_client.post(f"/merchant/webhooks/{delivery.pk}/redeliver/")
    assert response.status_code == 404


def test_a_user_of_two_merchants_switches_between_them(
    merchant: Merchant, other_merchant: Merchant, ledger: Ledger
) -> None:
    client = login(make_user("carol", merchant, other_merchant))
    first = client.get("/merchant/").content.decode()
    assert 'id="merchant-switch"' in first and "Acme HK" in first  # by name: Acme HK comes first
    assert "Other Macau" in client.get("/merchant/", {"m": "other"}).content.decode()
    # The choice is remembered...
    assert 'value="other" selected' in client.get("/merchant/settings/").content.decode()
    # ...but a change must name its merchant: the one on screen, not whatever another tab chose.
    response = client.post("/merchant/settings/payments/", {"payment_tolerance_percent": "1", "expiry_minutes": "20"})
    assert response.status_code == 400
    response = client.post(
        "/merchant/settings/payments/", {"m": "acme", "payment_tolerance_percent": "1", "expiry_minutes": "20"}
    )
    assert response.status_code == 302
    assert Merchant.objects.get(slug="acme").expiry_minutes == 20
    assert Merchant.objects.get(slug="other").expiry_minutes == 15
    assert client.get("/merchant/", {"m": "nope"}).status_code == 404


def test_changes_are_post_only(member_client: Client) -> None:
    assert member_client.get("/merchant/settings/api-key/").status_code == 405
    assert member_client.get("/merchant/settings/webhook/").status_code == 405
    assert member_client.post("/merchant/").status_code == 405


def test_csrf_is_enforced_on_every_form(member: AbstractBaseUser, merchant: Merchant) -> None:
    client = login(member, enforce_csrf_checks=True)
    forms = {
        "/merchant/settings/payments/": {"payment_tolerance_percent": "2", "expiry_minutes": "30"},
        "/merchant/settings/webhook/": {"webhook_url": "https://hooks.example.com/x"},
        "/merchant/settings/api-key/": {"confirm": "on"},
    }
    for path, data in forms.items():
        assert client.post(path, data).status_code == 403, path
    merchant.refresh_from_db()
    assert merchant.expiry_minutes == 15 and merchant.webhook_url == ""
    # With the token from the page, the same post goes through.
    page = client.get("/merchant/settings/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token is not None
    response = client.post(
        "/merchant/settings/payments/",
        {"payment_tolerance_percent": "2", "expiry_minutes": "30", "csrfmiddlewaretoken": token.group(1)},
    )
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.expiry_minutes == 30


# Overview -----------------------------------------------------------------------------------------
def test_overview_totals_timing_and_lists(member_client: Client, ledger: Ledger) -> None:
    overview = selectors.merchant_overview(merchant=ledger["open"].merchant)
    today, week, month = overview.periods
    assert today.count == week.count == month.count == 7
    # HKD-equivalent: HKD prices as they are, MOP ones / 1.03: 10 + 19.95 + 12.35 + 78 + (103 + 10 + 25.50) / 1.03
    assert today.hkd == Decimal("254.77")
    assert [t.token for t in overview.tokens] == ["HKDX", "USDC"]
    hkdx = overview.tokens[0].figures[0]
    assert (hkdx.count, hkdx.amount_base_units) == (5, 10_000_000 + 19_950_000 + 12_345_678 + 100_000_000 + 9_708_738)
    assert sum(d.hkd for d in overview.daily) == month.hkd
    assert len(overview.daily) == 30 and overview.daily[-1].date == overview.today
    # Seconds, not days: every payment here settled within the test run.
    timing = overview.timing
    assert timing.count == 7 and timing.mined_count == 7
    assert timing.created_to_paid_median is not None and timing.created_to_paid_median < timedelta(minutes=1)
    assert timing.created_to_paid_p95 is not None and timing.created_to_paid_p95 >= timing.created_to_paid_median
    assert timing.mined_to_paid_median is not None and timing.mined_to_paid_median < timedelta(minutes=1)
    assert [r.order_reference for r in overview.open_requests] == ["open"]

    html = member_client.get("/merchant/").content.decode()
    assert "254.77" in html
    assert 'id="volume-chart"' in html and 'role="img"' in html and "aria-label=" in html
    assert 'id="volume-data"' in html and "<table" in html  # the chart's data, and its table fallback
    assert "Seconds, not days" in html
    assert "hkd_usdc" in html and "open" in html
    transfer = Transfer.objects.filter(payment_request=ledger["hkd_usdc"]).get()
    assert transfer.tx_hash[:6] in html  # recent payments show their transactions


def test_overview_explorer_links(member_client: Client, ledger: Ledger, local_chain: LocalChain) -> None:
    chain = local_chain.chain
    chain.explorer_tx_url = "https://explorer.example.com/tx/{tx}"
    chain.save()
    transfer = Transfer.objects.filter(payment_request=ledger["hkd_usdc"]).get()
    html = member_client.get("/merchant/").content.decode()
    assert f'href="https://explorer.example.com/tx/{transfer.tx_hash}"' in html
    detail = member_client.get(f"/merchant/payments/{ledger['hkd_usdc'].pk}/").content.decode()
    assert f'href="https://explorer.example.com/tx/{transfer.tx_hash}"' in detail


def test_timing_percentiles_follow_the_paid_times(ledger: Ledger) -> None:
    """created -> paid and mined -> paid come from the ledger's own timestamps."""
    now = timezone.now()
    for i, request in enumerate(ledger.paid()):
        mined = Transfer.objects.filter(payment_request=request).order_by("-block_timestamp").first()
        assert mined is not None
        PaymentRequest.objects.filter(pk=request.pk).update(
            created_at=mined.block_timestamp - timedelta(seconds=60),
            paid_at=mined.block_timestamp + timedelta(seconds=i + 1),
        )
    timing = selectors.merchant_overview(merchant=ledger["open"].merchant, now=now).timing
    # mined -> paid: 1..7 s, so the median is 4 s and p95 is 6.7 s (linear between ranks).
    assert timing.mined_to_paid_median == timedelta(seconds=4)
    assert timing.mined_to_paid_p95 == timedelta(seconds=6.7)
    assert timing.created_to_paid_median == timedelta(seconds=64)


def test_percentile_edges() -> None:
    values = [timedelta(seconds=s) for s in (1, 2, 3, 4)]
    assert selectors.percentile([], Fraction(1, 2)) is None
    assert selectors.percentile(values[:1], Fraction(95, 100)) == timedelta(seconds=1)
    assert selectors.percentile(values, Fraction(1, 2)) == timedelta(seconds=2.5)


def test_payment_list_and_detail(member_client: Client, ledger: Ledger) -> None:
    html = member_client.get("/merchant/payments/", {"status": "paid"}).content.decode()
    assert "hkd_usdc" in html and ">open<" not in html
    assert "accepted" in member_client.get("/merchant/payments/", {"q": "accept"}).content.decode()
    transfer = Transfer.objects.filter(payment_request=ledger["mop_usdc"]).get()
    found = member_client.get("/merchant/payments/", {"q": transfer.tx_hash}).content.decode()
    assert "mop_usdc" in found and "hkd_usdc" not in found
    detail = member_client.get(f"/merchant/payments/{ledger['mop_usdc'].pk}/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "3.174011" in text and "MOP$25.50" in text and "Confirmed" in text


# Settings -----------------------------------------------------------------------------------------
def test_webhook_settings(member_client: Client, merchant: Merchant) -> None:
    response = member_client.post("/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/sp"})
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.webhook_url == "https://hooks.example.com/sp"
    generated = merchant.webhook_secret
    assert generated.startswith("whsec_") and len(generated) > 30  # an endpoint always gets a secret

    member_client.post("/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/v2"})
    merchant.refresh_from_db()
    assert (merchant.webhook_url, merchant.webhook_secret) == ("https://hooks.example.com/v2", generated)

    member_client.post(
        "/merchant/settings/webhook/",
        {"webhook_url": "https://hooks.example.com/v2", "webhook_secret": "my-own-secret-0123456789"},
    )
    merchant.refresh_from_db()
    assert merchant.webhook_secret == "my-own-secret-0123456789"

    member_client.post(
        "/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/v2", "new_secret": "on"}
    )
    merchant.refresh_from_db()
    assert merchant.webhook_secret.startswith("whsec_") and merchant.webhook_secret != generated

    member_client.post("/merchant/settings/webhook/", {"webhook_url": ""})
    merchant.refresh_from_db()
    assert merchant.webhook_url == ""


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"webhook_url": "ftp://hooks.example.com/x"}, "Use an http or https URL."),
        ({"webhook_url": "not a url"}, "Enter a valid URL."),
        ({"webhook_url": "http://127.0.0.1:8000/x"}, "Use a public address"),
        ({"webhook_url": "https://10.0.0.5/x"}, "Use a public address"),
        ({"webhook_url": "https://localhost/x"}, "Use a public address"),
        ({"webhook_url": "https://hooks.example.com/x", "webhook_secret": "short"}, "at least 16"),
    ],
)
def test_webhook_settings_refuse_bad_input(
    member_client: Client, merchant: Merchant, data: dict[str, str], field_error: str, settings: Any
) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, "WEBHOOK_ALLOWED_HOSTS": ""}  # not even the suite's receivers
    response = member_client.post("/merchant/settings/webhook/", data)
    assert response.status_code == 400
    assert field_error in response.content.decode()
    merchant.refresh_from_db()
    assert merchant.webhook_url == ""


def test_payment_rules(member_client: Client, merchant: Merchant) -> None:
    """The expiry saves at once; a new tolerance (where money goes, issue 16) is only proposed."""
    response = member_client.post(
        "/merchant/settings/payments/", {"payment_tolerance_percent": "1.25", "expiry_minutes": "45"}
    )
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.payment_tolerance_percent, merchant.expiry_minutes) == (Decimal("0.5"), 45)
    pending = ChangeProposal.objects.get(merchant=merchant, state=ChangeState.PENDING)
    assert pending.changes == {"payment_tolerance_percent": {"from": "0.5", "to": "1.25"}}
    assert pending.actor == "user:alice"
    # New requests use the new expiry.
    request = create_request(merchant)
    assert request.expires_at - request.created_at == timedelta(minutes=45)
    for bad in (
        {"payment_tolerance_percent": "100", "expiry_minutes": "45"},
        {"payment_tolerance_percent": "-1", "expiry_minutes": "45"},
        {"payment_tolerance_percent": "0.125", "expiry_minutes": "45"},
        {"payment_tolerance_percent": "1", "expiry_minutes": "0"},
        {"payment_tolerance_percent": "1", "expiry_minutes": "1441"},
        {"payment_tolerance_percent": "abc", "expiry_minutes": "x"},
    ):
        assert member_client.post("/merchant/settings/payments/", bad).status_code == 400, bad
    merchant.refresh_from_db()
    assert (merchant.payment_tolerance_percent, merchant.expiry_minutes) == (Decimal("0.5"), 45)


def test_a_members_tolerance_change_needs_another_member(
    member_client: Client, member: AbstractBaseUser, merchant: Merchant, outsider_client: Client
) -> None:
    """One member alone cannot loosen what counts as paid: another member of the merchant approves it."""
    member_client.post("/merchant/settings/payments/", {"payment_tolerance_percent": "30", "expiry_minutes": "15"})
    proposal = ChangeProposal.objects.get(merchant=merchant, state=ChangeState.PENDING)
    approve = f"/merchant/settings/changes/{proposal.pk}/approve/"
    # The proposer sees no buttons, and cannot approve by posting anyway.
    page = member_client.get("/merchant/settings/").content.decode()
    assert f'id="money-change-{proposal.pk}"' in page and approve not in page
    member_client.post(approve, {"m": "acme", "note": "me again"})
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("0.5")
    # Another merchant's member: the change is not theirs to see (404) and nothing moves.
    assert outsider_client.post(approve, {"m": "other", "note": "x"}).status_code == 404
    # A second member of acme approves, with a note: applied.
    second = login(make_user("carol", merchant))
    assert approve in second.get("/merchant/settings/").content.decode()
    assert second.post(approve, {"m": "acme", "note": ""}).status_code == 302  # a note is required
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("0.5")
    second.post(approve, {"m": "acme", "note": "agreed with Alice for the sale"})
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("30")
    proposal.refresh_from_db()
    assert proposal.state == ChangeState.APPLIED and proposal.decision_note == "agreed with Alice for the sale"
    assert "approved by user:carol" in " ".join(member_client.get("/merchant/settings/").content.decode().split())
    # A rejection leaves the value as it is.
    member_client.post("/merchant/settings/payments/", {"payment_tolerance_percent": "0", "expiry_minutes": "15"})
    again = ChangeProposal.objects.get(merchant=merchant, state=ChangeState.PENDING)
    second.post(f"/merchant/settings/changes/{again.pk}/reject/", {"m": "acme", "note": "no"})
    merchant.refresh_from_db()
    again.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("30") and again.state == ChangeState.REJECTED


def test_api_key_rotation(member_client: Client, merchant: Merchant, local_chain: LocalChain) -> None:
    old_key = local_chain.api_keys["acme"]
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {old_key}")
    assert old.get("/api/v1/tokens/").status_code == 200

    assert member_client.post("/merchant/settings/api-key/", {}).status_code == 400  # must confirm
    assert old.get("/api/v1/tokens/").status_code == 200

    response = member_client.post("/merchant/settings/api-key/", {"confirm": "on"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = re.search(r'<code id="new-api-key"[^>]*>([^<]+)</code>', response.content.decode())
    assert match is not None
    new_key = match.group(1)
    assert len(new_key) >= 40

    assert old.get("/api/v1/tokens/").status_code == 401
    new = APIClient()
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key}")
    assert new.get("/api/v1/tokens/").status_code == 200
    assert new.get("/api/v1/settlements/", {"date_from": "2026-01-01", "date_to": "2026-01-31"}).status_code == 200

    merchant.refresh_from_db()
    assert merchant.api_key_hash == hash_api_key(new_key) and new_key not in str(
        Merchant.objects.values().get(pk=merchant.pk)
    )
    assert merchant.api_key_prefix == new_key[:6]
    # Shown once: the settings page only names its first characters.
    settings_html = member_client.get("/merchant/settings/").content.decode()
    assert new_key not in settings_html and new_key[:6] in settings_html


class Receiver:
    """A webhook endpoint on a local port that answers 204 and keeps what it got."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.seen.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    live = Receiver()
    yield live
    live.server.shutdown()


def test_redeliver_sends_the_same_event_again(member_client: Client, merchant: Merchant, receiver: Receiver) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url=receiver.url, webhook_secret="whsec_" + "x" * 24)
    merchant.refresh_from_db()
    request = create_request(merchant)
    assert webhooks.deliver_due() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.delivered_at is not None and delivery.attempts == 1

    html = member_client.get("/merchant/settings/").content.decode()
    assert str(delivery.event_id) in html and "Delivered" in html

    response = member_client.post(
        f"/merchant/webhooks/{delivery.pk}/redeliver/", {"next": f"/merchant/payments/{request.pk}/"}
    )
    assert response.status_code == 302 and response["Location"] == f"/merchant/payments/{request.pk}/"
    assert WebhookDelivery.objects.count() == 1  # the same event, not a new one
    delivery.refresh_from_db()
    assert delivery.delivered_at is None and delivery.next_attempt_at is not None
    assert delivery.next_attempt_at <= timezone.now()

    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.delivered_at is not None
    assert len(receiver.seen) == 2
    assert receiver.seen[0] == receiver.seen[1]  # same id, same payload
    assert str(delivery.event_id).encode() in receiver.seen[1]

    # An outside redirect target is ignored.
    response = member_client.post(f"/merchant/webhooks/{delivery.pk}/redeliver/", {"next": "https://evil.example/"})
    assert response["Location"] == "/merchant/settings/#deliveries"


def test_redeliver_needs_webhooks_on(member_client: Client, merchant: Merchant) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url="https://hooks.example.com/a", webhook_secret="s" * 20)
    merchant.refresh_from_db()
    create_request(merchant)
    delivery = WebhookDelivery.objects.get()
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url="")
    delivery_next = delivery.next_attempt_at
    response = member_client.post(f"/merchant/webhooks/{delivery.pk}/redeliver/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == delivery_next
    assert member_client.post("/merchant/webhooks/999999/redeliver/").status_code == 404
