"""Password lockout (issue 16): how django-axes counts failed logins here.

Axes records every failed `authenticate()` that has a request (the site's login form and the admin's) as
one `AccessAttempt` row per user name, client address and user agent. This handler adds two rules to its
database handler:

- Two limits, each on its own: a user name is locked after `AXES_FAILURE_LIMIT` failures (from any address),
  a client address after `STABLEPAY_LOGIN_FAILURES_PER_IP` failures (for any names), both counted over the
  cool-off (`AXES_COOLOFF_TIME`). Axes alone has one limit for every lockout parameter, and the address
  limit must be far higher than the user one (shop/settings.py says why).
- A successful login clears the failures of that user name only. Axes would also clear every failure from
  the address, so an attacker could sign in to an account of their own between guesses at someone else's
  and never reach either limit.

The client address is `stablepay.ratelimit.client_ip` (REMOTE_ADDR, or X-Forwarded-For behind
STABLEPAY_TRUSTED_PROXIES proxies), with an IPv6 client counted as its /64 (stored as the network's first
address, which the IP-address column accepts).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from stablepay import ratelimit
from stablepay.conf import app_settings


def client_ip(request: HttpRequest) -> str:
    """The address axes counts: the rate limiter's client address, a /64 as its first address."""
    address = ratelimit.client_ip(request)
    if "/" in address:
        return str(ipaddress.ip_network(address, strict=False).network_address)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return "0.0.0.0"  # noqa: S104 - not a bind address: the bucket of requests with no usable address


def ip_failure_limit() -> int:
    return app_settings.LOGIN_FAILURES_PER_IP


class LoginLockoutHandler(AxesDatabaseHandler):
    """AxesDatabaseHandler with a limit per user name and a higher one per address (see the module docstring)."""

    def _recent(self, request: HttpRequest, **filters: Any) -> QuerySet[AccessAttempt]:
        attempts = AccessAttempt.objects.filter(**filters)
        if settings.AXES_COOLOFF_TIME is not None:
            from axes.attempts import get_cool_off_threshold

            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        return attempts

    def _count(self, attempts: QuerySet[AccessAttempt]) -> int:
        return int(attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0)

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """The failures measured against AXES_FAILURE_LIMIT: the user name's own, or the limit itself once the
        client address has reached its own limit (so that axes' single comparison applies both limits)."""
        username = get_client_username(request, credentials)
        by_user = self._count(self._recent(request, username=username)) if username else 0
        by_address = self._count(self._recent(request, ip_address=request.axes_ip_address))  # type: ignore[attr-defined]
        if by_address >= ip_failure_limit():
            return max(by_user, get_failure_limit(request, credentials))
        return by_user

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """After a successful login: forget that user name's failures, and nobody else's."""
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return int(count)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """The page a locked-out sign-in gets (AXES_LOCKOUT_CALLABLE): 429, and how long the pause lasts."""
    cool_off = settings.AXES_COOLOFF_TIME
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off is not None else 0
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    if cool_off is not None:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
