"""API input validation, and the API's description of the payment request representation (the object itself,
`payment_request_data`, is stablepay/ledger/representation.py: the webhook `data` and the payment page use it too).

Input fields are strict: an amount must be a JSON string of ASCII digits, an id a JSON integer.
Numbers are never coerced to strings nor strings to numbers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from stablepay.ledger.representation import payment_request_data
from stablepay.models import (
    Currency,
    LicenceStatus,
    PaymentRequest,
    Resolution,
    Status,
    Token,
    TransferState,
)
from stablepay.money import parse_fiat_amount
from stablepay.text_rules import parse_iso_date, reference_problem

MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 16


def storable_text(value: str) -> bool:
    """Text PostgreSQL can store: no NUL, no lone surrogate (JSON allows "\\u0000" and "\\ud800")."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def metadata_problem(value: Any) -> str | None:
    """Why a metadata object cannot be stored as given, or None. Walks it without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            return f"must be nested at most {MAX_METADATA_DEPTH} levels deep"
        if isinstance(item, dict):
            if not all(storable_text(str(k)) for k in item):
                return "keys must not hold NUL characters or lone surrogates"
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str) and not storable_text(item):
            return "text must not hold NUL characters or lone surrogates"
    if len(json.dumps(value, separators=(",", ":")).encode("utf-8")) > MAX_METADATA_BYTES:
        return f"must be at most {MAX_METADATA_BYTES} bytes as JSON"
    return None


class StrictCharField(serializers.CharField):
    """A JSON string, never a number; text PostgreSQL can store (no NUL, no lone surrogate)."""

    default_error_messages = {"unstorable": "must not hold NUL characters or lone surrogates"}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if not storable_text(data):
            self.fail("unstorable")
        return str(super().to_internal_value(data))


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
        "maxLength": 40,
        "description": 'ASCII digits, > 0, at most 2 decimals and 15 integer digits, e.g. "103.00".',
    }
)
class AmountField(StrictCharField):
    """CONTRACT §4's amount: parsed by validate_amount; only its schema differs from a StrictCharField's."""


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A JSON integer is required."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class RejectUnknownFieldsMixin:
    initial_data: Any

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))  # type: ignore[attr-defined]
        if unknown:
            raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return attrs


class PaymentRequestCreateIn(RejectUnknownFieldsMixin, serializers.Serializer):
    order_reference = StrictCharField(
        min_length=1,
        max_length=64,
        trim_whitespace=False,
        help_text="1 to 64 characters; no control, bidi (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C)"
        " or zero-width characters.",
    )
    amount = AmountField(max_length=40, trim_whitespace=False)
    currency = serializers.ChoiceField(choices=Currency.values)
    chain_id = StrictIntegerField(min_value=1)
    token = StrictCharField(min_length=1, max_length=16, trim_whitespace=False)
    expiry_minutes = StrictIntegerField(min_value=1, max_value=1440, required=False)
    metadata = serializers.DictField(required=False)

    def validate_order_reference(self, value: str) -> str:
        problem = reference_problem(value)  # issue 16: what a reference shows is what it stores
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_amount(self, value: str) -> Any:
        try:
            return parse_fiat_amount(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_metadata(self, value: dict[str, Any]) -> dict[str, Any]:
        problem = metadata_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


_CREATE_FIELDS = frozenset(PaymentRequestCreateIn._declared_fields)
_CURRENCIES = frozenset(Currency.values)


def _plain_text(value: Any, min_length: int, max_length: int) -> bool:
    """What StrictCharField(trim_whitespace=False) accepts unchanged: a str within the lengths, no NUL, no surrogate."""
    return type(value) is str and min_length <= len(value) <= max_length and storable_text(value)


def _json_int(value: Any, low: int, high: int | None = None) -> bool:
    return type(value) is int and value >= low and (high is None or value <= high)


def create_body(data: Any) -> dict[str, Any] | None:
    """`PaymentRequestCreateIn(data=data).validated_data` for a valid body, without DRF's field machinery
    (a fresh deep copy of seven fields per call: ~0.7 ms of the create's CPU, benchmark P4).

    Anything it does not accept outright returns None, and the caller runs the serializer, which stays
    the definition: same errors, same messages. So this only has to be right about what it accepts;
    tests/api/test_api.py compares it with the serializer body by body.
    """
    if type(data) is not dict or not data.keys() <= _CREATE_FIELDS:
        return None
    amount: Any = data.get("amount")
    metadata = data.get("metadata", {})
    if not (
        _plain_text(data.get("order_reference"), 1, 64)
        and reference_problem(data["order_reference"]) is None
        and _plain_text(amount, 0, 40)
        and type(data.get("currency")) is str
        and data["currency"] in _CURRENCIES
        and _json_int(data.get("chain_id"), 1)
        and _plain_text(data.get("token"), 1, 16)
        and ("expiry_minutes" not in data or _json_int(data["expiry_minutes"], 1, 1440))
        and type(metadata) is dict
    ):
        return None
    try:
        parsed = parse_fiat_amount(amount)
    except ValueError:
        return None
    out = {
        "order_reference": data["order_reference"],
        "amount": parsed,
        "currency": data["currency"],
        "chain_id": data["chain_id"],
        "token": data["token"],
    }
    if "expiry_minutes" in data:
        out["expiry_minutes"] = data["expiry_minutes"]
    if "metadata" in data:
        if metadata_problem(metadata):
            return None
        out["metadata"] = {str(k): v for k, v in metadata.items()}
    return out


def fingerprint(body: Any) -> str:
    """The canonical hash of a create body, compared when an Idempotency-Key is reused."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ResolveIn(RejectUnknownFieldsMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=[r.value for r in Resolution if r.value])
    note = StrictCharField(min_length=1, max_length=2000)
    refund_tx_hash = StrictCharField(required=False, allow_null=True, max_length=66)


class ListFiltersIn(serializers.Serializer):
    """Query filters; an empty value (`?status=`) filters nothing, as in an HTML form."""

    order_reference = serializers.CharField(required=False, max_length=64, allow_blank=True)
    status = serializers.ChoiceField(choices=Status.values, required=False, allow_blank=True)


class TokenOut(serializers.Serializer):
    chain_id = serializers.IntegerField()
    chain_name = serializers.CharField()
    symbol = serializers.CharField()
    address = serializers.CharField()
    decimals = serializers.IntegerField()
    currency = serializers.CharField()
    issuer = serializers.CharField(help_text="Who issues the coin (empty: not recorded).")
    licence_reference = serializers.CharField(help_text="The issuer's licence number (empty: none recorded).")
    licence_status = serializers.ChoiceField(choices=LicenceStatus.values)
    accepting_quotes = serializers.BooleanField(help_text="False while a contract check has suspended it.")

    def to_representation(self, token: Token) -> dict[str, Any]:
        return {
            "chain_id": token.chain.chain_id,
            "chain_name": token.chain.name,
            "symbol": token.symbol,
            "address": token.address,
            "decimals": token.decimals,
            "currency": token.currency,
            "issuer": token.issuer,
            "licence_reference": token.licence_reference,
            "licence_status": token.licence_status,
            "accepting_quotes": not token.halted_reason,
        }


class TransferOut(serializers.Serializer):
    tx_hash = serializers.CharField()
    log_index = serializers.IntegerField()
    block_number = serializers.IntegerField()
    block_hash = serializers.CharField()
    token = serializers.CharField()
    token_address = serializers.CharField()
    to = serializers.CharField()
    amount_base_units = serializers.CharField()
    confirmations = serializers.IntegerField()
    state = serializers.ChoiceField(choices=TransferState.values)
    explorer_url = serializers.CharField(allow_null=True)

    def get_fields(self) -> dict[str, Any]:
        fields = dict(super().get_fields())
        fields["from"] = serializers.CharField()
        return fields


class EventOut(serializers.Serializer):
    at = serializers.DateTimeField()
    status = serializers.CharField()
    exception = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    actor = serializers.CharField()


class PaymentRequestOut(serializers.Serializer):
    """The payment request object of CONTRACT §4; to_representation builds it in one place."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Status.values)
    exception = serializers.CharField(allow_null=True)
    resolution = serializers.CharField(allow_null=True)
    order_reference = serializers.CharField()
    amount = serializers.CharField()
    currency = serializers.CharField()
    chain_id = serializers.IntegerField()
    token = serializers.CharField()
    token_address = serializers.CharField()
    decimals = serializers.IntegerField()
    rate = serializers.CharField()
    pay_to = serializers.CharField()
    amount_due = serializers.CharField()
    amount_due_base_units = serializers.CharField()
    amount_paid = serializers.CharField()
    amount_paid_base_units = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    payment_uri = serializers.CharField()
    checkout_url = serializers.URLField()
    metadata = serializers.DictField()
    transfers = TransferOut(many=True)
    timeline = EventOut(many=True)

    def to_representation(self, instance: PaymentRequest) -> dict[str, Any]:
        return payment_request_data(instance, self.context.get("request"))


@extend_schema_field({"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})
class IsoDateField(serializers.CharField):
    """A YYYY-MM-DD date in ASCII digits; nothing looser."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return parse_iso_date(str(super().to_internal_value(data)))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class SettlementFiltersIn(serializers.Serializer):
    date_from = IsoDateField(help_text="First Hong Kong day, YYYY-MM-DD (included).")
    date_to = IsoDateField(help_text="Last Hong Kong day, YYYY-MM-DD (included).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["must be on or after date_from"]})
        return attrs


class SettlementRowOut(serializers.Serializer):
    """One day, chain, token and fiat currency of the settlement report (CONTRACT §4)."""

    date = serializers.DateField()
    chain_id = serializers.IntegerField()
    token = serializers.CharField()
    count = serializers.IntegerField()
    amount = serializers.CharField(help_text="Received, as a token decimal string.")
    amount_base_units = serializers.CharField(help_text="Received, in token base units (integer string).")
    fiat_currency = serializers.CharField(help_text="The currency the requests were priced in.")
    fiat_amount = serializers.CharField(
        help_text="Sum over payments of round_half_up(amount x amount_paid / amount_due, 2)."
    )
