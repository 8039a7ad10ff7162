"""Issue 16 ("Logins"), the password half: the finding was 60 wrong passwords in 25 s at /accounts/login/ and
20 at /admin/login/, all answered, then the right one signed in. Here each attack is run again and must
now be refused by django-axes (stablepay/accounts/lockout.py, settings in shop/settings.py):

- a user name is locked after 5 failures, from any address, at both login forms; the right password is
  refused with the lockout page (429, Retry-After) until the cool-off (15 minutes) has passed;
- a client address is locked after 50 failures across user names (password spraying), whatever
  X-Forwarded-For it sends while no proxy is trusted; an IPv6 client counts as its /64;
- a successful login clears that user name's failures, and only its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.support.ops import PASSWORD, make_user

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.23"


def attempt(client: Client, path: str, username: str, password: str, *, ip: str = ATTACKER, **extra: Any) -> Any:
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def signed_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


def assert_locked_out(response: Any) -> None:
    assert response.status_code == 429, response.status_code
    html = response.content.decode()
    assert "Sign-in paused" in html and "Too many failed sign-in attempts" in html
    assert int(response["Retry-After"]) == 15 * 60
    assert "default-src 'self'" in response["Content-Security-Policy"]


@pytest.fixture
def olivia(db: None) -> User:
    return make_user("olivia", "stablepay.ops_console", "stablepay.ops_approve")


def test_sixty_wrong_passwords_at_the_login_form_then_the_right_one_is_refused(olivia: User) -> None:
    client = Client()
    statuses = [attempt(client, "/accounts/login/", "olivia", f"guess-{i}").status_code for i in range(60)]
    assert statuses[:4] == [200] * 4  # the form again, "did not match"
    assert set(statuses[4:]) == {429}  # the 5th failure locks the name
    right = attempt(client, "/accounts/login/", "olivia", PASSWORD)
    assert_locked_out(right)
    assert signed_in_as(client) is None
    assert client.get("/ops/").status_code == 302


def test_twenty_wrong_passwords_at_the_admin_login_then_the_right_one_is_refused(db: None) -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    client = Client()
    statuses = [attempt(client, "/admin/login/", "root", f"guess-{i}").status_code for i in range(20)]
    assert statuses[:4] == [200] * 4 and set(statuses[4:]) == {429}
    right = attempt(client, "/admin/login/?next=/admin/", "root", PASSWORD)
    assert_locked_out(right)
    assert signed_in_as(client) is None
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_the_user_name_stays_locked_from_another_address(olivia: User) -> None:
    for i in range(5):
        attempt(Client(), "/accounts/login/", "olivia", f"guess-{i}")
    elsewhere = Client()
    assert_locked_out(attempt(elsewhere, "/accounts/login/", "olivia", PASSWORD, ip=ELSEWHERE))
    assert signed_in_as(elsewhere) is None


def test_one_address_spraying_many_names_is_locked_out_whatever_it_forwards(olivia: User) -> None:
    """50 failures from one address, never more than 4 per name (under the per-name limit), each with a
    different X-Forwarded-For (not trusted: STABLEPAY_TRUSTED_PROXIES is 0). Then a real user with the right
    password from that address is refused; from another address the same login works."""
    client = Client()
    statuses = []
    for n in range(50):
        name = f"user{n // 4}"
        response = attempt(client, "/accounts/login/", name, "Summer2026!", HTTP_X_FORWARDED_FOR=f"10.9.{n}.1")
        statuses.append(response.status_code)
    assert set(statuses[:-1]) == {200} and statuses[-1] == 429
    assert_locked_out(attempt(Client(), "/accounts/login/", "olivia", PASSWORD))
    other = Client()
    assert attempt(other, "/accounts/login/", "olivia", PASSWORD, ip=ELSEWHERE).status_code == 302
    assert signed_in_as(other) == "olivia"


def test_an_ipv6_client_counts_as_its_slash_64(olivia: User) -> None:
    for n in range(50):
        attempt(Client(), "/accounts/login/", f"user{n // 4}", "Summer2026!", ip=f"2001:db8:5:7::{n + 1:x}")
    assert_locked_out(attempt(Client(), "/accounts/login/", "olivia", PASSWORD, ip="2001:db8:5:7:abcd::1"))
    assert attempt(Client(), "/accounts/login/", "olivia", PASSWORD, ip="2001:db8:5:8::1").status_code == 302


def test_the_lockout_ends_after_the_cool_off(olivia: User, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client()
    for i in range(5):
        attempt(client, "/accounts/login/", "olivia", f"guess-{i}")
    assert_locked_out(attempt(client, "/accounts/login/", "olivia", PASSWORD))
    fourteen_minutes_on = timezone.now() + timedelta(minutes=14)
    monkeypatch.setattr("axes.handlers.proxy.now", lambda: fourteen_minutes_on)
    assert_locked_out(attempt(client, "/accounts/login/", "olivia", PASSWORD))  # and the wait starts again
    later = fourteen_minutes_on + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr("axes.handlers.proxy.now", lambda: later)
    assert attempt(client, "/accounts/login/", "olivia", PASSWORD).status_code == 302
    assert signed_in_as(client) == "olivia"


def test_a_successful_login_clears_the_users_failures(olivia: User) -> None:
    for _ in range(3):  # 4 wrong, then right: 12 failures in all, never 5 in a row
        client = Client()
        for i in range(4):
            assert attempt(client, "/accounts/login/", "olivia", f"guess-{i}").status_code == 200
        assert attempt(client, "/accounts/login/", "olivia", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="olivia").exists()


def test_signing_in_to_ones_own_account_does_not_clear_failures_against_another(olivia: User) -> None:
    """Axes alone would clear the whole address's failures on any success from it."""
    make_user("mallory")
    client = Client()
    for i in range(4):
        attempt(client, "/accounts/login/", "olivia", f"guess-{i}")
    assert attempt(client, "/accounts/login/", "mallory", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    attempt(client, "/accounts/login/", "olivia", "guess-5")
    assert_locked_out(attempt(client, "/accounts/login/", "olivia", PASSWORD))


def test_the_lockout_page_speaks_traditional_chinese(olivia: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-HK")
    for i in range(5):
        attempt(client, "/accounts/login/", "olivia", f"guess-{i}")
    response = attempt(client, "/accounts/login/", "olivia", PASSWORD)
    assert response.status_code == 429
    html = response.content.decode()
    assert 'lang="zh-hant"' in html and "登入已暫停" in html
    assert "Sign-in paused" not in html and "Too many failed" not in html
