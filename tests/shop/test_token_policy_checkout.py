"""The checkout offers only the tokens its merchant accepts, and a switched-off region takes no payment."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from shop.models import Order, Product, Storefront
from stablepay.models import Merchant, PaymentRequest, Token

pytestmark = pytest.mark.django_db


def _fill(shopper: Client, storefront: Storefront, product: Product) -> None:
    shopper.post(reverse("shop:cart_add", args=[storefront.code]), {"product_id": product.pk, "quantity": 1})


def test_only_tokens_inside_the_merchant_policy_are_offered(
    shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token, usdc: Token, shop_merchant: Merchant
) -> None:
    Token.objects.filter(pk=hkdx.pk).update(licence_status="licensed")
    shop_merchant.accepted_licence_statuses = ["licensed"]
    shop_merchant.save()
    _fill(shopper, hk, egg_rolls)
    html = shopper.get(reverse("shop:checkout", args=["hk"])).content.decode()
    assert 'value="31337:HKDX"' in html and 'value="31337:USDC"' not in html
    # A forged post for the refused token creates nothing.
    refused = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:USDC"})
    assert refused.status_code == 200 and "not available any more" in refused.content.decode()
    assert not Order.objects.exists() and not PaymentRequest.objects.exists()
    placed = shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    assert placed.status_code == 302 and PaymentRequest.objects.get().token == hkdx


def test_a_suspended_token_is_not_offered(shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token) -> None:
    Token.objects.filter(pk=hkdx.pk).update(halted_reason="paused() returned true")
    _fill(shopper, hk, egg_rolls)
    html = shopper.get(reverse("shop:checkout", args=["hk"])).content.decode()
    assert 'value="31337:HKDX"' not in html and "No stablecoins are accepted right now" in html


@pytest.mark.parametrize(
    ("language", "notice"), [("en", "Checkout in this region is paused for now"), ("zh-HK", "此地區暫停結帳")]
)
def test_a_disabled_region_shows_a_notice_and_creates_nothing(
    shopper: Client, mo: Storefront, egg_tarts: Product, hkdx: Token, language: str, notice: str
) -> None:
    mo.enabled = False
    mo.save()
    _fill(shopper, mo, egg_tarts)
    page = shopper.get(reverse("shop:checkout", args=["mo"]), HTTP_ACCEPT_LANGUAGE=language)
    html = page.content.decode()
    assert page.status_code == 200 and notice in html and 'value="31337:HKDX"' not in html
    posted = shopper.post(reverse("shop:checkout", args=["mo"]), {"payment_option": "31337:HKDX"})
    assert posted.status_code == 200
    assert not Order.objects.exists() and not PaymentRequest.objects.exists()
    # Switched back on, the same cart checks out.
    mo.enabled = True
    mo.save()
    assert shopper.post(reverse("shop:checkout", args=["mo"]), {"payment_option": "31337:HKDX"}).status_code == 302
