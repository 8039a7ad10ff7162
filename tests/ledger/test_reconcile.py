"""The pure reconciliation rules (CONTRACT §4), case by case and as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from stablepay.ledger.reconcile import RequestFacts, TransferFacts, decide

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(minutes=15)
DUE = 100_000_000


def facts(status: str = "open", exception: str = "", tolerance: str = "0.5", resolution: str = "") -> RequestFacts:
    return RequestFacts(status, exception, DUE, Decimal(tolerance), EXPIRES, resolution)


def paid_in(
    amount: int,
    *,
    conf: int = 3,
    late: bool = False,
    orphaned: bool = False,
    token: bool = True,
    reviewed: bool = False,
) -> TransferFacts:
    mined = EXPIRES + timedelta(seconds=1) if late else NOW
    return TransferFacts(amount, token, mined, conf, orphaned, reviewed)


def outcome(request: RequestFacts, transfers: list[TransferFacts], now: datetime = NOW) -> tuple[str, str]:
    decision = decide(request, transfers, now=now, required=3)
    return decision.status, decision.exception


AFTER = EXPIRES + timedelta(minutes=1)


def test_the_table() -> None:
    assert outcome(facts(), []) == ("open", "")
    assert outcome(facts(), [paid_in(DUE, conf=1)]) == ("confirming", "")
    assert outcome(facts(), [paid_in(DUE)]) == ("paid", "")
    assert outcome(facts(), [paid_in(DUE - 400_000)]) == ("paid", "")  # within 0.5 %
    assert outcome(facts(), [paid_in(DUE - 600_000)]) == ("open", "")
    assert outcome(facts(), [paid_in(DUE // 2), paid_in(DUE // 2)]) == ("paid", "")
    assert outcome(facts(), [paid_in(DUE * 2)]) == ("paid", "overpaid")
    assert outcome(facts(), [paid_in(DUE // 2)], AFTER) == ("needs_review", "underpaid")
    assert outcome(facts(), [paid_in(DUE // 2, conf=1)], AFTER) == ("open", "")  # wait for confirmations
    assert outcome(facts(), [], AFTER) == ("expired", "")
    assert outcome(facts("expired"), [paid_in(DUE, late=True)], AFTER) == ("needs_review", "late")
    assert outcome(facts(), [paid_in(DUE, token=False)]) == ("needs_review", "wrong_token")
    assert outcome(facts(), [paid_in(0)]) == ("open", "")
    assert outcome(facts(), [paid_in(DUE, orphaned=True)]) == ("open", "")
    assert outcome(facts("confirming"), [paid_in(DUE, orphaned=True)], AFTER) == ("expired", "")
    assert outcome(facts("paid"), [paid_in(DUE, orphaned=True)]) == ("needs_review", "reorged")
    assert outcome(facts("canceled"), [paid_in(DUE)]) == ("needs_review", "late")
    assert outcome(facts("refunded"), [paid_in(DUE, reviewed=True)]) == ("refunded", "")
    assert outcome(facts("paid", resolution="accept"), [paid_in(DUE // 2, reviewed=True)]) == ("paid", "")
    # exceptions wait for confirmations: a reorg may still take the transfer away
    assert outcome(facts(), [paid_in(DUE, token=False, conf=1)]) == ("open", "")
    assert outcome(facts("expired"), [paid_in(DUE, late=True, conf=1)], AFTER) == ("expired", "")
    assert outcome(facts(), [paid_in(DUE), paid_in(DUE, conf=1)]) == ("paid", "")  # not overpaid yet
    assert outcome(facts("paid"), [paid_in(DUE), paid_in(DUE)]) == ("paid", "overpaid")


transfer_strategy = st.builds(
    TransferFacts,
    amount_base_units=st.integers(0, 3 * DUE),
    is_request_token=st.booleans(),
    mined_at=st.sampled_from([NOW, EXPIRES + timedelta(seconds=5)]),
    confirmations=st.integers(0, 5),
    orphaned=st.booleans(),
    reviewed=st.just(False),
)


@given(st.lists(transfer_strategy, max_size=6), st.sampled_from([NOW, AFTER]))
def test_properties(transfers: list[TransferFacts], now: datetime) -> None:
    decision = decide(facts(), transfers, now=now, required=3)
    canonical = [t for t in transfers if not t.orphaned and t.is_request_token]
    # credited never exceeds the canonical transfers, and counts each exactly once
    assert decision.amount_paid_base_units == sum(t.amount_base_units for t in canonical)
    # paid only with confirmed, canonical, on-time transfers covering the amount (less the tolerance)
    if decision.status == "paid":
        covered = sum(t.amount_base_units for t in canonical if t.confirmations >= 3 and t.mined_at < EXPIRES)
        assert covered * 1000 >= DUE * 995
    # after expiry, money received never leaves the request expired: it is paid, confirming (an on-time
    # cover still confirming), flagged, or waiting (open) for confirmations before it is flagged
    received = any(t.amount_base_units > 0 and not t.orphaned for t in transfers)
    if received and now >= EXPIRES:
        assert decision.status in ("paid", "confirming", "needs_review", "open")
    # deciding again on the decided state changes nothing: `paid` fires once
    again = decide(facts(decision.status, decision.exception), transfers, now=now, required=3)
    if decision.status == "paid":
        assert again.status == "paid"


STATUSES = ["open", "confirming", "expired", "paid", "needs_review", "refunded", "canceled"]


@given(st.lists(transfer_strategy, min_size=1, max_size=6), st.sampled_from(STATUSES))
def test_every_received_transfer_ends_applied_or_flagged(transfers: list[TransferFacts], status: str) -> None:
    """Once everything is confirmed and the request has expired, money to the address is never silent."""
    settled = [TransferFacts(t.amount_base_units, t.is_request_token, t.mined_at, 3, t.orphaned) for t in transfers]
    exception = "underpaid" if status == "needs_review" else ""
    decision = decide(facts(status, exception), settled, now=AFTER, required=3)
    received = [t for t in settled if not t.orphaned and t.amount_base_units > 0]
    if not received:
        return
    applied = decision.status == "paid"
    flagged = decision.status == "needs_review" or decision.exception != ""
    assert applied or flagged, (status, decision)


event_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(1, 2 * DUE), st.booleans(), st.booleans()),
        st.tuples(st.just("confirm"), st.integers(0, 5), st.just(False), st.just(False)),
        st.tuples(st.just("orphan"), st.integers(0, 5), st.just(False), st.just(False)),
        st.tuples(st.just("tick"), st.just(0), st.just(False), st.just(False)),
    ),
    max_size=12,
)


@given(event_strategy)
def test_paid_is_entered_at_most_once_whatever_the_chain_does(events: list[tuple[str, int, bool, bool]]) -> None:
    """Payments, confirmations, reorgs and expiry in any order: the request turns paid at most once."""
    transfers: list[TransferFacts] = []
    status, exception, now, entered_paid = "open", "", NOW, 0
    for kind, value, late, wrong in events:
        if kind == "pay":
            transfers.append(paid_in(value, conf=1, late=late, token=not wrong))
        elif kind == "confirm" and transfers:
            t = transfers[value % len(transfers)]
            transfers[value % len(transfers)] = TransferFacts(
                t.amount_base_units, t.is_request_token, t.mined_at, 3, t.orphaned
            )
        elif kind == "orphan" and transfers:
            t = transfers[value % len(transfers)]
            transfers[value % len(transfers)] = TransferFacts(
                t.amount_base_units, t.is_request_token, t.mined_at, 0, True
            )
        elif kind == "tick":
            now = AFTER
        decision = decide(facts(status, exception), transfers, now=now, required=3)
        if decision.status == "paid" and status != "paid":
            entered_paid += 1
        status, exception = decision.status, decision.exception
    assert entered_paid <= 1


# payer screening: `held` ------------------------------------------------------------------------------
def flagged(amount: int, *, conf: int = 3, late: bool = False, token: bool = True) -> TransferFacts:
    mined = EXPIRES + timedelta(seconds=1) if late else NOW
    return TransferFacts(amount, token, mined, conf, False, held=True)


def test_a_flagged_payer_is_held_once_confirmed_and_never_credited() -> None:
    assert outcome(facts(), [flagged(DUE, conf=1)]) == ("confirming", "")
    assert outcome(facts("confirming"), [flagged(DUE)]) == ("needs_review", "held")
    decision = decide(facts("confirming"), [flagged(DUE)], now=NOW, required=3)
    assert decision.amount_paid_base_units == DUE  # received, shown, but the request is not paid


def test_held_comes_before_every_other_exception() -> None:
    assert outcome(facts(), [flagged(DUE, token=False)]) == ("needs_review", "held")
    assert outcome(facts("expired"), [flagged(DUE, late=True)], AFTER) == ("needs_review", "held")
    assert outcome(facts("needs_review", "underpaid"), [paid_in(DUE // 2), flagged(DUE // 2)], AFTER) == (
        "needs_review",
        "held",
    )
    assert outcome(facts("canceled"), [flagged(DUE)]) == ("needs_review", "held")
    assert outcome(facts("refunded"), [flagged(1)]) == ("needs_review", "held")


def test_a_paid_request_is_held_when_a_later_payer_is_flagged_not_called_reorged() -> None:
    # Paid by a payer whose screening had no answer (failed open); the re-screen flags them.
    assert outcome(facts("paid"), [flagged(DUE)]) == ("needs_review", "held")
    # A clean payment covers the order; a flagged top-up still holds it, once confirmed.
    assert outcome(facts("paid"), [paid_in(DUE), flagged(DUE, conf=1)]) == ("paid", "")
    assert outcome(facts("paid"), [paid_in(DUE), flagged(DUE)]) == ("needs_review", "held")


def test_held_stays_until_ops_resolve_it() -> None:
    assert outcome(facts("needs_review", "held"), [flagged(DUE)]) == ("needs_review", "held")
    orphaned = TransferFacts(DUE, True, NOW, 0, True, held=True)
    assert outcome(facts("needs_review", "held"), [orphaned]) == ("needs_review", "held")
    # After the resolution the transfers are reviewed (held=False in the facts): accept -> paid stays paid.
    assert outcome(facts("paid", resolution="accept"), [paid_in(DUE, reviewed=True)]) == ("paid", "")


def test_clean_funds_pay_while_a_flagged_transfer_still_confirms() -> None:
    assert outcome(facts(), [paid_in(DUE), flagged(DUE, conf=1)]) == ("paid", "")
    assert outcome(facts(), [paid_in(DUE // 2), flagged(DUE // 2)]) == ("needs_review", "held")
