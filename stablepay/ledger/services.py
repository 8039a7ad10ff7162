"""The workflows that write: create, reconcile, expire, cancel and resolve payment requests.

Each runs in one transaction with the payment request row locked, and writes the status, the
timeline event, the webhook outbox row and the store's signal together.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from stablepay.chain import forwarder
from stablepay.chain.addresses import allocate_index, derive_address
from stablepay.errors import Conflict, InvalidInput
from stablepay.ledger import outbox, reconcile
from stablepay.ledger.signals import payment_request_status_changed
from stablepay.ledger.sql_insert import insert_together
from stablepay.models import (
    FLAGGED_OUTCOMES,
    Chain,
    Event,
    Merchant,
    PaymentRequest,
    Resolution,
    Status,
    Token,
    Transfer,
    TransferState,
)
from stablepay.money import FxError, fx_ratio, quote
from stablepay.registry import refdata, token_policy
from stablepay.text_rules import reference_problem

logger = logging.getLogger(__name__)

LATE_WATCH = timedelta(days=7)
WEBHOOK_TYPE_BY_STATUS = {
    Status.CONFIRMING: "confirming",
    Status.PAID: "paid",
    Status.EXPIRED: "expired",
    Status.NEEDS_REVIEW: "needs_review",
    Status.CANCELED: "canceled",
}


def fx_rates() -> dict[tuple[str, str], Decimal]:
    """The FX table as it is now in the database (checkout quotes use refdata's cached copy)."""
    return refdata.load_fx_rates()


def token_for_quote(*, chain_id: int, symbol: str) -> Token:
    token = refdata.active_token(chain_id=chain_id, symbol=symbol)
    if token is None:
        if not Chain.objects.filter(chain_id=chain_id).exists():
            raise InvalidInput("chain_id", f"no registered chain with id {chain_id}")
        raise InvalidInput("token", f"{symbol!r} is not a registered token on chain {chain_id}")
    return token


def _ratio(currency: str, token_currency: str, rates: dict[tuple[str, str], Decimal]) -> Fraction:
    """The exact FX ratio, from the (cached) rates table."""
    try:
        return fx_ratio(currency, token_currency, rates)
    except FxError as exc:
        raise InvalidInput("currency", str(exc)) from exc


def payment_request_create(
    *,
    merchant: Merchant,
    order_reference: str,
    amount: Decimal,
    currency: str,
    chain_id: int,
    token_symbol: str,
    expiry_minutes: int | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    now: datetime | None = None,
    actor: str = "api",
    serialize_now: bool = False,
) -> tuple[PaymentRequest, bool]:
    """Quote the amount in the token and hand out a fresh deposit address. Returns (request, created).

    A new request's history (its first event, no transfer) is known without reading it back; it stays
    on the returned object only with `serialize_now` (the API, which answers with it at once): a
    caller that keeps the object (the store) reads later transfers from the database.

    Every checkout of a merchant queues on its row lock while an index is allocated: without an
    outer transaction (the API) the allocation commits on its own before the request is written,
    so the lock is held for one UPDATE (see allocate_index). An Idempotency-Key is checked by its
    unique constraint, not by a read first: a reused key makes the insert fail, and then the earlier
    request is answered.
    """
    now = now or timezone.now()
    try:
        if (problem := reference_problem(order_reference)) is not None:  # issue 16: no bidi, control, zero-width
            raise InvalidInput("order_reference", problem)
        token = token_for_quote(chain_id=chain_id, symbol=token_symbol)
        if (reason := token_policy.refusal(merchant, token)) is not None:
            raise Conflict("token", reason)
        rates, rates_json = refdata.fx_rates_with_json()  # the table quoted with is stored with the request
        priced = quote(amount, _ratio(currency, token.currency, rates), token.decimals)
    except (InvalidInput, Conflict):
        # The first call with this key may have been valid then (a token since deactivated or refused): replay it.
        if idempotency_key and (existing := _replay(merchant, idempotency_key, fingerprint)) is not None:
            return existing, False
        raise
    expires_at = now + timedelta(minutes=expiry_minutes or merchant.expiry_minutes)
    request = PaymentRequest(
        merchant=merchant,
        token=token,
        order_reference=order_reference,
        amount=amount,
        currency=currency,
        rate=priced.rate,
        fx_rates=dict(rates_json),
        amount_due_base_units=priced.amount_due_base_units,
        metadata=metadata or {},
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        created_at=now,
        expires_at=expires_at,
        watch_until=expires_at + LATE_WATCH,
    )
    settlement = (merchant.settlement_addresses or {}).get(str(token.chain.chain_id))
    if not settlement and not merchant.xpub:
        raise InvalidInput("chain_id", "this merchant has no deposit addresses on this network")
    request.derivation_index = allocate_index(merchant)  # its own short transaction unless the caller has one
    if settlement:  # a CREATE2 forwarder fixed to the settlement address: computed here, nothing deployed
        request.pay_to, salt = forwarder.request_deposit(settlement, request.id)
        request.deposit_salt = "0x" + salt.hex()
    else:
        request.pay_to = derive_address(merchant.xpub, request.derivation_index)
    try:
        if connection.vendor == "postgresql":
            _insert_created(request, actor=actor, now=now)
        else:
            with transaction.atomic():
                request.save(force_insert=True)
                _record(request, note="created", actor=actor, now=now, webhook_type="created", created=True)
    except IntegrityError:
        if idempotency_key:  # the key was used before, or by a concurrent call that won the race
            existing = _replay(merchant, idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        raise
    finally:
        if not serialize_now:
            request.__dict__.pop("_prefetched_objects_cache", None)
    return request, True


def _insert_created(request: PaymentRequest, *, actor: str, now: datetime) -> None:
    """What `save` + `_record(created=True)` write (the request, its first event, the webhook outbox row),
    in one statement: a new request's whole history is known, so nothing is read back.

    Outside a transaction (the API) the statement is its own; inside one (the store's checkout) a
    savepoint keeps a refused Idempotency-Key from breaking the caller's transaction.
    """
    event = Event(
        payment_request=request, at=now, status=request.status, exception=request.exception, note="created", actor=actor
    )
    _known(request, "transfers", [])
    _known(request, "events", [event])
    delivery = outbox.prepare(request, event_type="created", now=now)
    rows: list[Any] = [request, event] if delivery is None else [request, event, delivery]
    with contextlib.nullcontext() if connection.get_autocommit() else transaction.atomic():
        insert_together(*rows)
        if delivery is not None:
            outbox.queued(delivery)


def _replay(merchant: Merchant, key: str, fingerprint: str) -> PaymentRequest | None:
    existing = (
        PaymentRequest.objects.select_related("token__chain").filter(merchant=merchant, idempotency_key=key).first()
    )
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise Conflict("Idempotency-Key", "this key was already used with a different request body")
    return existing


def _known(request: PaymentRequest, relation: str, rows: list[Any]) -> None:
    """Fill Django's prefetch cache for a relation whose rows this transaction just wrote.

    `payment_request_data` then builds the answer (and the webhook payload) without reading them back.
    """
    queryset = getattr(request, relation).get_queryset()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    request.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = queryset


def _record(
    request: PaymentRequest,
    *,
    note: str,
    actor: str,
    now: datetime,
    webhook_type: str | None,
    previous: str = "",
    created: bool = False,
) -> None:
    """Append the timeline event, queue the webhook and tell the store, inside the caller's transaction."""
    event = Event.objects.create(
        payment_request=request, at=now, status=request.status, exception=request.exception, note=note, actor=actor
    )
    if created:  # a new request's whole history: this event and no transfer
        _known(request, "transfers", [])
        _known(request, "events", [event])
    if webhook_type:
        outbox.enqueue(request, event_type=webhook_type, now=now)
    if previous and previous != request.status:
        payment_request_status_changed.send(
            sender=PaymentRequest,
            payment_request=request,
            previous_status=previous,
            status=request.status,
            exception=request.exception,
            actor=actor,
        )


def _locked(request_id: UUID | str) -> PaymentRequest:
    return (
        PaymentRequest.objects.select_for_update(of=("self",))
        .select_related("token__chain", "merchant")
        .get(pk=request_id)
    )


def _facts(request: PaymentRequest) -> reconcile.RequestFacts:
    return reconcile.RequestFacts(
        status=request.status,
        exception=request.exception,
        due_base_units=int(request.amount_due_base_units),
        tolerance_percent=request.merchant.payment_tolerance_percent,
        expires_at=request.expires_at,
        resolution=request.resolution,
    )


def chain_head(chain: Chain) -> int | None:
    cursor = getattr(chain, "cursor", None)
    return cursor.head_block if cursor is not None else None


def _transfer_facts(
    request: PaymentRequest, required: int, transfers: Iterable[Transfer] | None = None
) -> list[reconcile.TransferFacts]:
    if transfers is None:
        transfers = request.transfers.select_related("chain__cursor")
    return [
        reconcile.TransferFacts(
            amount_base_units=int(t.amount_base_units),
            is_request_token=t.token_id == request.token_id,
            mined_at=t.block_timestamp,
            confirmations=(
                required
                if t.state == TransferState.CONFIRMED
                else min(t.confirmations_at(chain_head(t.chain)), required - 1)
            ),
            orphaned=t.state == TransferState.ORPHANED,
            reviewed=t.reviewed,
            held=t.screening in FLAGGED_OUTCOMES and not t.reviewed,
        )
        for t in transfers
    ]


def payment_request_reconcile(*, request_id: UUID | str, now: datetime | None = None) -> PaymentRequest:
    """Apply the reconciliation rules to the request's transfers and write what changed."""
    [request] = payment_requests_reconcile(request_ids=[request_id], now=now)
    return request


def payment_requests_reconcile(
    *, request_ids: Iterable[UUID | str], now: datetime | None = None
) -> list[PaymentRequest]:
    """`payment_request_reconcile` for several requests in one transaction: the rows are locked (in id
    order) and their transfers read in one query each, then each request is decided and written alone."""
    now = now or timezone.now()
    with transaction.atomic():
        requests = list(
            PaymentRequest.objects.select_for_update(of=("self",))
            .select_related("token__chain", "merchant")
            .filter(pk__in=list(request_ids))
            .order_by("pk")
        )
        transfers: dict[UUID, list[Transfer]] = defaultdict(list)
        for transfer in Transfer.objects.filter(payment_request__in=requests).select_related("chain__cursor"):
            if transfer.payment_request_id is not None:
                transfers[transfer.payment_request_id].append(transfer)
        return [_reconcile_locked(request, transfers[request.pk], now) for request in requests]


def _reconcile_locked(request: PaymentRequest, transfers: list[Transfer], now: datetime) -> PaymentRequest:
    required = max(request.token.chain.confirmations, 1)
    decision = reconcile.decide(
        _facts(request), _transfer_facts(request, required, transfers), now=now, required=required
    )
    paid_changed = int(request.amount_paid_base_units) != decision.amount_paid_base_units
    request.amount_paid_base_units = Decimal(decision.amount_paid_base_units)
    was_pending, request.reconcile_pending = request.reconcile_pending, False
    if not decision.changes(_facts(request)):
        if paid_changed or was_pending:
            request.save(update_fields=["amount_paid_base_units", "reconcile_pending", "updated_at"])
        return request
    previous = request.status
    request.status, request.exception = decision.status, decision.exception
    if request.status == Status.PAID and request.paid_at is None:
        request.paid_at = now
    request.save()
    webhook_type = WEBHOOK_TYPE_BY_STATUS.get(Status(request.status)) if request.status != previous else None
    if request.status == previous and request.exception:
        webhook_type = "needs_review"
    _record(request, note=decision.reason, actor="watcher", now=now, webhook_type=webhook_type, previous=previous)
    logger.info("payment request %s: %s -> %s %s", request.pk, previous, request.status, request.exception)
    return request


def payment_requests_expire(*, now: datetime | None = None) -> int:
    """Reconcile every live request whose expiry has passed; returns how many changed."""
    now = now or timezone.now()
    due = PaymentRequest.objects.filter(status__in=[Status.OPEN, Status.CONFIRMING], expires_at__lte=now)
    before = dict(due.order_by().values_list("pk", "status"))
    if not before:
        return 0
    after = payment_requests_reconcile(request_ids=list(before), now=now)
    return sum(1 for request in after if request.status != before[request.pk])


def payment_request_cancel(*, request_id: UUID | str, actor: str, now: datetime | None = None) -> PaymentRequest:
    now = now or timezone.now()
    with transaction.atomic():
        request = _locked(request_id)
        received = request.transfers.exclude(state=TransferState.ORPHANED).exists()
        if request.status != Status.OPEN or received:
            raise Conflict(
                "status", f"only an open request with nothing received can be canceled (is {request.status})"
            )
        request.status = Status.CANCELED
        request.save()
        _record(request, note="canceled", actor=actor, now=now, webhook_type="canceled", previous=Status.OPEN)
        return request


def payment_request_hold(
    *, request_id: UUID | str, note: str, actor: str, now: datetime | None = None
) -> PaymentRequest:
    """Hold the request for compliance review (needs_review / held), whatever its status.

    For a late screening hit on a transfer an ops resolution already covered (reviewed): the rules of
    `reconcile.decide` no longer look at reviewed transfers, so the hold is raised here. Once held, the
    rules keep it until ops decide on it (four-eyes). A request already held is left as it is.
    """
    now = now or timezone.now()
    with transaction.atomic():
        request = _locked(request_id)
        if request.exception == reconcile.HELD:
            return request
        previous = request.status
        request.status, request.exception = Status.NEEDS_REVIEW, reconcile.HELD
        request.save()
        _record(request, note=note, actor=actor, now=now, webhook_type="needs_review", previous=previous)
        logger.info("payment request %s: %s -> needs_review held (%s)", request.pk, previous, note)
        return request


def payment_request_resolve(
    *,
    request_id: UUID | str,
    action: str,
    note: str,
    actor: str,
    refund_tx_hash: str | None = None,
    refund_address: str | None = None,
    now: datetime | None = None,
) -> PaymentRequest:
    """Close the open exception: accept (the order is paid), refund, or void.

    A refund records where it goes and, once sent, its tx hash on the request (the latest refund's).
    """
    now = now or timezone.now()
    with transaction.atomic():
        request = _locked(request_id)
        if not request.exception:
            raise Conflict("exception", "the request has no open exception to resolve")
        previous, resolved = request.status, request.exception
        if action == Resolution.ACCEPT:
            request.status = Status.PAID
            request.paid_at = request.paid_at or now
        elif action == Resolution.REFUND:
            request.status = Status.PAID if resolved == reconcile.OVERPAID else Status.REFUNDED
        elif action == Resolution.VOID:
            request.status = Status.CANCELED
        else:
            raise InvalidInput("action", "must be one of accept, refund, void")
        request.exception, request.resolution = "", action
        if action == Resolution.REFUND:
            request.refund_address, request.refund_tx_hash = refund_address or "", refund_tx_hash or ""
        request.save()
        request.transfers.exclude(state=TransferState.ORPHANED).update(reviewed=True)
        detail = f"{action} {resolved}: {note}" + (f" (refund to {refund_address})" if refund_address else "")
        detail += f" (refund tx {refund_tx_hash})" if refund_tx_hash else ""
        _record(request, note=detail, actor=actor, now=now, webhook_type="resolved", previous=previous)
        return request
