"""Signing in past the second factor (issue 16), for tests whose subject is what comes after it.

Staff, ops users and anyone who can change where money goes must pass a second factor
(stablepay/accounts/second_factor.py); a session signed in with a password alone is sent to verify or enrol.
- `login_verified(client, user)`: Django's test client, signed in and verified exactly as the verify page
  leaves a session: the user has a confirmed TOTP device (one is made if none), and the session holds
  `django_otp.DEVICE_ID_SESSION_KEY` = that device's persistent id (what `django_otp.login` writes).
- `fresh_code(device)`: a code the device accepts now (one it has not accepted before).
- `pass_second_factor(page, user)`: in a browser, on the verify page after the password form, type a code
  (`pass_second_factor_if_required(page, username)`: only for a user who must).
- `login_as(client, user)`: `login_verified` for a user who must have a second factor, else force_login.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

TEST_DEVICE_NAME = "Test authenticator"


def totp_device(user: Any) -> TOTPDevice:
    """The user's confirmed TOTP device, made (with a random key) if there is none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TEST_DEVICE_NAME, key=secrets.token_hex(20), confirmed=True)
    return device


def code_at(device: TOTPDevice, t: int) -> str:
    return f"{hotp(device.bin_key, t, digits=device.digits):0{device.digits}d}"


def fresh_code(device: TOTPDevice) -> str:
    """A code for the current time step, or the next one the device tolerates, that it has not accepted yet
    (a device takes each time step's code once); waits for the clock when both are used."""
    while True:
        device.refresh_from_db()
        now_t = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).t()
        for t in range(now_t, now_t + device.tolerance + 1):
            if t > device.last_t:
                return code_at(device, t)
        time.sleep(1)


def login_verified(client: Client, user: Any) -> TOTPDevice:
    """force_login, then mark the session verified with the user's TOTP device, as django_otp.login does."""
    client.force_login(user)
    device = totp_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def pass_second_factor(page: Any, user: Any) -> None:
    """After the password form: on the verify page, enter a fresh code of the user's TOTP device (made now if
    the user had none, in which case the site asked to enrol: the verify page is opened instead)."""
    device = totp_device(user)
    page.wait_for_url(re.compile(r"/accounts/two-factor/"))
    if "/accounts/two-factor/setup/" in page.url:
        page.goto(page.url.replace("/accounts/two-factor/setup/", "/accounts/two-factor/"))
    page.fill("#id_code", fresh_code(device))
    page.get_by_role("button", name="Verify").click()


def pass_second_factor_if_required(page: Any, username: str) -> None:
    """In a browser, right after submitting the password form: pass the second factor if this user must."""
    from django.contrib.auth import get_user_model

    from stablepay.accounts.second_factor import must_have_second_factor

    user = get_user_model().objects.get(username=username)
    if must_have_second_factor(user):
        pass_second_factor(page, user)


def login_as(client: Client, user: Any) -> None:
    """Sign the client in as `user` the way that user really ends up: past the second factor when they must
    have one (login_verified), with the password step alone otherwise (force_login)."""
    from stablepay.accounts.second_factor import must_have_second_factor

    if must_have_second_factor(user):
        login_verified(client, user)
    else:
        client.force_login(user)
