"""Reads for the merchant dashboard and the settlements API (CONTRACT §4).

Days are Hong Kong calendar days: a payment belongs to the Asia/Hong_Kong date of its `paid_at`, and a
date range `date_from..date_to` covers [date_from 00:00 HKT, date_to + 1 day 00:00 HKT). Amounts are what
was received (`amount_paid_base_units`) by the merchant's `paid` requests, summed in the database on
PostgreSQL (exact numeric arithmetic) and in Python on SQLite (whose SUM over the base-units columns would go
through floating point: stablepay/fields.py).

The fiat rule. A payment's fiat amount is its price, pro rata to what was received:

    fiat_amount = amount x amount_paid_base_units / amount_due_base_units, rounded half up to the cent,

in the request's own currency (`fiat_currency`, the currency the merchant priced in). It uses only what
the ledger stored at quote time, so a later FX change never rewrites a past settlement, and a request
paid exactly what was due reports exactly its price (the due amount was rounded up by less than one base
unit). A settlement row's `fiat_amount` is the sum of its payments' fiat amounts, so the CSV's fiat
column adds up to the report's to the cent, as its base units add up to the ledger's.

Rows are per day, chain, token and fiat currency: a merchant that prices in one currency (one store) gets
exactly one row per day, chain and token; one that prices the same token in HKD and MOP gets a row for
each, because adding HKD to MOP would take an FX conversion the ledger never made.

HKD-equivalent (the overview and its chart): fiat amounts converted to HKD with the exact FX ratio at the
current rates (`stablepay.ledger.services.fx_rates`), summed exactly and rounded half up to the cent once per
figure shown. A currency with no rate to HKD is left out of the HKD figures and counted as unpriced.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import NotSupportedError, connection
from django.db.models import Count, DecimalField, F, Func, Max, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from stablepay.ledger.services import fx_rates
from stablepay.models import (
    Event,
    Merchant,
    PaymentRequest,
    Status,
    Token,
    Transfer,
    TransferState,
    WebhookDelivery,
)
from stablepay.money import EXACT, FxError, base_units_to_decimal, format_token_amount, fx_ratio
from stablepay.registry import token_policy
from stablepay.text_rules import spreadsheet_cell

HKT = ZoneInfo("Asia/Hong_Kong")
CENT = Decimal("0.01")
REPORT_CURRENCY = "HKD"
COUNTED_TRANSFER_STATES = (TransferState.SEEN, TransferState.CONFIRMED)
OPEN_STATUSES = (Status.OPEN, Status.CONFIRMING)
PERIOD_DAYS = {"today": 1, "7d": 7, "30d": 30}
CHART_DAYS = 30


# Membership ---------------------------------------------------------------------------------------
def merchants_for_user(user: AbstractBaseUser | AnonymousUser) -> list[Merchant]:
    """The merchants this user is a member of, by name; none for an anonymous or inactive user."""
    if not user.is_authenticated or not user.is_active:
        return []
    return list(Merchant.objects.filter(members__pk=user.pk).order_by("name", "slug"))


# Dates --------------------------------------------------------------------------------------------
def hk_today(now: datetime | None = None) -> date:
    return hk_date(now or timezone.now())


def hk_date(moment: datetime) -> date:
    """The Hong Kong calendar date of an aware datetime."""
    return timezone.localtime(moment, HKT).date()


def day_start(day: date) -> datetime | None:
    """00:00 Hong Kong time on `day`, or None when it lies outside what a datetime can hold in UTC."""
    try:
        start = datetime.combine(day, time.min, tzinfo=HKT)
        start.astimezone(UTC)
    except OverflowError:
        return None
    return start


def day_end(day: date) -> datetime | None:
    """00:00 Hong Kong time on the day after `day` (exclusive end), or None when there is no such day."""
    return None if day >= date.max else day_start(day + timedelta(days=1))


# The fiat rule ------------------------------------------------------------------------------------
def payment_fiat_cents(*, amount: Decimal, paid_base_units: int, due_base_units: int) -> int:
    """round_half_up(amount x paid / due) in cents: the Python twin of `FiatCents`, exact integers only."""
    cents = int(amount.scaleb(2))  # amount has 2 places, so this is exact
    return (2 * paid_base_units * cents + due_base_units) // (2 * due_base_units)


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2, context=EXACT).quantize(CENT, context=EXACT)


def fraction_to_cents(value: Fraction) -> Decimal:
    """A non-negative exact amount rounded half up to the cent."""
    return cents_to_decimal((value * 200 + 1) // 2)


class FiatCents(Func):
    """Per payment, in SQL: round_half_up(amount x amount_paid_base_units / amount_due_base_units) in cents.

    PostgreSQL computes it exactly with numeric arithmetic and DIV (an exact integer quotient). SQLite has
    no exact arithmetic for 78-digit integers (64-bit integers, else floats): there `payment_fiat_cents`
    computes it in Python, and this expression refuses to compile rather than round.
    """

    arity = 3
    output_field = DecimalField(max_digits=78, decimal_places=0)
    templates = {
        "postgresql": "DIV(2 * {paid} * ROUND({amount} * 100) + {due}, 2 * {due})",
        "default": "FLOOR((2 * {paid} * ROUND({amount} * 100) + {due}) / (2 * {due}))",
    }

    def __init__(
        self, paid: Any = "amount_paid_base_units", amount: Any = "amount", due: Any = "amount_due_base_units"
    ) -> None:
        super().__init__(
            *(F(e) if isinstance(e, str) else e for e in (paid, amount, due)),
            output_field=DecimalField(max_digits=78, decimal_places=0),
        )

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        compiled = dict(
            zip(("paid", "amount", "due"), (compiler.compile(e) for e in self.get_source_expressions()), strict=True)
        )
        if connection.vendor == "sqlite":
            raise NotSupportedError("FiatCents is not exact on SQLite: use payment_fiat_cents in Python")
        template = self.templates.get(connection.vendor, self.templates["default"])
        params: list[Any] = []

        def fill(match: re.Match[str]) -> str:
            sql, part_params = compiled[match.group(1)]
            params.extend(part_params)
            return f"({sql})"

        return re.sub(r"\{(paid|amount|due)\}", fill, template), params


# Settlement report --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SettlementRow:
    """One row of the settlement report (CONTRACT §4): a day, chain, token and fiat currency."""

    date: date
    chain_id: int
    chain_name: str
    token: str
    decimals: int
    count: int
    amount_base_units: int
    fiat_currency: str
    fiat_amount: Decimal

    @property
    def amount(self) -> Decimal:
        return base_units_to_decimal(self.amount_base_units, self.decimals)

    def as_api(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "chain_id": self.chain_id,
            "token": self.token,
            "count": self.count,
            "amount": format_token_amount(self.amount_base_units, self.decimals),
            "amount_base_units": str(self.amount_base_units),
            "fiat_currency": self.fiat_currency,
            "fiat_amount": format(self.fiat_amount, "f"),
        }


@dataclass(frozen=True)
class SettlementTotal:
    """A whole range's total for one chain, token and fiat currency (the report's footer)."""

    chain_id: int
    chain_name: str
    token: str
    decimals: int
    fiat_currency: str
    count: int
    amount_base_units: int
    fiat_amount: Decimal

    @property
    def amount(self) -> Decimal:
        return base_units_to_decimal(self.amount_base_units, self.decimals)


def paid_requests(*, merchant: Merchant, date_from: date, date_to: date) -> QuerySet[PaymentRequest]:
    """The merchant's `paid` requests whose paid_at falls on a Hong Kong day in date_from..date_to."""
    queryset = PaymentRequest.objects.filter(merchant=merchant, status=Status.PAID, paid_at__isnull=False)
    start, end = day_start(date_from), day_end(date_to)
    if start is not None:
        queryset = queryset.filter(paid_at__gte=start)
    if end is not None:
        queryset = queryset.filter(paid_at__lt=end)
    return queryset


def settlement_rows(*, merchant: Merchant, date_from: date, date_to: date) -> list[SettlementRow]:
    """The settlement report: one row per HK day, chain, token, fiat currency; aggregated in the database
    on PostgreSQL, in Python on SQLite (the embedded mode's few rows), exactly on both."""
    paid = paid_requests(merchant=merchant, date_from=date_from, date_to=date_to)
    if connection.vendor == "sqlite":
        return _settlement_rows_in_python(paid)
    grouped = (
        paid.annotate(day=TruncDate("paid_at", tzinfo=HKT))
        .values(
            "day",
            "token_id",
            "token__chain__chain_id",
            "token__chain__name",
            "token__symbol",
            "token__decimals",
            "currency",
        )
        .annotate(n=Count("pk"), paid_sum=Sum("amount_paid_base_units"), fiat_cents=Sum(FiatCents()))
        .order_by("day", "token__chain__chain_id", "token__symbol", "currency")
    )
    return [
        SettlementRow(
            date=row["day"],
            chain_id=row["token__chain__chain_id"],
            chain_name=row["token__chain__name"],
            token=row["token__symbol"],
            decimals=row["token__decimals"],
            count=row["n"],
            amount_base_units=int(row["paid_sum"]),
            fiat_currency=row["currency"],
            fiat_amount=cents_to_decimal(int(row["fiat_cents"])),
        )
        for row in grouped
    ]


def _settlement_rows_in_python(paid: QuerySet[PaymentRequest]) -> list[SettlementRow]:
    """`settlement_rows` for SQLite: each payment read once, summed with Python's exact integers."""
    rows = paid.annotate(day=TruncDate("paid_at", tzinfo=HKT)).values_list(
        "day",
        "token__chain__chain_id",
        "token__symbol",
        "currency",
        "token_id",
        "token__chain__name",
        "token__decimals",
        "amount",
        "amount_paid_base_units",
        "amount_due_base_units",
    )
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for day, chain_id, symbol, currency, token_id, chain_name, decimals, amount, paid_units, due_units in rows:
        entry = sums.setdefault((day, chain_id, symbol, currency, token_id), [chain_name, decimals, 0, 0, 0])
        entry[2] += 1
        entry[3] += int(paid_units)
        entry[4] += payment_fiat_cents(amount=amount, paid_base_units=int(paid_units), due_base_units=int(due_units))
    return [
        SettlementRow(
            date=day,
            chain_id=chain_id,
            chain_name=chain_name,
            token=symbol,
            decimals=decimals,
            count=count,
            amount_base_units=units,
            fiat_currency=currency,
            fiat_amount=cents_to_decimal(cents),
        )
        for (day, chain_id, symbol, currency, _), (chain_name, decimals, count, units, cents) in sorted(sums.items())
    ]


def settlement_totals(rows: Iterable[SettlementRow]) -> list[SettlementTotal]:
    """Sum already-aggregated rows (a handful per day) per chain, token and fiat currency."""
    sums: dict[tuple[int, str, str], list[Any]] = {}
    for row in rows:
        key = (row.chain_id, row.token, row.fiat_currency)
        entry = sums.setdefault(key, [row.chain_name, row.decimals, 0, 0, Decimal(0)])
        entry[2] += row.count
        entry[3] += row.amount_base_units
        entry[4] = EXACT.add(entry[4], row.fiat_amount)
    return [
        SettlementTotal(chain_id, name, token, decimals, currency, count, units, fiat)
        for (chain_id, token, currency), (name, decimals, count, units, fiat) in sorted(sums.items())
    ]


# Settlement CSV -----------------------------------------------------------------------------------
CSV_HEADER = (
    "date",
    "paid_at",
    "request_id",
    "order_reference",
    "chain_id",
    "chain",
    "token",
    "tx_hash",
    "from",
    "amount",
    "amount_base_units",
    "fiat_currency",
    "fiat_amount",
    "price",
    "rate",
    "confirmations",
    "status",
    "exception",
)


def _cell_text(value: str) -> str:
    """Free text a spreadsheet must not run as a formula (CSV injection): a leading ' disarms it, also when
    spaces or zero-width characters come before the = + - @ (stablepay.text_rules.spreadsheet_cell)."""
    return spreadsheet_cell(value)


def settlement_csv_rows(*, merchant: Merchant, date_from: date, date_to: date) -> Iterator[list[str]]:
    """One row per paid request (a payment) in the range, oldest first; streamed in chunks.

    `amount_base_units` is the request's amount_paid_base_units, so the column sums to the report's
    `amount_base_units`; `fiat_amount` follows the module's fiat rule, so it sums to the report's too.
    `tx_hash` and `from` list every transfer counted in the amount (space-separated when a payment came
    in several transfers); `confirmations` is the least confirmed of them at the chain's current head.
    """
    yield list(CSV_HEADER)
    counted = Prefetch(
        "transfers",
        queryset=Transfer.objects.filter(state__in=COUNTED_TRANSFER_STATES).order_by("block_number", "log_index"),
        to_attr="counted_transfers",
    )
    queryset = (
        paid_requests(merchant=merchant, date_from=date_from, date_to=date_to)
        .select_related("token__chain__cursor")
        .prefetch_related(counted)
        .order_by("paid_at", "pk")
    )
    for request in queryset.iterator(chunk_size=500):
        token, chain = request.token, request.token.chain
        cursor = getattr(chain, "cursor", None)
        head = cursor.head_block if cursor is not None else None
        transfers = [t for t in request.counted_transfers if t.token_id == request.token_id]
        assert request.paid_at is not None
        cents = payment_fiat_cents(
            amount=request.amount,
            paid_base_units=int(request.amount_paid_base_units),
            due_base_units=int(request.amount_due_base_units),
        )
        yield [
            hk_date(request.paid_at).isoformat(),
            timezone.localtime(request.paid_at, HKT).isoformat(),
            str(request.pk),
            _cell_text(request.order_reference),
            str(chain.chain_id),
            _cell_text(chain.name),
            _cell_text(token.symbol),
            " ".join(t.tx_hash for t in transfers),
            " ".join(t.from_address for t in transfers),
            format_token_amount(request.amount_paid_base_units, token.decimals),
            str(int(request.amount_paid_base_units)),
            request.currency,
            format(cents_to_decimal(cents), "f"),
            format(request.amount, "f"),
            format(request.rate.normalize(), "f"),
            str(min((t.confirmations_at(head) for t in transfers), default=0)),
            request.status,
            request.exception,
        ]


# Overview -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """A count, an amount in base units and its HKD-equivalent (None when no rate prices any of it)."""

    count: int = 0
    amount_base_units: int = 0
    hkd: Decimal | None = None
    unpriced: int = 0  # payments left out of `hkd` for want of an FX rate to HKD


@dataclass(frozen=True)
class TokenFigures:
    """A chain and token, with one Figure per overview period (today, 7 days, 30 days)."""

    chain_id: int
    chain_name: str
    token: str
    decimals: int
    figures: list[Figure]

    def amount(self, figure: Figure) -> Decimal:
        return base_units_to_decimal(figure.amount_base_units, self.decimals)

    @property
    def cells(self) -> list[tuple[str, Figure, Decimal]]:
        """(period key, figure, token amount) per period, for the template."""
        return [(key, f, self.amount(f)) for key, f in zip(PERIOD_DAYS, self.figures, strict=True)]


@dataclass(frozen=True)
class Period:
    key: str
    date_from: date
    date_to: date
    count: int
    hkd: Decimal
    unpriced: int


@dataclass(frozen=True)
class DayVolume:
    date: date
    count: int
    hkd: Decimal


@dataclass(frozen=True)
class Timing:
    """Seconds, not days: median and p95 of created -> paid and of (covering transfer) mined -> paid."""

    count: int
    created_to_paid_median: timedelta | None
    created_to_paid_p95: timedelta | None
    mined_count: int
    mined_to_paid_median: timedelta | None
    mined_to_paid_p95: timedelta | None


@dataclass
class Overview:
    today: date
    periods: list[Period]
    tokens: list[TokenFigures]
    daily: list[DayVolume]
    timing: Timing
    open_requests: list[PaymentRequest] = field(default_factory=list)
    open_count: int = 0
    needs_review_count: int = 0
    recent_payments: list[PaymentRequest] = field(default_factory=list)


def _hkd_ratio(currency: str, rates: dict[tuple[str, str], Decimal]) -> Fraction | None:
    try:
        return fx_ratio(currency, REPORT_CURRENCY, rates)
    except FxError:
        return None


def percentile(values: Sequence[timedelta], share: Fraction) -> timedelta | None:
    """The `share` quantile of sorted values, interpolated linearly between ranks (numpy's default)."""
    if not values:
        return None
    position = (len(values) - 1) * share
    low = int(position)
    high = min(low + 1, len(values) - 1)
    low_us = values[low] // timedelta(microseconds=1)
    high_us = values[high] // timedelta(microseconds=1)
    return timedelta(microseconds=round(low_us + (high_us - low_us) * (position - low)))


def settle_timing(*, merchant: Merchant, date_from: date, date_to: date) -> Timing:
    """Durations over the range's paid requests (computed in Python: percentiles need the values).

    mined -> paid runs from the block time of the latest counted transfer mined by paid_at (the one that
    made the request enough) to paid_at.
    """
    mined_at = Max(
        "transfers__block_timestamp",
        filter=Q(
            transfers__token=F("token"),
            transfers__state__in=COUNTED_TRANSFER_STATES,
            transfers__block_timestamp__lte=F("paid_at"),
        ),
    )
    rows = (
        paid_requests(merchant=merchant, date_from=date_from, date_to=date_to)
        .annotate(mined_at=mined_at)
        .values_list("created_at", "paid_at", "mined_at")
        .order_by()
    )
    created: list[timedelta] = []
    mined: list[timedelta] = []
    for created_at, paid_at, mined_when in rows:
        assert paid_at is not None  # paid_requests() filters paid_at__isnull=False
        created.append(max(paid_at - created_at, timedelta(0)))
        if mined_when is not None:
            mined.append(max(paid_at - mined_when, timedelta(0)))
    created.sort()
    mined.sort()
    half, p95 = Fraction(1, 2), Fraction(95, 100)
    return Timing(
        count=len(created),
        created_to_paid_median=percentile(created, half),
        created_to_paid_p95=percentile(created, p95),
        mined_count=len(mined),
        mined_to_paid_median=percentile(mined, half),
        mined_to_paid_p95=percentile(mined, p95),
    )


def _payment_prefetch() -> Prefetch:
    return Prefetch(
        "transfers",
        queryset=Transfer.objects.filter(state__in=COUNTED_TRANSFER_STATES)
        .select_related("chain", "token")
        .order_by("block_number", "log_index"),
        to_attr="counted_transfers",
    )


def merchant_overview(*, merchant: Merchant, now: datetime | None = None, recent: int = 8) -> Overview:
    """Totals for today, 7 and 30 days (per chain and token, and in HKD), daily volume, timing, lists."""
    today = hk_today(now)
    first = today - timedelta(days=CHART_DAYS - 1)
    rows = settlement_rows(merchant=merchant, date_from=first, date_to=today)
    rates = fx_rates()
    ratios = {currency: _hkd_ratio(currency, rates) for currency in {r.fiat_currency for r in rows}}
    starts = {key: today - timedelta(days=days - 1) for key, days in PERIOD_DAYS.items()}

    # Exact sums, keyed by period and by (period, chain, token); rounded once per figure.
    counts: dict[Any, int] = defaultdict(int)
    units: dict[Any, int] = defaultdict(int)
    hkd: dict[Any, Fraction] = defaultdict(Fraction)
    unpriced: dict[Any, int] = defaultdict(int)
    priced: set[Any] = set()
    day_counts: dict[date, int] = defaultdict(int)
    day_hkd: dict[date, Fraction] = defaultdict(Fraction)
    token_meta: dict[tuple[int, str], tuple[str, int]] = {}
    for row in rows:
        ratio = ratios[row.fiat_currency]
        value = Fraction(row.fiat_amount) * ratio if ratio is not None else None
        day_counts[row.date] += row.count
        if value is not None:
            day_hkd[row.date] += value
        token_key = (row.chain_id, row.token)
        token_meta[token_key] = (row.chain_name, row.decimals)
        for key, start in starts.items():
            if row.date < start:
                continue
            for bucket in (key, (key, *token_key)):
                counts[bucket] += row.count
                units[bucket] += row.amount_base_units
                if value is None:
                    unpriced[bucket] += row.count
                else:
                    hkd[bucket] += value
                    priced.add(bucket)

    periods = [
        Period(key, starts[key], today, counts[key], fraction_to_cents(hkd[key]), unpriced[key]) for key in PERIOD_DAYS
    ]
    tokens = [
        TokenFigures(
            chain_id=chain_id,
            chain_name=name,
            token=symbol,
            decimals=decimals,
            figures=[
                Figure(
                    count=counts[(key, chain_id, symbol)],
                    amount_base_units=units[(key, chain_id, symbol)],
                    hkd=fraction_to_cents(hkd[(key, chain_id, symbol)]) if (key, chain_id, symbol) in priced else None,
                    unpriced=unpriced[(key, chain_id, symbol)],
                )
                for key in PERIOD_DAYS
            ],
        )
        for (chain_id, symbol), (name, decimals) in sorted(token_meta.items())
    ]
    daily = [
        DayVolume(day, day_counts[day], fraction_to_cents(day_hkd[day]))
        for day in (first + timedelta(days=i) for i in range(CHART_DAYS))
    ]
    open_queryset = PaymentRequest.objects.filter(merchant=merchant, status__in=OPEN_STATUSES)
    return Overview(
        today=today,
        periods=periods,
        tokens=tokens,
        daily=daily,
        timing=settle_timing(merchant=merchant, date_from=first, date_to=today),
        open_requests=list(open_queryset.select_related("token__chain").order_by("-created_at", "pk")[:recent]),
        open_count=open_queryset.count(),
        needs_review_count=PaymentRequest.objects.filter(merchant=merchant, status=Status.NEEDS_REVIEW).count(),
        recent_payments=list(
            PaymentRequest.objects.filter(merchant=merchant, status=Status.PAID, paid_at__isnull=False)
            .select_related("token__chain")
            .prefetch_related(_payment_prefetch())
            .order_by("-paid_at", "pk")[:recent]
        ),
    )


# Payments -----------------------------------------------------------------------------------------
def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def payment_list(*, merchant: Merchant, status: str = "", query: str = "") -> QuerySet[PaymentRequest]:
    """The merchant's requests, newest first; `query` matches an order reference (contains), a request
    id, a deposit address or a transaction hash."""
    queryset = PaymentRequest.objects.filter(merchant=merchant).select_related("token__chain")
    if status:
        queryset = queryset.filter(status=status)
    query = query.strip()
    if query:
        match = Q(order_reference__icontains=query)
        if (pk := _as_uuid(query)) is not None:
            match |= Q(pk=pk)
        if query.lower().startswith("0x"):
            tx_requests = Transfer.objects.filter(tx_hash__iexact=query).values("payment_request_id")
            match |= Q(pay_to__iexact=query) | Q(pk__in=tx_requests)
        queryset = queryset.filter(match)
    return queryset.order_by("-created_at", "pk")


def payment_for_merchant(*, merchant: Merchant, request_id: str) -> PaymentRequest | None:
    """One of the merchant's requests with its transfers (all, orphaned too) and timeline; else None."""
    pk = _as_uuid(request_id)
    if pk is None:
        return None
    return (
        PaymentRequest.objects.filter(merchant=merchant, pk=pk)
        .select_related("token__chain__cursor")
        .prefetch_related(
            Prefetch(
                "transfers",
                queryset=Transfer.objects.select_related("chain__cursor", "token").order_by(
                    "block_number", "log_index"
                ),
                to_attr="all_transfers",
            ),
            Prefetch("events", queryset=Event.objects.order_by("at", "id"), to_attr="timeline"),
        )
        .first()
    )


# Webhooks -----------------------------------------------------------------------------------------
def webhook_deliveries(
    *, merchant: Merchant, payment_request: PaymentRequest | None = None
) -> QuerySet[WebhookDelivery]:
    """The merchant's webhook outbox, newest first (the delivery log)."""
    queryset = WebhookDelivery.objects.filter(merchant=merchant).select_related("payment_request")
    if payment_request is not None:
        queryset = queryset.filter(payment_request=payment_request)
    return queryset.order_by("-created_at", "-pk")


def token_policy_rows(*, merchant: Merchant) -> list[tuple[Token, str | None]]:
    """Each active token with why it is not offered to this merchant's customers (None: offered)."""
    tokens = Token.objects.filter(active=True).select_related("chain").order_by("chain__chain_id", "symbol")
    return [(token, token_policy.refusal(merchant, token)) for token in tokens]
