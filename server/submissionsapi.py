"""Graded submissions of course exercises (issue 8).

``POST /api/exercises/<id>/submit`` runs the exercise's tests — read from the
database, never from the client — against the submitted files in the
executor's sandbox, then records the outcome as one ``SubmissionGraded``
event. The event ledger decides everything else in the same transaction: the
stored ``code_submissions`` row, XP only for a better best score (and never for
code already submitted), achievements. The key is unique to this request, so
a retry after a lost answer is a new submission, while the ledger's own
"same code again" rule keeps it from earning twice.

When nothing could be graded (no engine, the executor closing) nothing is
stored: a 503 says why, and the person's attempt count and streak are not
touched by an infrastructure failure.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from aiohttp import web

from executor import ExecutorError, Job, JobError, Result
from progress import Applied, EventRejected, SubmissionGraded, apply_event, code_hash
from rooms import metrics
from rooms.extension import ProgressAward
from store import StoreUnavailable

from .api import check_path
from .apiauth import IDENTITY, spend_allowance
from .errors import json_error, read_body, unavailable
from .keys import REGISTRY, RUN_LIMIT, RUNS, SETTINGS, STORE
from .learnersapi import iso, may_see, visible_user
from .upgrade import ROOM_ID, ROOM_ID_RULE

log = logging.getLogger("opencode_live.server")

#: Most files in one submission (the executor allows more, with the tests).
MAX_FILES = 100
#: Submissions per page of a listing.
MAX_LISTED = 100
_EXERCISE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*){2}$")
#: Files that look like test-runner configuration or plugins, or would shadow the
#: runner: refused with a clear message, since they cannot do what they seem to. The
#: grade does not depend on this list: the submitted code runs in a process of its own
#: that cannot reach the test runner or its report (executor/graders/), and the runner
#: never loads a file of the workspace.
_RUNNER_FILES = {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"}
_STARTUP_FILES = {"sitecustomize.py", "usercustomize.py", "pytest.py", "py.py"}
_RUNNER_PACKAGES = {"_pytest", "pytest", "pluggy"}


def _exercise_id(request: web.Request) -> str:
    exercise_id = request.match_info["exercise_id"]
    if len(exercise_id) > 200 or not _EXERCISE_ID.match(exercise_id):
        raise json_error(web.HTTPNotFound, f"no exercise {exercise_id!r}")
    return exercise_id


def _bad(message: str) -> web.HTTPException:
    return json_error(web.HTTPBadRequest, f"invalid submission: {message}")


def _check_files(value: object, tests: dict[str, str]) -> dict[str, str]:
    """The submitted files, or 400 naming the field (and the file) that is wrong."""
    if not isinstance(value, dict):
        raise _bad("files: must be an object of path: text")
    if not value:
        raise _bad("files: must hold at least one file")
    if len(value) > MAX_FILES:
        raise _bad(f"files: at most {MAX_FILES} files")
    for path, text in value.items():
        if not isinstance(text, str):
            raise _bad(f"files[{path!r}]: must be text")
        try:
            check_path(path)
        except web.HTTPBadRequest as exc:
            raise _bad(f"files: {json.loads(exc.text or '{}').get('error', path)}") from None
        name = PurePosixPath(path).name
        if path in tests:
            raise _bad(f"files[{path!r}]: is one of the exercise's test files")
        if (
            name in _RUNNER_FILES
            or name in _STARTUP_FILES
            or name.endswith(".pth")
            or path.split("/")[0] in _RUNNER_PACKAGES
        ):
            raise _bad(f"files[{path!r}]: test-runner configuration is not accepted")
    return value


def _tests_json(result: Result) -> list[dict[str, Any]]:
    return [{"name": t.name, "passed": t.passed, "message": t.message} for t in result.tests or []]


def _submission_json(row: Any, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row["id"],
        "user": str(row["user_id"]),
        "exercise": row["exercise_id"],
        "exercise_version": row["exercise_version"],
        "room": row["room_id"],
        "language": row["language"],
        "score": row["score"],
        "passed": row["passed"],
        "execution_ms": row["execution_ms"],
        "memory_bytes": row["memory_bytes"],
        "code_hash": row["code_hash"],
        "created_at": iso(row["created_at"]),
    }
    if full:
        data["files"] = json.loads(row["files"])
        data["tests"] = json.loads(row["test_results"])
        data["feedback"] = row["feedback"]
    return data


async def submit(request: web.Request) -> web.Response:
    """Grade the files against the exercise's tests and record it; 201 with the outcome."""
    identity = request[IDENTITY]
    exercise_id = _exercise_id(request)
    settings = request.app[SETTINGS]
    raw = await read_body(request, settings.max_message_bytes)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    unknown = sorted(set(body) - {"files", "room"})
    if unknown:
        raise _bad(f"{unknown[0]}: unknown field (expected files, room)")
    room_id = body.get("room")
    if room_id is not None and (not isinstance(room_id, str) or not ROOM_ID.match(room_id)):
        raise _bad(f"room: must be a room id ({ROOM_ID_RULE})")
    store = request.app[STORE]
    try:
        async with store.connection("read exercise") as conn:
            exercise = await conn.fetchrow(
                "SELECT id, title, language, points, tests, version, retired_at "
                "FROM exercises WHERE id = $1",
                exercise_id,
            )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if exercise is None:
        raise json_error(web.HTTPNotFound, f"no exercise {exercise_id!r}")
    if exercise["retired_at"] is not None:
        raise json_error(
            web.HTTPGone, f"exercise {exercise_id!r} was retired: it takes no submissions"
        )
    tests: dict[str, str] = json.loads(exercise["tests"])
    files = _check_files(body.get("files"), tests)

    service = request.app[RUNS]
    if not service.executor.available:
        raise json_error(
            web.HTTPServiceUnavailable, f"runs are unavailable: {service.executor.reason}"
        )
    await spend_allowance(request.app[RUN_LIMIT], identity, "runs")
    job = Job(language=exercise["language"], files=files, tests=tests, limits=service.limits)
    started = time.perf_counter()
    try:
        result, _chunks = await service.executor.run(job, owner=str(identity.user_uuid))
    except JobError as exc:
        raise _bad(f"files: {exc}") from exc
    except ExecutorError as exc:
        metrics.ERRORS.labels(kind="run_unavailable").inc()
        raise json_error(web.HTTPServiceUnavailable, f"not graded: {exc}") from exc
    if result.status == "killed":  # stopped by the server (shutting down), not by the code
        raise json_error(web.HTTPServiceUnavailable, f"not graded: {result.message}")
    score = float(result.score or 0.0)
    passed = result.status == "ok" and bool(result.tests) and score >= 1.0
    me = identity.user_uuid
    event = SubmissionGraded(
        key=f"submission:{me}:{exercise_id}:{uuid.uuid4()}",
        user_id=me,
        occurred_at=datetime.now(UTC),
        exercise_id=exercise_id,
        files=files,
        language=exercise["language"],
        score=min(max(score, 0.0), 1.0),
        passed=passed,
        test_results=_tests_json(result),
        feedback=result.message,
        execution_ms=result.wall_ms,
        memory_bytes=result.peak_memory_bytes,
        room_id=room_id,
        exercise_version=exercise["version"],
    )
    try:
        applied = await apply_event(store, event)
        async with store.connection("read submission") as conn:
            submission_id = await conn.fetchval(
                "SELECT id FROM code_submissions WHERE event_id = $1", applied.event_id
            )
            names = await _achievement_names(conn, applied.achievements)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    except EventRejected as exc:  # the exercise went away between the read and now
        raise json_error(web.HTTPConflict, str(exc)) from exc
    xp = sum(a.points for a in applied.awards if a.type == "exercise")
    achievements = [
        {
            "id": a,
            "name": names.get(a, a),
            "xp": sum(
                p.points
                for p in applied.awards
                if p.type == "achievement" and p.reason == f"achievement {a}"
            ),
        }
        for a in applied.achievements
    ]
    log.info(
        "submission graded",
        extra={
            "exercise": exercise_id,
            "by": str(me),
            "score": score,
            "xp": xp,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    if room_id is not None:
        _tell_room(request, room_id, identity, exercise["title"], passed, xp, achievements)
    return web.json_response(
        {
            "submission": submission_id,
            "exercise": exercise_id,
            "score": score,
            "passed": passed,
            "status": result.status,
            "feedback": result.message,
            "tests": event.test_results,
            "execution_ms": result.wall_ms,
            "memory_bytes": result.peak_memory_bytes,
            "code_hash": code_hash(files),
            "xp_awarded": xp,
            "achievements_awarded": achievements,
            "points": _points(applied),
        },
        status=201,
    )


def _points(applied: Applied) -> list[dict[str, Any]]:
    return [
        {"type": a.type, "points": a.points, "wanted": a.wanted, "reason": a.reason}
        for a in applied.awards
    ]


async def _achievement_names(conn: Any, ids: tuple[str, ...]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await conn.fetch("SELECT id, name FROM achievements WHERE id = ANY($1::text[])", ids)
    return {r["id"]: r["name"] for r in rows}


def _tell_room(
    request: web.Request,
    room_id: str,
    identity: Any,
    title: str,
    passed: bool,
    xp: int,
    achievements: list[dict[str, Any]],
) -> None:
    """``progress.award`` to the room the submitter is in, if it is loaded here and
    they are connected to it (naming a room one is not in tells nobody)."""
    room = request.app[REGISTRY].rooms.get(room_id)
    me = identity.user_uuid
    if room is None or not any(c.person.user_id == me for c in room.connections):
        return
    if passed:
        room.broadcast_room(
            ProgressAward(
                user=str(me), name=identity.name, kind="exercise-passed", title=title, xp=xp
            )
        )
    for a in achievements:
        room.broadcast_room(
            ProgressAward(
                user=str(me), name=identity.name, kind="achievement", title=a["name"], xp=a["xp"]
            )
        )


# -- reading -------------------------------------------------------------------------

_COLUMNS = (
    "s.id, s.user_id, s.exercise_id, s.exercise_version, s.room_id, s.language, s.score, "
    "s.passed, s.execution_ms, s.memory_bytes, s.code_hash, s.created_at"
)


async def list_submissions(request: web.Request) -> web.Response:
    """The caller's submissions of an exercise, newest first (staff: ``?user=`` of their
    cohort); ``?before=<submission id>`` pages back."""
    exercise_id = _exercise_id(request)
    user = await visible_user(request, request.query.get("user", "me"))
    raw_before = request.query.get("before")
    before: int | None = None
    if raw_before is not None:
        try:
            before = int(raw_before)
        except ValueError:
            raise json_error(web.HTTPBadRequest, "before: must be a submission id") from None
    try:
        async with request.app[STORE].connection("list submissions") as conn:
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM exercises WHERE id = $1)", exercise_id
            ):
                raise json_error(web.HTTPNotFound, f"no exercise {exercise_id!r}")
            rows = await conn.fetch(
                f"""
                SELECT {_COLUMNS} FROM code_submissions s
                WHERE s.user_id = $1 AND s.exercise_id = $2
                  AND ($3::bigint IS NULL OR (s.created_at, s.id) < (
                       SELECT b.created_at, b.id FROM code_submissions b WHERE b.id = $3))
                ORDER BY s.created_at DESC, s.id DESC
                LIMIT $4
                """,
                user,
                exercise_id,
                before,
                MAX_LISTED + 1,
            )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    more = len(rows) > MAX_LISTED
    rows = rows[:MAX_LISTED]
    return web.json_response(
        {
            "exercise": exercise_id,
            "user": str(user),
            "submissions": [_submission_json(r, full=False) for r in rows],
            "next": rows[-1]["id"] if more else None,
        }
    )


async def get_submission(request: web.Request) -> web.Response:
    """One submission with its files and test results: its owner, or staff of the
    owner's cohort, or an admin; 404 for everyone else (existence is not told)."""
    identity = request[IDENTITY]
    raw = request.match_info["submission_id"]
    missing = json_error(web.HTTPNotFound, f"no submission {raw!r}")
    try:
        submission_id = int(raw)
    except ValueError:
        raise missing from None
    if not 0 < submission_id < 2**63:
        raise missing
    try:
        async with request.app[STORE].connection("read submission") as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS}, s.files, s.test_results, s.feedback, u.cohort "
                "FROM code_submissions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
                submission_id,
            )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if row is None or (
        row["user_id"] != identity.user_uuid and not may_see(identity, row["cohort"])
    ):
        raise missing
    return web.json_response(_submission_json(row, full=True))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/exercises/{exercise_id}/submit", submit)
    app.router.add_get("/api/exercises/{exercise_id}/submissions", list_submissions)
    app.router.add_get("/api/submissions/{submission_id}", get_submission)
