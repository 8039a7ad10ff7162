"""Issue 16 ("Logins"), the second half: a password alone no longer opens the ops console or the admin.

Staff, ops users and anyone who can change where money goes must pass a second factor
(stablepay/accounts/second_factor.py); merchant users may. Each test signs in with the real password through the
login form, then attacks or uses what comes after it: the verify page (TOTP app codes, backup codes),
the enrolment page, the throttle on wrong codes, the passkey endpoints, and the pages left open.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from stablepay.accounts.second_factor import must_have_second_factor
from stablepay.models import Merchant
from tests.support.auth import code_at, fresh_code, totp_device
from tests.support.local_chain import LocalChain
from tests.support.ops import APPROVE, CONSOLE, PASSWORD, make_user

pytestmark = pytest.mark.django_db

VERIFY, SETUP = "/accounts/two-factor/", "/accounts/two-factor/setup/"


def password_login(username: str, *, path: str = "/accounts/login/", **client_kwargs: Any) -> Client:
    client = Client(**client_kwargs)
    response = client.post(path, {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def wrong_code(device: TOTPDevice) -> str:
    now_t = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).t()
    right = {code_at(device, t) for t in range(now_t - 3, now_t + 4)}
    return next(f"{n:06d}" for n in range(1, 10**6) if f"{n:06d}" not in right)


@pytest.fixture
def olivia(db: None) -> User:
    return make_user("olivia", CONSOLE, APPROVE)


# who must -------------------------------------------------------------------------------------------------------
def test_who_must_have_a_second_factor(db: None) -> None:
    stablepay_type = ContentType.objects.get(app_label="stablepay", model="merchant")
    Permission.objects.get_or_create(
        codename="approve_payout_change", content_type=stablepay_type, defaults={"name": "Can approve"}
    )
    money = Group.objects.create(name="treasury")
    money.permissions.add(Permission.objects.get(content_type__app_label="stablepay", codename="change_fxrate"))
    grouped = make_user("grace")
    grouped.groups.add(money)
    cases = {
        make_user("pat"): False,
        make_user("vera", "stablepay.view_merchant", "stablepay.view_paymentrequest"): False,
        User.objects.create_user("stan", is_staff=True): True,
        User.objects.create_superuser("root", password=PASSWORD): True,
        make_user("nina", CONSOLE): True,
        make_user("amy", APPROVE): True,
        make_user("mark", "stablepay.change_merchant"): True,
        make_user("fran", "stablepay.add_fxrate"): True,
        make_user("cher", "stablepay.delete_chain"): True,
        make_user("toby", "stablepay.change_token"): True,
        make_user("alex", "stablepay.approve_payout_change"): True,
        User.objects.get(pk=grouped.pk): True,
    }
    assert {u.username: must_have_second_factor(u) for u in cases} == {u.username: v for u, v in cases.items()}


# an ops user with the password only ----------------------------------------------------------------------------
def test_an_ops_user_with_the_password_only_cannot_reach_the_console_or_the_admin(db: None) -> None:
    staff = make_user("olivia", CONSOLE, APPROVE)
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    client = password_login("olivia")
    for path in ("/ops/", "/ops/actions/", "/admin/", "/admin/auth/user/", "/accounts/password_change/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"{SETUP}?next={path.replace('/', '%2F')}", path
    assert client.post("/ops/bulk/", {"action": "void"}).status_code == 302  # a POST does not slip through
    totp_device(staff)
    assert client.get("/ops/")["Location"] == f"{VERIFY}?next=%2Fops%2F"
    admin = password_login("olivia", path="/admin/login/?next=/admin/")
    assert admin.get("/admin/")["Location"] == f"{VERIFY}?next=%2Fadmin%2F"


def test_a_right_app_code_lets_the_ops_user_in_on_a_new_session_key(olivia: User) -> None:
    device = totp_device(olivia)
    client = password_login("olivia")
    before = client.cookies["sessionid"].value
    page = client.get(VERIFY, {"next": "/ops/"})
    assert page.status_code == 200 and b'name="code"' in page.content
    response = client.post(VERIFY, {"code": fresh_code(device), "next": "/ops/"})
    assert response.status_code == 302 and response["Location"] == "/ops/"
    assert client.cookies["sessionid"].value != before  # no session fixation across the step up
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/ops/").status_code == 200


def test_a_wrong_code_is_refused_and_repeated_wrong_codes_are_throttled(olivia: User) -> None:
    device = totp_device(olivia)
    client = password_login("olivia")
    first = client.post(VERIFY, {"code": wrong_code(device), "next": "/ops/"})
    assert first.status_code == 400 and "That code is not right" in first.content.decode()
    second = client.post(VERIFY, {"code": wrong_code(device), "next": "/ops/"})
    assert second.status_code == 400 and "Too many wrong codes" in second.content.decode()
    # While throttled even the right code is refused: guessing is slowed to 1, 2, 4, 8 ... s between tries.
    right = client.post(VERIFY, {"code": fresh_code(device), "next": "/ops/"})
    assert right.status_code == 400 and "Too many wrong codes" in right.content.decode()
    assert client.get("/ops/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # refused tries while throttled are not even checked
    for _ in range(9):  # ten failures in a row: the tenth try would have to wait 2^9 s
        TOTPDevice.objects.filter(pk=device.pk).update(
            throttling_failure_timestamp=device.throttling_failure_timestamp - timedelta(days=1)
        )
        device.refresh_from_db()
        client.post(VERIFY, {"code": wrong_code(device)})
        device.refresh_from_db()
    assert device.throttling_failure_count == 10
    page = client.post(VERIFY, {"code": fresh_code(device)}).content.decode()
    seconds = int(re.search(r"Wait (\d+) seconds", page)[1])  # type: ignore[index]
    assert 500 < seconds <= 512
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=device.throttling_failure_timestamp - timedelta(seconds=513)
    )
    assert client.post(VERIFY, {"code": fresh_code(device), "next": "/ops/"})["Location"] == "/ops/"
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_a_backup_code_works_once(olivia: User) -> None:
    totp_device(olivia)
    backup = StaticDevice.objects.create(user=olivia, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=backup, token="abcd2345")
    first = password_login("olivia")
    assert first.post(VERIFY, {"code": "ABCD 2345", "next": "/ops/"})["Location"] == "/ops/"
    assert first.get("/ops/").status_code == 200
    second = password_login("olivia")
    again = second.post(VERIFY, {"code": "abcd2345", "next": "/ops/"})
    assert again.status_code == 400
    assert second.get("/ops/").status_code == 302


def test_next_never_leaves_the_site(olivia: User) -> None:
    device = totp_device(olivia)
    client = password_login("olivia")
    response = client.post(VERIFY, {"code": fresh_code(device), "next": "https://evil.example/ops/"})
    assert response["Location"] == "/"


# enrolment --------------------------------------------------------------------------------------------------------
def test_an_ops_user_without_a_device_enrols_an_app_with_the_key_on_the_page(olivia: User) -> None:
    client = password_login("olivia")
    assert client.get("/ops/")["Location"] == f"{SETUP}?next=%2Fops%2F"
    page = client.get(SETUP, {"next": "/ops/"})
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "Add a passkey" in html
    key = re.search(r'<code class="mono app-key" id="app-key">([A-Z2-7 ]+)</code>', html)[1]  # type: ignore[index]
    from base64 import b32decode

    totp = TOTP(b32decode(key.replace(" ", "")))
    done = client.post(SETUP, {"code": f"{totp.token():06d}", "next": "/ops/"})
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", done.content.decode())
    assert done.status_code == 200 and len(set(codes)) == 10
    assert client.get("/ops/").status_code == 200
    assert TOTPDevice.objects.get(user=olivia, confirmed=True)
    # each backup code signs in once, on a later session
    later = password_login("olivia")
    assert later.post(VERIFY, {"code": codes[3], "next": "/ops/"})["Location"] == "/ops/"


def test_a_password_alone_cannot_add_a_device_to_an_account_that_has_one(olivia: User) -> None:
    """Else a stolen password would enrol the thief's own app or passkey and walk past the first device."""
    totp_device(olivia)
    client = password_login("olivia")
    assert client.get(SETUP)["Location"].startswith(VERIFY)
    assert client.post(SETUP, {"code": "123456"})["Location"].startswith(VERIFY)
    assert client.post("/accounts/two-factor/backup-codes/")["Location"].startswith(VERIFY)
    begin = client.post("/accounts/webauthn/registration/begin/")
    assert begin.status_code == 403
    assert TOTPDevice.objects.filter(user=olivia).count() == 1


def test_passkeys_are_a_second_factor_only_never_a_way_in(db: None) -> None:
    assert Client().post("/accounts/webauthn/authentication/begin/").status_code == 403


# merchant users ----------------------------------------------------------------------------------------------
def test_a_merchant_user_without_a_device_needs_only_the_password(local_chain: LocalChain, merchant: Merchant) -> None:
    make_user("mia", merchant=merchant)
    client = password_login("mia")
    assert client.get("/merchant/").status_code == 200
    assert client.get("/merchant/settings/").status_code == 200
    assert client.get(SETUP).status_code == 200  # optional enrolment is there


def test_a_merchant_user_with_a_device_must_use_it(local_chain: LocalChain, merchant: Merchant) -> None:
    mia = make_user("mia", merchant=merchant)
    device = totp_device(mia)
    client = password_login("mia")
    assert client.get("/merchant/")["Location"] == f"{VERIFY}?next=%2Fmerchant%2F"
    assert client.post(VERIFY, {"code": fresh_code(device), "next": "/merchant/"})["Location"] == "/merchant/"
    assert client.get("/merchant/").status_code == 200


# what stays open --------------------------------------------------------------------------------------------------
def test_public_pages_and_the_api_are_unaffected_by_an_unverified_session(
    olivia: User, local_chain: LocalChain, api: APIClient
) -> None:
    client = password_login("olivia")
    for path in ("/", "/healthz", "/store/hk/", "/accounts/login/", SETUP):
        assert client.get(path).status_code in (200, 404), path
        assert not client.get(path).get("Location", "").startswith(VERIFY), path
    api.force_login(olivia)  # a session cookie beside the API key changes nothing
    assert api.get("/api/v1/tokens/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 200  # signed out (registration/logged_out.html)
    assert client.get("/ops/")["Location"].startswith("/accounts/login/")


def test_the_second_factor_pages_send_the_strict_csp_and_speak_traditional_chinese(olivia: User) -> None:
    totp_device(olivia)
    client = password_login("olivia", HTTP_ACCEPT_LANGUAGE="zh-HK")
    verify = client.get(VERIFY)
    html = verify.content.decode()
    assert "驗證器應用程式的驗證碼" in html and "確認是你本人" in html
    assert "Code from your authenticator app" not in html and "Confirm it is you" not in html
    policy = verify["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    make_user("nina", CONSOLE)
    page = password_login("nina", HTTP_ACCEPT_LANGUAGE="zh-HK").get(SETUP)
    assert "兩步驟登入" in page.content.decode() and "script-src 'self'" in page["Content-Security-Policy"]
    assert "<script>" not in page.content.decode() and " style=" not in page.content.decode()


# the demo ---------------------------------------------------------------------------------------------------
def test_the_demo_gives_its_ops_users_the_published_key_and_prints_todays_code(
    db: None, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import CommandError, call_command

    from shop.management.commands.demo import Command as Demo

    ops = make_user("ops", CONSOLE, APPROVE)
    User.objects.filter(pk=ops.pk).update(is_staff=True)
    make_user("merchant")
    Demo()._seed_second_factors()
    Demo()._seed_second_factors()  # idempotent
    assert TOTPDevice.objects.filter(user=ops).count() == 1
    assert not TOTPDevice.objects.filter(user__username="merchant").exists()
    with pytest.raises(CommandError, match="demo only"):
        call_command("stablepay_demo_code", "ops")
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("stablepay_demo_code", "merchant")
    capsys.readouterr()
    call_command("stablepay_demo_code", "ops")
    code = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[0-9]{6}", code)
    client = password_login("ops")
    assert client.post(VERIFY, {"code": code, "next": "/ops/"})["Location"] == "/ops/"
    assert client.get("/ops/").status_code == 200
