"""Progress, achievements, leaderboards and award toasts on the page (issue 8), in headless
Chromium through the real server, Postgres and (for the toast) Docker grading.

One server for the whole module: the sample course and the shipped achievements are
loaded with the real command line, then the ledger's own events (``progress.apply_event``)
give Amy points, a streak, achievements, a capped row and lesson progress, and give Bob
and Cal points, so the views have something true to show. The toast test submits a real
solution through ``POST /api/exercises/<id>/submit`` from the page's own session.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from progress import (
    AnyEvent,
    LessonCompleted,
    LessonOpened,
    PairingMinutes,
    QuestionAsked,
    RunFinished,
    SubmissionGraded,
    apply_event,
)
from server.tokens import subject_uuid
from store import Store
from tests.conftest import IN_CI, ServerProcess, run_in_thread, scratch_database, start_server
from tests.integration.coursedb import load_sample

if not IN_CI:  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Browser, Page, expect

from .conftest import COHORT, WAIT_MS, People, api, artifact, cohort_room

#: A cold run container may take a while; grading itself is quick.
GRADE_WAIT_MS = 60_000
RUN_FLAGS = ("--run-pool-warm", "1", "--run-wall-seconds", "20", "--run-memory-mb", "256")

AMY = {"name": "Amy Achiever", "user_id": "amy", "role": "student", "cohort": COHORT}
BOB = {"name": "Bob Builder", "user_id": "bob", "role": "student", "cohort": COHORT}
CAL = {"name": "Cal Coder", "user_id": "cal", "role": "student", "cohort": COHORT}
DEE = {"name": "Dee Doer", "user_id": "dee", "role": "student", "cohort": COHORT}
INES = {"name": "Ines Instructor", "user_id": "ines", "role": "instructor", "cohort": COHORT}

GREET = "py101.basics.greet"
SUM_LIST = "py101.loops.sum-list"
WELCOME = "py101.basics.welcome"
FOR_LOOPS = "py101.loops.for-loops"
SUM_LIST_SOLUTION = (
    "def sum_list(numbers):\n"
    "    total = 0\n"
    "    for number in numbers:\n"
    "        total += number\n"
    "    return total\n"
)


def passed(who: dict[str, Any], exercise: str, at: datetime, score: float = 1.0) -> AnyEvent:
    return SubmissionGraded(
        key=f"test:{uuid.uuid4()}",
        user_id=subject_uuid(who["user_id"]),
        occurred_at=at,
        exercise_id=exercise,
        files={"main.py": f"# {uuid.uuid4()}\n"},
        language="python",
        score=score,
        passed=score == 1.0,
        test_results=[{"name": "t", "passed": score == 1.0, "message": ""}],
    )


def seed_events(now: datetime) -> list[AnyEvent]:
    """What the ledger is told, oldest first.

    Amy: active 7 days running before today (a streak, a grace day and Seven days),
    greet passed at the first try today (First steps, First try), Welcome completed,
    for-loops opened, and six questions asked (the sixth over the daily cap of 10 XP):
    70 + 10 + 10 + 20 + 20 + 10 = 140 XP. Bob: sum-list at the first try and two hours
    of pairing: 20 + 10 + 20 + 120 = 170. Cal: half of greet: 5.
    """
    amy = subject_uuid("amy")
    key = lambda what: f"test:{what}:{uuid.uuid4()}"  # noqa: E731
    events: list[AnyEvent] = [
        RunFinished(key=key("run"), user_id=amy, occurred_at=now - timedelta(days=d))
        for d in range(7, 0, -1)
    ]
    events += [
        passed(AMY, GREET, now),
        LessonOpened(key=key("open"), user_id=amy, occurred_at=now, lesson_id=WELCOME),
        LessonCompleted(key=key("done"), user_id=amy, occurred_at=now, lesson_id=WELCOME),
        LessonOpened(key=key("open"), user_id=amy, occurred_at=now, lesson_id=FOR_LOOPS),
    ]
    events += [
        QuestionAsked(key=key("ask"), user_id=amy, occurred_at=now, question_id=n)
        for n in range(1, 7)
    ]
    events += [
        passed(BOB, SUM_LIST, now),
        PairingMinutes(
            key=key("pair"),
            user_id=subject_uuid("bob"),
            occurred_at=now,
            partner_id=subject_uuid("cal"),
            minutes=120,
        ),
        passed(CAL, GREET, now, score=0.5),
    ]
    return events


async def apply_all(dsn: str, events: list[AnyEvent]) -> None:
    store = await Store.open(dsn, migrate=False)
    try:
        for event in events:
            await apply_event(store, event)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def seeded(
    admin_dsn: str, docker_engine: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server that grades code, on its own scratch database, with the sample
    course, the achievements and everyone's events."""
    tmp: Path = tmp_path_factory.mktemp("progress-page")
    with scratch_database(admin_dsn, "test_progress_page") as dsn:
        server = start_server(tmp, *RUN_FLAGS, env={"DATABASE_URL": dsn})
        try:
            load_sample(dsn)
            for who in (AMY, BOB, CAL, DEE, INES):  # their user rows, as a first request makes
                api(server, "GET", "/api/me", **who)
            run_in_thread(lambda: apply_all(dsn, seed_events(datetime.now(UTC))))
            yield server
        finally:
            server.stop()


@pytest.fixture
def people(browser: Browser, seeded: ServerProcess) -> Iterator[People]:
    people = People(browser, seeded)
    try:
        yield people
    finally:
        people.close()


def open_as(people: People, who: dict[str, Any], path: str) -> Page:
    page = people(who["name"], role=who["role"], cohort=who["cohort"], user_id=who["user_id"])
    page.goto(path)
    return page


def board_users(page: Page) -> list[tuple[str, int, bool]]:
    """(username, rank, highlighted) of the board's lines, top to bottom."""
    return page.locator("#board .board-row").evaluate_all(
        "rows => rows.map(r => [r.dataset.user, Number(r.dataset.rank),"
        " r.classList.contains('mine') && r.getAttribute('aria-current') === 'true'])"
    )


def test_progress_page_from_the_front_page(people: People) -> None:
    page = open_as(people, AMY, "/")
    page.click("#progress-link")
    expect(page).to_have_url(re.compile(r"/progress$"))
    expect(page.locator("#progress-title")).to_have_text("Your progress")
    expect(page.locator("#tab-progress")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#progress-root")).not_to_contain_text("null")

    # XP and the streak: 7 days before today and today, one grace day earned at the 7th
    expect(page.locator('[data-stat="xp"] .stat-value')).to_have_text("140")
    expect(page.locator('[data-stat="streak-current"] .stat-value')).to_have_text("8 days")
    expect(page.locator('[data-stat="streak-longest"] .stat-value')).to_have_text("8 days")
    expect(page.locator('[data-stat="grace-days"] .stat-value')).to_have_text("1")
    expect(page.locator('[data-stat="exercises-passed"] .stat-value')).to_have_text("1")

    # course -> module -> lesson, with status and percentage; the exercise with its best score
    basics = page.locator('.course[data-course="py101"] .module[data-module="py101.basics"]')
    welcome = basics.locator(f'.lesson[data-lesson="{WELCOME}"]')
    expect(welcome).to_have_attribute("data-status", "completed")
    expect(welcome.locator(".lesson-status")).to_have_text("Completed")
    expect(welcome.locator(".bar-text")).to_have_text("100%")
    loops = page.locator(f'.module[data-module="py101.loops"] .lesson[data-lesson="{FOR_LOOPS}"]')
    expect(loops.locator(".lesson-status")).to_have_text("In progress")
    expect(loops.locator(".bar-text")).to_have_text("0%")
    greet = basics.locator(f'.exercise[data-exercise="{GREET}"]')
    expect(greet).to_have_attribute("data-passed", "true")
    expect(greet).to_contain_text("Say hello")
    expect(greet.locator(".exercise-facts")).to_have_text(
        "best score 100% · 1 attempt · 10 of 10 XP · first try"
    )

    # the ledger, newest first: the sixth question went over the daily cap
    rows = page.locator("#ledger tbody tr")
    expect(rows).to_have_count(11)
    expect(rows.first).to_have_attribute("data-capped", "true")
    expect(rows.first).to_contain_text("asked a question")
    expect(rows.first.locator(".capped-points")).to_have_text("+0 of 2 wanted · daily cap")
    expect(page.locator('#ledger tr[data-capped="true"]')).to_have_count(1)
    expect(rows.last).to_contain_text("achievement week-streak")
    expect(rows.last.locator("td.num")).to_have_text("+70")
    lesson_row = page.locator('#ledger tr[data-type="lesson"]')
    expect(lesson_row).to_contain_text(f"completed lesson {WELCOME}")
    expect(lesson_row.locator("td.num")).to_have_text("+20")
    page.screenshot(path=str(artifact("progress-page.png")), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_achievements_with_progress_rarity_and_real_share(
    people: People, seeded: ServerProcess
) -> None:
    page = open_as(people, AMY, "/progress#achievements")
    expect(page.locator("#tab-achievements")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#view-progress")).to_be_hidden()
    _, body = api(seeded, "GET", "/api/users/me/achievements", **AMY)
    listed = {a["id"]: a for a in body["achievements"]}
    items = page.locator(".achievement")
    expect(items).to_have_count(len(listed))
    # earned first: Seven days, First steps, First try
    expect(page.locator('.achievement[data-earned="true"]')).to_have_count(3)
    expect(page.locator("#achievements-summary")).to_contain_text("You have earned 3 of 7")

    streak = page.locator('.achievement[data-achievement="week-streak"]')
    expect(streak).to_have_attribute("data-earned", "true")
    expect(streak.locator(".rarity")).to_have_text("epic")
    expect(streak.locator(".achievement-earned")).to_contain_text("Earned")
    expect(streak.locator("progress")).to_have_count(0)
    held = listed["week-streak"]["held"]["overall"]
    assert held["holders"] == 1  # Amy alone
    expect(streak.locator(".held").first).to_have_text(
        f"Held by {round(held['share'] * 100)}% ({held['holders']} of {held['of']} people)"
    )
    cohort = listed["week-streak"]["held"]["cohort"]
    expect(streak.locator(".held").nth(1)).to_contain_text(
        f"in cohort {COHORT}: {round(cohort['share'] * 100)}% "
        f"({cohort['holders']} of {cohort['of']})"
    )

    first_steps = page.locator('.achievement[data-achievement="first-steps"]')
    steps_held = listed["first-steps"]["held"]["overall"]
    assert steps_held["holders"] >= 2  # Amy and Bob (and anyone who passed since)
    expect(first_steps.locator(".held").first).to_contain_text(
        f"({steps_held['holders']} of {steps_held['of']} people)"
    )
    expect(first_steps.locator(".rarity")).to_have_text("common")

    ten = page.locator('.achievement[data-achievement="ten-exercises"]')
    expect(ten).to_have_attribute("data-earned", "false")
    expect(ten.locator(".rarity")).to_have_text("rare")
    expect(ten.locator("progress")).to_have_attribute("value", "1")
    expect(ten.locator("progress")).to_have_attribute("max", "10")
    expect(ten.locator(".bar-text")).to_have_text("1 / 10 exercises passed")
    scholar = page.locator('.achievement[data-achievement="scholar"]')
    expect(scholar.locator(".rarity")).to_have_text("legendary")
    expect(scholar.locator(".bar-text")).to_have_text("1 / 20 lessons completed")
    expect(scholar.locator(".held").first).to_contain_text("Held by 0% (0 of")
    page.screenshot(path=str(artifact("progress-achievements.png")), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_leaderboards_order_highlight_frozen_and_hiding(
    people: People, seeded: ServerProcess
) -> None:
    page = open_as(people, AMY, "/progress")
    page.click("#tab-leaderboards")
    expect(page).to_have_url(re.compile(r"/progress#leaderboards$"))
    expect(page.locator("#board-visible")).to_be_checked()
    page.select_option("#board-window", "all")
    expect(page.locator("#board-range")).to_have_text("All time")
    expect(page.locator('#board .board-row[data-user="amy"]')).to_be_visible()
    lines = board_users(page)
    ranked = [user for user, _, _ in lines]
    assert ranked.index("bob") < ranked.index("amy") < ranked.index("cal"), lines
    assert [user for user, _, mine in lines if mine] == ["amy"], lines
    amy_rank = dict((u, r) for u, r, _ in lines)["amy"]
    expect(page.locator("#board-me")).to_have_text(
        re.compile(rf"^You are #{amy_rank}( of \d+)? overall with 140 points\.$")
    )
    expect(page.locator("#board-frozen")).to_be_hidden()

    page.select_option("#board-scope", "cohort")
    expect(page.locator("#board-me")).to_contain_text(f"in cohort {COHORT} with 140 points")
    assert [u for u, _, mine in board_users(page) if mine] == ["amy"]

    # an earlier week is over: its standings were frozen by the server
    page.select_option("#board-window", "week")
    expect(page.locator("#board-next")).to_be_disabled()
    page.click("#board-prev")
    expect(page.locator("#board-frozen")).to_be_visible()
    expect(page.locator("#board")).to_have_attribute("data-frozen", "true")
    expect(page.locator("#board-range")).to_contain_text("Week of")
    expect(page.locator("#board-next")).to_be_enabled()

    # hiding oneself: others no longer see Amy; she still sees her own line, marked
    page.select_option("#board-window", "all")
    page.select_option("#board-scope", "global")
    page.uncheck("#board-visible")
    expect(page.locator("#board-visible-status")).to_have_text(
        "You are hidden from other people\u2019s boards."
    )
    mine = page.locator('#board .board-row[data-user="amy"]')
    expect(mine.locator(".hidden-me")).to_have_text("hidden from others")
    page.screenshot(path=str(artifact("progress-leaderboards.png")), full_page=True)
    _, seen_by_bob = api(seeded, "GET", "/api/leaderboards?window=all", **BOB)
    assert "amy" not in [e["username"] for e in seen_by_bob["entries"]]
    page.reload()
    expect(page.locator("#tab-leaderboards")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#board .board-row").first).to_be_visible()
    expect(page.locator("#board-visible")).not_to_be_checked()
    expect(page.locator("#board-me")).to_contain_text("You are hidden")
    page.check("#board-visible")
    expect(page.locator("#board-visible-status")).to_have_text("Others see you on their boards.")
    _, seen_by_bob = api(seeded, "GET", "/api/leaderboards?window=all", **BOB)
    assert "amy" in [e["username"] for e in seen_by_bob["entries"]]
    assert page.errors == []  # type: ignore[attr-defined]


def test_staff_see_a_students_progress_and_a_student_is_refused(people: People) -> None:
    staff = open_as(people, INES, "/progress?user=amy")
    expect(staff.locator("#progress-title")).to_have_text("Progress of amy")
    expect(staff.locator(".lead")).to_contain_text("as course staff")
    expect(staff.locator('[data-stat="xp"] .stat-value')).to_have_text("140")
    expect(staff.locator(f'.exercise[data-exercise="{GREET}"]')).to_have_attribute(
        "data-passed", "true"
    )
    expect(staff.locator("#tab-leaderboards")).to_have_count(0)  # a board is one's own
    staff.click("#tab-achievements")
    expect(staff.locator('.achievement[data-achievement="week-streak"]')).to_have_attribute(
        "data-earned", "true"
    )
    expect(staff.locator("#progress-refused")).to_be_hidden()

    student = open_as(people, AMY, "/progress?user=bob")
    refused = student.locator("#progress-refused")
    expect(refused).to_be_visible()
    expect(refused).to_have_attribute("role", "alert")
    expect(refused.locator("h2")).to_have_text("You cannot see this person\u2019s progress")
    expect(refused).to_contain_text(
        "The server said: permission denied: a student sees only their own progress."
    )
    expect(student.locator(".tabs")).to_be_hidden()
    expect(student.locator(".lead")).to_have_count(0)
    student.screenshot(path=str(artifact("progress-refused.png")))
    expect(student.locator('[data-stat="xp"]')).to_have_count(0)
    assert staff.errors == [] and student.errors == []  # type: ignore[attr-defined]


def test_award_toasts_in_the_room_for_the_submitter_and_the_others(
    people: People, seeded: ServerProcess
) -> None:
    room = "progress-toasts"
    cohort_room(seeded, room)
    dee = people(DEE["name"], room, user_id=DEE["user_id"])
    cal = people(CAL["name"], room, user_id=CAL["user_id"])
    expect(dee.locator("#progress-link")).to_have_attribute("href", "/progress")
    answer = dee.evaluate(
        """async ([exercise, room, code]) => {
          const res = await fetch(`/api/exercises/${exercise}/submit`, {
            method: 'POST',
            credentials: 'same-origin',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
            body: JSON.stringify({ files: { 'main.py': code }, room })
          })
          return { status: res.status, body: await res.json() }
        }""",
        [SUM_LIST, room, SUM_LIST_SOLUTION],
    )
    assert answer["status"] == 201 and answer["body"]["passed"], answer
    expected = {
        ("exercise-passed", "passed “Sum a list” · +20 XP"),
        ("achievement", "earned the achievement “First steps” · +10 XP"),
        ("achievement", "earned the achievement “First try” · +20 XP"),
    }
    for page, who in ((dee, "You"), (cal, DEE["name"])):
        region = page.locator("#award-toasts")
        expect(region).to_have_attribute("role", "status")
        expect(region).to_have_attribute("aria-live", "polite")
        toasts = region.locator(".award-toast")
        expect(toasts).to_have_count(3)  # stacked
        shown = toasts.evaluate_all(
            "ts => ts.map(t => [t.dataset.kind, t.querySelector('.award-text').textContent])"
        )
        assert {(kind, text) for kind, text in shown} == {
            (kind, f"{who} {text}") for kind, text in expected
        }, shown
    page = cal
    page.screenshot(path=str(artifact("award-toasts.png")))
    # dismissed with ✕, and the rest go away by themselves after a few seconds
    cal.locator(".award-toast .award-close").first.click()
    expect(cal.locator(".award-toast")).to_have_count(2)
    for page in (dee, cal):
        expect(page.locator(".award-toast")).to_have_count(0, timeout=WAIT_MS)
    assert dee.errors == [] and cal.errors == []  # type: ignore[attr-defined]
