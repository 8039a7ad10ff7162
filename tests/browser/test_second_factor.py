"""Second factors in real Chromium (issue 16), under the site's strict CSP:

- an ops user signs in with the password, is sent to enrol, reads the key printed on the page into "an
  authenticator app" (here: django_otp.oath.TOTP), confirms the code it shows, gets ten backup codes and
  reaches the ops console;
- an ops user registers a passkey with Chromium's virtual authenticator (CDP WebAuthn: ctap2, internal,
  resident key, user verification), signs out, signs in again with the password and passes the second
  step with the passkey alone; a password-only session of that user never reaches /ops/.
Every page is screenshotted (test-artifacts/) and no page may log a CSP violation.
"""

from __future__ import annotations

import re
from base64 import b32decode
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import ARTIFACTS, CspWatch
from tests.support.ops import APPROVE, CONSOLE, PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the full-page image
    page.screenshot(path=str(ARTIFACTS / f"two-factor-{name}.png"), full_page=True)


def password_step(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/ops/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/ops/$"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def passkey_site(live_server: Any, settings: Any) -> str:
    """The live server as the passkeys' relying party: http://localhost:PORT is a secure context."""
    assert live_server.url.startswith("http://localhost:")
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    return str(live_server.url)


def test_an_ops_user_enrols_an_authenticator_app_and_reaches_the_console(page: Page, live_server: Any) -> None:
    olivia = make_user("olivia", CONSOLE, APPROVE)
    csp = CspWatch(page)
    password_step(page, live_server.url, "olivia")
    page.wait_for_url(re.compile(r"/accounts/two-factor/setup/\?next=%2Fops%2F$"))
    expect(page.locator("#must-enrol")).to_be_visible()
    expect(page.locator("#add-app svg")).to_be_visible()  # the QR, drawn on the server
    expect(page.locator("#passkey-register-button")).to_be_visible()  # django-otp-webauthn's script ran
    shoot(page, "enrol")
    key = page.locator("#app-key").inner_text()
    app = TOTP(b32decode(key.replace(" ", "")))
    page.locator("#add-app").get_by_label("Code from the app").fill(f"{app.token():06d}")
    page.get_by_role("button", name="Confirm the app").click()
    expect(page.locator("#backup-code-list li")).to_have_count(10)
    shoot(page, "backup-codes")
    csp.collect()
    page.get_by_role("link", name="I have saved them, continue").click()
    page.wait_for_url(f"{live_server.url}/ops/")
    expect(page.locator(".ops-username")).to_have_text("olivia")
    assert TOTPDevice.objects.get(user=olivia).confirmed
    assert csp.collect() == []


def test_a_passkey_is_registered_then_signs_the_second_step_in(
    browser: Browser, passkey_site: str, live_server: Any
) -> None:
    oscar = make_user("oscar", CONSOLE)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )["authenticatorId"]
        csp = CspWatch(page)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        password_step(page, passkey_site, "oscar")
        page.wait_for_url(re.compile(r"/accounts/two-factor/setup/"))
        csp.collect()
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.locator("#second-factors")).to_contain_text("1 passkey", timeout=15_000)  # reloaded, verified
        shoot(page, "passkey-registered")
        assert WebAuthnCredential.objects.filter(user=oscar, confirmed=True).count() == 1
        assert len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]) == 1
        csp.collect()
        page.get_by_role("link", name="Continue").click()
        page.wait_for_url(f"{passkey_site}/ops/")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/accounts/login/"))

        password_step(page, passkey_site, "oscar")
        page.wait_for_url(re.compile(r"/accounts/two-factor/\?next=%2Fops%2F$"))
        csp.collect()
        page.goto(f"{passkey_site}/ops/")  # the password alone does not open the console
        expect(page).to_have_url(re.compile(r"/accounts/two-factor/\?next="))
        shoot(page, "verify-with-passkey")
        csp.collect()
        page.get_by_role("button", name="Use a passkey").click()
        page.wait_for_url(f"{passkey_site}/ops/", timeout=15_000)
        expect(page.locator(".ops-username")).to_have_text("oscar")
        shoot(page, "passkey-signed-in")
        assert csp.collect() == [] and errors == []
    finally:
        context.close()


def test_the_verify_page_for_an_app_user(page: Page, live_server: Any) -> None:
    """The everyday second step: a code from the app; a wrong one first, then the right one."""
    from tests.support.auth import fresh_code, totp_device

    olivia: User = make_user("olivia", CONSOLE, APPROVE)
    device = totp_device(olivia)
    csp = CspWatch(page)
    password_step(page, live_server.url, "olivia")
    page.wait_for_url(re.compile(r"/accounts/two-factor/\?next=%2Fops%2F$"))
    wrong = next(f"{n:06d}" for n in range(100000, 999999) if f"{n:06d}" != fresh_code(device))
    page.fill("#id_code", wrong)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#code-error")).to_contain_text("That code is not right")
    shoot(page, "verify-wrong-code")
    page.wait_for_timeout(1100)  # the device waits 1 s after one wrong code
    page.fill("#id_code", fresh_code(device))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/ops/")
    assert csp.collect() == []


def test_the_lockout_page_after_five_wrong_passwords(page: Page, live_server: Any) -> None:
    make_user("olivia", CONSOLE)
    csp = CspWatch(page)
    page.goto(f"{live_server.url}/accounts/login/")
    for i in range(5):
        page.fill("#id_username", "olivia")
        page.fill("#id_password", f"guess-{i}")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        if i < 4:
            expect(page.locator(".form-errors")).to_be_visible()
            csp.collect()
    expect(page.locator("#locked-out-title")).to_have_text("Sign-in paused")
    expect(page.locator("#locked-out")).to_contain_text("Try again in 15 minutes")
    shoot(page, "locked-out")
    assert csp.collect() == []
