"""What every stablepay API view is made of, set on the views themselves rather than as the host's global DRF
defaults (REST_FRAMEWORK): a store with its own DRF API keeps its own authentication, permissions, parsers,
renderers, throttles, versioning and exception handler, and they never reach stablepay's API.

- authentication: `Authorization: Bearer <merchant api_key>` (MerchantApiKeyAuthentication);
- permission: a merchant is authenticated (IsMerchant);
- parser: strict JSON (StrictJSONParser); renderer: JSON only;
- no throttle and no versioning unless a view sets its own (payment-request creation has its rate limit);
- errors: stablepay.api.errors.exception_handler (4xx JSON naming the field or the reason);
- schema: drf-spectacular's AutoSchema (the OpenAPI document at /api/v1/schema/, `SCHEMA_SETTINGS`), also
  under the methods' `extend_schema` (use this module's, not drf-spectacular's, on a view method).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from stablepay.api.authentication import MerchantApiKeyAuthentication
from stablepay.api.errors import exception_handler
from stablepay.api.parsers import StrictJSONParser
from stablepay.api.permissions import IsMerchant

F = TypeVar("F", bound=Callable[..., Any])
PAGE_SIZE = 50

# The OpenAPI document's own settings (drf-spectacular's SPECTACULAR_SETTINGS, given to the schema view only):
# it describes stablepay's API and nothing else the host serves (the schema view itself included).
SCHEMA_SETTINGS: dict[str, Any] = {
    "TITLE": "stablepay API",
    "DESCRIPTION": "Stablecoin payment requests for Hong Kong and Macau merchants.",
    "VERSION": "1.0.0",
    "PREPROCESSING_HOOKS": ["stablepay.api.base.only_stablepay_endpoints"],
}


class StablepayApiView(APIView):
    authentication_classes: list[Any] = [MerchantApiKeyAuthentication]
    permission_classes: list[Any] = [IsMerchant]
    parser_classes: list[Any] = [StrictJSONParser]
    renderer_classes: list[Any] = [JSONRenderer]
    throttle_classes: list[Any] = []
    content_negotiation_class = DefaultContentNegotiation
    versioning_class = None
    schema = AutoSchema()

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Any]:
        return exception_handler


def extend_schema(**kwargs: Any) -> Callable[[F], F]:
    """drf-spectacular's extend_schema for stablepay's view methods. Given a method, extend_schema builds on the
    host's DEFAULT_SCHEMA_CLASS, which need not be drf-spectacular's; here it builds on stablepay's AutoSchema
    (extend_schema takes a `schema` attribute of what it decorates as its base)."""

    def decorate(f: F) -> F:
        if not isinstance(f, type):
            f.schema = AutoSchema  # type: ignore[attr-defined]
        decorated: F = spectacular_extend_schema(**kwargs)(f)
        return decorated

    return decorate


def only_stablepay_endpoints(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: keep the endpoints served by stablepay's API views."""
    return [e for e in endpoints if issubclass(getattr(e[3], "cls", type), StablepayApiView)]
