"""Reads for the ops console: the exceptions queue, one request's detail, uncredited transfers and the
watcher's health, plus the amounts ops decide on (short, excess, what a refund would send back).

A request's amounts are valued in HKD at the FX table stored with it when it was quoted
(`request_rates`), never at the live table (issue 16: a rate changed for a moment cannot make a large
refund look small). The four-eyes limits are the merchant's own when set, else the STABLEPAY settings.

Amounts stay exact: token amounts are integer base units, their HKD-equivalent an exact Fraction
(through stablepay.money.fx_ratio), rounded only for display.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from stablepay.conf import app_settings
from stablepay.ledger import reconcile
from stablepay.ledger.selectors import chain_error_text
from stablepay.ledger.services import fx_rates
from stablepay.models import (
    FLAGGED_OUTCOMES,
    ActionState,
    Chain,
    Event,
    Merchant,
    OpsAction,
    PaymentRequest,
    Resolution,
    Token,
    Transfer,
    TransferState,
)
from stablepay.money import EXACT, FxError, format_fiat, format_token_amount, fx_ratio, rates_from_json
from stablepay.redact import redact_urls

HKD = "HKD"
CENT = Decimal("0.01")
DEFAULT_ACCEPT_FOUR_EYES_HKD = "1000.00"  # the refund limit's default: one decision-maker below, two above
Rates = dict[tuple[str, str], Decimal]

# The queue's groups, in the order the queue shows them.
EXCEPTION_GROUPS: tuple[str, ...] = (
    reconcile.UNDERPAID,
    reconcile.OVERPAID,
    reconcile.LATE,
    reconcile.WRONG_TOKEN,
    reconcile.REORGED,
    reconcile.HELD,
)
# What ops may do about each exception. Overpaid: the order is paid in full, so it is kept as is
# (accept) or the excess is sent back (refund); voiding a fully paid order is not offered.
ACTIONS_BY_EXCEPTION: dict[str, tuple[str, ...]] = {
    reconcile.UNDERPAID: (Resolution.ACCEPT, Resolution.REFUND, Resolution.VOID),
    reconcile.OVERPAID: (Resolution.ACCEPT, Resolution.REFUND),
    reconcile.LATE: (Resolution.ACCEPT, Resolution.REFUND, Resolution.VOID),
    reconcile.WRONG_TOKEN: (Resolution.ACCEPT, Resolution.REFUND, Resolution.VOID),
    reconcile.REORGED: (Resolution.ACCEPT, Resolution.REFUND, Resolution.VOID),
    reconcile.HELD: (Resolution.ACCEPT, Resolution.REFUND, Resolution.VOID),
}
BULK_ACTIONS: tuple[str, ...] = (Resolution.ACCEPT, Resolution.VOID)
_HEXISH = re.compile(r"^0x[0-9a-fA-F]{4,64}$")


# amounts --------------------------------------------------------------------------------------------
def hkd_display(value: Fraction | None) -> str:
    """HK$1,234.57 (half-up to the cent, for display only); an em dash when no FX rate applies."""
    if value is None:
        return "\u2014"
    exact = EXACT.divide(Decimal(value.numerator), Decimal(value.denominator))
    cents = exact.quantize(CENT, rounding=ROUND_HALF_UP, context=EXACT)
    return format_fiat(cents, HKD)


def hkd_value(token: Token, base_units: int, rates: Rates) -> Fraction | None:
    """The exact HKD-equivalent of a token amount, or None when no rate links the token's currency to HKD."""
    try:
        ratio = fx_ratio(token.currency, HKD, rates)
    except FxError:
        return None
    return Fraction(int(base_units), 10**token.decimals) * ratio


@dataclass(frozen=True)
class TokenAmount:
    token: Token
    base_units: int
    hkd: Fraction | None

    @property
    def amount(self) -> str:
        """Exact, with thousands grouped: 2,352.000000."""
        return f"{Decimal(format_token_amount(self.base_units, self.token.decimals)):,f}"

    @property
    def symbol(self) -> str:
        return self.token.symbol

    @property
    def hkd_text(self) -> str:
        return hkd_display(self.hkd)


def token_amount(token: Token, base_units: int, rates: Rates) -> TokenAmount:
    return TokenAmount(token=token, base_units=int(base_units), hkd=hkd_value(token, int(base_units), rates))


@dataclass(frozen=True)
class Exposure:
    """Token amounts (one per token) and their HKD-equivalent total."""

    amounts: tuple[TokenAmount, ...] = ()

    @property
    def is_zero(self) -> bool:
        return all(a.base_units == 0 for a in self.amounts)

    @property
    def hkd(self) -> Fraction | None:
        if any(a.hkd is None for a in self.amounts):
            return None
        return sum((a.hkd for a in self.amounts if a.hkd is not None), Fraction(0))

    @property
    def hkd_text(self) -> str:
        return hkd_display(self.hkd)


def _by_token(transfers: Iterable[Transfer], rates: Rates) -> Exposure:
    totals: dict[int, tuple[Token, int]] = {}
    for t in transfers:
        token, units = totals.get(t.token_id, (t.token, 0))
        totals[t.token_id] = (token, units + int(t.amount_base_units))
    return Exposure(tuple(token_amount(token, units, rates) for token, units in totals.values()))


def _credited(transfers: Iterable[Transfer]) -> list[Transfer]:
    return [t for t in transfers if t.state != TransferState.ORPHANED and t.amount_base_units > 0]


def exception_amount(pr: PaymentRequest, transfers: Sequence[Transfer], rates: Rates) -> tuple[str, Exposure]:
    """What the open exception is about: (label, amounts). Labels: short, excess, late, wrong_token, received."""
    token, due, paid = pr.token, int(pr.amount_due_base_units), int(pr.amount_paid_base_units)
    live = [t for t in _credited(transfers) if not t.reviewed]
    if pr.exception in (reconcile.UNDERPAID, reconcile.REORGED):
        return "short", Exposure((token_amount(token, max(due - paid, 0), rates),))
    if pr.exception == reconcile.OVERPAID:
        return "excess", Exposure((token_amount(token, max(paid - due, 0), rates),))
    if pr.exception == reconcile.LATE:
        late = [t for t in live if t.token_id == pr.token_id and t.block_timestamp >= pr.expires_at]
        return "late", _by_token(late or [t for t in live if t.token_id == pr.token_id], rates)
    if pr.exception == reconcile.WRONG_TOKEN:
        return "wrong_token", _by_token([t for t in live if t.token_id != pr.token_id], rates)
    return "received", Exposure((token_amount(token, paid, rates),))


def refund_amount(pr: PaymentRequest, transfers: Sequence[Transfer], rates: Rates) -> Exposure:
    """What a refund of the open exception sends back: the excess for `overpaid`, else every credited
    transfer not yet covered by an earlier resolution, in its own token."""
    live = [t for t in _credited(transfers) if not t.reviewed]
    if pr.exception == reconcile.OVERPAID:
        excess = int(pr.amount_paid_base_units) - int(pr.amount_due_base_units)
        fresh = sum(int(t.amount_base_units) for t in live if t.token_id == pr.token_id)
        return Exposure((token_amount(pr.token, max(min(excess, fresh), 0), rates),))
    return _by_token(live, rates)


def request_rates(pr: PaymentRequest) -> Rates:
    """The FX table `pr` was quoted with (stored on it at creation); empty when none was recorded, and then
    only HKD amounts can be valued in HKD (anything else counts as unpriceable: four eyes)."""
    return rates_from_json(pr.fx_rates)


def four_eyes_threshold(merchant: Merchant | None = None) -> Decimal:
    """The refund limit: the merchant's own (`refund_four_eyes_above_hkd`) when set, else
    STABLEPAY["FOUR_EYES_REFUND_ABOVE_HKD"] (the deployment's, from the environment)."""
    if merchant is not None and merchant.refund_four_eyes_above_hkd is not None:
        return Decimal(merchant.refund_four_eyes_above_hkd)
    return Decimal(app_settings.FOUR_EYES_REFUND_ABOVE_HKD)


def accept_four_eyes_threshold(merchant: Merchant | None = None) -> Decimal:
    """The merchant's `accept_four_eyes_above_hkd` when set, else STABLEPAY["ACCEPT_FOUR_EYES_ABOVE_HKD"]:
    accepting a shortfall worth this much or more (HKD) takes two people. A malformed setting (refused at
    start-up by stablepay.E121) counts as 0: every shortfall does."""
    if merchant is not None and merchant.accept_four_eyes_above_hkd is not None:
        return Decimal(merchant.accept_four_eyes_above_hkd)
    raw = app_settings.ACCEPT_FOUR_EYES_ABOVE_HKD
    try:
        limit = Decimal(str(raw))
    except InvalidOperation:
        return Decimal(0)
    return limit if limit.is_finite() and limit >= 0 else Decimal(0)


def accept_shortfall(pr: PaymentRequest, rates: Rates) -> tuple[int, Fraction | None]:
    """What accepting the request counts as paid without its coin having arrived: (due - received) base
    units of the request's token, and their exact HKD-equivalent (None when no FX path reaches HKD).

    Priced at the request's own quote, not today's rates: the shortfall's share of the request's price
    (amount x short / due, in the request's currency: the exact rate its stored `rate` rounds to 18
    places, and the pro-rata rule the settlement report prices payments by), then to HKD at the exact FX
    ratio. Underpaid: the part not paid; wrong_token (nothing, or too little, of the requested coin): the
    rest of the price; late or overpaid, nothing."""
    due = int(pr.amount_due_base_units)
    units = max(due - int(pr.amount_paid_base_units), 0)
    if units == 0:
        return 0, Fraction(0)
    try:
        ratio = fx_ratio(pr.currency, HKD, rates)
    except FxError:
        return units, None
    return units, Fraction(pr.amount) * Fraction(units, due) * ratio


def accept_needs_approval(pr: PaymentRequest, rates: Rates) -> bool:
    """Four-eyes for an accept: any compliance hold; else a shortfall worth at least the accept limit in
    HKD, or one that cannot be priced in HKD. Below the limit one ops user decides."""
    if pr.exception == reconcile.HELD:
        return True
    units, value = accept_shortfall(pr, rates)
    if units == 0:
        return False
    return value is None or value >= Fraction(accept_four_eyes_threshold(pr.merchant))


def refund_needs_approval(pr: PaymentRequest, refund: Exposure) -> bool:
    """Four-eyes: a refund above the HKD threshold, one whose value cannot be priced in HKD, and any
    refund of a compliance hold need a second ops user."""
    if pr.exception == reconcile.HELD:
        return True
    value = refund.hkd
    return value is None or value > Fraction(four_eyes_threshold(pr.merchant))


# the queue ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueFilters:
    exception: str = ""
    merchant: str = ""
    chain_id: int | None = None
    token: str = ""
    q: str = ""
    awaiting_approval: bool = False


def as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _search(queryset: QuerySet[PaymentRequest], text: str) -> QuerySet[PaymentRequest]:
    """Order reference (part of it), request id, or an address / tx hash (whole or its start)."""
    text = text.strip()
    if not text:
        return queryset
    match = Q(order_reference__icontains=text)
    if (pk := as_uuid(text)) is not None:
        match |= Q(pk=pk)
    if _HEXISH.match(text):
        lower = text.lower()
        on_chain = Transfer.objects.filter(payment_request=OuterRef("pk")).filter(
            Q(tx_hash__startswith=lower) | Q(from_address__istartswith=text)
        )
        match |= (
            Q(pay_to__istartswith=text)
            | Q(refund_address__istartswith=text)
            | Q(refund_tx_hash__istartswith=text)
            | Q(Exists(on_chain))
        )
    return queryset.filter(match)


def request_search(text: str, *, exclude_open: bool = False, limit: int = 20) -> list[PaymentRequest]:
    """Any request (resolved or not) by reference, id, address or tx hash, newest first."""
    if not text.strip():
        return []
    queryset = PaymentRequest.objects.select_related("token__chain", "merchant")
    if exclude_open:
        queryset = queryset.filter(exception="")
    return list(_search(queryset, text).order_by("-created_at")[:limit])


def _with_queue_fields(queryset: QuerySet[PaymentRequest]) -> QuerySet[PaymentRequest]:
    """flagged_at: when the current exception was raised (its first event since the last event with
    another exception); awaiting_approval / pending_action: a decision waits for a second ops user."""
    events = Event.objects.filter(payment_request=OuterRef("pk"))
    last_other = events.exclude(exception=OuterRef("exception")).order_by("-id").values("id")[:1]
    first_since = (
        Event.objects.filter(
            payment_request=OuterRef("pk"), exception=OuterRef("exception"), id__gt=OuterRef("last_other_event")
        )
        .order_by("id")
        .values("at")[:1]
    )
    pending = OpsAction.objects.filter(payment_request=OuterRef("pk"), state=ActionState.PENDING_APPROVAL)
    return (
        queryset.annotate(last_other_event=Coalesce(Subquery(last_other), Value(0)))
        .annotate(flagged_at=Coalesce(Subquery(first_since), F("updated_at")))
        .annotate(awaiting_approval=Exists(pending))
        .annotate(pending_action=Subquery(pending.order_by("-id").values("action")[:1]))
    )


def exception_queryset(filters: QueueFilters, *, with_type: bool = True) -> QuerySet[PaymentRequest]:
    """Requests with an open exception matching the filters, oldest exception first."""
    queryset = PaymentRequest.objects.exclude(exception="").select_related("token__chain", "merchant")
    if with_type and filters.exception:
        queryset = queryset.filter(exception=filters.exception)
    if filters.merchant:
        queryset = queryset.filter(merchant__slug=filters.merchant)
    if filters.chain_id is not None:
        queryset = queryset.filter(token__chain__chain_id=filters.chain_id)
    if filters.token:
        queryset = queryset.filter(token__symbol=filters.token)
    queryset = _search(queryset, filters.q)
    queryset = _with_queue_fields(queryset)
    if filters.awaiting_approval:
        queryset = queryset.filter(
            Exists(OpsAction.objects.filter(payment_request=OuterRef("pk"), state=ActionState.PENDING_APPROVAL))
        )
    return queryset.order_by(F("flagged_at").asc(), "created_at", "pk")


def exception_counts(filters: QueueFilters) -> dict[str, int]:
    """Open exceptions per type under the other filters (the queue's tabs)."""
    rows = exception_queryset(filters, with_type=False).order_by().values("exception").annotate(n=Count("pk"))
    counts = {name: 0 for name in EXCEPTION_GROUPS}
    for row in rows:
        counts[row["exception"]] = row["n"]
    return counts


@dataclass(frozen=True)
class QueueRow:
    pr: PaymentRequest
    flagged_at: datetime
    awaiting_approval: bool
    pending_action: str
    due: TokenAmount
    received: TokenAmount
    label: str
    difference: Exposure


def queue_rows(requests: Iterable[PaymentRequest]) -> list[QueueRow]:
    rows = []
    for pr in requests:
        rates = request_rates(pr)
        transfers = list(pr.transfers.all())
        label, difference = exception_amount(pr, transfers, rates)
        rows.append(
            QueueRow(
                pr=pr,
                flagged_at=getattr(pr, "flagged_at", None) or pr.updated_at,
                awaiting_approval=bool(getattr(pr, "awaiting_approval", False)),
                pending_action=getattr(pr, "pending_action", None) or "",
                due=token_amount(pr.token, int(pr.amount_due_base_units), rates),
                received=token_amount(pr.token, int(pr.amount_paid_base_units), rates),
                label=label,
                difference=difference,
            )
        )
    return rows


def with_transfers(queryset: QuerySet[PaymentRequest]) -> QuerySet[PaymentRequest]:
    return queryset.prefetch_related(Prefetch("transfers", queryset=Transfer.objects.select_related("token")))


@dataclass(frozen=True)
class QueueGroup:
    exception: str
    count: int
    rows: list[QueueRow]

    @property
    def more(self) -> int:
        return max(self.count - len(self.rows), 0)


def exception_queue(filters: QueueFilters, *, per_group: int = 25) -> list[QueueGroup]:
    """The queue grouped by exception type (the groups that have rows), oldest first within each."""
    counts = exception_counts(filters)
    groups = []
    for name in EXCEPTION_GROUPS:
        if (filters.exception and name != filters.exception) or not counts[name]:
            continue
        requests = with_transfers(exception_queryset(filters).filter(exception=name))[:per_group]
        rows = queue_rows(requests)
        if rows:
            groups.append(QueueGroup(exception=name, count=max(counts[name], len(rows)), rows=rows))
    return groups


def queue_filter_choices() -> dict[str, list[tuple[str, str]]]:
    return {
        "merchants": list(Merchant.objects.order_by("name").values_list("slug", "name")),
        "chains": [(str(c.chain_id), c.name) for c in Chain.objects.order_by("chain_id")],
        "tokens": sorted({(s, s) for s in Token.objects.values_list("symbol", flat=True)}),
    }


def pending_approval_count() -> int:
    return OpsAction.objects.filter(state=ActionState.PENDING_APPROVAL).count()


def open_exception_count() -> int:
    return PaymentRequest.objects.exclude(exception="").count()


# one request ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferRow:
    transfer: Transfer
    amount: TokenAmount
    confirmations: int
    required: int
    explorer_url: str
    flags: tuple[str, ...]

    @property
    def meter_percent(self) -> int:
        if self.transfer.state == TransferState.CONFIRMED or self.confirmations >= self.required:
            return 100
        return self.confirmations * 100 // max(self.required, 1)


def _transfer_flags(pr: PaymentRequest, t: Transfer) -> tuple[str, ...]:
    flags = []
    if t.amount_base_units == 0:
        flags.append("zero_value")
    if t.token_id != pr.token_id:
        flags.append("wrong_token")
    elif t.block_timestamp >= pr.expires_at:
        flags.append("late")
    if t.reviewed:
        flags.append("reviewed")
    return tuple(flags)


@dataclass(frozen=True)
class RequestDetail:
    pr: PaymentRequest
    chain: Chain
    fiat_hkd: Fraction | None
    due: TokenAmount
    received: TokenAmount
    label: str
    difference: Exposure | None
    refund: Exposure
    refund_needs_approval: bool
    threshold: Decimal
    transfers: list[TransferRow]
    events: list[Event]
    actions: list[OpsAction]
    pending: OpsAction | None
    last_decision: OpsAction | None
    allowed_actions: tuple[str, ...]
    payer_addresses: list[str] = field(default_factory=list)
    accept_needs_approval: bool = False  # accepting now would wait for a second ops user
    accept_threshold: Decimal = Decimal(DEFAULT_ACCEPT_FOUR_EYES_HKD)
    shortfall_hkd: Fraction | None = None  # what an accept counts as paid that has not arrived, in HKD

    @property
    def shortfall_hkd_text(self) -> str:
        return hkd_display(self.shortfall_hkd)

    @property
    def fiat_hkd_text(self) -> str:
        return hkd_display(self.fiat_hkd)

    @property
    def refund_tx_url(self) -> str:
        return self.chain.explorer_link(self.pr.refund_tx_hash) if self.pr.refund_tx_hash else ""

    @property
    def screening_holds(self) -> list[TransferRow]:
        """The transfers that hold the request now: payer flagged (`hit`) or unscreenable at or above the
        fail-open limit (`failed_closed`), not yet covered by an ops resolution."""
        return [
            row for row in self.transfers if row.transfer.screening in FLAGGED_OUTCOMES and not row.transfer.reviewed
        ]

    @property
    def refund_pending_tx(self) -> bool:
        """A refund was made and its tx hash is still to be recorded."""
        return self.pr.resolution == Resolution.REFUND and not self.pr.refund_tx_hash


def request_detail(request_id: uuid.UUID | str) -> RequestDetail | None:
    pk = as_uuid(str(request_id))
    pr = PaymentRequest.objects.select_related("token__chain__cursor", "merchant").filter(pk=pk).first() if pk else None
    if pr is None:
        return None
    rates = request_rates(pr)
    chain = pr.token.chain
    cursor = getattr(chain, "cursor", None)
    head = cursor.head_block if cursor is not None else None
    transfers = list(pr.transfers.select_related("token").order_by("block_number", "log_index"))
    label, difference = exception_amount(pr, transfers, rates) if pr.exception else ("", None)
    refund = refund_amount(pr, transfers, rates)
    actions = list(pr.ops_actions.select_related("requested_by", "decided_by").order_by("-requested_at", "-id"))
    pending = next((a for a in actions if a.state == ActionState.PENDING_APPROVAL), None)
    try:
        fiat_hkd: Fraction | None = Fraction(pr.amount) * fx_ratio(pr.currency, HKD, rates)
    except FxError:
        fiat_hkd = None
    payers = [t.from_address for t in _credited(transfers) if not t.reviewed]
    return RequestDetail(
        pr=pr,
        chain=chain,
        fiat_hkd=fiat_hkd,
        due=token_amount(pr.token, int(pr.amount_due_base_units), rates),
        received=token_amount(pr.token, int(pr.amount_paid_base_units), rates),
        label=label,
        difference=difference,
        refund=refund,
        refund_needs_approval=bool(pr.exception) and refund_needs_approval(pr, refund),
        threshold=four_eyes_threshold(pr.merchant),
        transfers=[
            TransferRow(
                transfer=t,
                amount=token_amount(t.token, int(t.amount_base_units), rates),
                confirmations=t.confirmations_at(head),
                required=chain.confirmations,
                explorer_url=chain.explorer_link(t.tx_hash),
                flags=_transfer_flags(pr, t),
            )
            for t in transfers
        ],
        events=list(pr.events.order_by("at", "id")),
        actions=actions,
        pending=pending,
        last_decision=next((a for a in actions if a.state == ActionState.DONE), None),
        allowed_actions=ACTIONS_BY_EXCEPTION.get(pr.exception, ()) if pr.exception and pending is None else (),
        payer_addresses=list(dict.fromkeys(payers)),
        accept_needs_approval=bool(pr.exception) and accept_needs_approval(pr, rates),
        accept_threshold=accept_four_eyes_threshold(pr.merchant),
        shortfall_hkd=accept_shortfall(pr, rates)[1],
    )


# the audit log ----------------------------------------------------------------------------------------
def ops_action_list(*, state: str = "", user: str = "") -> QuerySet[OpsAction]:
    queryset = OpsAction.objects.select_related(
        "payment_request__merchant", "payment_request__token", "requested_by", "decided_by"
    )
    if state:
        queryset = queryset.filter(state=state)
    if user:
        queryset = queryset.filter(Q(requested_by__username=user) | Q(decided_by__username=user))
    return queryset.order_by("-requested_at", "-id")


# watcher health -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainHealth:
    chain: Chain
    head: int | None
    scanned: int | None
    lag_blocks: int | None
    last_scan_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    state: str  # ok | lagging | stalled | error | never
    rpc_hosts: list[str]
    watched: int

    @property
    def lag_seconds(self) -> int | None:
        return self.lag_blocks * self.chain.block_time_seconds if self.lag_blocks is not None else None


def halted_tokens() -> list[Token]:
    """Tokens a contract check suspended (the banner on every ops page)."""
    return list(Token.objects.exclude(halted_reason="").select_related("chain").order_by("halted_at"))


def token_registry() -> list[Token]:
    """Every registered token with its licence provenance and its last contract check."""
    return list(Token.objects.select_related("chain").order_by("chain__chain_id", "symbol"))


def watcher_health(*, now: datetime | None = None) -> list[ChainHealth]:
    """Per chain: head, scanned block, lag and the last error, with a verdict for the badge."""
    now = now or timezone.now()
    watched = dict(
        PaymentRequest.objects.filter(watch_until__gt=now)
        .values_list("token__chain_id")
        .annotate(n=Count("pk"))
        .values_list("token__chain_id", "n")
    )
    rows = []
    for chain in Chain.objects.select_related("cursor").order_by("chain_id"):
        cursor = getattr(chain, "cursor", None)
        head = cursor.head_block if cursor else None
        scanned = cursor.scanned_block if cursor else chain.start_block
        lag = max(head - scanned, 0) if head is not None and scanned is not None else None
        last_scan = cursor.last_scan_at if cursor else None
        error_at = cursor.last_error_at if cursor else None
        failing = bool(cursor and cursor.last_error and error_at and (last_scan is None or error_at >= last_scan))
        stale_after = timedelta(seconds=max(60, 10 * chain.block_time_seconds))
        if cursor is None or last_scan is None:
            verdict = "error" if failing else "never"
        elif failing:
            verdict = "error"
        elif now - last_scan > stale_after:
            verdict = "stalled"
        elif lag is not None and lag > max(chain.confirmations, 3):
            verdict = "lagging"
        else:
            verdict = "ok"
        rows.append(
            ChainHealth(
                chain=chain,
                head=head,
                scanned=scanned,
                lag_blocks=lag,
                last_scan_at=last_scan,
                last_error=chain_error_text(chain, cursor.last_error) if cursor else "",
                last_error_at=error_at,
                state=verdict,
                rpc_hosts=redact_urls(chain.rpc_urls),  # scheme and host: a URL's path or query carries keys
                watched=watched.get(chain.pk, 0),
            )
        )
    return rows


# transfers to our addresses that were never credited -------------------------------------------------
UNCREDITED_REASONS: tuple[str, ...] = ("zero_value", "wrong_token", "orphaned", "unmatched")


@dataclass(frozen=True)
class UncreditedRow:
    transfer: Transfer
    reason: str
    amount: TokenAmount
    explorer_url: str


def _uncredited_reason(t: Transfer) -> str:
    if t.payment_request_id is None:
        return "unmatched"
    if t.amount_base_units == 0:
        return "zero_value"
    if t.payment_request is not None and t.token_id != t.payment_request.token_id:
        return "wrong_token"
    return "orphaned"


def _uncredited_filter(reason: str) -> Q:
    by_reason = {
        "unmatched": Q(payment_request__isnull=True),
        "zero_value": Q(amount_base_units=0, payment_request__isnull=False),
        "wrong_token": Q(amount_base_units__gt=0, payment_request__isnull=False)
        & ~Q(token_id=F("payment_request__token_id")),
        "orphaned": Q(amount_base_units__gt=0, state=TransferState.ORPHANED, token_id=F("payment_request__token_id")),
    }
    if reason:
        return by_reason[reason]
    combined = Q()
    for condition in by_reason.values():
        combined |= condition
    return combined


def uncredited_counts() -> dict[str, int]:
    return {reason: Transfer.objects.filter(_uncredited_filter(reason)).count() for reason in UNCREDITED_REASONS}


def uncredited_transfers(*, reason: str = "", limit: int = 100) -> list[UncreditedRow]:
    """Transfers to our deposit addresses that pay nothing: zero value, another registered token,
    dropped by a reorg, or (never expected) matched to no request. Newest first."""
    rates = fx_rates()
    queryset = (
        Transfer.objects.filter(_uncredited_filter(reason))
        .select_related("token", "chain", "payment_request__token", "payment_request__merchant")
        .order_by("-block_number", "-log_index")[:limit]
    )
    return [
        UncreditedRow(
            transfer=t,
            reason=_uncredited_reason(t),
            amount=token_amount(t.token, int(t.amount_base_units), rates),
            explorer_url=t.chain.explorer_link(t.tx_hash),
        )
        for t in queryset
    ]
