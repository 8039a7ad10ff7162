"""Seed the Hong Kong and Macau storefronts and their products. Idempotent: run it as often as you like.

Usage: python manage.py shop_seed [--merchant SLUG]
The stablepay merchant (default "demo") is the one both stores charge through; create it with
stablepay_setup. Products are matched by SKU: existing ones are updated, none are duplicated.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from shop.catalogue import PRODUCTS, STOREFRONTS
from shop.models import Product, Storefront


class Command(BaseCommand):
    help = "Create or update the Hong Kong and Macau storefronts and their demo products."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--merchant", default="demo", help="stablepay merchant slug both stores charge through")

    @transaction.atomic
    def handle(self, *args: Any, merchant: str, **options: Any) -> None:
        created = 0
        for store_seed in STOREFRONTS:
            storefront, _ = Storefront.objects.update_or_create(
                code=store_seed.code,
                defaults={
                    "name": store_seed.name,
                    "name_zh": store_seed.name_zh,
                    "currency": store_seed.currency,
                    "merchant_slug": merchant,
                },
            )
            for position, seed in enumerate(PRODUCTS[store_seed.code]):
                _, was_created = Product.objects.update_or_create(
                    sku=seed.sku,
                    defaults={
                        "storefront": storefront,
                        "name": seed.name,
                        "name_zh": seed.name_zh,
                        "description": seed.description,
                        "description_zh": seed.description_zh,
                        "price": seed.price,
                        "image": seed.image,
                        "position": position,
                        "active": True,
                    },
                )
                created += was_created
        total = sum(len(seeds) for seeds in PRODUCTS.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(STOREFRONTS)} storefronts (merchant {merchant!r}), {total} products ({created} new)"
            )
        )
