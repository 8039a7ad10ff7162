"""The payment request object of CONTRACT §4: what the API answers, the webhook `data` and the payment
page's status are all built from it (`payment_request_data`). ledger/sql_payload.py is its SQL twin for
set-based writers; tests/ledger/test_bulk_reconcile.py holds the two equal, field for field.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.urls import reverse

from stablepay.conf import app_settings
from stablepay.models import Event, PaymentRequest, Transfer
from stablepay.money import format_token_amount


class AbsoluteUris(Protocol):
    """The incoming HTTP request (Django's or DRF's), when there is one: links then use its host."""

    def build_absolute_uri(self, location: str | None = None) -> str: ...


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def payment_uri(request: PaymentRequest) -> str:
    """EIP-681: ethereum:<token>@<chain_id>/transfer?address=<pay_to>&uint256=<amount due in base units>."""
    token = request.token
    return (
        f"ethereum:{token.address}@{token.chain.chain_id}/transfer"
        f"?address={request.pay_to}&uint256={int(request.amount_due_base_units)}"
    )


def checkout_url(request: PaymentRequest, http_request: AbsoluteUris | None = None) -> str:
    path = reverse("stablepay:pay", args=[request.pk])
    if http_request is not None:
        return http_request.build_absolute_uri(path)
    return app_settings.BASE_URL.rstrip("/") + path


def transfer_data(transfer: Transfer) -> dict[str, Any]:
    cursor = getattr(transfer.chain, "cursor", None)
    head = cursor.head_block if cursor is not None else None
    return {
        "tx_hash": transfer.tx_hash,
        "log_index": transfer.log_index,
        "block_number": transfer.block_number,
        "block_hash": transfer.block_hash,
        "token": transfer.token.symbol,
        "token_address": transfer.token.address,
        "from": transfer.from_address,
        "to": transfer.to_address,
        "amount_base_units": str(int(transfer.amount_base_units)),
        "confirmations": transfer.confirmations_at(head),
        "state": transfer.state,
        "explorer_url": transfer.chain.explorer_link(transfer.tx_hash) or None,
    }


def event_data(event: Event) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "status": event.status,
        "exception": event.exception or None,
        "note": event.note,
        "actor": event.actor,
    }


def _prefetched(request: PaymentRequest, relation: str) -> bool:
    return relation in getattr(request, "_prefetched_objects_cache", {})


def payment_request_data(request: PaymentRequest, http_request: AbsoluteUris | None = None) -> dict[str, Any]:
    """The payment request object. Transfers and timeline are read here unless already prefetched
    (in their display order: transfers by block and log index, events by time), as for a request
    just created, whose history is known."""
    token = request.token
    decimals = token.decimals
    if _prefetched(request, "transfers"):
        transfers = request.transfers.all()
    else:
        transfers = request.transfers.select_related("chain__cursor", "token").order_by("block_number", "log_index")
    events = request.events.all() if _prefetched(request, "events") else request.events.order_by("at", "id")
    return {
        "id": str(request.pk),
        "status": request.status,
        "exception": request.exception or None,
        "resolution": request.resolution or None,
        "order_reference": request.order_reference,
        "amount": format(request.amount, "f"),
        "currency": request.currency,
        "chain_id": token.chain.chain_id,
        "token": token.symbol,
        "token_address": token.address,
        "decimals": decimals,
        "rate": format(request.rate.normalize(), "f"),
        "pay_to": request.pay_to,
        "amount_due": format_token_amount(request.amount_due_base_units, decimals),
        "amount_due_base_units": str(int(request.amount_due_base_units)),
        "amount_paid": format_token_amount(request.amount_paid_base_units, decimals),
        "amount_paid_base_units": str(int(request.amount_paid_base_units)),
        "created_at": _iso(request.created_at),
        "expires_at": _iso(request.expires_at),
        "paid_at": _iso(request.paid_at),
        "payment_uri": payment_uri(request),
        "checkout_url": checkout_url(request, http_request),
        "metadata": request.metadata,
        "transfers": [transfer_data(t) for t in transfers],
        "timeline": [event_data(e) for e in events],
    }
