"""Rate limits on payment-request creation (stablepay/ratelimit.py): real Redis (logical db 9), real
PostgreSQL, real concurrent HTTP requests against a live server, a throwaway Redis that is stopped
mid-test, and a bad setting stopping start-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from stablepay import ratelimit
from stablepay.models import Merchant, PaymentRequest, RateLimitCounter
from tests.security.gunicorn_server import Gunicorn
from tests.support.local_chain import LocalChain, subprocess_database_url
from tests.support.services import free_port, redis_url

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 9  # this suite's own logical database
CREATE_URL = "/api/v1/payment-requests/"


def _db9_url() -> str:
    return urlunsplit(urlsplit(redis_url())._replace(path=f"/{REDIS_DB}"))


def _body(reference: str) -> dict[str, Any]:
    return {"order_reference": reference, "amount": "10.00", "currency": "HKD", "chain_id": 31337, "token": "HKDX"}


@pytest.fixture(autouse=True)
def _fresh_limiter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Db 9 emptied, and the fail-open pause of an earlier test forgotten."""
    redis.Redis.from_url(_db9_url()).flushdb()
    monkeypatch.setattr(ratelimit, "_redis_down_until", 0.0)
    yield
    redis.Redis.from_url(_db9_url()).flushdb()


def limits(settings: Any, *, redis_url: str | None = None, **rates: str) -> None:
    """Set the limits for a test: low ones, Redis db 9 unless told otherwise ("" = the database)."""
    config = {
        "RATE_LIMIT_PER_MERCHANT": None,
        "RATE_LIMIT_PER_IP": None,
        "RATE_LIMIT_PER_API_IP": None,
        "TRUSTED_PROXIES": 0,
        "RATE_LIMIT_REDIS_URL": _db9_url() if redis_url is None else redis_url,
        "RATE_LIMIT_REDIS_TIMEOUT_SECONDS": 0.25,
        "RATE_LIMIT_REDIS_RETRY_SECONDS": 5.0,
        "RATE_LIMIT_KEY_PREFIX": "stablepay:rl:test:",
    }
    config.update({f"RATE_LIMIT_{name.upper()}": ratelimit.parse_rate(v, variable=name) for name, v in rates.items()})
    settings.STABLEPAY = {**settings.STABLEPAY, **config}


def configure(settings: Any, **options: Any) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, **options}


# --- Configuration ---------------------------------------------------------------------------------


def test_rates_parse_and_bad_values_name_the_variable() -> None:
    assert ratelimit.parse_rate("600/60", variable="X") == ratelimit.Rate(600, 60)
    assert ratelimit.parse_rate(" 20 / 1 ", variable="X") == ratelimit.Rate(20, 1)
    assert ratelimit.parse_rate("off", variable="X") is None
    assert ratelimit.parse_rate("OFF", variable="X") is None
    for bad in ("", "600", "600/", "/60", "0/60", "10/0", "-1/60", "1.5/60", "ten/60", "600/60/1", "on"):
        with pytest.raises(ImproperlyConfigured, match="STABLEPAY_RATE_LIMIT_PER_IP"):
            ratelimit.parse_rate(bad, variable="STABLEPAY_RATE_LIMIT_PER_IP")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STABLEPAY_RATE_LIMIT_PER_MERCHANT", "600 per minute"),
        ("STABLEPAY_RATE_LIMIT_PER_IP", "20/0"),
        ("STABLEPAY_RATE_LIMIT_PER_API_IP", "lots"),
        ("STABLEPAY_TRUSTED_PROXIES", "-1"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    env = {**os.environ, variable: value}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert f"{variable}={value!r}" in done.stderr
    assert "ImproperlyConfigured" in done.stderr


def test_production_defaults_are_on() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEPAY_RATE_LIMIT")}
    code = (
        "from stablepay.conf import app_settings as c; "
        "print(c.RATE_LIMIT_PER_MERCHANT, c.RATE_LIMIT_PER_IP, c.RATE_LIMIT_PER_API_IP, c.TRUSTED_PROXIES)"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split() == ["6000/60", "60/60", "12000/60", "0"]


# --- Client IP -------------------------------------------------------------------------------------


def test_client_ip_ignores_x_forwarded_for_unless_proxies_are_trusted(settings: Any, rf: Any) -> None:
    limits(settings)
    spoofed = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9")
    assert ratelimit.client_ip(spoofed) == "10.0.0.5"
    configure(settings, TRUSTED_PROXIES=1)  # nginx appends the address it saw
    assert ratelimit.client_ip(spoofed) == "203.0.113.9"
    configure(settings, TRUSTED_PROXIES=2)  # CDN, then nginx
    assert ratelimit.client_ip(spoofed) == "1.1.1.1"
    configure(settings, TRUSTED_PROXIES=3)  # fewer hops than proxies: not through them all
    assert ratelimit.client_ip(spoofed) == "10.0.0.5"
    v6 = rf.get("/", REMOTE_ADDR="2001:db8:1:2:aaaa::1")
    assert ratelimit.client_ip(v6) == "2001:db8:1:2::/64"  # one subscriber's block counts as one client


# --- The API ---------------------------------------------------------------------------------------


def test_api_answers_429_with_retry_after_and_names_the_limit(
    settings: Any, api: APIClient, other_api: APIClient
) -> None:
    limits(settings, per_merchant="3/60")
    codes = [api.post(CREATE_URL, _body(f"M-{i}"), format="json").status_code for i in range(3)]
    assert codes == [201, 201, 201]
    refused = api.post(CREATE_URL, _body("M-3"), format="json")
    assert refused.status_code == 429
    assert 55 <= int(refused["Retry-After"]) <= 60
    body = refused.json()
    assert body["limit"] == "per_merchant"
    assert body["rate"] == "3/60"
    assert body["retry_after"] == int(refused["Retry-After"])
    assert "per_merchant" in body["detail"]
    assert PaymentRequest.objects.count() == 3  # the refused one created nothing
    # Keyed by merchant: another merchant, same address, is not affected; reads are never limited.
    assert other_api.post(CREATE_URL, _body("O-1"), format="json").status_code == 201
    assert api.get(CREATE_URL).status_code == 200


def test_api_per_caller_ip_counts_across_merchant_keys(settings: Any, api: APIClient, other_api: APIClient) -> None:
    limits(settings, per_merchant="100/60", per_api_ip="2/60")
    assert api.post(CREATE_URL, _body("A-1"), format="json", REMOTE_ADDR="198.51.100.7").status_code == 201
    assert other_api.post(CREATE_URL, _body("B-1"), format="json", REMOTE_ADDR="198.51.100.7").status_code == 201
    refused = other_api.post(CREATE_URL, _body("B-2"), format="json", REMOTE_ADDR="198.51.100.7")
    assert refused.status_code == 429
    assert refused.json()["limit"] == "per_api_ip"
    assert api.post(CREATE_URL, _body("A-2"), format="json", REMOTE_ADDR="198.51.100.8").status_code == 201


@pytest.mark.parametrize("backend", ["redis", "database"])
def test_the_window_frees_after_retry_after(settings: Any, api: APIClient, backend: str) -> None:
    limits(settings, per_merchant="2/2", redis_url=None if backend == "redis" else "")
    assert [api.post(CREATE_URL, _body(f"W-{i}"), format="json").status_code for i in range(3)] == [201, 201, 429]
    refused = api.post(CREATE_URL, _body("W-3"), format="json")
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 2
    time.sleep(wait + 0.05)
    assert api.post(CREATE_URL, _body("W-4"), format="json").status_code == 201


def test_the_openapi_schema_lists_the_429(api: APIClient) -> None:
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post = schema["paths"]["/api/v1/payment-requests/"]["post"]
    assert "429" in post["responses"]
    assert "Retry-After" in post["responses"]["429"]["headers"]
    assert set(schema["components"]["schemas"]["RateLimitedOut"]["required"]) >= {"limit", "retry_after"}


# --- Atomic counting under real concurrency --------------------------------------------------------


def _race(n: int, call: Callable[[int], int]) -> Counter[int]:
    """n threads released at once by a barrier, each making one call; the tally of its results."""
    barrier = threading.Barrier(n)
    results: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        result = call(i)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == n
    return Counter(results)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["redis", "database"])
def test_fifty_concurrent_http_creations_against_a_limit_of_ten(
    local_chain: LocalChain, backend: str, tmp_path: Path
) -> None:
    """50 shoppers' worth of creations at once, through gunicorn's 3 processes, against 10/60 per
    merchant: exactly 10 are created, 40 answer 429. Redis db 9, or the database with no Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEPAY_RATE_LIMIT")}
    env.update(
        DATABASE_URL=subprocess_database_url(),
        REDIS_URL=_db9_url() if backend == "redis" else "",
        STABLEPAY_RATE_LIMIT_PER_MERCHANT="10/60",
        STABLEPAY_RATE_LIMIT_PER_API_IP="off",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    headers = {"Authorization": f"Bearer {local_chain.api_keys['acme']}"}

    def create(i: int) -> int:
        response = requests.post(f"{server.url}{CREATE_URL}", json=_body(f"R-{i}"), headers=headers, timeout=60)
        if response.status_code == 429:
            assert response.json()["limit"] == "per_merchant"
            assert 1 <= int(response.headers["Retry-After"]) <= 60
        return response.status_code

    try:
        tally = _race(50, create)
    finally:
        server.stop()
    assert tally == Counter({201: 10, 429: 40})
    assert PaymentRequest.objects.filter(merchant__slug="acme").count() == 10
    key = f"stablepay:rl:60:merchant:{Merchant.objects.get(slug='acme').pk}"
    if backend == "redis":
        assert redis.Redis.from_url(_db9_url()).get(key) == b"50"
    else:
        assert RateLimitCounter.objects.get(key=key).count == 50


@pytest.mark.django_db(transaction=True)
def test_database_counter_is_atomic_across_threads_with_their_own_connections(settings: Any) -> None:
    limits(settings, per_ip="10/60", redis_url="")

    def hit(_: int) -> int:
        try:
            return 0 if ratelimit.checkout_create_hit(client_ip="192.0.2.1") is None else 1
        finally:
            connection.close()

    assert _race(50, hit) == Counter({0: 10, 1: 40})
    row = RateLimitCounter.objects.get(key="stablepay:rl:test:60:ip:192.0.2.1")
    assert row.count == 50


SQLITE_RACE = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"
django.setup()
from multiprocessing import Barrier, Process, Queue
from django.db import connection
from stablepay import ratelimit

def worker(barrier, out):
    connection.close()
    barrier.wait()
    allowed = sum(ratelimit.checkout_create_hit(client_ip="192.0.2.9") is None for _ in range(10))
    out.put(allowed)

if __name__ == "__main__":
    barrier, out = Barrier(5), Queue()
    procs = [Process(target=worker, args=(barrier, out)) for _ in range(5)]
    for p in procs: p.start()
    total = sum(out.get(timeout=60) for _ in procs)
    for p in procs: p.join()
    print(total)
"""


def test_database_counter_is_atomic_across_processes_on_sqlite(tmp_path: Path) -> None:
    """The embedded demo (SQLite, no Redis): 5 processes x 10 hits against 7/60 allow exactly 7."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        STABLEPAY_RATE_LIMIT_PER_IP="7/60",
        PYTHONPATH=str(REPO_ROOT),
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "stablepay", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    script = tmp_path / "race.py"
    script.write_text(SQLITE_RACE)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "7"


# --- The storefront checkout ------------------------------------------------------------------------


def _fill_cart(client: Client, product: Any) -> None:
    client.post(reverse("shop:cart_add", args=["hk"]), {"product_id": product.pk, "quantity": 1})


def test_checkout_from_one_address_is_limited_with_a_clear_page(
    settings: Any,
    shopper: Client,
    egg_rolls: Any,
    hkdx: Any,
) -> None:
    limits(settings, per_ip="2/60")
    url = reverse("shop:checkout", args=["hk"])
    for _ in range(2):
        _fill_cart(shopper, egg_rolls)
        placed = shopper.post(url, {"payment_option": "31337:HKDX"}, REMOTE_ADDR="203.0.113.50")
        assert placed.status_code == 302 and "/pay/" in placed["Location"]
    _fill_cart(shopper, egg_rolls)
    refused = shopper.post(url, {"payment_option": "31337:HKDX"}, REMOTE_ADDR="203.0.113.50")
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 55 <= wait <= 60
    page = refused.content.decode()
    assert "Too many checkouts from your network just now" in page
    assert f"wait {wait} seconds" in page
    assert PaymentRequest.objects.count() == 2
    # Viewing the checkout page is not counted, and another address still checks out.
    assert shopper.get(url, REMOTE_ADDR="203.0.113.50").status_code == 200
    assert shopper.post(url, {"payment_option": "31337:HKDX"}, REMOTE_ADDR="203.0.113.51").status_code == 302


def test_checkout_refusal_speaks_traditional_chinese(
    settings: Any,
    shopper: Client,
    egg_rolls: Any,
    hkdx: Any,
) -> None:
    limits(settings, per_ip="1/60")
    url = reverse("shop:checkout", args=["hk"])
    _fill_cart(shopper, egg_rolls)
    assert shopper.post(url, {"payment_option": "31337:HKDX"}).status_code == 302
    _fill_cart(shopper, egg_rolls)
    refused = shopper.post(url, {"payment_option": "31337:HKDX"}, HTTP_ACCEPT_LANGUAGE="zh-HK")
    assert refused.status_code == 429
    assert "結帳次數過多" in refused.content.decode()


# --- Redis down: fail open ----------------------------------------------------------------------------


NO_DISK = ["--save", "", "--appendonly", "no", "--daemonize", "yes"]


class ThrowawayRedis:
    def __init__(self, tmp: Path) -> None:
        self.port, self.dir = free_port(), tmp

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir), *NO_DISK],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], check=False, capture_output=True)

    def commands(self) -> Counter[str]:
        """How often the server has run each command (those a script runs included)."""
        stats = redis.Redis(port=self.port).info("commandstats")
        return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()})


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_down_fails_open_with_a_warning_and_recovers(
    settings: Any, api: APIClient, own_redis: ThrowawayRedis, caplog: pytest.LogCaptureFixture
) -> None:
    limits(settings, per_merchant="2/60", redis_url=own_redis.url)
    configure(settings, RATE_LIMIT_REDIS_RETRY_SECONDS=1.0)
    assert [api.post(CREATE_URL, _body(f"D-{i}"), format="json").status_code for i in range(3)] == [201, 201, 429]

    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="stablepay.ratelimit"):
        started = time.monotonic()
        codes = [api.post(CREATE_URL, _body(f"D-down-{i}"), format="json").status_code for i in range(4)]
        elapsed = time.monotonic() - started
    assert codes == [201, 201, 201, 201]  # over the limit, but the limiter is down: creation goes on
    warnings = [r for r in caplog.records if r.name == "stablepay.ratelimit"]
    assert len(warnings) == 1  # one warning, then no retries during the pause
    assert "failing open" in warnings[0].getMessage()
    assert elapsed < 5, "an unreachable Redis must not hold checkouts up"

    own_redis.start()  # empty again (no persistence)
    time.sleep(1.1)  # the pause ends
    assert [api.post(CREATE_URL, _body(f"D-up-{i}"), format="json").status_code for i in range(3)] == [201, 201, 429]


def test_one_redis_round_trip_per_check_and_little_time(settings: Any, own_redis: ThrowawayRedis) -> None:
    """Both API limits in one script call: exactly one Redis command per creation (after the first
    call loads the script), and well under a millisecond each on loopback."""
    limits(settings, per_merchant="1000000/60", per_api_ip="1000000/60", redis_url=own_redis.url)
    assert ratelimit.api_create_hit(merchant_id=1, client_ip="192.0.2.1") is None  # loads the script
    before = own_redis.commands()
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        assert ratelimit.api_create_hit(merchant_id=1, client_ip="192.0.2.1") is None
    per_call_ms = (time.perf_counter() - started) * 1000 / n
    ran = own_redis.commands() - before
    # One EVALSHA per creation (the round trip); the INCR and PTTL for its two keys run inside it.
    assert {k: ran[k] for k in ("evalsha", "eval", "incr", "pttl", "pexpire")} == {
        "evalsha": n,
        "eval": 0,
        "incr": 2 * n,
        "pttl": 2 * n,
        "pexpire": 0,
    }
    keys = redis.Redis.from_url(own_redis.url).keys("stablepay:rl:test:*")
    assert sorted(keys) == [b"stablepay:rl:test:60:api-ip:192.0.2.1", b"stablepay:rl:test:60:merchant:1"]
    ttl = redis.Redis.from_url(own_redis.url).pttl("stablepay:rl:test:60:merchant:1")
    assert 0 < ttl <= 60_000
    print(f"\nRedis rate-limit check: {per_call_ms:.3f} ms per creation (2 limits, 1 round trip)")
    assert per_call_ms < 5


@pytest.mark.django_db(transaction=True)
def test_database_backend_cost(settings: Any) -> None:
    limits(settings, per_merchant="1000000/60", per_api_ip="1000000/60", redis_url="")
    n = 500
    started = time.perf_counter()
    for _ in range(n):
        assert ratelimit.api_create_hit(merchant_id=1, client_ip="192.0.2.1") is None
    per_call_ms = (time.perf_counter() - started) * 1000 / n
    print(f"\nDatabase rate-limit check: {per_call_ms:.3f} ms per creation (2 limits, 1 statement)")
    assert RateLimitCounter.objects.get(key="stablepay:rl:test:60:merchant:1").count == n
    with connection.cursor() as cursor:  # the asynchronous commit was the counter's own, nothing else's
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    assert per_call_ms < 20


def test_off_means_no_counting(settings: Any, own_redis: ThrowawayRedis) -> None:
    limits(settings, redis_url=own_redis.url)  # every limit off
    before = own_redis.commands()
    for _ in range(50):
        assert ratelimit.api_create_hit(merchant_id=1, client_ip="192.0.2.1") is None
        assert ratelimit.checkout_create_hit(client_ip="192.0.2.1") is None
    ran = own_redis.commands() - before
    assert ran["evalsha"] == ran["eval"] == ran["incr"] == 0
    assert redis.Redis.from_url(own_redis.url).dbsize() == 0
