"""Nodes that fail, lag or lie neither invent nor lose a transfer; getLogs ranges adapt to the node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stablepay.chain.reader import TRANSFER_TOPIC
from stablepay.ingest.watcher import scan_once
from stablepay.models import Chain, Merchant, PaymentRequest, Transfer
from tests.support.local_chain import LocalChain, create_request
from tests.support.rpc_proxy import FaultProxy


@pytest.fixture
def proxy(local_chain: LocalChain) -> Iterator[FaultProxy]:
    live = FaultProxy(local_chain.anvil.url)
    yield live
    live.close()


@pytest.fixture
def second_proxy(local_chain: LocalChain) -> Iterator[FaultProxy]:
    live = FaultProxy(local_chain.anvil.url)
    yield live
    live.close()


def use_urls(*urls: str) -> None:
    Chain.objects.filter(chain_id=31337).update(rpc_urls=list(urls))


def run_passes(local_chain: LocalChain, passes: int = 3) -> None:
    for _ in range(passes):
        local_chain.mine(1)
        scan_once()


def paid(request: PaymentRequest) -> bool:
    request.refresh_from_db()
    return request.status == "paid"


def invented_log(local_chain: LocalChain, to: str, amount: int, block: int) -> dict[str, object]:
    header = local_chain.anvil.rpc("eth_getBlockByNumber", [hex(block), False])
    return {
        "address": local_chain.tokens["HKDX"].lower(),
        "topics": [TRANSFER_TOPIC, "0x" + "00" * 12 + "11" * 20, "0x" + "00" * 12 + to[2:].lower()],
        "data": "0x" + f"{amount:064x}",
        "blockHash": header["hash"],
        "blockNumber": hex(block),
        "blockTimestamp": header["timestamp"],
        "transactionHash": "0x" + "ee" * 32,
        "transactionIndex": "0x0",
        "logIndex": "0x5",
        "removed": False,
    }


def test_a_log_one_node_makes_up_is_never_credited(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy
) -> None:
    use_urls(proxy.url, local_chain.anvil.url)
    scan_once()
    victim, honest = create_request(merchant, order_reference="LIE"), create_request(merchant, order_reference="OK")
    local_chain.mine(1)
    block = local_chain.anvil.w3.eth.block_number
    proxy.invented_logs = [invented_log(local_chain, victim.pay_to, int(victim.amount_due_base_units), block)]
    local_chain.pay(honest.pay_to, int(honest.amount_due_base_units))
    run_passes(local_chain, 5)
    assert paid(honest)
    assert not paid(victim) and victim.amount_paid_base_units == 0
    assert not Transfer.objects.filter(tx_hash="0x" + "ee" * 32).exists()


def test_a_lagging_second_source_delays_but_loses_nothing(
    local_chain: LocalChain, merchant: Merchant, second_proxy: FaultProxy
) -> None:
    use_urls(local_chain.anvil.url, second_proxy.url)
    scan_once()
    request = create_request(merchant)
    second_proxy.stale_head = local_chain.anvil.w3.eth.block_number
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    run_passes(local_chain, 4)
    assert Transfer.objects.count() == 0  # one node's word is not enough
    cursor = Chain.objects.get(chain_id=31337).cursor
    assert cursor.scanned_block < local_chain.anvil.w3.eth.block_number and "second source" in cursor.last_error
    second_proxy.stale_head = None
    run_passes(local_chain, 4)
    assert paid(request) and Transfer.objects.count() == 1


def test_a_lagging_node_never_answers_for_blocks_it_does_not_have(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy, second_proxy: FaultProxy
) -> None:
    """Found with the fault suite's stale-head proxy: the head came from one node (the first failed to
    answer it) and the logs from another that had not seen the range's last blocks yet. Its answer, a
    partial one, was taken for the whole range and the cursor moved past a payment: lost."""
    use_urls(proxy.url, second_proxy.url)
    scan_once()
    request = create_request(merchant)
    proxy.stale_head = local_chain.anvil.w3.eth.block_number  # the first node stops here...
    proxy.fail_latest = True  # ...and cannot tell its head, so the second one gives it
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    run_passes(local_chain, 2)
    proxy.clear()
    run_passes(local_chain, 4)
    assert paid(request) and Transfer.objects.count() == 1


@pytest.mark.parametrize("fault", ["http500", "rpc_error", "malformed"])
def test_a_failing_node_fails_over_and_the_payment_waits_for_a_second_source(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy, fault: str
) -> None:
    use_urls(proxy.url, local_chain.anvil.url)
    scan_once()
    request = create_request(merchant)
    proxy.mode = fault
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    run_passes(local_chain, 4)
    assert Transfer.objects.count() == 0 and not paid(request)
    proxy.mode = "ok"
    run_passes(local_chain, 4)
    assert paid(request) and Transfer.objects.count() == 1


def test_a_single_node_that_errors_changes_nothing_until_it_recovers(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy
) -> None:
    use_urls(proxy.url)
    scan_once()
    request = create_request(merchant)
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    for fault in ("http500", "malformed", "rpc_error"):
        proxy.mode = fault
        run_passes(local_chain, 1)
        assert Transfer.objects.count() == 0
        assert Chain.objects.get(chain_id=31337).cursor.last_error
    proxy.mode = "ok"
    run_passes(local_chain, 4)
    assert paid(request)


def test_a_hanging_node_times_out_and_fails_over(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.STABLEPAY = {**settings.STABLEPAY, "RPC_TIMEOUT_SECONDS": 0.5}
    use_urls(proxy.url, local_chain.anvil.url)
    request = create_request(merchant)
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    proxy.mode = "hang"
    scan_once()
    assert Transfer.objects.count() == 0  # the only node answering cannot confirm itself
    proxy.mode = "ok"
    run_passes(local_chain, 4)
    assert paid(request)


def test_get_logs_ranges_shrink_to_the_node_suggestion_then_catch_up(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy
) -> None:
    use_urls(proxy.url)
    request = create_request(merchant)
    local_chain.mine(300)
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    local_chain.mine(3)
    proxy.max_range = 50
    scan_once()
    scan_once()
    assert paid(request)
    spans = []
    for body in proxy.requests:
        for call in body if isinstance(body, list) else [body]:
            if call["method"] == "eth_getLogs":
                spans.append(int(call["params"][0]["toBlock"], 16) - int(call["params"][0]["fromBlock"], 16) + 1)
    assert max(spans) > 50  # the first, too wide, attempt
    assert sum(1 for span in spans if span > 50) == 1  # refused once, then the suggested span is kept
    assert len([span for span in spans if span <= 50]) <= 320 // 50 + 2


def test_a_pass_costs_the_same_rpc_calls_for_1_or_300_open_requests(
    local_chain: LocalChain, merchant: Merchant, proxy: FaultProxy
) -> None:
    use_urls(proxy.url)
    create_request(merchant)
    scan_once()

    def steady_pass() -> tuple[int, list[str]]:
        local_chain.mine(1)
        proxy.requests.clear()
        scan_once()
        return len(proxy.requests), proxy.methods()

    one = steady_pass()
    for i in range(299):
        create_request(merchant, order_reference=f"N-{i}")
    many = steady_pass()
    assert one == many
    http_requests, methods = many
    assert http_requests == 2  # one batched header request (head + re-checked blocks) and one getLogs
    assert methods.count("eth_getLogs") == 1
