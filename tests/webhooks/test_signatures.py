"""Webhook signatures (CONTRACT §5) and the receivers' helper, stablepay.webhooks.signature.verify_signature.

Genuine deliveries are made by the delivery code (stablepay.webhooks.delivery) to a real http.server on
127.0.0.1 that checks them with the helper as it receives them: payloads written by the ORM path
(`created`) and by the set-based SQL path (bulk_reconcile, `expired`), signed with the secret decrypted
from the database. Then each captured delivery is tampered with, one way at a time, and must fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from stablepay.ledger import bulk_reconcile
from stablepay.merchant import services as merchant_services
from stablepay.models import Merchant, PaymentRequest, WebhookDelivery
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks import signature
from stablepay.webhooks.signature import SignatureVerificationError, is_valid, verify_signature
from tests.support.local_chain import LocalChain, create_request
from tests.support.webhook_receiver import Delivery, VerifyingReceiver

SECRET = "whsec_test_signatures_0123456789abcdef"
BODY = b'{"id":"evt_1","type":"payment_request.paid","data":{"amount":"10.00"}}'
T = 1_790_000_000


def contract_header(secret: str, body: bytes, t: int) -> str:
    """The header as CONTRACT §5 defines it, computed here without stablepay's code."""
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# The helper on its own ----------------------------------------------------------------------------
def test_the_helper_accepts_the_contract_format_and_stablepay_signs_in_it() -> None:
    header = contract_header(SECRET, BODY, T)
    assert verify_signature(header, BODY, [SECRET], now=T) is True
    assert verify_signature(header, BODY, SECRET, now=T)  # one secret as a plain string
    assert verify_signature(header, BODY.decode(), [SECRET], now=T)  # a str body is its UTF-8 bytes
    assert signature.sign(SECRET, BODY, T) == header
    assert webhooks.sign([SECRET], BODY, T) == header


@pytest.mark.parametrize(
    ("header", "body", "secrets", "now", "reason"),
    [
        (contract_header(SECRET, BODY, T), BODY + b" ", [SECRET], T, "no v1 signature matches"),
        (contract_header(SECRET, BODY, T), BODY.replace(b"10.00", b"99.00"), [SECRET], T, "no v1 signature matches"),
        (contract_header(SECRET, BODY, T), BODY, ["whsec_wrong_0123456789abcdef"], T, "no v1 signature matches"),
        (contract_header(SECRET, BODY, T), BODY, [SECRET[:-1]], T, "no v1 signature matches"),
        (contract_header(SECRET, BODY, T), BODY, [SECRET], T + 301, "timestamp too old"),
        (contract_header(SECRET, BODY, T), BODY, [SECRET], T + 3600, "timestamp too old"),
        (contract_header(SECRET, BODY, T), BODY, [SECRET], T - 301, "timestamp in the future"),
        # The same MAC under another timestamp: the timestamp is part of what is signed.
        (contract_header(SECRET, BODY, T).replace(f"t={T}", f"t={T + 1}"), BODY, [SECRET], T, "no v1"),
    ],
    ids=[
        "body+space",
        "amount-changed",
        "wrong-secret",
        "truncated-secret",
        "301s-old",
        "1h-old",
        "301s-in-future",
        "timestamp-swapped",
    ],
)
def test_the_helper_refuses(header: str, body: bytes, secrets: list[str], now: int, reason: str) -> None:
    with pytest.raises(SignatureVerificationError) as failure:
        verify_signature(header, body, secrets, now=now)
    assert reason in failure.value.reason
    assert is_valid(header, body, secrets, now=now) is False


def test_the_tolerance_is_five_minutes_either_way_and_configurable() -> None:
    header = contract_header(SECRET, BODY, T)
    assert verify_signature(header, BODY, [SECRET], now=T + 300)
    assert verify_signature(header, BODY, [SECRET], now=T - 300)
    assert not is_valid(header, BODY, [SECRET], now=T + 300.001)
    assert verify_signature(header, BODY, [SECRET], tolerance_seconds=3600, now=T + 3600)
    assert not is_valid(header, BODY, [SECRET], tolerance_seconds=10, now=T + 11)


GOOD_MAC = contract_header(SECRET, BODY, T).split("v1=")[1]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "garbage",
        f"v1={GOOD_MAC}",  # no timestamp
        f"t={T}",  # no signature
        f"t={T},v1=",  # empty signature
        f"t=,v1={GOOD_MAC}",
        f"t=abc,v1={GOOD_MAC}",
        f"t=-{T},v1={GOOD_MAC}",
        f"t={T}.5,v1={GOOD_MAC}",
        f"t={T},t={T},v1={GOOD_MAC}",  # two timestamps
        f"t={T},v1={GOOD_MAC[:-1]}",  # 63 hex digits
        f"t={T},v1={GOOD_MAC}00",  # 66
        f"t={T},v1={GOOD_MAC[:-1]}g",  # not hex
        f"t={T},v1={GOOD_MAC.upper()}",
        f"t={T};v1={GOOD_MAC}",
        f"t={T},,v1={GOOD_MAC}",
        f"t={T},v1 {GOOD_MAC}",
        f"t={T},v0={GOOD_MAC}",  # only an unknown scheme
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str) -> None:
    with pytest.raises(SignatureVerificationError) as failure:
        verify_signature(header, BODY, [SECRET], now=T)
    assert failure.value.reason
    assert not is_valid(header, BODY, [SECRET], now=T)


def test_any_matching_v1_passes_unknown_schemes_are_skipped_and_no_secret_is_an_error() -> None:
    good = contract_header(SECRET, BODY, T)
    other = contract_header("whsec_other_0123456789abcdef", BODY, T).split(",")[1]
    assert verify_signature(f"{good},{other}", BODY, [SECRET], now=T)
    assert verify_signature(f"t={T},{other},{good.split(',')[1]}", BODY, [SECRET], now=T)
    assert verify_signature(f"{good},v2=whatever", BODY, [SECRET], now=T)
    assert verify_signature(good, BODY, ["whsec_rolled_over_0123456789", SECRET], now=T)
    for empty in ([], [""], ""):
        with pytest.raises(SignatureVerificationError, match="no signing secret"):
            verify_signature(good, BODY, empty, now=T)


def test_the_helper_module_needs_no_django() -> None:
    """Receivers that are not Django projects can import (or copy) stablepay/webhooks/signature.py."""
    code = (
        "import sys; sys.modules['django'] = None\n"  # any import of django now fails
        "from stablepay.webhooks.signature import sign, verify_signature\n"
        f"assert verify_signature(sign('{SECRET}', b'x', {T}), b'x', ['{SECRET}'], now={T})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# Genuine deliveries to a real receiver ------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[VerifyingReceiver]:
    live = VerifyingReceiver([SECRET])
    yield live
    live.close()


def _tampered_all_fail(delivery: Delivery) -> None:
    header, body, t = delivery.signature, delivery.body, delivery.timestamp
    assert verify_signature(header, body, [SECRET], now=t)
    payload = json.loads(body)
    payload["data"]["amount"] = "0.01"
    changed = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    assert not is_valid(header, changed, [SECRET], now=t)
    assert not is_valid(header, body + b"\n", [SECRET], now=t)
    assert not is_valid(header, body, ["whsec_wrong_0123456789abcdef"], now=t)
    assert not is_valid(header, body, [SECRET], now=t + 301)
    assert not is_valid(header, body, [SECRET], now=t - 301)
    assert not is_valid(header.replace(f"t={t}", f"t={t + 60}"), body, [SECRET], now=t)


def test_genuine_deliveries_pass_at_a_real_receiver(
    local_chain: LocalChain, merchant: Merchant, receiver: VerifyingReceiver
) -> None:
    # The merchant sets the endpoint and its secret through the dashboard's service (stored encrypted).
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url=receiver.url, webhook_secret=SECRET, actor="test"
    )
    merchant.refresh_from_db()
    start = timezone.now()
    kept = create_request(merchant, order_reference="kept", now=start)  # `created` built by the ORM
    lapsed = create_request(merchant, order_reference="lapsed", now=start, expiry_minutes=1)
    assert webhooks.deliver_due() == 2
    # The set-based pass (SQL) writes the `expired` event of the lapsed request.
    later = start + timedelta(minutes=2)  # still inside the receiver's 5-minute window
    result = bulk_reconcile.payment_requests_reconcile_all(now=later)
    assert result.webhooks == 1
    assert PaymentRequest.objects.get(pk=lapsed.pk).status == "expired"
    assert webhooks.deliver_due(now=later) == 1

    assert [d.accepted for d in receiver.seen] == [True, True, True], [d.reason for d in receiver.seen]
    assert WebhookDelivery.objects.filter(delivered_at__isnull=True).count() == 0
    types = sorted((json.loads(d.body)["type"], json.loads(d.body)["data"]["id"]) for d in receiver.seen)
    assert types == sorted(
        [
            ("payment_request.created", str(kept.pk)),
            ("payment_request.created", str(lapsed.pk)),
            ("payment_request.expired", str(lapsed.pk)),
        ]
    )
    for delivery in receiver.seen:
        assert len(delivery.v1) == 1  # no rotation: one signature
        assert delivery.signature == contract_header(SECRET, delivery.body, delivery.timestamp)
        _tampered_all_fail(delivery)


def test_a_receiver_with_the_wrong_secret_refuses_and_the_delivery_is_retried(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    wrong = VerifyingReceiver(["whsec_not_the_merchants_0123456789"])
    try:
        merchant_services.merchant_webhook_update(
            merchant=merchant, webhook_url=wrong.url, webhook_secret=SECRET, actor="test"
        )
        merchant.refresh_from_db()
        create_request(merchant)
        assert webhooks.deliver_due() == 0
        delivery = WebhookDelivery.objects.get()
        assert delivery.last_status_code == 400 and delivery.delivered_at is None
        assert delivery.next_attempt_at is not None
        assert [d.reason for d in wrong.seen] == ["no v1 signature matches: wrong secret or changed body"]
    finally:
        wrong.close()


def test_a_delivery_is_never_sent_unsigned(local_chain: LocalChain, merchant: Merchant) -> None:
    live = VerifyingReceiver([SECRET])
    try:
        Merchant.objects.filter(pk=merchant.pk).update(webhook_url=live.url, webhook_secret="")
        merchant.refresh_from_db()
        create_request(merchant)
        assert webhooks.deliver_due() == 0
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == 1 and "no webhook signing secret" in delivery.last_error
        assert live.seen == []
    finally:
        live.close()
