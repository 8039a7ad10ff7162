"""Webhook secret rotation with a grace period (STABLEPAY["WEBHOOK_SECRET_GRACE_HOURS"], default 24).

After a rotation, from the settings page or from `stablepay_setup` with a changed `webhook_secret`,
each delivery carries `t=..,v1=<new>,v1=<old>` until the grace period ends, then `v1=<new>` only. A
real receiver on 127.0.0.1 that still holds the old secret keeps accepting during the grace period and
refuses after it. The clock is controlled: `deliver_due(now=...)` and the receiver's own clock move
together, hours at a time, without sleeping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from stablepay.merchant import services as merchant_services
from stablepay.models import Merchant, WebhookDelivery
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks.signature import is_valid
from tests.support.local_chain import LocalChain, create_request, setup_document
from tests.support.merchant import login, make_user
from tests.support.webhook_receiver import VerifyingReceiver

OLD = "whsec_rotation_old_0123456789abcdef"
NEW = "whsec_rotation_new_0123456789abcdef"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> float:
        return self.at.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(timezone.now())


@pytest.fixture
def old_receiver(clock: Clock) -> Iterator[VerifyingReceiver]:
    """A merchant endpoint that has not been told about the new secret yet."""
    live = VerifyingReceiver([OLD], now=clock)
    yield live
    live.close()


@pytest.fixture
def local_urls_allowed(settings: Any) -> None:
    """The settings form refuses loopback URLs outside DEBUG/demo; the receiver lives on 127.0.0.1."""
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}


def _deliver_new_event(merchant: Merchant, clock: Clock, reference: str) -> WebhookDelivery:
    merchant.refresh_from_db()
    request = create_request(merchant, order_reference=reference, now=clock.at)
    delivery = WebhookDelivery.objects.get(payment_request=request)
    webhooks.deliver_due(now=clock.at)
    delivery.refresh_from_db()
    return delivery


def test_rotation_from_the_settings_page_keeps_the_old_secret_for_the_grace_period(
    local_chain: LocalChain, merchant: Merchant, old_receiver: VerifyingReceiver, clock: Clock, local_urls_allowed: None
) -> None:
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url=old_receiver.url, webhook_secret=OLD, actor="test"
    )
    merchant.refresh_from_db()
    assert merchant.webhook_secret_previous == "" and merchant.webhook_secret_previous_until is None
    before = _deliver_new_event(merchant, clock, "before")
    assert before.delivered_at is not None and len(old_receiver.seen[-1].v1) == 1

    # A member generates a new secret on /merchant/settings/.
    client: Client = login(make_user("rotator", merchant))
    rotated_at = timezone.now()
    response = client.post("/merchant/settings/webhook/", {"webhook_url": old_receiver.url, "new_secret": "on"})
    assert response.status_code == 302
    merchant.refresh_from_db()
    new = merchant.webhook_secret
    assert new.startswith("whsec_") and new != OLD
    assert merchant.webhook_secret_previous == OLD
    until = merchant.webhook_secret_previous_until
    assert until is not None
    assert rotated_at + timedelta(hours=24) <= until <= timezone.now() + timedelta(hours=24)
    page = client.get("/merchant/settings/").content.decode()
    assert 'id="webhook-secret-grace"' in page

    # During the grace period: two signatures, new first; the old-secret receiver accepts.
    for hours in (0, 1, 23.9):
        clock.at = rotated_at + timedelta(hours=hours)
        delivery = _deliver_new_event(merchant, clock, f"grace-{hours}")
        seen = old_receiver.seen[-1]
        assert delivery.delivered_at == clock.at and seen.accepted, seen.reason
        assert len(seen.v1) == 2
        t = seen.timestamp
        assert is_valid(seen.signature, seen.body, [new], now=t)  # the updated receiver too
        assert is_valid(seen.signature, seen.body, [OLD], now=t)
        assert seen.signature == webhooks.sign([new, OLD], seen.body, t)
        assert not is_valid(seen.signature, seen.body, ["whsec_neither_0123456789abcdef"], now=t)

    # After it: only the new secret signs; the old-secret receiver refuses (400) and the event is retried.
    clock.at = until + timedelta(seconds=1)
    late = _deliver_new_event(merchant, clock, "after")
    seen = old_receiver.seen[-1]
    assert len(seen.v1) == 1 and not seen.accepted
    assert late.delivered_at is None and late.last_status_code == 400 and late.next_attempt_at is not None
    assert is_valid(seen.signature, seen.body, [new], now=seen.timestamp)

    # The merchant updates its endpoint to the new secret: the retry (signed afresh) goes through.
    old_receiver.secrets = [new]
    clock.at = late.next_attempt_at
    assert webhooks.deliver_due(now=clock.at) == 1
    late.refresh_from_db()
    assert late.delivered_at == clock.at and old_receiver.seen[-1].accepted
    assert old_receiver.seen[-1].body == seen.body  # the same event


def test_a_second_rotation_drops_the_first_secret_and_grace_zero_drops_at_once(
    local_chain: LocalChain, merchant: Merchant, settings: Any
) -> None:
    now = timezone.now()
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=OLD, actor="t", now=now
    )
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=NEW, actor="t", now=now
    )
    third = "whsec_rotation_third_0123456789abc"
    later = now + timedelta(hours=1)
    saved, changed = merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=third, actor="t", now=later
    )
    assert changed
    saved.refresh_from_db()
    assert (saved.webhook_secret, saved.webhook_secret_previous) == (third, NEW)
    assert saved.webhook_secret_previous_until == later + timedelta(hours=24)
    assert webhooks.signing_secrets(saved, now=later) == [third, NEW]  # OLD is gone
    assert webhooks.signing_secrets(saved, now=later + timedelta(hours=24)) == [third]

    # Saving the same secret again is no rotation: the grace period does not restart.
    _, changed = merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/b", webhook_secret=third, actor="t", now=later
    )
    assert not changed

    settings.STABLEPAY = {**settings.STABLEPAY, "WEBHOOK_SECRET_GRACE_HOURS": 0}
    saved, _ = merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=NEW, actor="t", now=later
    )
    saved.refresh_from_db()
    assert (saved.webhook_secret_previous, saved.webhook_secret_previous_until) == ("", None)
    assert webhooks.signing_secrets(saved, now=later) == [NEW]

    settings.STABLEPAY = {**settings.STABLEPAY, "WEBHOOK_SECRET_GRACE_HOURS": 1.5}
    saved, _ = merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=OLD, actor="t", now=later
    )
    saved.refresh_from_db()
    assert saved.webhook_secret_previous == NEW
    assert saved.webhook_secret_previous_until == later + timedelta(hours=1.5)


def _setup_with_secret(local_chain: LocalChain, tmp_path: Path, url: str | None, secret: str | None) -> None:
    document = setup_document(local_chain.anvil.url, local_chain.tokens)
    document["merchants"][0].update(webhook_url=url, webhook_secret=secret)
    path = tmp_path / "rotate.json"
    path.write_text(json.dumps(document))
    call_command("stablepay_setup", str(path))


def test_stablepay_setup_rotates_a_changed_webhook_secret_with_grace(
    local_chain: LocalChain, merchant: Merchant, old_receiver: VerifyingReceiver, clock: Clock, tmp_path: Path
) -> None:
    _setup_with_secret(local_chain, tmp_path, old_receiver.url, OLD)
    merchant.refresh_from_db()
    assert (merchant.webhook_secret, merchant.webhook_secret_previous) == (OLD, "")

    # Re-running the same file changes nothing (idempotent), in particular no rotation.
    _setup_with_secret(local_chain, tmp_path, old_receiver.url, OLD)
    merchant.refresh_from_db()
    assert (merchant.webhook_secret_previous, merchant.webhook_secret_previous_until) == ("", None)

    started = timezone.now()
    _setup_with_secret(local_chain, tmp_path, old_receiver.url, NEW)
    merchant.refresh_from_db()
    assert (merchant.webhook_secret, merchant.webhook_secret_previous) == (NEW, OLD)
    until = merchant.webhook_secret_previous_until
    assert until is not None and started + timedelta(hours=24) <= until <= timezone.now() + timedelta(hours=24)
    _setup_with_secret(local_chain, tmp_path, old_receiver.url, NEW)  # again: the grace period is not reset
    merchant.refresh_from_db()
    assert merchant.webhook_secret_previous_until == until

    clock.at = until - timedelta(minutes=1)
    assert _deliver_new_event(merchant, clock, "in-grace").delivered_at is not None
    assert len(old_receiver.seen[-1].v1) == 2 and old_receiver.seen[-1].accepted
    clock.at = until
    assert _deliver_new_event(merchant, clock, "grace-over").delivered_at is None
    assert len(old_receiver.seen[-1].v1) == 1 and not old_receiver.seen[-1].accepted

    # Webhooks off in the file: no secret signs any more, the previous one included.
    _setup_with_secret(local_chain, tmp_path, None, None)
    merchant.refresh_from_db()
    assert (merchant.webhook_url, merchant.webhook_secret, merchant.webhook_secret_previous) == ("", "", "")


def test_the_grace_period_is_read_from_the_environment() -> None:
    code = "from stablepay.conf import app_settings; print(app_settings.WEBHOOK_SECRET_GRACE_HOURS)"
    env = {k: v for k, v in os.environ.items() if k != "STABLEPAY_WEBHOOK_SECRET_GRACE_HOURS"}
    run = [sys.executable, "manage.py", "shell", "-c", code]
    default = subprocess.run(run, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=True)
    assert default.stdout.splitlines()[-1] == "24.0"
    env["STABLEPAY_WEBHOOK_SECRET_GRACE_HOURS"] = "2.5"
    configured = subprocess.run(run, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=True)
    assert configured.stdout.splitlines()[-1] == "2.5"


def test_the_rotation_notes_speak_traditional_chinese(local_chain: LocalChain, merchant: Merchant) -> None:
    client = login(make_user("zh-member", merchant))
    url = "https://hooks.example.com/zh"
    client.post("/merchant/settings/webhook/", {"webhook_url": url, "webhook_secret": OLD})
    client.post("/merchant/settings/webhook/", {"webhook_url": url, "new_secret": "on"})
    first = client.get("/merchant/settings/", HTTP_ACCEPT_LANGUAGE="zh-HK").content.decode()
    assert "你的新簽署密鑰" in first and "舊密鑰會繼續為每次傳送簽署" in first
    assert "Your new signing secret" not in first and "The previous secret also signs" not in first
    second = client.get("/merchant/settings/", HTTP_ACCEPT_LANGUAGE="zh-HK").content.decode()
    assert "已設定簽署密鑰" in second and "A signing secret is set" not in second
