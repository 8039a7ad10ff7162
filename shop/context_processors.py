"""Template context for the shared layout: the storefronts for the nav, and the cart count."""

from __future__ import annotations

from django.http import HttpRequest

from shop.selectors import cart_item_count, storefront_list


def storefront(request: HttpRequest) -> dict[str, object]:
    """`storefronts`, `current_storefront` (on a store's pages), and `cart_storefront` / `cart_count`:
    the store whose cart the header links to (the current one, else the first with items) and its count.
    """
    storefronts = storefront_list()
    match = request.resolver_match
    code = match.kwargs.get("code") if match is not None and match.namespace == "shop" else None
    current = next((s for s in storefronts if s.code == code), None)
    session = getattr(request, "session", None)
    counts = (
        {s.code: cart_item_count(session=session, storefront=s) for s in storefronts} if session is not None else {}
    )
    cart_store = current or next((s for s in storefronts if counts.get(s.code)), None)
    count = counts.get(cart_store.code, 0) if cart_store else 0
    return {
        "storefronts": storefronts,
        "current_storefront": current,
        "cart_storefront": cart_store,
        "cart_count": count,
    }
