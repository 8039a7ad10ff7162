"""Reads for the ops console's payer-screening page and banner (the screening itself is
stablepay/compliance/screening.py): the configured backend and fail-open limit, outcome counts per window, the
transfers whose payer was not cleared, and the last hour's screenings that had no answer.

Windows count transfers by when they were recorded (screened for the first time), each under its outcome
now: a re-screen replaces an unanswered outcome. Amounts are exact (selectors.token_amount).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from stablepay.compliance import screening
from stablepay.conf import app_settings
from stablepay.ledger.services import fx_rates
from stablepay.models import PaymentRequest, ScreeningListEntry, ScreeningListKind, ScreeningOutcome, Transfer
from stablepay.money import format_fiat
from stablepay.ops.selectors import TokenAmount, token_amount

# What the page lists: every outcome but `clear` (and "" for transfers recorded before screening existed).
NOT_CLEAR: tuple[str, ...] = (ScreeningOutcome.HIT, ScreeningOutcome.FAILED_CLOSED, ScreeningOutcome.FAILED_OPEN)
# The outcomes counted per window, in the order shown.
COUNTED: tuple[str, ...] = (ScreeningOutcome.CLEAR, *NOT_CLEAR)
DAY, WEEK = timedelta(hours=24), timedelta(days=7)
OUTAGE_WINDOW = timedelta(hours=1)


# the configuration --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScreeningConfig:
    backend_path: str
    backend_label: str  # the class's own label ("screening list", "screening service"); "" if it cannot load
    is_http: bool
    service_host: str  # the HTTP service's host and port only: its path or query may carry a key
    timeout_seconds: float
    retry_seconds: float
    fail_open_below: Decimal
    deny_entries: int
    allow_entries: int

    @property
    def fail_open_text(self) -> str:
        return format_fiat(self.fail_open_below, "HKD")

    @property
    def always_fails_closed(self) -> bool:
        return self.fail_open_below <= 0


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] if parts.netloc else ""


def screening_config() -> ScreeningConfig:
    path = str(app_settings.SCREENING_BACKEND)
    try:
        backend_class = import_string(path)
        label = str(getattr(backend_class, "label", "")) or backend_class.__name__
        is_http = isinstance(backend_class, type) and issubclass(backend_class, screening.HttpBackend)
    except ImportError:  # refused at start-up (stablepay.E111); shown as such rather than a 500
        label, is_http = "", False
    kinds = dict(ScreeningListEntry.objects.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    return ScreeningConfig(
        backend_path=path,
        backend_label=label,
        is_http=is_http,
        service_host=_host(str(app_settings.SCREENING_HTTP_URL)) if is_http else "",
        timeout_seconds=float(str(app_settings.SCREENING_HTTP_TIMEOUT_SECONDS)),
        retry_seconds=float(str(app_settings.SCREENING_RETRY_SECONDS)),
        fail_open_below=screening.fail_open_below(),
        deny_entries=kinds.get(ScreeningListKind.DENY, 0),
        allow_entries=kinds.get(ScreeningListKind.ALLOW, 0),
    )


# counts ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutcomeCount:
    outcome: str
    last_24h: int
    last_7d: int


def outcome_counts(*, now: datetime | None = None) -> list[OutcomeCount]:
    """Per outcome (COUNTED, plus "not screened" when any), the transfers recorded in the last 24 hours
    and the last 7 days: one query."""
    now = now or timezone.now()
    rows = (
        Transfer.objects.filter(created_at__gt=now - WEEK, created_at__lte=now)
        .order_by()
        .values("screening")
        .annotate(day=Count("pk", filter=Q(created_at__gt=now - DAY)), week=Count("pk"))
    )
    found = {row["screening"]: (int(row["day"]), int(row["week"])) for row in rows}
    shown = list(COUNTED) + ([ScreeningOutcome.NOT_SCREENED] if "" in found else [])
    return [OutcomeCount(str(outcome), *found.get(outcome, (0, 0))) for outcome in shown]


def not_clear_counts() -> dict[str, int]:
    """Transfers under each not-clear outcome now (the page's filter tabs)."""
    rows = Transfer.objects.filter(screening__in=NOT_CLEAR).order_by().values("screening").annotate(n=Count("pk"))
    counts = {outcome: 0 for outcome in NOT_CLEAR}
    for row in rows:
        counts[row["screening"]] = int(row["n"])
    return counts


# the list ----------------------------------------------------------------------------------------------------
def not_clear_transfers(*, outcome: str = "") -> QuerySet[Transfer]:
    """Transfers whose payer was flagged or could not be screened, newest first (paginate it)."""
    outcomes = (outcome,) if outcome in NOT_CLEAR else NOT_CLEAR
    return (
        Transfer.objects.filter(screening__in=outcomes)
        .select_related("chain", "token", "payment_request__merchant")
        .order_by("-created_at", "-pk")
    )


@dataclass(frozen=True)
class ScreeningRow:
    transfer: Transfer
    amount: TokenAmount
    explorer_url: str

    @property
    def request(self) -> PaymentRequest | None:
        return self.transfer.payment_request

    @property
    def retrying(self) -> bool:
        """No answer yet: screened again every SCREENING_RETRY_SECONDS."""
        return self.transfer.screening in screening.UNANSWERED


def screening_rows(transfers: Iterable[Transfer]) -> list[ScreeningRow]:
    rates = fx_rates()
    return [
        ScreeningRow(
            transfer=t,
            amount=token_amount(t.token, int(t.amount_base_units), rates),
            explorer_url=t.chain.explorer_link(t.tx_hash),
        )
        for t in transfers
    ]


# the banner ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScreeningOutage:
    """Screenings with no answer in the last hour, still unanswered: credited below the limit, held at or above."""

    passed: int
    held: int
    fail_open_below: Decimal
    retry_seconds: int

    @property
    def fail_open_text(self) -> str:
        return format_fiat(self.fail_open_below, "HKD")

    @property
    def total(self) -> int:
        return self.passed + self.held


def screening_outage(*, now: datetime | None = None) -> ScreeningOutage | None:
    """None when every screening of the last hour was answered. The re-screen sweep stamps screened_at at
    each attempt, so a transfer still unanswered after an hour stays here while the backend stays down."""
    now = now or timezone.now()
    counts = dict(
        Transfer.objects.filter(screening__in=screening.UNANSWERED, screened_at__gte=now - OUTAGE_WINDOW)
        .order_by()
        .values_list("screening")
        .annotate(n=Count("pk"))
        .values_list("screening", "n")
    )
    passed, held = counts.get(ScreeningOutcome.FAILED_OPEN, 0), counts.get(ScreeningOutcome.FAILED_CLOSED, 0)
    if not passed and not held:
        return None
    return ScreeningOutage(
        passed=passed,
        held=held,
        fail_open_below=screening.fail_open_below(),
        retry_seconds=round(float(str(app_settings.SCREENING_RETRY_SECONDS))),
    )
