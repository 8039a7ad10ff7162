"""Fixtures of the storefront tests alone, built with the factories (no chain needed): USDC, the Macau store
and products beyond the shared ones. The chain, HKDX, the stablepay merchant, the Hong Kong store, its egg
rolls and the shopper's browser are shared with other directories and live in tests/conftest.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shop.models import Product, Storefront
from stablepay.models import Chain, Merchant, Token
from tests.factories import ProductFactory, StorefrontFactory, TokenFactory


@pytest.fixture
def usdc(shop_chain: Chain) -> Token:
    return TokenFactory(
        chain=shop_chain, address="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", symbol="USDC", currency="USD"
    )


@pytest.fixture
def mo(shop_merchant: Merchant) -> Storefront:
    return StorefrontFactory(
        code="mo", name="Macau Store", name_zh="澳門店", currency="MOP", merchant_slug=shop_merchant.slug
    )


@pytest.fixture
def milk_tea(hk: Storefront) -> Product:
    return ProductFactory(
        storefront=hk,
        sku="T-MILKTEA",
        name="Milk tea set",
        name_zh="港式奶茶套裝",
        price=Decimal("0.10"),
        image="shop/products/HK-MILKTEA.svg",
    )


@pytest.fixture
def egg_tarts(mo: Storefront) -> Product:
    return ProductFactory(
        storefront=mo,
        sku="T-EGGTART",
        name="Portuguese egg tarts",
        name_zh="葡式蛋撻",
        price=Decimal("128.00"),
        image="shop/products/MO-EGGTART.svg",
    )
