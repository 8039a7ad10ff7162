"""Where money goes needs two people (issue 16 part 3), in real Chromium: a staff user replaces a merchant's
xpub in the admin and is told it is only proposed; a second person opens the ops console's changes page,
sees the old and new xpub with each one's first deposit address, and approves it. Screenshots go to
test-artifacts/ (ops-changes-*.png)."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from stablepay.models import ChangeProposal, ChangeState, Merchant
from tests.support.auth import pass_second_factor_if_required
from tests.support.browser import shoot
from tests.support.local_chain import MERCHANT_MNEMONIC, LocalChain, account_xpub, mnemonic_address
from tests.support.ops import CONSOLE, PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_WALLET = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"


def sign_in(page: Page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={quote(next_path)}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor_if_required(page, username)
    page.wait_for_url(re.compile(re.escape(next_path) + r"$"))


def test_an_xpub_change_is_proposed_in_the_admin_and_approved_by_a_second_person(
    page: Page,
    live_server,  # type: ignore[no-untyped-def]
    local_chain: LocalChain,
) -> None:
    merchant = Merchant.objects.get(slug="acme")
    adam = make_user("adam", "stablepay.change_merchant", "stablepay.view_merchant")
    User.objects.filter(pk=adam.pk).update(is_staff=True)
    make_user("tara", "stablepay.approve_change", CONSOLE)
    new_xpub = account_xpub(NEW_WALLET)

    change_page = f"/admin/stablepay/merchant/{merchant.pk}/change/"
    sign_in(page, live_server.url, "adam", change_page)
    page.fill("#id_xpub", new_xpub)
    page.fill("#id_change_note", "The merchant moved to a new hardware wallet (ticket 4711).")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("Not applied yet")
    merchant.refresh_from_db()
    assert merchant.xpub == account_xpub(MERCHANT_MNEMONIC)
    proposal = ChangeProposal.objects.get(merchant=merchant, state=ChangeState.PENDING)

    # The second person, in another browser context.
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")  # type: ignore[union-attr]
    try:
        tara = context.new_page()
        sign_in(tara, live_server.url, "tara", "/ops/changes/")
        expect(tara.locator("#nav-changes")).to_contain_text("1")
        card = tara.locator(f"#change-{proposal.pk}")
        expect(card).to_contain_text(mnemonic_address(MERCHANT_MNEMONIC, 0))
        expect(card).to_contain_text(mnemonic_address(NEW_WALLET, 0))
        expect(card).to_contain_text("ops:adam")
        expect(card).to_contain_text("new hardware wallet")
        shoot(tara, "changes-pending")
        tara.fill(f"#id_note_{proposal.pk}", "Called the merchant on the number we hold; first address matches.")
        tara.locator(f"#approve-change-{proposal.pk}").click()
        expect(tara.locator(".messages")).to_contain_text(f"Change #{proposal.pk} approved and applied")
        expect(tara.locator(f"#recent-{proposal.pk}")).to_contain_text("applied")
        shoot(tara, "changes-applied")
    finally:
        context.close()
    merchant.refresh_from_db()
    assert merchant.xpub == new_xpub

    # The merchant's own user sees it on the settings page, on a phone too.
    make_user("mia", merchant=merchant)
    phone = page.context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 844}, locale="en-GB", device_scale_factor=2
    )
    try:
        mia = phone.new_page()
        sign_in(mia, live_server.url, "mia", "/merchant/settings/")
        section = mia.locator("#money-changes")
        expect(section.locator(f"#money-change-{proposal.pk}")).to_contain_text(mnemonic_address(NEW_WALLET, 0))
        expect(section.locator(f"#money-change-{proposal.pk}")).to_contain_text("applied")
        assert mia.evaluate("document.documentElement.scrollWidth") <= 390
        section.screenshot(
            path=str(shoot(mia, "changes-merchant-390").with_name("ops-changes-merchant-section-390.png"))
        )
    finally:
        phone.close()


def test_a_members_tolerance_change_is_approved_by_another_member_on_a_phone(
    page: Page,
    live_server,  # type: ignore[no-untyped-def]
    local_chain: LocalChain,
) -> None:
    """Alice proposes a looser tolerance on the settings page; it waits; Carol, on her phone, approves it."""
    merchant = Merchant.objects.get(slug="acme")
    make_user("alice", merchant=merchant)
    make_user("carol", merchant=merchant)
    sign_in(page, live_server.url, "alice", "/merchant/settings/")
    page.fill("#id_payment_tolerance_percent", "2.5")
    page.get_by_role("button", name="Save payment rules").click()
    expect(page.locator("body")).to_contain_text("The new payment tolerance is proposed")
    proposal = ChangeProposal.objects.get(merchant=merchant, state=ChangeState.PENDING)
    row = page.locator(f"#money-change-{proposal.pk}")
    expect(row).to_contain_text("awaiting approval")
    expect(row).to_contain_text("Another member of your team, or the payments operator, must approve it.")
    expect(row.get_by_role("button", name="Approve")).to_have_count(0)
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("0.5")

    phone = page.context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 844}, locale="en-GB", device_scale_factor=2
    )
    try:
        carol = phone.new_page()
        sign_in(carol, live_server.url, "carol", "/merchant/settings/")
        row = carol.locator(f"#money-change-{proposal.pk}")
        expect(row).to_contain_text("0.5")
        expect(row).to_contain_text("2.5")
        assert carol.evaluate("document.documentElement.scrollWidth") <= 390
        row.screenshot(path=str(shoot(carol, "member-change-390").with_name("ops-member-change-row-390.png")))
        carol.fill(f"#change-note-{proposal.pk}", "Agreed for the festival sale.")
        row.get_by_role("button", name="Approve").click()
        expect(carol.locator("body")).to_contain_text("Change approved and applied.")
        expect(carol.locator(f"#money-change-{proposal.pk}")).to_contain_text("approved by user:carol")
    finally:
        phone.close()
    merchant.refresh_from_db()
    assert merchant.payment_tolerance_percent == Decimal("2.5")
