"""The payment engine's contract (CONTRACT §4, statuses and exceptions) on a real anvil chain.

Chain: confirmations 3. Merchant "acme": tolerance 0.5 %, expiry 15 minutes. Every request here is
10.00 HKD paid in HKDX (6 decimals), so amount due = 10_000_000 base units and "enough" = 9_950_000.

Time moves with `now=` (the scan's and the expiry sweep's clock); a transfer's own time is its block's
timestamp, which anvil takes from the wall clock. Reorgs are real `anvil_reorg` calls: the replaced
blocks keep their heights and change their hashes.

Most tests use `settle()` (mine, then scan until nothing changes); the exact-payment test asserts the
precise progression block by block, and tests/ingest/test_one_pass.py holds the watcher to reaching
each final status in exactly one `stablepay_scan --once` pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from stablepay.dev import chain as devchain
from stablepay.ledger import services
from stablepay.ledger.signals import payment_request_status_changed
from stablepay.models import Event, Merchant, PaymentRequest, Transfer
from tests.support.local_chain import (
    LocalChain,
    create_request,
    ledger_snapshot,
    send_raw_transfer,
    subprocess_database_url,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

DUE = 10_000_000  # 10.00 HKD in HKDX base units
ENOUGH = 9_950_000  # DUE x (1 - 0.5 %)
OVERPAID_ABOVE = 10_050_000  # DUE x (1 + 0.5 %)
AFTER_EXPIRY = timedelta(minutes=16)


# helpers ------------------------------------------------------------------------------------------
def state(request: PaymentRequest) -> tuple[str, str]:
    request.refresh_from_db()
    return request.status, request.exception


def paid_units(request: PaymentRequest) -> int:
    request.refresh_from_db()
    return int(request.amount_paid_base_units)


def head(local_chain: LocalChain) -> int:
    return int(local_chain.anvil.w3.eth.block_number)


def block_of(local_chain: LocalChain, tx_hash: str) -> int:
    return int(local_chain.anvil.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])


def live_transfers(tx_hash: str) -> list[Transfer]:
    return list(Transfer.objects.filter(tx_hash=tx_hash.lower()).exclude(state="orphaned"))


@pytest.fixture
def status_changes() -> Iterator[list[tuple[str, str, str]]]:
    """(previous_status, status, exception) of every payment_request_status_changed signal."""
    fired: list[tuple[str, str, str]] = []

    def receiver(sender: object, previous_status: str, status: str, exception: str, **kwargs: object) -> None:
        fired.append((previous_status, status, exception))

    payment_request_status_changed.connect(receiver, weak=False)
    try:
        yield fired
    finally:
        payment_request_status_changed.disconnect(receiver)


@pytest.fixture
def request_(merchant: Merchant) -> PaymentRequest:
    """An open 10.00 HKD request in HKDX, created now (expires in 15 minutes)."""
    request = create_request(merchant, amount="10.00", currency="HKD", token="HKDX")
    assert int(request.amount_due_base_units) == DUE
    return request


# paying the right amount in time ---------------------------------------------------------------------
def test_exact_payment_is_confirming_after_one_block_and_paid_at_three_confirmations(
    local_chain: LocalChain, request_: PaymentRequest, status_changes: list[tuple[str, str, str]]
) -> None:
    tx = local_chain.pay(request_.pay_to, DUE)
    local_chain.scan()  # the transfer's block is the head: 1 confirmation
    assert state(request_) == ("confirming", "")
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "seen"

    local_chain.mine(1)
    local_chain.scan()  # 2 confirmations
    assert state(request_) == ("confirming", "")

    local_chain.mine(1)
    local_chain.scan()  # 3 confirmations, in a block whose hash the previous pass recorded
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == DUE and request_.paid_at is not None
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "confirmed"

    local_chain.settle(blocks=5)  # more blocks and passes fire nothing more
    assert status_changes == [("open", "confirming", ""), ("confirming", "paid", "")]
    assert [s for _, s, _ in status_changes].count("paid") == 1


def test_short_by_less_than_the_tolerance_is_paid(local_chain: LocalChain, request_: PaymentRequest) -> None:
    short = DUE - 40_000  # 0.4 % short, within the 0.5 % tolerance
    assert short >= ENOUGH
    local_chain.pay(request_.pay_to, short)
    local_chain.settle()
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == short


def test_two_partial_payments_covering_the_amount_before_expiry_are_paid(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    local_chain.pay(request_.pay_to, 4_000_000, sender_index=1)
    local_chain.settle()
    assert state(request_) == ("open", "")
    assert paid_units(request_) == 4_000_000

    local_chain.pay(request_.pay_to, DUE - 4_000_000, sender_index=2)
    local_chain.settle()
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == DUE
    assert Transfer.objects.filter(payment_request=request_, state="confirmed").count() == 2


def test_overpayment_is_paid_with_the_overpaid_exception(local_chain: LocalChain, request_: PaymentRequest) -> None:
    local_chain.pay(request_.pay_to, OVERPAID_ABOVE + 1)
    local_chain.settle()
    assert state(request_) == ("paid", "overpaid")
    assert paid_units(request_) == OVERPAID_ABOVE + 1


# paying too little, too late or the wrong thing --------------------------------------------------------
def test_half_paid_then_expiry_is_underpaid_with_the_exact_amount(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    local_chain.pay(request_.pay_to, DUE // 2)
    local_chain.settle()
    assert state(request_) == ("open", "")

    services.payment_requests_expire(now=timezone.now() + AFTER_EXPIRY)
    assert state(request_) == ("needs_review", "underpaid")
    assert paid_units(request_) == DUE // 2


def test_payment_after_expiry_is_late(local_chain: LocalChain, merchant: Merchant) -> None:
    # Created 20 minutes ago with a 15-minute expiry: any block mined now is after expires_at.
    request = create_request(merchant, now=timezone.now() - timedelta(minutes=20))
    assert request.expires_at < timezone.now()
    local_chain.pay(request.pay_to, DUE)
    local_chain.settle()
    assert state(request) == ("needs_review", "late")
    assert Transfer.objects.get(payment_request=request).block_timestamp >= request.expires_at


def test_payment_after_the_expiry_sweep_is_late(local_chain: LocalChain, merchant: Merchant) -> None:
    request = create_request(merchant, now=timezone.now() - timedelta(minutes=20))
    services.payment_requests_expire()
    assert state(request) == ("expired", "")
    local_chain.pay(request.pay_to, DUE)
    local_chain.settle()
    assert state(request) == ("needs_review", "late")


def test_another_registered_token_is_wrong_token(local_chain: LocalChain, request_: PaymentRequest) -> None:
    local_chain.pay(request_.pay_to, DUE, symbol="USDC")
    local_chain.scan()
    assert state(request_) == ("open", "")  # flagged once confirmed: a reorg may still remove it
    local_chain.settle()
    assert state(request_) == ("needs_review", "wrong_token")
    assert paid_units(request_) == 0  # USDC is not the request's token: never counted as paid
    assert Transfer.objects.get(payment_request=request_).token.symbol == "USDC"


def test_a_fake_token_with_the_same_symbol_is_never_credited(local_chain: LocalChain, request_: PaymentRequest) -> None:
    fake = devchain.token_contract(local_chain.anvil.w3, local_chain.fake_hkdx)
    assert fake.functions.symbol().call() == "HKDX"
    local_chain.pay(request_.pay_to, DUE, symbol="FAKE")
    local_chain.settle()
    assert not Transfer.objects.exists()
    assert state(request_) == ("open", "") and paid_units(request_) == 0


def test_a_zero_value_transfer_is_ignored(local_chain: LocalChain, request_: PaymentRequest) -> None:
    local_chain.pay(request_.pay_to, 0)
    local_chain.settle()
    assert state(request_) == ("open", "")
    assert paid_units(request_) == 0
    assert all(t.amount_base_units == 0 for t in Transfer.objects.all())


# reorgs -----------------------------------------------------------------------------------------------
def test_a_reorg_that_removes_a_seen_transfer_reopens_the_request(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    tx = local_chain.pay(request_.pay_to, DUE)
    local_chain.scan()
    assert state(request_) == ("confirming", "")

    local_chain.anvil.reorg(1, [])  # the transfer's block is replaced by an empty one
    local_chain.settle(blocks=0)
    assert state(request_) == ("open", "")
    assert paid_units(request_) == 0
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "orphaned"


def test_a_reorg_that_removes_a_seen_transfer_after_expiry_expires_the_request(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    tx = local_chain.pay(request_.pay_to, DUE)
    local_chain.scan()
    assert state(request_) == ("confirming", "")

    later = timezone.now() + AFTER_EXPIRY
    services.payment_requests_expire(now=later)  # the covering transfer was mined in time: still confirming
    assert state(request_) == ("confirming", "")

    local_chain.anvil.reorg(1, [])
    local_chain.settle(blocks=0, now=later)
    assert state(request_) == ("expired", "")
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "orphaned"


def test_a_reorg_that_removes_a_seen_wrong_token_transfer_reopens_the_request(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    tx = local_chain.pay(request_.pay_to, DUE, symbol="USDC")
    local_chain.scan()  # seen, 1 confirmation

    local_chain.anvil.reorg(1, [])
    local_chain.settle(blocks=0)
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "orphaned"
    assert state(request_) == ("open", "")

    local_chain.pay(request_.pay_to, DUE)  # the payer then pays with the right token: credited as usual
    local_chain.settle()
    assert state(request_) == ("paid", "")


def test_a_reorg_that_removes_a_seen_late_transfer_leaves_the_request_expired(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, now=timezone.now() - timedelta(minutes=20))
    services.payment_requests_expire()
    tx = local_chain.pay(request.pay_to, DUE)
    local_chain.scan()  # seen, 1 confirmation: not yet flagged, a reorg may still remove it
    services.payment_requests_expire()
    assert state(request) == ("expired", "")

    local_chain.anvil.reorg(1, [])
    local_chain.settle(blocks=0)
    services.payment_requests_expire()
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "orphaned"
    assert state(request) == ("expired", "")


def test_a_transfer_re_included_by_a_reorg_is_counted_once(local_chain: LocalChain, request_: PaymentRequest) -> None:
    raw, tx = send_raw_transfer(local_chain, request_.pay_to, DUE)
    mined_in = block_of(local_chain, tx)
    local_chain.mine(1)
    local_chain.scan()
    assert state(request_) == ("confirming", "")
    old_hash = Transfer.objects.get(tx_hash=tx.lower()).block_hash

    # Replace the transfer's block and the one above it; the same signed tx lands one block later.
    local_chain.anvil.reorg(2, [[raw, 1]])
    assert block_of(local_chain, tx) == mined_in + 1
    local_chain.settle()
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == DUE
    (row,) = live_transfers(tx)
    assert row.state == "confirmed" and row.block_number == mined_in + 1 and row.block_hash != old_hash
    assert int(row.amount_base_units) == DUE


def test_a_transfer_re_included_in_the_same_block_is_counted_once(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    raw, tx = send_raw_transfer(local_chain, request_.pay_to, DUE)
    local_chain.scan()
    assert state(request_) == ("confirming", "")

    local_chain.anvil.reorg(1, [[raw, 0]])  # same height, same log index, new block hash
    local_chain.settle()
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == DUE
    assert len(live_transfers(tx)) == 1
    assert Transfer.objects.filter(payment_request=request_).count() == 1


def test_a_transfer_re_included_at_another_log_index_is_counted_once(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    raw, tx = send_raw_transfer(local_chain, request_.pay_to, DUE, sender_index=1)
    local_chain.scan()
    assert state(request_) == ("confirming", "")
    # Another sender's transfer goes first in the replacement block: our log moves from index 0 to 1,
    # so the ledger sees a new (tx_hash, log_index) while the old one is orphaned.
    other = devchain.send_transfer_raw(
        local_chain.anvil.w3, local_chain.tokens["USDC"], devchain.dev_account(5).address, 1, sender_index=2
    )
    local_chain.anvil.reorg(1, [[other, 0], [raw, 0]])
    local_chain.settle()
    rows = {t.log_index: t.state for t in Transfer.objects.filter(tx_hash=tx.lower())}
    assert rows == {0: "orphaned", 1: "confirmed"}
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == DUE


def test_a_transfer_a_reorg_moves_below_its_old_block_is_found(
    local_chain: LocalChain, request_: PaymentRequest
) -> None:
    """Found by the fault suite (tests/chaos), when the watcher kept only some block hashes: the chain
    may fork below the payment's block, and a payment re-included there, below its old block, was lost
    (orphaned, never rescanned). The header chain finds the exact common ancestor and rescans from it."""
    local_chain.mine(4)
    local_chain.scan()  # stores the tip, below the payment's block
    raw, tx = send_raw_transfer(local_chain, request_.pay_to, DUE)
    mined_in = block_of(local_chain, tx)
    local_chain.mine(1)
    local_chain.scan()  # the payment's block is on the header chain, 2 confirmations of 3
    assert state(request_) == ("confirming", "")

    # Replace the payment's block, the two below it (never stored) and the two above: it lands lower.
    depth = head(local_chain) - mined_in + 3
    local_chain.anvil.reorg(depth, [[raw, 0]])
    assert block_of(local_chain, tx) == mined_in - 2
    local_chain.settle()
    assert state(request_) == ("paid", "")
    assert paid_units(request_) == DUE
    (row,) = live_transfers(tx)
    assert row.state == "confirmed" and row.block_number == mined_in - 2


def test_a_reorg_deeper_than_the_confirmations_after_paid_needs_review(
    local_chain: LocalChain, request_: PaymentRequest, status_changes: list[tuple[str, str, str]]
) -> None:
    tx = local_chain.pay(request_.pay_to, DUE)
    mined_in = block_of(local_chain, tx)
    local_chain.settle()
    assert state(request_) == ("paid", "")
    depth = head(local_chain) - mined_in + 1
    assert depth > local_chain.chain.confirmations

    local_chain.anvil.reorg(depth, [])  # drops the transfer that paid the request
    local_chain.settle(blocks=0)
    assert state(request_) == ("needs_review", "reorged")
    assert paid_units(request_) == 0
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "orphaned"
    assert [s for _, s, _ in status_changes].count("paid") == 1


# idempotence ------------------------------------------------------------------------------------------
def test_scanning_the_same_range_twice_changes_nothing(
    local_chain: LocalChain, request_: PaymentRequest, status_changes: list[tuple[str, str, str]]
) -> None:
    local_chain.pay(request_.pay_to, DUE)
    local_chain.settle()
    assert state(request_) == ("paid", "")
    before, events = ledger_snapshot(), Event.objects.count()
    fired = list(status_changes)

    cursor = local_chain.chain.cursor
    cursor.scanned_block = local_chain.chain.start_block  # rewind: the whole range is read again
    cursor.save(update_fields=["scanned_block"])
    local_chain.scan()
    local_chain.scan()

    assert ledger_snapshot() == before
    assert Event.objects.count() == events
    assert status_changes == fired


# `manage.py stablepay_scan --once`, started only once both processes have Django loaded and a database
# connection open, so that their passes really overlap instead of one finishing during the other's start-up.
_SCAN_AT_SIGNAL = """
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
import django
django.setup()
from django.core.management import execute_from_command_line
from django.db import connection
import stablepay.ingest.watcher
connection.ensure_connection()
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.001)
execute_from_command_line(["manage.py", "stablepay_scan", "--once"])
"""


def _scan_in_two_processes(tmp_path: Path) -> list[str]:
    """Run one `stablepay_scan --once` pass in each of two processes at the same moment; returns their output."""
    go = tmp_path / f"go-{os.urandom(4).hex()}"
    env = {**os.environ, "DATABASE_URL": subprocess_database_url()}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCAN_AT_SIGNAL, str(go)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", line + proc.stdout.read()
        go.touch()
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
    return outputs


@pytest.mark.django_db(transaction=True)
def test_two_processes_scanning_at_once_record_everything_once(
    local_chain: LocalChain, merchant: Merchant, tmp_path: Path
) -> None:
    assert connection.vendor == "postgresql"
    requests = [create_request(merchant, order_reference=f"T-{i}") for i in range(3)]
    txs = [local_chain.pay(r.pay_to, DUE, sender_index=1 + i) for i, r in enumerate(requests)]
    local_chain.mine(3)
    for _ in range(3):  # read the new range, re-check the blocks and confirm, then a quiet pass: all doubled
        _scan_in_two_processes(tmp_path)

    assert Transfer.objects.count() == len(txs)
    for request, tx in zip(requests, txs, strict=True):
        assert state(request) == ("paid", "")
        assert paid_units(request) == DUE
        assert len(live_transfers(tx)) == 1
        statuses = list(request.events.values_list("status", flat=True))
        assert statuses in (["open", "confirming", "paid"], ["open", "paid"])

    before, events = ledger_snapshot(), Event.objects.count()
    cursor = local_chain.chain.cursor
    cursor.scanned_block = local_chain.chain.start_block  # both re-read the whole range at once
    cursor.save(update_fields=["scanned_block"])
    _scan_in_two_processes(tmp_path)
    assert ledger_snapshot() == before
    assert Event.objects.count() == events
