"""Webhook signatures (CONTRACT §5), in plain Python with no Django: merchants' receivers can import
this module, or copy it, to check a delivery.

The header is `Stablepay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
While a rotated secret is in its grace period, a delivery carries one `v1=` per valid secret
(`t=...,v1=<new>,v1=<old>`): a receiver that knows any one of them accepts it. Stripe's verifier rules
(`t=`, `v1=`, 300 s) accept it as they are.

Every delivery is also signed in the Standard Webhooks format (CONTRACT §7, standardwebhooks.com):
`webhook-id` (the payload's `id`), `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA256(
secret, "<id>.<timestamp>.<raw body>")>`, one space-separated `v1,` per valid secret, keyed with the
secret's UTF-8 bytes; `standard_secret` gives it as `whsec_<base64>`, the form those libraries take.

    from stablepay.webhooks.signature import SignatureVerificationError, verify_signature

    try:
        verify_signature(request.headers["Stablepay-Signature"], request.body, [secret])
    except SignatureVerificationError:
        return HttpResponse(status=400)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "Stablepay-Signature"
STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
STANDARD_SECRET_PREFIX = "whsec_"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")


class SignatureVerificationError(ValueError):
    """The signature does not prove that stablepay sent this body recently; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _secrets(secrets: str | bytes | Iterable[str | bytes]) -> list[bytes]:
    items = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    keys = [s.encode() if isinstance(s, str) else bytes(s) for s in items]
    if not keys or not all(keys):
        raise SignatureVerificationError("no signing secret to check against")
    return keys


def _body(raw_body: bytes | str) -> bytes:
    return raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)


def compute(secret: str | bytes, raw_body: bytes | str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<raw body>" with `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + _body(raw_body), hashlib.sha256).hexdigest()


def sign(secrets: str | Iterable[str], raw_body: bytes | str, timestamp: int) -> str:
    """The header value: `t=<timestamp>` then one `v1=` per secret, in the order given (newest first)."""
    macs = [f"{SCHEME}={compute(key, raw_body, timestamp)}" for key in _secrets(secrets)]
    return ",".join([f"t={timestamp}", *macs])


def standard_secret(secret: str | bytes) -> str:
    """The secret as Standard Webhooks libraries take it: `whsec_` + the base64 of its UTF-8 bytes."""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    return STANDARD_SECRET_PREFIX + base64.b64encode(key).decode()


def standard_headers(
    secrets: str | Iterable[str], message_id: str, raw_body: bytes | str, timestamp: int
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: one `v1,<base64>` per secret, newest first."""
    signed = f"{message_id}.{timestamp}.".encode() + _body(raw_body)
    macs = [
        f"{SCHEME},{base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()}"
        for key in _secrets(secrets)
    ]
    return {
        STANDARD_ID_HEADER: message_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: " ".join(macs),
    }


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, [v1 signatures]). Unknown schemes (a future v2) are skipped; anything else malformed
    raises SignatureVerificationError."""
    if not isinstance(header, str) or not header.strip():
        raise SignatureVerificationError("missing signature header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key or not value:
            raise SignatureVerificationError(f"malformed signature header item {item.strip()[:20]!r}")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            if not _HEX_SHA256.match(value):
                raise SignatureVerificationError("malformed v1 signature: expected 64 lower-case hex digits")
            signatures.append(value)
    if len(timestamps) != 1 or not _DIGITS.match(timestamps[0]):
        raise SignatureVerificationError("the header needs exactly one t=<unix seconds>")
    if not signatures:
        raise SignatureVerificationError("the header has no v1 signature")
    return int(timestamps[0]), signatures


def verify_signature(
    header: str,
    raw_body: bytes | str,
    secrets: str | Iterable[str],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Check a delivery: returns True, or raises SignatureVerificationError.

    `raw_body` is the request body exactly as received (bytes; do not re-serialise parsed JSON).
    `secrets` is one secret or several (yours, plus the previous one while you roll a rotation out):
    any `v1` in the header made with any of them passes. The timestamp must be within
    `tolerance_seconds` of `now` (default: the current time), in the past or the future, which stops
    replays of old deliveries. Signatures are compared in constant time.
    """
    timestamp, signatures = parse_header(header)
    keys = _secrets(secrets)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_seconds:
        raise SignatureVerificationError("timestamp too old: outside the tolerance (a replay?)")
    if timestamp > current + tolerance_seconds:
        raise SignatureVerificationError("timestamp in the future: outside the tolerance")
    matched = False
    for key in keys:
        expected = compute(key, raw_body, timestamp)
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureVerificationError("no v1 signature matches: wrong secret or changed body")
    return True


def is_valid(
    header: str,
    raw_body: bytes | str,
    secrets: str | Iterable[str],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """verify_signature as a yes/no."""
    try:
        return verify_signature(header, raw_body, secrets, tolerance_seconds, now)
    except SignatureVerificationError:
        return False
