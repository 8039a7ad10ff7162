"""Admin for support staff: the registry is editable, the ledger is read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from stablepay.models import (
    Block,
    Chain,
    Cursor,
    Event,
    FxRate,
    Merchant,
    PaymentRequest,
    Token,
    Transfer,
    WebhookDelivery,
)


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
    list_display = ("symbol", "chain", "address", "decimals", "currency", "active")
    list_filter = ("chain", "currency", "active")


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "payment_tolerance_percent", "expiry_minutes", "next_address_index")
    readonly_fields = ("api_key_hash", "api_key_prefix", "next_address_index")
    filter_horizontal = ("members",)
    exclude = ("webhook_secret",)


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


@admin.register(PaymentRequest)
class PaymentRequestAdmin(ReadOnlyAdmin):
    list_display = ("order_reference", "merchant", "status", "exception", "amount", "currency", "token", "created_at")
    list_filter = ("status", "exception", "merchant", "token")
    search_fields = ("order_reference", "pay_to", "id")
    inlines = [EventInline]


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
        "block_number",
    )
    list_filter = ("state", "chain", "token")
    search_fields = ("tx_hash", "to_address", "from_address")


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
