"""factory_boy factories for the models of stablepay and the shop: rows that satisfy the models' constraints
with nothing else said, for tests that need data in the database and not the path that writes it.

A test that is about a workflow (a request created at checkout, paid on chain, reconciled) goes through the
real services and the anvil chain (tests/conftest.py's `local_chain`); these factories build the ledger
straight through the ORM, as the set-based pass, report, archive and page tests need it.

The defaults keep the invariants the database and the services rely on:
- token amounts are integer base units (`amount_due_base_units` = the amount at the rate, in the token's
  smallest unit, rounded up as quotes are);
- a request's derivation index is unique per merchant (one sequence for all), and its deposit address is the
  checksummed address the merchant's xpub derives at that index;
- contract and payer addresses are checksummed; transaction and block hashes are 0x + 64 hex digits;
- idempotency keys (`keyed=True`), slugs, API key hashes, SKUs and order references are unique;
- an FX pair is one row (get or create on base/quote).
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from eth_utils import to_checksum_address
from factory.django import DjangoModelFactory

from shop.models import Order, Product, Storefront
from stablepay.chain.addresses import derive_address
from stablepay.models import (
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

# The account-level xpub (m/44'/60'/0') of a test wallet: derive_address works on it.
ACCOUNT_XPUB = (
    "xpub6Ce9NcJvTk36xtLSrJLZqE7wtgA5deCeYs7rSQtreh4cj6ByPtrg9sD7V2FNFLPnf8heNP3FGkeV9qwfzvZNSd54JoNXVsXFYSYwHsnJxqP"
)
LATE_WATCH = timedelta(days=7)  # stablepay.ledger.services: late payments are caught this long after expiry


def address(n: int) -> str:
    """A checksummed address made from a number (0x000...0n), distinct for each n."""
    return str(to_checksum_address(f"0x{n:040x}"))


def hex32(n: int) -> str:
    """A transaction or block hash made from a number: 0x + 64 hex digits."""
    return f"0x{n:064x}"


def due_base_units(amount: Decimal, rate: Decimal, decimals: int) -> Decimal:
    """The amount due in base units: amount x rate in the token's smallest unit, rounded up (the quote's rule)."""
    return Decimal(math.ceil(amount * rate * 10**decimals))


class UserFactory(DjangoModelFactory):
    """A Django user with a usable password (`password=` to choose it; default "password")."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("password")


class ChainFactory(DjangoModelFactory):
    class Meta:
        model = Chain
        django_get_or_create = ("chain_id",)

    chain_id = factory.Sequence(lambda n: 900_000 + n)
    name = factory.Sequence(lambda n: f"Chain {n}")
    confirmations = 3


class CursorFactory(DjangoModelFactory):
    class Meta:
        model = Cursor

    chain = factory.SubFactory(ChainFactory)
    scanned_block = 0
    head_block = factory.SelfAttribute("scanned_block")


class TokenFactory(DjangoModelFactory):
    class Meta:
        model = Token

    chain = factory.SubFactory(ChainFactory)
    address = factory.Sequence(lambda n: address(0xC0_0000 + n))
    symbol = factory.Sequence(lambda n: f"TK{n}")
    decimals = 6
    currency = "HKD"


class MerchantFactory(DjangoModelFactory):
    """A merchant; `api_key=` sets the key whose SHA-256 is stored (as stablepay_setup stores it)."""

    class Meta:
        model = Merchant

    class Params:
        api_key = factory.Sequence(lambda n: f"test-api-key-{n:06d}")

    slug = factory.Sequence(lambda n: f"merchant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    xpub = ACCOUNT_XPUB
    api_key_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.api_key.encode()).hexdigest())
    expiry_minutes = 15


class FxRateFactory(DjangoModelFactory):
    """1 `base` = `rate` `quote`; one row per pair."""

    class Meta:
        model = FxRate
        django_get_or_create = ("base", "quote")

    base = "USD"
    quote = "HKD"
    rate = Decimal("7.80")


class PaymentRequestFactory(DjangoModelFactory):
    """An open request, as payment_request_create leaves it, written straight to the table (no event, no
    webhook): its own token is priced at `rate` (default 1: the fiat currency is the token's)."""

    class Meta:
        model = PaymentRequest

    class Params:
        keyed = factory.Trait(idempotency_key=factory.Sequence(lambda n: f"idem-{n:08d}"))

    merchant = factory.SubFactory(MerchantFactory)
    token = factory.SubFactory(TokenFactory)
    order_reference = factory.Sequence(lambda n: f"ORDER-{n}")
    amount = Decimal("10.00")
    currency = factory.SelfAttribute("token.currency")
    rate = Decimal("1")
    amount_due_base_units = factory.LazyAttribute(lambda o: due_base_units(o.amount, o.rate, o.token.decimals))
    derivation_index = factory.Sequence(lambda n: n)
    pay_to = factory.LazyAttribute(lambda o: derive_address(o.merchant.xpub, o.derivation_index))
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + timedelta(minutes=o.merchant.expiry_minutes))
    watch_until = factory.LazyAttribute(lambda o: o.expires_at + LATE_WATCH)


class EventFactory(DjangoModelFactory):
    """A line of a request's timeline (append-only): by default its creation."""

    class Meta:
        model = Event

    payment_request = factory.SubFactory(PaymentRequestFactory)
    at = factory.LazyAttribute(lambda o: o.payment_request.created_at)
    status = factory.LazyAttribute(lambda o: o.payment_request.status)
    note = "created"
    actor = "api"


class TransferFactory(DjangoModelFactory):
    """A Transfer log seen by the watcher (append-only): to the request's deposit address, in its token, for
    the amount due, unless told otherwise."""

    class Meta:
        model = Transfer

    class Params:
        n = factory.Sequence(lambda n: n + 1)

    payment_request = factory.SubFactory(PaymentRequestFactory)
    token = factory.LazyAttribute(lambda o: o.payment_request.token)
    chain = factory.LazyAttribute(lambda o: o.token.chain)
    tx_hash = factory.LazyAttribute(lambda o: hex32(o.n))
    log_index = 0
    block_number = factory.Sequence(lambda n: 1_000 + n)
    block_hash = factory.LazyAttribute(lambda o: hex32(0xB10C_0000 + o.block_number))
    block_timestamp = factory.LazyFunction(timezone.now)
    from_address = address(0xF00)
    to_address = factory.LazyAttribute(lambda o: o.payment_request.pay_to if o.payment_request else address(0xD00))
    amount_base_units = factory.LazyAttribute(
        lambda o: o.payment_request.amount_due_base_units if o.payment_request else Decimal(1)
    )


class OpsActionFactory(DjangoModelFactory):
    """An ops decision waiting for a second pair of eyes (append-only): a refund of an overpayment."""

    class Meta:
        model = OpsAction

    payment_request = factory.SubFactory(PaymentRequestFactory)
    action = "refund"
    note = "paid twice"
    exception = "overpaid"
    refund_address = "0x" + "9" * 40
    state = "pending_approval"
    requested_by = factory.SubFactory(UserFactory)
    requested_at = factory.LazyFunction(timezone.now)


class WebhookDeliveryFactory(DjangoModelFactory):
    """An outbox row not yet delivered."""

    class Meta:
        model = WebhookDelivery

    merchant = factory.SubFactory(MerchantFactory)
    payment_request = None
    type = "payment_request.created"
    payload = factory.LazyAttribute(lambda o: {"type": o.type})
    created_at = factory.LazyFunction(timezone.now)


class ScreeningListEntryFactory(DjangoModelFactory):
    """An address on the deny list (lower case, as the model stores it)."""

    class Meta:
        model = ScreeningListEntry

    address = factory.Sequence(lambda n: address(0x5C_0000 + n).lower())
    kind = "deny"
    reason = "OFAC SDN list 2026-11-20"


# the shop ----------------------------------------------------------------------------------------------
class StorefrontFactory(DjangoModelFactory):
    """A storefront charging through a stablepay merchant (`merchant_slug`, default a new merchant's)."""

    class Meta:
        model = Storefront
        django_get_or_create = ("code",)

    code = "hk"
    name = "Hong Kong Store"
    name_zh = "香港店"
    currency = "HKD"
    merchant_slug = factory.LazyFunction(lambda: MerchantFactory().slug)


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    storefront = factory.SubFactory(StorefrontFactory)
    sku = factory.Sequence(lambda n: f"T-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")


class OrderFactory(DjangoModelFactory):
    """An order waiting for payment, with no lines (see shop.services.order_place for a real one)."""

    class Meta:
        model = Order

    reference = factory.Sequence(lambda n: f"T-ORDER-{n:06d}")
    storefront = factory.SubFactory(StorefrontFactory)
    total = Decimal("10.00")
    currency = factory.SelfAttribute("storefront.currency")
    session_key = factory.Sequence(lambda n: f"session{n:032d}")
