"""Forms of the merchant dashboard: report filters and settings. Validation only; services write."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from stablepay.models import TOKEN_CURRENCIES, LicenceStatus, Status
from stablepay.text_rules import parse_iso_date
from stablepay.webhooks import target as webhook_target


class IsoDateField(forms.CharField):
    widget = forms.DateInput(attrs={"type": "date"})

    def to_python(self, value: Any) -> date | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_iso_date(text)
        except ValueError as exc:
            raise forms.ValidationError(_("Enter a date as YYYY-MM-DD."), code="invalid") from exc


class SettlementFilterForm(forms.Form):
    """Hong Kong calendar days, both ends included; the last 7 days when not given."""

    date_from = IsoDateField(label=_("From"), required=False)
    date_to = IsoDateField(label=_("To"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date must be on or after the start date."))
        return data

    def date_range(self, today: date) -> tuple[date, date]:
        """The chosen range once valid: a missing end is today, a missing start the 6 days before it."""
        data = self.cleaned_data
        date_to = data.get("date_to") or max(today, data.get("date_from") or today)
        date_from = data.get("date_from") or date_to - timedelta(days=6)
        return date_from, date_to


class PaymentFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def __init__(self, *args: Any, status_labels: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("All statuses")), *((s.value, status_labels[s.value]) for s in Status)]


WEBHOOK_URL_MESSAGES = {
    "scheme": _("Use an http or https URL."),
    "invalid": _("Enter a valid URL."),
    "host": _("Use a public address: we cannot deliver to a local network."),
}


class WebhookForm(forms.Form):
    webhook_url = forms.URLField(
        label=_("Endpoint URL"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=_("We POST signed JSON events here. Leave empty to turn webhooks off."),
    )
    webhook_secret = forms.CharField(
        label=_("Signing secret"),
        required=False,
        min_length=16,
        max_length=128,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
        help_text=_("Leave empty to keep the current secret."),
    )
    new_secret = forms.BooleanField(label=_("Generate a new random secret"), required=False)

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data.get("webhook_url") or ""
        if not url:
            return ""
        # The rule of stablepay/webhooks/target.py, as at delivery: a public address, or one that
        # STABLEPAY_WEBHOOK_ALLOWED_HOSTS admits.
        try:
            webhook_target.check(url)
        except webhook_target.TargetRefused as exc:
            raise forms.ValidationError(WEBHOOK_URL_MESSAGES[exc.code], code=exc.code) from exc
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("webhook_secret") and data.get("new_secret"):
            self.add_error("new_secret", _("Either type a secret or generate one, not both."))
        return data


class PaymentSettingsForm(forms.Form):
    payment_tolerance_percent = forms.DecimalField(
        label=_("Underpayment tolerance (%)"),
        min_value=Decimal("0"),
        max_value=Decimal("99.99"),
        max_digits=5,
        decimal_places=2,
        help_text=_("A payment this much short of the amount due still counts as paid. 0 to 99.99."),
    )
    expiry_minutes = forms.IntegerField(
        label=_("Payment window (minutes)"),
        min_value=1,
        max_value=1440,
        help_text=_("How long a new payment request stays open. 1 to 1440 minutes (24 hours)."),
    )


class TokenPolicyForm(forms.Form):
    accepted_licence_statuses = forms.MultipleChoiceField(
        label=_("Accept tokens whose issuer is"),
        choices=[
            (LicenceStatus.LICENSED, _("Licensed")),
            (LicenceStatus.PENDING, _("Licence pending")),
            (LicenceStatus.UNLICENSED, _("Unlicensed")),
        ],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Under Hong Kong's Stablecoins Ordinance. A token of another status is not offered at checkout."),
    )
    accepted_token_currencies = forms.MultipleChoiceField(
        label=_("Accept coins pegged to"),
        choices=[(c.value, c.value) for c in TOKEN_CURRENCIES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: any currency."),
    )


class RotateApiKeyForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that the current key stops working immediately."),
        required=True,
        error_messages={"required": _("Tick the box to confirm.")},
    )
