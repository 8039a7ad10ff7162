"""Webhook deliveries checked by the libraries merchants already use (issue 21, CONTRACT §5 and §7).

Real deliveries from the delivery code to a real receiver on 127.0.0.1 are verified by the
`standardwebhooks` package from PyPI (the `webhook-id`, `webhook-timestamp`, `webhook-signature` headers,
with the secret in its `whsec_` form, as the merchant settings page shows it) and by Stripe's own
verifier from the `stripe` package (the `Stablepay-Signature` header: `t=`, `v1=`, 300 s tolerance).
A changed body, a wrong secret and a stale timestamp are refused by both; a rotated secret's grace
period is honoured by both; a retry keeps its `webhook-id` and is signed afresh. The JavaScript library
(npm `standardwebhooks`, run by Node as the README shows it) verifies a real delivery too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import stripe
from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from stablepay.merchant import services as merchant_services
from stablepay.models import Merchant, WebhookDelivery
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks.signature import standard_secret
from tests.support.local_chain import LocalChain, create_request
from tests.support.merchant import login, make_user
from tests.support.webhook_receiver import Delivery, VerifyingReceiver

SECRET = "whsec_standard_0123456789abcdef"
STRIPE_TOLERANCE = 300


@pytest.fixture
def receiver() -> Iterator[VerifyingReceiver]:
    live = VerifyingReceiver([SECRET])
    yield live
    live.close()


def _connect(merchant: Merchant, receiver: VerifyingReceiver, secret: str = SECRET) -> Merchant:
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url=receiver.url, webhook_secret=secret, actor="test"
    )
    merchant.refresh_from_db()
    return merchant


def _deliver(merchant: Merchant, reference: str) -> WebhookDelivery:
    request = create_request(merchant, order_reference=reference)
    delivery = WebhookDelivery.objects.get(payment_request=request)
    webhooks.deliver_due()
    delivery.refresh_from_db()
    return delivery


def _standard(delivery: Delivery, secret: str) -> dict:
    return Webhook(standard_secret(secret)).verify(delivery.body, delivery.headers)


def _stripe(delivery: Delivery, secret: str) -> bool:
    return stripe.WebhookSignature.verify_header(
        delivery.body, delivery.headers["Stablepay-Signature"], secret, tolerance=STRIPE_TOLERANCE
    )


def test_a_real_delivery_passes_both_libraries_and_a_tampered_one_neither(
    local_chain: LocalChain, merchant: Merchant, receiver: VerifyingReceiver
) -> None:
    _connect(merchant, receiver)
    outbox = _deliver(merchant, "std-1")
    assert outbox.delivered_at is not None
    seen = receiver.seen[-1]
    payload = _standard(seen, SECRET)
    assert payload["id"] == str(outbox.event_id) == seen.headers["webhook-id"]
    assert payload["type"] == "payment_request.created"
    assert int(seen.headers["webhook-timestamp"]) == seen.timestamp  # one clock for both headers
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", seen.headers["webhook-signature"])
    assert _stripe(seen, SECRET) is True

    changed = json.loads(seen.body)
    changed["data"]["amount"] = "0.01"
    tampered = Delivery(seen.headers, json.dumps(changed, separators=(",", ":"), sort_keys=True).encode(), True, "")
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        _standard(tampered, SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        _stripe(tampered, SECRET)
    other_id = Delivery({**seen.headers, "webhook-id": "evt_someone_else"}, seen.body, True, "")
    with pytest.raises(WebhookVerificationError):
        _standard(other_id, SECRET)
    with pytest.raises(WebhookVerificationError):
        _standard(seen, "whsec_wrong_0123456789abcdef")
    with pytest.raises(stripe.SignatureVerificationError):
        _stripe(seen, "whsec_wrong_0123456789abcdef")


def test_a_stale_delivery_is_refused_by_both(local_chain: LocalChain, merchant: Merchant) -> None:
    """A delivery signed 10 minutes ago (a replay) is outside both libraries' 5-minute window."""
    past = timezone.now() - timedelta(minutes=10)
    live = VerifyingReceiver([SECRET], now=lambda: past.timestamp())
    try:
        _connect(merchant, live)
        create_request(merchant, order_reference="std-stale", now=past)
        webhooks.deliver_due(now=past)
        seen = live.seen[-1]
        assert seen.accepted  # genuine, at its own time
        with pytest.raises(WebhookVerificationError, match="too old"):
            _standard(seen, SECRET)
        with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
            _stripe(seen, SECRET)
    finally:
        live.close()


def test_a_retry_keeps_its_id_and_is_signed_afresh(
    local_chain: LocalChain, merchant: Merchant, receiver: VerifyingReceiver
) -> None:
    _connect(merchant, receiver)
    receiver.secrets = ["whsec_not_yet_updated_0123456789"]  # the endpoint answers 400
    outbox = _deliver(merchant, "std-retry")
    assert outbox.delivered_at is None and outbox.last_status_code == 400
    receiver.secrets = [SECRET]
    assert webhooks.deliver_due(now=outbox.next_attempt_at) == 1
    first, retry = receiver.seen[-2], receiver.seen[-1]
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == str(outbox.event_id)
    assert retry.body == first.body
    assert retry.headers["webhook-timestamp"] != first.headers["webhook-timestamp"]
    assert retry.headers["webhook-signature"] != first.headers["webhook-signature"]


def test_during_a_rotation_either_secret_verifies(
    local_chain: LocalChain, merchant: Merchant, receiver: VerifyingReceiver
) -> None:
    _connect(merchant, receiver)
    new = "whsec_standard_new_0123456789abcdef"
    _connect(merchant, receiver, secret=new)  # the old secret keeps signing for the grace period
    receiver.secrets = [new]
    _deliver(merchant, "std-rotation")
    seen = receiver.seen[-1]
    assert len(seen.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, SECRET):
        assert _standard(seen, secret)["type"] == "payment_request.created"
        assert _stripe(seen, secret) is True


def test_the_settings_page_shows_the_secret_in_the_form_the_libraries_take(
    local_chain: LocalChain, merchant: Merchant, receiver: VerifyingReceiver
) -> None:
    _connect(merchant, receiver)
    client = login(make_user("whsec-reader", merchant))
    response = client.post("/merchant/settings/webhook/", {"webhook_url": receiver.url, "new_secret": "on"})
    assert response.status_code == 302
    page = client.get("/merchant/settings/").content.decode()
    shown = re.search(r'id="webhook-secret">([^<]+)<', page)
    standard = re.search(r'id="webhook-secret-standard">(whsec_[A-Za-z0-9+/=]+)<', page)
    assert shown and standard, page
    merchant.refresh_from_db()
    assert shown.group(1) == merchant.webhook_secret
    receiver.secrets = [merchant.webhook_secret]
    _deliver(merchant, "std-page")
    seen = receiver.seen[-1]
    # What the merchant copies from the page, pasted into the library, verifies the real delivery.
    assert Webhook(standard.group(1)).verify(seen.body, seen.headers)["type"] == "payment_request.created"
    assert _stripe(seen, shown.group(1)) is True


# The README's JavaScript receiver, run by Node with the npm package (package.json pins it).
VERIFY_JS = """
const { Webhook } = require("standardwebhooks");
const fs = require("fs");
const [secret, bodyFile, headersFile] = process.argv.slice(1);
const payload = fs.readFileSync(bodyFile);
const headers = JSON.parse(fs.readFileSync(headersFile, "utf8"));
try {
  const event = new Webhook(secret).verify(payload, headers);
  console.log("ok " + event.type);
} catch (err) {
  console.log("refused " + err.message);
}
"""


def test_a_real_delivery_verifies_in_javascript(
    local_chain: LocalChain, merchant: Merchant, receiver: VerifyingReceiver, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (make test installs npm packages with it)"
    _connect(merchant, receiver)
    _deliver(merchant, "std-js")
    seen = receiver.seen[-1]
    headers = {k.lower(): v for k, v in seen.headers.items()}

    def run(body: bytes, secret: str) -> str:
        (tmp_path / "body").write_bytes(body)
        (tmp_path / "headers.json").write_text(json.dumps(headers))
        done = subprocess.run(
            [node, "-e", VERIFY_JS, standard_secret(secret), str(tmp_path / "body"), str(tmp_path / "headers.json")],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(seen.body, SECRET) == "ok payment_request.created"
    tampered = seen.body.replace(b"payment_request.created", b"payment_request.paid")
    assert tampered != seen.body
    assert run(tampered, SECRET).startswith("refused")
    assert run(seen.body, "whsec_wrong_0123456789abcdef").startswith("refused")
