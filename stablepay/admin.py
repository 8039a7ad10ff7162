"""Admin for support staff: the registry is editable, the ledger is read-only.

Where money goes is not edited here directly (issue 16 part 3): saving a change to a merchant's guarded
fields (stablepay.governance.change_control.GUARDED_MERCHANT_FIELDS: xpub, tolerance, four-eyes limits) or to an FX
rate only proposes it, with a required note; a second person holding `stablepay.approve_change` approves
it in the ops console (/ops/changes/). A merchant's other fields (name, expiry, webhook) save directly; a
new merchant saves directly and is recorded as an applied change. Change records are read-only here.

The ledger (requests, transfers, events, ops decisions, webhooks) is written by services only. Admin
actions on payment requests call those services: reconcile now, and accept or void open exceptions
with a required note (the ops console's decision, audited the same way).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from stablepay.errors import StablepayError
from stablepay.governance import change_control, setup_file
from stablepay.ledger.selectors import chain_error_text
from stablepay.ledger.services import payment_request_reconcile
from stablepay.models import (
    ActionState,
    Block,
    Chain,
    ChangeProposal,
    ChangeState,
    Cursor,
    Event,
    FxRate,
    Merchant,
    OpsAction,
    PaymentRequest,
    ScreeningListEntry,
    Token,
    Transfer,
    WebhookDelivery,
)
from stablepay.ops.services import ops_action_bulk
from stablepay.redact import redact_url, redact_urls
from stablepay.text_rules import MAX_NOTE
from stablepay.webhooks import target as webhook_target


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledger rows are written by services only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChainAdminForm(forms.ModelForm):
    """Node URLs are write-only here (issue 16): a provider's API key rides in their path, query or
    user-info, so the page shows each by scheme and host only (stablepay.redact) and takes new ones in
    fields that start empty. Blank keeps the current URLs; anything typed replaces them all."""

    new_rpc_urls = forms.CharField(
        required=False,
        label="Replace the RPC URLs",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="One http(s) URL a line, in fail-over order. Blank keeps the current ones (shown above by host).",
    )
    new_ws_url = forms.CharField(
        required=False,
        label="Replace the websocket URL",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text="A ws(s):// URL for newHeads. Blank keeps the current one.",
    )
    remove_ws_url = forms.BooleanField(required=False, label="Remove the websocket URL")

    def clean_new_rpc_urls(self) -> list[str]:
        urls = [line.strip() for line in (self.cleaned_data.get("new_rpc_urls") or "").splitlines() if line.strip()]
        if any(not setup_file.URL.match(url) for url in urls):
            raise forms.ValidationError("Each line must be one http(s) URL.")
        if not urls and not (self.instance.pk and self.instance.rpc_urls):
            raise forms.ValidationError("A chain needs at least one RPC URL.")
        return urls

    def clean_new_ws_url(self) -> str:
        url = (self.cleaned_data.get("new_ws_url") or "").strip()
        if url and not setup_file.WS_URL.match(url):
            raise forms.ValidationError("Must be a ws(s):// URL.")
        if len(url) > Chain._meta.get_field("ws_url").max_length:  # type: ignore[operator]
            raise forms.ValidationError("Too long.")
        return url

    def save(self, commit: bool = True) -> Chain:
        chain: Chain = super().save(commit=False)
        if self.cleaned_data.get("new_rpc_urls"):
            chain.rpc_urls = self.cleaned_data["new_rpc_urls"]
        if self.cleaned_data.get("remove_ws_url"):
            chain.ws_url = ""
        elif self.cleaned_data.get("new_ws_url"):
            chain.ws_url = self.cleaned_data["new_ws_url"]
        if commit:
            chain.save()
            self.save_m2m()
        return chain


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    form = ChainAdminForm
    list_display = ("chain_id", "name", "rpc_hosts", "confirmations", "block_time_seconds", "start_block")
    exclude = ("rpc_urls", "ws_url")
    readonly_fields = ("rpc_hosts", "ws_host")
    WRITE_ONLY = ("new_rpc_urls", "new_ws_url", "remove_ws_url")

    @admin.display(description="RPC nodes (scheme and host)")
    def rpc_hosts(self, obj: Chain) -> str:
        return ", ".join(redact_urls(obj.rpc_urls)) or "—"

    @admin.display(description="Websocket node (scheme and host)")
    def ws_host(self, obj: Chain) -> str:
        return redact_url(obj.ws_url) if obj.ws_url else "—"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """The model's fields, then each node's host, then (for who may change it) the write-only URL fields."""
        shown = ("rpc_hosts", "ws_host")
        fields = [f for f in super().get_fields(request, obj) if f not in shown and f not in self.WRITE_ONLY]
        if obj is None or self.has_change_permission(request, obj):
            return [*fields, *shown, *self.WRITE_ONLY]
        return [*fields, *shown]


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("symbol", "chain", "address", "decimals", "currency", "licence_status", "issuer", "active")
    list_filter = ("chain", "currency", "licence_status", "active")
    readonly_fields = ("halted_at", "health_checked_at", "health_checked_block")


class MerchantAdminForm(forms.ModelForm):
    """The webhook URL follows the same rule here as on the settings page and at delivery (issue 16). The
    admin builds the form's Meta (model, and the fields MerchantAdmin shows). A change to a guarded field
    needs a note: it becomes a proposal (see MerchantAdmin.save_model)."""

    webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    change_note = forms.CharField(
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why (for a change to where money goes)",
        help_text="Required when the xpub, the tolerance or a four-eyes limit changes: that change is only"
        " proposed, and applied once a second person approves it in the ops console.",
    )

    def guarded_changes(self) -> dict[str, Any]:
        if self.instance.pk is None:
            return {}
        return {f: self.cleaned_data.get(f) for f in change_control.GUARDED_MERCHANT_FIELDS if f in self.changed_data}

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        for field in change_control.GUARDED_MERCHANT_FIELDS:
            if field in self.fields and field in cleaned and not self.errors.get(field):
                try:
                    change_control.clean_value(field, cleaned[field])
                except StablepayError as exc:
                    self.add_error(field, exc.message)
        if self.guarded_changes():
            if not (cleaned.get("change_note") or "").strip():
                self.add_error("change_note", "Say why: a change to where money goes needs a note.")
            if ChangeProposal.objects.filter(merchant=self.instance, state=ChangeState.PENDING).exists():
                raise forms.ValidationError(
                    "A change to this merchant already awaits approval in the ops console: decide on it first."
                )
        return cleaned

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data.get("webhook_url") or ""
        if url:
            try:
                webhook_target.check(url)
            except webhook_target.TargetRefused as exc:
                raise forms.ValidationError(f"Webhook URL refused: {exc.reason}.", code=exc.code) from exc
        return url


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    form = MerchantAdminForm
    list_display = ("slug", "name", "payment_tolerance_percent", "expiry_minutes", "next_address_index")
    readonly_fields = ("api_key_hash", "api_key_prefix", "next_address_index", "webhook_secret_previous_until")
    filter_horizontal = ("members",)
    # Webhook secrets are never shown here (they are encrypted at rest); rotate them from /merchant/settings/.
    exclude = ("webhook_secret", "webhook_secret_previous")

    def save_model(self, request: HttpRequest, obj: Merchant, form: Any, change: bool) -> None:
        """Guarded fields are proposed, not saved (four eyes); the others save as usual."""
        guarded = form.guarded_changes() if change else {}
        if guarded:
            current = Merchant.objects.get(pk=obj.pk)
            for field in guarded:
                setattr(obj, field, getattr(current, field))
        super().save_model(request, obj, form, change)
        if guarded:
            proposal = change_control.propose_merchant_change(
                merchant_id=obj.pk, changes=guarded, note=form.cleaned_data["change_note"], user=request.user
            )
            self.message_user(
                request,
                f"Not applied yet: the change to {', '.join(guarded)} was proposed as change #{proposal.pk}. A second"
                " person with the approve_change permission must approve it in the ops console (/ops/changes/);"
                " the merchant's users were told.",
                messages.WARNING,
            )
        elif not change:
            change_control.change_record_applied(
                merchant=obj,
                changes={f: {"from": None, "to": change_control.as_json(getattr(obj, f))} for f in GUARDED_FIELDS},
                note=form.cleaned_data.get("change_note") or "merchant added in the admin",
                actor=change_control.actor_name(request.user),
                user=request.user,
                webhook=False,
            )


GUARDED_FIELDS = change_control.GUARDED_MERCHANT_FIELDS


class FxRateAdminForm(forms.ModelForm):
    """An FX change is a proposal with a note (and removal is one too): see FxRateAdmin."""

    change_note = forms.CharField(
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why",
        help_text="Every FX change is only proposed, and applied once a second person approves it in the ops console.",
    )
    remove = forms.BooleanField(required=False, label="Propose removing this rate (the built-in default applies)")

    class Meta:
        model = FxRate
        fields = ("base", "quote", "rate")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        base = self.instance.base if self.instance.pk else cleaned.get("base")
        quote = self.instance.quote if self.instance.pk else cleaned.get("quote")
        if base and quote:
            try:
                pair = change_control.clean_pair(base, quote)
                if not cleaned.get("remove") and cleaned.get("rate") is not None:
                    change_control.clean_rate(cleaned["rate"])
            except StablepayError as exc:
                raise forms.ValidationError(exc.message) from exc
            if ChangeProposal.objects.filter(fx_pair=pair, state=ChangeState.PENDING).exists():
                raise forms.ValidationError(f"A change to {pair} already awaits approval: decide on it first.")
        return cleaned


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    """FX rates value every quote: a change (or removal) here is only proposed; a second person with
    `stablepay.approve_change` applies it from the ops console. Nothing is saved or deleted directly."""

    form = FxRateAdminForm
    list_display = ("base", "quote", "rate", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("base", "quote", "updated_at") if obj is not None else ("updated_at",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields = ["base", "quote", "rate", "change_note"]
        return [*fields, "remove", "updated_at"] if obj is not None else fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # removal is proposed from the change form

    def save_model(self, request: HttpRequest, obj: FxRate, form: Any, change: bool) -> None:
        rate = None if form.cleaned_data.get("remove") else form.cleaned_data["rate"]
        proposal = change_control.propose_fx_change(
            base=obj.base, quote=obj.quote, rate=rate, note=form.cleaned_data["change_note"], user=request.user
        )
        self.message_user(
            request,
            f"Not applied yet: the FX change to {proposal.fx_pair} was proposed as change #{proposal.pk}. A second"
            " person with the approve_change permission must approve it in the ops console (/ops/changes/).",
            messages.WARNING,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # nothing was saved

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # the change record is the log

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        return self.response_post_save_add(request, obj)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        return self.response_post_save_change(request, obj)


@admin.register(ChangeProposal)
class ChangeProposalAdmin(ReadOnlyAdmin):
    """Changes to where money goes: proposed, approved, rejected, or applied by setup. Append-only."""

    list_display = ("proposed_at", "merchant", "fx_pair", "state", "actor", "decided_by", "decided_at")
    list_filter = ("state",)
    search_fields = ("merchant__slug", "fx_pair", "note", "actor")
    list_select_related = ("merchant", "decided_by")


class EventInline(admin.TabularInline):
    model = Event
    extra = 0
    can_delete = False
    readonly_fields = ("at", "status", "exception", "note", "actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OpsActionInline(admin.TabularInline):
    model = OpsAction
    fk_name = "payment_request"
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "requested_at",
        "action",
        "exception",
        "state",
        "requested_by",
        "note",
        "decided_by",
        "decided_at",
        "decision_note",
        "refund_address",
        "refund_tx_hash",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaymentRequest)
class PaymentRequestAdmin(ReadOnlyAdmin):
    list_display = ("order_reference", "merchant", "status", "exception", "amount", "currency", "token", "created_at")
    list_filter = ("status", "exception", "merchant", "token")
    search_fields = ("order_reference", "pay_to", "id")
    readonly_fields = ("ops_console_link",)
    inlines = [EventInline, OpsActionInline]
    actions = ["reconcile_now", "accept_exceptions", "void_exceptions"]

    @admin.display(description="Ops console")
    def ops_console_link(self, obj: PaymentRequest) -> str:
        return format_html('<a href="{}">Open in the ops console</a>', reverse("stablepay:ops:detail", args=[obj.pk]))

    def has_ops_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("stablepay.ops_console")

    @admin.action(description="Reconcile now (re-apply the rules to their transfers)", permissions=["ops"])
    def reconcile_now(self, request: HttpRequest, queryset: QuerySet[PaymentRequest]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            payment_request_reconcile(request_id=pk)
        self.message_user(request, f"Reconciled {queryset.count()} request(s).", messages.SUCCESS)

    @admin.action(description="Accept the open exceptions (with a note)", permissions=["ops"])
    def accept_exceptions(self, request: HttpRequest, queryset: QuerySet[PaymentRequest]) -> HttpResponse | None:
        return self._decide(request, queryset, action="accept", admin_action="accept_exceptions")

    @admin.action(description="Void the open exceptions (with a note)", permissions=["ops"])
    def void_exceptions(self, request: HttpRequest, queryset: QuerySet[PaymentRequest]) -> HttpResponse | None:
        return self._decide(request, queryset, action="void", admin_action="void_exceptions")

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[PaymentRequest], *, action: str, admin_action: str
    ) -> HttpResponse | None:
        """Ask for the note on an intermediate page, then make the same bulk decision as the ops console."""
        note = (request.POST.get("note") or "").strip()
        if "apply" in request.POST and note:
            assert isinstance(request.user, User)
            try:
                outcomes = ops_action_bulk(
                    request_ids=list(queryset.values_list("pk", flat=True)), action=action, note=note, user=request.user
                )
            except StablepayError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            for outcome in outcomes:
                level = messages.SUCCESS if outcome.ok else messages.WARNING
                verdict = action if outcome.ok else f"refused: {outcome.message}"
                if outcome.ok and outcome.message == ActionState.PENDING_APPROVAL:
                    verdict = f"{action} requested, awaiting a second ops user's approval (four-eyes)"
                self.message_user(request, f"{outcome.order_reference or outcome.request_id}: {verdict}", level)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.capitalize()} the open exceptions",
            "opts": self.model._meta,
            "requests": queryset,
            "action": action,
            "admin_action": admin_action,
            "note_missing": "apply" in request.POST,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "stablepay/ops/admin_decision.html", context)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = (
        "tx_hash",
        "log_index",
        "chain",
        "token",
        "to_address",
        "amount_base_units",
        "state",
        "screening",
        "block_number",
    )
    list_filter = ("state", "screening", "chain", "token")
    search_fields = ("tx_hash", "to_address", "from_address")


@admin.register(ScreeningListEntry)
class ScreeningListEntryAdmin(admin.ModelAdmin):
    """The allow/deny list of payer screening (stablepay/compliance/screening.py), kept by ops; changes are in the
    admin log. A deny entry holds the payments its address sends from the next transfer on."""

    list_display = ("address", "kind", "reason", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("address", "reason")
    readonly_fields = ("created_by", "created_at")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ScreeningListEntry], search_term: str
    ) -> tuple[QuerySet[ScreeningListEntry], bool]:
        return super().get_search_results(request, queryset, search_term.strip().lower())

    def save_model(self, request: HttpRequest, obj: ScreeningListEntry, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user if isinstance(request.user, User) else None
        super().save_model(request, obj, form, change)


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("chain", "number", "hash", "timestamp")


@admin.register(Cursor)
class CursorAdmin(ReadOnlyAdmin):
    list_display = ("chain", "scanned_block", "head_block", "chunk_size", "last_scan_at", "shown_error")
    # The recorded error only as stablepay.ledger.selectors.chain_error_text shows it: no node URL's secret.
    exclude = ("last_error",)
    readonly_fields = ("shown_error",)

    @admin.display(description="Last error")
    def shown_error(self, obj: Cursor) -> str:
        return chain_error_text(obj.chain, obj.last_error)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "merchant", "type", "attempts", "last_status_code", "delivered_at", "next_attempt_at")
    list_filter = ("type", "merchant")
    search_fields = ("event_id", "payment_request__order_reference")
    # The stored reason only as webhook_target.shown_reason passes it: never a receiver's answer kept by an
    # older version.
    exclude = ("last_error",)
    readonly_fields = ("last_reason",)

    @admin.display(description="Last error")
    def last_reason(self, obj: WebhookDelivery) -> str:
        return webhook_target.shown_reason(obj.last_error)


@admin.register(OpsAction)
class OpsActionAdmin(ReadOnlyAdmin):
    """Ops decisions: who, when, why. Append-only; never edited here."""

    list_display = ("requested_at", "payment_request", "action", "exception", "state", "requested_by", "decided_by")
    list_filter = ("state", "action", "exception")
    search_fields = ("payment_request__order_reference", "note", "requested_by__username", "refund_tx_hash")
    list_select_related = ("payment_request", "requested_by", "decided_by")
