"""Change control for where money goes (issue 16 part 3): four eyes on a merchant's xpub, its payment
tolerance, its four-eyes limits, and on the FX table.

One user proposes (`propose_merchant_change`, needing `stablepay.change_merchant`; `propose_fx_change`,
needing `stablepay.change_fxrate`), with a required note; nothing changes yet. A second user holding
`stablepay.approve_change` approves (`change_approve`: applied in one transaction) or rejects it
(`change_reject`). The proposer can never decide their own proposal, superuser or not (checked here and
by a database constraint). Approval re-checks that every field still holds the value the proposal
started "from": if not, the proposal is rejected as stale and must be proposed again. One proposal at a
time may wait per merchant and per FX pair.

A merchant's own member proposes a new payment tolerance on the settings page (`propose_member_change`,
actor "user:<name>"); another member of that merchant, or a holder of `stablepay.approve_change`, decides
it (`may_decide`). The deployer's `stablepay_setup` applies at once and records what it did as an applied
change (`change_record_applied`, actor "setup": whoever runs it holds the shell and the database anyway).

Every proposal, approval and rejection is a ChangeProposal row (append-only, migration 0016) and a log
line; each emails the members of the merchant concerned (an FX change: the members of every merchant),
after commit, and queues a signed webhook to the merchant(s): `merchant.change_proposed`,
`merchant.change_applied`, `merchant.change_rejected`.

Every entry point (the admin, the ops console, setup, the merchant settings page) goes through here; the
API has no way to change these. The deployment-wide four-eyes defaults are environment settings
(STABLEPAY_FOUR_EYES_ABOVE_HKD, STABLEPAY_ACCEPT_FOUR_EYES_ABOVE_HKD) that only the deployer changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from stablepay.chain import forwarder
from stablepay.chain.addresses import XpubError, derive_address, parse_xpub
from stablepay.errors import Conflict, InvalidInput, StablepayError
from stablepay.ledger import outbox
from stablepay.models import ChangeProposal, ChangeState, Currency, FxRate, Merchant
from stablepay.money import DEFAULT_FX, decimal_text
from stablepay.registry import refdata
from stablepay.text_rules import clean_note

logger = logging.getLogger(__name__)

# The merchant fields whose change needs four eyes: the one list every entry point reads.
GUARDED_MERCHANT_FIELDS: tuple[str, ...] = (
    "xpub",
    "settlement_addresses",
    "payment_tolerance_percent",
    "refund_four_eyes_above_hkd",
    "accept_four_eyes_above_hkd",
)
FIELD_LABELS = {
    "xpub": "xpub (where deposits are derived)",
    "settlement_addresses": "settlement addresses (where forwarder deposits are swept)",
    "payment_tolerance_percent": "payment tolerance (%)",
    "refund_four_eyes_above_hkd": "refund four-eyes limit (HKD)",
    "accept_four_eyes_above_hkd": "accept four-eyes limit (HKD)",
    "rate": "FX rate",
}
# What a merchant's own member may propose on the settings page, and another member of it may approve.
MEMBER_FIELDS: tuple[str, ...] = ("payment_tolerance_percent",)
PROPOSE_MERCHANT_PERMISSION = "stablepay.change_merchant"
PROPOSE_FX_PERMISSION = "stablepay.change_fxrate"
APPROVE_PERMISSION = "stablepay.approve_change"
SETUP_ACTOR = "setup"
MAX_LIMIT = Decimal(10) ** 18
MAX_RATE = Decimal(10) ** 9


class ChangeNotAllowed(StablepayError):
    """A missing permission, or four eyes (the proposer deciding their own change)."""

    status_code = 403


class ChangeNotFound(StablepayError):
    status_code = 404


# values ------------------------------------------------------------------------------------------------
def as_json(value: Any) -> Any:
    """A field value as a change stores it: decimals as plain strings, None as None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return str(value)


def _decimal(field: str, value: Any, *, places: int) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(field, "must be a decimal number") from None
    if not number.is_finite() or -number.as_tuple().exponent > places:  # type: ignore[operator]
        raise InvalidInput(field, f"must be a decimal number with at most {places} decimal places")
    return number


def clean_value(field: str, value: Any) -> Any:
    """The value `field` would take, validated as the model and the setup file validate it."""
    if field == "xpub":
        text = str(value or "").strip()
        try:
            parse_xpub(text)
        except XpubError as exc:
            raise InvalidInput(field, str(exc)) from exc
        return text
    if field == "settlement_addresses":
        try:
            return forwarder.settlement_addresses(value)
        except forwarder.ForwarderError as exc:
            raise InvalidInput(field, str(exc)) from exc
    if field == "payment_tolerance_percent":
        number = _decimal(field, value, places=2)
        if not Decimal(0) <= number < Decimal(100):
            raise InvalidInput(field, "must be at least 0 and less than 100")
        return number
    if field in ("refund_four_eyes_above_hkd", "accept_four_eyes_above_hkd"):
        if value is None or str(value).strip() == "":
            return None  # the deployment's limit
        number = _decimal(field, value, places=2)
        if not Decimal(0) <= number < MAX_LIMIT:
            raise InvalidInput(field, "must be an amount in HKD, 0 or more")
        return number
    raise InvalidInput(field, f"not a guarded field (one of {', '.join(GUARDED_MERCHANT_FIELDS)})")


def clean_rate(value: Any) -> Decimal:
    number = _decimal("rate", value, places=12)
    if not Decimal(0) < number < MAX_RATE:
        raise InvalidInput("rate", "must be greater than 0")
    return number


def clean_pair(base: str, quote: str) -> str:
    if base not in Currency.values or quote not in Currency.values or base == quote:
        raise InvalidInput("fx_pair", "must name two different currencies of HKD, MOP, USD, CNH")
    return f"{base}/{quote}"


def actor_name(user: Any) -> str:
    """ "ops:<name>" for the operator's people (staff, approvers), "user:<name>" for a merchant's member."""
    operator = user.is_staff or user.has_perm(APPROVE_PERMISSION)
    return f"{'ops' if operator else 'user'}:{user.get_username()}"


def is_member(user: Any, merchant_id: int | None) -> bool:
    return bool(merchant_id is not None and user.is_authenticated and user.merchants.filter(pk=merchant_id).exists())


def may_decide(proposal: ChangeProposal, user: Any) -> bool:
    """Who may approve or reject (never the proposer: see _locked_pending): a holder of
    `stablepay.approve_change`; for a member's change of the member fields, another member of that merchant."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.has_perm(APPROVE_PERMISSION):
        return True
    return set(proposal.changes) <= set(MEMBER_FIELDS) and is_member(user, proposal.merchant_id)


def _require(user: Any, permission: str) -> None:
    if not user.is_authenticated or not user.is_active or not user.has_perm(permission):
        raise ChangeNotAllowed("permission", f"needs the {permission} permission")


def first_address(xpub: str | None) -> str:
    """Deposit address 0 of an xpub (what a person compares with their wallet), or "" when it is not one."""
    if not xpub:
        return ""
    try:
        return derive_address(xpub, 0)
    except (XpubError, ValueError):
        return ""


def _fx_current(pair: str) -> str | None:
    base, _, quote = pair.partition("/")
    rate = FxRate.objects.filter(base=base, quote=quote).values_list("rate", flat=True).first()
    return as_json(rate)


def _merchant_current(merchant: Merchant, field: str) -> Any:
    return as_json(getattr(merchant, field))


# propose ------------------------------------------------------------------------------------------------
def propose_merchant_change(
    *, merchant_id: int, changes: Mapping[str, Any], note: str, user: Any, now: datetime | None = None
) -> ChangeProposal:
    """Propose new values for guarded merchant fields; applied only when a second person approves."""
    _require(user, PROPOSE_MERCHANT_PERMISSION)
    now = now or timezone.now()
    note = clean_note(note)
    cleaned = {field: clean_value(field, value) for field, value in changes.items()}
    with transaction.atomic():
        merchant = Merchant.objects.select_for_update().filter(pk=merchant_id).first()
        if merchant is None:
            raise ChangeNotFound("merchant", "no such merchant")
        diff = {
            field: {"from": _merchant_current(merchant, field), "to": as_json(value)}
            for field, value in cleaned.items()
            if _merchant_current(merchant, field) != as_json(value)
        }
        if not diff:
            raise InvalidInput("changes", "nothing would change")
        if ChangeProposal.objects.filter(merchant=merchant, state=ChangeState.PENDING).exists():
            raise Conflict("changes", "a change to this merchant already awaits approval: decide on it first")
        proposal = _create(merchant=merchant, changes=diff, note=note, user=user, now=now)
    logger.info("change %s proposed by %s for merchant %s: %s", proposal.pk, proposal.actor, merchant.slug, diff)
    return proposal


def propose_member_change(
    *, merchant: Merchant, changes: Mapping[str, Any], note: str, user: Any, now: datetime | None = None
) -> ChangeProposal | None:
    """A merchant's member proposes new values for the member fields (its payment tolerance); applied only
    when another member of the merchant, or the operator's approver, approves. None when nothing would change."""
    if not is_member(user, merchant.pk) or not user.is_active:
        raise ChangeNotAllowed("merchant", "only a member of this merchant may propose a change to it")
    if not set(changes) <= set(MEMBER_FIELDS):
        raise InvalidInput("changes", f"a member may propose only {', '.join(MEMBER_FIELDS)}")
    now = now or timezone.now()
    note = clean_note(note)
    cleaned = {field: clean_value(field, value) for field, value in changes.items()}
    with transaction.atomic():
        locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
        diff = merchant_changes(locked, cleaned)
        if not diff:
            return None
        if ChangeProposal.objects.filter(merchant=locked, state=ChangeState.PENDING).exists():
            raise Conflict("changes", "a change to these settings already awaits approval: decide on it first")
        proposal = _create(merchant=locked, changes=diff, note=note, user=user, now=now)
    logger.info("change %s proposed by %s for merchant %s: %s", proposal.pk, proposal.actor, locked.slug, diff)
    return proposal


def propose_fx_change(
    *, base: str, quote: str, rate: Any, note: str, user: Any, now: datetime | None = None
) -> ChangeProposal:
    """Propose setting (rate) or removing (rate None) the FX rate base/quote."""
    _require(user, PROPOSE_FX_PERMISSION)
    now = now or timezone.now()
    note = clean_note(note)
    pair = clean_pair(base, quote)
    new = None if rate is None else as_json(clean_rate(rate))
    with transaction.atomic():
        current = _fx_current(pair)
        if current == new:
            raise InvalidInput("rate", "nothing would change" if new is not None else "there is no such rate")
        if ChangeProposal.objects.filter(fx_pair=pair, state=ChangeState.PENDING).exists():
            raise Conflict("rate", f"a change to {pair} already awaits approval: decide on it first")
        proposal = _create(fx_pair=pair, changes={"rate": {"from": current, "to": new}}, note=note, user=user, now=now)
    logger.info("change %s proposed by %s for FX %s: %s -> %s", proposal.pk, proposal.actor, pair, current, new)
    return proposal


def _create(
    *, changes: dict[str, Any], note: str, user: Any, now: datetime, merchant: Merchant | None = None, fx_pair: str = ""
) -> ChangeProposal:
    try:
        with transaction.atomic():
            proposal = ChangeProposal.objects.create(
                merchant=merchant,
                fx_pair=fx_pair,
                changes=changes,
                note=note,
                actor=actor_name(user),
                proposed_by=user,
                proposed_at=now,
                state=ChangeState.PENDING,
            )
    except IntegrityError as exc:  # a concurrent proposal won the race
        raise Conflict("changes", "a change to this already awaits approval: decide on it first") from exc
    _announce(proposal, now=now)
    return proposal


# approve, reject -----------------------------------------------------------------------------------------
def _locked_pending(proposal_id: int, user: Any) -> ChangeProposal:
    proposal = (
        ChangeProposal.objects.select_for_update(of=("self",))
        .select_related("merchant", "proposed_by")
        .filter(pk=proposal_id)
        .first()
    )
    if proposal is None:
        raise ChangeNotFound("change", "no such change")
    if not may_decide(proposal, user):
        raise ChangeNotAllowed("permission", f"needs the {APPROVE_PERMISSION} permission")
    if proposal.state != ChangeState.PENDING:
        raise Conflict("change", f"this change is no longer awaiting approval (it is {proposal.state})")
    if proposal.proposed_by_id is not None and proposal.proposed_by_id == user.pk:
        raise ChangeNotAllowed("change", "four-eyes: another person must decide on a change you proposed")
    return proposal


def _stale(proposal: ChangeProposal, merchant: Merchant | None) -> list[str]:
    """The fields whose current value is no longer the one the proposal started from."""
    stale = []
    for field, values in proposal.changes.items():
        if proposal.fx_pair:
            current = _fx_current(proposal.fx_pair)
        else:
            assert merchant is not None
            current = _merchant_current(merchant, field)
        if current != values.get("from"):
            stale.append(field)
    return stale


def change_approve(*, proposal_id: int, user: Any, note: str, now: datetime | None = None) -> ChangeProposal:
    """A second person approves: the change is applied now, or (a value changed since it was proposed)
    the proposal is rejected as stale and Conflict is raised: propose it again from the current value."""
    now = now or timezone.now()
    note = clean_note(note)
    stale: list[str] = []
    with transaction.atomic():
        proposal = _locked_pending(proposal_id, user)
        merchant = None
        if proposal.merchant_id is not None:
            merchant = Merchant.objects.select_for_update().get(pk=proposal.merchant_id)
        stale = _stale(proposal, merchant)
        if stale:
            reason = f"stale: {', '.join(stale)} changed since it was proposed; propose it again ({note})"
            _decide(proposal, state=ChangeState.REJECTED, user=user, note=reason, now=now)
        else:
            _apply(proposal, merchant)
            _decide(proposal, state=ChangeState.APPLIED, user=user, note=note, now=now)
    if stale:
        logger.warning("change %s refused as stale by %s: %s", proposal.pk, user.get_username(), stale)
        raise Conflict(
            "change",
            f"{', '.join(stale)} changed since this was proposed: it was rejected as stale; propose it again",
        )
    logger.info("change %s approved and applied by %s", proposal.pk, user.get_username())
    return proposal


def change_reject(*, proposal_id: int, user: Any, note: str, now: datetime | None = None) -> ChangeProposal:
    """A second person rejects: nothing changes."""
    now = now or timezone.now()
    note = clean_note(note)
    with transaction.atomic():
        proposal = _locked_pending(proposal_id, user)
        _decide(proposal, state=ChangeState.REJECTED, user=user, note=note, now=now)
    logger.info("change %s rejected by %s", proposal.pk, user.get_username())
    return proposal


def _decide(proposal: ChangeProposal, *, state: str, user: Any, note: str, now: datetime) -> None:
    ChangeProposal.objects.filter(pk=proposal.pk, state=ChangeState.PENDING).update(
        state=state, decided_by=user, decided_at=now, decision_note=note
    )
    proposal.refresh_from_db()
    _announce(proposal, now=now)


def _apply(proposal: ChangeProposal, merchant: Merchant | None) -> None:
    if proposal.fx_pair:
        base, _, quote = proposal.fx_pair.partition("/")
        new = proposal.changes["rate"]["to"]
        if new is None:
            FxRate.objects.filter(base=base, quote=quote).delete()
        else:
            FxRate.objects.filter(base=quote, quote=base).delete()  # a stored pair replaces its inverse
            FxRate.objects.update_or_create(base=base, quote=quote, defaults={"rate": Decimal(new)})
    else:
        assert merchant is not None
        for field, values in proposal.changes.items():
            setattr(merchant, field, clean_value(field, values["to"]))
        merchant.save(update_fields=list(proposal.changes))
    refdata.clear()  # this process quotes with the new values at once; others within REFERENCE_CACHE_SECONDS
    transaction.on_commit(refdata.clear)


# applied by the deployer or the merchant itself ---------------------------------------------------------
def change_record_applied(
    *,
    changes: dict[str, dict[str, Any]],
    note: str,
    actor: str,
    merchant: Merchant | None = None,
    fx_pair: str = "",
    user: Any = None,
    now: datetime | None = None,
    webhook: bool = True,
) -> ChangeProposal | None:
    """Record a change its caller has just applied, in the caller's transaction: `stablepay_setup` (actor
    "setup"). Announced like an approved change (email; the webhook
    unless `webhook` is false: a merchant created just now has nobody to tell yet). None when nothing changed."""
    changes = {field: values for field, values in changes.items() if values.get("from") != values.get("to")}
    if not changes:
        return None
    now = now or timezone.now()
    proposal = ChangeProposal.objects.create(
        merchant=merchant,
        fx_pair=fx_pair,
        changes=changes,
        note=note,
        actor=actor,
        proposed_by=user if user is not None and user.is_authenticated else None,
        proposed_at=now,
        state=ChangeState.APPLIED,
        decided_at=now,
        decision_note=f"applied directly by {actor}",
    )
    _announce(proposal, now=now, webhook=webhook)
    logger.info("change %s applied directly by %s (%s): %s", proposal.pk, actor, merchant or fx_pair, changes)
    return proposal


def merchant_changes(merchant: Merchant, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"from", "to"}} for the guarded fields among `values` that differ from the merchant's."""
    return {
        field: {"from": _merchant_current(merchant, field), "to": as_json(values[field])}
        for field in GUARDED_MERCHANT_FIELDS
        if field in values and _merchant_current(merchant, field) != as_json(values[field])
    }


def fx_effective(pair: str) -> str | None:
    """The rate quotes use for base/quote now (a stored row, else a built-in default), as a change stores it."""
    base, _, quote = pair.partition("/")
    stored = _fx_current(pair)
    if stored is not None:
        return stored
    if FxRate.objects.filter(base=quote, quote=base).exists():
        return None  # the inverse is stored: this direction is implied
    return as_json(DEFAULT_FX.get((base, quote)))


# announce ------------------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def change_data(proposal: ChangeProposal) -> dict[str, Any]:
    """The webhook payload's `data` for a change (README: merchant.change_* events)."""
    return {
        "id": proposal.pk,
        "merchant": proposal.merchant.slug if proposal.merchant is not None else None,
        "fx_pair": proposal.fx_pair or None,
        "changes": proposal.changes,
        "note": proposal.note,
        "proposed_by": proposal.actor,
        "proposed_at": _iso(proposal.proposed_at),
        "state": proposal.state,
        "decided_by": actor_name(proposal.decided_by) if proposal.decided_by is not None else None,
        "decided_at": _iso(proposal.decided_at) if proposal.state != ChangeState.PENDING else None,
        "decision_note": proposal.decision_note,
    }


EVENT_BY_STATE = {
    ChangeState.PENDING: "merchant.change_proposed",
    ChangeState.APPLIED: "merchant.change_applied",
    ChangeState.REJECTED: "merchant.change_rejected",
}


def _announce(proposal: ChangeProposal, *, now: datetime, webhook: bool = True) -> None:
    """Queue the webhook(s) in this transaction; email the members once it commits."""
    merchants = [proposal.merchant] if proposal.merchant is not None else list(Merchant.objects.order_by("slug"))
    event_type = EVENT_BY_STATE[ChangeState(proposal.state)]
    if webhook:
        data = change_data(proposal)
        for merchant in merchants:
            outbox.enqueue_merchant_event(merchant, event_type=event_type, data=data, now=now)
    users = get_user_model().objects.filter(is_active=True, merchants__in=[m.pk for m in merchants]).exclude(email="")
    recipients = sorted(set(users.values_list("email", flat=True)))
    if recipients:
        subject, body = _email(proposal, merchants)
        transaction.on_commit(lambda: _send(proposal.pk, subject, body, recipients))


def _send(proposal_id: int, subject: str, body: str, recipients: list[str]) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:  # the change is committed; a mail outage must not turn it into an error page
        logger.exception("change %s: the notification email to %d recipient(s) failed", proposal_id, len(recipients))


def describe(field: str, value: Any) -> str:
    if value is None:
        if field == "rate":
            return "(no stored rate)"
        return "(none: the deployment's default)" if field.endswith("_four_eyes_above_hkd") else "(none)"
    if field == "xpub":
        address = first_address(value)
        return f"{value} (first deposit address {address})" if address else str(value)
    return str(value)


def _email(proposal: ChangeProposal, merchants: list[Merchant]) -> tuple[str, str]:
    what = f"the FX rate {proposal.fx_pair}" if proposal.fx_pair else f"{merchants[0].name}'s payment settings"
    verb = {ChangeState.PENDING: "proposed", ChangeState.APPLIED: "applied", ChangeState.REJECTED: "rejected"}[
        ChangeState(proposal.state)
    ]
    lines = [f"A change to {what} was {verb} (change #{proposal.pk}).", ""]
    for field, values in proposal.changes.items():
        label = FIELD_LABELS.get(field, field)
        lines.append(f"{label}: {describe(field, values.get('from'))} -> {describe(field, values.get('to'))}")
    lines += ["", f"Proposed by {proposal.actor} at {_iso(proposal.proposed_at)}: {proposal.note}"]
    if proposal.state == ChangeState.PENDING:
        lines.append("It takes effect only once a second authorised person approves it.")
    else:
        decider = actor_name(proposal.decided_by) if proposal.decided_by is not None else proposal.actor
        lines.append(f"{verb.capitalize()} by {decider} at {_iso(proposal.decided_at)}: {proposal.decision_note}")
    lines += ["", "If you did not expect this change, contact the payments operator at once."]
    return f"[stablepay] Change {verb}: {what}", "\n".join(lines)
