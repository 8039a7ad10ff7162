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


# audit bundles (stablepay/compliance/audit_bundle.py) ----------------------------------------------------------------
_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_INT = {"type": "integer", "minimum": 0}
_DIGITS = {"type": "string", "pattern": "^[0-9]+$"}


def _obj(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": sorted(properties)}
    if description:
        schema["description"] = description
    return schema


AUDIT_SIGNATURE_SCHEMA = _obj(
    {
        "algorithm": {"type": "string", "enum": ["Ed25519"]},
        "canonicalization": _STR,
        "public_key": {**_STR, "description": "Base64 of the raw 32-byte Ed25519 public key."},
        "key_id": {**_STR, "description": "The first 16 hex digits of SHA-256(public key)."},
        "value": {**_STR, "description": "Base64 of the 64-byte signature of the canonical `bundle`."},
    }
)
AUDIT_KEY_SCHEMA = _obj(
    {
        "algorithm": {"type": "string", "enum": ["Ed25519"]},
        "public_key": _STR,
        "public_key_pem": _STR,
        "key_id": _STR,
        "canonicalization": _STR,
    },
    "The public key that verifies this server's audit bundles.",
)
AUDIT_DOCUMENT_SCHEMA = _obj(
    {
        "bundle": _obj(
            {
                "format": _STR,
                "generated_at": _STR,
                "merchant": _obj({"slug": _STR, "name": _STR}),
                "payment_request": _obj(
                    {
                        "id": {"type": "string", "format": "uuid"},
                        "order_reference": _STR,
                        "status": _STR,
                        "exception": _STR,
                        "resolution": _STR,
                        "created_at": _STR,
                        "expires_at": _STR,
                        "paid_at": _NSTR,
                        "amount_paid_base_units": _DIGITS,
                        "refund_address": _STR,
                        "refund_tx_hash": _STR,
                    }
                ),
                "quote": _obj(
                    {
                        "amount": _STR,
                        "currency": _STR,
                        "token_currency": _STR,
                        "rate": _STR,
                        "rate_meaning": _STR,
                        "amount_due_base_units": _DIGITS,
                        "fx_source": _STR,
                        "quoted_at": _STR,
                    }
                ),
                "token": _obj({"chain_id": _INT, "symbol": _STR, "address": _STR, "decimals": _INT, "currency": _STR}),
                "chain": _obj(
                    {
                        "chain_id": _INT,
                        "name": _STR,
                        "confirmations_required": _INT,
                        "head_block": {**_INT, "nullable": True},
                        "confirmations_note": _STR,
                    }
                ),
                "deposit": _obj(
                    {
                        "address": _STR,
                        "derivation_index": _INT,
                        "derivation_path": _STR,
                        "xpub_fingerprint": _STR,
                        "xpub_key_identifier": _STR,
                        "xpub_parent_fingerprint": _STR,
                    }
                ),
                "transfers": {
                    "type": "array",
                    "items": _obj(
                        {
                            "chain_id": _INT,
                            "tx_hash": _STR,
                            "log_index": _INT,
                            "block_number": _INT,
                            "block_hash": _STR,
                            "block_timestamp": _STR,
                            "from": _STR,
                            "to": _STR,
                            "token_symbol": _STR,
                            "token_address": _STR,
                            "amount_base_units": _DIGITS,
                            "state": {"type": "string", "enum": ["seen", "confirmed", "orphaned"]},
                            "reviewed": {"type": "boolean"},
                            "recorded_at": _STR,
                            "confirmations_now": _INT,
                        }
                    ),
                },
                "screening": {"type": "array", "items": {"type": "object"}},
                "screening_note": _STR,
                "timeline": {
                    "type": "array",
                    "items": _obj({"at": _STR, "status": _STR, "exception": _STR, "note": _STR, "actor": _STR}),
                },
                "ops_actions": {"type": "array", "items": {"type": "object"}},
                "webhooks": {"type": "array", "items": {"type": "object"}},
            }
        ),
        "signature": AUDIT_SIGNATURE_SCHEMA,
    },
    "A signed audit bundle, served as the canonical serialization (sorted keys, no whitespace, UTF-8) of "
    "this object; `signature.value` is Ed25519 over the canonical serialization of `bundle`.",
)
