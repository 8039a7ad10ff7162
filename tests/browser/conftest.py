"""Headless Chromium (Debian's build) for Playwright, and a watcher thread next to the live server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, sync_playwright

from stablepay.ingest import watcher
from tests.support.browser import ARTIFACTS
from tests.support.chromium import ARGS, CHROMIUM
from tests.support.services import Anvil


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def running_watcher(anvil: Anvil) -> Iterator[None]:
    """The embedded watcher, as `stablepay_scan` runs it, on its own thread and DB connection, while the
    chain keeps producing blocks (anvil only mines on demand here)."""
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.is_set():
                anvil.mine(1)
                watcher.scan_once()
                stop.wait(0.3)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
