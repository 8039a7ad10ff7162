"""Hostile query strings on every dashboard and ops page: never a 5xx (Django's test client raises on
one), and nothing injected comes back unescaped. Each page is fetched with every parameter it reads set
to each nasty value, one parameter at a time and all at once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from stablepay.models import Merchant
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import APPROVE, CONSOLE, make_user

pytestmark = pytest.mark.django_db

NASTY: list[str] = [
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: left out where it cannot be URL-encoded; as raw bytes below
    "-1",
    "0",
    "1e3",
    "9" * 40,
    "99999999999999999999",
    "\u0661\u0662",  # Arabic-Indic digits
    "' OR '1'='1",
    '<script>alert("q")</script>',
    "x" * 10_000,
    "2024-02-30",
    "0000-00-00",
    "9999-12-31",
    "\u202e",
    "%",
    "_",
    "last",
    "",
]
MERCHANT_PAGES = {
    "/merchant/": ["m"],
    "/merchant/payments/": ["m", "q", "status", "page"],
    "/merchant/settlements/": ["m", "date_from", "date_to"],
    "/merchant/settlements.csv": ["m", "date_from", "date_to"],
    "/merchant/settings/": ["m", "page"],
}
OPS_PAGES = {
    "/ops/": ["q", "exception", "merchant", "chain", "token", "awaiting", "page"],
    "/ops/actions/": ["state", "user", "page"],
    "/ops/health/": ["reason", "probe", "blocks"],
    "/ops/bulk/result/": ["page"],
}


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _get(client: Client, url: str, params: dict[str, str]) -> Any:
    response = client.get(url, params)
    assert response.status_code < 500, (url, params)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b'<script>alert("q")' not in body, (url, params)
    return response


def _sweep(client: Client, pages: dict[str, list[str]]) -> int:
    count = 0
    values = [v for v in NASTY if _encodable(v)]
    for url, names in pages.items():
        for name in names:
            for value in values:
                _get(client, url, {name: value})
                count += 1
        for value in values:
            _get(client, url, dict.fromkeys(names, value))
            count += 1
    return count


@pytest.fixture
def users(local_chain: LocalChain) -> dict[str, User]:
    acme = Merchant.objects.get(slug="acme")
    create_request(acme, order_reference="Q-1")
    return {"member": make_user("mia", merchant=acme), "ops": make_user("olivia", CONSOLE, APPROVE)}


def test_dashboard_pages_survive_hostile_query_strings(users: dict[str, User]) -> None:
    client = Client()
    login_as(client, users["member"])
    assert _sweep(client, MERCHANT_PAGES) > 300


def test_ops_pages_survive_hostile_query_strings(users: dict[str, User]) -> None:
    client = Client()
    login_as(client, users["ops"])
    assert _sweep(client, OPS_PAGES) > 300


def test_raw_nul_and_invalid_utf8_in_the_query_string(users: dict[str, User]) -> None:
    """What a browser never sends but a script can: %00 and bytes that are not UTF-8."""
    for role, urls in (("member", MERCHANT_PAGES), ("ops", OPS_PAGES)):
        client = Client()
        login_as(client, users[role])
        for url, names in urls.items():
            for raw in ("%00", "%ff%fe", "%c0%af", "%ed%a0%80"):
                query = "&".join(f"{name}={raw}" for name in names)
                response = client.get(f"{url}?{query}")
                assert response.status_code < 500, (url, raw)


def test_form_posts_survive_hostile_fields(users: dict[str, User], local_chain: LocalChain) -> None:
    """Every dashboard and ops form, each field set to each nasty value: 4xx or a redirect, never a 5xx."""
    acme = Merchant.objects.get(slug="acme")
    pr = create_request(acme, order_reference="F-1")
    forms = {
        "member": {
            "/merchant/settings/webhook/": ["webhook_url", "webhook_secret", "new_secret", "m"],
            "/merchant/settings/payments/": ["payment_tolerance_percent", "expiry_minutes", "m"],
            "/merchant/webhooks/1/redeliver/": ["next", "m"],
        },
        "ops": {
            f"/ops/requests/{pr.pk}/decide/": ["action", "note", "refund_address", "refund_tx_hash"],
            f"/ops/requests/{pr.pk}/refund-tx/": ["tx_hash"],
            "/ops/bulk/": ["requests", "action", "note"],
            "/ops/actions/1/approve/": ["note"],
            "/ops/actions/1/reject/": ["note"],
        },
    }
    values = [v for v in NASTY if _encodable(v)]
    for role, posts in forms.items():
        client = Client()
        login_as(client, users[role])
        for url, names in posts.items():
            for name in names:
                for value in values:
                    response = client.post(url, {name: value})
                    assert response.status_code < 500, (url, name, value[:20])
