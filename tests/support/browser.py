"""Helpers of the browser tests (tests/browser, and the production-stack test that drives Chromium): where
screenshots go, a screenshot of the ops console, signing in to it, and the page's Content Security Policy
violations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.auth import pass_second_factor_if_required
from tests.support.ops import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def shoot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"ops-{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the full-page image
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, base_url: str, username: str, *, next_path: str = "/ops/") -> None:
    page.goto(f"{base_url}{next_path}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor_if_required(page, username)
    page.wait_for_url(re.compile(re.escape(next_path) + r"$"))


CSP_RECORDER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile + ":" + e.lineNumber;
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + where);
});
"""


class CspWatch:
    """Content Security Policy violations on a page, across navigations: the `securitypolicyviolation`
    events of each document (recorded by an init script, collected before leaving it) and Chromium's
    "Refused to ..." console errors, which it logs for every blocked script, style or connection."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.violations: list[str] = []
        page.add_init_script(CSP_RECORDER)
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error" and ("Content Security Policy" in message.text or "Refused to" in message.text):
            self.violations.append(message.text)

    def collect(self) -> list[str]:
        try:
            found: list[str] = self.page.evaluate("() => window.__csp || []")
        except Exception:  # no document (about:blank) or one being replaced
            return self.violations
        self.violations.extend(v for v in found if v not in self.violations)
        return self.violations
