"""Production settings: `manage.py check --deploy` is clean with the production environment, and the
security headers, cookie flags and CSP are on real responses from gunicorn run with that environment."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User

from stablepay.models import Merchant, PaymentRequest, Token
from tests.security.gunicorn_server import Gunicorn
from tests.support.local_chain import create_request, subprocess_database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "pay.example.com"


def production_env(**overrides: str) -> dict[str, str]:
    """What a production host sets, and nothing of the test run's own environment (which relaxes
    things production must not: DJANGO_ALLOW_ASYNC_UNSAFE, high rate limits)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "DATABASE_URL") if k in os.environ}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}",
        HTTPS="true",
        LOG_LEVEL="WARNING",
        STABLEPAY_AUDIT_SIGNING_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    env.update(overrides)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_no_issues_with_the_production_environment() -> None:
    done = check_deploy(production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (1 silenced)." in done.stdout


def test_check_deploy_with_preload_opted_in_is_clean_with_nothing_silenced() -> None:
    done = check_deploy(production_env(HSTS_PRELOAD="true"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"HTTPS": "false"}, ["security.W004", "security.W008", "security.W012", "security.W016"]),
        ({"DEBUG": "true"}, ["security.W018"]),
        ({"SECRET_KEY": "short"}, ["security.W009"]),
        ({"STABLEPAY_AUDIT_SIGNING_KEY": "not-a-key"}, ["stablepay.E103"]),
    ],
)
def test_check_deploy_catches_what_production_must_not_have(overrides: dict[str, str], expected: list[str]) -> None:
    """The same command fails when the environment is not production's: the clean run above means something."""
    done = check_deploy(production_env(**overrides))
    assert done.returncode != 0
    for check_id in expected:
        assert check_id in done.stderr + done.stdout


# --- Real responses ------------------------------------------------------------------------------------


@pytest.fixture
def production_server(transactional_db: None, tmp_path: Path, collected_static: Path) -> Iterator[Gunicorn]:
    env = production_env(DATABASE_URL=subprocess_database_url(), REDIS_URL="", STATIC_ROOT=str(collected_static))
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    yield server
    server.stop()


def get(server: Gunicorn, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", **kwargs.pop("headers", {})}
    return requests.get(f"{server.url}{path}", headers=headers, allow_redirects=False, timeout=30, **kwargs)


def post(server: Gunicorn, path: str, *, cookies: dict[str, str], data: dict[str, str]) -> requests.Response:
    headers = {
        "Host": HOST,
        "X-Forwarded-Proto": "https",
        "Origin": f"https://{HOST}",
        "Referer": f"https://{HOST}{path}",
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),  # Secure cookies, sent by hand
    }
    return requests.post(f"{server.url}{path}", headers=headers, data=data, allow_redirects=False, timeout=30)


def set_cookies(response: requests.Response) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.raw.headers.getlist("Set-Cookie"):
        jar.load(header)
    return {name: jar[name] for name in jar}


def csp(response: requests.Response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


EXPECTED_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "upgrade-insecure-requests": [],
}


def _payment_request(merchant: Merchant) -> PaymentRequest:
    return create_request(merchant, order_reference="SEC-1")


def test_plain_http_is_redirected_to_https(production_server: Gunicorn) -> None:
    response = requests.get(production_server.url + "/", headers={"Host": HOST}, allow_redirects=False, timeout=30)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{HOST}/"


def test_security_headers_and_csp_on_every_kind_of_page(
    production_server: Gunicorn,
    shop_merchant: Merchant,
    hkdx: Token,
) -> None:
    payment_request = _payment_request(shop_merchant)
    pages = {
        "/": 200,
        f"/pay/{payment_request.pk}/": 200,
        f"/pay/{payment_request.pk}/status/": 200,
        "/accounts/login/": 200,
        "/merchant/": 302,
        "/api/v1/tokens/": 401,
    }
    for path, status in pages.items():
        response = get(production_server, path)
        assert response.status_code == status, path
        h = response.headers
        assert h["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", path
        assert h["X-Content-Type-Options"] == "nosniff", path
        assert h["Referrer-Policy"] == "same-origin", path
        assert h["X-Frame-Options"] == "DENY", path
        assert h["Cross-Origin-Opener-Policy"] == "same-origin", path
        policy = csp(response)
        for directive, sources in EXPECTED_CSP.items():
            assert policy[directive] == sources, (path, directive)
        assert not any("'unsafe-inline'" in s or "'unsafe-eval'" in s for s in policy.values()), path


def test_cookies_are_secure_httponly_and_samesite(production_server: Gunicorn) -> None:
    User.objects.create_user("cookie-check", password="a long enough password 42")
    login_page = get(production_server, "/accounts/login/")
    csrf = set_cookies(login_page)["csrftoken"]
    token_match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
    assert token_match is not None

    signed_in = post(
        production_server,
        "/accounts/login/",
        cookies={"csrftoken": csrf.value},
        data={
            "csrfmiddlewaretoken": token_match[1],
            "username": "cookie-check",
            "password": "a long enough password 42",
        },
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    session = set_cookies(signed_in)["sessionid"]

    switched = post(
        production_server,
        "/i18n/setlang/",
        cookies={"csrftoken": csrf.value},
        data={"csrfmiddlewaretoken": token_match[1], "language": "zh-hant", "next": "/"},
    )
    assert switched.status_code == 302
    language = set_cookies(switched)["django_language"]

    for name, morsel in (("csrftoken", csrf), ("sessionid", session), ("django_language", language)):
        assert morsel["secure"] is True, name
        assert morsel["httponly"] is True, name
        assert morsel["samesite"] == "Lax", name
        assert morsel["path"] == "/", name
