"""The demo catalogue: the seed command is idempotent, and every product has its committed tile."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from shop.catalogue import PRODUCTS
from shop.models import Product, Storefront
from shop.product_art import product_svg

STATIC = Path(__file__).resolve().parents[2] / "shop" / "static"


@pytest.mark.django_db
def test_seed_is_idempotent() -> None:
    call_command("shop_seed", merchant="acme")
    first = {p.sku: (p.pk, p.price) for p in Product.objects.all()}
    Product.objects.filter(sku="HK-EGGROLL").update(price=Decimal("1.00"), active=False)

    call_command("shop_seed", merchant="acme")

    assert {p.sku: (p.pk, p.price) for p in Product.objects.all()} == first
    assert Product.objects.get(sku="HK-EGGROLL").active
    assert Storefront.objects.count() == 2
    assert Product.objects.filter(storefront__code="hk").count() >= 12
    assert Product.objects.filter(storefront__code="mo").count() >= 12
    hk, mo = Storefront.objects.get(code="hk"), Storefront.objects.get(code="mo")
    assert (hk.currency, mo.currency) == ("HKD", "MOP")
    assert {hk.merchant_slug, mo.merchant_slug} == {"acme"}
    assert all(p.name_zh and p.description_zh for p in Product.objects.all())


def test_every_product_tile_is_committed_and_current() -> None:
    for seeds in PRODUCTS.values():
        for seed in seeds:
            path = STATIC / seed.image
            assert path.read_text() == product_svg(seed), f"run `manage.py shop_images`: {path} is stale"
