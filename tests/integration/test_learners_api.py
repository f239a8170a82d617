"""Progress, achievements, points and the catalogue over HTTP, on the real server and
Postgres (issue 8).

Graded submissions are applied as the ledger's own ``SubmissionGraded`` events
(what ``POST /api/exercises/<id>/submit`` does after the executor graded them;
that path is covered with a real Docker Engine in test_submissions.py), so these
tests need no engine. Rarity is checked on a population small enough to count
by hand.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from progress import SubmissionGraded, apply_event
from server.tokens import subject_uuid
from store import Store
from tests.integration.coursedb import call, load_sample

GREET = "py101.basics.greet"
WELCOME = "py101.basics.welcome"
FIRST_FUNCTION = "py101.basics.first-function"

AMY = {"user_id": "amy", "name": "Amy", "cohort": "red"}
ALF = {"user_id": "alf", "name": "Alf", "cohort": "red"}
BEA = {"user_id": "bea", "name": "Bea", "cohort": "blue"}
TA_RED = {"user_id": "tara", "name": "Tara", "role": "teaching_assistant", "cohort": "red"}
PROF_BLUE = {"user_id": "pat", "name": "Pat", "role": "instructor", "cohort": "blue"}
ADMIN = {"user_id": "ada", "name": "Ada", "role": "admin"}


async def graded(store: Store, who: dict, score: float, code: str) -> None:
    await apply_event(
        store,
        SubmissionGraded(
            key=f"test:{uuid.uuid4()}",
            user_id=subject_uuid(who["user_id"]),
            occurred_at=datetime.now(UTC),
            exercise_id=GREET,
            files={"main.py": code},
            language="python",
            score=score,
            passed=score == 1.0,
            test_results=[{"name": "t", "passed": score == 1.0, "message": ""}],
        ),
    )


@pytest.fixture
async def population(server_factory, database_url, tokens):
    """Six people (their rows made by their first request); Amy passed greet at the
    first try, Alf at the second, Bea and the staff have nothing."""
    server = server_factory()
    load_sample(database_url)
    for who in (AMY, ALF, BEA, TA_RED, PROF_BLUE, ADMIN):
        status, _ = await call(server, "GET", "/api/me", who, tokens)
        assert status == 200
    store = await Store.open(database_url)
    try:
        await graded(store, AMY, 1.0, "amy")
        await graded(store, ALF, 0.5, "alf 1")
        await graded(store, ALF, 1.0, "alf 2")
    finally:
        await store.close()
    return server


def by_id(items: list[dict]) -> dict[str, dict]:
    return {a["id"]: a for a in items}


async def test_achievements_with_progress_and_real_rarity(population, tokens):
    server = population
    status, body = await call(server, "GET", "/api/users/me/achievements", AMY, tokens)
    assert status == 200, body
    mine = by_id(body["achievements"])
    assert body["cohort"] == "red"
    assert mine["first-steps"]["awarded"] and mine["first-try"]["awarded"]
    assert mine["first-steps"]["awarded_at"] is not None
    # Rarity counts learners only: 2 of the 3 students hold first-steps (the three
    # staff are neither holders nor population); 2 of the 2 students in cohort red
    # (Tara, red's teaching assistant, is not one of them).
    assert mine["first-steps"]["held"]["overall"] == {"holders": 2, "of": 3, "share": 0.6667}
    assert mine["first-steps"]["held"]["cohort"] == {
        "cohort": "red",
        "holders": 2,
        "of": 2,
        "share": 1.0,
    }
    assert mine["first-try"]["held"]["overall"] == {"holders": 1, "of": 3, "share": 0.3333}
    assert mine["first-try"]["held"]["cohort"]["holders"] == 1
    ten = mine["ten-exercises"]
    assert not ten["awarded"] and ten["progress"] == [
        {"metric": "exercises_passed", "value": 1, "target": 10}
    ]
    assert ten["fraction"] == 0.1 and ten["held"]["overall"]["holders"] == 0

    status, body = await call(server, "GET", "/api/users/me/achievements", BEA, tokens)
    theirs = by_id(body["achievements"])
    assert not theirs["first-steps"]["awarded"]
    assert theirs["first-steps"]["held"]["cohort"] == {
        "cohort": "blue",
        "holders": 0,
        "of": 1,
        "share": 0.0,
    }

    status, catalogue = await call(server, "GET", "/api/achievements", BEA, tokens)
    assert status == 200
    listed = by_id(catalogue["achievements"])
    assert set(listed) == {
        "first-steps",
        "ten-exercises",
        "first-try",
        "week-streak",
        "pair-five",
        "helper",
        "scholar",
    }
    assert listed["first-steps"]["held"] == {"holders": 2, "of": 3, "share": 0.6667}
    assert listed["scholar"]["rarity"] == "legendary" and listed["scholar"]["xp"] == 100
    assert listed["first-try"]["conditions"] == [{"metric": "first_try_passes", "at_least": 1}]


async def test_points_ledger_newest_first_in_pages(population, tokens):
    server = population
    status, first = await call(server, "GET", "/api/users/me/points?limit=2", ALF, tokens)
    assert status == 200, first
    # Alf: 5 XP for half of greet, 5 more for the rest, 10 for first-steps
    assert first["xp"] == 20
    assert len(first["entries"]) == 2 and first["next"] == first["entries"][-1]["id"]
    status, rest = await call(
        server, "GET", f"/api/users/me/points?limit=2&before={first['next']}", ALF, tokens
    )
    assert status == 200 and rest["next"] is None
    entries = first["entries"] + rest["entries"]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3
    assert [(e["type"], e["points"]) for e in reversed(entries)] == [
        ("exercise", 5),
        ("exercise", 5),
        ("achievement", 10),
    ]
    assert sum(e["points"] for e in entries) == first["xp"]
    assert entries[0]["metadata"] == {"achievement": "first-steps"}
    for bad in ("before=x", "limit=0"):
        status, answer = await call(server, "GET", f"/api/users/me/points?{bad}", ALF, tokens)
        assert status == 400 and answer["error"].startswith(bad.split("=")[0])


async def test_who_sees_whose_details(population, tokens):
    server = population
    amy = subject_uuid("amy")
    for path in ("progress", "achievements", "points"):
        for who, expected in (
            (AMY, 200),
            (ALF, 403),
            (TA_RED, 200),
            (PROF_BLUE, 404),
            (ADMIN, 200),
        ):
            status, body = await call(server, "GET", f"/api/users/{amy}/{path}", who, tokens)
            assert status == expected, (path, who, body)
            if status == 200:
                assert body["user"] == str(amy)
    # a token subject names the same person; nobody at all is 404 for staff
    status, body = await call(server, "GET", "/api/users/amy/points", TA_RED, tokens)
    assert status == 200 and body["xp"] == 10 + 10 + 20
    status, _ = await call(server, "GET", f"/api/users/{uuid.uuid4()}/progress", ADMIN, tokens)
    assert status == 404
    status, _ = await call(
        server,
        "POST",
        f"/api/users/{amy}/progress",
        TA_RED,
        tokens,
        json={"lesson": WELCOME, "action": "opened"},
    )
    assert status == 403


async def test_lesson_activity_is_recorded_and_the_rules_decide(population, tokens):
    server = population

    async def report(body: dict, who: dict = BEA) -> tuple[int, dict]:
        return await call(server, "POST", "/api/users/me/progress", who, tokens, json=body)

    status, body = await report({"lesson": WELCOME, "action": "completed"})
    assert status == 409 and "never opened" in body["error"]
    status, body = await report({"lesson": WELCOME, "action": "opened"})
    assert status == 201, body
    assert body["xp_awarded"] == 0 and body["lesson"]["status"] == "in_progress"
    await asyncio.sleep(1.1)  # so that the server has seen at least a second go by
    status, body = await report({"lesson": WELCOME, "action": "studied", "seconds": 3600})
    assert status == 201, body
    # credited no more than the server saw pass since the lesson was opened
    assert 1 <= body["seconds"] < 3600
    assert body["lesson"]["time_spent_seconds"] == body["seconds"]
    status, body = await report({"lesson": WELCOME, "action": "completed"})
    assert status == 201 and body["xp_awarded"] == 20
    assert body["lesson"]["status"] == "completed" and body["lesson"]["percentage"] == 100
    status, body = await report({"lesson": WELCOME, "action": "completed"})
    assert status == 200 and body["duplicate"] and body["xp_awarded"] == 0

    # an exercise lesson is complete once its exercises are passed
    status, body = await report({"lesson": FIRST_FUNCTION, "action": "opened"})
    assert status == 201
    status, body = await report({"lesson": FIRST_FUNCTION, "action": "completed"})
    assert status == 409 and "not passed" in body["error"]
    status, body = await report({"lesson": FIRST_FUNCTION, "action": "opened"}, AMY)
    status, body = await report({"lesson": FIRST_FUNCTION, "action": "completed"}, AMY)
    assert status == 201 and body["xp_awarded"] == 20

    for bad, field in (
        ({"lesson": WELCOME}, "action"),
        ({"lesson": WELCOME, "action": "won"}, "action"),
        ({"lesson": WELCOME, "action": "studied"}, "seconds"),
        ({"lesson": WELCOME, "action": "opened", "seconds": 5}, "seconds"),
        ({"lesson": WELCOME, "action": "opened", "xp": 1000}, "xp"),
        ({"action": "opened"}, "lesson"),
    ):
        status, body = await report(bad)
        assert status == 400, (bad, body)
        assert body["error"].startswith("invalid report:") and field in body["error"], body
    status, body = await report({"lesson": "py101.basics.nothing", "action": "opened"})
    assert status == 404

    status, progress = await call(server, "GET", "/api/users/me/progress", BEA, tokens)
    assert status == 200
    lessons = {r["lesson"]: r for r in progress["lessons"]}
    assert lessons[WELCOME]["status"] == "completed" and lessons[WELCOME]["course"] == "py101"
    assert lessons[FIRST_FUNCTION]["status"] == "in_progress"
    assert progress["xp"] == 20 and progress["streak"]["current"] == 1
    status, points = await call(server, "GET", "/api/users/me/points", BEA, tokens)
    assert [(e["type"], e["points"]) for e in points["entries"]] == [("lesson", 20)]


async def test_staff_are_left_out_of_rarity(population, database_url, tokens):
    """An instructor who passes an exercise holds the badge, but neither they nor the
    other staff change how rare it is among learners; a student who passes does."""
    server = population
    store = await Store.open(database_url, migrate=False)
    try:
        await graded(store, PROF_BLUE, 1.0, "pat")
    finally:
        await store.close()
    status, body = await call(server, "GET", "/api/users/me/achievements", PROF_BLUE, tokens)
    assert status == 200
    pats = by_id(body["achievements"])
    assert pats["first-steps"]["awarded"]  # held by the instructor...
    assert pats["first-steps"]["held"]["overall"] == {"holders": 2, "of": 3, "share": 0.6667}
    # ...but blue still has one learner (Bea), who holds nothing
    assert pats["first-steps"]["held"]["cohort"] == {
        "cohort": "blue",
        "holders": 0,
        "of": 1,
        "share": 0.0,
    }
    status, catalogue = await call(server, "GET", "/api/achievements", BEA, tokens)
    assert by_id(catalogue["achievements"])["first-steps"]["held"]["holders"] == 2

    store = await Store.open(database_url, migrate=False)
    try:
        await graded(store, BEA, 1.0, "bea")
    finally:
        await store.close()
    status, body = await call(server, "GET", "/api/users/me/achievements", BEA, tokens)
    held = by_id(body["achievements"])["first-steps"]["held"]
    assert held["overall"] == {"holders": 3, "of": 3, "share": 1.0}
    assert held["cohort"] == {"cohort": "blue", "holders": 1, "of": 1, "share": 1.0}


async def test_time_zone_setting(population, database_url, tokens):
    server = population
    status, body = await call(server, "GET", "/api/users/me/settings", BEA, tokens)
    assert (status, body) == (200, {"user": str(subject_uuid("bea")), "time_zone": "UTC"})

    status, body = await call(
        server, "PUT", "/api/users/me/settings", BEA, tokens, json={"time_zone": "Asia/Tokyo"}
    )
    assert (status, body["time_zone"]) == (200, "Asia/Tokyo"), body
    status, body = await call(server, "GET", "/api/users/me/settings", BEA, tokens)
    assert body["time_zone"] == "Asia/Tokyo"
    # stored where the streak rules read it
    store = await Store.open(database_url, migrate=False)
    try:
        async with store.connection("test") as conn:
            stored = await conn.fetchval(
                "SELECT time_zone FROM users WHERE id = $1", subject_uuid("bea")
            )
    finally:
        await store.close()
    assert stored == "Asia/Tokyo"

    for bad in ({"time_zone": "Mars/Olympus"}, {"time_zone": "UTC+3"}):
        status, body = await call(server, "PUT", "/api/users/me/settings", BEA, tokens, json=bad)
        assert status == 400, body
        assert body["error"].startswith("invalid settings: time_zone:"), body
        assert repr(bad["time_zone"]) in body["error"]
    for bad, field in (({"time_zone": 3}, "time_zone"), ({"zone": "UTC"}, "zone")):
        status, body = await call(server, "PUT", "/api/users/me/settings", BEA, tokens, json=bad)
        assert status == 400 and field in body["error"], body
    status, body = await call(server, "GET", "/api/users/me/settings", BEA, tokens)
    assert body["time_zone"] == "Asia/Tokyo"  # refused changes changed nothing

    # staff of the cohort may read it, nobody changes someone else's
    bea = subject_uuid("bea")
    status, body = await call(server, "GET", f"/api/users/{bea}/settings", PROF_BLUE, tokens)
    assert (status, body["time_zone"]) == (200, "Asia/Tokyo")
    status, _ = await call(server, "GET", f"/api/users/{bea}/settings", AMY, tokens)
    assert status == 403
    status, _ = await call(
        server, "PUT", f"/api/users/{bea}/settings", ADMIN, tokens, json={"time_zone": "UTC"}
    )
    assert status == 403
