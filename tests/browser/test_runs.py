"""Running code from the page: ▶ Run by an editor, the output watched live by everyone in
the room, typed into by editors, stopped with ■ Stop. Real runs: a Docker Engine with the
run image (``docker_engine``: a failure in CI, a skip elsewhere without one).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.conftest import IN_CI, ServerProcess

if not IN_CI:  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Browser, Page, expect

from .conftest import WAIT_MS, People, api, artifact

#: A cold container may take a while to start; the runs themselves are short.
RUN_WAIT_MS = 30_000
RUN_FLAGS = ("--run-pool-warm", "1", "--run-wall-seconds", "5")


def set_main(page: Page, text: str) -> None:
    """Replace the open file (main.py) with ``text``, as typed (pasted) by this person."""
    expect(page.locator("#current-file")).to_have_text("main.py")
    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    expect(page.locator(".cm-content")).to_contain_text(text.splitlines()[0])


def shared_text(page: Page, path: str) -> str:
    return page.evaluate("(p) => window.ocl.files.get(p)?.toString() ?? null", path)


def last_run(page: Page):
    return page.locator("#output-log .run").last


@pytest.fixture
def run_server(docker_engine: None, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(*RUN_FLAGS)


@pytest.fixture
def people(browser: Browser, run_server: ServerProcess):
    people = People(browser, run_server)
    try:
        yield people
    finally:
        people.close()


def test_run_watched_by_the_room_with_input(people: People, run_server: ServerProcess) -> None:
    room = "run-show"
    olga = {"name": "Olga", "user_id": "olga"}
    api(run_server, "POST", "/api/rooms", {"id": room, "visibility": "public"}, **olga)
    owner = people("Olga", room, shared=False)
    viewer = people("Vic Viewer", room, shared=False, user_id="vic")
    expect(owner.locator("#room-role")).to_have_text("owner")
    expect(viewer.locator("#room-role")).to_have_text("viewer")

    # Before any run: the editor may run, the viewer may not and has no input line.
    expect(owner.locator("#run")).to_be_enabled()
    expect(owner.locator("#run")).to_have_text("▶ Run")
    expect(viewer.locator("#run")).to_be_disabled()
    for page in (owner, viewer):
        expect(page.locator("#run-status")).to_have_text("Nothing run yet")
        expect(page.locator("#output")).not_to_contain_text("coming soon")
        expect(page.locator("#run")).not_to_have_attribute("title", re.compile("soon"))

    program = 'name = input()\nprint("hi", name)\n'
    set_main(owner, program)
    expect(viewer.locator(".cm-content")).to_contain_text('print("hi", name)')
    owner.click("#run")

    # Everyone sees who runs what, as it runs.
    for page in (owner, viewer):
        run = last_run(page)
        expect(run).to_have_attribute("data-state", "running", timeout=RUN_WAIT_MS)
        expect(run.locator(".run-head")).to_contain_text("Olga ran main.py")
        expect(page.locator("#output")).to_have_attribute("data-state", "running")
        expect(page.locator("#run-status")).to_contain_text("Running main.py")
    # The editor's Run became Stop, with an input line; the viewer's stays a disabled Run.
    expect(owner.locator("#run")).to_have_text("■ Stop")
    expect(owner.locator("#run")).to_be_enabled()
    expect(owner.locator("#run-input")).to_be_visible()
    expect(viewer.locator("#run")).to_be_disabled()
    expect(viewer.locator("#run")).to_have_text("▶ Run")
    expect(viewer.locator("#run-input-form")).to_be_hidden()
    owner.screenshot(path=str(artifact("run-waiting-for-input.png")))

    # The program waits on input(): the editor types a line, everyone sees the answer.
    owner.fill("#run-input", "Ada")
    owner.press("#run-input", "Enter")
    for page in (owner, viewer):
        run = last_run(page)
        expect(run.locator(".run-out .stdout")).to_contain_text("hi Ada")
        exit_line = run.locator(".run-exit")
        expect(exit_line).to_have_attribute("data-status", "ok")
        expect(exit_line).to_contain_text("OK")
        expect(exit_line).to_contain_text("exit code 0")
        expect(exit_line).to_contain_text(re.compile(r"\d+(\.\d+)? (ms|s)"))  # wall time
        expect(run).to_have_attribute("data-state", "ok")
        expect(page.locator("#run-status")).to_contain_text("OK · main.py")
    # The typed line shows on the typist's page (stdin is a pipe: nothing echoes it).
    expect(last_run(owner).locator(".run-out .stdin")).to_have_text("Ada\n")
    expect(owner.locator("#run")).to_have_text("▶ Run")
    expect(owner.locator("#run")).to_be_enabled()
    expect(owner.locator("#run-input-form")).to_be_hidden()
    expect(viewer.locator("#run")).to_be_disabled()
    owner.screenshot(path=str(artifact("run-finished.png")))
    viewer.screenshot(path=str(artifact("run-finished-viewer.png")))

    # The viewer cannot start one by keyboard either: it is refused on the page.
    viewer.click(".cm-content")
    viewer.keyboard.press("Control+Enter")
    expect(viewer.locator("#toast")).to_contain_text("Viewers cannot run")
    expect(viewer.locator("#output-log .run")).to_have_count(1)
    assert not owner.errors and not viewer.errors  # type: ignore[attr-defined]


def test_stderr_error_exit_stop_and_a_late_joiner(people: People) -> None:
    room = "run-errors"
    ada = people("Ada", room)
    grace = people("Grace", room)

    set_main(ada, 'import sys\nprint("to stdout")\nprint("oops", file=sys.stderr)\nsys.exit(3)\n')
    expect(grace.locator(".cm-content")).to_contain_text("sys.exit(3)")
    ada.click(".cm-content")
    ada.keyboard.press("Control+Enter")  # the keyboard way; the text is left alone
    for page in (ada, grace):
        run = last_run(page)
        expect(run.locator(".run-exit")).to_have_attribute(
            "data-status", "error", timeout=RUN_WAIT_MS
        )
        expect(run.locator(".run-exit")).to_contain_text("exit code 3")
        expect(run.locator(".run-exit")).to_contain_text("Error")
        expect(run.locator(".run-out .stdout")).to_have_text("to stdout\n")
        expect(run.locator(".run-out .stderr")).to_have_text("oops\n")
        # stderr looks different from stdout
        colors = run.evaluate(
            """(el) => ['.stdout', '.stderr'].map(
                (s) => getComputedStyle(el.querySelector('.run-out ' + s)).color)"""
        )
        assert colors[0] != colors[1], colors
    assert "sys.exit(3)" in shared_text(ada, "main.py")
    assert "\n\n" not in shared_text(ada, "main.py")[-3:]  # Ctrl-Enter typed no newline

    # A program that never ends: Grace (an editor too) stops it.
    set_main(ada, "while True:\n    pass\n")
    expect(grace.locator(".cm-content")).to_contain_text("while True:")
    ada.click("#run")
    for page in (ada, grace):
        expect(page.locator("#output-log .run")).to_have_count(2, timeout=RUN_WAIT_MS)
        expect(last_run(page)).to_have_attribute("data-state", "running", timeout=RUN_WAIT_MS)
    # Someone joining now sees it running too.
    late = people("Linus", room)
    expect(last_run(late)).to_have_attribute("data-state", "running")
    expect(last_run(late).locator(".run-head")).to_contain_text("Ada ran main.py")
    expect(late.locator("#run")).to_have_text("■ Stop")

    expect(grace.locator("#run")).to_have_text("■ Stop")
    grace.click("#run")
    for page in (ada, grace, late):
        exit_line = last_run(page).locator(".run-exit")
        expect(exit_line).to_have_attribute("data-status", "killed")
        expect(exit_line).to_contain_text("Stopped")
        expect(page.locator("#run")).to_have_text("▶ Run")
        expect(page.locator("#run")).to_be_enabled()
    ada.screenshot(path=str(artifact("run-stopped.png")))
    assert not ada.errors and not grace.errors and not late.errors  # type: ignore[attr-defined]


def test_output_stays_bounded_on_the_page(people: People) -> None:
    """A flood of output: the page keeps only the newest lines and stays responsive."""
    ada = people("Ada", "run-flood")
    set_main(ada, 'for i in range(60000):\n    print("line", i)\nprint("done")\n')
    ada.click("#run")
    run = last_run(ada)
    expect(run.locator(".run-exit")).to_be_visible(timeout=RUN_WAIT_MS)
    expect(run.locator(".run-out")).to_contain_text("done")
    text = run.locator(".run-out").inner_text()
    assert len(text.splitlines()) <= 5001, len(text.splitlines())
    expect(run.locator(".out-note")).to_contain_text("earlier output is not shown")
    assert "line 0\n" not in text
    assert ada.evaluate("() => document.querySelectorAll('#output-log span').length") < 500
    # Still responsive: typing goes on.
    ada.click(".cm-content")
    ada.keyboard.press("Control+End")
    ada.keyboard.insert_text("# after\n")
    expect(ada.locator(".cm-content")).to_contain_text("# after")


def test_run_refusals_are_shown(
    browser: Browser, server_factory: Callable[..., ServerProcess]
) -> None:
    """Without an engine the run is refused and the page says why (no Docker needed)."""
    server = server_factory("--docker-host", "unix:///nonexistent/docker.sock")
    people = People(browser, server)
    try:
        ada = people("Ada", "no-engine")
        ada.click("#run")
        notice = ada.locator('#notice[data-code="runs-unavailable"]')
        expect(notice).to_be_visible(timeout=WAIT_MS)
        expect(notice).to_contain_text("unavailable")
        expect(ada.locator("#output")).to_have_attribute("data-state", "refused")
        expect(ada.locator("#run-status")).to_contain_text("unavailable")
        expect(ada.locator("#run")).to_be_enabled()  # try again later
        expect(ada.locator("#notice-actions button")).to_have_count(0)  # no "Reload"

        # The output panel resizes (arrow keys on its edge) and collapses.
        before = ada.locator("#output").bounding_box()
        ada.focus("#output-resize")
        ada.keyboard.press("ArrowUp")
        after = ada.locator("#output").bounding_box()
        assert before and after and after["height"] == pytest.approx(before["height"] + 20, abs=2)
        ada.click("#output-toggle")
        expect(ada.locator("#output-body")).to_be_hidden()
        expect(ada.locator("#output-toggle")).to_have_attribute("aria-expanded", "false")
        ada.click("#output-toggle")
        expect(ada.locator("#output-body")).to_be_visible()
    finally:
        people.close()
