"""Sign-in, roles and permissions on the page, in headless Chromium through the real server.

The page hides what a person's role does not allow, and the server refuses it anyway:
a viewer who forces an edit into the editor changes nothing that is stored.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI, ROOT, ServerProcess

if not IN_CI:  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Browser, Page, expect

from .conftest import WAIT_MS, People, Person, api, artifact, join, sign_in, wait_connected


def editor_text(page: Page) -> str:
    return page.evaluate("() => window.ocl.view.state.doc.toString()")


def type_at_end(page: Page, text: str) -> None:
    page.click(".cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.insert_text(text)  # as pasted: no auto-indent


def stored_files(server: ServerProcess, room: str, **owner: str) -> dict[str, str]:
    _, answer = api(server, "GET", f"/api/rooms/{room}/files", **owner)
    return answer["files"]


def signin_link(server: ServerProcess, *args: str) -> str:
    """A one-time sign-in link, as an instructor makes them: ``opencode-live token``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "token",
            *args,
            "--signin-url",
            server.http + "/",
            "--data-dir",
            str(server.data_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{server.http}/signin?token="), done.stdout
    return link


def test_signed_out_sees_the_signin_screen_and_a_link_signs_in(
    browser: Browser, server: ServerProcess
) -> None:
    context = browser.new_context(base_url=server.http)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))

        # Not signed in: a sign-in screen that says how, on the room page and the front page,
        # and no socket is opened.
        for path in ("/r/lab-1", "/"):
            page.goto(path)
            expect(page.locator("#signin")).to_be_visible()
            expect(page.locator("#signin-reason")).to_have_text("You are not signed in.")
            expect(page.locator("#signin")).to_contain_text("sign-in link your instructor gave you")
            expect(page.locator("#signin")).to_contain_text("opencode-live token --role instructor")
            expect(page.locator("#signin .signin-command")).to_contain_text(server.http)
            expect(page.locator("#app")).to_be_hidden()
        page.screenshot(path=str(artifact("signin.png")))
        page.wait_for_timeout(300)
        assert sockets == []

        # The instructor's one-time link signs in (HttpOnly cookie) and goes where `next` says.
        link = signin_link(server, "--name", "Ada Instructor", "--role", "instructor")
        page.goto(link + "&next=/r/lab-1")
        page.wait_for_url(re.compile(r"/r/lab-1$"))
        wait_connected(page)
        expect(page.locator("#me-name")).to_have_text("Ada Instructor")
        expect(page.locator("#me-role")).to_have_text("instructor")
        expect(page.locator("#me-cohort")).to_be_hidden()
        expect(page.locator("#room-role")).to_have_text("owner")  # she opened it first
        expect(page.locator("#toggle-settings")).to_be_visible()
        cookie = next(c for c in context.cookies() if c["name"] == "ocl_session")
        assert cookie["httpOnly"]
        assert page.evaluate("() => document.cookie") == ""  # the script never sees it
        assert sockets and all("/rooms/lab-1" in url for url in sockets)
        assert not errors

        # The link works once.
        page.goto(link)
        expect(page.locator("body")).to_contain_text("used already")
    finally:
        context.close()

    # An expired session: the sign-in screen says so.
    context = browser.new_context(base_url=server.http)
    context.set_default_timeout(WAIT_MS)
    try:
        sign_in(context, server, name="Old", user_id="old", ttl_seconds=-600)
        page = context.new_page()
        page.goto("/r/lab-1")
        reason = page.locator("#signin-reason")
        expect(reason).to_have_text("Your session has expired: sign in again.")
        expect(page.locator("body")).to_have_attribute("data-auth", "expired")
    finally:
        context.close()


def test_viewer_reads_only_and_the_server_refuses_forced_edits(
    person: Person, server: ServerProcess
) -> None:
    room = "show-and-tell"
    olga = {"name": "Olga", "user_id": "olga"}
    api(server, "POST", "/api/rooms", {"id": room}, **olga)  # private, Olga owns it
    api(server, "PUT", f"/api/rooms/{room}/members/vic", {"role": "viewer"}, **olga)

    owner = person("Olga", room, shared=False)
    type_at_end(owner, "# shown by the owner\n")
    owner.click("#toggle-versions")
    owner.fill("#version-name", "first")
    owner.click("#version-form button[type=submit]")
    expect(owner.locator("#version-list .version")).to_have_count(1)
    expected = editor_text(owner)

    vic = person("Vic Viewer", room, shared=False, user_id="vic")
    expect(vic.locator(".cm-content")).to_contain_text("# shown by the owner")
    # Name and roles shown; a read-only editor; no edit or management controls.
    expect(vic.locator("#me-name")).to_have_text("Vic Viewer")
    expect(vic.locator("#me-role")).to_have_text("student")
    expect(vic.locator("#room-role")).to_have_text("viewer")
    expect(vic.locator("#readonly")).to_be_visible()
    expect(vic.locator(".cm-content")).to_have_attribute("contenteditable", "false")
    expect(vic.locator(".cm-content")).to_have_attribute("aria-readonly", "true")
    expect(vic.locator("#add-file")).to_be_hidden()
    expect(vic.locator("#file-list .file")).to_have_count(1)
    expect(vic.locator("#file-list .file-rename, #file-list .file-delete")).to_have_count(0)
    expect(vic.locator("#toggle-settings")).to_be_hidden()
    expect(vic.locator("#run")).to_be_disabled()
    vic.click("#toggle-versions")
    expect(vic.locator("#version-list .version")).to_have_count(1)  # a viewer may look
    expect(vic.locator("#version-form")).to_be_hidden()
    expect(vic.locator("#version-list .version button")).to_have_count(0)
    vic.screenshot(path=str(artifact("room-viewer.png")))

    # Typing does nothing.
    vic.click(".cm-content")
    vic.keyboard.type("nope")
    assert editor_text(vic) == expected

    # Forcing a change into the editor (past its read-only state) and straight into the
    # shared document: the server refuses both and says so; nothing is stored or shown.
    vic.evaluate(
        "() => window.ocl.view.dispatch({changes: {from: 0, insert: '# forced by a viewer\\n'}})"
    )
    notice = vic.locator('#notice[data-code="permission-denied"]')
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("viewer")
    vic.click("#notice-close")
    expect(notice).to_be_hidden()
    vic.evaluate("() => window.ocl.doc.transact(() => window.ocl.files.delete('main.py'))")
    expect(notice).to_be_visible()
    vic.screenshot(path=str(artifact("room-viewer-refused.png")))

    assert stored_files(server, room, **olga) == {"main.py": expected}
    owner.wait_for_timeout(300)
    assert editor_text(owner) == expected
    expect(owner.locator("#file-list .file")).to_have_count(1)
    # A fresh look at the room (reload) shows it as stored.
    vic.reload()
    wait_connected(vic)
    expect(vic.locator(".cm-content")).to_contain_text("# shown by the owner")
    assert editor_text(vic) == expected
    assert not vic.errors and not owner.errors  # type: ignore[attr-defined]


def test_owner_demotes_and_removes_a_connected_editor_live(
    person: Person, server: ServerProcess
) -> None:
    room = "pair-room"
    ada = person("Ada", room, shared=False)  # a new room: Ada's, private
    expect(ada.locator("#room-role")).to_have_text("owner")

    # Ada adds Grace as an editor in the settings panel.
    ada.click("#toggle-settings")
    expect(ada.locator("#settings")).to_be_visible()
    expect(ada.locator("#room-visibility")).to_have_value("private")
    ada.fill("#member-user", "grace")
    ada.select_option("#member-role", "editor")
    ada.click("#member-form button[type=submit]")
    grace_row = ada.locator('#member-list .member[data-username="grace"]')
    expect(grace_row.locator("select")).to_have_value("editor")

    grace = person("Grace", room, shared=False)
    expect(grace.locator("#room-role")).to_have_text("editor")
    expect(grace.locator("#toggle-settings")).to_be_hidden()  # an editor does not manage
    type_at_end(grace, "# grace was here\n")
    expect(ada.locator(".cm-content")).to_contain_text("# grace was here")

    # Demoted to viewer while connected: her editor turns read-only at once.
    grace.click(".cm-content")
    grace_row.locator("select").select_option("viewer")
    expect(grace.locator("#room-role")).to_have_text("viewer")
    expect(grace.locator(".cm-content")).to_have_attribute("contenteditable", "false")
    expect(grace.locator("#readonly")).to_be_visible()
    expect(grace.locator("#add-file")).to_be_hidden()
    expect(grace.locator("#notice")).to_contain_text("viewer")
    before = editor_text(grace)
    grace.keyboard.type("still typing")
    assert editor_text(grace) == before
    _, members = api(server, "GET", f"/api/rooms/{room}/members", name="Ada", user_id="ada")
    assert [(m["username"], m["role"]) for m in members["members"]] == [("grace", "viewer")]

    # Promoted back: editable again, live.
    grace_row.locator("select").select_option("editor")
    expect(grace.locator(".cm-content")).to_have_attribute("contenteditable", "true")
    type_at_end(grace, "# back again\n")
    expect(ada.locator(".cm-content")).to_contain_text("# back again")

    # Removed from the private room: her socket is closed (4403) and the page says why.
    ada.once("dialog", lambda d: d.accept())
    grace_row.locator(".member-remove").click()
    alert = grace.locator('#room-alert[data-code="4403"]')
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("access to this room was withdrawn")
    expect(grace.locator("#connection")).to_have_attribute("data-state", "closed")
    expect(grace.locator(".cm-content")).to_have_attribute("contenteditable", "false")
    grace.screenshot(path=str(artifact("room-access-withdrawn.png")))

    # Coming back is refused before any socket opens, with the reason.
    grace.reload()
    expect(grace.locator("#problem")).to_be_visible()
    expect(grace.locator("#problem-text")).to_contain_text("private")
    assert not ada.errors and not grace.errors  # type: ignore[attr-defined]


@pytest.fixture
def strict_people(browser: Browser, server_factory) -> Iterator[People]:  # type: ignore[no-untyped-def]
    """People on a server with no token leeway and a small per-socket message allowance."""
    strict = server_factory(
        "--unload-grace-seconds",
        "0.5",
        "--auth-leeway-seconds",
        "0",
        "--socket-messages-per-second",
        "5",
        "--socket-message-burst",
        "60",
    )
    people = People(browser, strict)
    try:
        yield people
    finally:
        people.close()


def test_session_end_and_rate_limit_are_explained(strict_people: People) -> None:
    # A session that ends while in the room: closed with 4401, the page says to sign in.
    short = strict_people("Sam", "closing-time", ttl_seconds=8)
    alert = short.locator('#room-alert[data-code="4401"]')
    expect(alert).to_be_visible(timeout=WAIT_MS)
    expect(alert).to_contain_text("session expired")
    expect(short.locator("#connection-text")).to_have_text("Session expired")
    short.click("#room-alert button")
    expect(short.locator("#signin")).to_be_visible()
    expect(short.locator("#signin-reason")).to_contain_text("expired")

    # Too many messages on one socket: closed with 4429; "Reconnect" brings it back.
    busy = strict_people("Bea", "closing-time")
    busy.evaluate(
        "() => { for (let i = 0; i < 200; i++) window.ocl.awareness.setLocalStateField('n', i) }"
    )
    alert = busy.locator('#room-alert[data-code="4429"]')
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("rate limit")
    expect(busy.locator("#connection")).to_have_attribute("data-state", "closed")
    busy.click("#room-alert button")
    wait_connected(busy)
    expect(alert).to_be_hidden()
    join(busy, "closing-time")  # and a reload works too


def test_sign_out_from_the_room_page_and_the_front_page(
    person: Person, server: ServerProcess
) -> None:
    page = person("Ada", "lab-signout")
    for path in ("/r/lab-signout", "/"):
        if path == "/":  # signed in again, this time on the front page
            sign_in(page.context, server, name="Ada", user_id="ada", cohort="class-a")
            page.goto("/")
            expect(page.locator("#me-name")).to_have_text("Ada")
        signout = page.get_by_role("button", name="Sign out")
        expect(signout).to_be_visible()
        # POST /signout clears the HttpOnly cookie and answers 302 to the front page.
        with page.expect_navigation(url=f"{server.http}/"):
            signout.click()
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#signin-reason")).to_have_text("You are not signed in.")
        expect(page.locator("#app")).to_be_hidden()
        assert not any(c["name"] == "ocl_session" for c in page.context.cookies()), path
        status = page.evaluate("() => fetch('/api/me').then((res) => res.status)")
        assert status == 401, path
    assert not page.errors  # type: ignore[attr-defined]
