"""The demo player in headless Chromium, through the real server: an instructor presents a
recording and a walkthrough in a public room; a student follows on their own page.

Positions are compared through the page's test hook (``window.ocl.player``), read with
the page's own clock so that two readings taken a few milliseconds apart can be compared:
no timing assertion here is tighter than "the viewer shows what the presenter shows".
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest

from tests.conftest import IN_CI, ServerProcess

if not IN_CI:  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from .conftest import COHORT, WAIT_MS, Person, api, artifact, wait_connected

HOST = {"role": "instructor", "name": "Host", "user_id": "host"}
STU = {"role": "student", "name": "Stu Dent", "user_id": "stu-dent", "cohort": COHORT}
#: How far apart (seconds of demo) two pages may show the same playing recording.
TOLERANCE = 0.15


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def recording_demo() -> dict[str, Any]:
    """A 30-second recording: a snapshot at 0, two edits, output, three chapters."""
    from pycrdt import Doc, Map, Text

    doc = Doc()
    files = doc.get("files", type=Map)
    files["main.py"] = Text("print('start')\n")
    text = files["main.py"]
    snapshot = doc.get_update()
    before = doc.get_state()
    text.insert(len(text), "x = 1\n")
    first = doc.get_update(before)
    before = doc.get_state()
    text.insert(len(text), "# middle\n")
    second = doc.get_update(before)
    return {
        "format": "opencode-live/demo",
        "version": 1,
        "title": "Recorded session",
        "files": {"main.py": "print('start')\n"},
        "recording": {
            "events": [
                {"type": "marker", "t": 0.0, "label": "Intro"},
                {"type": "update", "t": 1.0, "update": b64(first)},
                {
                    "type": "cursor",
                    "t": 1.2,
                    "user": "Host",
                    "file": "main.py",
                    "anchor": 0,
                    "head": 5,
                },
                {"type": "output", "t": 1.5, "stream": "stdout", "data": "start\n"},
                {"type": "update", "t": 9.5, "update": b64(second)},
                {"type": "marker", "t": 10.0, "label": "Middle"},
                {"type": "output", "t": 12.0, "stream": "stdout", "data": "middle\n"},
                {"type": "marker", "t": 25.0, "label": "End"},
            ],
            "snapshots": [{"t": 0.0, "state": b64(snapshot)}],
            "duration": 30.0,
        },
    }


STEP2_MAIN = "total = 0\nfor n in range(3):\n    total += n\nprint(total)\n"
UTIL = "def add(a, b):\n    return a + b\n"

WALKTHROUGH = {
    "format": "opencode-live/demo",
    "version": 1,
    "title": "Adding up",
    "files": {"main.py": "total = 0\n"},
    "steps": [
        {"id": "start", "title": "A total", "narration": "We keep a **running** total."},
        {
            "id": "loop",
            "title": "The loop",
            "narration": "A `for` loop adds each number.\n\n- one\n- two <b>not bold</b>",
            "changes": [
                {
                    "op": "insert",
                    "path": "main.py",
                    "anchor": "total = 0\n",
                    "text": "for n in range(3):\n    total += n\nprint(total)\n",
                }
            ],
            "highlights": [{"file": "main.py", "pattern": r"range\(3\)", "note": "the range"}],
            "question": {"prompt": "What does it print?", "choices": ["3", "6"], "answer": 0},
        },
        {
            "id": "helper",
            "title": "A helper file",
            "narration": "Another file.",
            "changes": [{"op": "set", "path": "util.py", "text": UTIL}],
        },
    ],
}


def player(page: Page, what: str, *args: Any) -> Any:
    return page.evaluate(f"(a) => window.ocl.player.{what}(...a)", list(args))


def reading(page: Page) -> tuple[float, float]:
    """(shown position, the page's wall clock in seconds when its frame computed it)."""
    got = page.evaluate("() => [window.ocl.player.shown(), window.ocl.player.shownAt() / 1000]")
    return got[0], got[1]


def gap(a: Page, b: Page, rate: float = 1.0) -> float:
    """How far b's shown position is from a's, corrected for the time between the readings."""
    shown_a, at_a = reading(a)
    shown_b, at_b = reading(b)
    return shown_b - (shown_a + (at_b - at_a) * rate)


def wait_hook(page: Page, expression: str) -> None:
    script = f"() => {{ const p = window.ocl && window.ocl.player; return p && ({expression}) }}"
    page.wait_for_function(script, timeout=WAIT_MS)


def load(page: Page, demo_id: str) -> None:
    page.locator("#demo-picker").select_option(demo_id)
    page.click("#demo-load")


def publish(server: ServerProcess) -> None:
    api(server, "PUT", "/api/demos/rec-1", recording_demo(), **HOST)
    api(server, "PUT", "/api/demos/walk-1", WALKTHROUGH, **HOST)


def test_presenter_and_viewer_stay_in_step(person: Person, server: ServerProcess) -> None:
    room = "demo-live"
    publish(server)
    api(server, "POST", "/api/rooms", {"id": room, "visibility": "public"}, **HOST)
    host = person("Host", room, role="instructor", shared=False, user_id="host")
    viewer = person("Stu Dent", room, shared=False)
    expect(viewer.locator("#room-role")).to_have_text("viewer")

    # Staff see the picker; a viewer sees no demo at all until one is loaded.
    expect(host.locator("#demo-staff")).to_be_visible()
    expect(host.locator("#demo-picker option[value='rec-1']")).to_have_count(1)
    expect(viewer.locator("#demo-panel")).to_be_hidden()

    load(host, "rec-1")
    for page in (host, viewer):
        wait_hook(page, "p.demo() && p.demo().id === 'rec-1'")
        expect(page.locator("#demo-title")).to_have_text("Recorded session")
        expect(page.locator(".demo-marker")).to_have_count(3)
    wait_hook(viewer, "p.synced()")
    expect(viewer.locator("#demo-sync")).to_have_text(re.compile(r"in sync ±\d+ ms"))
    # ...and no presenter controls for the viewer.
    expect(viewer.locator("#demo-staff")).to_be_hidden()
    expect(viewer.locator("#demo-load")).to_be_hidden()
    expect(viewer.locator("#demo-mode")).to_be_hidden()
    assert player(viewer, "text", "main.py") == "print('start')\n"

    # Play: the viewer's position advances with the presenter's.
    host.click("#demo-play")
    wait_hook(viewer, "p.shown() > 2")
    wait_hook(host, "p.shown() > 2")
    for _ in range(3):
        assert abs(gap(host, viewer)) < TOLERANCE
        viewer.wait_for_timeout(200)
    wait_hook(viewer, "p.text('main.py').includes('x = 1')")
    host.screenshot(path=str(artifact("demo-presenter-recording.png")))
    expect(viewer.locator("#demo-output")).to_contain_text("start")
    expect(viewer.locator("#demo-view .cm-demo-caret")).to_have_count(1)
    expect(viewer.locator("#demo-live")).to_have_text(re.compile("Live"))

    # Pause: both stop at the same place.
    host.click("#demo-play")
    for page in (host, viewer):
        wait_hook(page, "!p.state().playing")
    host.wait_for_timeout(300)
    paused = player(host, "state")["position"]
    assert player(host, "shown") == pytest.approx(paused, abs=1e-6)
    assert player(viewer, "shown") == pytest.approx(paused, abs=1e-6)
    viewer.wait_for_timeout(300)
    assert player(viewer, "shown") == pytest.approx(paused, abs=1e-6)

    # A forced command from the viewer is refused by the server, and nothing moves.
    viewer.evaluate("() => window.ocl.sendRoom({type: 'demo', action: 'play'})")
    expect(viewer.locator("#notice")).to_have_attribute("data-code", "permission-denied")
    expect(viewer.locator("#notice-text")).to_contain_text("demo")
    expect(viewer.locator("#notice-text")).not_to_contain_text("Not saved")
    host.wait_for_timeout(300)
    assert player(host, "state")["playing"] is False
    assert player(viewer, "shown") == pytest.approx(paused, abs=1e-6)

    # Seek to a chapter: the viewer jumps there, with the files and output of that time.
    host.click(".demo-marker[data-label='Middle']")
    for page in (host, viewer):
        wait_hook(page, "Math.abs(p.shown() - 10) < 1e-6")
    assert player(viewer, "text", "main.py") == "print('start')\nx = 1\n# middle\n"
    expect(viewer.locator("#demo-output")).to_have_text("start\n")
    # ...and back to the start: the files are rebuilt from the snapshot.
    host.click(".demo-marker[data-label='Intro']")
    wait_hook(viewer, "p.shown() === 0")
    assert player(viewer, "text", "main.py") == "print('start')\n"

    # Pause for me: the viewer leaves live while the presenter plays on...
    host.click("#demo-play")
    wait_hook(viewer, "p.shown() > 1")
    viewer.click("#demo-pause-me")
    wait_hook(viewer, "!p.live()")
    expect(viewer.locator("#demo-back-live")).to_be_visible()
    viewer.screenshot(path=str(artifact("demo-viewer-own.png")))
    expect(viewer.locator("#demo-live")).to_have_text("On your own")
    mine = player(viewer, "shown")
    viewer.wait_for_timeout(500)
    assert player(viewer, "shown") == pytest.approx(mine, abs=1e-6)
    assert player(host, "shown") > mine + 0.3
    # ...scrubs on their own (the presenter does not move back)...
    viewer.click(".demo-marker[data-label='End']")
    wait_hook(viewer, "Math.abs(p.shown() - 25) < 1e-6")
    assert player(host, "shown") < 20
    # ...and comes back to live, where the presenter is.
    viewer.click("#demo-back-live")
    wait_hook(viewer, "p.live()")
    viewer.wait_for_timeout(300)
    assert abs(gap(host, viewer)) < TOLERANCE
    expect(viewer.locator("#demo-back-live")).to_be_hidden()

    # The rate: the viewer follows a faster presenter.
    host.locator("#demo-rate").select_option("2")
    wait_hook(viewer, "p.state().rate === 2")
    viewer.wait_for_timeout(500)
    assert abs(gap(host, viewer, rate=2.0)) < 2 * TOLERANCE

    # Closing the demo: it goes away for the viewer; the presenter keeps the picker.
    host.click("#demo-unload")
    expect(viewer.locator("#demo-panel")).to_be_hidden()
    expect(host.locator("#demo-body")).to_be_hidden()
    expect(host.locator("#demo-picker")).to_be_visible()

    # Recording the room: everyone is told; a chapter marker; the saved recording plays back.
    host.click("#record-toggle")
    expect(viewer.locator("#record-status")).to_contain_text("Recording")
    expect(viewer.locator("#record-toggle")).to_be_hidden()
    host.click("#editor .cm-content")
    host.keyboard.press("Control+End")
    host.keyboard.insert_text("\nprint('recorded')\n")
    host.fill("#record-label", "Chapter A")
    host.click("#record-marker")
    expect(host.locator("#record-status")).to_contain_text("1 marker")
    host.screenshot(path=str(artifact("demo-recording.png")))
    host.click("#record-toggle")
    saved = host.locator("#demo-picker option[value^='rec-demo-live-']")
    expect(saved).to_have_count(1)
    load(host, saved.get_attribute("value") or "")
    wait_hook(viewer, "p.demo() && p.demo().kind === 'recording' && p.demo().id.startsWith('rec-')")
    expect(viewer.locator(".demo-marker[data-label='Chapter A']")).to_have_count(1)
    wait_hook(viewer, "p.text('main.py') !== null")
    assert "print('recorded')" not in player(viewer, "text", "main.py")  # at its start
    host.click("#demo-play")
    viewer.wait_for_function(
        "() => (window.ocl.player.text('main.py') || '').includes(\"print('recorded')\")",
        timeout=WAIT_MS,
    )

    assert host.errors == [] and viewer.errors == []  # type: ignore[attr-defined]


def test_walkthrough_steps_questions_and_try_it(person: Person, server: ServerProcess) -> None:
    room = "demo-steps"
    publish(server)
    api(server, "POST", "/api/rooms", {"id": room, "visibility": "public"}, **HOST)
    host = person("Host", room, role="instructor", shared=False, user_id="host")
    viewer = person("Stu Dent", room, shared=False)

    load(host, "walk-1")
    for page in (host, viewer):
        wait_hook(page, "p.demo() && p.demo().kind === 'walkthrough'")
        expect(page.locator("#demo-narration")).to_contain_text("We keep a running total.")
        expect(page.locator("#demo-narration strong")).to_have_text("running")
    expect(viewer.locator("#demo-position")).to_have_text("Step 1 of 3")
    assert player(viewer, "text", "main.py") == "total = 0\n"

    # Next step: the narration (safe Markdown), the step's files and its highlight.
    host.click("#demo-next")
    expect(viewer.locator("#demo-step-title")).to_have_text("Step 2 of 3: The loop")
    expect(viewer.locator("#demo-narration code")).to_have_text("for")
    expect(viewer.locator("#demo-narration li")).to_have_count(2)
    expect(viewer.locator("#demo-narration")).to_contain_text("two <b>not bold</b>")
    expect(viewer.locator("#demo-narration b")).to_have_count(0)
    assert player(viewer, "text", "main.py") == STEP2_MAIN
    start = STEP2_MAIN.index("range(3)")
    assert player(viewer, "highlights") == [
        {"file": "main.py", "from": start, "to": start + len("range(3)"), "note": "the range"}
    ]
    expect(viewer.locator("#demo-view .cm-demo-highlight")).to_have_text("range(3)")
    # The room's own editor is untouched by the demo.
    room_main = viewer.evaluate("() => window.ocl.files.get('main.py')?.toString() ?? null")
    assert room_main != STEP2_MAIN

    # A viewer asks a question: it shows on the presenter's page, attached to the step.
    viewer.fill("#question-text", "Why does range stop at 2?")
    viewer.click("#question-ask")
    item = host.locator("#question-list .question", has_text="Why does range stop at 2?")
    expect(item).to_be_visible()
    expect(item).to_contain_text("step loop")
    # Upvotes: staff may vote on it; the viewer sees the count.
    item.locator(".vote").click()
    expect(viewer.locator("#question-list .question .votes").first).to_have_text("1")
    item.locator(".mark-answered").click()
    first = viewer.locator("#question-list .question").first
    expect(first).to_have_attribute("data-answered", "true")
    expect(viewer.locator(".mark-answered")).to_have_count(0)

    # The step's quiz: the viewer answers, sees the result; staff see the tally.
    viewer.click(".quiz-choice[data-choice='0']")
    expect(viewer.locator(".quiz-result")).to_have_text(re.compile("Right"))
    expect(host.locator(".quiz-tally-total")).to_contain_text("1 answer")
    host.screenshot(path=str(artifact("demo-presenter-walkthrough.png")))
    viewer.screenshot(path=str(artifact("demo-viewer-walkthrough.png")))

    # The presenter copies the step's files into the room: everyone's room editor has them,
    # with the step's highlight (anchored by the server in the room's own text).
    host.click("#demo-copy")
    viewer.wait_for_function(
        "(t) => window.ocl.files.get('main.py')?.toString() === t", arg=STEP2_MAIN, timeout=WAIT_MS
    )
    expect(viewer.locator("#editor .cm-demo-highlight")).to_have_text("range(3)")
    expect(viewer.locator("#demo-copy")).to_be_hidden()

    # Try it: the files on screen, copied into a private room of the viewer's own.
    with viewer.context.expect_page() as opened:
        viewer.click("#demo-try")
    fork = opened.value
    fork.wait_for_url(re.compile(r"/r/demo-steps-fork-\w+$"))
    fork.wait_for_selector('#connection[data-state="connected"]', timeout=WAIT_MS)
    expect(fork.locator("#room-role")).to_have_text("owner")
    fork.wait_for_function(
        "(t) => window.ocl.files.get('main.py')?.toString() === t", arg=STEP2_MAIN, timeout=WAIT_MS
    )
    assert fork.evaluate("() => window.ocl.files.get('util.py')?.toString() ?? null") is None
    # ...with the step's highlight, which follows the code as the student edits it.
    highlight = fork.locator("#editor .cm-demo-highlight")
    expect(highlight).to_have_text("range(3)")
    fork.click("#editor .cm-content")
    fork.keyboard.press("Control+Home")
    fork.keyboard.insert_text("# my notes\n")
    fork.wait_for_function(
        "() => window.ocl.files.get('main.py').toString().startsWith('# my notes')",
        timeout=WAIT_MS,
    )
    expect(highlight).to_have_text("range(3)")
    fork.close()

    # The viewer stays on step 2 while the presenter moves on, then goes back to live.
    viewer.click("#demo-pause-me")
    host.click("#demo-next")
    wait_hook(host, "p.shown() === 2")
    viewer.wait_for_timeout(400)
    assert player(viewer, "shown") == 1
    viewer.click("#demo-back-live")
    expect(viewer.locator("#demo-step-title")).to_have_text("Step 3 of 3: A helper file")
    assert player(viewer, "files") == {"main.py": STEP2_MAIN, "util.py": UTIL}

    # Self-paced: everyone steps on their own; the presenter's page does not move.
    host.locator("#demo-mode").select_option("self-paced")
    expect(viewer.locator("#demo-live")).to_have_text(re.compile("Self-paced"))
    wait_hook(viewer, "!p.live()")
    viewer.click("#demo-prev")
    wait_hook(viewer, "p.shown() === 1")
    assert player(host, "shown") == 2
    expect(viewer.locator("#demo-back-live")).to_be_hidden()
    # Progress is saved every few seconds, and resumed when the page is opened again.
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        _, saved = api(server, "GET", "/api/demos/walk-1/progress", **STU)
        if saved["step"] == "loop":
            break
        assert time.monotonic() < deadline, saved
        time.sleep(0.25)
    assert saved["position"] == 1
    viewer.reload()
    wait_connected(viewer)
    wait_hook(viewer, "p.demo() && !p.live() && p.shown() === 1")
    expect(viewer.locator("#demo-step-title")).to_have_text("Step 2 of 3: The loop")
    viewer.click("#demo-prev")
    wait_hook(viewer, "p.shown() === 0")
    assert player(host, "shown") == 2
    # Back to live mode: everyone follows the presenter again.
    host.locator("#demo-mode").select_option("live")
    wait_hook(viewer, "p.live() && p.shown() === 2")

    assert host.errors == [] and viewer.errors == []  # type: ignore[attr-defined]
