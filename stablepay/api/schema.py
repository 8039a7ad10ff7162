"""What the OpenAPI document says beyond the serializers: the error answers of each operation, their body,
the paginated list, and that input objects refuse unknown fields. tests/security/test_api_fuzz.py holds
the API to it (schemathesis: every answer's status, content type and body must be the documented ones).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from stablepay.api.serializers import PaymentRequestOut, RejectUnknownFieldsMixin


class ErrorOut(serializers.Serializer):
    """An error answer: {"detail": reason} or {field name: [messages]} (also "Idempotency-Key" and
    "non_field_errors"); described by ErrorOutScheme."""


class ErrorOutScheme(OpenApiSerializerExtension):
    target_class = ErrorOut

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "description": (
                'Either {"detail": "<reason>"} or {"<field>": ["<message>", ...]}, naming every field that is'
                " wrong (a header, e.g. Idempotency-Key, is named like a field)."
            ),
            "minProperties": 1,
            "additionalProperties": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]
            },
        }


class ClosedObjectScheme(OpenApiSerializerExtension):
    """Input serializers that refuse unknown fields say so: additionalProperties is false."""

    target_class = RejectUnknownFieldsMixin
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


class PaymentRequestPageOut(serializers.Serializer):
    """One page of payment requests (PAGE_SIZE per page, newest first)."""

    count = serializers.IntegerField(min_value=0)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PaymentRequestOut(many=True)


_REASONS = {
    400: "Invalid input: the body names every wrong field (or header).",
    401: "No API key, or an invalid one.",
    403: "Not allowed for an API key (a refund that needs four-eyes approval in the ops console).",
    404: "No such payment request among this merchant's (another merchant's id answers 404 too).",
    406: "The Accept header excludes application/json.",
    409: (
        "The request is not in a state that allows this (or an Idempotency-Key reused with another body, "
        "or a token the merchant's licence policy refuses or a contract check has suspended: field `token`)."
    ),
    413: "The body is larger than 64 KB.",
    415: "The body is not application/json.",
    429: "Too many requests: retry after the Retry-After header's seconds.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation can give: `codes`, plus 401 and 406, which every operation can."""
    return {code: OpenApiResponse(ErrorOut, description=_REASONS[code]) for code in sorted({401, 406, *codes})}
