"""The per-process cache of tokens and FX rates: served without queries, cleared by this process's writes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from stablepay.models import FxRate, Token
from stablepay.registry import refdata
from tests.factories import ChainFactory, MerchantFactory, TokenFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings: Any) -> Iterator[None]:
    settings.STABLEPAY = {**settings.STABLEPAY, "REFERENCE_CACHE_SECONDS": 60}
    refdata.clear()
    yield
    refdata.clear()


@pytest.fixture
def token() -> Token:
    chain = ChainFactory(chain_id=31337, name="Local", rpc_urls=["http://127.0.0.1:9"])
    return TokenFactory(chain=chain, address="0x" + "11" * 20, symbol="HKDX")


def test_tokens_and_rates_are_read_once(cached: None, token: Token, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(2):
        assert refdata.active_token(chain_id=31337, symbol="HKDX") == token
        assert refdata.fx_rates()[("HKD", "MOP")] == Decimal("1.03")
    with django_assert_num_queries(0):
        found = refdata.active_token(chain_id=31337, symbol="HKDX")
        assert found is not None and found.chain.chain_id == 31337
        assert refdata.active_token(chain_id=31337, symbol="USDC") is None
        assert refdata.active_token(chain_id=1, symbol="HKDX") is None
        refdata.fx_rates()


def test_a_write_in_this_process_is_seen_at_once(cached: None, token: Token) -> None:
    assert refdata.active_token(chain_id=31337, symbol="HKDX") is not None
    assert refdata.fx_rates()[("HKD", "MOP")] == Decimal("1.03")
    token.active = False
    token.save()
    assert refdata.active_token(chain_id=31337, symbol="HKDX") is None
    FxRate.objects.create(base="MOP", quote="HKD", rate=Decimal("0.97"))
    rates = refdata.fx_rates()
    assert rates[("MOP", "HKD")] == Decimal("0.97") and ("HKD", "MOP") not in rates


def test_zero_seconds_turns_the_cache_off(settings: Any, token: Token, django_assert_num_queries: Any) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, "REFERENCE_CACHE_SECONDS": 0}
    for _ in range(2):
        with django_assert_num_queries(1):
            refdata.active_token(chain_id=31337, symbol="HKDX")


def test_api_keys_known_are_cached_and_a_revocation_here_is_immediate(
    cached: None, django_assert_num_queries: Any
) -> None:
    from stablepay.registry.api_keys import hash_api_key

    merchant = MerchantFactory(api_key_hash=hash_api_key("k1"))
    with django_assert_num_queries(1):
        assert refdata.merchant_by_api_key_hash(hash_api_key("k1")) == merchant
    with django_assert_num_queries(0):
        assert refdata.merchant_by_api_key_hash(hash_api_key("k1")) == merchant
    for _ in range(2):  # an unknown key is looked up every time, never remembered
        with django_assert_num_queries(1):
            assert refdata.merchant_by_api_key_hash(hash_api_key("nope")) is None
    merchant.api_key_hash = hash_api_key("k2")
    merchant.save()
    assert refdata.merchant_by_api_key_hash(hash_api_key("k1")) is None
    assert refdata.merchant_by_api_key_hash(hash_api_key("k2")) == merchant
