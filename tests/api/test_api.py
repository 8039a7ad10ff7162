"""The REST API against CONTRACT §4: quotes, addresses, EIP-681, strict input, idempotency, isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from stablepay.models import PaymentRequest
from tests.factories import ChainFactory, TokenFactory
from tests.support.local_chain import MERCHANT_MNEMONIC, LocalChain, mnemonic_address

BODY = {"order_reference": "MO-1001", "amount": "103.00", "currency": "MOP", "chain_id": 31337, "token": "HKDX"}


def create(api: APIClient, body: Any = None, key: str | None = None) -> Any:
    payload = json.dumps(BODY if body is None else body)
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post("/api/v1/payment-requests/", payload, content_type="application/json", headers=headers)


def test_mop_price_in_a_hkd_token_is_quoted_exactly(api: APIClient, local_chain: LocalChain) -> None:
    response = create(api)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["amount_due"] == "100.000000"
    assert data["amount_due_base_units"] == "100000000"
    assert data["status"] == "open" and data["exception"] is None
    assert data["decimals"] == 6 and data["token"] == "HKDX" and data["chain_id"] == 31337
    assert data["token_address"] == local_chain.tokens["HKDX"]
    assert data["amount_paid_base_units"] == "0"
    assert data["checkout_url"] == f"http://testserver/pay/{data['id']}/"
    assert [e["status"] for e in data["timeline"]] == ["open"]


def test_pay_to_is_the_next_mnemonic_address_and_uri_is_eip681(api: APIClient, local_chain: LocalChain) -> None:
    first = create(api).json()
    second = create(api, {**BODY, "order_reference": "MO-1002"}).json()
    assert first["pay_to"] == mnemonic_address(MERCHANT_MNEMONIC, 0)
    assert second["pay_to"] == mnemonic_address(MERCHANT_MNEMONIC, 1)
    token = local_chain.tokens["HKDX"]
    assert second["payment_uri"] == (f"ethereum:{token}@31337/transfer?address={second['pay_to']}&uint256=100000000")


@pytest.mark.parametrize(
    ("amount", "currency", "token", "due"),
    [
        ("100.00", "HKD", "HKDX", "100000000"),
        ("7.80", "HKD", "USDC", "1000000"),
        ("1.00", "MOP", "USDC", "124471"),  # 10^6 / (1.03 x 7.80) = 124470.998...: rounded up
        ("0.01", "HKD", "HKDX", "10000"),
        ("10.00", "USD", "HKDX", "78000000"),
    ],
)
def test_quotes_round_up_from_the_exact_ratio(api: APIClient, amount: str, currency: str, token: str, due: str) -> None:
    response = create(api, {**BODY, "amount": amount, "currency": currency, "token": token})
    assert response.status_code == 201, response.content
    assert response.json()["amount_due_base_units"] == due


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "1" * 100}, "amount"),
        ({"amount": 103}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": "١٠٣"}, "amount"),
        ({"amount": " 103"}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"token": "NOPE"}, "token"),
        ({"chain_id": 1}, "chain_id"),
        ({"chain_id": "31337"}, "chain_id"),
        ({"order_reference": ""}, "order_reference"),
        ({"order_reference": "x" * 65}, "order_reference"),
        ({"expiry_minutes": 0}, "expiry_minutes"),
        ({"expiry_minutes": 1441}, "expiry_minutes"),
        ({"metadata": [1]}, "metadata"),
        ({"metadata": {"k": "v" * 5000}}, "metadata"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named_and_create_nothing(api: APIClient, change: dict[str, Any], field: str) -> None:
    response = create(api, {**BODY, **change})
    assert 400 <= response.status_code < 500
    assert field in response.json(), response.json()
    assert PaymentRequest.objects.count() == 0


@pytest.mark.parametrize("missing", ["order_reference", "amount", "currency", "chain_id", "token"])
def test_missing_field_is_named(api: APIClient, missing: str) -> None:
    body = {k: v for k, v in BODY.items() if k != missing}
    response = create(api, body)
    assert response.status_code == 400 and missing in response.json()
    assert PaymentRequest.objects.count() == 0


def test_token_of_another_chain_is_refused(api: APIClient, local_chain: LocalChain) -> None:
    other = ChainFactory(chain_id=10, name="Other", rpc_urls=["http://127.0.0.1:1"], confirmations=1)
    TokenFactory(chain=other, address="0x" + "11" * 20, symbol="OTHR")
    response = create(api, {**BODY, "token": "OTHR"})
    assert response.status_code == 400 and "token" in response.json()
    assert PaymentRequest.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"amount": NaN}', b"[1, 2]", b'{"amount": "1", "amount": "2"}', b"[" * 100_000 + b"]" * 100_000],
)
def test_malformed_bodies_are_4xx(api: APIClient, raw: bytes) -> None:
    response = api.post("/api/v1/payment-requests/", raw, content_type="application/json")
    assert 400 <= response.status_code < 500, response.content
    assert PaymentRequest.objects.count() == 0


def test_a_5mb_body_is_refused(api: APIClient) -> None:
    body = json.dumps({**BODY, "metadata": {"blob": "x" * (5 * 1024 * 1024)}})
    response = api.post("/api/v1/payment-requests/", body, content_type="application/json")
    assert response.status_code == 413
    assert "detail" in response.json()
    assert PaymentRequest.objects.count() == 0


def test_idempotency_key_replays_and_conflicts(api: APIClient) -> None:
    first = create(api, key="order-77")
    again = create(api, key="order-77")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    changed = create(api, {**BODY, "amount": "104.00"}, key="order-77")
    assert changed.status_code == 409 and "Idempotency-Key" in changed.json()
    too_long = create(api, key="k" * 10_000)
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()
    assert PaymentRequest.objects.count() == 1


def test_auth_is_required(local_chain: LocalChain) -> None:
    anonymous = APIClient()
    assert anonymous.get("/api/v1/payment-requests/").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer wrong-key")
    assert anonymous.get("/api/v1/tokens/").status_code == 401


def test_merchants_only_see_their_own_requests(api: APIClient, other_api: APIClient) -> None:
    mine = create(api).json()
    assert other_api.get(f"/api/v1/payment-requests/{mine['id']}/").status_code == 404
    assert other_api.post(f"/api/v1/payment-requests/{mine['id']}/cancel/").status_code == 404
    assert other_api.get("/api/v1/payment-requests/?order_reference=MO-1001").json()["count"] == 0
    assert api.get("/api/v1/payment-requests/not-a-uuid/").status_code == 404


def test_get_list_and_cancel(api: APIClient) -> None:
    created = create(api).json()
    assert api.get(f"/api/v1/payment-requests/{created['id']}/").json()["id"] == created["id"]
    listing = api.get("/api/v1/payment-requests/?order_reference=MO-1001&status=open").json()
    assert set(listing) == {"count", "next", "previous", "results"} and listing["count"] == 1
    canceled = api.post(f"/api/v1/payment-requests/{created['id']}/cancel/")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert api.post(f"/api/v1/payment-requests/{created['id']}/cancel/").status_code == 409
    assert api.get("/api/v1/payment-requests/?status=bogus").status_code == 400


def test_tokens_and_schema(api: APIClient, local_chain: LocalChain) -> None:
    tokens = api.get("/api/v1/tokens/").json()
    assert {
        "chain_id": 31337,
        "chain_name": "Local",
        "symbol": "HKDX",
        "address": local_chain.tokens["HKDX"],
        "decimals": 6,
        "currency": "HKD",
        "issuer": "",
        "licence_reference": "",
        "licence_status": "unlicensed",
        "accepting_quotes": True,
    } in tokens
    schema = APIClient().get("/api/v1/schema/")
    assert schema.status_code == 200 and b"/api/v1/payment-requests/" in schema.content


@pytest.mark.parametrize(
    "body",
    [
        BODY,
        {**BODY, "currency": "HKD", "amount": "0.01"},
        {**BODY, "expiry_minutes": 1, "metadata": {}},
        {**BODY, "expiry_minutes": 1440, "metadata": {"k": [1, 2.5, None, {"x": ""}]}},
        {**BODY, "order_reference": "x" * 64, "token": "T" * 16, "amount": "9" * 15 + ".99"},
        {**BODY, "order_reference": " padded ", "amount": "007.5"},
        {**BODY, "metadata": {"k": "v" * 4088}},  # 4,096 bytes as JSON
        {**BODY, "metadata": {"k": "v" * 4089}},
        {**BODY, "chain_id": 10**30},
        {**BODY, "chain_id": 0},
        {**BODY, "chain_id": True},
        {**BODY, "chain_id": 1.0},
        {**BODY, "expiry_minutes": None},
        {**BODY, "expiry_minutes": False},
        {**BODY, "metadata": None},
        {**BODY, "metadata": "{}"},
        {**BODY, "amount": ""},
        {**BODY, "amount": "1" * 41},
        {**BODY, "amount": "1" * 16},
        {**BODY, "amount": None},
        {**BODY, "currency": "hkd"},
        {**BODY, "currency": ["HKD"]},
        {**BODY, "order_reference": "a\x00b"},
        {**BODY, "order_reference": "a\ud800b"},
        {**BODY, "order_reference": 1001},
        {**BODY, "token": ""},
        {**BODY, "token": "T" * 17},
        {**BODY, "surprise": 1},
        {k: v for k, v in BODY.items() if k != "token"},
        {},
        [],
        None,
        "body",
    ],
)
def test_the_lean_create_parser_accepts_only_what_the_serializer_accepts_and_alike(body: Any) -> None:
    from stablepay.api.serializers import PaymentRequestCreateIn, create_body

    serializer = PaymentRequestCreateIn(data=body)
    lean = create_body(body)
    if lean is None:
        return  # the view then runs the serializer: its answer either way
    assert serializer.is_valid(), serializer.errors
    assert lean == dict(serializer.validated_data)
    assert [type(v) for v in lean.values()] == [type(v) for v in serializer.validated_data.values()]
