"""Chains that ask for it settle on the node's `finalized` block, not on a confirmation count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stablepay.models import Chain, Merchant
from tests.support.local_chain import LocalChain, create_request
from tests.support.services import Anvil


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with Anvil("--slots-in-an-epoch", "4") as node:  # `finalized` trails the head by 8 blocks
        yield node


def test_paid_only_once_the_finalized_block_covers_the_transfer(local_chain: LocalChain, merchant: Merchant) -> None:
    Chain.objects.filter(chain_id=31337).update(use_finalized_tag=True)
    request = create_request(merchant)
    local_chain.scan()
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    paid_block = local_chain.anvil.w3.eth.block_number
    local_chain.scan()
    local_chain.mine(5)  # 6 confirmations, far past the chain's 3, but not finalized
    local_chain.scan()
    request.refresh_from_db()
    assert request.status == "confirming"
    while int(local_chain.anvil.rpc("eth_getBlockByNumber", ["finalized", False])["number"], 16) < paid_block:
        local_chain.mine(1)
    local_chain.scan()
    request.refresh_from_db()
    assert request.status == "paid"
