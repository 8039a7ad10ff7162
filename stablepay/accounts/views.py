"""The second-factor pages under /accounts/two-factor/ (issue 16).

- `verify`: a session signed in with a password passes its second factor here, with a code from an
  authenticator app (TOTP), a one-time backup code, or a passkey (django-otp-webauthn's authentication
  ceremony, which marks the session verified itself and returns to `next`).
- `setup`: enrolment. An authenticator app: an unconfirmed TOTP device, its otpauth:// URI as a QR code
  (inline SVG, drawn on the server) and its key as text, confirmed by one code. A passkey:
  django-otp-webauthn's registration ceremony. The first confirmed device also marks the session verified;
  confirming an app shows ten backup codes, once. A user who already has a device must verify first.
- `backup_codes`: a new set of ten codes (the old ones stop working), for a verified session.

Wrong codes are throttled per device by django-otp (1, 2, 4, 8 ... seconds between tries after each
successive failure); the page says how long to wait. Passing a second factor gives the session a new key.
"""

from __future__ import annotations

import re
from base64 import b32encode
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from stablepay.accounts.second_factor import has_second_factor, must_have_second_factor
from stablepay.checkout.views import qr_svg

BACKUP_CODE_COUNT = 10
TOTP_NAME = "Authenticator app"
BACKUP_NAME = "Backup codes"
_TOTP_CODE = re.compile(r"[0-9]{6}")


def _next_url(request: HttpRequest) -> str:
    """Where to go afterwards: `next` if it stays on this site, else LOGIN_REDIRECT_URL."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _to(view_name: str, next_url: str) -> HttpResponse:
    return redirect(f"{reverse(view_name)}?{urlencode({'next': next_url})}")


def _mark_verified(request: HttpRequest, device: Device) -> None:
    """django_otp.login on a fresh session key: the session is worth more from here on."""
    request.session.cycle_key()
    otp_login(request, device)


def _normalise(code: str) -> str:
    return re.sub(r"[\s-]+", "", code).lower()


def _wait_until(devices: list[Device]) -> datetime | None:
    """When every device that could check the code is throttled: the earliest moment one may again."""
    untils = []
    for device in devices:
        allowed, data = device.verify_is_allowed()
        if allowed:
            return None
        untils.append((data or {}).get("locked_until") or timezone.now())
    return min(untils) if untils else None


def _verify_code(user: Any, code: str) -> tuple[Device | None, datetime | None]:
    """The device that accepts `code` (6 digits: an app; otherwise a backup code), or the throttle's end."""
    code = _normalise(code)
    model: type[Device] = TOTPDevice if _TOTP_CODE.fullmatch(code) else StaticDevice
    devices = list(model.objects.devices_for_user(user, confirmed=True))
    wait = _wait_until(devices)
    if wait is not None:
        return None, wait
    for device in devices:
        verified = verify_token(user, device.persistent_id, code)
        if verified is not None:
            return verified, None
    return None, None


def _throttle_text(until: datetime) -> str:
    seconds = max(1, int((until - timezone.now()).total_seconds() + 0.999))
    return _("Too many wrong codes. Wait %(seconds)s seconds, then try again.") % {"seconds": seconds}


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    next_url = _next_url(request)
    if user.is_verified():  # type: ignore[union-attr]
        return redirect(next_url)
    if not has_second_factor(user):
        return _to("two-factor-setup", next_url)
    error = ""
    if request.method == "POST":
        device, wait = _verify_code(user, request.POST.get("code", ""))
        if device is not None:
            _mark_verified(request, device)
            return redirect(next_url)
        error = _throttle_text(wait) if wait is not None else _("That code is not right. Try again.")
    context = {
        "next": next_url,
        "error": error,
        "has_app": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "has_passkey": WebAuthnCredential.objects.filter(user=user, confirmed=True).exists(),
        "backup_codes_left": StaticToken.objects.filter(device__user=user, device__confirmed=True).count(),
    }
    return render(request, "registration/two_factor_verify.html", context, status=400 if error else 200)


def _new_backup_codes(user: Any) -> list[str]:
    """Ten fresh one-time codes; any earlier set is deleted."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def _grouped(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    next_url = _next_url(request)
    verified = user.is_verified()  # type: ignore[union-attr]
    if has_second_factor(user) and not verified:
        return _to("two-factor-verify", next_url)  # a new device needs the old one first
    app = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if app is None:
        app = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    error = ""
    if request.method == "POST":
        with transaction.atomic():
            locked = TOTPDevice.objects.select_for_update().get(pk=app.pk)
            allowed, data = locked.verify_is_allowed()
            code = _normalise(request.POST.get("code", ""))
            if allowed and _TOTP_CODE.fullmatch(code) and locked.verify_token(code):
                locked.confirmed = True
                locked.save(update_fields=["confirmed"])
                confirmed: TOTPDevice | None = locked
            else:
                confirmed = None
                if allowed:
                    allowed, data = locked.verify_is_allowed()
        if confirmed is not None:
            if not verified:
                _mark_verified(request, confirmed)
            codes = _new_backup_codes(user)
            return render(request, "registration/two_factor_backup_codes.html", {"codes": codes, "next": next_url})
        error = _throttle_text((data or {})["locked_until"]) if not allowed else _("That code is not right. Try again.")
    context = {
        "next": next_url,
        "error": error,
        "must": must_have_second_factor(user),
        "verified": verified,
        "qr_svg": qr_svg(app.config_url),
        "app_key": _grouped(b32encode(app.bin_key).decode()),
        "apps": TOTPDevice.objects.filter(user=user, confirmed=True).count(),
        "passkeys": WebAuthnCredential.objects.filter(user=user, confirmed=True).count(),
        "backup_codes_left": StaticToken.objects.filter(device__user=user, device__confirmed=True).count(),
    }
    return render(request, "registration/two_factor_setup.html", context, status=400 if error else 200)


@never_cache
@login_required
@require_POST
def backup_codes(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if not request.user.is_verified():  # type: ignore[union-attr]
        return _to("two-factor-verify", next_url)
    codes = _new_backup_codes(request.user)
    return render(request, "registration/two_factor_backup_codes.html", {"codes": codes, "next": next_url})
