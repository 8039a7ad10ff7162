"""Admin for the store: storefronts and products are edited here; orders are read-only records."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from shop.models import Order, OrderLine, Product, Storefront


@admin.register(Storefront)
class StorefrontAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_zh", "currency", "merchant_slug", "enabled"]
    list_editable = ["enabled"]  # the region switch: off, checkout shows a notice and takes no payment


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "name_zh", "storefront", "price", "active", "position"]
    list_filter = ["storefront", "active"]
    list_editable = ["active", "position"]
    search_fields = ["sku", "name", "name_zh"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["product", "quantity", "unit_price", "line_total"]

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders change only through checkout and stablepay's signal, so the admin shows them read-only."""

    list_display = ["reference", "storefront", "status", "total", "currency", "token_symbol", "created_at", "paid_at"]
    list_filter = ["storefront", "status"]
    search_fields = ["reference", "payment_request_id"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False
