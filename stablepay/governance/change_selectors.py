"""Reads for change control (stablepay/governance/change_control.py): the proposals the ops console lists, the ones a
merchant's settings page shows, and each one's difference as a person reads it (an xpub with its first
deposit address, to compare with the wallet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from stablepay.governance.change_control import FIELD_LABELS, MEMBER_FIELDS, actor_name, describe, first_address
from stablepay.models import ChangeProposal, ChangeState, Merchant


@dataclass(frozen=True)
class ChangeLine:
    field: str
    label: str
    old: Any
    new: Any
    old_address: str = ""  # for an xpub: its deposit address 0
    new_address: str = ""

    @property
    def none_kind(self) -> str:
        """How an unset value reads: a limit falls back to the deployment's, a rate to the built-in one."""
        if self.field == "rate":
            return "rate"
        return "limit" if self.field.endswith("_four_eyes_above_hkd") else "none"

    @property
    def old_text(self) -> str:
        return describe(self.field, self.old) if self.field != "xpub" else str(self.old or "")

    @property
    def new_text(self) -> str:
        return describe(self.field, self.new) if self.field != "xpub" else str(self.new or "")


@dataclass(frozen=True)
class ChangeRow:
    proposal: ChangeProposal
    lines: list[ChangeLine]

    @property
    def decided_by_name(self) -> str:
        decider = self.proposal.decided_by
        return actor_name(decider) if decider is not None else ""

    @property
    def member_decides(self) -> bool:
        """A member's change of the member fields: another member of the merchant may decide it."""
        return self.proposal.merchant_id is not None and set(self.proposal.changes) <= set(MEMBER_FIELDS)

    @property
    def subject(self) -> str:
        p = self.proposal
        return f"FX {p.fx_pair}" if p.fx_pair else (p.merchant.name if p.merchant is not None else "")


def change_lines(proposal: ChangeProposal) -> list[ChangeLine]:
    lines = []
    for field, values in proposal.changes.items():
        old, new = values.get("from"), values.get("to")
        extra = {"old_address": first_address(old), "new_address": first_address(new)} if field == "xpub" else {}
        lines.append(ChangeLine(field=field, label=FIELD_LABELS.get(field, field), old=old, new=new, **extra))
    return lines


def _rows(queryset: QuerySet[ChangeProposal]) -> list[ChangeRow]:
    return [ChangeRow(proposal=p, lines=change_lines(p)) for p in queryset]


def _with_people(queryset: QuerySet[ChangeProposal]) -> QuerySet[ChangeProposal]:
    return queryset.select_related("merchant", "proposed_by", "decided_by")


def pending_changes() -> list[ChangeRow]:
    """Every proposal awaiting approval, oldest first."""
    return _rows(_with_people(ChangeProposal.objects.filter(state=ChangeState.PENDING)).order_by("proposed_at", "id"))


def recent_changes(*, limit: int = 50) -> list[ChangeRow]:
    """Decided or directly applied changes, newest first."""
    queryset = _with_people(ChangeProposal.objects.exclude(state=ChangeState.PENDING))
    return _rows(queryset.order_by("-proposed_at", "-id")[:limit])


def pending_change_count() -> int:
    return ChangeProposal.objects.filter(state=ChangeState.PENDING).count()


def merchant_changes(*, merchant: Merchant, limit: int = 10) -> list[ChangeRow]:
    """What a merchant's settings page shows: changes to it and to the FX table, pending and applied."""
    queryset = _with_people(
        ChangeProposal.objects.filter(Q(merchant=merchant) | Q(merchant__isnull=True)).exclude(
            state=ChangeState.REJECTED
        )
    )
    return _rows(queryset.order_by("-proposed_at", "-id")[:limit])


def merchant_has_change(*, merchant: Merchant, proposal_id: int) -> bool:
    """True when the proposal concerns this merchant (its settings page may show and decide it)."""
    return ChangeProposal.objects.filter(pk=proposal_id, merchant=merchant).exists()
