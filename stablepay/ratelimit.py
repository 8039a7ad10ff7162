"""Rate limits on payment-request creation: per merchant (API) and per client IP (API and checkout).

Algorithm: a fixed window per key. The first hit of a window starts it (the counter's expiry is set
to the window length), every hit adds one, and a hit that takes the counter over the limit is refused
with the time left in the window (the `Retry-After`). A fixed window was chosen over a sliding one
because it is one integer per key and one atomic step per hit, and all the limits of a request go to
Redis in a single round trip (the Lua script below), which keeps the check cheap on the hot path
(P4 creates ~400 requests/s). Its known weakness, up to 2N hits across a window boundary, does not
matter for an abuse guard whose limits sit far above honest traffic. A sliding log (a sorted set of
timestamps) would cost O(N) memory and O(log N) work per key and hit; a sliding-window estimate needs
two keys and is still approximate.

Backends:
- Redis (REDIS_URL set): `_REDIS_SCRIPT` does INCR, PTTL and, on a window's first hit, PEXPIRE for
  every key of the request. Redis runs a script alone, so concurrent hits from every web process
  count exactly, and a key can never be left without an expiry.
- The database (no Redis: the embedded SQLite demo, or PostgreSQL alone as P4 runs): one
  `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` on `RateLimitCounter` for all the keys of the
  request. One statement is atomic in both SQLite and PostgreSQL, so the limit holds across every
  thread and process that shares the database. (Django's default cache here is per-process local
  memory, which would not be.)

Redis down: fail open. Creation goes on, a warning is logged, and Redis is not tried again for
`REDIS_RETRY_SECONDS`, so an outage costs one short timeout rather than one per request. This is an
abuse guard, not a correctness guard: every invariant of a payment lives in the database, so turning
shoppers away while Redis restarts would lose sales, while an abuser gains only extra open requests
(and deposit addresses) for the length of the outage. An outage that long is an outage of Celery too
(the same Redis), which is alerted on anyway.

Client IP: REMOTE_ADDR, unless `TRUSTED_PROXIES` (env STABLEPAY_TRUSTED_PROXIES) says how many proxies
in front of the app append to X-Forwarded-For; then the address that many entries from the right,
the one the outermost trusted proxy saw. Never trusted by default. IPv6 clients are counted per /64,
the block one subscriber gets.

Settings (stablepay/conf.py): RATE_LIMIT_PER_MERCHANT, RATE_LIMIT_PER_IP, RATE_LIMIT_PER_API_IP ("N/S" or
"off"; env STABLEPAY_RATE_LIMIT_PER_MERCHANT, ...), TRUSTED_PROXIES, RATE_LIMIT_REDIS_URL and the Redis
timeouts, read on every check so tests can override them (the old `STABLEPAY_RATE_LIMITS` dict still works).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.db import connection
from django.http import HttpRequest

from stablepay.conf import Rate, app_settings, parse_rate, parse_trusted_proxies

__all__ = [
    "Exceeded",
    "Rate",
    "api_create_hit",
    "checkout_create_hit",
    "client_ip",
    "parse_rate",
    "parse_trusted_proxies",
]

logger = logging.getLogger(__name__)

_PURGE_ONE_IN = 200  # the database backend sweeps ended windows on about one hit in this many


@dataclass(frozen=True)
class Exceeded:
    """A refused hit: which limit, its rate, and whole seconds until its window frees (>= 1)."""

    limit: str
    rate: Rate
    retry_after: int


@dataclass(frozen=True)
class _Limit:
    name: str
    key: str
    rate: Rate


def _rate(name: str) -> Rate | None:
    rate: Rate | None = getattr(app_settings, f"RATE_LIMIT_{name}")
    return rate


def client_ip(request: HttpRequest) -> str:
    """The client's address as the rate limits count it (see the module docstring)."""
    address = request.META.get("REMOTE_ADDR", "") or ""
    trusted = app_settings.TRUSTED_PROXIES
    if trusted > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= trusted:
            address = hops[-trusted]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def api_create_hit(*, merchant_id: int, client_ip: str) -> Exceeded | None:
    """Count one API creation for the merchant and the caller's IP; the first limit exceeded, if any."""
    return _hit(
        [
            ("per_merchant", f"merchant:{merchant_id}", _rate("PER_MERCHANT")),
            ("per_api_ip", f"api-ip:{client_ip}", _rate("PER_API_IP")),
        ]
    )


def checkout_create_hit(*, client_ip: str) -> Exceeded | None:
    """Count one storefront checkout (it creates a payment request) for the shopper's IP."""
    return _hit([("per_ip", f"ip:{client_ip}", _rate("PER_IP"))])


def _hit(candidates: Sequence[tuple[str, str, Rate | None]]) -> Exceeded | None:
    prefix = app_settings.RATE_LIMIT_KEY_PREFIX
    limits = [
        _Limit(name, f"{prefix}{rate.seconds}:{ident}", rate) for name, ident, rate in candidates if rate is not None
    ]
    if not limits:
        return None
    url = app_settings.RATE_LIMIT_REDIS_URL
    counts = _redis_hit(url, limits) if url else _database_hit(limits)
    if counts is None:
        return None  # Redis is down: fail open (see the module docstring)
    for limit, (count, ms_left) in zip(limits, counts, strict=True):
        if count > limit.rate.count:
            return Exceeded(limit.name, limit.rate, max(1, math.ceil(ms_left / 1000)))
    return None


# --- Redis -----------------------------------------------------------------------------------------

# KEYS: one counter per limit; ARGV: each one's window in milliseconds. Returns count, ms left, ...
_REDIS_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local left = redis.call('PTTL', key)
  if left < 0 then
    left = tonumber(ARGV[i])
    redis.call('PEXPIRE', key, left)
  end
  out[#out + 1] = count
  out[#out + 1] = left
end
return out
"""

_clients: dict[str, tuple[redis.Redis, Any]] = {}
_clients_lock = threading.Lock()
_redis_down_until = 0.0


def _redis_script(url: str) -> Any:
    with _clients_lock:
        if url not in _clients:
            timeout = app_settings.RATE_LIMIT_REDIS_TIMEOUT_SECONDS
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            _clients[url] = (client, client.register_script(_REDIS_SCRIPT))
        return _clients[url][1]


def _redis_hit(url: str, limits: Sequence[_Limit]) -> list[tuple[int, int]] | None:
    global _redis_down_until
    if time.monotonic() < _redis_down_until:
        return None
    try:
        flat = _redis_script(url)(keys=[x.key for x in limits], args=[x.rate.seconds * 1000 for x in limits])
    except redis.RedisError as exc:
        retry = app_settings.RATE_LIMIT_REDIS_RETRY_SECONDS
        _redis_down_until = time.monotonic() + retry
        logger.warning("rate limits skipped (failing open) for %.1f s: Redis unavailable: %s", retry, exc)
        return None
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


# --- The database (no Redis) -----------------------------------------------------------------------


def _database_hit(limits: Sequence[_Limit]) -> list[tuple[int, int]]:
    from stablepay.models import RateLimitCounter  # not at import time: the API's throttle imports this module

    # Only constants and placeholders go into the SQL text; keys and times are parameters.
    table = connection.ops.quote_name(RateLimitCounter._meta.db_table)
    now_ms = int(time.time() * 1000)
    params: list[Any] = []
    for limit in limits:
        params += [limit.key, now_ms + limit.rate.seconds * 1000]
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # The same upsert, committed without waiting for the WAL flush (set_config(..., true) lasts
        # for this statement's own transaction only, hence never inside a caller's transaction): a
        # counter lost in a crash costs nothing, and the flush makes a check ~3 ms instead of ~0.3 ms.
        rows = ", ".join(["(%s::varchar, %s::bigint)"] * len(limits))
        source = (
            f"SELECT v.key, 1, v.resets_at_ms FROM (VALUES {rows}) AS v (key, resets_at_ms) "
            f"CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
        )
    else:
        source = "VALUES " + ", ".join(["(%s, 1, %s)"] * len(limits))
    sql = (
        f"INSERT INTO {table} (key, count, resets_at_ms) {source} "
        f"ON CONFLICT (key) DO UPDATE SET "
        f"count = CASE WHEN {table}.resets_at_ms > %s THEN {table}.count + 1 ELSE 1 END, "
        f"resets_at_ms = CASE WHEN {table}.resets_at_ms > %s THEN {table}.resets_at_ms "
        f"ELSE excluded.resets_at_ms END "
        f"RETURNING key, count, resets_at_ms"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, now_ms, now_ms])
        found = {key: (int(count), int(resets_at_ms) - now_ms) for key, count, resets_at_ms in cursor.fetchall()}
        if random.randrange(_PURGE_ONE_IN) == 0:
            cursor.execute(f"DELETE FROM {table} WHERE resets_at_ms < %s", [now_ms])
    return [found[limit.key] for limit in limits]
