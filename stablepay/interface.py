"""stablepay's public surface: everything a store (the host project) may use, and nothing else.

A store imports from this module only; the rest of the package may be rearranged at any time. The README's
"Add stablepay to your store" walks through it. In short:

At checkout, one service call::

    from stablepay.interface import Merchant, StablepayError, payment_page_path, payment_request_create

    merchant = Merchant.objects.get(slug="acme")          # registered with `manage.py stablepay_setup`
    try:
        payment_request, _created = payment_request_create(
            merchant=merchant, order_reference=order.reference, amount=order.total, currency="HKD",
            chain_id=8453, token_symbol="HKDX", actor="shop",
        )
    except StablepayError as exc:                          # exc.field, exc.message (shopper-readable)
        ...
    order.payment_request_id = payment_request.pk          # keep the id; redirect the shopper to
    redirect(payment_page_path(payment_request.pk))        # the payment page, /pay/<id>/

Then one signal, sent inside the transaction that changed the request, so the store's own writes commit or
roll back with it::

    from django.dispatch import receiver
    from stablepay.interface import payment_request_status_changed

    @receiver(payment_request_status_changed)
    def order_follows_payment(*, payment_request, status, **kwargs):
        if status == "paid":
            Order.objects.filter(payment_request_id=payment_request.pk).update(status="paid")

`status` is one of STATUSES; CONTRACT.md §4 says when each is reached. A store that also connects
`payment_requests_status_changed` (one call per batch from the set-based status pass, with a list of
`StatusChange`) gets those changes from it alone; without it, the pass sends the per-request signal instead.

Reads: `payment_request_get` (the request, or None), `payment_timeline` (its append-only history),
`checkout_options` (what a merchant accepts), and the models `PaymentRequest`, `Merchant`, `Token`, `Chain`
for the store's own read-only queries (an order keeps the request's id, not a foreign key).

URLs: `path("", include(URLCONF))` mounts the payment page (/pay/<id>/), the REST API (/api/v1/), the
merchant dashboard (/merchant/), the ops console (/ops/) and /healthz, under the namespace "stablepay"
(`reverse("stablepay:pay", args=[id])`). `path("accounts/two-factor/", include(SECOND_FACTOR_URLCONF))` adds
the second-factor pages used by the dashboards' sign-in.

Templates: stablepay's pages extend "stablepay/layout.html", which extends the host's "base.html" and fills
its blocks `title`, `head`, `nav`, `banner`, `content` and `scripts`; a host with another base overrides
that one file (see the file itself). The template tag libraries `money_display` (`money` and `token`
filters), `pay_ui` and `merchant_ui` are stablepay's own; a store may use `money_display`, or
`format_fiat` here, to show amounts the way stablepay does.

Errors: services raise `StablepayError` (`InvalidInput`, 400-like; `Conflict`, 409-like) with `.field` and a
readable `.message`.

Celery (with REDIS_URL): `beat_schedule()` is the beat entry the host's Celery app adds (see shop/celery.py).

This module may be imported before Django's apps are ready (a host's celery.py or settings.py): the names
bound to models (the models themselves, `payment_request_create`, `payment_timeline`) are loaded on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.http import HttpRequest
from django.urls import reverse

from stablepay.errors import Conflict, InvalidInput, StablepayError
from stablepay.ingest.schedule import beat_schedule
from stablepay.ledger.signals import StatusChange, payment_request_status_changed, payment_requests_status_changed
from stablepay.money import format_fiat
from stablepay.ratelimit import Exceeded, checkout_create_hit, client_ip

if TYPE_CHECKING:
    from stablepay.ledger.selectors import payment_timeline
    from stablepay.ledger.services import payment_request_create
    from stablepay.models import Chain, Event, Merchant, PaymentRequest, Status, Token

__all__ = [
    "SECOND_FACTOR_URLCONF",
    "STATUSES",
    "URLCONF",
    "Chain",
    "CheckoutOption",
    "Conflict",
    "Event",
    "Exceeded",
    "InvalidInput",
    "Merchant",
    "PaymentRequest",
    "StablepayError",
    "Status",
    "StatusChange",
    "Token",
    "beat_schedule",
    "checkout_options",
    "checkout_throttle",
    "format_fiat",
    "payment_page_path",
    "payment_request_create",
    "payment_request_get",
    "payment_request_status_changed",
    "payment_requests_status_changed",
    "payment_timeline",
]

URLCONF = "stablepay.urls"
SECOND_FACTOR_URLCONF = "stablepay.accounts.urls"
STATUSES: tuple[str, ...] = ("open", "confirming", "paid", "expired", "needs_review", "refunded", "canceled")

# Names that need Django's apps loaded, and where they live: imported on first use (PEP 562).
_LAZY = {
    "Chain": "stablepay.models",
    "Event": "stablepay.models",
    "Merchant": "stablepay.models",
    "PaymentRequest": "stablepay.models",
    "Status": "stablepay.models",
    "Token": "stablepay.models",
    "payment_request_create": "stablepay.ledger.services",
    "payment_timeline": "stablepay.ledger.selectors",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


@dataclass(frozen=True)
class CheckoutOption:
    """One way to pay: a registered token on a registered network. `value` ("<chain_id>:<symbol>") suits a
    form's choice; `chain_id` and `symbol` are what `payment_request_create` takes."""

    chain_id: int
    chain_name: str
    symbol: str
    currency: str

    @property
    def value(self) -> str:
        return f"{self.chain_id}:{self.symbol}"


def checkout_options(*, merchant: Merchant | None) -> list[CheckoutOption]:
    """The active tokens `merchant` accepts (its licence and currency policy, the token's contract health),
    by chain id then symbol. With no merchant, every active token."""
    from stablepay.models import Token
    from stablepay.registry import token_policy

    tokens = Token.objects.filter(active=True).select_related("chain").order_by("chain__chain_id", "symbol")
    return [
        CheckoutOption(chain_id=t.chain.chain_id, chain_name=t.chain.name, symbol=t.symbol, currency=t.currency)
        for t in tokens
        if merchant is None or token_policy.refusal(merchant, t) is None
    ]


def payment_request_get(request_id: UUID | str) -> PaymentRequest | None:
    """The payment request with this id (its `status`, `exception`, `amount_due`, `pay_to`, `paid_at`...), or
    None. Read its history with `payment_timeline(request_id)`."""
    from stablepay.ledger.selectors import payment_request_by_id

    return payment_request_by_id(str(request_id))


def payment_page_path(request_id: UUID | str) -> str:
    """The path of the shopper's payment page, /pay/<id>/ where URLCONF is mounted."""
    return reverse("stablepay:pay", args=[str(request_id)])


def checkout_throttle(request: HttpRequest) -> Exceeded | None:
    """Count one checkout from this client address against stablepay's per-address creation limit; an
    `Exceeded` (with `retry_after` seconds) when over it, else None. For a storefront's checkout view, before
    it creates the order and calls `payment_request_create`."""
    return checkout_create_hit(client_ip=client_ip(request))
