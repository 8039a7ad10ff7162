"""Screening and real reorgs (`anvil_reorg`): a flagged transfer orphaned before it confirms never holds the
request; the same log re-included is revived with its first screening, not screened again; a log that
comes back at another index is a new transfer, screened once."""

from __future__ import annotations

from stablepay.dev import chain as devchain
from stablepay.models import Merchant, PaymentRequest, Transfer
from tests.compliance.service import ScreeningService
from tests.support.local_chain import LocalChain, create_request, send_raw_transfer
from tests.support.ops import expect
from tests.support.screening import DUE, PAYER


def _no_hold_ever(pr: PaymentRequest) -> None:
    assert not pr.events.filter(exception="held").exists()


def test_a_flagged_transfer_orphaned_before_it_confirms_never_holds_and_is_screened_once(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    http_backend.flag(PAYER, "sanctioned wallet (test)")
    pr = create_request(merchant)
    raw, tx = send_raw_transfer(local_chain, pr.pay_to, DUE, sender_index=1)
    local_chain.scan()
    first = Transfer.objects.get(tx_hash=tx.lower())
    assert (first.state, first.screening) == ("seen", "hit")
    expect(pr, "confirming", "")
    assert len(http_backend.seen) == 1

    # The block is replaced by an empty one before the transfer is confirmed.
    local_chain.anvil.reorg(1, [])
    local_chain.settle(blocks=0)
    orphaned = Transfer.objects.get(tx_hash=tx.lower())
    assert orphaned.state == "orphaned" and orphaned.screening == "hit"
    pr = expect(pr, "open", "")
    assert int(pr.amount_paid_base_units) == 0
    local_chain.settle(blocks=4)  # deep enough that it would have confirmed, had it stayed
    expect(pr, "open", "")
    _no_hold_ever(pr)

    # The same signed transaction is mined again, at the same log index: the row is revived in place with
    # the screening it was first given, and the service is not asked again.
    local_chain.anvil.reorg(1, [[raw, 0]])
    local_chain.scan()
    revived = Transfer.objects.get(tx_hash=tx.lower())
    assert revived.pk == first.pk and revived.state == "seen" and revived.block_hash != first.block_hash
    assert (revived.screening, revived.screening_detail, revived.screened_at) == (
        first.screening,
        first.screening_detail,
        first.screened_at,
    )
    expect(pr, "confirming", "")
    _no_hold_ever(pr)
    local_chain.settle()
    assert Transfer.objects.get(tx_hash=tx.lower()).state == "confirmed"
    expect(pr, "needs_review", "held")  # once confirmed, it holds
    assert len(http_backend.seen) == 1
    assert Transfer.objects.count() == 1


def test_a_log_moved_to_another_index_is_a_new_transfer_screened_once(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    http_backend.flag(PAYER, "sanctioned wallet (test)")
    pr = create_request(merchant)
    raw, tx = send_raw_transfer(local_chain, pr.pay_to, DUE, sender_index=1)
    local_chain.scan()
    assert len(http_backend.seen) == 1
    # Another sender's transfer goes first in the replacement block: our log moves from index 0 to 1.
    other = devchain.send_transfer_raw(
        local_chain.anvil.w3, local_chain.tokens["USDC"], devchain.dev_account(5).address, 1, sender_index=2
    )
    local_chain.anvil.reorg(1, [[other, 0], [raw, 0]])
    local_chain.settle()
    rows = {t.log_index: (t.state, t.screening) for t in Transfer.objects.filter(tx_hash=tx.lower())}
    assert rows == {0: ("orphaned", "hit"), 1: ("confirmed", "hit")}
    assert http_backend.addresses_asked == [[PAYER.lower()], [PAYER.lower()]]  # the new log, once
    pr = expect(pr, "needs_review", "held")
    assert int(pr.amount_paid_base_units) == DUE  # the orphaned row does not count twice
    assert pr.events.filter(exception="held").count() == 1
