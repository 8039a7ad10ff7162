"""Demo only: the second factor `make demo` gives its staff and ops users, and today's code for it.

Every such user gets a TOTP device named DEMO_DEVICE_NAME holding the fixed, published key
DEMO_TOTP_KEY_BASE32. That key is no secret: anyone can compute the codes, so it protects nothing and
belongs to the demo alone. `manage.py stablepay_demo_code USER` prints the current code (it refuses unless
STABLEPAY_DEMO is on, and only for a device holding this key); any authenticator app given the key shows
the same codes. Never used by the production path.
"""

from __future__ import annotations

from base64 import b32decode
from typing import Any

from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from stablepay.accounts.second_factor import must_have_second_factor

DEMO_TOTP_KEY_BASE32 = "STABLEPAYDEMOKEYSTABLEPAYDEMOKEY"  # demo only: published, protects nothing
DEMO_DEVICE_NAME = "Demo authenticator (demo only, published key)"


def demo_key_hex() -> str:
    return b32decode(DEMO_TOTP_KEY_BASE32).hex()


def give_demo_device(user: Any) -> TOTPDevice:
    """A confirmed TOTP device with the demo key for `user` (kept if it is already there)."""
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name=DEMO_DEVICE_NAME, defaults={"key": demo_key_hex(), "confirmed": True}
    )
    return device


def give_demo_devices() -> int:
    """The demo device for every active user who must have a second factor (staff, ops users, anyone who can
    change where money goes: stablepay.accounts.second_factor); returns how many users that is."""
    users = [user for user in get_user_model().objects.filter(is_active=True) if must_have_second_factor(user)]
    for user in users:
        give_demo_device(user)
    return len(users)


def demo_device(user: Any) -> TOTPDevice | None:
    """The user's demo device, if it holds the demo key."""
    return TOTPDevice.objects.filter(user=user, key=demo_key_hex(), confirmed=True).first()


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
