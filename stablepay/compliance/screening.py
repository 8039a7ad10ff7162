"""Payer screening: each incoming transfer's `from` address is checked once, before the transfer is recorded.

The watcher calls `screen_logs` for the new transfers of a block range (one backend call per range,
outside the range's transaction) and writes each outcome on its Transfer row in the same transaction as
the row, so no transfer is ever recorded unscreened. Outcomes (models.ScreeningOutcome):

- `clear`: the backend answered and did not flag the payer;
- `hit`: it flagged the payer. The transfer is never credited: once confirmed, its request goes to
  `needs_review` with exception `held` (CONTRACT §4), which only ops resolve, with four-eyes;
- the backend did not answer (down, timeout, malformed answer, a bug in it): the transfer is
  `failed_closed` (treated as a hit) when worth STABLEPAY["SCREENING_FAIL_OPEN_BELOW_HKD"] or more
  (HKD-equivalent, exact; a token with no HKD rate counts as more), else `failed_open` (credited).
  Both are shown in the ops console and re-screened every SCREENING_RETRY_SECONDS until answered
  (`rescreen_due`): a late hit then holds the request, a late clear is recorded for ops to see.

Backends: the class named by STABLEPAY["SCREENING_BACKEND"], with `screen(addresses, chain_id=...)`
returning a Verdict per lower-case address or raising ScreeningUnavailable. Built in: `ListBackend`
(the allow/deny list ops keep in the admin) and `HttpBackend` (that list first, then a JSON service).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import requests
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from stablepay.chain.reader import TransferLog
from stablepay.conf import app_settings
from stablepay.ledger import services
from stablepay.models import (
    PaymentRequest,
    ScreeningListEntry,
    ScreeningListKind,
    ScreeningOutcome,
    Token,
    Transfer,
    TransferState,
)
from stablepay.money import FxError, format_fiat, fx_ratio
from stablepay.registry import refdata

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "stablepay.compliance.screening.ListBackend"
MAX_ANSWER_BYTES = 1_000_000
RESCREEN_BATCH = 200
UNANSWERED = (ScreeningOutcome.FAILED_OPEN, ScreeningOutcome.FAILED_CLOSED)


class ScreeningUnavailable(Exception):
    """The backend could not answer; the fail-open/fail-closed rule decides."""


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    reason: str


@dataclass(frozen=True)
class Screened:
    """What is written on the transfer: the outcome and, in words, who answered and why."""

    outcome: str
    detail: str


class ScreeningBackend:
    """Subclass, implement `screen` and name the class in STABLEPAY["SCREENING_BACKEND"]."""

    label = "screening"

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        """A verdict for each address (lower-case 0x hex), or ScreeningUnavailable. Should answer in
        seconds: the watcher waits for it before recording the range's transfers."""
        raise NotImplementedError


class ListBackend(ScreeningBackend):
    """The screening list in the admin: `deny` flags, `allow` clears; the rest go to `screen_unlisted`
    (clear here: with only the list, an address not on it is not flagged)."""

    label = "screening list"

    def screen(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        listed = {e.address: e for e in ScreeningListEntry.objects.filter(address__in=list(addresses))}
        verdicts = {
            address: Verdict(entry.kind == ScreeningListKind.DENY, f"{self.label}: {entry.kind}list, {entry.reason}")
            for address, entry in listed.items()
        }
        unlisted = [address for address in addresses if address not in listed]
        if unlisted:
            verdicts |= self.screen_unlisted(unlisted, chain_id=chain_id)
        return verdicts

    def screen_unlisted(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        return {address: Verdict(False, f"{self.label}: not listed") for address in addresses}


class HttpBackend(ListBackend):
    """The screening list, then a JSON screening service for the addresses not on it.

    POST SCREENING_HTTP_URL with {"chain_id": 1, "addresses": ["0x…", …]} (and `Authorization: Bearer
    SCREENING_HTTP_TOKEN` when set); the answer must be 200 with {"results": [{"address": "0x…",
    "flagged": true|false, "reason": "…"}, …]} naming every address. Anything else, or no complete
    answer within SCREENING_HTTP_TIMEOUT_SECONDS in all, is ScreeningUnavailable.
    """

    label = "screening service"

    def screen_unlisted(self, addresses: Sequence[str], *, chain_id: int) -> dict[str, Verdict]:
        url = app_settings.SCREENING_HTTP_URL
        if not url:
            raise ScreeningUnavailable("SCREENING_HTTP_URL is not set")
        timeout = float(app_settings.SCREENING_HTTP_TIMEOUT_SECONDS)
        headers = {"Content-Type": "application/json"}
        if token := app_settings.SCREENING_HTTP_TOKEN:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"chain_id": chain_id, "addresses": list(addresses)}).encode()
        # requests' timeout bounds each socket read, not the exchange: a service that trickles its answer
        # (a byte now and then) would hold the watcher for as long as it likes. So the exchange runs in a
        # helper thread that the watcher waits for `timeout` seconds at most; the thread itself gives up
        # reading at the same deadline (or, mid-headers, at its next read timeout).
        deadline = time.monotonic() + timeout
        answer: list[bytes | BaseException] = []
        worker = threading.Thread(
            target=_exchange, args=(answer, url, body, headers, timeout, deadline), name="screening-http", daemon=True
        )
        worker.start()
        worker.join(timeout)
        if not answer:
            raise ScreeningUnavailable(f"the screening service did not answer within {timeout:g} s")
        if isinstance(answer[0], BaseException):
            raise answer[0]
        return self._verdicts(answer[0], addresses)

    def _verdicts(self, raw: bytes, addresses: Sequence[str]) -> dict[str, Verdict]:
        try:
            results = json.loads(raw)["results"]
            verdicts = {
                str(item["address"]).lower(): Verdict(
                    _strict_bool(item["flagged"]), f"{self.label}: {str(item.get('reason') or '')[:200]}".rstrip(": ")
                )
                for item in results
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise ScreeningUnavailable(f"the screening service's answer is malformed ({exc})") from exc
        missing = [address for address in addresses if address not in verdicts]
        if missing:
            raise ScreeningUnavailable(f"the screening service did not answer for {len(missing)} address(es)")
        return {address: verdicts[address] for address in addresses}


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("flagged must be true or false")
    return value


def _exchange(
    answer: list[bytes | BaseException],
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    deadline: float,
) -> None:
    """POST and read the whole answer (in the helper thread); leaves the body or the error in `answer`."""
    try:
        with requests.post(url, data=body, headers=headers, timeout=timeout, stream=True) as response:
            if response.status_code != 200:
                raise ScreeningUnavailable(f"the screening service answered HTTP {response.status_code}")
            answer.append(_read_within(response, deadline))
    except requests.RequestException as exc:
        answer.append(ScreeningUnavailable(f"the screening service did not answer: {type(exc).__name__}"))
    except Exception as exc:  # handed to the watcher's thread: screen_addresses logs it
        answer.append(exc)


def _read_within(response: requests.Response, deadline: float) -> bytes:
    """The body, refusing one that trickles past the deadline or grows past MAX_ANSWER_BYTES. Reads what
    has arrived (read1), so the deadline is checked after every read, not after 16 KB."""
    chunks, size = [], 0
    while chunk := response.raw.read1(16_384, decode_content=True):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ScreeningUnavailable("the screening service's answer is too large")
        if time.monotonic() > deadline:
            raise ScreeningUnavailable("the screening service answered too slowly")
        chunks.append(chunk)
    return b"".join(chunks)


def backend() -> ScreeningBackend:
    backend_class = import_string(app_settings.SCREENING_BACKEND)
    return backend_class()


def fail_open_below() -> Decimal:
    """The fail-open limit; a malformed one (refused at start-up by stablepay.E112) fails every payment closed."""
    try:
        limit = Decimal(str(app_settings.SCREENING_FAIL_OPEN_BELOW_HKD))
    except InvalidOperation:
        return Decimal(0)
    return limit if limit.is_finite() else Decimal(0)


def _hkd(token: Token, base_units: int) -> Fraction | None:
    try:
        return Fraction(base_units, 10**token.decimals) * fx_ratio(token.currency, "HKD", refdata.fx_rates())
    except FxError:
        return None


def _when_unanswered(token: Token, base_units: int, error: str) -> Screened:
    """Fail open below the configured HKD amount, closed at or above it (or when it cannot be priced)."""
    limit = fail_open_below()
    value = _hkd(token, base_units)
    worth = "no HKD rate for " + token.currency if value is None else "worth " + _hkd_text(value)
    if value is not None and value < Fraction(limit):
        return Screened(ScreeningOutcome.FAILED_OPEN, f"{error}; {worth}, below {format_fiat(limit, 'HKD')}: passed")
    return Screened(ScreeningOutcome.FAILED_CLOSED, f"{error}; {worth}, not below {format_fiat(limit, 'HKD')}: held")


def _hkd_text(value: Fraction) -> str:
    return format_fiat(Decimal(value.numerator) / Decimal(value.denominator), "HKD")


def screen_addresses(addresses: Sequence[str], *, chain_id: int) -> tuple[dict[str, Verdict], str]:
    """(verdicts, error): every address answered, or none and the reason. A backend that raises anything
    counts as unavailable: screening never stops the watcher from recording a transfer."""
    wanted = sorted({address.lower() for address in addresses})
    if not wanted:
        return {}, ""
    try:
        # Keys in any case (a backend may answer with checksummed addresses), and each value checked here:
        # a backend answering something else is unavailable, it does not fail the watcher's range.
        answered = backend().screen(wanted, chain_id=chain_id)
        verdicts = {str(address).lower(): verdict for address, verdict in answered.items()}
        if missing := [address for address in wanted if address not in verdicts]:
            raise ScreeningUnavailable(f"the backend gave no verdict for {len(missing)} address(es)")
        if wrong := [address for address in wanted if not _is_verdict(verdicts[address])]:
            raise ScreeningUnavailable(
                f"the backend answered {len(wrong)} address(es) with something other than a Verdict"
            )
    except ScreeningUnavailable as exc:
        logger.warning("chain %s: screening unavailable for %s address(es): %s", chain_id, len(wanted), exc)
        return {}, str(exc)
    except Exception as exc:
        logger.exception("chain %s: the screening backend failed", chain_id)
        return {}, f"the screening backend failed: {type(exc).__name__}"
    return {address: verdicts[address] for address in wanted}, ""


def _is_verdict(value: Any) -> bool:
    return isinstance(value, Verdict) and isinstance(value.flagged, bool)


def screen_logs(
    logs: Sequence[TransferLog], tokens: Mapping[str, Token], *, chain_id: int
) -> dict[tuple[str, int], Screened]:
    """The outcome of each log, keyed by (tx_hash, log_index): one backend call for all their payers."""
    verdicts, error = screen_addresses([log.from_address for log in logs], chain_id=chain_id)
    outcomes = {}
    for log in logs:
        verdict = verdicts.get(log.from_address.lower())
        if verdict is None:
            outcomes[(log.tx_hash, log.log_index)] = _when_unanswered(tokens[log.token], log.value, error)
        else:
            outcome = ScreeningOutcome.HIT if verdict.flagged else ScreeningOutcome.CLEAR
            outcomes[(log.tx_hash, log.log_index)] = Screened(outcome, verdict.reason)
    return outcomes


def unscreened(chain_pk: int, logs: Sequence[TransferLog]) -> list[TransferLog]:
    """The logs not yet recorded (a re-scan after a reorg keeps the first screening of a known log)."""
    if not logs:
        return []
    known = set(
        Transfer.objects.filter(chain_id=chain_pk, tx_hash__in={log.tx_hash for log in logs}).values_list(
            "tx_hash", "log_index"
        )
    )
    return [log for log in logs if (log.tx_hash, log.log_index) not in known]


def rescreen_due(*, now: datetime | None = None) -> int:
    """Ask again about the transfers whose screening had no answer, oldest first; returns how many got one.

    A hit marks the request for reconciliation (it is then held), or, on a transfer an ops resolution
    already covered, holds it at once; the first outcome stays in the detail.
    Still no answer: the transfer is tried again after SCREENING_RETRY_SECONDS.
    """
    now = now or timezone.now()
    retry = timedelta(seconds=float(app_settings.SCREENING_RETRY_SECONDS))
    due = list(
        Transfer.objects.filter(screening__in=UNANSWERED, screened_at__lte=now - retry)
        .select_related("chain")
        .order_by("screened_at")[:RESCREEN_BATCH]
    )
    answered = 0
    for chain_id in {t.chain.chain_id for t in due}:
        batch = [t for t in due if t.chain.chain_id == chain_id]
        verdicts, error = screen_addresses([t.from_address for t in batch], chain_id=chain_id)
        with transaction.atomic():
            for transfer in batch:
                verdict = verdicts.get(transfer.from_address.lower())
                if verdict is None:
                    Transfer.objects.filter(pk=transfer.pk).update(screened_at=now)
                    continue
                outcome = ScreeningOutcome.HIT if verdict.flagged else ScreeningOutcome.CLEAR
                first = f"{transfer.get_screening_display()}: {transfer.screening_detail}"
                request_id = transfer.payment_request_id
                if request_id is not None:  # the request first, as ops decisions lock it, then its transfers
                    PaymentRequest.objects.select_for_update(of=("self",)).filter(pk=request_id).exists()
                Transfer.objects.filter(pk=transfer.pk).update(
                    screening=outcome,
                    screening_detail=f"{verdict.reason} (re-screened {now:%Y-%m-%d %H:%M} UTC; first {first})",
                    screened_at=now,
                )
                if request_id is not None:
                    _after_late_answer(transfer.pk, request_id, outcome, now)
                answered += 1
        if error:
            logger.info("chain %s: %s transfer(s) still unscreened: %s", chain_id, len(batch), error)
    return answered


def _after_late_answer(transfer_pk: int, request_id: Any, outcome: str, now: datetime) -> None:
    """Mark the request for reconciliation (a hit then holds it, once the transfer is confirmed), or hold it
    now when an ops resolution already covered the transfer: the rules no longer weigh a reviewed one."""
    reviewed, state = Transfer.objects.filter(pk=transfer_pk).values_list("reviewed", "state").get()
    if outcome == ScreeningOutcome.HIT and reviewed and state != TransferState.ORPHANED:
        services.payment_request_hold(
            request_id=request_id,
            note="a payer was flagged by a re-screen after an ops decision; held for compliance review",
            actor="watcher",
            now=now,
        )
    else:
        PaymentRequest.objects.filter(pk=request_id).update(reconcile_pending=True)
