"""Draw the catalogue's product tiles into shop/static/shop/products/<sku>.svg (committed; no CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from shop.catalogue import PRODUCTS
from shop.product_art import product_svg

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


class Command(BaseCommand):
    help = "Regenerate the SVG product tiles for the demo catalogue."

    def handle(self, *args: Any, **options: Any) -> None:
        written = 0
        for seeds in PRODUCTS.values():
            for seed in seeds:
                path = STATIC_DIR / seed.image
                path.parent.mkdir(parents=True, exist_ok=True)
                svg = product_svg(seed)
                if not path.exists() or path.read_text() != svg:
                    path.write_text(svg)
                    written += 1
        self.stdout.write(self.style.SUCCESS(f"{written} product image(s) written to {STATIC_DIR / 'shop/products'}"))
