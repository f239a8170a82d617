"""The progress event ledger: what the server observed, applied exactly once.

Only the server writes events, from what it saw happen (a run finished, the
executor graded a submission, a lesson was opened, a demo was watched to a
fraction, minutes in a room with a partner, a question asked or answered).
Clients never award anything: there is no event a client can send that is
taken at its word.

:func:`apply_event` applies an event in ONE transaction together with its
idempotency key. The key's UNIQUE index is the whole duplicate story: a
replay, or the same event arriving concurrently on another connection, waits
for the first to commit, then finds the key taken, changes nothing and
answers what the first application did (read back from the rows it wrote,
which all name the event). A correction is a new ``event.reversed`` event
naming the original: it writes negative point rows and never deletes.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
import msgspec

from store import Store

from .ledger import PointAward, grant
from .rules import TOUCHES

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
When = Annotated[datetime, msgspec.Meta(tz=True)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
#: ``give(type, wanted, reason, **metadata)``: points the event being applied earns,
#: granted when it closes.
Give = Callable[..., None]
#: The same, granted at once (returns what the daily cap let through).
GiveNow = Callable[..., Awaitable[PointAward]]

#: XP per event type (exercise XP comes from the exercise's own points).
LESSON_XP = 20
DEMO_XP = 10
DEMO_WATCHED_FRACTION = 0.9
QUESTION_XP = 2
ANSWER_XP = 5
PAIRING_XP_PER_MINUTE = 1
# Streaks (calendar days in the person's time zone, grace days earned by activity:
# one per 7 consecutive days, at most 2 held) are kept by the database's
# progress_streak (migration 0010), called for every activity event.


class Event(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type"
):
    """Fields every event has. ``key`` is the idempotency key: the same observation
    must always get the same key (e.g. ``run:<run id>:graded``)."""

    key: Key
    user_id: uuid.UUID
    occurred_at: When


class RunFinished(Event, frozen=True, tag="run.finished"):
    """A run ended (activity for the streak; no points: running is not achieving)."""

    room_id: Id | None = None
    language: str = ""
    exit_code: int | None = None


class SubmissionGraded(Event, frozen=True, tag="submission.graded"):
    """The executor graded code against an exercise's tests."""

    exercise_id: Id
    files: dict[str, str]
    language: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    score: Fraction
    passed: bool
    test_results: list[dict[str, Any]] = []
    feedback: str = ""
    execution_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    memory_bytes: Annotated[int, msgspec.Meta(ge=0)] | None = None
    room_id: Id | None = None
    exercise_version: int | None = None


class SolutionViewed(Event, frozen=True, tag="solution.viewed"):
    """The person opened an exercise's solution: later XP for it is halved."""

    exercise_id: Id


class LessonOpened(Event, frozen=True, tag="lesson.opened"):
    lesson_id: Id


class LessonStudied(Event, frozen=True, tag="lesson.studied"):
    """Time the server saw the lesson open and in use since the last report."""

    lesson_id: Id
    seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)]


class LessonCompleted(Event, frozen=True, tag="lesson.completed"):
    lesson_id: Id


class DemoWatched(Event, frozen=True, tag="demo.watched"):
    demo_id: Id
    fraction: Fraction


class PairingMinutes(Event, frozen=True, tag="pairing.minutes"):
    """Minutes the person spent in a room with a partner (one event per partner)."""

    partner_id: uuid.UUID
    minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)]
    room_id: Id | None = None


class QuestionAsked(Event, frozen=True, tag="question.asked"):
    question_id: int
    room_id: Id | None = None


class QuestionAnswered(Event, frozen=True, tag="question.answered"):
    question_id: int
    room_id: Id | None = None


class EventReversed(Event, frozen=True, tag="event.reversed"):
    """A correction: undo the points of event ``reverses`` (an id from the ledger)."""

    reverses: int
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


AnyEvent = (
    RunFinished
    | SubmissionGraded
    | SolutionViewed
    | LessonOpened
    | LessonStudied
    | LessonCompleted
    | DemoWatched
    | PairingMinutes
    | QuestionAsked
    | QuestionAnswered
    | EventReversed
)

#: Event types that count as activity for the streak.
_ACTIVITY = {
    "run.finished",
    "submission.graded",
    "lesson.opened",
    "lesson.studied",
    "lesson.completed",
    "demo.watched",
    "pairing.minutes",
    "question.asked",
    "question.answered",
}


class EventRejected(ValueError):
    """An event that cannot be applied (unknown person, exercise or lesson; a bad
    reversal; a key reused for a different event). Nothing was recorded."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying an event did. ``duplicate`` is true when the key had been
    applied before: the rest then describes that first application."""

    event_id: int
    type: str
    duplicate: bool
    points: int
    awards: tuple[PointAward, ...]
    achievements: tuple[str, ...]


def decode_event(data: bytes | str | dict[str, Any]) -> AnyEvent:
    """An event from JSON (or a decoded mapping), validated; msgspec.ValidationError if not."""
    if isinstance(data, dict):
        return msgspec.convert(data, AnyEvent)  # type: ignore[arg-type]
    return msgspec.json.decode(data, type=AnyEvent)  # type: ignore[arg-type]


def code_hash(files: dict[str, str]) -> str:
    """sha256 of the files in a canonical form (sorted paths, exact text): the
    same code gets the same hash whatever order the files came in."""
    canonical = json.dumps(sorted(files.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _payload(event: Event) -> dict[str, Any]:
    data = msgspec.to_builtins(event)
    for name in ("key", "user_id", "occurred_at", "type", "files", "reverses"):
        data.pop(name, None)
    if isinstance(event, SubmissionGraded):
        data["code_hash"] = code_hash(event.files)
    return data


async def apply_event(store: Store, event: Event) -> Applied:
    """Apply ``event`` once; a replay (same key) changes nothing and returns the
    first application's outcome with ``duplicate=True``.

    Raises :class:`EventRejected` for an event that cannot be applied and
    ``msgspec.ValidationError`` for one whose fields are out of range (structs
    built in code are re-validated here: msgspec only checks when decoding).
    After :class:`store.StoreUnavailable` the event may or may not have been
    applied: retry it with the same key, and it is applied exactly once either way.
    """
    event = msgspec.convert(msgspec.to_builtins(event), type(event))
    fixed = _fixed_gives(event)
    raced = False
    for attempt in range(5):
        try:
            async with store.connection("apply progress event") as conn:
                if fixed is not None:
                    [outcome] = await _apply_fixed(conn, [(event, fixed)])
                    if isinstance(outcome, EventRejected):
                        raise outcome
                    return outcome
                async with conn.transaction():
                    return await _apply(conn, event, raced=raced)
        except _Raced:
            # ON CONFLICT only absorbs conflicts on the key: a copy of this reversal
            # committed concurrently shows as a conflict on `reverses`. Once more, in
            # a new transaction, finds the key taken (a replay) or really refuses.
            raced = True
        except asyncpg.DeadlockDetectedError:
            if attempt == 4:
                raise
    raise EventRejected(f"{event.key}: could not be applied (repeated conflicts)")


def _give(type_: str, wanted: int, reason: str, **metadata: Any) -> dict[str, Any]:
    """Points an event earns, as ``progress_event_close`` grants them (in order)."""
    return {"type": type_, "wanted": wanted, "reason": reason, "metadata": metadata}


def _fixed_gives(event: Event) -> list[dict[str, Any]] | None:
    """The points of an event that needs nothing from the database to know them
    (and has no state of its own but minutes with a partner), or None: such an
    event is applied in one statement (``progress_event_apply``)."""
    if isinstance(event, RunFinished):
        return []
    if isinstance(event, QuestionAsked):
        return [_give("question", QUESTION_XP, "asked a question", question=event.question_id)]
    if isinstance(event, QuestionAnswered):
        return [_give("answer", ANSWER_XP, "answered a question", question=event.question_id)]
    if isinstance(event, PairingMinutes):
        # the minutes themselves go into user_partners in the same statement
        return [
            _give(
                "pairing",
                event.minutes * PAIRING_XP_PER_MINUTE,
                f"{event.minutes} min pairing",
                partner=str(event.partner_id),
            )
        ]
    return None


def _tag(event: Event) -> str:
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def _applied(
    event_id: int, tag: str, closed: dict[str, Any], before: Sequence[PointAward] = ()
) -> Applied:
    """The outcome, from ``progress_event_close``'s answer (after any points granted
    before it, which come first)."""
    awards = (
        *before,
        *(PointAward(a["type"], a["points"], a["wanted"], a["reason"]) for a in closed["awards"]),
    )
    return Applied(
        event_id=event_id,
        type=tag,
        duplicate=False,
        points=sum(a.points for a in awards),
        awards=awards,
        achievements=tuple(closed["achievements"]),
    )


def _fixed_item(event: Event, gives: list[dict[str, Any]]) -> dict[str, Any]:
    """The event as ``progress_event_apply_many`` takes it."""
    tag = _tag(event)
    pairing = isinstance(event, PairingMinutes)
    return {
        "key": event.key,
        "user": str(event.user_id),
        "type": tag,
        "payload": _payload(event),
        "at": event.occurred_at.isoformat(),
        "activity": tag in _ACTIVITY,
        "touched": sorted(TOUCHES.get(tag, ())),
        "gives": gives,
        "partner": str(event.partner_id) if pairing else None,
        "minutes": event.minutes if pairing else 0,
    }


async def _apply_fixed(
    conn: asyncpg.Connection, batch: Sequence[tuple[Event, list[dict[str, Any]]]]
) -> list[Applied | EventRejected]:
    """Events of fixed points in one statement (one transaction, one commit), each
    all or nothing: their outcomes in order. A refusal writes nothing and leaves the
    others applied; anything else (an outage, a deadlock) raises, and nothing of
    the batch was applied."""
    outcomes: list[Applied | EventRejected | None] = [None] * len(batch)
    todo: list[int] = []
    for n, (event, _) in enumerate(batch):
        if isinstance(event, PairingMinutes) and event.partner_id == event.user_id:
            outcomes[n] = EventRejected(f"{event.key}: a person does not pair with themselves")
        else:
            todo.append(n)
    if todo:
        try:
            answers = json.loads(
                await conn.fetchval(
                    "SELECT progress_event_apply_many($1::jsonb)",
                    json.dumps([_fixed_item(*batch[n]) for n in todo]),
                )
            )
        except asyncpg.ForeignKeyViolationError as exc:
            # a partner erased between the check and the write: the same call again
            # refuses that event by the check
            raise _Raced from exc
        for n, answer in zip(todo, answers, strict=True):
            event = batch[n][0]
            if not answer["known"]:
                outcomes[n] = EventRejected(f"{event.key}: no user {event.user_id}")
            elif answer.get("error") == "no-partner":
                assert isinstance(event, PairingMinutes)
                outcomes[n] = EventRejected(f"{event.key}: no user {event.partner_id}")
            elif answer["event_id"] is None:
                try:
                    outcomes[n] = await _replay(conn, event, _tag(event))
                except EventRejected as exc:
                    outcomes[n] = exc
            else:
                outcomes[n] = _applied(answer["event_id"], _tag(event), answer)
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


#: Events of fixed points one call of apply_events sends per statement: one
#: commit for many, while keeping each transaction short and its locks few.
BATCH = 32


async def apply_events(store: Store, events: Sequence[Event]) -> list[Applied | EventRejected]:
    """Apply many events, as the server's feed does with what it queued: the outcome
    of each, in the order given (an :class:`Applied`, ``duplicate`` for a replay, or
    the :class:`EventRejected` or validation error that refused it, as
    EventRejected).

    Events of fixed points go to the database :data:`BATCH` at a time in one
    statement: one commit for many. Each is still all or nothing and applied once
    (its key). The others go one at a time through :func:`apply_event`. One
    person's events keep their order; the batch is ordered by person so that
    concurrent batches take people's locks in the same order. After
    :class:`store.StoreUnavailable` some may have been applied: retry them all with
    the same keys.
    """
    outcomes: list[Applied | EventRejected | None] = [None] * len(events)
    checked: list[tuple[int, Event]] = []
    for n, event in enumerate(events):
        try:
            checked.append((n, msgspec.convert(msgspec.to_builtins(event), type(event))))
        except msgspec.ValidationError as exc:
            outcomes[n] = EventRejected(f"{event.key}: {exc}")
    checked.sort(key=lambda item: item[1].user_id.bytes)  # stable: each person's order stays
    at = 0
    while at < len(checked):
        run: list[tuple[int, Event, list[dict[str, Any]]]] = []
        while at < len(checked) and len(run) < BATCH:
            gives = _fixed_gives(checked[at][1])
            if gives is None:
                break
            run.append((*checked[at], gives))
            at += 1
        if run:
            got = await _with_retries(
                store, lambda conn, run=run: _apply_fixed(conn, [(e, g) for _, e, g in run])
            )
            for (n, _, _), outcome in zip(run, got, strict=True):
                outcomes[n] = outcome
        else:
            n, event = checked[at]
            at += 1
            try:
                outcomes[n] = await apply_event(store, event)
            except EventRejected as exc:
                outcomes[n] = exc
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


async def _with_retries(
    store: Store, work: Callable[[asyncpg.Connection], Awaitable[list[Applied | EventRejected]]]
) -> list[Applied | EventRejected]:
    """``work`` on a pooled connection, again after a deadlock or a lost race (both
    roll everything back, and the keys make a second try safe)."""
    for attempt in range(5):
        try:
            async with store.connection("apply progress events") as conn:
                return await work(conn)
        except _Raced:
            if attempt == 4:
                raise EventRejected("a partner kept disappearing mid-batch") from None
        except asyncpg.DeadlockDetectedError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


class _Raced(Exception):
    """A unique conflict that a fresh transaction may turn into a replay."""


async def _apply(conn: asyncpg.Connection, event: Event, *, raced: bool = False) -> Applied:
    """One event in the caller's transaction: opened and closed by the database's
    ``progress_event_open`` / ``progress_event_close`` (migration 0010), with what
    this type of event means in between (events of fixed points take _apply_fixed)."""
    tag = _tag(event)
    reverses = event.reverses if isinstance(event, EventReversed) else None
    try:
        opened = await conn.fetchrow(
            "SELECT * FROM progress_event_open($1, $2, $3, $4::jsonb, $5, $6)",
            event.key,
            event.user_id,
            tag,
            json.dumps(_payload(event)),
            event.occurred_at,
            reverses,
        )
    except asyncpg.UniqueViolationError:
        if not raced:
            raise _Raced from None
        raise EventRejected(f"{event.key}: event {reverses} is reversed already") from None
    except asyncpg.ForeignKeyViolationError:
        raise EventRejected(f"{event.key}: no event {reverses} to reverse") from None
    if not opened["known"]:
        raise EventRejected(f"{event.key}: no user {event.user_id}")
    event_id: int | None = opened["event_id"]
    if event_id is None:
        return await _replay(conn, event, tag)
    day: date = opened["day"]
    awards: list[PointAward] = []  # granted before the close (the exercise's, reversals)
    pending: list[dict[str, Any]] = []  # granted by the close
    touched: set[str] = set(TOUCHES.get(tag, ()))
    at = event.occurred_at

    def give(type_: str, wanted: int, reason: str, **metadata: Any) -> None:
        pending.append(_give(type_, wanted, reason, **metadata))

    async def give_now(type_: str, wanted: int, reason: str, **metadata: Any) -> PointAward:
        assert event_id is not None
        award = await grant(
            conn,
            user_id=event.user_id,
            event_id=event_id,
            day=day,
            type=type_,
            wanted=wanted,
            reason=reason,
            metadata=metadata,
            at=at,
        )
        awards.append(award)
        return award

    if isinstance(event, SubmissionGraded):
        await _submission(conn, event, event_id, give_now)
    elif isinstance(event, SolutionViewed):
        await _exercise_row(conn, event.user_id, event.exercise_id, event.key)
        await conn.execute(
            "UPDATE exercise_progress SET solution_viewed_at = COALESCE(solution_viewed_at, $3) "
            "WHERE user_id = $1 AND exercise_id = $2",
            event.user_id,
            event.exercise_id,
            at,
        )
    elif isinstance(event, LessonOpened | LessonStudied | LessonCompleted):
        await _lesson(conn, event, give)
    elif isinstance(event, DemoWatched):
        if event.fraction >= DEMO_WATCHED_FRACTION:
            before = await conn.fetchval(
                """
                SELECT count(*) FROM progress_events e
                WHERE e.user_id = $1 AND e.type = 'demo.watched' AND e.id <> $3
                  AND e.payload->>'demo_id' = $2 AND (e.payload->>'fraction')::float8 >= $4
                  AND NOT EXISTS (SELECT 1 FROM progress_events r WHERE r.reverses = e.id)
                """,
                event.user_id,
                event.demo_id,
                event_id,
                DEMO_WATCHED_FRACTION,
            )
            if not before:
                give("demo", DEMO_XP, f"watched demo {event.demo_id}", demo=event.demo_id)
    elif isinstance(event, EventReversed):
        more, undone = await _reverse(conn, event, event_id)
        touched |= more
        awards.extend(undone)

    closed = await conn.fetchval(
        "SELECT progress_event_close($1, $2, $3, $4, $5, $6::text[], $7::jsonb)",
        event.user_id,
        event_id,
        day,
        at,
        tag in _ACTIVITY,
        sorted(touched),
        json.dumps(pending),
    )
    return _applied(event_id, tag, json.loads(closed), awards)


async def _replay(conn: asyncpg.Connection, event: Event, tag: str) -> Applied:
    """The first application's outcome, read back from the rows that name its event."""
    first = await conn.fetchrow(
        "SELECT id, user_id, type FROM progress_events WHERE idempotency_key = $1", event.key
    )
    if first["user_id"] != event.user_id or first["type"] != tag:
        raise EventRejected(
            f"{event.key}: this key was used for a {first['type']} event of user "
            f"{first['user_id']}; a different event needs a different key"
        )
    rows = await conn.fetch(
        "SELECT type, points, wanted, reason FROM user_points WHERE event_id = $1 ORDER BY id",
        first["id"],
    )
    achievements = await conn.fetch(
        "SELECT achievement_id FROM user_achievements WHERE event_id = $1 ORDER BY achievement_id",
        first["id"],
    )
    awards = tuple(PointAward(r["type"], r["points"], r["wanted"], r["reason"]) for r in rows)
    return Applied(
        event_id=first["id"],
        type=tag,
        duplicate=True,
        points=sum(a.points for a in awards),
        awards=awards,
        achievements=tuple(r["achievement_id"] for r in achievements),
    )


async def _exercise_row(
    conn: asyncpg.Connection, user_id: uuid.UUID, exercise_id: str, key: str
) -> asyncpg.Record:
    exercise = await conn.fetchrow(
        "SELECT points, lesson_id, version FROM exercises WHERE id = $1", exercise_id
    )
    if exercise is None:
        raise EventRejected(f"{key}: no exercise {exercise_id!r}")
    await conn.execute(
        "INSERT INTO exercise_progress (user_id, exercise_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        user_id,
        exercise_id,
    )
    return exercise


def exercise_xp(points: int, best: float, score: float, solution_viewed: bool) -> int:
    """XP for raising an exercise's best score from ``best`` to ``score``: the
    difference in whole points (so all improvements together never exceed the
    exercise's points), halved (rounded down) once the solution was viewed."""
    if score <= best:
        return 0
    xp = math.floor(points * score + 1e-9) - math.floor(points * best + 1e-9)
    return xp // 2 if solution_viewed else xp


async def _submission(
    conn: asyncpg.Connection, event: SubmissionGraded, event_id: int, give: GiveNow
) -> None:
    """Store the submission; XP only for a higher score than the best before, and
    never for code this person already submitted for this exercise."""
    exercise = await _exercise_row(conn, event.user_id, event.exercise_id, event.key)
    state = await conn.fetchrow(
        "SELECT * FROM exercise_progress WHERE user_id = $1 AND exercise_id = $2 FOR UPDATE",
        event.user_id,
        event.exercise_id,
    )
    digest = code_hash(event.files)
    seen = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM code_submissions "
        "WHERE user_id = $1 AND exercise_id = $2 AND code_hash = $3)",
        event.user_id,
        event.exercise_id,
        digest,
    )
    await conn.execute(
        """
        INSERT INTO code_submissions
            (user_id, exercise_id, exercise_version, event_id, room_id, files, language,
             test_results, score, passed, feedback, execution_ms, memory_bytes, code_hash,
             created_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)
        """,
        event.user_id,
        event.exercise_id,
        event.exercise_version if event.exercise_version is not None else exercise["version"],
        event_id,
        event.room_id,
        json.dumps(event.files),
        event.language,
        json.dumps(event.test_results),
        event.score,
        event.passed,
        event.feedback,
        event.execution_ms,
        event.memory_bytes,
        digest,
        event.occurred_at,
    )
    first_pass = event.passed and state["first_passed_at"] is None
    xp = (
        0
        if seen
        else exercise_xp(
            exercise["points"],
            state["best_score"],
            event.score,
            state["solution_viewed_at"] is not None,
        )
    )
    granted = 0
    if xp:
        granted = (
            await give(
                "exercise",
                xp,
                f"exercise {event.exercise_id}: best score {state['best_score']:.2f} -> "
                f"{event.score:.2f}",
                exercise=event.exercise_id,
                solution_viewed=state["solution_viewed_at"] is not None,
            )
        ).points
    # xp is what the exercise really earned (after the daily cap), so that it
    # agrees with the ledger.
    await conn.execute(
        """
        UPDATE exercise_progress SET
            attempts = attempts + 1,
            best_score = GREATEST(best_score, $3),
            xp = xp + $4,
            first_passed_at = CASE WHEN $5 THEN $6 ELSE first_passed_at END,
            passed_first_try = passed_first_try
                OR ($5 AND attempts = 0 AND solution_viewed_at IS NULL)
        WHERE user_id = $1 AND exercise_id = $2
        """,
        event.user_id,
        event.exercise_id,
        event.score if not seen else state["best_score"],
        granted,
        first_pass,
        event.occurred_at,
    )
    if first_pass:
        await _lesson_percentage(conn, event.user_id, exercise["lesson_id"], event.occurred_at)


async def _lesson_percentage(
    conn: asyncpg.Connection, user_id: uuid.UUID, lesson_id: str, at: datetime
) -> None:
    """A lesson's percentage is the share of its (current) exercises passed."""
    await conn.execute(
        """
        INSERT INTO user_progress (user_id, lesson_id, status, percentage, started_at)
        SELECT $1, $2, 'in_progress', COALESCE(100.0 * count(p.first_passed_at)
                   / NULLIF(count(*), 0), 0), $3
        FROM exercises x
        LEFT JOIN exercise_progress p ON p.exercise_id = x.id AND p.user_id = $1
        WHERE x.lesson_id = $2 AND x.retired_at IS NULL
        ON CONFLICT (user_id, lesson_id) DO UPDATE SET
            percentage = CASE WHEN user_progress.status = 'completed' THEN 100
                              ELSE EXCLUDED.percentage END,
            started_at = COALESCE(user_progress.started_at, EXCLUDED.started_at)
        """,
        user_id,
        lesson_id,
        at,
    )


async def _lesson(
    conn: asyncpg.Connection,
    event: LessonOpened | LessonStudied | LessonCompleted,
    give: Give,
) -> None:
    if not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM lessons WHERE id = $1)", event.lesson_id
    ):
        raise EventRejected(f"{event.key}: no lesson {event.lesson_id!r}")
    row = await conn.fetchrow(
        """
        INSERT INTO user_progress (user_id, lesson_id, status, started_at)
        VALUES ($1, $2, 'in_progress', $3)
        ON CONFLICT (user_id, lesson_id)
        DO UPDATE SET started_at = COALESCE(user_progress.started_at, EXCLUDED.started_at)
        RETURNING completed_at
        """,
        event.user_id,
        event.lesson_id,
        event.occurred_at,
    )
    if isinstance(event, LessonStudied):
        await conn.execute(
            "UPDATE user_progress SET time_spent_seconds = time_spent_seconds + $3 "
            "WHERE user_id = $1 AND lesson_id = $2",
            event.user_id,
            event.lesson_id,
            event.seconds,
        )
    elif isinstance(event, LessonCompleted) and row["completed_at"] is None:
        await conn.execute(
            "UPDATE user_progress SET status = 'completed', completed_at = $3, percentage = 100 "
            "WHERE user_id = $1 AND lesson_id = $2",
            event.user_id,
            event.lesson_id,
            event.occurred_at,
        )
        give("lesson", LESSON_XP, f"completed lesson {event.lesson_id}", lesson=event.lesson_id)


async def _reverse(
    conn: asyncpg.Connection, event: EventReversed, event_id: int
) -> tuple[set[str], list[PointAward]]:
    """Undo the points of the original event with negative rows (each naming the
    row it undoes, on the original's day so that the daily tally gives the room
    back), and undo the state it changed. Achievements it awarded stay, and so
    does their XP: an award is not taken back (progress towards others may drop)."""
    original = await conn.fetchrow(
        "SELECT id, user_id, type, payload FROM progress_events WHERE id = $1", event.reverses
    )
    if original["user_id"] != event.user_id:
        raise EventRejected(f"{event.key}: event {event.reverses} is another person's")
    if original["type"] == "event.reversed":
        raise EventRejected(f"{event.key}: a reversal is not reversed; apply the event again")
    rows = await conn.fetch(
        "SELECT id, type, points, day FROM user_points "
        "WHERE event_id = $1 AND type <> 'achievement' ORDER BY id",
        original["id"],
    )
    total = 0
    undone: list[PointAward] = []
    for row in rows:
        reason = f"reversal of event {original['id']}: {event.reason}".strip(" :")
        await conn.execute(
            """
            INSERT INTO user_points
                (user_id, type, points, wanted, reason, metadata, event_id, day, reverses,
                 created_at)
            VALUES ($1, $2, $3, $3, $4, $5::jsonb, $6, $7, $8, $9)
            """,
            event.user_id,
            row["type"],
            -row["points"],
            reason,
            json.dumps({"reversed_event": original["id"]}),
            event_id,
            row["day"],
            row["id"],
            event.occurred_at,
        )
        await conn.execute(
            "UPDATE user_daily_points SET points = GREATEST(points - $4, 0) "
            "WHERE user_id = $1 AND day = $2 AND type = $3",
            event.user_id,
            row["day"],
            row["type"],
            row["points"],
        )
        total += row["points"]
        undone.append(PointAward(row["type"], -row["points"], -row["points"], reason))
    if total:
        await conn.execute(
            "UPDATE user_stats SET xp = xp - $2 WHERE user_id = $1", event.user_id, total
        )
    if original["type"] in _ACTIVITY:
        # the streak as if the reversed event had never happened
        await conn.execute(
            "SELECT progress_streak_rebuild($1, $2::text[])", event.user_id, sorted(_ACTIVITY)
        )
    payload = json.loads(original["payload"])
    if original["type"] == "submission.graded":
        await _recompute_exercise(conn, event.user_id, payload["exercise_id"])
    elif original["type"] == "pairing.minutes":
        await conn.execute(
            "UPDATE user_partners SET minutes = GREATEST(minutes - $3, 0) "
            "WHERE user_id = $1 AND partner_id = $2",
            event.user_id,
            uuid.UUID(payload["partner_id"]),
            payload["minutes"],
        )
    elif original["type"] == "lesson.completed":
        await conn.execute(
            "UPDATE user_progress SET status = 'in_progress', completed_at = NULL "
            "WHERE user_id = $1 AND lesson_id = $2",
            event.user_id,
            payload["lesson_id"],
        )
    return set(TOUCHES.get(original["type"], ())), undone


async def _recompute_exercise(
    conn: asyncpg.Connection, user_id: uuid.UUID, exercise_id: str
) -> None:
    """Exercise state from the submissions whose events are not reversed."""
    await conn.execute(
        """
        WITH kept AS (
            SELECT s.* FROM code_submissions s
            WHERE s.user_id = $1 AND s.exercise_id = $2
              AND NOT EXISTS (SELECT 1 FROM progress_events r WHERE r.reverses = s.event_id)
        ), earned AS (
            SELECT COALESCE(sum(p.points), 0) AS xp FROM user_points p
            JOIN code_submissions s ON s.event_id = p.event_id
                OR s.event_id = (SELECT e.reverses FROM progress_events e WHERE e.id = p.event_id)
            WHERE s.user_id = $1 AND s.exercise_id = $2 AND p.type = 'exercise'
        )
        UPDATE exercise_progress SET
            attempts = (SELECT count(*) FROM kept),
            best_score = COALESCE((SELECT max(score) FROM kept), 0),
            first_passed_at = (SELECT min(created_at) FROM kept WHERE passed),
            passed_first_try = COALESCE(
                (SELECT k.passed AND (solution_viewed_at IS NULL
                                      OR solution_viewed_at > k.created_at)
                 FROM kept k ORDER BY k.created_at, k.id LIMIT 1), false),
            xp = (SELECT xp FROM earned)
        WHERE user_id = $1 AND exercise_id = $2
        """,
        user_id,
        exercise_id,
    )
