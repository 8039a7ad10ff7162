"""HttpBackend against a real screening service on 127.0.0.1 (tests/compliance/service.py), through the real
watcher on anvil: what it is sent, one call per block range, its verdicts, and every way it can fail to
answer (down, hanging, trickling, malformed), with the fail-open / fail-closed rule on exact amounts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stablepay.dev import chain as devchain
from stablepay.ingest import watcher
from stablepay.models import Merchant, Token
from tests.compliance.service import ScreeningService
from tests.support.local_chain import FUNDED, LocalChain, create_request
from tests.support.ops import expect
from tests.support.screening import (
    DUE,
    OTHER_PAYER,
    PAYER,
    SERVICE_TOKEN,
    THIRD_PAYER,
    screening_settings,
    transfer_of,
)
from tests.support.services import free_port


def test_flagged_is_held_clear_is_paid_and_each_block_range_is_one_call(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    http_backend.flag(PAYER, "sanctions list match (test)")
    flagged, clear, also_clear = (create_request(merchant, order_reference=f"H-{i}") for i in range(3))
    txs = [
        local_chain.pay(flagged.pay_to, DUE, sender_index=1),
        local_chain.pay(clear.pay_to, DUE, sender_index=2),
        local_chain.pay(also_clear.pay_to, DUE // 2, sender_index=3),
        local_chain.pay(also_clear.pay_to, DUE // 2, sender_index=1),  # the flagged payer again
    ]
    local_chain.scan()  # one block range: four transfers, three payers, one call

    assert len(http_backend.seen) == 1
    [call] = http_backend.seen
    assert call.path == "/v1/screen"
    assert call.headers["Authorization"] == f"Bearer {SERVICE_TOKEN}"
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == {"chain_id": 31337, "addresses": sorted(a.lower() for a in (PAYER, OTHER_PAYER, THIRD_PAYER))}
    outcomes = [(transfer_of(tx).screening, transfer_of(tx).screening_detail) for tx in txs]
    assert outcomes == [
        ("hit", "screening service: sanctions list match (test)"),
        ("clear", "screening service: no match"),
        ("clear", "screening service: no match"),
        ("hit", "screening service: sanctions list match (test)"),
    ]

    local_chain.settle()
    assert len(http_backend.seen) == 1  # known transfers are never screened again
    expect(flagged, "needs_review", "held")
    expect(clear, "paid", "")
    # Half of it came from the flagged payer: held, not paid, and the whole amount shows as received.
    assert int(expect(also_clear, "needs_review", "held").amount_paid_base_units) == DUE

    tx = local_chain.pay(clear.pay_to, 1, sender_index=3)  # a new range with a new transfer: a new call
    local_chain.settle()
    assert http_backend.addresses_asked[1:] == [[THIRD_PAYER.lower()]]
    assert transfer_of(tx).screening == "clear"


def test_a_chunked_answer_is_read(local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService) -> None:
    http_backend.mode = "chunked"
    http_backend.flag(PAYER, "chunked hit")
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    assert (transfer_of(tx).screening, transfer_of(tx).screening_detail) == ("hit", "screening service: chunked hit")
    expect(pr, "needs_review", "held")


def test_no_token_header_without_a_token(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService, settings: Any
) -> None:
    screening_settings(settings, http_token="")
    pr = create_request(merchant)
    local_chain.pay(pr.pay_to, DUE)
    local_chain.settle()
    [call] = http_backend.seen
    assert "Authorization" not in call.headers
    expect(pr, "paid", "")


# the service does not answer: fail closed at or above the limit, open below it ----------------------------
@pytest.fixture
def service_down(settings: Any) -> str:
    """HttpBackend pointed at a port nobody listens on (connection refused), fail-open below HKD 10.00."""
    url = f"http://127.0.0.1:{free_port()}/v1/screen"
    screening_settings(
        settings,
        backend="stablepay.compliance.screening.HttpBackend",
        http_url=url,
        http_timeout_seconds=1.0,
        fail_open_below_hkd="10.00",
    )
    return url


def test_service_down_fails_closed_at_the_limit_and_open_below_it_exactly(
    local_chain: LocalChain, merchant: Merchant, service_down: str
) -> None:
    at_limit = create_request(merchant, amount="10.00", order_reference="AT")
    below = create_request(merchant, amount="9.99", order_reference="BELOW")
    # USDC at USD/HKD 7.80: 1.28 USD = HKD 9.984 (below), 1.29 USD = HKD 10.062 (above).
    usd_below = create_request(merchant, amount="1.28", currency="USD", token="USDC", order_reference="USD-B")
    usd_above = create_request(merchant, amount="1.29", currency="USD", token="USDC", order_reference="USD-A")
    txs = {
        "at": local_chain.pay(at_limit.pay_to, DUE),
        "below": local_chain.pay(below.pay_to, DUE - 10_000),
        "usd_below": local_chain.pay(usd_below.pay_to, 1_280_000, symbol="USDC"),
        "usd_above": local_chain.pay(usd_above.pay_to, 1_290_000, symbol="USDC"),
    }
    started = time.monotonic()
    local_chain.scan()
    assert time.monotonic() - started < 5
    rows = {name: transfer_of(tx) for name, tx in txs.items()}
    assert {name: t.screening for name, t in rows.items()} == {
        "at": "failed_closed",
        "below": "failed_open",
        "usd_below": "failed_open",
        "usd_above": "failed_closed",
    }
    down = "the screening service did not answer: ConnectionError"
    assert rows["at"].screening_detail == f"{down}; worth HK$10.00, not below HK$10.00: held"
    assert rows["below"].screening_detail == f"{down}; worth HK$9.99, below HK$10.00: passed"
    assert rows["usd_below"].screening_detail == f"{down}; worth HK$9.98, below HK$10.00: passed"
    assert rows["usd_above"].screening_detail == f"{down}; worth HK$10.06, not below HK$10.00: held"
    assert all(t.screened_at is not None for t in rows.values())

    local_chain.settle()
    expect(at_limit, "needs_review", "held")
    expect(below, "paid", "")
    expect(usd_below, "paid", "")
    expect(usd_above, "needs_review", "held")


def test_a_token_with_no_hkd_rate_fails_closed_whatever_the_amount(
    local_chain: LocalChain, merchant: Merchant, service_down: str
) -> None:
    w3 = local_chain.anvil.w3
    address = devchain.deploy_token(w3, name="Offshore Yuan", symbol="CNHX", decimals=6)
    devchain.mint(w3, address, devchain.dev_account(1).address, FUNDED)
    Token.objects.create(chain=local_chain.chain, address=address, symbol="CNHX", decimals=6, currency="CNH")
    pr = create_request(merchant)
    tx = devchain.transfer(w3, address, pr.pay_to, 1, sender_index=1)  # one base unit
    local_chain.scan()
    t = transfer_of(tx)
    assert t.screening == "failed_closed"
    assert t.screening_detail.endswith("; no HKD rate for CNH, not below HK$10.00: held")
    local_chain.settle()
    expect(pr, "needs_review", "held")  # held comes before wrong_token


def test_fail_open_below_zero_holds_every_payment(
    local_chain: LocalChain, merchant: Merchant, service_down: str, settings: Any
) -> None:
    screening_settings(settings, fail_open_below_hkd="0")
    pr = create_request(merchant, amount="0.01")
    tx = local_chain.pay(pr.pay_to, 10_000)
    local_chain.settle()
    assert transfer_of(tx).screening == "failed_closed"
    expect(pr, "needs_review", "held")


# slow services: the watcher waits SCREENING_HTTP_TIMEOUT_SECONDS in all, no longer ----------------------------
@pytest.mark.parametrize("mode", ["hang", "trickle"])
def test_a_slow_service_is_given_up_on_within_the_timeout(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService, settings: Any, mode: str
) -> None:
    """`hang` answers after 6 s; `trickle` sends its headers at once, then a ~120-byte body a byte every
    0.2 s (~25 s in all, each read well within the timeout): both are unavailable after 0.5 s."""
    screening_settings(settings, http_timeout_seconds=0.5)
    http_backend.mode, http_backend.hang_s, http_backend.trickle_every_s = mode, 6.0, 0.2
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE)
    started = time.monotonic()
    local_chain.scan()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the scan took {elapsed:.1f}s with a 0.5 s screening timeout"
    t = transfer_of(tx)
    assert t.screening == "failed_open"  # 10.00 HKD, below the default HKD 8,000.00
    assert t.screening_detail.startswith("the screening service did not answer")
    assert t.screening_detail.endswith("; worth HK$10.00, below HK$8,000.00: passed")
    assert len(http_backend.seen) == 1
    local_chain.settle()
    expect(pr, "paid", "")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("malformed", "the screening service's answer is malformed"),
        ("missing", "the screening service did not answer for 1 address(es)"),
        ("not_bool", "the screening service's answer is malformed (flagged must be true or false)"),
        ("http500", "the screening service answered HTTP 500"),
    ],
)
def test_a_wrong_answer_counts_as_no_answer(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService, mode: str, reason: str
) -> None:
    http_backend.mode = mode
    http_backend.flag(PAYER, "would be a hit")  # not believed: the answer as a whole is unusable
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.scan()
    t = transfer_of(tx)
    assert t.screening == "failed_open"
    assert t.screening_detail.startswith(reason)
    assert t.screening_detail.endswith("; worth HK$10.00, below HK$8,000.00: passed")
    local_chain.settle()
    expect(pr, "paid", "")
    assert len(http_backend.seen) == 1


def test_the_watcher_records_every_transfer_while_the_service_is_down(
    local_chain: LocalChain, merchant: Merchant, service_down: str
) -> None:
    """scan_once, as the watcher process runs it: the pass completes and nothing is lost."""
    requests = [create_request(merchant, order_reference=f"D-{i}") for i in range(3)]
    for i, pr in enumerate(requests):
        local_chain.pay(pr.pay_to, DUE - 10_000, sender_index=1 + i)
    local_chain.mine(3)
    for _ in range(3):
        watcher.scan_once()
    for pr in requests:
        t = pr.transfers.get()
        assert (t.state, t.screening) == ("confirmed", "failed_open")
        expect(pr, "paid", "")
