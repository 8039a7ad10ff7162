"""Reads: the token registry, a merchant's payment requests, the payment page and the watcher's health."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from stablepay.models import Chain, Event, Merchant, PaymentRequest, Token
from stablepay.redact import scrub


def token_list() -> QuerySet[Token]:
    return Token.objects.filter(active=True).select_related("chain").order_by("chain__chain_id", "symbol")


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def token_decimals_by_symbol(chain: Chain) -> dict[str, int]:
    """Each registered token's decimals on a chain, by symbol (to show a transfer of another token exactly)."""
    return dict(Token.objects.filter(chain=chain).values_list("symbol", "decimals"))


def payment_request_by_id(request_id: str) -> PaymentRequest | None:
    pk = _as_uuid(request_id)
    if pk is None:
        return None
    return PaymentRequest.objects.select_related("token__chain", "merchant").filter(pk=pk).first()


def payment_request_for_merchant(*, merchant: Merchant, request_id: str) -> PaymentRequest | None:
    found = payment_request_by_id(request_id)
    return found if found is not None and found.merchant_id == merchant.pk else None


def payment_request_list(
    *, merchant: Merchant, order_reference: str | None = None, status: str | None = None
) -> QuerySet[PaymentRequest]:
    queryset = PaymentRequest.objects.filter(merchant=merchant).select_related("token__chain", "merchant")
    if order_reference:
        queryset = queryset.filter(order_reference=order_reference)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "pk")


def payment_timeline(request_id: uuid.UUID | str) -> list[Event]:
    """The append-only timeline of one request, oldest first (for the store's order page)."""
    pk = _as_uuid(str(request_id))
    return list(Event.objects.filter(payment_request_id=pk).order_by("at", "id")) if pk else []


def chain_error_text(chain: Chain, error: str) -> str:
    """A recorded chain error as it may be shown (/healthz, the ops console, the admin): every URL reduced
    to scheme and host, and no part of the chain's node URLs' secrets, also in errors recorded before the
    watcher's messages were redacted at the source."""
    urls = chain.rpc_urls if isinstance(chain.rpc_urls, list) else []
    return scrub(error, [*urls, chain.ws_url])


def chain_health() -> list[dict[str, object]]:
    """Per chain: the watcher's cursor (stablepay.ingest.health adds each node's live head)."""
    rows = []
    for chain in Chain.objects.select_related("cursor").order_by("chain_id"):
        cursor = getattr(chain, "cursor", None)
        head = cursor.head_block if cursor else None
        scanned = cursor.scanned_block if cursor else chain.start_block
        rows.append(
            {
                "chain_id": chain.chain_id,
                "name": chain.name,
                "head": head,
                "scanned": scanned,
                "lag_blocks": max(head - scanned, 0) if head is not None and scanned is not None else None,
                "last_scan_at": cursor.last_scan_at.isoformat() if cursor and cursor.last_scan_at else None,
                "last_error": chain_error_text(chain, cursor.last_error) if cursor else "",
            }
        )
    return rows
