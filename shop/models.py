"""The store's own records: storefronts, their products, and the orders shoppers place.

Money is Decimal with 2 places in the storefront's currency. An order points at its stablepay
payment request by id only; stablepay tells the store about changes through its signal.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _


def _prefers_chinese() -> bool:
    return (translation.get_language() or "").lower().startswith("zh")


class Storefront(models.Model):
    class Code(models.TextChoices):
        HK = "hk", _("Hong Kong")
        MO = "mo", _("Macau")

    class Currency(models.TextChoices):
        HKD = "HKD", _("Hong Kong dollar")
        MOP = "MOP", _("Macau pataca")

    code = models.CharField(max_length=2, unique=True, choices=Code.choices)
    name = models.CharField(max_length=64)
    name_zh = models.CharField(max_length=64, blank=True, default="")
    currency = models.CharField(max_length=3, choices=Currency.choices)
    merchant_slug = models.SlugField(max_length=64, help_text="The stablepay merchant this store charges through.")
    enabled = models.BooleanField(
        default=True, help_text="Off: the checkout shows a notice and creates no payment request (region switch)."
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.name_zh if self.name_zh and _prefers_chinese() else self.name


class Product(models.Model):
    storefront = models.ForeignKey(Storefront, on_delete=models.PROTECT, related_name="products")
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=128)
    name_zh = models.CharField(max_length=128, blank=True, default="")
    description = models.TextField(blank=True, default="")
    description_zh = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, help_text="In the storefront's currency.")
    image = models.CharField(max_length=255, blank=True, default="", help_text="Static path, e.g. shop/products/X.svg")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the product grid.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["storefront", "position", "sku"]
        constraints = [models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def display_name(self) -> str:
        return self.name_zh if self.name_zh and _prefers_chinese() else self.name

    @property
    def display_description(self) -> str:
        return self.description_zh if self.description_zh and _prefers_chinese() else self.description


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
        PAID = "paid", _("Paid")
        CANCELED = "canceled", _("Canceled")
        REFUNDED = "refunded", _("Refunded")

    reference = models.CharField(max_length=32, unique=True)
    storefront = models.ForeignKey(Storefront, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_PAYMENT, db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, choices=Storefront.Currency.choices)
    session_key = models.CharField(max_length=40, db_index=True, help_text="The browser session that placed it.")
    # A plain id, not a ForeignKey: the store reaches stablepay only through its service call and its
    # signal, so shop's tables and migrations carry no dependency on stablepay's schema.
    payment_request_id = models.UUIDField(null=True, blank=True, unique=True)
    token_symbol = models.CharField(max_length=16, blank=True, default="")
    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(total__gt=0), name="order_total_positive")]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING_PAYMENT


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="order_line_unit_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product.sku}"
