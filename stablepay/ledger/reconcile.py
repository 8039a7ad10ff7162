"""The reconciliation rules of CONTRACT §4 as one pure function: (request, transfers, now) -> decision.

No I/O and no Django: services.py feeds it facts read under a row lock and writes what it decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

OPEN, CONFIRMING, PAID, EXPIRED = "open", "confirming", "paid", "expired"
NEEDS_REVIEW, REFUNDED, CANCELED = "needs_review", "refunded", "canceled"
UNDERPAID, OVERPAID, LATE, WRONG_TOKEN, REORGED, HELD = (
    "underpaid",
    "overpaid",
    "late",
    "wrong_token",
    "reorged",
    "held",
)
LIVE = (OPEN, CONFIRMING, EXPIRED)
HELD_REASON = "payer screening held a payment (flagged, or no answer at or above the fail-open limit)"
CLOSED = (REFUNDED, CANCELED)


@dataclass(frozen=True)
class RequestFacts:
    status: str
    exception: str
    due_base_units: int
    tolerance_percent: Decimal
    expires_at: datetime
    resolution: str = ""


@dataclass(frozen=True)
class TransferFacts:
    amount_base_units: int
    is_request_token: bool  # False: another registered token sent to the deposit address
    mined_at: datetime
    confirmations: int
    orphaned: bool
    reviewed: bool = False  # already covered by an ops resolution
    held: bool = False  # its payer was flagged by screening (or unscreenable, failing closed); not reviewed


@dataclass(frozen=True)
class Decision:
    status: str
    exception: str
    amount_paid_base_units: int
    reason: str

    def changes(self, facts: RequestFacts) -> bool:
        return (self.status, self.exception) != (facts.status, facts.exception)


def thresholds(due: int, tolerance_percent: Decimal) -> tuple[Fraction, Fraction]:
    """(enough, overpaid-above): due x (1 - tol/100) and due x (1 + tol/100), exactly."""
    tol = Fraction(tolerance_percent) / 100
    return due * (1 - tol), due * (1 + tol)


def decide(request: RequestFacts, transfers: Sequence[TransferFacts], *, now: datetime, required: int) -> Decision:
    """What the request's status and exception should be, given every transfer seen to its address."""
    live = [t for t in transfers if not t.orphaned and t.amount_base_units > 0]
    mine = [t for t in live if t.is_request_token]
    paid = sum(t.amount_base_units for t in mine)
    on_time = [t for t in mine if t.mined_at < request.expires_at]
    received = sum(t.amount_base_units for t in on_time)
    # A held transfer counts as received (the shopper sees it confirm) but is never credited.
    confirmed = sum(t.amount_base_units for t in on_time if t.confirmations >= required and not t.held)
    confirmed_total = sum(t.amount_base_units for t in mine if t.confirmations >= required and not t.held)
    # Like the other exceptions, `held` is raised once the flagged transfer is confirmed, and it comes first.
    held = any(t.held and t.confirmations >= required for t in live)
    unconfirmed_on_time = any(t.confirmations < required for t in on_time)
    # A late or wrong-token transfer raises its exception only once confirmed, like `underpaid`: until
    # then a reorg may still remove it, and needs_review is never left on its own.
    to_review = [t for t in live if not t.reviewed and (not t.is_request_token or t.mined_at >= request.expires_at)]
    review_confirming = any(t.confirmations < required for t in to_review)
    late = [t for t in to_review if t.is_request_token and t.confirmations >= required]
    wrong = [t for t in to_review if not t.is_request_token and t.confirmations >= required]
    enough, overpaid_above = thresholds(request.due_base_units, request.tolerance_percent)

    def to(status: str, exception: str, reason: str) -> Decision:
        return Decision(status, exception, paid, reason)

    keep = to(request.status, request.exception, "unchanged")

    if held and request.exception != HELD:
        return to(NEEDS_REVIEW, HELD, HELD_REASON)
    if request.status == PAID:
        if request.exception not in (REORGED, HELD) and _lost_its_cover(request, transfers, confirmed, enough):
            return to(NEEDS_REVIEW, REORGED, "a transfer that paid the request was orphaned")
        if request.exception == "" and wrong:
            return to(PAID, WRONG_TOKEN, "another token was sent to the paid request's address")
        if request.exception == "" and confirmed_total > overpaid_above and any(not t.reviewed for t in mine):
            return to(PAID, OVERPAID, "received more than due")
        return keep

    if request.status in CLOSED or request.status == NEEDS_REVIEW:
        unreviewed = [t for t in mine if not t.reviewed and t.confirmations >= required]
        if request.status in CLOSED and (unreviewed or wrong):
            exception = WRONG_TOKEN if wrong and not unreviewed else LATE
            return to(NEEDS_REVIEW, exception, "a payment arrived after the request was closed")
        return keep

    # Live: open, confirming or expired with nothing received yet.
    if wrong:
        return to(NEEDS_REVIEW, WRONG_TOKEN, "another registered token was sent to the deposit address")
    if received >= enough:
        if confirmed >= enough:
            exception = OVERPAID if confirmed_total > overpaid_above else ""
            return to(PAID, exception, "received and confirmed")
        return to(CONFIRMING, "", "received, waiting for confirmations")
    if now < request.expires_at:
        return to(OPEN, "", "waiting for payment")
    if late:
        return to(NEEDS_REVIEW, LATE, "paid after the request expired")
    if review_confirming:
        return to(request.status if request.status != CONFIRMING else OPEN, "", "a payment to review is confirming")
    if received > 0:
        if unconfirmed_on_time:
            return to(request.status if request.status != CONFIRMING else OPEN, "", "partial payment confirming")
        return to(NEEDS_REVIEW, UNDERPAID, "expired with less than the amount due")
    return to(EXPIRED, "", "expired with nothing received")


def _lost_its_cover(
    request: RequestFacts, transfers: Sequence[TransferFacts], confirmed: int, enough: Fraction
) -> bool:
    """Paid on its own: the confirmed cover fell short. Accepted by ops: a transfer ops accepted was orphaned."""
    if request.resolution == "accept":
        return any(t.orphaned and t.reviewed for t in transfers)
    return confirmed < enough
