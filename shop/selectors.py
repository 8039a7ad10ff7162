"""Reads for the store's pages: products, the session cart, checkout options, orders and their payment state.

The cart lives in the session as {storefront code: {product id: quantity}}; prices always come from
the database, never from the session. stablepay's tables are only read here, for display.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.contrib.sessions.backends.base import SessionBase
from django.db.models import QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from shop.models import Order, Product, Storefront
from stablepay.interface import Chain, CheckoutOption, Merchant, PaymentRequest
from stablepay.interface import checkout_options as merchant_checkout_options

CART_SESSION_KEY = "shop.carts"


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


@dataclass(frozen=True)
class Cart:
    storefront: Storefront
    lines: list[CartLine]

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def is_empty(self) -> bool:
        return not self.lines


TokenOption = CheckoutOption  # one way to pay: a registered token on a registered network


@dataclass(frozen=True)
class OrderState:
    """What the shopper sees: the order's status, refined by its payment request while unpaid."""

    key: str
    label: str | Promise
    payment_status: str
    expires_at: datetime | None

    @property
    def is_live(self) -> bool:
        """A payment can still arrive soon: the page links to the payment page and keeps polling."""
        return self.key in ("pending_payment", "confirming")


PENDING_STATES: dict[str, tuple[str, str | Promise]] = {
    "confirming": ("confirming", _("Confirming on chain")),
    "expired": ("expired", _("Payment window closed")),
    "needs_review": ("needs_review", _("Under review")),
}


def storefront_list() -> list[Storefront]:
    return list(Storefront.objects.all())


def storefront_previews(*, per_store: int = 4) -> list[tuple[Storefront, list[Product]]]:
    """Each storefront with its first few products, for the landing page."""
    return [(store, list(product_list(storefront=store)[:per_store])) for store in storefront_list()]


def product_list(*, storefront: Storefront) -> QuerySet[Product]:
    return Product.objects.filter(storefront=storefront, active=True)


def cart_quantities(*, session: SessionBase, storefront: Storefront) -> dict[int, int]:
    raw = session.get(CART_SESSION_KEY, {}).get(storefront.code, {})
    return {int(product_id): int(quantity) for product_id, quantity in raw.items()}


def cart_item_count(*, session: SessionBase, storefront: Storefront) -> int:
    """Items in the store's cart, read from the session without a query."""
    return sum(cart_quantities(session=session, storefront=storefront).values())


def cart_summary(*, session: SessionBase, storefront: Storefront) -> Cart:
    """The cart with current prices; products withdrawn since they were added are left out."""
    quantities = cart_quantities(session=session, storefront=storefront)
    products = product_list(storefront=storefront).filter(pk__in=quantities)
    return Cart(storefront=storefront, lines=[CartLine(product=p, quantity=quantities[p.pk]) for p in products])


def checkout_options(*, storefront: Storefront) -> list[TokenOption]:
    """The tokens the store's merchant accepts (its licence policy, healthy contracts); none when the
    storefront's region is switched off. Without a merchant, every token is listed: checkout then says
    the store cannot take payments."""
    if not storefront.enabled:
        return []
    return merchant_checkout_options(merchant=Merchant.objects.filter(slug=storefront.merchant_slug).first())


def checkout_payment_window_minutes(*, storefront: Storefront) -> int | None:
    """How long the shopper has to pay, from the store's stablepay merchant; None when it is not set up."""
    return Merchant.objects.filter(slug=storefront.merchant_slug).values_list("expiry_minutes", flat=True).first()


def order_list_for_session(*, session_key: str | None) -> QuerySet[Order]:
    if not session_key:
        return Order.objects.none()
    return Order.objects.filter(session_key=session_key).select_related("storefront")


def order_get_for_session(*, reference: str, session_key: str | None) -> Order | None:
    """The order, only for the browser session that placed it (references are short, not secret)."""
    if not session_key:
        return None
    return (
        Order.objects.filter(reference=reference, session_key=session_key)
        .select_related("storefront")
        .prefetch_related("lines__product")
        .first()
    )


def order_states(*, orders: Iterable[Order]) -> dict[int, OrderState]:
    """The display state of each order, with one query for the payment requests of unpaid ones."""
    orders = list(orders)
    request_ids: list[UUID] = [o.payment_request_id for o in orders if o.is_pending and o.payment_request_id]
    requests = {
        pk: (status, expires_at)
        for pk, status, expires_at in PaymentRequest.objects.filter(pk__in=request_ids).values_list(
            "pk", "status", "expires_at"
        )
    }
    states = {}
    for order in orders:
        found = requests.get(order.payment_request_id) if order.payment_request_id else None
        payment_status, expires_at = found or ("", None)
        if order.is_pending and payment_status in PENDING_STATES:
            key, label = PENDING_STATES[payment_status]
        else:
            key, label = order.status, order.get_status_display()
        states[order.pk] = OrderState(key=key, label=label, payment_status=payment_status, expires_at=expires_at)
    return states


def chain_name(*, chain_id: int | None) -> str:
    if chain_id is None:
        return ""
    return Chain.objects.filter(chain_id=chain_id).values_list("name", flat=True).first() or str(chain_id)
