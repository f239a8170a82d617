"""Headless Chromium (Debian's ``chromium``, never a downloaded one) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, ServerProcess, need

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
WAIT_MS = 15_000  # the bound on every wait in these tests

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - reported by need() below
    sync_playwright = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module: the sync API holds the thread's event loop while it
    runs, so it must be gone before the asyncio tests of other folders start."""
    need(sync_playwright is not None, "the Python playwright package is not installed")
    need(
        os.path.exists(CHROMIUM) or shutil.which("chromium") is not None,
        f"no Chromium at {CHROMIUM} (apt-get install chromium)",
    )
    assert sync_playwright is not None
    with sync_playwright() as p:
        # launch() gives every run a fresh temporary user-data-dir.
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            timeout=60_000,
        )
        try:
            yield browser
        finally:
            browser.close()


Person = Callable[..., Page]


@pytest.fixture
def person(browser: Browser, server: ServerProcess) -> Iterator[Person]:
    """``person("Ada", room)``: a separate browser profile (its own storage) in a room.

    The first visit answers the name dialog, as a new user does.
    """
    contexts: list[BrowserContext] = []

    def make(name: str, room: str | None = None, *, width: int = 1280, height: int = 760) -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=server.http
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        if room is not None:
            join(page, name, room)
        return page

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def join(page: Page, name: str, room: str) -> None:
    page.goto(f"/r/{room}")
    dialog = page.locator("#name-dialog")
    dialog.wait_for(state="visible")
    page.fill("#name-input", name)
    page.click("#name-dialog button[type=submit]")
    dialog.wait_for(state="hidden")
    wait_connected(page)
    page.locator(".cm-content").wait_for()


def wait_connected(page: Page) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=WAIT_MS)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
