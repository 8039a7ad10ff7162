"""Token registry: licence provenance in the setup file and the API, and the merchant's token policy at quote time."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from stablepay.models import Merchant, PaymentRequest, Token
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, setup_document
from tests.support.merchant import login, make_user


def _apply(tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    call_command("stablepay_setup", str(path))


def _licensed_document(local_chain: LocalChain) -> dict[str, Any]:
    document = copy.deepcopy(setup_document(local_chain.anvil.url, local_chain.tokens))
    document["tokens"][0].update(issuer="HKD Issuer Ltd", licence_reference="SC-0001", licence_status="licensed")
    document["tokens"][1].update(issuer="Circle", licence_status="pending")
    return document


def _create(api: APIClient, token: str, reference: str = "R-1") -> Any:
    body = {"order_reference": reference, "amount": "10.00", "currency": "HKD", "chain_id": 31337, "token": token}
    return api.post("/api/v1/payment-requests/", body, format="json")


def test_old_setup_files_default_to_unlicensed_and_accept_all(local_chain: LocalChain, api: APIClient) -> None:
    hkdx = Token.objects.get(symbol="HKDX")
    assert (hkdx.issuer, hkdx.licence_reference, hkdx.licence_status) == ("", "", "unlicensed")
    assert sorted(Merchant.objects.get(slug="acme").accepted_licence_statuses) == ["licensed", "pending", "unlicensed"]
    assert _create(api, "HKDX").status_code == 201


def test_setup_file_records_provenance_and_the_api_lists_it(
    local_chain: LocalChain, api: APIClient, tmp_path: Path
) -> None:
    _apply(tmp_path, _licensed_document(local_chain))
    tokens = {t["symbol"]: t for t in api.get("/api/v1/tokens/").json()}
    assert tokens["HKDX"]["issuer"] == "HKD Issuer Ltd"
    assert tokens["HKDX"]["licence_reference"] == "SC-0001"
    assert tokens["HKDX"]["licence_status"] == "licensed"
    assert tokens["USDC"]["licence_status"] == "pending"
    assert tokens["HKDX"]["accepting_quotes"] is True
    # A later file without the optional fields leaves them as they are.
    _apply(tmp_path, setup_document(local_chain.anvil.url, local_chain.tokens))
    assert Token.objects.get(symbol="HKDX").licence_status == "licensed"


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (lambda d: d["tokens"][0].update(licence_status="approved"), r"tokens\[0\]\.licence_status"),
        (lambda d: d["tokens"][1].update(issuer=7), r"tokens\[1\]\.issuer"),
        (lambda d: d["tokens"][0].update(licence_reference="x" * 65), r"tokens\[0\]\.licence_reference"),
        (lambda d: d["merchants"][0].update(accepted_licence_statuses="licensed"), r"merchants\[0\]\.accepted_lic"),
        (lambda d: d["merchants"][1].update(accepted_token_currencies=["EUR"]), r"merchants\[1\]\.accepted_token"),
    ],
)
def test_bad_registry_fields_are_named_and_change_nothing(
    local_chain: LocalChain, tmp_path: Path, spoil: Any, field: str
) -> None:
    document = _licensed_document(local_chain)
    spoil(document)
    with pytest.raises(CommandError, match=field):
        _apply(tmp_path, document)
    assert Token.objects.get(symbol="HKDX").licence_status == "unlicensed"


def test_a_licensed_hkd_only_merchant_is_refused_other_tokens(
    local_chain: LocalChain, api: APIClient, other_api: APIClient, tmp_path: Path
) -> None:
    document = _licensed_document(local_chain)
    document["merchants"][0].update(accepted_licence_statuses=["licensed"], accepted_token_currencies=["HKD"])
    _apply(tmp_path, document)
    refused = _create(api, "USDC")
    assert refused.status_code == 409
    assert "pending" in refused.json()["token"][0]
    assert _create(api, "HKDX").status_code == 201
    # The other merchant has no policy: it still gets USDC quotes.
    assert _create(other_api, "USDC").status_code == 201
    # A licensed USD coin is still refused by the currency policy.
    Token.objects.filter(symbol="USDC").update(licence_status="licensed")
    Token.objects.get(symbol="USDC").save()  # clear the reference cache as an admin save would
    refused = _create(api, "USDC", "R-2")
    assert refused.status_code == 409 and "USD coin" in refused.json()["token"][0]
    assert PaymentRequest.objects.filter(merchant__slug="acme").count() == 1


def test_a_suspended_token_is_refused_with_the_reason(local_chain: LocalChain, api: APIClient) -> None:
    hkdx = Token.objects.get(symbol="HKDX")
    hkdx.halted_reason = "paused() returned true"
    hkdx.save()
    refused = _create(api, "HKDX")
    assert refused.status_code == 409
    assert "paused() returned true" in refused.json()["token"][0]
    assert api.get("/api/v1/tokens/").json()[0]["accepting_quotes"] is False
    assert not PaymentRequest.objects.exists()


def test_merchant_settings_page_sets_the_policy(local_chain: LocalChain, merchant: Merchant) -> None:
    member_client: Client = login(make_user("alice", merchant))
    page = member_client.get("/merchant/settings/")
    assert page.status_code == 200 and 'id="token-policy"' in page.content.decode()
    saved = member_client.post(
        "/merchant/settings/token-policy/",
        {"m": merchant.slug, "accepted_licence_statuses": ["licensed"], "accepted_token_currencies": ["HKD"]},
    )
    assert saved.status_code == 302
    merchant.refresh_from_db()
    assert merchant.accepted_licence_statuses == ["licensed"] and merchant.accepted_token_currencies == ["HKD"]
    table = member_client.get("/merchant/settings/").content.decode()
    hkdx_row = table[table.index('data-token="HKDX"') :].split("</tr>")[0]
    assert "HKDX is unlicensed; this merchant accepts only licensed tokens" in hkdx_row
    bad = member_client.post("/merchant/settings/token-policy/", {"m": merchant.slug, "accepted_licence_statuses": "x"})
    assert bad.status_code == 400
    merchant.refresh_from_db()
    assert merchant.accepted_licence_statuses == ["licensed"]


def test_ops_console_lists_the_registry_and_alerts_on_a_suspended_token(local_chain: LocalChain) -> None:
    from tests.support.ops import CONSOLE
    from tests.support.ops import make_user as make_ops_user

    ops = Client()
    login_as(ops, make_ops_user("olivia", CONSOLE))
    Token.objects.filter(symbol="HKDX").update(issuer="HKD Issuer Ltd", licence_status="licensed")
    health = ops.get("/ops/health/").content.decode()
    assert 'id="token-registry"' in health and "HKD Issuer Ltd" in health
    assert 'id="token-alerts"' not in ops.get("/ops/").content.decode()
    hkdx = Token.objects.get(symbol="HKDX")
    hkdx.halted_reason = "isBlacklisted(0xabc) returned true"
    hkdx.halted_at = hkdx.health_checked_at = None
    hkdx.save()
    queue = ops.get("/ops/").content.decode()
    assert 'id="token-alerts"' in queue and "isBlacklisted(0xabc) returned true" in queue


def test_the_policy_costs_no_query_and_no_rpc_on_the_hot_path(
    local_chain: LocalChain, settings: Any, django_assert_num_queries: Any
) -> None:
    from decimal import Decimal

    from stablepay.errors import Conflict
    from stablepay.ledger.services import payment_request_create
    from stablepay.models import Chain
    from stablepay.registry import refdata

    Chain.objects.filter(chain_id=31337).update(rpc_urls=["http://127.0.0.1:9"])  # no node: quotes must not ask one
    Merchant.objects.filter(slug="acme").update(accepted_licence_statuses=["licensed"])
    settings.STABLEPAY = {**settings.STABLEPAY, "REFERENCE_CACHE_SECONDS": 60}
    refdata.clear()
    try:
        merchant = Merchant.objects.get(slug="acme")
        refdata.active_token(chain_id=31337, symbol="HKDX")
        refdata.fx_rates()
        with django_assert_num_queries(0), pytest.raises(Conflict, match="unlicensed"):
            payment_request_create(
                merchant=merchant,
                order_reference="H-1",
                amount=Decimal("10.00"),
                currency="HKD",
                chain_id=31337,
                token_symbol="HKDX",
            )
    finally:
        refdata.clear()
