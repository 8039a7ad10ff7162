"""The API's rate limit on payment-request creation: 429 with Retry-After and a body naming the limit.

A DRF throttle, so it runs after authentication (the merchant is known) and before the body is read;
the counting itself is stablepay/ratelimit.py.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from stablepay import ratelimit
from stablepay.models import Merchant


class RateLimited(APIException):
    """429; DRF's exception handler turns `wait` into the Retry-After header."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"

    def __init__(self, exceeded: ratelimit.Exceeded) -> None:
        super().__init__()
        self.wait = exceeded.retry_after
        body: dict[str, Any] = {  # a plain dict: DRF's handler answers it as is
            "detail": (
                f"Too many payment requests: the {exceeded.limit} limit is {exceeded.rate.count} per "
                f"{exceeded.rate.seconds} s. Retry after {exceeded.retry_after} s."
            ),
            "limit": exceeded.limit,
            "rate": str(exceeded.rate),
            "retry_after": exceeded.retry_after,
        }
        self.detail = body


class RateLimitedOut(serializers.Serializer):
    """The 429 body, for the OpenAPI schema."""

    detail = serializers.CharField()
    limit = serializers.ChoiceField(choices=["per_merchant", "per_api_ip"])
    rate = serializers.CharField(help_text="N/S: N creations per S seconds")
    retry_after = serializers.IntegerField(help_text="seconds until the window frees (also the Retry-After header)")


class PaymentRequestCreateThrottle(BaseThrottle):
    """Counts POSTs only (the list GET on the same view is not limited)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method != "POST" or not isinstance(request.auth, Merchant):
            return True
        exceeded = ratelimit.api_create_hit(merchant_id=request.auth.pk, client_ip=ratelimit.client_ip(request))
        if exceeded is not None:
            raise RateLimited(exceeded)
        return True
