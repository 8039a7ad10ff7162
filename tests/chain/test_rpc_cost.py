"""What a pass costs as a node provider bills it (CONTRACT §3 and §7): JSON-RPC calls counted through a
proxy in front of anvil, each element of a batch counted once, for `manage.py stablepay_scan --once`.

Token contract checks (stablepay.registry.token_health) are billed every TOKEN_CHECK_SECONDS, not per block:
each test marks them done just before it counts, so the counts here are the scanner's per-block cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.utils import timezone

from stablepay.chain.rpc import RpcChainReader
from stablepay.ingest import watcher
from stablepay.models import Chain, Merchant, PaymentRequest, Token, Transfer
from tests.support.local_chain import LocalChain, create_request, send_raw_transfer
from tests.support.rpc_proxy import FaultProxy


@pytest.fixture
def counted(local_chain: LocalChain) -> Iterator[FaultProxy]:
    proxy = FaultProxy(local_chain.anvil.url)
    Chain.objects.filter(chain_id=31337).update(rpc_urls=[proxy.url])
    yield proxy
    proxy.close()


def one_pass(proxy: FaultProxy) -> list[str]:
    """`stablepay_scan --once`, exactly once; the JSON-RPC methods it called, batches flattened."""
    Token.objects.update(health_checked_at=timezone.now())
    proxy.requests.clear()
    call_command("stablepay_scan", "--once")
    return proxy.methods()


def status(request: PaymentRequest) -> tuple[str, str]:
    request.refresh_from_db()
    return request.status, request.exception


def test_after_24_blocks_with_payments_a_new_block_costs_at_most_3_calls(
    local_chain: LocalChain, merchant: Merchant, counted: FaultProxy
) -> None:
    requests = [create_request(merchant, order_reference=f"C-{i}") for i in range(24)]
    one_pass(counted)
    with_payment = []
    for request in requests:  # a payment in each of 24 consecutive blocks, a pass after each
        local_chain.pay(request.pay_to, int(request.amount_due_base_units))
        with_payment.append(one_pass(counted))
    assert Transfer.objects.count() == 24
    assert all(len(methods) <= 3 for methods in with_payment), with_payment
    assert all(methods.count("eth_getLogs") == 1 for methods in with_payment)

    local_chain.mine(1)
    empty = one_pass(counted)
    assert empty == ["eth_getBlockByNumber", "eth_getLogs"]  # the head, and that block's logs by its hash
    assert one_pass(counted) == ["eth_getBlockByNumber"]  # no new block: the head alone
    for _ in range(200):
        create_request(merchant, order_reference=f"N-{_}")
    local_chain.mine(1)
    assert one_pass(counted) == empty  # 224 open requests cost what 24 did
    assert [status(r) for r in requests[:-3]] == [("paid", "")] * 21


def test_a_second_source_costs_one_call_only_for_blocks_with_payments(
    local_chain: LocalChain, merchant: Merchant, counted: FaultProxy
) -> None:
    second = FaultProxy(local_chain.anvil.url)
    try:
        Chain.objects.filter(chain_id=31337).update(rpc_urls=[counted.url, second.url])
        request = create_request(merchant)
        one_pass(counted)
        second.requests.clear()
        local_chain.pay(request.pay_to, int(request.amount_due_base_units))
        assert len(one_pass(counted)) == 2 and second.methods() == ["eth_getLogs"]  # asked by block hash
        assert status(request) == ("confirming", "")
        second.requests.clear()
        local_chain.mine(1)
        assert len(one_pass(counted)) == 2 and second.methods() == []
    finally:
        second.close()


def audit_is_clean(local_chain: LocalChain, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    head = local_chain.anvil.w3.eth.block_number
    call_command("stablepay_audit", "--chain-id", "31337", "--from-block", "0", "--to-block", str(head))
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == report["extra"] == report["mismatched"] == []
    return report


@pytest.mark.parametrize("depth", [1, 3, 4])  # 4 = confirmations + 1
def test_a_reorg_costs_calls_in_proportion_to_its_depth(
    local_chain: LocalChain, merchant: Merchant, counted: FaultProxy, depth: int, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = [create_request(merchant, order_reference=f"R-{i}") for i in range(2)]
    for i in range(30):  # a longer header chain than the reorg, with payments in some of its blocks
        if i in (10, 20):
            local_chain.pay(requests[i // 20].pay_to, 1_000)
        else:
            local_chain.mine(1)
        one_pass(counted)
    request = create_request(merchant, order_reference="R-moved")
    raw, tx = send_raw_transfer(local_chain, request.pay_to, int(request.amount_due_base_units))
    local_chain.mine(depth - 1)
    one_pass(counted)
    was_paid = depth >= 3  # the payment's block had `depth` confirmations of 3
    assert status(request) == (("paid", "") if was_paid else ("confirming", ""))

    # The payment's block and the `depth - 1` above it are replaced; the payment moves to the new head.
    local_chain.anvil.reorg(depth, [(raw, depth - 1)])
    methods = one_pass(counted)
    # The head, one header per replaced block below it, and the replaced range's logs (a lone block by
    # its hash; a wider range with its last header in the same batch).
    assert len(methods) == 1 + (depth - 1) + (1 if depth == 1 else 2), methods
    (live,) = Transfer.objects.filter(tx_hash=tx.lower()).exclude(state="orphaned")
    assert live.state == "seen" and live.block_number == local_chain.anvil.w3.eth.block_number
    local_chain.mine(2)
    one_pass(counted)
    if was_paid:  # a transfer that had made it paid was orphaned: ops review it, though it was mined again
        assert status(request) == ("needs_review", "reorged")
    else:
        assert status(request) == ("paid", "")
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "confirmed"
    audit_is_clean(local_chain, capsys)


@pytest.mark.parametrize("registered", ["by the setup file", "with no start block"])
def test_a_catch_up_wider_than_the_window_reads_the_window_s_headers_once(
    local_chain: LocalChain, merchant: Merchant, counted: FaultProxy, registered: str
) -> None:
    """After an outage of 300 blocks: the head, the 127 headers below it in the reorg window (one batch),
    the old tip's header to check nothing below the window was replaced, and the range's logs with its
    last header; the payment mined during the outage, deep by now, is paid in that same pass. A chain
    made without a start block is scanned from the head, and the long-running watcher keeps the Chain it
    loaded then (start block still None): the catch-up must read the same headers."""
    if registered == "with no start block":
        Chain.objects.filter(chain_id=31337).update(start_block=None)
    kept = Chain.objects.get(chain_id=31337)  # as WatchLoop keeps it between passes

    def one_watcher_pass() -> list[str]:
        Token.objects.update(health_checked_at=timezone.now())
        counted.requests.clear()
        watcher.scan_chain(chain=kept, reader=RpcChainReader([counted.url]))
        return counted.methods()

    request = create_request(merchant)
    one_watcher_pass()
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    local_chain.mine(299)
    methods = one_watcher_pass()
    window = 128
    assert methods.count("eth_getBlockByNumber") == 1 + (window - 1) + 1 + 1, methods
    assert methods.count("eth_getLogs") == 1 and len(methods) == window + 3
    assert status(request) == ("paid", "")
    local_chain.mine(1)
    assert one_watcher_pass() == ["eth_getBlockByNumber", "eth_getLogs"]  # back to the steady state
