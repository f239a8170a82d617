"""Headless Chromium (Debian's ``chromium``, never a downloaded one) driven by Playwright.

People sign in as the page's users do: with a session cookie (``ocl_session``) holding
an access token signed with the test server's secret (set here with ``add_cookies``;
``test_access`` also goes through a real one-time sign-in link).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
#: Everyone in these tests is in one class, unless a test says otherwise.
COHORT = "class-a"
SESSION_COOKIE = "ocl_session"

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


def user_id_of(name: str) -> str:
    """A token subject from a display name: "Ada Lovelace" -> "ada-lovelace"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "someone"


def api(
    server: ServerProcess,
    method: str,
    path: str,
    body: Any = None,
    *,
    expect: tuple[int, ...] = (200, 201, 204),
    **claims: Any,
) -> tuple[int, Any]:
    """One HTTP API call as the person ``claims`` name (``server.token``'s claims)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.http + path,
        data=data,
        method=method,
        headers={**server.auth(**claims), "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT_MS / 1000) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    answer = json.loads(raw) if raw else None
    assert status in expect, (method, path, status, answer)
    return status, answer


def cohort_room(server: ServerProcess, room: str, cohort: str = COHORT) -> None:
    """A room an instructor opened to a cohort: everyone in it can edit."""
    api(
        server,
        "POST",
        "/api/rooms",
        {"id": room, "visibility": "cohort", "cohort": cohort},
        expect=(201, 409),
        role="instructor",
        name="Host",
        user_id="host",
    )


def sign_in(context: BrowserContext, server: ServerProcess, **claims: Any) -> None:
    """The session cookie the sign-in link would set (HttpOnly: the page cannot read it)."""
    token = server.token(**claims)
    context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": token,
                "url": server.http,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )


Person = Callable[..., Page]


class People:
    """Browser profiles (each its own cookies and storage) on one server."""

    def __init__(self, browser: Browser, server: ServerProcess) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []

    def __call__(
        self,
        name: str,
        room: str | None = None,
        *,
        role: str = "student",
        cohort: str | None = COHORT,
        user_id: str | None = None,
        ttl_seconds: int = 3600,
        signed_in: bool = True,
        shared: bool = True,
        width: int = 1280,
        height: int = 760,
    ) -> Page:
        """``person("Ada", room)``: a student of the class, signed in, in the room.

        With ``shared`` the room is first opened to the cohort by an instructor (so the
        class can edit it); without, the room is whatever it is, or made by this person.
        """
        context = self.browser.new_context(
            viewport={"width": width, "height": height}, base_url=self.server.http
        )
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        if signed_in:
            sign_in(
                context,
                self.server,
                name=name,
                role=role,
                cohort=cohort,
                user_id=user_id or user_id_of(name),
                ttl_seconds=ttl_seconds,
            )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        if room is not None:
            if shared:
                cohort_room(self.server, room)
            join(page, room)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def person(browser: Browser, server: ServerProcess) -> Iterator[Person]:
    people = People(browser, server)
    try:
        yield people
    finally:
        people.close()


def join(page: Page, room: str) -> None:
    page.goto(f"/r/{room}")
    wait_connected(page)
    page.locator(".cm-content").wait_for()


def wait_connected(page: Page) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=WAIT_MS)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
