"""The store's pages render, in English and Traditional Chinese, and orders are private to their browser."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shop.models import Order, Product, Storefront
from stablepay.ledger import reconcile
from stablepay.ledger.signals import payment_request_status_changed
from stablepay.models import Event, PaymentRequest, Status, Token

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed(shopper: Client, hk: Storefront, egg_rolls: Product, hkdx: Token) -> Order:
    shopper.post(reverse("shop:cart_add", args=["hk"]), {"product_id": egg_rolls.pk, "quantity": 2})
    shopper.post(reverse("shop:checkout", args=["hk"]), {"payment_option": "31337:HKDX"})
    return Order.objects.get()


def test_landing_page_offers_both_stores(shopper: Client, hk: Storefront, mo: Storefront, egg_rolls: Product) -> None:
    html = shopper.get(reverse("shop:home")).content.decode()
    assert reverse("shop:storefront", args=["hk"]) in html and reverse("shop:storefront", args=["mo"]) in html
    assert "Hong Kong Store" in html and "Macau Store" in html
    assert 'action="/i18n/setlang/"' in html


def test_storefront_lists_active_products_with_prices(
    shopper: Client, hk: Storefront, egg_rolls: Product, milk_tea: Product
) -> None:
    Product.objects.filter(pk=milk_tea.pk).update(active=False)
    html = shopper.get(reverse("shop:storefront", args=["hk"])).content.decode()
    assert "Butter egg rolls" in html and "HK$88.00" in html
    assert "Milk tea set" not in html
    assert shopper.get(reverse("shop:storefront", args=["xx"])).status_code == 404


def test_macau_prices_are_in_patacas(shopper: Client, mo: Storefront, egg_tarts: Product) -> None:
    assert "MOP$128.00" in shopper.get(reverse("shop:storefront", args=["mo"])).content.decode()


def test_traditional_chinese_names_and_interface(hk: Storefront, egg_rolls: Product) -> None:
    browser = Client(HTTP_ACCEPT_LANGUAGE="zh-HK")
    response = browser.get(reverse("shop:storefront", args=["hk"]))
    html = response.content.decode()
    assert '<html lang="zh-hant">' in html
    assert "牛油雞蛋卷" in html and "香港店" in html
    assert "加入購物車" in html


def test_cart_page_and_header_count(shopper: Client, hk: Storefront, egg_rolls: Product) -> None:
    shopper.post(reverse("shop:cart_add", args=["hk"]), {"product_id": egg_rolls.pk, "quantity": 3})
    page = shopper.get(reverse("shop:cart", args=["hk"]))
    html = page.content.decode()
    assert page.context["cart_count"] == 3
    assert "HK$264.00" in html
    assert reverse("shop:checkout", args=["hk"]) in html
    assert shopper.get(reverse("shop:home")).context["cart_storefront"] == hk


def test_order_page_while_pending(shopper: Client, placed: Order) -> None:
    page = shopper.get(reverse("shop:order_detail", args=[placed.reference]))
    html = page.content.decode()
    assert page.status_code == 200
    assert placed.reference in html and "HK$176.00" in html
    assert "Awaiting payment" in html
    assert f'href="{reverse("stablepay:pay", args=[placed.payment_request_id])}"' in html
    assert 'data-live-refresh="5"' in html
    assert "HKDX" in html and "Local" in html


def test_order_page_once_paid(shopper: Client, placed: Order) -> None:
    pr = PaymentRequest.objects.get(pk=placed.payment_request_id)
    payment_request_status_changed.send(
        sender=PaymentRequest,
        payment_request=pr,
        previous_status=Status.CONFIRMING,
        status=Status.PAID,
        exception="",
        actor="test",
    )
    html = shopper.get(reverse("shop:order_detail", args=[placed.reference])).content.decode()
    assert "badge-paid" in html and "Thank you" in html
    assert 'data-live-refresh=""' in html
    assert "Go to payment" not in html


def test_order_page_after_the_payment_window_closed(shopper: Client, placed: Order) -> None:
    PaymentRequest.objects.filter(pk=placed.payment_request_id).update(status=Status.EXPIRED)
    html = shopper.get(reverse("shop:order_detail", args=[placed.reference])).content.decode()
    assert "Payment window closed" in html and 'data-live-refresh=""' in html
    response = shopper.post(reverse("shop:order_again", args=[placed.reference]))
    assert response["Location"] == reverse("shop:cart", args=["hk"])
    assert shopper.get(response["Location"]).context["cart"].item_count == 2


def test_orders_are_private_to_the_browser_that_placed_them(shopper: Client, placed: Order) -> None:
    stranger = Client()
    assert stranger.get(reverse("shop:order_detail", args=[placed.reference])).status_code == 404
    assert placed.reference not in stranger.get(reverse("shop:order_list")).content.decode()
    history = shopper.get(reverse("shop:order_list")).content.decode()
    assert placed.reference in history and "HK$176.00" in history


def test_a_compliance_hold_reads_as_a_plain_review_to_the_shopper(shopper: Client, placed: Order) -> None:
    """No tipping-off: the order page never names the hold or screening, only a manual check."""
    pr = PaymentRequest.objects.get(pk=placed.payment_request_id)
    pr.status, pr.exception = Status.NEEDS_REVIEW, "held"
    pr.save()
    Event.objects.create(
        payment_request=pr,
        at=timezone.now(),
        status=pr.status,
        exception=pr.exception,
        note=reconcile.HELD_REASON,
        actor="watcher",
    )
    payment_request_status_changed.send(
        sender=PaymentRequest,
        payment_request=pr,
        previous_status=Status.CONFIRMING,
        status=Status.NEEDS_REVIEW,
        exception="held",
        actor="watcher",
    )
    html = shopper.get(reverse("shop:order_detail", args=[placed.reference])).content.decode()
    assert "needs a manual check" in html and "Under review" in html
    assert '<span class="timeline-status">Needs Review</span>' in html
    for word in ("Held", "held", "screening", "compliance", "flagged"):
        assert word not in html, word
