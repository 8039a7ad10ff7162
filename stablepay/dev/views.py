"""The dev face's one page action: the payment page's "Simulate wallet payment" button (demo mode only).

It pays the request from a well-known local anvil account (stablepay.dev.tools). The route is always
mounted (stablepay/urls.py) and answers 404 unless DEMO_MODE is on, read at each request.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from stablepay.conf import app_settings
from stablepay.dev import tools as devtools
from stablepay.ledger import selectors

logger = logging.getLogger(__name__)


@require_POST
def pay_simulate(request: HttpRequest, request_id: str) -> HttpResponse:
    """Demo mode: a wallet payment from a local anvil test account, so the demo completes."""
    if not app_settings.DEMO_MODE:
        raise Http404("demo mode is off")
    payment_request = selectors.payment_request_by_id(request_id)
    if payment_request is None:
        raise Http404("no such payment request")
    try:
        tx_hash = devtools.pay_request(payment_request)
        messages.success(request, _("Payment sent from the demo wallet: %(tx)s") % {"tx": tx_hash})
    except Exception as exc:  # a demo convenience: show the reason instead of failing the page
        logger.warning("simulated payment failed: %s", exc)
        messages.error(request, _("The demo wallet could not pay: %(reason)s") % {"reason": exc})
    return redirect("stablepay:pay", request_id=payment_request.pk)
