"""The session cart: add, update, remove, per-storefront carts, and the exact Decimal totals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from shop import selectors, services
from shop.models import Product, Storefront

pytestmark = pytest.mark.django_db


def _cart(client: Client, storefront: Storefront) -> dict[int, int]:
    return selectors.cart_quantities(session=client.session, storefront=storefront)


def test_add_update_remove_through_the_pages(shopper: Client, hk: Storefront, egg_rolls: Product) -> None:
    add = reverse("shop:cart_add", args=["hk"])
    assert shopper.post(add, {"product_id": egg_rolls.pk}).status_code == 302
    shopper.post(add, {"product_id": egg_rolls.pk, "quantity": 2})
    assert _cart(shopper, hk) == {egg_rolls.pk: 3}

    shopper.post(reverse("shop:cart_update", args=["hk"]), {"product_id": egg_rolls.pk, "quantity": 5})
    assert _cart(shopper, hk) == {egg_rolls.pk: 5}

    shopper.post(reverse("shop:cart_update", args=["hk"]), {"product_id": egg_rolls.pk, "quantity": 0})
    assert _cart(shopper, hk) == {}

    shopper.post(add, {"product_id": egg_rolls.pk})
    shopper.post(reverse("shop:cart_remove", args=["hk"]), {"product_id": egg_rolls.pk})
    assert _cart(shopper, hk) == {}


def test_cart_changes_need_post(shopper: Client, hk: Storefront) -> None:
    assert shopper.get(reverse("shop:cart_add", args=["hk"])).status_code == 405


def test_add_redirects_back_to_the_product_but_never_off_site(
    shopper: Client, hk: Storefront, egg_rolls: Product
) -> None:
    add = reverse("shop:cart_add", args=["hk"])
    back = shopper.post(add, {"product_id": egg_rolls.pk, "next": "/store/hk/#product-T-EGGROLL"})
    assert back["Location"] == "/store/hk/#product-T-EGGROLL"
    off_site = shopper.post(add, {"product_id": egg_rolls.pk, "next": "https://evil.example/"})
    assert off_site["Location"] == reverse("shop:storefront", args=["hk"])


def test_each_storefront_has_its_own_cart(
    shopper: Client, hk: Storefront, mo: Storefront, egg_rolls: Product, egg_tarts: Product
) -> None:
    shopper.post(reverse("shop:cart_add", args=["hk"]), {"product_id": egg_rolls.pk})
    shopper.post(reverse("shop:cart_add", args=["mo"]), {"product_id": egg_tarts.pk, "quantity": 2})
    assert _cart(shopper, hk) == {egg_rolls.pk: 1}
    assert _cart(shopper, mo) == {egg_tarts.pk: 2}
    assert shopper.get(reverse("shop:cart", args=["mo"])).context["cart_count"] == 2


def test_another_stores_or_withdrawn_product_is_refused(hk: Storefront, egg_rolls: Product, egg_tarts: Product) -> None:
    session = SessionStore()
    with pytest.raises(ValidationError):
        services.cart_add(session=session, storefront=hk, product_id=egg_tarts.pk)
    Product.objects.filter(pk=egg_rolls.pk).update(active=False)
    with pytest.raises(ValidationError):
        services.cart_add(session=session, storefront=hk, product_id=egg_rolls.pk)
    assert selectors.cart_quantities(session=session, storefront=hk) == {}


def test_a_line_is_capped_at_99(hk: Storefront, egg_rolls: Product) -> None:
    session = SessionStore()
    services.cart_add(session=session, storefront=hk, product_id=egg_rolls.pk, quantity=98)
    services.cart_add(session=session, storefront=hk, product_id=egg_rolls.pk, quantity=5)
    assert selectors.cart_quantities(session=session, storefront=hk) == {egg_rolls.pk: 99}
    with pytest.raises(ValidationError):
        services.cart_update(session=session, storefront=hk, product_id=egg_rolls.pk, quantity=100)


def test_a_withdrawn_product_drops_out_of_the_cart_summary(
    hk: Storefront, egg_rolls: Product, milk_tea: Product
) -> None:
    session = SessionStore()
    services.cart_add(session=session, storefront=hk, product_id=egg_rolls.pk)
    services.cart_add(session=session, storefront=hk, product_id=milk_tea.pk)
    Product.objects.filter(pk=milk_tea.pk).update(active=False)
    cart = selectors.cart_summary(session=session, storefront=hk)
    assert [line.product for line in cart.lines] == [egg_rolls]
    assert cart.total == Decimal("88.00")


def test_order_total_is_exact_decimal(hk: Storefront, egg_rolls: Product, milk_tea: Product) -> None:
    session = SessionStore()
    services.cart_add(session=session, storefront=hk, product_id=milk_tea.pk, quantity=3)  # 3 x 0.10
    services.cart_add(session=session, storefront=hk, product_id=egg_rolls.pk, quantity=2)  # 2 x 88.00
    order = services.order_create_from_cart(session=session, storefront=hk)
    order.refresh_from_db()
    assert order.total == Decimal("176.30")
    assert isinstance(order.total, Decimal)
    assert order.currency == "HKD"
    assert order.session_key == session.session_key
    lines = {line.product.sku: line for line in order.lines.all()}
    assert lines["T-MILKTEA"].line_total == Decimal("0.30")
    assert lines["T-MILKTEA"].unit_price == Decimal("0.10")
    assert lines["T-EGGROLL"].line_total == Decimal("176.00")
    assert sum(line.line_total for line in lines.values()) == order.total


def test_order_reference_is_readable_and_unique(hk: Storefront, egg_rolls: Product) -> None:
    session = SessionStore()
    references = set()
    for _ in range(5):
        services.cart_add(session=session, storefront=hk, product_id=egg_rolls.pk)
        references.add(services.order_create_from_cart(session=session, storefront=hk).reference)
    assert len(references) == 5
    for reference in references:
        prefix, date, suffix = reference.split("-")
        assert prefix == "HK" and len(date) == 8 and date.isdigit()
        assert len(suffix) == 4 and set(suffix) <= set(services.REFERENCE_ALPHABET)


def test_an_empty_cart_makes_no_order(hk: Storefront) -> None:
    with pytest.raises(ValidationError):
        services.order_create_from_cart(session=SessionStore(), storefront=hk)
