"""The factories of tests/factories.py build rows the database and the services accept: every factory saves
with nothing said, twice over (unique columns stay unique), and a request's figures are what the service
would have written (integer base units rounded up, the address the xpub derives at the index)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_utils import is_checksum_address

from stablepay.chain.addresses import derive_address
from stablepay.registry.api_keys import hash_api_key
from tests import factories

pytestmark = pytest.mark.django_db

EVERY_FACTORY = [
    factories.UserFactory,
    factories.ChainFactory,
    factories.CursorFactory,
    factories.TokenFactory,
    factories.MerchantFactory,
    factories.FxRateFactory,
    factories.PaymentRequestFactory,
    factories.EventFactory,
    factories.TransferFactory,
    factories.OpsActionFactory,
    factories.WebhookDeliveryFactory,
    factories.ScreeningListEntryFactory,
    factories.StorefrontFactory,
    factories.ProductFactory,
    factories.OrderFactory,
]


@pytest.mark.parametrize("factory", EVERY_FACTORY, ids=lambda f: f.__name__)
def test_every_factory_saves_twice(factory: type) -> None:
    first, second = factory(), factory()
    assert first.pk is not None and second.pk is not None


def test_a_request_is_priced_and_addressed_as_the_service_would() -> None:
    merchant = factories.MerchantFactory()
    usdc = factories.TokenFactory(symbol="USDX", decimals=6, currency="USD")
    one = factories.PaymentRequestFactory(
        merchant=merchant,
        token=usdc,
        amount=Decimal("10.00"),
        currency="HKD",
        rate=Decimal("0.128205128205128205"),
        keyed=True,
    )
    two = factories.PaymentRequestFactory(merchant=merchant, token=usdc, keyed=True)
    assert one.amount_due_base_units == 1_282_052  # 1.282051282... USDX, rounded up to the base unit
    assert one.amount_due_base_units == int(one.amount_due_base_units)
    assert one.derivation_index != two.derivation_index and one.idempotency_key != two.idempotency_key
    assert one.pay_to == derive_address(merchant.xpub, one.derivation_index) and is_checksum_address(one.pay_to)
    assert two.currency == "USD" and two.amount_due_base_units == 10_000_000
    assert one.watch_until > one.expires_at > one.created_at


def test_a_transfer_pays_its_request_in_full_on_the_same_chain() -> None:
    transfer = factories.TransferFactory()
    request = transfer.payment_request
    assert transfer.to_address == request.pay_to and transfer.amount_base_units == request.amount_due_base_units
    assert transfer.token == request.token and transfer.chain == request.token.chain
    assert is_checksum_address(transfer.from_address) and is_checksum_address(transfer.token.address)


def test_a_merchants_api_key_is_stored_as_its_sha256() -> None:
    assert factories.MerchantFactory(api_key="k1").api_key_hash == hash_api_key("k1")
