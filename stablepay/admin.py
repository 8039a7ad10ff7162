"""Admin for support staff: the registry is editable, the ledger is read-only.

The ledger (requests, transfers, events, ops decisions, webhooks) is written by services only. Admin
actions on payment requests call those services: reconcile now, and accept or void open exceptions
with a required note (the ops console's decision, audited the same way).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from stablepay.errors import StablepayError
from stablepay.models import (
    ActionState,
    Block,
    Chain,
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
from stablepay.services import payment_request_reconcile


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledger rows are written by services only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ("chain_id", "name", "confirmations", "block_time_seconds", "start_block")


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("symbol", "chain", "address", "decimals", "currency", "licence_status", "issuer", "active")
    list_filter = ("chain", "currency", "licence_status", "active")
    readonly_fields = ("halted_at", "health_checked_at", "health_checked_block")


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "payment_tolerance_percent", "expiry_minutes", "next_address_index")
    readonly_fields = ("api_key_hash", "api_key_prefix", "next_address_index", "webhook_secret_previous_until")
    filter_horizontal = ("members",)
    # Webhook secrets are never shown here (they are encrypted at rest); rotate them from /merchant/settings/.
    exclude = ("webhook_secret", "webhook_secret_previous")


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ("base", "quote", "rate", "updated_at")


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
                    verdict = f"{action} requested, awaiting a second ops user's approval (compliance hold)"
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
    """The allow/deny list of payer screening (stablepay/screening.py), kept by ops; changes are in the
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
    list_display = ("chain", "scanned_block", "head_block", "chunk_size", "last_scan_at", "last_error")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "merchant", "type", "attempts", "last_status_code", "delivered_at", "next_attempt_at")
    list_filter = ("type", "merchant")
    search_fields = ("event_id", "payment_request__order_reference")


@admin.register(OpsAction)
class OpsActionAdmin(ReadOnlyAdmin):
    """Ops decisions: who, when, why. Append-only; never edited here."""

    list_display = ("requested_at", "payment_request", "action", "exception", "state", "requested_by", "decided_by")
    list_filter = ("state", "action", "exception")
    search_fields = ("payment_request__order_reference", "note", "requested_by__username", "refund_tx_hash")
    list_select_related = ("payment_request", "requested_by", "decided_by")
