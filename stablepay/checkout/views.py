"""Pages: the public payment page with its live status, and /healthz. (The demo's simulated wallet button
posts to stablepay/dev/views.py.)"""

from __future__ import annotations

import logging
from typing import Any

import segno
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from stablepay.checkout.state import with_page_state
from stablepay.checkout.wallet import wallet_config, wallet_texts
from stablepay.conf import app_settings
from stablepay.ingest import health
from stablepay.ledger import selectors
from stablepay.ledger.representation import payment_request_data
from stablepay.models import ExceptionType, PaymentRequest

logger = logging.getLogger(__name__)

PUBLIC_FIELDS = (
    "id",
    "status",
    "exception",
    "order_reference",
    "amount",
    "currency",
    "chain_id",
    "token",
    "token_address",
    "decimals",
    "pay_to",
    "amount_due",
    "amount_due_base_units",
    "amount_paid",
    "amount_paid_base_units",
    "created_at",
    "expires_at",
    "paid_at",
    "payment_uri",
)


def _request_or_404(request_id: str) -> PaymentRequest:
    found = selectors.payment_request_by_id(request_id)
    if found is None:
        raise Http404("no such payment request")
    return found


def public_status(payment_request: PaymentRequest) -> dict[str, Any]:
    """What the shopper may see (no metadata, no timeline actors), with the page state and display strings."""
    data = payment_request_data(payment_request)
    public = {key: data[key] for key in PUBLIC_FIELDS}
    if public["exception"] == ExceptionType.HELD:
        public["exception"] = None  # no tipping-off: a compliance hold reads as a plain review (needs_review)
    chain = payment_request.token.chain
    public["required_confirmations"] = chain.confirmations
    public["chain_name"] = chain.name
    public["transfers"] = [
        {key: t[key] for key in ("tx_hash", "token", "amount_base_units", "confirmations", "state", "explorer_url")}
        for t in data["transfers"]
    ]
    decimals = selectors.token_decimals_by_symbol(chain) if public["transfers"] else {}
    for transfer in public["transfers"]:
        transfer["decimals"] = decimals.get(transfer["token"], public["decimals"])
    return with_page_state(public)


def return_url(payment_request: PaymentRequest, request: HttpRequest) -> str:
    """The shop's "back to your order" link (metadata.return_url) when it is a path on this site, else "".
    A check by prefix is not enough: browsers read "/\\evil.example" and "/\t/evil.example" as //evil.example."""
    url = payment_request.metadata.get("return_url") if isinstance(payment_request.metadata, dict) else None
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        return ""
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return ""
    return url


QR_QUIET_ZONE = 4  # modules of light margin round the code, as ISO/IEC 18004 asks and cameras need
QR_MAX_PX = 300  # the widest the code is drawn (CSS px): about 8 cm on a desktop screen


def qr_svg(payment_uri: str) -> str:
    """The EIP-681 URI as an inline SVG that scales instead of being cropped: a viewBox of one unit per
    module, the quiet zone painted light inside the image (it survives any page background), and a natural
    size of a whole number of pixels per module up to QR_MAX_PX, which pay.css shrinks to a narrow column."""
    qr = segno.make(payment_uri, error="m")
    modules = qr.symbol_size(scale=1, border=QR_QUIET_ZONE)[0]
    size = modules * max(1, QR_MAX_PX // modules)
    svg = qr.svg_inline(scale=1, border=QR_QUIET_ZONE, omitsize=True, dark="#0f172a", light="#ffffff")
    return str(svg).replace("<svg ", f'<svg width="{size}" height="{size}" ', 1)


@require_GET
def pay_page(request: HttpRequest, request_id: str) -> HttpResponse:
    payment_request = _request_or_404(request_id)
    status = public_status(payment_request)
    context = {
        "pr": payment_request,
        "status": status,
        "chain": payment_request.token.chain,
        "qr_svg": qr_svg(status["payment_uri"]),
        "demo_mode": app_settings.DEMO_MODE,
        "return_url": return_url(payment_request, request),
        "wallet": wallet_config(payment_request),
        "wallet_texts": wallet_texts(payment_request),
    }
    return render(request, "stablepay/pay.html", context)


@require_GET
def pay_status(request: HttpRequest, request_id: str) -> JsonResponse:
    response = JsonResponse(public_status(_request_or_404(request_id)))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        chains = health.chain_health()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "chains": chains})
