"""Ops decisions on a payment request's exception: accept, refund or void, each with a required note.

Every decision is an OpsAction row (who, when, why) plus a timeline Event, written in the transaction
that carries it out. Values are HKD-equivalents at the FX table stored with the request when it was
quoted (never the live table), and the limits are the merchant's own when set
(Merchant.refund_four_eyes_above_hkd / accept_four_eyes_above_hkd, changed only through four-eyes
stablepay.governance.change_control), else the STABLEPAY settings. A refund worth more than
STABLEPAY["FOUR_EYES_REFUND_ABOVE_HKD"] (HKD-equivalent, exact), one that cannot be priced in HKD, an
accept of a shortfall (underpaid, wrong token: what the order is marked paid for without the requested
coin having arrived, priced at the request's own quote) worth STABLEPAY["ACCEPT_FOUR_EYES_ABOVE_HKD"]
or more or that cannot be priced in HKD, and any decision (accept, refund, void) on a compliance hold wait
in `pending_approval` until a second ops user holding `stablepay.ops_approve` approves (then it is
carried out) or rejects it. Below the limits one ops user decides. The requester can never decide their
own request (checked here and by a database constraint).

The merchant's own API call (`merchant_resolve`, behind POST /api/v1/payment-requests/{id}/resolve/) is
held to the same rules: only the actions offered for the exception, nothing while a decision awaits
approval, and no refund or accept that would need four-eyes (those are requested and approved in the ops
console); a compliance hold is decided by ops only. An API key alone never bypasses the second pair of eyes.

OpsAction rows are append-only. Two write-once fields are filled later, each by one service and each
with its own timeline event: the decision on a pending request, and the refund's tx hash once sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from eth_utils.address import is_checksum_address, to_checksum_address

from stablepay.errors import Conflict, InvalidInput, StablepayError
from stablepay.ledger import reconcile, services
from stablepay.models import ActionState, Event, OpsAction, PaymentRequest, Resolution
from stablepay.ops import selectors
from stablepay.text_rules import clean_note

logger = logging.getLogger(__name__)

CONSOLE_PERMISSION = "stablepay.ops_console"
APPROVE_PERMISSION = "stablepay.ops_approve"
MAX_BULK = 200
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


class NotAllowed(StablepayError):
    """The user may not do this (a missing permission, or four-eyes)."""

    status_code = 403


class NotFound(StablepayError):
    status_code = 404


def actor_name(user: User) -> str:
    return f"ops:{user.get_username()}"


# validation -----------------------------------------------------------------------------------------
def clean_refund_address(address: str | None) -> str:
    text = (address or "").strip()
    if not text:
        raise InvalidInput("refund_address", "a refund needs the address to send it to")
    if not _ADDRESS.match(text):
        raise InvalidInput("refund_address", "must be 0x followed by 40 hex digits")
    if text != text.lower() and text[2:] != text[2:].upper() and not is_checksum_address(text):
        raise InvalidInput("refund_address", "the address checksum (its upper/lower case) does not match: mistyped?")
    return str(to_checksum_address(text))


def clean_tx_hash(tx_hash: str | None, *, required: bool = True) -> str:
    text = (tx_hash or "").strip()
    if not text:
        if required:
            raise InvalidInput("refund_tx_hash", "the refund's transaction hash is required")
        return ""
    if not _TX_HASH.match(text):
        raise InvalidInput("refund_tx_hash", "must be 0x followed by 64 hex digits")
    return text.lower()


def _require(user: User, permission: str) -> None:
    if not user.is_authenticated or not user.is_active or not user.has_perm(permission):
        raise NotAllowed("permission", f"needs the {permission} permission")


def _locked_request(request_id: UUID | str) -> PaymentRequest:
    found = (
        PaymentRequest.objects.select_for_update(of=("self",))
        .select_related("token__chain", "merchant")
        .filter(pk=request_id)
        .first()
    )
    if found is None:
        raise NotFound("payment_request", "no such payment request")
    return found


def _event(pr: PaymentRequest, *, note: str, actor: str, now: datetime) -> None:
    """A timeline entry that changes neither status nor exception (a request, a decision, a tx)."""
    Event.objects.create(payment_request=pr, at=now, status=pr.status, exception=pr.exception, note=note, actor=actor)


# request, approve, reject ---------------------------------------------------------------------------
def ops_action_request(
    *,
    request_id: UUID | str,
    action: str,
    note: str,
    user: User,
    refund_address: str | None = None,
    refund_tx_hash: str | None = None,
    now: datetime | None = None,
) -> OpsAction:
    """Decide on the open exception. Carried out at once, or (a refund over the threshold, or any decision
    on a compliance hold) recorded as pending a second ops user's approval. Returns the OpsAction (state
    `done` or `pending_approval`)."""
    _require(user, CONSOLE_PERMISSION)
    now = now or timezone.now()
    note = clean_note(note)
    if action not in (Resolution.ACCEPT, Resolution.REFUND, Resolution.VOID):
        raise InvalidInput("action", "must be one of accept, refund, void")
    if action == Resolution.REFUND:
        refund_address = clean_refund_address(refund_address)
        refund_tx_hash = clean_tx_hash(refund_tx_hash, required=False)
    elif (refund_address or "").strip() or (refund_tx_hash or "").strip():
        raise InvalidInput("refund_address", "only a refund takes a refund address or tx hash")
    else:
        refund_address = refund_tx_hash = ""
    with transaction.atomic():
        pr = _locked_request(request_id)
        if not pr.exception:
            raise Conflict("exception", "the request has no open exception (it was resolved or changed)")
        if OpsAction.objects.filter(payment_request=pr, state=ActionState.PENDING_APPROVAL).exists():
            raise Conflict("exception", "a decision is awaiting approval: approve or reject it first")
        if action not in selectors.ACTIONS_BY_EXCEPTION.get(pr.exception, ()):
            raise InvalidInput("action", f"{action} is not offered for the {pr.exception} exception")
        # Every decision on a compliance hold needs a second pair of eyes; a refund, and an accept of a
        # shortfall, when large.
        needs_approval, value = pr.exception == reconcile.HELD, ""
        rates = selectors.request_rates(pr)  # the request's own quote table, never the live one (issue 16)
        if action == Resolution.ACCEPT:
            units, short = selectors.accept_shortfall(pr, rates)
            needs_approval = needs_approval or selectors.accept_needs_approval(pr, rates)
            value = f" (short {selectors.hkd_display(short)})" if units else ""
        elif action == Resolution.REFUND:
            refund = selectors.refund_amount(pr, list(pr.transfers.select_related("token")), rates)
            if refund.is_zero:
                raise Conflict("action", "nothing was received that a refund could send back")
            needs_approval = needs_approval or selectors.refund_needs_approval(pr, refund)
            value = f" ({refund.hkd_text})"
        op = OpsAction.objects.create(
            payment_request=pr,
            action=action,
            note=note,
            exception=pr.exception,
            refund_address=refund_address or "",
            refund_tx_hash=refund_tx_hash or "",
            state=ActionState.PENDING_APPROVAL if needs_approval else ActionState.DONE,
            requested_by=user,
            requested_at=now,
            decided_at=None if needs_approval else now,
        )
        if needs_approval:
            where = f" (refund to {refund_address})" if action == Resolution.REFUND else ""
            _event(
                pr,
                note=f"{action} {pr.exception} requested{value}, awaiting a second ops user's approval: {note}{where}",
                actor=actor_name(user),
                now=now,
            )
        else:
            _carry_out(op, note=note, actor=actor_name(user), now=now)
    logger.info("ops %s: %s %s on %s (%s)", user.get_username(), action, op.exception, pr.pk, op.state)
    return op


def merchant_resolve(
    *,
    request_id: UUID | str,
    action: str,
    note: str,
    actor: str,
    refund_tx_hash: str | None = None,
    now: datetime | None = None,
) -> PaymentRequest:
    """The merchant resolves its own request's exception through the API, within the ops console's rules.

    403 (NotAllowed) for a compliance hold, a refund above the four-eyes limit and an accept of a shortfall at
    or above the accept limit; 409 while a decision
    awaits approval or when nothing was received to refund; 400 for an action not offered or a malformed
    refund tx hash."""
    if action == Resolution.REFUND:
        refund_tx_hash = clean_tx_hash(refund_tx_hash, required=False) or None
    elif (refund_tx_hash or "").strip():
        raise InvalidInput("refund_tx_hash", "only a refund takes a refund tx hash")
    with transaction.atomic():
        pr = _locked_request(request_id)
        if not pr.exception:
            raise Conflict("exception", "the request has no open exception to resolve")
        if OpsAction.objects.filter(payment_request=pr, state=ActionState.PENDING_APPROVAL).exists():
            raise Conflict("exception", "a decision is awaiting an ops user's approval")
        if pr.exception == reconcile.HELD:
            raise NotAllowed("action", "a compliance hold is decided by the operations team, not through the API")
        if action not in selectors.ACTIONS_BY_EXCEPTION.get(pr.exception, ()):
            raise InvalidInput("action", f"{action} is not offered for the {pr.exception} exception")
        rates = selectors.request_rates(pr)  # the request's own quote table, never the live one (issue 16)
        if action == Resolution.REFUND:
            refund = selectors.refund_amount(pr, list(pr.transfers.select_related("token")), rates)
            if refund.is_zero:
                raise Conflict("action", "nothing was received that a refund could send back")
            if selectors.refund_needs_approval(pr, refund):
                limit = selectors.four_eyes_threshold(pr.merchant)
                raise NotAllowed(
                    "action",
                    f"four-eyes: a refund of {refund.hkd_text} is above the HKD {limit}"
                    " limit; it must be requested and approved by two people in the ops console",
                )
        if action == Resolution.ACCEPT and selectors.accept_needs_approval(pr, rates):
            _, short = selectors.accept_shortfall(pr, rates)
            raise NotAllowed(
                "action",
                f"four-eyes: accepting a shortfall of {selectors.hkd_display(short)} (the HKD"
                f" {selectors.accept_four_eyes_threshold(pr.merchant)} limit or more) must be requested and"
                " approved by two people in the ops console",
            )
        return services.payment_request_resolve(
            request_id=pr.pk, action=action, note=note, actor=actor, refund_tx_hash=refund_tx_hash, now=now
        )


def _carry_out(op: OpsAction, *, note: str, actor: str, now: datetime) -> None:
    services.payment_request_resolve(
        request_id=op.payment_request_id,
        action=op.action,
        note=note,
        actor=actor,
        refund_address=op.refund_address or None,
        refund_tx_hash=op.refund_tx_hash or None,
        now=now,
    )


def _locked_pending(action_id: int, user: User) -> tuple[OpsAction, PaymentRequest]:
    """The pending action and its request, both locked (request first, as ops_action_request locks)."""
    request_id = OpsAction.objects.filter(pk=action_id).values_list("payment_request_id", flat=True).first()
    if request_id is None:
        raise NotFound("action", "no such ops action")
    pr = _locked_request(request_id)
    op = OpsAction.objects.select_for_update(of=("self",)).select_related("requested_by").get(pk=action_id)
    if op.state != ActionState.PENDING_APPROVAL:
        raise Conflict("action", f"this action is no longer awaiting approval (it is {op.state})")
    if op.requested_by_id == user.pk:
        raise NotAllowed("action", "four-eyes: another ops user must decide on an action you requested")
    return op, pr


def ops_action_approve(*, action_id: int, user: User, note: str, now: datetime | None = None) -> OpsAction:
    """A second ops user approves a pending action: it is carried out now."""
    _require(user, CONSOLE_PERMISSION)
    _require(user, APPROVE_PERMISSION)
    now = now or timezone.now()
    note = clean_note(note)
    with transaction.atomic():
        op, pr = _locked_pending(action_id, user)
        if pr.exception != op.exception:
            raise Conflict(
                "action",
                f"the exception changed since the action was requested (now {pr.exception or 'none'}): reject it",
            )
        requester = actor_name(op.requested_by)
        detail = f"{op.note} [requested by {requester}; approved by {actor_name(user)}: {note}]"
        OpsAction.objects.filter(pk=op.pk, state=ActionState.PENDING_APPROVAL).update(
            state=ActionState.DONE, decided_by=user, decided_at=now, decision_note=note
        )
        _carry_out(op, note=detail, actor=actor_name(user), now=now)
    op.refresh_from_db()
    logger.info("ops %s approved action %s on %s", user.get_username(), op.pk, op.payment_request_id)
    return op


def ops_action_reject(*, action_id: int, user: User, note: str, now: datetime | None = None) -> OpsAction:
    """A second ops user rejects a pending action: nothing is carried out, the exception stays open."""
    _require(user, CONSOLE_PERMISSION)
    _require(user, APPROVE_PERMISSION)
    now = now or timezone.now()
    note = clean_note(note)
    with transaction.atomic():
        op, pr = _locked_pending(action_id, user)
        OpsAction.objects.filter(pk=op.pk, state=ActionState.PENDING_APPROVAL).update(
            state=ActionState.REJECTED, decided_by=user, decided_at=now, decision_note=note
        )
        _event(
            pr,
            note=f"{op.action} request by {actor_name(op.requested_by)} rejected: {note}",
            actor=actor_name(user),
            now=now,
        )
    op.refresh_from_db()
    logger.info("ops %s rejected action %s on %s", user.get_username(), op.pk, op.payment_request_id)
    return op


def ops_refund_tx_record(
    *, request_id: UUID | str, tx_hash: str, user: User, now: datetime | None = None
) -> PaymentRequest:
    """Record the refund's transaction hash once it was sent (write-once, on the request and its refund action)."""
    _require(user, CONSOLE_PERMISSION)
    now = now or timezone.now()
    tx_hash = clean_tx_hash(tx_hash)
    with transaction.atomic():
        pr = _locked_request(request_id)
        if pr.resolution != Resolution.REFUND:
            raise Conflict("refund_tx_hash", "this request was not refunded")
        if pr.refund_tx_hash:
            raise Conflict("refund_tx_hash", f"a refund tx is already recorded: {pr.refund_tx_hash}")
        pr.refund_tx_hash = tx_hash
        pr.save(update_fields=["refund_tx_hash", "updated_at"])
        latest = (
            OpsAction.objects.filter(payment_request=pr, action=Resolution.REFUND, state=ActionState.DONE)
            .order_by("-decided_at", "-id")
            .values_list("pk", flat=True)
            .first()
        )
        if latest is not None:
            OpsAction.objects.filter(pk=latest, refund_tx_hash="").update(refund_tx_hash=tx_hash)
        _event(pr, note=f"refund sent: tx {tx_hash}", actor=actor_name(user), now=now)
    return pr


# bulk ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BulkOutcome:
    request_id: str
    order_reference: str
    ok: bool
    message: str


def ops_action_bulk(
    *, request_ids: Iterable[UUID | str], action: str, note: str, user: User, now: datetime | None = None
) -> list[BulkOutcome]:
    """The same decision and note on many requests, each in its own transaction; one outcome per request.

    Accept and void only: a refund needs its own refund address, and may need its own approval.
    """
    _require(user, CONSOLE_PERMISSION)
    note = clean_note(note)
    if action not in selectors.BULK_ACTIONS:
        raise InvalidInput("action", "bulk actions are accept and void; refund requests one at a time")
    ids = list(dict.fromkeys(str(pk) for pk in request_ids))
    if not ids:
        raise InvalidInput("requests", "select at least one request")
    if len(ids) > MAX_BULK:
        raise InvalidInput("requests", f"at most {MAX_BULK} requests at a time")
    references = dict(
        PaymentRequest.objects.filter(pk__in=[pk for pk in ids if selectors.as_uuid(pk)]).values_list(
            "pk", "order_reference"
        )
    )
    outcomes = []
    for pk in ids:
        uid = selectors.as_uuid(pk)
        reference = references.get(uid, "") if uid else ""
        try:
            if uid is None:
                raise NotFound("payment_request", "no such payment request")
            op = ops_action_request(request_id=uid, action=action, note=note, user=user, now=now)
            outcomes.append(BulkOutcome(pk, reference, True, op.state))
        except StablepayError as exc:
            outcomes.append(BulkOutcome(pk, reference, False, exc.message))
    return outcomes
