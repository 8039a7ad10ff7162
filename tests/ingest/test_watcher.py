"""The watcher on a real anvil chain (confirmations 3): transfers recorded once, statuses follow the chain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from stablepay.ingest import watcher
from stablepay.ledger import services
from stablepay.ledger.signals import payment_request_status_changed
from stablepay.models import Chain, Merchant, PaymentRequest, Transfer
from tests.support.local_chain import LocalChain, create_request


def new_request(merchant: Merchant) -> PaymentRequest:
    return create_request(merchant, amount="103.00", currency="MOP", order_reference="MO-1")


def status(request: PaymentRequest) -> tuple[str, str]:
    request.refresh_from_db()
    return request.status, request.exception


def test_exact_payment_confirms_then_pays_once(local_chain: LocalChain, merchant: Merchant) -> None:
    fired: list[str] = []

    def receiver(sender: object, status: str, **kwargs: object) -> None:
        fired.append(status)

    payment_request_status_changed.connect(receiver)
    try:
        request = new_request(merchant)
        local_chain.scan()
        local_chain.pay(request.pay_to, 100_000_000)
        result = local_chain.scan()
        assert result.recorded == 1
        assert status(request) == ("confirming", "")
        local_chain.mine(1)
        local_chain.scan()
        assert status(request) == ("confirming", "")  # 2 confirmations of 3
        local_chain.mine(1)
        local_chain.scan()
        assert status(request) == ("paid", "")
        assert request.amount_paid_base_units == 100_000_000 and request.paid_at is not None
        local_chain.mine(5)
        local_chain.scan()
        local_chain.scan()
        assert fired == ["confirming", "paid"]
        transfer = Transfer.objects.get()
        assert transfer.state == "confirmed" and transfer.confirmations_at(local_chain.anvil.w3.eth.block_number) == 8
    finally:
        payment_request_status_changed.disconnect(receiver)


def test_scanning_the_same_range_twice_changes_nothing(local_chain: LocalChain, merchant: Merchant) -> None:
    request = new_request(merchant)
    local_chain.scan()
    local_chain.pay(request.pay_to, 100_000_000)
    local_chain.mine(3)
    local_chain.scan()
    local_chain.scan()  # the block's hash is re-checked on the next pass, then the transfer is confirmed
    assert status(request) == ("paid", "")
    before = list(Transfer.objects.values())
    cursor = local_chain.chain.cursor
    cursor.scanned_block = local_chain.chain.start_block  # rewind: the same range is read again
    cursor.save()
    local_chain.scan()
    assert list(Transfer.objects.values()) == before
    assert request.events.count() == len({e.status for e in request.events.all()})


def test_transfers_to_unwatched_addresses_and_fake_tokens_are_ignored(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    request = new_request(merchant)
    local_chain.scan()
    local_chain.pay(request.pay_to, 100_000_000, symbol="FAKE")
    local_chain.pay("0x000000000000000000000000000000000000dEaD", 100_000_000)
    local_chain.mine(3)
    local_chain.scan()
    assert Transfer.objects.count() == 0
    assert status(request) == ("open", "")


def test_expiry_without_payment(local_chain: LocalChain, merchant: Merchant) -> None:
    request = new_request(merchant)
    services.payment_requests_expire(now=timezone.now() + timedelta(minutes=16))
    assert status(request) == ("expired", "")


@pytest.mark.django_db(transaction=True)
def test_the_first_scan_starts_at_the_registered_head(local_chain: LocalChain, merchant: Merchant) -> None:
    chain = local_chain.chain
    assert chain.start_block is not None
    local_chain.mine(10)
    result = local_chain.scan()
    assert result.scanned == result.head and chain.cursor.scanned_block == result.head


def test_a_worker_killed_while_reconciling_loses_nothing(
    local_chain: LocalChain, merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = new_request(merchant)
    local_chain.scan()
    scanned = local_chain.chain.cursor.scanned_block
    real, calls = services.payment_requests_reconcile, []

    def dies_on_first_and_third_call(**kwargs: Any) -> object:
        calls.append(1)
        if len(calls) in (1, 3):
            raise SystemExit("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(services, "payment_requests_reconcile", dies_on_first_and_third_call)
    local_chain.pay(request.pay_to, 100_000_000)
    with pytest.raises(SystemExit):
        local_chain.scan()  # the range commits with the request flagged, then it dies reconciling
    assert Transfer.objects.get().state == "seen" and local_chain.chain.cursor.scanned_block > scanned
    assert status(request) == ("open", "")
    assert PaymentRequest.objects.filter(pk=request.pk, reconcile_pending=True).exists()
    local_chain.scan()  # no new block: the flag alone brings the request up to date
    assert status(request) == ("confirming", "")
    local_chain.mine(3)
    with pytest.raises(SystemExit):
        local_chain.scan()  # dies in the pass's last transaction: the confirmation rolls back with it
    assert Transfer.objects.get().state == "seen"
    assert status(request) == ("confirming", "")
    local_chain.scan()  # the transfer confirmed, the request paid
    assert status(request) == ("paid", "")
    assert Transfer.objects.get().state == "confirmed"
    assert not PaymentRequest.objects.filter(reconcile_pending=True).exists()
    assert list(request.events.values_list("status", flat=True).order_by("pk")) == ["open", "confirming", "paid"]


def test_a_flag_left_by_a_killed_pass_is_reconciled_by_the_next(
    local_chain: LocalChain, merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = new_request(merchant)
    local_chain.scan()
    local_chain.pay(request.pay_to, 100_000_000)
    local_chain.scan()
    PaymentRequest.objects.filter(pk=request.pk).update(reconcile_pending=True, status="open")  # as if killed
    local_chain.scan()  # no new block: the pending flag alone brings the request up to date
    assert status(request) == ("confirming", "")
    assert not PaymentRequest.objects.filter(reconcile_pending=True).exists()


def test_a_payment_first_seen_after_a_long_outage_is_still_confirmed(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    from stablepay.ingest import watcher

    request = new_request(merchant)
    local_chain.scan()
    local_chain.pay(request.pay_to, 100_000_000)
    local_chain.mine(watcher.reorg_window(local_chain.chain) + 50)  # no watcher ran for that long
    for _ in range(3):
        local_chain.mine(1)
        local_chain.scan()
    assert Transfer.objects.get().state == "confirmed"
    assert status(request) == ("paid", "")


def test_watched_among_matches_any_case_and_drops_unwatched(merchant: Merchant) -> None:
    requests = [create_request(merchant, order_reference=f"W-{i}") for i in range(5)]
    past = requests[4]
    PaymentRequest.objects.filter(pk=past.pk).update(watch_until=timezone.now() - timedelta(seconds=1))
    asked = [r.pay_to.lower() for r in requests[:2]] + [r.pay_to.upper().replace("0X", "0x") for r in requests[2:]]
    asked.append("0x000000000000000000000000000000000000dead")
    asked += ["0x" + f"{i:040x}" for i in range(5_000)]  # one query however many: no per-address variable
    found = watcher.watched_among(asked, now=timezone.now())
    assert found == {r.pay_to.lower(): r.pk for r in requests[:4]}
    assert watcher.watched_among([], now=timezone.now()) == {}


def test_with_one_confirmation_the_pass_that_sees_the_payment_pays(local_chain: LocalChain, merchant: Merchant) -> None:
    Chain.objects.filter(chain_id=31337).update(confirmations=1)
    request = new_request(merchant)
    local_chain.scan()
    local_chain.pay(request.pay_to, 100_000_000)  # mines the block: it is the head at the next pass
    local_chain.scan()
    assert status(request) == ("paid", "")
    assert Transfer.objects.get().state == "confirmed"


def test_the_object_create_returns_reads_its_later_transfers(local_chain: LocalChain, merchant: Merchant) -> None:
    request = new_request(merchant)  # the very object payment_request_create returned, as the store keeps it
    local_chain.scan()
    local_chain.pay(request.pay_to, 100_000_000)
    local_chain.scan()
    assert [t.amount_base_units for t in request.transfers.all()] == [100_000_000]
    assert request.events.count() == 2
