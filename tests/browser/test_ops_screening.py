"""Payer screening in the ops console, in real Chromium: the outage banner on the queue, the screening
page, a held request's page (why it is held, each transfer's outcome), and four-eyes on accepting a hold
(requested by one ops user, approved by another in a second browser). Real anvil and watcher (the payer
is screened as the transfer is recorded), axe-core with 0 serious/critical findings, 0 CSP violations;
screenshots at 1280x800 and 390x844 go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from stablepay.models import ActionState, Merchant, OpsAction
from tests.browser.a11y import PHONE, assert_accessible, shoot_both
from tests.support.browser import CspWatch, sign_in
from tests.support.local_chain import LocalChain
from tests.support.ops import APPROVE, CONSOLE, ScreenedPayments, make_user
from tests.support.ops import expect as expect_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def checked(page: Page, watch: CspWatch, label: str, shots: str = "") -> None:
    """axe at desktop and phone widths, the screenshots, and no CSP violation so far."""
    assert_accessible(page, label)
    if shots:
        shoot_both(page, shots)
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        assert_accessible(page, f"{label} (phone)")
        if size:
            page.set_viewport_size(size)
    assert watch.collect() == [], watch.violations


def test_screening_page_banner_and_a_held_request(
    browser: Browser, page: Page, live_server: Any, local_chain: LocalChain, merchant: Merchant, settings: Any
) -> None:
    chain = local_chain.chain
    chain.explorer_tx_url = "https://explorer.example/tx/{tx}"
    chain.save()
    make_user("olivia", CONSOLE, APPROVE)
    make_user("oscar", CONSOLE, APPROVE)
    screened = ScreenedPayments(local_chain, merchant, settings)
    screened.clear()
    held = screened.hit()
    screened.failed_open()
    closed = screened.failed_closed()  # the backend is still down

    watch = CspWatch(page)
    sign_in(page, live_server.url, "olivia")
    banner = page.locator("#screening-alert")
    expect(banner).to_contain_text("Screening backend unavailable")
    expect(banner).to_contain_text("1 payment passed unscreened (below HK$50.00), 1 held")
    expect(page.locator("#group-held")).to_be_visible()
    checked(page, watch, "ops queue with the screening banner", "ops-screening-queue")

    watch.collect()
    page.locator("#screening-alert-link").click()
    expect(page.locator("h1")).to_have_text("Payer screening")
    expect(page.locator("#fail-open-limit")).to_contain_text("HK$50.00")
    table = page.locator("#screening-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_have_attribute("data-outcome", "failed_closed")
    hit_row = table.locator("tr[data-outcome='hit']")
    expect(hit_row).to_contain_text("OFAC SDN list 2026-11-20")
    expect(hit_row).to_contain_text("10.000000 HKDX")
    expect(hit_row.locator("a.explorer")).to_have_attribute(
        "href", f"https://explorer.example/tx/{held.transfers.get().tx_hash}"
    )
    expect(page.locator("#screening-counts tr[data-outcome='clear'] [data-window='24h']")).to_have_text("1")
    checked(page, watch, "ops screening page", "ops-screening")

    # The hold, from the list to the request's page.
    watch.collect()
    hit_row.get_by_role("link", name=held.order_reference).click()
    hold = page.locator("#screening-hold")
    expect(hold).to_contain_text("Payer flagged by screening")
    expect(hold).to_contain_text("screening list: denylist, OFAC SDN list 2026-11-20")
    expect(page.locator(".screening-cell")).to_contain_text("Flagged")
    expect(page.locator("#request-exception")).to_have_text("Compliance hold")
    expect(page.locator("#held-four-eyes")).to_be_visible()
    checked(page, watch, "ops held request", "ops-screening-held")

    page.locator("label.choice", has_text="Accept").click()
    page.fill("#id_note", "The payer's listing is a known false positive (same name, other address).")
    watch.collect()
    page.locator("#submit-decision").click()
    expect(page.locator(".message-warning")).to_contain_text("awaits a second ops user's approval")
    expect(page.locator("#pending-approval")).to_contain_text("Decision awaiting approval")
    expect(page.locator("#pending-action")).to_contain_text("Accept")
    expect(page.locator("#pending-approval")).to_contain_text("You requested this decision")
    expect(page.locator("#approve-pending")).to_have_count(0)
    page.reload()  # without the toast
    checked(page, watch, "ops held request, accept pending", "ops-screening-held-pending")
    action = OpsAction.objects.get(payment_request=held)
    assert action.state == ActionState.PENDING_APPROVAL
    expect_state(held, "needs_review", "held")

    # A second ops user approves it in another browser.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    try:
        second = context.new_page()
        second_watch = CspWatch(second)
        sign_in(second, live_server.url, "oscar")
        row = second.locator(f"tr[data-request='{held.pk}']")
        expect(row).to_contain_text("Awaiting approval: Accept")
        second_watch.collect()
        row.get_by_role("link", name="Review").click()
        expect(second.locator("#approve-pending")).to_have_text("Approve and accept")
        checked(second, second_watch, "ops approver on a held request")
        second.fill("#id_decision_note", "Checked the listing with compliance; approved.")
        second_watch.collect()
        second.locator("#approve-pending").click()
        expect(second.locator(".message-success")).to_contain_text("Approved and carried out: Accept")
        expect(second.locator("#request-status")).to_have_text("Paid")
        expect(second.locator("#screening-hold")).to_have_count(0)
        expect(second.locator("#ops-actions")).to_contain_text("approved by ops:oscar")
        assert second_watch.collect() == [], second_watch.violations
    finally:
        context.close()
    action.refresh_from_db()
    assert action.state == ActionState.DONE
    expect_state(held, "paid", "")

    # The other hold: the backend did not answer, at or above the limit.
    watch.collect()
    page.goto(f"{live_server.url}/ops/requests/{closed.pk}/")
    expect(page.locator("#screening-hold")).to_contain_text("Screening backend unavailable, failed closed")
    expect(page.locator(".screening-cell")).to_contain_text("No answer: held")
    checked(page, watch, "ops request failed closed", "ops-screening-failed-closed")

    # The same pages in Traditional Chinese (the language switch in the header).
    page.goto(f"{live_server.url}/ops/screening/")
    page.locator(".lang-switch button[lang='zh-hant']").click()
    expect(page.locator("h1")).to_have_text("付款人篩查")
    expect(page.locator("#screening-alert")).to_contain_text("篩查服務無法使用")
    checked(page, watch, "ops screening page zh-Hant", "ops-screening-zh")
    page.goto(f"{live_server.url}/ops/requests/{closed.pk}/")
    expect(page.locator("#screening-hold")).to_contain_text("篩查服務無法使用，已按規則凍結")  # noqa: RUF001
    checked(page, watch, "ops request failed closed zh-Hant", "ops-screening-failed-closed-zh")
    assert watch.collect() == [], watch.violations
