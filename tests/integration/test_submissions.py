"""Graded submissions against the real server, Postgres and Docker Engine (issue 8).

The sample course (courses/python-101) and the default achievements are loaded
into the test's own database with the real command line first. Points are
checked against the ledger (GET /api/users/me/points) as well as the answers.
"""

from __future__ import annotations

import asyncio
import shutil

import aiohttp
import pytest
import yaml

from server.tokens import subject_uuid
from tests.integration.coursedb import ROOT, call, cli, load_sample
from tests.pyclient import YClient, eventually

SUM_LIST = "py101.loops.sum-list"  # 20 points, 3 tests
SOLUTION = (
    "def sum_list(numbers):\n"
    "    total = 0\n"
    "    for number in numbers:\n"
    "        total += number\n"
    "    return total\n"
)
WRONG = "def sum_list(numbers):\n    return None\n"  # fails all three tests
PARTIAL = "def sum_list(numbers):\n    return 0\n"  # passes only the empty-list test

RUN_FLAGS = ("--run-pool-warm", "2", "--run-wall-seconds", "20", "--run-memory-mb", "256")

ANN = {"user_id": "ann", "name": "Ann", "cohort": "red"}
BOB = {"user_id": "bob", "name": "Bob", "cohort": "red"}
CAT = {"user_id": "cat", "name": "Cat", "cohort": "red"}
TA_RED = {"user_id": "tara", "name": "Tara", "role": "teaching_assistant", "cohort": "red"}
TA_BLUE = {"user_id": "tim", "name": "Tim", "role": "teaching_assistant", "cohort": "blue"}
ADMIN = {"user_id": "ada", "name": "Ada", "role": "admin"}


@pytest.fixture
def graded(server_factory, database_url, docker_engine):
    """A server that runs code, with the sample course and achievements loaded."""
    server = server_factory(*RUN_FLAGS)
    load_sample(database_url)
    return server


async def submit(server, tokens, who, code: str, exercise: str = SUM_LIST, **extra):
    return await call(
        server,
        "POST",
        f"/api/exercises/{exercise}/submit",
        who,
        tokens,
        json={"files": {"main.py": code}, **extra},
    )


async def exercise_points(server, tokens, who) -> int:
    status, body = await call(server, "GET", "/api/users/me/points?limit=200", who, tokens)
    assert status == 200, body
    return sum(e["points"] for e in body["entries"] if e["type"] == "exercise")


async def test_wrong_partial_right_and_the_same_code_again(graded, tokens):
    server = graded
    status, wrong = await submit(server, tokens, ANN, WRONG)
    assert status == 201, wrong
    assert (wrong["passed"], wrong["score"], wrong["xp_awarded"]) == (False, 0.0, 0)
    assert wrong["achievements_awarded"] == []
    assert len(wrong["tests"]) == 3 and not any(t["passed"] for t in wrong["tests"])
    assert all(t["name"] and t["message"] for t in wrong["tests"])

    status, partial = await submit(server, tokens, ANN, PARTIAL)
    assert status == 201, partial
    assert partial["score"] == pytest.approx(1 / 3) and not partial["passed"]
    passing = [t["name"] for t in partial["tests"] if t["passed"]]
    assert len(passing) == 1 and "empty" in passing[0]
    assert partial["xp_awarded"] == 6  # floor(20 * 1/3)

    status, right = await submit(server, tokens, ANN, SOLUTION)
    assert status == 201, right
    assert right["passed"] and right["score"] == 1.0
    assert right["xp_awarded"] == 14  # the difference: 20 in all
    awarded = {a["id"]: a for a in right["achievements_awarded"]}
    assert set(awarded) == {"first-steps"}  # not first-try: two attempts before
    assert awarded["first-steps"]["xp"] == 10

    status, again = await submit(server, tokens, ANN, SOLUTION)
    assert status == 201, again
    assert again["passed"] and again["xp_awarded"] == 0 and again["achievements_awarded"] == []
    assert again["submission"] != right["submission"]

    assert await exercise_points(server, tokens, ANN) == 20
    status, progress = await call(server, "GET", "/api/users/me/progress", ANN, tokens)
    assert status == 200
    (row,) = [e for e in progress["exercises"] if e["exercise"] == SUM_LIST]
    assert (row["attempts"], row["best_score"], row["xp"], row["passed"]) == (4, 1.0, 20, True)
    assert progress["xp"] == 30  # 20 for the exercise, 10 for first-steps

    status, listed = await call(
        server, "GET", f"/api/exercises/{SUM_LIST}/submissions", ANN, tokens
    )
    assert status == 200
    ids = [s["id"] for s in listed["submissions"]]
    assert ids == [
        again["submission"],
        right["submission"],
        partial["submission"],
        wrong["submission"],
    ]
    status, one = await call(server, "GET", f"/api/submissions/{wrong['submission']}", ANN, tokens)
    assert status == 200
    assert one["files"] == {"main.py": WRONG} and one["score"] == 0.0
    assert len(one["tests"]) == 3 and one["feedback"] == "0 of 3 tests passed"
    assert one["execution_ms"] > 0 and one["memory_bytes"] >= 0 and len(one["code_hash"]) == 64


async def test_a_first_pass_earns_the_points_and_first_try(graded, tokens):
    status, body = await submit(graded, tokens, BOB, SOLUTION)
    assert status == 201, body
    assert body["passed"] and body["xp_awarded"] == 20
    assert {a["id"] for a in body["achievements_awarded"]} == {"first-steps", "first-try"}
    total = sum(p["points"] for p in body["points"])
    status, points = await call(graded, "GET", "/api/users/me/points", BOB, tokens)
    assert points["xp"] == total == 20 + 10 + 20


async def test_concurrent_submissions_of_one_person_keep_points_exact(graded, tokens):
    codes = [SOLUTION + f"# variant {n}\n" for n in range(5)] + [
        PARTIAL + f"# variant {n}\n" for n in range(5)
    ]
    answers = await asyncio.gather(*(submit(graded, tokens, CAT, code) for code in codes))
    assert all(status == 201 for status, _ in answers), answers
    assert sum(body["xp_awarded"] for _, body in answers) == 20
    firsts = [a for _, body in answers for a in body["achievements_awarded"]]
    assert [a["id"] for a in firsts].count("first-steps") == 1
    assert await exercise_points(graded, tokens, CAT) == 20
    status, points = await call(graded, "GET", "/api/users/me/points?limit=200", CAT, tokens)
    assert points["xp"] == sum(e["points"] for e in points["entries"])
    status, listed = await call(
        graded, "GET", f"/api/exercises/{SUM_LIST}/submissions", CAT, tokens
    )
    assert status == 200 and len(listed["submissions"]) == 10


async def test_who_may_read_a_submission(graded, tokens):
    status, body = await submit(graded, tokens, ANN, PARTIAL)
    assert status == 201, body
    path = f"/api/submissions/{body['submission']}"
    for who, expected in ((ANN, 200), (BOB, 404), (TA_BLUE, 404), (TA_RED, 200), (ADMIN, 200)):
        status, seen = await call(graded, "GET", path, who, tokens)
        assert status == expected, (who, seen)
    status, missing = await call(graded, "GET", "/api/submissions/999999", ANN, tokens)
    assert status == 404 and missing["error"] == "no submission '999999'"

    listing = f"/api/exercises/{SUM_LIST}/submissions?user=ann"
    status, mine = await call(graded, "GET", listing, TA_RED, tokens)
    assert status == 200 and [s["id"] for s in mine["submissions"]] == [body["submission"]]
    assert mine["user"] == str(subject_uuid("ann"))
    status, _ = await call(graded, "GET", listing, TA_BLUE, tokens)
    assert status == 404
    status, _ = await call(graded, "GET", listing, BOB, tokens)
    assert status == 403


async def test_bad_submissions_are_refused_naming_the_field(graded, tokens):
    server = graded
    cases = [
        ({"room": "lab"}, "files"),
        ({"files": []}, "files"),
        ({"files": {}}, "files"),
        ({"files": {"main.py": 3}}, "files['main.py']"),
        ({"files": {"../main.py": "x"}}, "files"),
        ({"files": {"test_main.py": "def test_x(): pass"}}, "files['test_main.py']"),
        ({"files": {"conftest.py": "import pytest"}}, "files['conftest.py']"),
        ({"files": {"pytest.py": "raise SystemExit(0)"}}, "files['pytest.py']"),
        ({"files": {"main.py": "x"}, "room": "no room!"}, "room"),
        ({"files": {"main.py": "x"}, "tests": {}}, "tests"),
    ]
    for body, field in cases:
        status, answer = await call(
            server, "POST", f"/api/exercises/{SUM_LIST}/submit", ANN, tokens, json=body
        )
        assert status == 400, (body, answer)
        assert f"invalid submission: {field}" in answer["error"], (body, answer)
    status, answer = await call(
        server, "POST", f"/api/exercises/{SUM_LIST}/submit", ANN, tokens, data=b"{nope"
    )
    assert status == 400 and "JSON" in answer["error"]
    for exercise in ("py101.loops.nothing", "Not An Id"):
        status, answer = await submit(server, tokens, ANN, SOLUTION, exercise=exercise)
        assert status == 404 and "no exercise" in answer["error"]
    # nothing of that was stored
    status, listed = await call(
        server, "GET", f"/api/exercises/{SUM_LIST}/submissions", ANN, tokens
    )
    assert listed["submissions"] == []


async def test_the_room_is_told_of_a_pass_and_an_achievement(graded, tokens):
    server = graded
    async with aiohttp.ClientSession(headers=tokens.auth(**TA_RED)) as s:
        async with s.post(f"{server.http}/api/rooms", json={"id": "lab", "visibility": "public"}):
            pass
    sessions: list[aiohttp.ClientSession] = []
    clients: list[YClient] = []
    try:
        for who in (TA_RED, ANN):
            session = aiohttp.ClientSession()
            client = YClient(session, f"{server.ws}/rooms/lab?ext=1&token={tokens.token(**who)}")
            await client.connect()
            await client.wait_synced()
            sessions.append(session)
            clients.append(client)
        watcher = clients[0]

        def awards() -> list[dict]:
            return [m for m in watcher.room_messages if m["type"] == "progress.award"]

        # Bob names the room but is not in it: nobody is told.
        status, _ = await submit(server, tokens, BOB, SOLUTION, room="lab")
        assert status == 201
        status, body = await submit(server, tokens, ANN, SOLUTION, room="lab")
        assert status == 201 and body["xp_awarded"] == 20
        await eventually(lambda: len(awards()) >= 3, what="three progress.award messages")
        got = awards()
        assert all(m["user"] == str(subject_uuid("ann")) and m["name"] == "Ann" for m in got)
        assert got[0] == {
            "type": "progress.award",
            "user": str(subject_uuid("ann")),
            "name": "Ann",
            "kind": "exercise-passed",
            "title": "Sum a list",
            "xp": 20,
        }
        assert {(m["kind"], m["title"], m["xp"]) for m in got[1:]} == {
            ("achievement", "First steps", 10),
            ("achievement", "First try", 20),
        }
        status, listed = await call(
            server, "GET", f"/api/exercises/{SUM_LIST}/submissions", ANN, tokens
        )
        assert listed["submissions"][0]["room"] == "lab"
    finally:
        for client in clients:
            await client.close()
        for session in sessions:
            await session.close()


async def test_without_an_engine_a_submission_is_503_and_nothing_is_stored(
    server_factory, database_url, tokens
):
    server = server_factory("--docker-host", "unix:///nonexistent/docker.sock")
    load_sample(database_url)
    status, body = await submit(server, tokens, ANN, SOLUTION)
    assert status == 503 and "unavailable" in body["error"], body
    status, listed = await call(
        server, "GET", f"/api/exercises/{SUM_LIST}/submissions", ANN, tokens
    )
    assert status == 200 and listed["submissions"] == []
    status, progress = await call(server, "GET", "/api/users/me/progress", ANN, tokens)
    assert progress["exercises"] == [] and progress["xp"] == 0


async def listed_submissions(server, tokens, who, exercise: str = SUM_LIST) -> list[dict]:
    status, listed = await call(
        server, "GET", f"/api/exercises/{exercise}/submissions", who, tokens
    )
    assert status == 200, listed
    return listed["submissions"]


async def test_a_body_over_the_message_limit_is_413_and_nothing_is_stored(
    server_factory, database_url, tokens
):
    # the body is refused before anything else: no engine is needed to see it
    server = server_factory(
        "--docker-host",
        "unix:///nonexistent/docker.sock",
        "--max-message-bytes",
        "65536",
        "--send-queue-bytes",
        "262144",
    )
    load_sample(database_url)
    big = SOLUTION + "#" * 70_000 + "\n"
    status, body = await submit(server, tokens, ANN, big)
    assert status == 413, body
    assert "65536" in body["error"], body
    # just under the limit is read (and then refused for want of an engine, not for size)
    status, body = await submit(server, tokens, ANN, SOLUTION + "#" * 60_000 + "\n")
    assert status == 503, body
    assert await listed_submissions(server, tokens, ANN) == []


async def test_a_retired_exercise_is_410_and_takes_no_submission(
    server_factory, database_url, tokens, tmp_path
):
    server = server_factory("--docker-host", "unix:///nonexistent/docker.sock")
    load_sample(database_url)
    # the course comes back without sum-list: the loader retires it
    course = tmp_path / "python-101"
    shutil.copytree(ROOT / "courses" / "python-101", course)
    loops = course / "modules" / "loops.yaml"
    module = yaml.safe_load(loops.read_text())
    for lesson in module["lessons"]:
        lesson["exercises"] = [e for e in lesson.get("exercises", []) if e["id"] != "sum-list"]
        if not lesson["exercises"]:
            del lesson["exercises"]
    loops.write_text(yaml.safe_dump(module, sort_keys=False))
    cli(database_url, "course", "load", str(course))

    status, body = await submit(server, tokens, ANN, SOLUTION)
    assert status == 410, body
    assert body["error"] == f"exercise {SUM_LIST!r} was retired: it takes no submissions"
    assert await listed_submissions(server, tokens, ANN) == []
    # an exercise still in the course is not affected (503 here: there is no engine)
    status, body = await submit(server, tokens, ANN, "x", exercise="py101.loops.fizzbuzz")
    assert status == 503, body


async def test_past_the_hourly_run_limit_a_submission_is_429_with_retry_after(
    server_factory, database_url, docker_engine, tokens
):
    server = server_factory(*RUN_FLAGS, "--runs-per-hour", "2")
    load_sample(database_url)
    for code in (WRONG, SOLUTION):
        status, body = await submit(server, tokens, ANN, code)
        assert status == 201, body
    async with aiohttp.ClientSession(headers=tokens.auth(**ANN)) as session:
        async with session.post(
            f"{server.http}/api/exercises/{SUM_LIST}/submit", json={"files": {"main.py": PARTIAL}}
        ) as answer:
            body = await answer.json()
            assert answer.status == 429, body
            assert "rate limit: 2 runs per hour" in body["error"], body
            assert int(answer.headers["Retry-After"]) > 0
    # the refused one was not graded nor stored; another person is not limited by Ann
    assert len(await listed_submissions(server, tokens, ANN)) == 2
    status, body = await submit(server, tokens, BOB, SOLUTION)
    assert status == 201 and body["passed"], body
