"""The browser-wallet button's JSON data (stablepay/checkout/wallet.py): which RPC URLs a shopper's wallet is told."""

from __future__ import annotations

from typing import Any

import pytest

from stablepay.checkout.wallet import public_rpc_urls, wallet_config
from stablepay.models import Chain, Merchant
from tests.support.local_chain import LocalChain, create_request

pytestmark = pytest.mark.django_db


def test_a_production_chains_node_urls_are_never_published(settings: Any) -> None:
    chain = Chain.objects.create(chain_id=8453, name="Base", rpc_urls=["https://base.example/v3/SECRET-KEY"])
    assert public_rpc_urls(chain) == []
    settings.STABLEPAY = {**settings.STABLEPAY, "WALLET_RPC_URLS": {"8453": ["https://mainnet.base.org"]}}
    assert public_rpc_urls(chain) == ["https://mainnet.base.org"]


def test_the_config_of_a_local_request(local_chain: LocalChain, merchant: Merchant) -> None:
    Chain.objects.filter(chain_id=31337).update(explorer_tx_url="https://explorer.example/tx/{tx}")
    request = create_request(merchant, amount="12.50")
    config = wallet_config(request)
    assert config["chain_id"] == "0x7a69" and config["chain_name"] == "Local"
    assert config["rpc_urls"] == [local_chain.anvil.url]
    assert config["token_address"] == local_chain.tokens["HKDX"] and config["decimals"] == 6
    assert config["pay_to"] == request.pay_to
    assert config["explorer_tx_url"].replace(config["tx_placeholder"], "0xabc") == "https://explorer.example/tx/0xabc"
