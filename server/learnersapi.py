"""A learner's progress, achievements and points over HTTP (issue 8).

Who may see whom is decided once, here (:func:`visible_user`): a student sees
their own details, instructors and teaching assistants those of their cohort,
admins everyone. A person outside what the caller may see is answered 404
whether or not they exist, so the API does not tell staff of one cohort who is
in another.

Reporting lesson activity (``POST /api/users/<id>/progress``) only ever turns
into ledger events (``progress.apply_event``): a client says "I opened / I am
studying / I finished this lesson", the server checks that against what it
observed before (a lesson must be opened before time is spent on it or it is
completed; time spent is capped by the time the server saw pass; an exercise
lesson is complete once its exercises are passed) and the rules decide the
points. Nothing here writes a point directly.

``GET|PUT /api/users/<id>/settings`` is where a person sets their own time zone
(the days streaks and daily caps count in), under the same rules of who sees whom.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from aiohttp import web

from progress import EventRejected, LessonCompleted, LessonOpened, LessonStudied, apply_event
from progress.rules import metric_values
from rooms import STAFF_ROLES
from store import StoreUnavailable

from .apiauth import IDENTITY
from .errors import decode_body, json_error, read_body, unavailable
from .keys import STORE
from .tokens import Identity, subject_uuid

#: A lesson report is a few fields: anything bigger is not one.
MAX_REPORT_BYTES = 4096
#: Ledger entries per page of ``GET /api/users/<id>/points``.
DEFAULT_PAGE = 50
MAX_PAGE = 200


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def visible_user(request: web.Request, raw: str) -> uuid.UUID:
    """The user ``raw`` names (``me``, a UUID or a token subject) if the caller may see them.

    A student asking about someone else is refused (403: the rule does not
    depend on who exists); staff asking about someone outside their cohort, or
    about nobody, get 404 either way.
    """
    identity = request[IDENTITY]
    me = identity.user_uuid
    target = me if raw == "me" else subject_uuid(raw)
    if target == me:
        return me
    if identity.role not in STAFF_ROLES:
        raise json_error(
            web.HTTPForbidden, "permission denied: a student sees only their own progress"
        )
    try:
        async with request.app[STORE].connection("look up a user") as conn:
            cohort = await conn.fetchrow("SELECT cohort FROM users WHERE id = $1", target)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if cohort is None or not may_see(identity, cohort["cohort"]):
        raise json_error(web.HTTPNotFound, f"no user {raw!r} among those you may see")
    return target


def may_see(identity: Identity, cohort: str | None) -> bool:
    """Staff see their cohort (an instructor without one sees no one else); admins all."""
    if identity.role == "admin":
        return True
    return (
        identity.role in STAFF_ROLES and identity.cohort is not None and cohort == identity.cohort
    )


# -- progress -------------------------------------------------------------------------


async def get_progress(request: web.Request) -> web.Response:
    """XP, streak, and where the person is in every lesson and exercise they touched."""
    user = await visible_user(request, request.match_info["user"])
    try:
        async with request.app[STORE].connection("read progress") as conn:
            stats = await conn.fetchrow(
                "SELECT xp, streak_current, streak_longest, streak_last_day, grace_days "
                "FROM user_stats WHERE user_id = $1",
                user,
            )
            lessons = await conn.fetch(
                """
                SELECT p.lesson_id, l.title, l.kind, m.course_id, l.module_id, p.status,
                       p.percentage, p.started_at, p.completed_at, p.time_spent_seconds
                FROM user_progress p
                JOIN lessons l ON l.id = p.lesson_id
                JOIN modules m ON m.id = l.module_id
                WHERE p.user_id = $1
                ORDER BY m.course_id, p.lesson_id
                """,
                user,
            )
            exercises = await conn.fetch(
                """
                SELECT p.exercise_id, x.lesson_id, x.title, x.points, p.attempts, p.best_score,
                       p.xp, p.first_passed_at, p.passed_first_try, p.solution_viewed_at
                FROM exercise_progress p JOIN exercises x ON x.id = p.exercise_id
                WHERE p.user_id = $1
                ORDER BY p.exercise_id
                """,
                user,
            )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(
        {
            "user": str(user),
            "xp": stats["xp"] if stats else 0,
            "streak": {
                "current": stats["streak_current"] if stats else 0,
                "longest": stats["streak_longest"] if stats else 0,
                "last_day": stats["streak_last_day"].isoformat()
                if stats and stats["streak_last_day"]
                else None,
                "grace_days": stats["grace_days"] if stats else 0,
            },
            "lessons": [
                {
                    "lesson": r["lesson_id"],
                    "title": r["title"],
                    "kind": r["kind"],
                    "course": r["course_id"],
                    "module": r["module_id"],
                    "status": r["status"],
                    "percentage": r["percentage"],
                    "started_at": iso(r["started_at"]),
                    "completed_at": iso(r["completed_at"]),
                    "time_spent_seconds": r["time_spent_seconds"],
                }
                for r in lessons
            ],
            "exercises": [
                {
                    "exercise": r["exercise_id"],
                    "lesson": r["lesson_id"],
                    "title": r["title"],
                    "points": r["points"],
                    "attempts": r["attempts"],
                    "best_score": r["best_score"],
                    "xp": r["xp"],
                    "passed": r["first_passed_at"] is not None,
                    "first_passed_at": iso(r["first_passed_at"]),
                    "passed_first_try": r["passed_first_try"],
                    "solution_viewed": r["solution_viewed_at"] is not None,
                }
                for r in exercises
            ],
        }
    )


class LessonReport(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/users/<id>/progress``: what the client did with a lesson."""

    lesson: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    action: Literal["opened", "studied", "completed"]
    #: For ``studied``: seconds in the lesson since the last report.
    seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)] | None = None


_report = msgspec.json.Decoder(LessonReport)


async def post_progress(request: web.Request) -> web.Response:
    """Record lesson activity as events; the rules decide what it earns."""
    identity = request[IDENTITY]
    raw = request.match_info["user"]
    me = identity.user_uuid
    if raw != "me" and subject_uuid(raw) != me:
        raise json_error(
            web.HTTPForbidden, "permission denied: lesson activity is reported only for oneself"
        )
    body = await read_body(request, MAX_REPORT_BYTES)
    report = decode_body(_report, body, "report")
    if report.action == "studied" and report.seconds is None:
        raise json_error(web.HTTPBadRequest, "invalid report: seconds: required for studied")
    if report.action != "studied" and report.seconds is not None:
        raise json_error(web.HTTPBadRequest, "invalid report: seconds: only for studied")
    now = datetime.now(UTC)
    store = request.app[STORE]
    try:
        async with store.connection("check lesson report") as conn:
            lesson = await conn.fetchrow(
                "SELECT id, kind, retired_at FROM lessons WHERE id = $1", report.lesson
            )
            if lesson is None or lesson["retired_at"] is not None:
                raise json_error(web.HTTPNotFound, f"no lesson {report.lesson!r}")
            # The last time the server saw this lesson opened or studied by this person.
            last_seen = await conn.fetchval(
                """
                SELECT max(occurred_at) FROM progress_events
                WHERE user_id = $1 AND type IN ('lesson.opened', 'lesson.studied')
                  AND payload->>'lesson_id' = $2
                """,
                me,
                report.lesson,
            )
            unpassed = 0
            if lesson["kind"] == "exercise":
                unpassed = await conn.fetchval(
                    """
                    SELECT count(*) FROM exercises x
                    LEFT JOIN exercise_progress p ON p.exercise_id = x.id AND p.user_id = $1
                    WHERE x.lesson_id = $2 AND x.retired_at IS NULL
                      AND p.first_passed_at IS NULL
                    """,
                    me,
                    report.lesson,
                )
        event: LessonOpened | LessonStudied | LessonCompleted
        if report.action == "opened":
            event = LessonOpened(
                key=f"lesson:{me}:{report.lesson}:opened:{uuid.uuid4()}",
                user_id=me,
                occurred_at=now,
                lesson_id=report.lesson,
            )
        else:
            if last_seen is None:
                raise json_error(
                    web.HTTPConflict, f"lesson {report.lesson!r} was never opened: open it first"
                )
            if report.action == "studied":
                assert report.seconds is not None
                seen = int((now - last_seen).total_seconds())
                seconds = min(report.seconds, seen)
                if seconds < 1:
                    raise json_error(
                        web.HTTPConflict,
                        "no time has passed since the lesson was last opened or reported",
                    )
                event = LessonStudied(
                    key=f"lesson:{me}:{report.lesson}:studied:{uuid.uuid4()}",
                    user_id=me,
                    occurred_at=now,
                    lesson_id=report.lesson,
                    seconds=seconds,
                )
            else:
                if unpassed:
                    raise json_error(
                        web.HTTPConflict,
                        f"lesson {report.lesson!r} has {unpassed} exercise(s) not passed yet",
                    )
                event = LessonCompleted(
                    key=f"lesson:{me}:{report.lesson}:completed",
                    user_id=me,
                    occurred_at=now,
                    lesson_id=report.lesson,
                )
        applied = await apply_event(store, event)
        async with store.connection("read lesson progress") as conn:
            row = await conn.fetchrow(
                "SELECT status, percentage, started_at, completed_at, time_spent_seconds "
                "FROM user_progress WHERE user_id = $1 AND lesson_id = $2",
                me,
                report.lesson,
            )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    except EventRejected as exc:
        raise json_error(web.HTTPConflict, str(exc)) from exc
    return web.json_response(
        {
            "event": applied.event_id,
            "type": applied.type,
            "duplicate": applied.duplicate,
            "seconds": event.seconds if isinstance(event, LessonStudied) else None,
            "xp_awarded": 0 if applied.duplicate else applied.points,
            "achievements_awarded": [] if applied.duplicate else list(applied.achievements),
            "lesson": {
                "lesson": report.lesson,
                "status": row["status"],
                "percentage": row["percentage"],
                "started_at": iso(row["started_at"]),
                "completed_at": iso(row["completed_at"]),
                "time_spent_seconds": row["time_spent_seconds"],
            },
        },
        status=201 if not applied.duplicate else 200,
    )


# -- achievements --------------------------------------------------------------------

#: Holders of each achievement, overall and in one cohort, against the population
#: of learners overall and in that cohort: the real rarity, in one query. Staff
#: (``$3``: instructors, teaching assistants, admins, by the role their token last
#: gave the users row) are neither holders nor population: they do not take the
#: course, and an instructor testing an exercise would otherwise make a badge
#: look commoner (or, by swelling the population, rarer) than it is among learners.
RARITY_SQL = """
WITH population AS (
    SELECT count(*) AS everyone,
           count(*) FILTER (WHERE $1::text IS NOT NULL AND cohort = $1) AS cohort
    FROM users
    WHERE role <> ALL ($3::text[])
), holders AS (
    SELECT ua.achievement_id,
           count(*) AS everyone,
           count(*) FILTER (WHERE $1::text IS NOT NULL AND u.cohort = $1) AS cohort
    FROM user_achievements ua JOIN users u ON u.id = ua.user_id
    WHERE ua.awarded_at IS NOT NULL AND u.role <> ALL ($3::text[])
    GROUP BY ua.achievement_id
)
SELECT a.id, a.name, a.description, a.icon, a.xp, a.rarity, a.conditions, a.retired_at,
       COALESCE(h.everyone, 0) AS holders, COALESCE(h.cohort, 0) AS cohort_holders,
       p.everyone AS population, p.cohort AS cohort_population
FROM achievements a
CROSS JOIN population p
LEFT JOIN holders h ON h.achievement_id = a.id
WHERE a.retired_at IS NULL OR a.id = ANY($2::text[])
ORDER BY a.id
"""


#: The roles left out of rarity (sorted: a stable query parameter).
STAFF = sorted(STAFF_ROLES)


def _share(holders: int, population: int) -> dict[str, Any]:
    return {
        "holders": holders,
        "of": population,
        "share": round(holders / population, 4) if population else None,
    }


def _catalogue_entry(row: Any, cohort: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "icon": row["icon"],
        "xp": row["xp"],
        "rarity": row["rarity"],
        "retired": row["retired_at"] is not None,
        "conditions": json.loads(row["conditions"]),
        "held": {
            "overall": _share(row["holders"], row["population"]),
            "cohort": {"cohort": cohort, **_share(row["cohort_holders"], row["cohort_population"])}
            if cohort is not None
            else None,
        },
    }


async def user_achievements(request: web.Request) -> web.Response:
    """Every active achievement (and retired ones the person holds) with the person's
    progress towards it now and how rare it really is among learners, overall and in
    their cohort."""
    user = await visible_user(request, request.match_info["user"])
    try:
        async with request.app[STORE].connection("read achievements") as conn:
            person = await conn.fetchrow("SELECT cohort FROM users WHERE id = $1", user)
            cohort = person["cohort"] if person else None
            held = {
                r["achievement_id"]: r
                for r in await conn.fetch(
                    "SELECT achievement_id, awarded_at FROM user_achievements "
                    "WHERE user_id = $1 AND awarded_at IS NOT NULL",
                    user,
                )
            }
            rows = await conn.fetch(RARITY_SQL, cohort, list(held), STAFF)
            metrics = {
                c["metric"] for r in rows for c in json.loads(r["conditions"]) if "metric" in c
            }
            values = await metric_values(conn, user, metrics)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    items = []
    for row in rows:
        entry = _catalogue_entry(row, cohort)
        conditions = entry.pop("conditions")
        progress = [
            {
                "metric": c["metric"],
                "value": values.get(c["metric"], 0),
                "target": c["at_least"],
            }
            for c in conditions
        ]
        awarded = held.get(row["id"])
        entry["awarded"] = awarded is not None
        entry["awarded_at"] = iso(awarded["awarded_at"]) if awarded else None
        entry["progress"] = progress
        entry["fraction"] = (
            1.0
            if awarded
            else round(
                min(min(p["value"] / p["target"], 1.0) for p in progress) if progress else 0.0, 4
            )
        )
        items.append(entry)
    return web.json_response({"user": str(user), "cohort": cohort, "achievements": items})


async def catalogue(request: web.Request) -> web.Response:
    """The active achievements, with the share of learners who hold each (overall)."""
    try:
        async with request.app[STORE].connection("read achievement catalogue") as conn:
            rows = await conn.fetch(RARITY_SQL, None, [], STAFF)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    items = []
    for row in rows:
        entry = _catalogue_entry(row, None)
        entry["held"] = entry["held"]["overall"]
        items.append(entry)
    return web.json_response({"achievements": items})


# -- points ---------------------------------------------------------------------------


def _int_query(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise json_error(web.HTTPBadRequest, f"{name}: must be a whole number") from None
    if value < 1:
        raise json_error(web.HTTPBadRequest, f"{name}: must be at least 1")
    return value


async def user_points(request: web.Request) -> web.Response:
    """The person's points ledger, newest first; ``?before=<entry id>`` pages back."""
    user = await visible_user(request, request.match_info["user"])
    before = _int_query(request, "before")
    limit = min(_int_query(request, "limit") or DEFAULT_PAGE, MAX_PAGE)
    try:
        async with request.app[STORE].connection("read points") as conn:
            total = await conn.fetchval("SELECT xp FROM user_stats WHERE user_id = $1", user)
            rows = await conn.fetch(
                """
                SELECT id, type, points, wanted, reason, metadata, event_id, day, reverses,
                       created_at
                FROM user_points
                WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
                ORDER BY id DESC
                LIMIT $3
                """,
                user,
                before,
                limit + 1,
            )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    return web.json_response(
        {
            "user": str(user),
            "xp": total or 0,
            "entries": [
                {
                    "id": r["id"],
                    "type": r["type"],
                    "points": r["points"],
                    "wanted": r["wanted"],
                    "reason": r["reason"],
                    "metadata": json.loads(r["metadata"]),
                    "event": r["event_id"],
                    "day": r["day"].isoformat(),
                    "reverses": r["reverses"],
                    "created_at": iso(r["created_at"]),
                }
                for r in rows
            ],
            "next": rows[-1]["id"] if more and rows else None,
        }
    )


# -- settings -------------------------------------------------------------------------

#: A settings body is a few short fields: anything bigger is not one.
MAX_SETTINGS_BYTES = 1024


class SettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """``PUT /api/users/me/settings``: every field optional, only those given change."""

    #: An IANA zone name (``Europe/Paris``): the days streaks and daily caps count in.
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


_settings = msgspec.json.Decoder(SettingsUpdate)


async def _settings_json(conn: Any, user: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT time_zone FROM users WHERE id = $1", user)
    if row is None:  # the middleware makes the requester's row; staff see only rows
        raise json_error(web.HTTPNotFound, f"no user {str(user)!r}")
    return {"user": str(user), "time_zone": row["time_zone"]}


async def get_settings(request: web.Request) -> web.Response:
    """The person's settings (their own, or a learner's for the staff who may see them)."""
    user = await visible_user(request, request.match_info["user"])
    try:
        async with request.app[STORE].connection("read settings") as conn:
            body = await _settings_json(conn, user)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(body)


async def put_settings(request: web.Request) -> web.Response:
    """Change one's own settings. The time zone is checked by the database itself
    (migration 0007's trigger, against ``pg_timezone_names``), the same rule every
    later streak computation relies on, so a zone accepted here can always be used."""
    identity = request[IDENTITY]
    raw = request.match_info["user"]
    me = identity.user_uuid
    if raw != "me" and subject_uuid(raw) != me:
        raise json_error(
            web.HTTPForbidden, "permission denied: settings are changed only by their owner"
        )
    body = await read_body(request, MAX_SETTINGS_BYTES)
    update = decode_body(_settings, body, "settings")
    try:
        async with request.app[STORE].connection("change settings") as conn:
            if update.time_zone is not None:
                try:
                    await conn.execute(
                        "UPDATE users SET time_zone = $2 WHERE id = $1", me, update.time_zone
                    )
                except asyncpg.CheckViolationError as exc:
                    raise json_error(
                        web.HTTPBadRequest,
                        f"invalid settings: time_zone: unknown time zone {update.time_zone!r}: "
                        "use an IANA name such as Europe/Paris",
                    ) from exc
            answer = await _settings_json(conn, me)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/users/{user}/progress", get_progress)
    app.router.add_post("/api/users/{user}/progress", post_progress)
    app.router.add_get("/api/users/{user}/achievements", user_achievements)
    app.router.add_get("/api/users/{user}/points", user_points)
    app.router.add_get("/api/users/{user}/settings", get_settings)
    app.router.add_put("/api/users/{user}/settings", put_settings)
    app.router.add_get("/api/achievements", catalogue)
