"""The progress event ledger on the real Postgres: exactly-once application,
points rules, daily caps, streaks and reversals (issue 8).

Clocks are injected through ``occurred_at``; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import msgspec
import pytest

from progress import (
    Applied,
    EventRejected,
    EventReversed,
    LessonCompleted,
    LessonOpened,
    PairingMinutes,
    QuestionAnswered,
    QuestionAsked,
    RunFinished,
    SolutionViewed,
    SubmissionGraded,
    apply_event,
    apply_events,
    decode_event,
)
from store import Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LESSON = "c1.m.l"


async def make_user(store: Store, name: str | None = None, time_zone: str = "UTC") -> uuid.UUID:
    name = name or f"u{uuid.uuid4().hex[:8]}"
    async with store.connection("test user") as conn:
        return await conn.fetchval(
            "INSERT INTO users (email, username, time_zone) VALUES ($1, $2, $3) RETURNING id",
            f"{name}@example.org",
            name,
            time_zone,
        )


async def make_exercises(store: Store, count: int = 1, points: int = 10) -> list[str]:
    """A course c1 with one lesson and ``count`` exercises worth ``points`` each."""
    async with store.connection("test course") as conn:
        await conn.execute(
            "INSERT INTO courses (id, title, version) VALUES ('c1', 'C', 1) ON CONFLICT DO NOTHING"
        )
        await conn.execute(
            "INSERT INTO modules (id, course_id, position, title) VALUES ('c1.m', 'c1', 0, 'M') "
            "ON CONFLICT DO NOTHING"
        )
        await conn.execute(
            "INSERT INTO lessons (id, module_id, position, title, kind) "
            "VALUES ($1, 'c1.m', 0, 'L', 'exercise') ON CONFLICT DO NOTHING",
            LESSON,
        )
        start = await conn.fetchval("SELECT count(*) FROM exercises")
        ids = [f"c1.m.e{start + n}" for n in range(count)]
        for position, exercise_id in enumerate(ids):
            await conn.execute(
                "INSERT INTO exercises (id, lesson_id, position, title, language, points) "
                "VALUES ($1, $2, $3, 'E', 'python', $4)",
                exercise_id,
                LESSON,
                start + position,
                points,
            )
    return ids


def graded(
    user: uuid.UUID,
    exercise: str,
    score: float,
    *,
    code: str | None = None,
    key: str | None = None,
    at: datetime = T0,
) -> SubmissionGraded:
    return SubmissionGraded(
        key=key or f"sub:{uuid.uuid4()}",
        user_id=user,
        occurred_at=at,
        exercise_id=exercise,
        files={"main.py": code if code is not None else f"# {uuid.uuid4()}\n"},
        language="python",
        score=score,
        passed=score == 1.0,
        test_results=[{"name": "t", "passed": score == 1.0}],
        execution_ms=12.5,
        memory_bytes=1 << 20,
    )


async def ledger_sum(store: Store, user: uuid.UUID, type_: str | None = None) -> int:
    async with store.connection("test sum") as conn:
        return await conn.fetchval(
            "SELECT COALESCE(sum(points), 0) FROM user_points "
            "WHERE user_id = $1 AND ($2::text IS NULL OR type = $2)",
            user,
            type_,
        )


async def fetchval(store: Store, query: str, *args: object) -> object:
    async with store.connection("test query") as conn:
        return await conn.fetchval(query, *args)


async def set_cap(store: Store, type_: str, cap: int | None) -> None:
    async with store.connection("test cap") as conn:
        await conn.execute("UPDATE point_caps SET daily_cap = $2 WHERE type = $1", type_, cap)


# -- exactly once ---------------------------------------------------------------


async def test_the_same_event_twice_awards_once(store: Store) -> None:
    user = await make_user(store)
    [exercise] = await make_exercises(store)
    event = graded(user, exercise, 1.0, key="run:1:graded")
    first = await apply_event(store, event)
    again = await apply_event(store, event)
    assert (first.duplicate, first.points) == (False, 10)
    assert again.duplicate is True
    assert (again.event_id, again.points, again.awards) == (first.event_id, 10, first.awards)
    assert await ledger_sum(store, user) == 10
    assert await fetchval(store, "SELECT count(*) FROM progress_events") == 1
    assert await fetchval(store, "SELECT count(*) FROM code_submissions") == 1


async def test_the_same_event_concurrently_from_many_connections_awards_once(
    store: Store,
) -> None:
    user = await make_user(store)
    [exercise] = await make_exercises(store)
    event = graded(user, exercise, 1.0, key="run:2:graded")
    results = await asyncio.gather(*(apply_event(store, event) for _ in range(8)))
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert {r.event_id for r in results} == {results[0].event_id}
    assert {r.points for r in results} == {10}
    assert await ledger_sum(store, user) == 10
    assert await fetchval(store, "SELECT xp FROM user_stats WHERE user_id = $1", user) == 10
    assert await fetchval(store, "SELECT count(*) FROM code_submissions") == 1


async def test_a_key_reused_for_another_event_is_refused(store: Store) -> None:
    user = await make_user(store)
    await apply_event(store, RunFinished(key="k", user_id=user, occurred_at=T0))
    with pytest.raises(EventRejected, match="different key"):
        await apply_event(
            store, QuestionAsked(key="k", user_id=user, occurred_at=T0, question_id=1)
        )
    assert await ledger_sum(store, user) == 0


async def test_fifty_concurrent_submissions_keep_points_exact(store: Store) -> None:
    user = await make_user(store)
    await apply_event(store, RunFinished(key="warm", user_id=user, occurred_at=T0))
    *distinct, shared = await make_exercises(store, 26, points=10)
    await set_cap(store, "exercise", 200)
    # 25 exercises passed once each, and 25 attempts at one more exercise whose
    # scores arrive in any order: whatever the order, the improvements add up to
    # that exercise's 10 points. Wanted: 25 * 10 + 10 = 260; the cap lets 200 through.
    events = [graded(user, e, 1.0) for e in distinct]
    events += [graded(user, shared, n / 25) for n in range(1, 26)]
    results = await asyncio.gather(*(apply_event(store, e) for e in events))
    assert sum(r.points for r in results) == 200
    assert await ledger_sum(store, user) == 200
    assert (
        await fetchval(store, "SELECT sum(wanted) FROM user_points WHERE user_id = $1", user) == 260
    )
    assert await fetchval(store, "SELECT xp FROM user_stats WHERE user_id = $1", user) == 200
    assert (
        await fetchval(store, "SELECT points FROM user_daily_points WHERE user_id = $1", user)
        == 200
    )
    assert await fetchval(store, "SELECT count(*) FROM code_submissions") == 50
    shared_state = await fetchval(
        store,
        "SELECT row(attempts, best_score)::text FROM exercise_progress WHERE exercise_id = $1",
        shared,
    )
    assert shared_state == "(25,1)"
    # each exercise's xp is what it really earned: together, what the cap let through
    assert await fetchval(store, "SELECT sum(xp) FROM exercise_progress") == 200
    assert (
        await fetchval(
            store, "SELECT count(*) FROM exercise_progress WHERE first_passed_at IS NOT NULL"
        )
        == 26
    )
    assert (
        await fetchval(store, "SELECT percentage FROM user_progress WHERE user_id = $1", user)
        == 100
    )


# -- exercise XP ------------------------------------------------------------------


async def test_rerunning_the_same_code_earns_nothing(store: Store) -> None:
    user = await make_user(store)
    [exercise, flaky] = await make_exercises(store, 2)
    assert (await apply_event(store, graded(user, exercise, 1.0, code="ok"))).points == 10
    again = await apply_event(store, graded(user, exercise, 1.0, code="ok"))
    assert (again.duplicate, again.points, again.awards) == (False, 0, ())
    # The same code graded higher the second time (a flaky test) earns nothing either.
    assert (await apply_event(store, graded(user, flaky, 0.5, code="same"))).points == 5
    assert (await apply_event(store, graded(user, flaky, 1.0, code="same"))).points == 0
    assert await ledger_sum(store, user) == 15
    assert await fetchval(store, "SELECT count(*) FROM code_submissions") == 4
    assert (
        await fetchval(
            store, "SELECT attempts FROM exercise_progress WHERE exercise_id = $1", flaky
        )
        == 2
    )


async def test_a_better_score_earns_the_difference(store: Store) -> None:
    user = await make_user(store)
    [exercise] = await make_exercises(store, points=10)
    earned = [
        (await apply_event(store, graded(user, exercise, score))).points
        for score in (0.3, 0.8, 0.5, 0.8, 1.0, 1.0)
    ]
    assert earned == [3, 5, 0, 0, 2, 0]
    assert await ledger_sum(store, user, "exercise") == 10


async def test_viewing_the_solution_halves_later_xp(store: Store) -> None:
    user = await make_user(store)
    [exercise, other, peeked] = await make_exercises(store, 3, points=10)
    assert (await apply_event(store, graded(user, exercise, 0.4))).points == 4
    viewed = SolutionViewed(
        key="sol:1", user_id=user, occurred_at=T0 + timedelta(minutes=1), exercise_id=exercise
    )
    assert (await apply_event(store, viewed)).points == 0
    late = await apply_event(store, graded(user, exercise, 1.0, at=T0 + timedelta(minutes=2)))
    assert late.points == 3  # (10 - 4) // 2
    assert await ledger_sum(store, user) == 7
    # Only that exercise: another one still earns in full.
    assert (await apply_event(store, graded(user, other, 1.0))).points == 10
    # Solution first, then a pass: half the XP, and it is no "first try".
    await apply_event(
        store, SolutionViewed(key="sol:2", user_id=user, occurred_at=T0, exercise_id=peeked)
    )
    assert (await apply_event(store, graded(user, peeked, 1.0))).points == 5
    async with store.connection("test") as conn:
        rows = await conn.fetch(
            "SELECT exercise_id, passed_first_try, xp FROM exercise_progress ORDER BY exercise_id"
        )
    assert [(r["exercise_id"], r["passed_first_try"], r["xp"]) for r in rows] == [
        (exercise, False, 7),
        (other, True, 10),
        (peeked, False, 5),
    ]


# -- daily caps ----------------------------------------------------------------------


async def test_daily_caps_hold_under_concurrency(store: Store) -> None:
    user = await make_user(store, time_zone="Europe/Paris")
    await set_cap(store, "question", 10)
    day1 = [
        QuestionAsked(key=f"q:{n}", user_id=user, occurred_at=T0, question_id=n) for n in range(20)
    ]
    # 23:30 UTC on the same UTC day is already the next day in Paris: a fresh cap.
    day2 = [
        QuestionAsked(
            key=f"q2:{n}",
            user_id=user,
            occurred_at=T0.replace(hour=23, minute=30),
            question_id=n,
        )
        for n in range(20)
    ]
    await asyncio.gather(*(apply_event(store, e) for e in day1 + day2))
    async with store.connection("test") as conn:
        rows = await conn.fetch(
            "SELECT day, sum(points) AS points, sum(wanted) AS wanted FROM user_points "
            "WHERE user_id = $1 GROUP BY day ORDER BY day",
            user,
        )
        assert [(r["day"], r["points"], r["wanted"]) for r in rows] == [
            (date(2026, 1, 5), 10, 40),
            (date(2026, 1, 6), 10, 40),
        ]
        # The cap is the database's own rule, whoever writes.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE user_daily_points SET points = points + 1 WHERE user_id = $1", user
            )


# -- streaks --------------------------------------------------------------------------


async def streak(store: Store, user: uuid.UUID) -> tuple[int, int, int, date | None]:
    async with store.connection("test streak") as conn:
        row = await conn.fetchrow("SELECT * FROM user_stats WHERE user_id = $1", user)
    return (
        row["streak_current"],
        row["streak_longest"],
        row["grace_days"],
        row["streak_last_day"],
    )


async def test_streak_counts_calendar_days_in_the_users_time_zone(store: Store) -> None:
    user = await make_user(store, time_zone="America/Los_Angeles")  # UTC-8 in January
    times = [
        datetime(2026, 1, 5, 6, 0, tzinfo=UTC),  # Jan 4, 22:00 local
        datetime(2026, 1, 5, 20, 0, tzinfo=UTC),  # Jan 5, 12:00
        datetime(2026, 1, 6, 7, 30, tzinfo=UTC),  # Jan 5, 23:30 (same local day)
        datetime(2026, 1, 6, 9, 0, tzinfo=UTC),  # Jan 6, 01:00
    ]
    for n, at in enumerate(times):
        await apply_event(store, RunFinished(key=f"run:{n}", user_id=user, occurred_at=at))
    # In UTC these are only two days (5th, 6th); where the person lives, three.
    assert await streak(store, user) == (3, 3, 0, date(2026, 1, 6))


async def test_grace_days_are_earned_by_activity_and_cover_missed_days(store: Store) -> None:
    user = await make_user(store, time_zone="Asia/Tokyo")
    day = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # noon in Tokyo

    async def active(offset: int) -> None:
        await apply_event(
            store,
            RunFinished(
                key=f"run:{offset}", user_id=user, occurred_at=day + timedelta(days=offset)
            ),
        )

    for offset in range(7):
        await active(offset)
    assert (await streak(store, user))[:3] == (7, 7, 1)
    await active(8)  # day 7 missed: the grace day covers it
    assert (await streak(store, user))[:3] == (8, 8, 0)
    await active(11)  # two days missed, none held: the streak starts again
    assert (await streak(store, user))[:3] == (1, 8, 0)
    for offset in range(12, 12 + 20):
        await active(offset)
    assert (await streak(store, user))[:3] == (21, 21, 2)  # three earned, at most two held
    # Viewing a solution is not activity; a late event of an earlier day changes nothing.
    await apply_event(
        store,
        RunFinished(key="late", user_id=user, occurred_at=day + timedelta(days=2)),
    )
    assert (await streak(store, user))[:3] == (21, 21, 2)


# -- reversals ---------------------------------------------------------------------------


async def test_a_reversed_activity_takes_its_day_out_of_the_streak(store: Store) -> None:
    user = await make_user(store)
    day = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    applied = [
        await apply_event(
            store, RunFinished(key=f"run:{n}", user_id=user, occurred_at=day + timedelta(days=n))
        )
        for n in range(5)
    ]
    assert await streak(store, user) == (5, 5, 0, date(2026, 4, 5))
    # The middle day's only activity was not real: without it, days 4-5 follow a gap.
    await apply_event(
        store,
        EventReversed(key="fix:run:2", user_id=user, occurred_at=day, reverses=applied[2].event_id),
    )
    assert await streak(store, user) == (2, 2, 0, date(2026, 4, 5))
    # Reversing the last day's activity: the streak ends the day before.
    await apply_event(
        store,
        EventReversed(key="fix:run:4", user_id=user, occurred_at=day, reverses=applied[4].event_id),
    )
    assert await streak(store, user) == (1, 2, 0, date(2026, 4, 4))


async def test_a_reversing_event_undoes_points_without_deleting(store: Store) -> None:
    user = await make_user(store)
    [exercise] = await make_exercises(store, points=10)
    first = await apply_event(store, graded(user, exercise, 1.0, code="a"))
    assert first.points == 10
    undo = EventReversed(
        key="fix:1", user_id=user, occurred_at=T0, reverses=first.event_id, reason="cheating"
    )
    # Delivered several times at once: applied once, the others are replays.
    copies = await asyncio.gather(*(apply_event(store, undo) for _ in range(6)))
    assert sorted(c.duplicate for c in copies) == [False] + [True] * 5
    assert {c.points for c in copies} == {-10}
    assert (await apply_event(store, undo)).duplicate is True
    assert await ledger_sum(store, user) == 0
    async with store.connection("test") as conn:
        assert await conn.fetchval("SELECT count(*) FROM user_points") == 2
        assert await conn.fetchval("SELECT count(*) FROM progress_events") == 2
        assert await conn.fetchval("SELECT count(*) FROM code_submissions") == 1
        assert await conn.fetchval("SELECT xp FROM user_stats") == 0
        assert await conn.fetchval("SELECT points FROM user_daily_points") == 0
        state = await conn.fetchrow("SELECT * FROM exercise_progress")
        assert (state["best_score"], state["first_passed_at"], state["xp"]) == (0, None, 0)
        for statement in ("DELETE FROM user_points", "UPDATE progress_events SET payload = '{}'"):
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute(statement)
    # Reversed once only; passing again (new code) earns the exercise anew.
    with pytest.raises(EventRejected, match="reversed already"):
        await apply_event(store, msgspec.structs.replace(undo, key="fix:2"))
    assert (await apply_event(store, graded(user, exercise, 1.0, code="b"))).points == 10


async def test_reversals_are_checked(store: Store) -> None:
    user, other = await make_user(store), await make_user(store)
    event = await apply_event(store, RunFinished(key="r", user_id=user, occurred_at=T0))
    with pytest.raises(EventRejected, match="another person"):
        await apply_event(
            store, EventReversed(key="x", user_id=other, occurred_at=T0, reverses=event.event_id)
        )
    with pytest.raises(EventRejected, match="no event"):
        await apply_event(
            store, EventReversed(key="y", user_id=user, occurred_at=T0, reverses=999_999)
        )
    assert await fetchval(store, "SELECT count(*) FROM progress_events") == 1


async def test_pairing_and_lessons(store: Store) -> None:
    user, partner = await make_user(store), await make_user(store)
    await make_exercises(store)
    await set_cap(store, "pairing", 50)
    for n in range(3):
        await apply_event(
            store,
            PairingMinutes(
                key=f"pair:{n}", user_id=user, occurred_at=T0, partner_id=partner, minutes=20
            ),
        )
    assert await ledger_sum(store, user, "pairing") == 50
    assert await fetchval(store, "SELECT minutes FROM user_partners") == 60
    await apply_event(store, LessonOpened(key="lo", user_id=user, occurred_at=T0, lesson_id=LESSON))
    done = LessonCompleted(key="lc", user_id=user, occurred_at=T0, lesson_id=LESSON)
    assert (await apply_event(store, done)).points == 20
    again = LessonCompleted(key="lc2", user_id=user, occurred_at=T0, lesson_id=LESSON)
    assert (await apply_event(store, again)).points == 0
    async with store.connection("test") as conn:
        row = await conn.fetchrow("SELECT * FROM user_progress")
    assert (row["status"], row["percentage"], row["completed_at"]) == ("completed", 100, T0)


# -- validation -----------------------------------------------------------------------


async def test_invalid_events_are_refused_and_change_nothing(store: Store) -> None:
    user = await make_user(store)
    [exercise] = await make_exercises(store)
    with pytest.raises(msgspec.ValidationError, match="score"):
        await apply_event(store, graded(user, exercise, 1.5))
    with pytest.raises(msgspec.ValidationError, match="occurred_at"):
        await apply_event(
            store, RunFinished(key="n", user_id=user, occurred_at=datetime(2026, 1, 1))
        )
    with pytest.raises(EventRejected, match="no exercise"):
        await apply_event(store, graded(user, "c1.m.nope", 1.0))
    with pytest.raises(EventRejected, match="no user"):
        await apply_event(store, RunFinished(key="u", user_id=uuid.uuid4(), occurred_at=T0))
    nobody = uuid.uuid4()
    with pytest.raises(EventRejected, match=f"no user {nobody}"):
        await apply_event(
            store,
            PairingMinutes(key="p1", user_id=user, occurred_at=T0, partner_id=nobody, minutes=3),
        )
    with pytest.raises(EventRejected, match="does not pair with themselves"):
        await apply_event(
            store,
            PairingMinutes(key="p2", user_id=user, occurred_at=T0, partner_id=user, minutes=3),
        )
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type": "points.granted", "key": "k"}')
    event = decode_event(
        {"type": "run.finished", "key": "ok", "user_id": str(user), "occurred_at": T0.isoformat()}
    )
    assert isinstance(event, RunFinished)
    assert await fetchval(store, "SELECT count(*) FROM progress_events") == 0
    assert await fetchval(store, "SELECT count(*) FROM user_points") == 0


async def test_time_zone_must_be_known(store: Store) -> None:
    for name in ("Mars/Olympus", "UTC+3", ""):
        with pytest.raises(asyncpg.CheckViolationError, match="unknown time zone"):
            await make_user(store, time_zone=name)
    user = await make_user(store, time_zone="Pacific/Auckland")
    async with store.connection("test") as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="unknown time zone"):
            await conn.execute("UPDATE users SET time_zone = 'nowhere' WHERE id = $1", user)
        await conn.execute("UPDATE users SET time_zone = 'UTC' WHERE id = $1", user)


async def test_a_person_can_still_be_erased(store: Store) -> None:
    """Append-only refuses direct deletes, but not the cascade from users."""
    user, partner = await make_user(store), await make_user(store)
    [exercise] = await make_exercises(store)
    await apply_event(store, graded(user, exercise, 1.0))
    await apply_event(
        store,
        PairingMinutes(key="p", user_id=partner, occurred_at=T0, partner_id=user, minutes=5),
    )
    async with store.connection("test") as conn:
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM progress_events WHERE user_id = $1", user)
        await conn.execute("DELETE FROM users WHERE id = $1", user)
        assert await conn.fetchval("SELECT count(*) FROM progress_events") == 1
        assert await conn.fetchval("SELECT count(*) FROM user_points") == 1
        assert await conn.fetchval("SELECT count(*) FROM user_partners") == 0


# -- many at once (the server's feed) ------------------------------------------------


async def test_a_batch_applies_each_event_once_and_refuses_only_the_bad_ones(
    store: Store,
) -> None:
    ann, bob = await make_user(store), await make_user(store)
    [exercise] = await make_exercises(store, points=10)
    nobody = uuid.uuid4()
    asked = QuestionAsked(key="q:1", user_id=ann, occurred_at=T0, question_id=1)
    events = [
        asked,
        PairingMinutes(key="p:1", user_id=ann, occurred_at=T0, partner_id=bob, minutes=5),
        RunFinished(key="r:nobody", user_id=nobody, occurred_at=T0),  # no such person
        PairingMinutes(key="p:2", user_id=bob, occurred_at=T0, partner_id=nobody, minutes=5),
        PairingMinutes(key="p:3", user_id=bob, occurred_at=T0, partner_id=bob, minutes=5),
        graded(bob, exercise, 1.0, key="g:1"),  # not of fixed points: applied on its own
        asked,  # the same event again in the same batch: a replay
        QuestionAnswered(key="a:1", user_id=bob, occurred_at=T0, question_id=1),
    ]
    outcomes = await apply_events(store, events)
    assert [type(o).__name__ for o in outcomes] == [
        "Applied",
        "Applied",
        "EventRejected",
        "EventRejected",
        "EventRejected",
        "Applied",
        "Applied",
        "Applied",
    ]
    assert f"no user {nobody}" in str(outcomes[2]) and f"no user {nobody}" in str(outcomes[3])
    assert "themselves" in str(outcomes[4])
    first, again = outcomes[0], outcomes[6]
    assert isinstance(first, Applied) and isinstance(again, Applied)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.event_id == first.event_id and again.points == first.points == 2
    # the refused ones wrote nothing; the others wrote exactly their rows
    assert await fetchval(store, "SELECT count(*) FROM progress_events") == 4
    assert await fetchval(store, "SELECT count(*) FROM user_partners") == 1
    assert await ledger_sum(store, ann) == 2 + 5
    assert await ledger_sum(store, bob) == 10 + 5  # the exercise, the answer
    # the whole batch again: every event a replay, nothing more written
    again_all = await apply_events(store, events)
    assert [getattr(o, "duplicate", None) for o in again_all] == [
        True,
        True,
        None,
        None,
        None,
        True,
        True,
        True,
    ]
    assert await fetchval(store, "SELECT count(*) FROM progress_events") == 4


async def test_concurrent_batches_over_the_same_people_keep_points_exact(store: Store) -> None:
    """Batches from several feed workers at once, over the same people in different
    orders: no event is lost or doubled, and a person's streak sees every day."""
    people = [await make_user(store) for _ in range(12)]
    batches = []
    for worker in range(6):
        order = people[worker % 12 :] + people[: worker % 12]
        batches.append(
            [
                QuestionAsked(
                    key=f"w{worker}:{n}",
                    user_id=person,
                    occurred_at=T0 + timedelta(days=worker),
                    question_id=n,
                )
                for n, person in enumerate(order * 3)
            ]
        )
    results = await asyncio.gather(*(apply_events(store, b) for b in batches))
    assert all(isinstance(o, Applied) and not o.duplicate for r in results for o in r)
    assert await fetchval(store, "SELECT count(*) FROM progress_events") == 6 * 36
    # question XP is 2 a question with a daily cap of 10: 3 questions a day each = 6
    for person in people:
        assert await ledger_sum(store, person) == 6 * 6
