"""Checkout: the order and its stablepay payment request are created together, or not at all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from shop import services
from shop.models import Order, Product, Storefront
from stablepay.errors import InvalidInput
from stablepay.models import PaymentRequest, Token

pytestmark = pytest.mark.django_db


def _fill(shopper: Client, storefront: Storefront, product: Product, quantity: int) -> None:
    shopper.post(reverse("shop:cart_add", args=[storefront.code]), {"product_id": product.pk, "quantity": quantity})


def test_checkout_page_offers_the_registered_tokens(
    shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token, usdc: Token
) -> None:
    _fill(shopper, hk, egg_rolls, 1)
    page = shopper.get(reverse("shop:checkout", args=["hk"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="31337:HKDX"' in html and 'value="31337:USDC"' in html
    assert "Pegged to HKD" in html and "Pegged to USD" in html
    assert "Local" in html
    assert "Pay HK$88.00 with stablecoin" in html
    assert "15 minutes to pay" in html


def test_checkout_creates_the_order_and_payment_request(
    shopper: Client, hk: Storefront, egg_rolls: Product, milk_tea: Product, hkdx: Token
) -> None:
    _fill(shopper, hk, egg_rolls, 2)
    _fill(shopper, hk, milk_tea, 3)
    response = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})

    order = Order.objects.get()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.total == Decimal("176.30")
    assert order.session_key == shopper.session.session_key
    assert (order.token_symbol, order.chain_id) == ("HKDX", 31337)
    pr = PaymentRequest.objects.get()
    assert order.payment_request_id == pr.pk
    assert response.status_code == 302
    assert response["Location"] == reverse("stablepay:pay", args=[pr.pk])
    assert pr.merchant.slug == hk.merchant_slug
    assert (pr.order_reference, pr.amount, pr.currency, pr.token) == (order.reference, Decimal("176.30"), "HKD", hkdx)
    assert pr.metadata["order"] == order.reference and pr.metadata["store"] == "hk"
    assert shopper.get(reverse("shop:cart", args=["hk"])).context["cart"].is_empty


def test_macau_checkout_is_in_patacas(shopper: Client, mo: Storefront, egg_tarts: Product, hkdx: Token) -> None:
    _fill(shopper, mo, egg_tarts, 1)
    shopper.post(reverse("shop:checkout", args=["mo"]), {"payment_option": "31337:HKDX"})
    pr = PaymentRequest.objects.get()
    assert (pr.amount, pr.currency) == (Decimal("128.00"), "MOP")
    assert Order.objects.get().reference.startswith("MO-")


def test_an_unlisted_token_is_refused_by_the_form(
    shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token
) -> None:
    _fill(shopper, hk, egg_rolls, 1)
    page = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:FAKE"})
    assert page.status_code == 200
    assert "not available any more" in page.content.decode()
    assert not Order.objects.exists() and not PaymentRequest.objects.exists()


def test_when_stablepay_refuses_no_order_is_left_and_the_cart_is_kept(
    shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: Any) -> None:
        raise InvalidInput("token", "'HKDX' is not a registered token on chain 31337")

    monkeypatch.setattr(services, "payment_request_create", refuse)
    _fill(shopper, hk, egg_rolls, 1)
    page = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    assert page.status_code == 200
    assert "is not a registered token on chain 31337" in page.content.decode()
    assert not Order.objects.exists()
    assert not shopper.get(reverse("shop:cart", args=["hk"])).context["cart"].is_empty


def test_a_store_without_its_merchant_cannot_take_payments(
    shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token
) -> None:
    Storefront.objects.filter(pk=hk.pk).update(merchant_slug="missing")
    _fill(shopper, hk, egg_rolls, 1)
    page = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    assert "cannot take payments right now" in page.content.decode()
    assert not Order.objects.exists()


def test_checkout_with_an_empty_cart_goes_back_to_the_cart(shopper: Client, hk: Storefront, hkdx: Token) -> None:
    response = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    assert response["Location"] == reverse("shop:cart", args=["hk"])
    assert not Order.objects.exists()


def test_an_order_is_sent_for_payment_once(shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token) -> None:
    _fill(shopper, hk, egg_rolls, 1)
    shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    order = Order.objects.get()
    with pytest.raises(ValidationError):
        services.order_checkout(order=order, chain_id=31337, token_symbol="HKDX")
    assert PaymentRequest.objects.count() == 1
