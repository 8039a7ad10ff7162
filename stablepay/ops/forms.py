"""Input for the ops console's pages. The services validate again; these shape the input and the errors."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from stablepay.ops import screening_selectors, selectors
from stablepay.ops.lookalikes import DEFAULT_BLOCKS, MAX_BLOCKS
from stablepay.text_rules import MAX_NOTE

ACTION_CHOICES = [("accept", _("Accept")), ("refund", _("Refund")), ("void", _("Void"))]


def action_label(action: str) -> str:
    """accept / refund / void in the user's language (the model's choices are not translated)."""
    return str(dict(ACTION_CHOICES).get(action, action))


class QueueFilterForm(forms.Form):
    exception = forms.ChoiceField(required=False, choices=[("", "")] + [(e, e) for e in selectors.EXCEPTION_GROUPS])
    merchant = forms.CharField(required=False, max_length=64)
    chain = forms.IntegerField(required=False, min_value=1)
    token = forms.CharField(required=False, max_length=16)
    q = forms.CharField(required=False, max_length=100)
    awaiting = forms.BooleanField(required=False)

    def filters(self) -> selectors.QueueFilters:
        self.is_valid()  # an invalid filter is dropped; the valid ones still apply
        data = self.cleaned_data
        return selectors.QueueFilters(
            exception=data.get("exception") or "",
            merchant=data.get("merchant") or "",
            chain_id=data.get("chain"),
            token=data.get("token") or "",
            q=(data.get("q") or "").strip(),
            awaiting_approval=bool(data.get("awaiting")),
        )


class ActionForm(forms.Form):
    action = forms.ChoiceField(choices=ACTION_CHOICES, widget=forms.RadioSelect, label=_("Decision"))
    note = forms.CharField(
        max_length=MAX_NOTE,
        label=_("Note (required)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("A note is required: say why.")},
    )
    refund_address = forms.CharField(required=False, max_length=42, label=_("Refund address"))
    refund_tx_hash = forms.CharField(required=False, max_length=66, label=_("Refund tx hash (once sent)"))

    def __init__(self, *args: Any, allowed: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if allowed:
            choices = [(value, label) for value, label in ACTION_CHOICES if value in allowed]
            self.fields["action"].choices = choices  # type: ignore[attr-defined]


class DecisionForm(forms.Form):
    note = forms.CharField(
        max_length=MAX_NOTE,
        label=_("Your note (required)"),
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("A note is required: say why.")},
    )


class RefundTxForm(forms.Form):
    tx_hash = forms.CharField(max_length=66, label=_("Refund transaction hash"))


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=[c for c in ACTION_CHOICES if c[0] in selectors.BULK_ACTIONS])
    note = forms.CharField(
        max_length=MAX_NOTE, error_messages={"required": _("A note is required: say why.")}, label=_("Note")
    )


class LookalikeForm(forms.Form):
    probe = forms.IntegerField(min_value=1, label=_("Chain"))
    blocks = forms.IntegerField(min_value=1, max_value=MAX_BLOCKS, initial=DEFAULT_BLOCKS, required=False)


class ScreeningFilterForm(forms.Form):
    outcome = forms.ChoiceField(required=False, choices=[("", "")] + [(o, o) for o in screening_selectors.NOT_CLEAR])

    def chosen(self) -> str:
        """The outcome asked for, or "" (every one not clear) when none or an unknown one is asked for."""
        return str(self.cleaned_data.get("outcome") or "") if self.is_valid() else ""
