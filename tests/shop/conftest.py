"""Fixtures for the storefront tests: a registered chain and token, a stablepay merchant, and the
Hong Kong and Macau storefronts with a few products. Built directly with the ORM (no chain needed)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from django.test import Client

from shop.models import Product, Storefront
from stablepay.models import Chain, Merchant, Token

ACCOUNT_XPUB = (
    "xpub6Ce9NcJvTk36xtLSrJLZqE7wtgA5deCeYs7rSQtreh4cj6ByPtrg9sD7V2FNFLPnf8heNP3FGkeV9qwfzvZNSd54JoNXVsXFYSYwHsnJxqP"
)


@pytest.fixture
def shop_chain(db: None) -> Chain:
    return Chain.objects.create(chain_id=31337, name="Local", rpc_urls=["http://127.0.0.1:8545"], confirmations=3)


@pytest.fixture
def hkdx(shop_chain: Chain) -> Token:
    return Token.objects.create(
        chain=shop_chain,
        address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        symbol="HKDX",
        decimals=6,
        currency="HKD",
    )


@pytest.fixture
def usdc(shop_chain: Chain) -> Token:
    return Token.objects.create(
        chain=shop_chain,
        address="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
        symbol="USDC",
        decimals=6,
        currency="USD",
    )


@pytest.fixture
def shop_merchant(db: None) -> Merchant:
    return Merchant.objects.create(
        slug="shop-test",
        name="Shop test merchant",
        xpub=ACCOUNT_XPUB,
        api_key_hash=hashlib.sha256(b"shop-test-api-key").hexdigest(),
        expiry_minutes=15,
    )


@pytest.fixture
def hk(shop_merchant: Merchant) -> Storefront:
    return Storefront.objects.create(
        code="hk", name="Hong Kong Store", name_zh="香港店", currency="HKD", merchant_slug=shop_merchant.slug
    )


@pytest.fixture
def mo(shop_merchant: Merchant) -> Storefront:
    return Storefront.objects.create(
        code="mo", name="Macau Store", name_zh="澳門店", currency="MOP", merchant_slug=shop_merchant.slug
    )


@pytest.fixture
def egg_rolls(hk: Storefront) -> Product:
    return Product.objects.create(
        storefront=hk,
        sku="T-EGGROLL",
        name="Butter egg rolls",
        name_zh="牛油雞蛋卷",
        price=Decimal("88.00"),
        image="shop/products/HK-EGGROLL.svg",
    )


@pytest.fixture
def milk_tea(hk: Storefront) -> Product:
    return Product.objects.create(
        storefront=hk,
        sku="T-MILKTEA",
        name="Milk tea set",
        name_zh="港式奶茶套裝",
        price=Decimal("0.10"),
        image="shop/products/HK-MILKTEA.svg",
    )


@pytest.fixture
def egg_tarts(mo: Storefront) -> Product:
    return Product.objects.create(
        storefront=mo,
        sku="T-EGGTART",
        name="Portuguese egg tarts",
        name_zh="葡式蛋撻",
        price=Decimal("128.00"),
        image="shop/products/MO-EGGTART.svg",
    )


@pytest.fixture
def shopper(db: None) -> Client:
    """A browser: its session holds the carts and its order history."""
    return Client()
