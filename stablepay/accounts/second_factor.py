"""Second factors (issue 16): who must have one, and the middleware that holds a session until it has passed one.

Who must: `must_have_second_factor(user)`, true for staff and superusers, for the ops console
(`stablepay.ops_console`, `stablepay.ops_approve`), for anyone who may add, change or delete a Merchant
(its payout wallet and webhook), an FX rate, a chain or a token (where money goes, and how much), and for
any `stablepay.approve_*` permission (approvals of such changes). Direct and group permissions both count.
Merchant users without any of these may add a second factor; once they have one, they must use it.

The middleware runs after django-otp's OTPMiddleware (`request.user.is_verified()`). For a signed-in user
whose session has not passed a second factor:
- with a confirmed device (TOTP app, passkey or backup codes): every page goes to the verify page;
- with none, when they must have one: every page goes to the enrolment page;
- otherwise (a merchant user without a device): nothing changes.
The redirect keeps the page asked for in `?next=`.

Which pages: all but the open ones, so that a page added later is covered without anyone remembering to.
Open: signing in and out (the site's and the admin's), the second-factor pages themselves and the passkey
endpoints (django-otp-webauthn), static files, language switching, and the pages that need no login:
the storefront and orders, the payment page, the API (API keys, never sessions) and the health check
(`STABLEPAY["SECOND_FACTOR_OPEN_PATHS"]` in the host's settings lists its public prefixes; stablepay/conf.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_otp import user_has_device

from stablepay.conf import app_settings

# Models whose add/change/delete permission decides where money goes or how much (lower-case model names).
MONEY_MODELS = ("merchant", "fxrate", "chain", "token")
MONEY_PERMISSIONS = frozenset(
    {"ops_console", "ops_approve"}
    | {f"{action}_{model}" for action in ("add", "change", "delete") for model in MONEY_MODELS}
)


def must_have_second_factor(user: AbstractBaseUser | AnonymousUser) -> bool:
    """True for a user who may not use the site with a password alone (see the module docstring)."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    for permission in user.get_all_permissions():  # type: ignore[attr-defined]
        app_label, _, codename = permission.partition(".")
        if app_label == "stablepay" and (codename in MONEY_PERMISSIONS or codename.startswith("approve_")):
            return True
    return False


def has_second_factor(user: AbstractBaseUser | AnonymousUser) -> bool:
    """True if the user has a confirmed device of any kind (TOTP, passkey, backup codes)."""
    return bool(user.is_authenticated and user_has_device(user, confirmed=True))


@cache
def _open_prefixes() -> tuple[str, ...]:
    own = [
        reverse("login"),
        reverse("logout"),
        reverse("admin:logout"),
        reverse("two-factor-verify"),  # also covers setup/ beneath it
        reverse("otp_webauthn:credential-authentication-begin").rsplit("authentication/", 1)[0],
        reverse("set_language"),
        "/" + settings.STATIC_URL.lstrip("/"),
    ]
    return tuple(own) + app_settings.SECOND_FACTOR_OPEN_PATHS


def is_open_path(path: str) -> bool:
    """True for a page a session may open before passing its second factor ("/" alone is the store's home)."""
    return path == "/" or path.startswith(_open_prefixes())


def _redirect(view_name: str, request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(f"{reverse(view_name)}?{urlencode({'next': request.get_full_path()})}")


class SecondFactorMiddleware:
    """Sends a signed-in session that owes a second factor to the verify or enrolment page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_open_path(request.path):  # first: the API and payment pages never load a session for this
            return self.get_response(request)
        user = request.user
        if user.is_authenticated and not user.is_verified():  # type: ignore[attr-defined]
            if has_second_factor(user):
                return _redirect("two-factor-verify", request)
            if must_have_second_factor(user):
                return _redirect("two-factor-setup", request)
        return self.get_response(request)
