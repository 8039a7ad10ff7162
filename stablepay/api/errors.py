"""Error answers: domain errors become 4xx JSON naming the field; nothing from bad input becomes a 5xx."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from stablepay.api.parsers import BodyTooLarge
from stablepay.errors import StablepayError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, StablepayError):
        return Response({exc.field: [exc.message]}, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge()
    return drf_exception_handler(exc, context)
