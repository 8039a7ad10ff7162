"""Contract checks on anvil: a paused token, a blacklisted deposit address and an Upgraded proxy event each
stop quotes (one batched JSON-RPC request per chain) and show in the ops console; passes lift the first two."""

from __future__ import annotations

from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from stablepay.chain.addresses import derive_address
from stablepay.chain.rpc import RpcChainReader
from stablepay.dev import chain as devchain
from stablepay.models import Chain, Merchant, PaymentRequest, Token
from stablepay.registry import token_health
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain
from tests.support.ops import CONSOLE
from tests.support.ops import make_user as make_ops_user


def _create(api: APIClient, token: str, reference: str) -> Any:
    body = {"order_reference": reference, "amount": "10.00", "currency": "HKD", "chain_id": 31337, "token": token}
    return api.post("/api/v1/payment-requests/", body, format="json")


def _reason(symbol: str) -> str:
    return Token.objects.get(symbol=symbol).halted_reason


def test_a_paused_token_is_refused_at_quote_time_until_it_is_unpaused(local_chain: LocalChain, api: APIClient) -> None:
    assert token_health.check_due(force=True) == 2
    assert _reason("HKDX") == "" and Token.objects.get(symbol="HKDX").health_checked_block is not None
    assert _create(api, "HKDX", "P-1").status_code == 201

    devchain.pause(local_chain.anvil.w3, local_chain.tokens["HKDX"])
    # Recorded state is what quotes read: nothing changes before the next check.
    assert _create(api, "HKDX", "P-2").status_code == 201
    assert token_health.check_due() == 0  # checked moments ago: not due yet
    assert token_health.check_due(force=True) == 2
    assert _reason("HKDX") == "paused() returned true" and _reason("USDC") == ""
    refused = _create(api, "HKDX", "P-3")
    assert refused.status_code == 409
    assert refused.json() == {"token": ["HKDX is suspended: paused() returned true"]}
    assert _create(api, "USDC", "P-4").status_code == 201

    ops = Client()
    login_as(ops, make_ops_user("olivia", CONSOLE))
    banner = ops.get("/ops/").content.decode()
    assert 'id="token-alerts"' in banner and "paused() returned true" in banner

    devchain.unpause(local_chain.anvil.w3, local_chain.tokens["HKDX"])
    token_health.check_due(force=True)
    assert _reason("HKDX") == "" and Token.objects.get(symbol="HKDX").halted_at is None
    assert _create(api, "HKDX", "P-5").status_code == 201
    assert 'id="token-alerts"' not in ops.get("/ops/").content.decode()
    assert PaymentRequest.objects.count() == 4


def test_a_blacklisted_deposit_address_suspends_the_token(local_chain: LocalChain, api: APIClient) -> None:
    token_health.check_due(force=True)
    acme = Merchant.objects.get(slug="acme")
    next_address = derive_address(acme.xpub, acme.next_address_index)
    devchain.blacklist(local_chain.anvil.w3, local_chain.tokens["USDC"], next_address)
    token_health.check_due(force=True)
    assert f"isBlacklisted({next_address.lower()}) returned true" in _reason("USDC")
    assert _create(api, "USDC", "B-1").status_code == 409
    assert _reason("HKDX") == ""
    devchain.unblacklist(local_chain.anvil.w3, local_chain.tokens["USDC"], next_address)
    token_health.check_due(force=True)
    assert _reason("USDC") == ""


def test_an_upgrade_stays_suspended_until_an_operator_clears_it(local_chain: LocalChain, api: APIClient) -> None:
    token_health.check_due(force=True)
    implementation = "0x00000000000000000000000000000000000000aa"
    devchain.upgrade_to(local_chain.anvil.w3, local_chain.tokens["HKDX"], implementation)
    token_health.check_due(force=True)
    assert _reason("HKDX").startswith(f"Upgraded({implementation}) proxy event in block ")
    token_health.check_due(force=True)  # the event is behind us now, but the halt stands
    assert _reason("HKDX").startswith("Upgraded(")
    assert _create(api, "HKDX", "U-1").status_code == 409
    hkdx = Token.objects.get(symbol="HKDX")
    hkdx.halted_reason = ""  # the operator, in the admin, after reviewing the new implementation
    hkdx.save()
    token_health.check_due(force=True)
    assert _reason("HKDX") == ""
    assert _create(api, "HKDX", "U-2").status_code == 201


def test_all_checks_of_a_chain_are_one_request(local_chain: LocalChain) -> None:
    chain = Chain.objects.get(chain_id=31337)
    token_health.check_due(force=True)  # a checked block, so the Upgraded log query is included too
    tokens = list(Token.objects.filter(chain=chain))
    reader = RpcChainReader(chain.rpc_urls)
    verdicts = token_health.check_chain(chain, tokens, reader)
    assert reader.http_requests == 1
    # Billed per call: the head, then per token paused(), isBlacklisted and isBlocked for each merchant's
    # next deposit address (2 merchants), and the Upgraded logs; never per open request.
    assert reader.calls == 1 + len(tokens) * (1 + 2 * 2 + 1)
    assert [v.reasons for v in verdicts] == [(), ()]


def test_a_node_that_does_not_answer_leaves_the_last_verdict(local_chain: LocalChain) -> None:
    devchain.pause(local_chain.anvil.w3, local_chain.tokens["HKDX"])
    token_health.check_due(force=True)
    Chain.objects.filter(chain_id=31337).update(rpc_urls=["http://127.0.0.1:9"])
    devchain.unpause(local_chain.anvil.w3, local_chain.tokens["HKDX"])
    assert token_health.check_due(force=True) == 0
    assert _reason("HKDX") == "paused() returned true"


def test_a_real_proxy_upgrade_is_caught(local_chain: LocalChain, api: APIClient) -> None:
    """A TestStablecoin behind an ERC-1967 TestProxy: pause and upgrade go through the proxy address."""
    w3 = local_chain.anvil.w3
    proxy, implementation = devchain.deploy_proxied_token(w3, name="Proxied HKD", symbol="PHKD", decimals=6)
    assert devchain.token_contract(w3, proxy).functions.symbol().call() == "PHKD"
    chain = Chain.objects.get(chain_id=31337)
    Token.objects.create(chain=chain, address=proxy, symbol="PHKD", decimals=6, currency="HKD")
    token_health.check_due(force=True)
    assert _reason("PHKD") == ""
    assert _create(api, "PHKD", "X-1").status_code == 201

    devchain.pause(w3, proxy)  # the owner set through the proxy's initializer
    token_health.check_due(force=True)
    assert _reason("PHKD") == "paused() returned true"
    devchain.unpause(w3, proxy)

    replacement = devchain.deploy_token(w3, name="Proxied HKD v2", symbol="PHKD", decimals=6)
    devchain.upgrade_to(w3, proxy, replacement)  # the proxy's own upgradeTo: a real implementation swap
    token_health.check_due(force=True)
    assert _reason("PHKD").startswith(f"Upgraded({replacement.lower()}) proxy event in block ")
    assert replacement.lower() != implementation.lower()
    assert _create(api, "PHKD", "X-2").status_code == 409
    assert _reason("HKDX") == "" and _reason("USDC") == ""
