"""The classroom page in headless Chromium: two people in one room, through the real server.

Everyone here is a signed-in student of one cohort, in rooms an instructor opened to it
(``test_access`` covers sign-in, roles and what the server refuses).
"""

from __future__ import annotations

import gzip
import re
import urllib.request

import pytest

from tests.conftest import IN_CI, ServerProcess

if not IN_CI:  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, Person, artifact, cohort_room, wait_connected


def editor_text(page: Page) -> str:
    return page.evaluate("() => window.ocl.view.state.doc.toString()")


def type_at_end(page: Page, text: str) -> None:
    page.click(".cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.insert_text(text)  # as pasted: no auto-indent


def shared_text(page: Page, path: str) -> str:
    return page.evaluate("(p) => window.ocl.files.get(p)?.toString() ?? null", path)


def test_two_people_type_and_see_each_other(person: Person) -> None:
    room = "class-101"
    ada = person("Ada Lovelace", room)
    grace = person("Grace Hopper", room)

    # Who is signed in, and their role here (a cohort's room: its students edit it).
    expect(ada.locator("#me-name")).to_have_text("Ada Lovelace")
    expect(ada.locator("#me-role")).to_have_text("student")
    expect(ada.locator("#me-cohort")).to_have_text("cohort class-a")
    expect(grace.locator("#me-name")).to_have_text("Grace Hopper")
    expect(grace.locator("#room-role")).to_have_text("editor")
    expect(grace.locator("#readonly")).to_be_hidden()

    # The room starts with a file everyone opens.
    expect(ada.locator("#current-file")).to_have_text("main.py")
    expect(grace.locator("#current-file")).to_have_text("main.py")

    type_at_end(ada, "\ndef greet(name):\n    return f'hi {name}'\n")
    expect(grace.locator(".cm-content")).to_contain_text("def greet(name):", timeout=WAIT_MS)
    type_at_end(grace, "\nprint(greet('class'))\n")
    expect(ada.locator(".cm-content")).to_contain_text("print(greet('class'))", timeout=WAIT_MS)
    assert editor_text(ada) == editor_text(grace)

    # Each sees the other's caret with the right name (and not their own).
    expect(grace.locator(".cm-ySelectionInfo", has_text="Ada Lovelace")).to_be_visible()
    expect(ada.locator(".cm-ySelectionInfo", has_text="Grace Hopper")).to_be_visible()
    expect(ada.locator(".cm-ySelectionInfo", has_text="Ada Lovelace")).to_have_count(0)

    # Both are listed as present; Python is highlighted.
    for page in (ada, grace):
        expect(page.locator("#people .person")).to_have_count(2)
        expect(page.locator('#people .person[data-name="Ada Lovelace"]')).to_be_visible()
        expect(page.locator('#people .person[data-name="Grace Hopper"]')).to_be_visible()
    assert ada.locator(".cm-content span[class^='ͼ']").count() > 0  # highlighted tokens

    # A selection shows too.
    ada.click(".cm-content")
    ada.keyboard.press("Control+Home")
    ada.keyboard.press("Shift+End")
    expect(grace.locator(".cm-ySelection").first).to_be_visible()

    shot = artifact("room-two-people.png")
    grace.screenshot(path=str(shot))
    print(f"\nscreenshot of a room with two people: {shot}")
    assert not ada.errors and not grace.errors  # type: ignore[attr-defined]


def test_files_added_renamed_deleted_for_everyone(person: Person) -> None:
    room = "files-room"
    ada = person("Ada", room)
    grace = person("Grace", room)

    ada.once("dialog", lambda d: d.accept("app.js"))
    ada.click("#add-file")
    expect(ada.locator("#current-file")).to_have_text("app.js")
    expect(grace.locator('#file-list .file[data-path="app.js"]')).to_be_visible()
    type_at_end(ada, "const answer = 42\nconsole.log(answer)\n")
    grace.click('#file-list .file[data-path="app.js"] .file-open')
    expect(grace.locator("#current-file")).to_have_text("app.js")
    expect(grace.locator(".cm-content")).to_contain_text("console.log(answer)")

    # Rename: one transaction, the content moves with the name; both editors follow.
    ada.once("dialog", lambda d: d.accept("src/app.js"))
    ada.click('#file-list .file[data-path="app.js"] .file-rename')
    expect(grace.locator('#file-list .file[data-path="src/app.js"]')).to_be_visible()
    expect(grace.locator('#file-list .file[data-path="app.js"]')).to_have_count(0)
    expect(grace.locator("#current-file")).to_have_text("src/app.js")
    assert shared_text(grace, "src/app.js") == "const answer = 42\nconsole.log(answer)\n"

    # Delete (after confirming).
    ada.once("dialog", lambda d: d.accept())
    ada.click('#file-list .file[data-path="src/app.js"] .file-delete')
    expect(grace.locator('#file-list .file[data-path="src/app.js"]')).to_have_count(0)
    expect(grace.locator("#current-file")).to_have_text("main.py")

    # A bad name is refused with a message, nothing is created.
    ada.once("dialog", lambda d: d.accept("../etc/passwd"))
    ada.click("#add-file")
    expect(ada.locator("#toast")).to_contain_text("Not a valid name")
    expect(ada.locator("#file-list .file")).to_have_count(1)


def test_cut_socket_keeps_edits_and_merges_them(person: Person) -> None:
    room = "flaky-wifi"
    ada = person("Ada", room)
    grace = person("Grace", room)
    type_at_end(ada, "\n# before\n")
    expect(grace.locator(".cm-content")).to_contain_text("# before")

    # Grace's network goes away and her socket is cut.
    grace.context.set_offline(True)
    grace.evaluate("() => window.ocl.provider.ws && window.ocl.provider.ws.close()")
    expect(grace.locator("#connection")).not_to_have_attribute("data-state", "connected")
    type_at_end(grace, "# grace offline\n")
    expect(grace.locator("#connection")).to_have_attribute("data-state", "offline")
    expect(grace.locator("#connection-text")).to_contain_text("pending")
    type_at_end(ada, "# ada meanwhile\n")
    assert "# ada meanwhile" not in editor_text(grace)
    assert "# grace offline" not in editor_text(ada)

    # Back online: y-websocket reconnects by itself and both edits merge everywhere.
    grace.context.set_offline(False)
    wait_connected(grace)
    expect(grace.locator(".cm-content")).to_contain_text("# ada meanwhile")
    expect(ada.locator(".cm-content")).to_contain_text("# grace offline")
    assert editor_text(ada) == editor_text(grace)
    expect(grace.locator("#connection-text")).to_have_text("Connected")


def test_front_page_lists_the_room_and_makes_new_ones(person: Person) -> None:
    person("Ada", "open-house")
    visitor = person("Visitor")
    visitor.goto("/")
    expect(visitor.locator("#me-name")).to_have_text("Visitor")
    entry = visitor.locator('#room-list .room-item[data-room="open-house"]')
    expect(entry).to_be_visible()
    expect(entry).to_contain_text("1 person")
    expect(entry.locator(".room-role")).to_have_text("editor")  # the cohort's room
    expect(entry.locator(".room-visibility")).to_have_text("cohort class-a")
    visitor.screenshot(path=str(artifact("front-page.png")))

    # A new room: a readable id offered, private by default, made by the API; its owner
    # lands in it. A student cannot name another cohort, so there is no cohort field.
    visitor.click("#new-room")
    expect(visitor.locator("#new-room-form")).to_be_visible()
    expect(visitor.locator("#new-room-id")).to_have_value(re.compile(r"^[a-z]+-[a-z]+-\d{2}$"))
    expect(visitor.locator("#new-room-visibility")).to_have_value("private")
    expect(visitor.locator("#new-room-cohort")).to_be_hidden()
    new_id = visitor.input_value("#new-room-id")
    visitor.fill("#new-room-title", "Lab 3: loops")
    visitor.click("#new-room-form button[type=submit]")
    visitor.wait_for_url(re.compile(rf"/r/{new_id}$"))
    wait_connected(visitor)
    expect(visitor.locator("#room-role")).to_have_text("owner")
    expect(visitor.locator("#room-name")).to_have_text(f"Lab 3: loops · {new_id}")

    # The same id again is refused with a clear message.
    visitor.goto("/")
    visitor.click("#new-room")
    visitor.fill("#new-room-id", new_id)
    visitor.click("#new-room-form button[type=submit]")
    expect(visitor.locator("#new-room-error")).to_contain_text("already")
    expect(visitor.locator(f'#room-list .room-item[data-room="{new_id}"] .room-role')).to_have_text(
        "owner"
    )

    visitor.fill("#open-room-id", "bad id!")
    visitor.click("#open-form button[type=submit]")
    expect(visitor.locator("#open-error")).to_contain_text("Room ids use")
    visitor.fill("#open-room-id", "open-house")
    visitor.click("#open-form button[type=submit]")
    visitor.wait_for_url(re.compile(r"/r/open-house$"))
    wait_connected(visitor)


def test_identity_survives_reload_and_keys_are_safe(person: Person) -> None:
    ada = person("Ada", "keys-room")
    before = editor_text(ada)
    ada.reload()
    # The session cookie signs her in again: same name, nothing asked.
    wait_connected(ada)
    expect(ada.locator("#me-name")).to_have_text("Ada")
    expect(ada.locator('#people .person.me[data-name="Ada"]')).to_be_visible()

    ada.click(".cm-content")
    ada.keyboard.press("Control+s")
    expect(ada.locator("#toast")).to_contain_text("Saved automatically")
    ada.keyboard.press("Control+Enter")  # asks the server to run (refused without Docker)
    expect(ada.locator("#output")).not_to_have_attribute("data-state", "idle")
    assert editor_text(ada) == before  # neither key changed the text


def test_versions_save_list_restore(person: Person) -> None:
    room = "versions-room"
    ada = person("Ada", room)
    grace = person("Grace", room)
    ada.click("#toggle-versions")
    expect(ada.locator("#versions")).to_be_visible()
    expect(ada.locator("#versions-status")).to_contain_text("No saved versions")
    original = editor_text(ada)

    ada.fill("#version-name", "starting point")
    ada.click("#version-form button[type=submit]")
    expect(ada.locator("#version-list .version")).to_have_count(1)
    expect(ada.locator("#version-list .version-name")).to_have_text("starting point")

    type_at_end(ada, "\n# a mistake\n")
    expect(grace.locator(".cm-content")).to_contain_text("# a mistake")

    ada.once("dialog", lambda d: d.accept())
    ada.click("#version-list .version button")
    expect(grace.locator(".cm-content")).not_to_contain_text("# a mistake")
    expect(ada.locator(".cm-content")).not_to_contain_text("# a mistake")
    assert editor_text(grace) == original
    ada.screenshot(path=str(artifact("room-versions.png")))


def test_room_works_at_tablet_width(person: Person) -> None:
    ada = person("Ada", "tablet-room", width=820, height=1100)
    for sel in ("#file-list", ".cm-content", "#connection", "#add-file"):
        expect(ada.locator(sel)).to_be_visible()
    box = ada.locator(".cm-editor").bounding_box()
    assert box is not None and box["width"] > 500
    type_at_end(ada, "x = 1\n")
    after = ada.locator(".cm-editor").bounding_box()
    assert after == box  # typing does not move the layout
    ada.screenshot(path=str(artifact("room-tablet.png")))


def test_everything_comes_from_the_server(person: Person, server: ServerProcess) -> None:
    page = person("Ada")
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    cohort_room(server, "self-contained")
    page.goto("/r/self-contained")
    wait_connected(page)
    page.goto("/")
    expect(page.locator("#room-list .room-item")).to_have_count(1)
    origins = {re.match(r"^(\w+://[^/]+)", u).group(1) for u in urls if not u.startswith("data:")}
    assert origins == {server.http, server.ws}, origins


def test_pages_answer_over_http(server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{server.http}/r/good-room") as res:
        html = res.read().decode()
        assert res.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "Content-Security-Policy" in res.headers
    script = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', html).group(1)
    with urllib.request.urlopen(f"{server.http}{script}") as res:
        assert res.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert "immutable" in res.headers["Cache-Control"]
        plain = res.read()
    zipped = urllib.request.Request(f"{server.http}{script}", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(zipped) as res:
        assert res.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(res.read()) == plain
    etag = urllib.request.Request(
        f"{server.http}/static/app.js", headers={"If-None-Match": res.headers["ETag"]}
    )
    try:
        urllib.request.urlopen(etag)
    except urllib.error.HTTPError as err:
        assert err.code == 304
    else:
        raise AssertionError("no 304 for a matching ETag")
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', html).group(1)
    with urllib.request.urlopen(f"{server.http}{css}") as res:
        assert res.headers["Content-Type"] == "text/css; charset=utf-8"
    for bad in ("/r/bad%20id", "/r/..", "/r/a/b", "/open?room=no%20spaces"):
        try:
            urllib.request.urlopen(f"{server.http}{bad}")
        except urllib.error.HTTPError as err:
            assert err.code == 400, bad
            assert "not a room id" in err.read().decode()
        else:
            raise AssertionError(f"{bad} was accepted")
    try:
        urllib.request.urlopen(f"{server.http}/static/nope.js")
    except urllib.error.HTTPError as err:
        assert err.code == 404
