"""The storefront's pages. Each view parses the request, calls one selector or service, and renders."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from shop import selectors, services
from shop.forms import CartLineForm, CheckoutForm
from shop.models import Order, Storefront
from stablepay.interface import StablepayError, checkout_throttle, payment_timeline


def _storefront(code: str) -> Storefront:
    return get_object_or_404(Storefront, code=code)


def _order(request: HttpRequest, reference: str) -> Order:
    order = selectors.order_get_for_session(reference=reference, session_key=request.session.session_key)
    if order is None:
        raise Http404("No such order in this browser session.")
    return order


def _error_messages(request: HttpRequest, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "shop/home.html", {"previews": selectors.storefront_previews()})


def storefront_detail(request: HttpRequest, code: str) -> HttpResponse:
    storefront = _storefront(code)
    products = selectors.product_list(storefront=storefront)
    return render(request, "shop/storefront.html", {"storefront": storefront, "products": products})


def cart_detail(request: HttpRequest, code: str) -> HttpResponse:
    storefront = _storefront(code)
    cart = selectors.cart_summary(session=request.session, storefront=storefront)
    return render(request, "shop/cart.html", {"storefront": storefront, "cart": cart})


@require_POST
def cart_add(request: HttpRequest, code: str) -> HttpResponse:
    storefront = _storefront(code)
    form = CartLineForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That item could not be added to your cart."))
    else:
        try:
            product = services.cart_add(
                session=request.session,
                storefront=storefront,
                product_id=form.cleaned_data["product_id"],
                quantity=form.cleaned_data["quantity"] or 1,
            )
        except ValidationError as exc:
            _error_messages(request, exc)
        else:
            messages.success(request, _("Added %(name)s to your cart.") % {"name": product.display_name})
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(next_url)
    return redirect("shop:storefront", code=storefront.code)


@require_POST
def cart_update(request: HttpRequest, code: str) -> HttpResponse:
    storefront = _storefront(code)
    form = CartLineForm(request.POST)
    if not form.is_valid() or form.cleaned_data["quantity"] is None:
        messages.error(request, _("Choose a quantity from 0 to %(max)d.") % {"max": services.MAX_LINE_QUANTITY})
    else:
        try:
            services.cart_update(
                session=request.session,
                storefront=storefront,
                product_id=form.cleaned_data["product_id"],
                quantity=form.cleaned_data["quantity"],
            )
        except ValidationError as exc:
            _error_messages(request, exc)
    return redirect("shop:cart", code=storefront.code)


@require_POST
def cart_remove(request: HttpRequest, code: str) -> HttpResponse:
    storefront = _storefront(code)
    form = CartLineForm(request.POST)
    if form.is_valid():
        services.cart_remove(session=request.session, storefront=storefront, product_id=form.cleaned_data["product_id"])
    return redirect("shop:cart", code=storefront.code)


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, code: str) -> HttpResponse:
    storefront = _storefront(code)
    cart = selectors.cart_summary(session=request.session, storefront=storefront)
    if cart.is_empty:
        messages.info(request, _("Your cart is empty."))
        return redirect("shop:cart", code=storefront.code)
    options = selectors.checkout_options(storefront=storefront)
    form = CheckoutForm(request.POST if request.method == "POST" else None, options=options)
    if not storefront.enabled:  # the region is switched off: say so, create nothing
        form = CheckoutForm(None, options=[])
    too_many = checkout_throttle(request) if form.is_valid() else None
    if too_many is not None:
        message = ngettext(
            "Too many checkouts from your network just now. Please wait %(seconds)d second and try again.",
            "Too many checkouts from your network just now. Please wait %(seconds)d seconds and try again.",
            too_many.retry_after,
        )
        form.add_error(None, message % {"seconds": too_many.retry_after})
    elif form.is_valid():
        option = form.chosen()
        try:
            _order, payment_request = services.order_place(
                session=request.session, storefront=storefront, chain_id=option.chain_id, token_symbol=option.symbol
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except StablepayError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect(reverse("stablepay:pay", args=[payment_request.pk]))
    context = {
        "storefront": storefront,
        "cart": cart,
        "form": form,
        "payment_window_minutes": selectors.checkout_payment_window_minutes(storefront=storefront),
        "region_disabled_message": None if storefront.enabled else services.REGION_DISABLED_MESSAGE,
    }
    response = render(request, "shop/checkout.html", context, status=200 if too_many is None else 429)
    if too_many is not None:
        response["Retry-After"] = str(too_many.retry_after)
    return response


def order_list(request: HttpRequest) -> HttpResponse:
    orders = list(selectors.order_list_for_session(session_key=request.session.session_key))
    states = selectors.order_states(orders=orders)
    rows = [(order, states[order.pk]) for order in orders]
    return render(request, "shop/order_list.html", {"rows": rows})


def order_detail(request: HttpRequest, reference: str) -> HttpResponse:
    order = _order(request, reference)
    context = {
        "order": order,
        "current_storefront": order.storefront,
        "state": selectors.order_states(orders=[order])[order.pk],
        "chain_name": selectors.chain_name(chain_id=order.chain_id),
        "pay_url": reverse("stablepay:pay", args=[order.payment_request_id]) if order.payment_request_id else "",
        "timeline": payment_timeline(order.payment_request_id) if order.payment_request_id else [],
    }
    return render(request, "shop/order_detail.html", context)


@require_POST
def order_again(request: HttpRequest, reference: str) -> HttpResponse:
    order = _order(request, reference)
    if services.cart_fill_from_order(session=request.session, order=order):
        messages.success(
            request, _("The items from order %(reference)s are back in your cart.") % {"reference": reference}
        )
    else:
        messages.error(request, _("None of the items in this order are available any more."))
    return redirect("shop:cart", code=order.storefront.code)
