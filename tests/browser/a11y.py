"""axe-core (from npm, node_modules/axe-core) in a real page, and screenshots at phone and desktop sizes.

The site's CSP (script-src 'self') blocks `add_script_tag(path=...)`, which inlines the file as a script
element; `page.evaluate` goes through the DevTools protocol, which page CSP does not govern, so axe is
evaluated that way. A control test in test_accessibility.py shows both facts.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.browser import ARTIFACTS

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@cache
def axe_source() -> str:
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run `npm ci` (axe-core is a devDependency)")
    return AXE.read_text(encoding="utf-8")


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the current page, WCAG 2.x A/AA and best practices, each with its nodes."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}));
        }"""
    )
    return list(result)


def assert_accessible(page: Page, label: str) -> list[dict[str, Any]]:
    """No serious or critical violation; the rest are printed (pytest -s shows them)."""
    violations = run_axe(page)
    for v in violations:
        print(f"axe [{label}] {v['impact']}: {v['id']} ({v['help']}) on {len(v['nodes'])} node(s)")
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], f"{label}: " + "; ".join(
        f"{v['impact']} {v['id']}: {v['help']} at " + ", ".join(n["target"] for n in v["nodes"][:5]) for v in blocking
    )
    return violations


def shoot_both(page: Page, name: str) -> list[Path]:
    """Full-page screenshots at desktop (1280x800) and phone (390x844) size; the viewport is restored."""
    ARTIFACTS.mkdir(exist_ok=True)
    before = page.viewport_size
    paths = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # a layout pass at the new width
        if label == "phone":  # charts follow a resize a moment later (a ResizeObserver)
            try:
                page.wait_for_function(f"() => document.documentElement.scrollWidth <= {size['width']}", timeout=3_000)
            except PlaywrightTimeout:
                width = page.evaluate("() => document.documentElement.scrollWidth")
                raise AssertionError(f"{name}: the page scrolls sideways on a phone ({width}px)") from None
        path = ARTIFACTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    if before:
        page.set_viewport_size(before)
    return paths
