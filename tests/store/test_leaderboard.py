"""Leaderboards on the real Postgres (issue 8): ranks and ties, UTC windows,
neighbours, hiding and minors, frozen closed windows, cohort scope.

Points come from ``progress.apply_event`` (graded submissions of exercises
worth the points wanted) with injected ``occurred_at``; ``now`` is injected
into the board, so nothing depends on the real clock.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

from progress import Applied, EventReversed, SubmissionGraded, apply_event
from progress.leaderboard import (
    FREEZE_GRACE,
    Board,
    freeze,
    freeze_closed,
    last_closed,
    leaderboard,
    next_freeze,
    set_cohort_minors,
    set_visible,
    window_of,
)
from store import Store
from tests.store.test_progress_events import make_exercises

#: A Wednesday: its ISO week is Mon 2026-01-12 .. Sun 2026-01-18 (UTC).
NOW = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)
THIS_WEEK = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
LAST_WEEK = datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
LAST_MONTH = datetime(2025, 12, 30, 9, 0, tzinfo=UTC)


async def make_user(store: Store, name: str, cohort: str | None = None) -> uuid.UUID:
    async with store.connection("test user") as conn:
        return await conn.fetchval(
            "INSERT INTO users (email, username, display_name, cohort) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            f"{name}@example.org",
            name,
            name.title(),
            cohort,
        )


async def earn(store: Store, user: uuid.UUID, points: int, at: datetime) -> Applied:
    """``points`` capped XP for ``user`` at ``at``: a full score on a new exercise."""
    [exercise] = await make_exercises(store, 1, points)
    applied = await apply_event(
        store,
        SubmissionGraded(
            key=f"sub:{uuid.uuid4()}",
            user_id=user,
            occurred_at=at,
            exercise_id=exercise,
            files={"main.py": f"# {uuid.uuid4()}\n"},
            language="python",
            score=1.0,
            passed=True,
        ),
    )
    assert applied.points == points
    return applied


async def reverse(store: Store, user: uuid.UUID, applied: Applied, at: datetime) -> None:
    await apply_event(
        store,
        EventReversed(
            key=f"rev:{uuid.uuid4()}", user_id=user, occurred_at=at, reverses=applied.event_id
        ),
    )


def ranks(board: Board) -> list[tuple[int, str, int]]:
    return [(e.rank, e.username, e.points) for e in board.entries]


async def test_windows_are_utc_iso_weeks_and_calendar_months() -> None:
    week = window_of("week", datetime(2026, 1, 18, 23, 59, tzinfo=UTC))
    assert (week.start, week.end) == (date(2026, 1, 12), date(2026, 1, 19))
    # Monday 00:30 in Paris is still Sunday in UTC: last week's window.
    paris = datetime(2026, 1, 19, 0, 30, tzinfo=UTC) - timedelta(hours=1)
    assert window_of("week", paris).start == date(2026, 1, 12)
    month = window_of("month", date(2025, 12, 31))
    assert (month.start, month.end) == (date(2025, 12, 1), date(2026, 1, 1))
    assert window_of("all", NOW).end is None and not window_of("all", NOW).closed(NOW)


async def test_ties_go_to_whoever_got_there_first(store: Store) -> None:
    ann, bob, cat, dan = [await make_user(store, n) for n in ("ann", "bob", "cat", "dan")]
    t = THIS_WEEK
    await earn(store, ann, 20, t)
    await earn(store, ann, 10, t + timedelta(hours=3))  # ann reaches 30 at +3h
    await earn(store, bob, 30, t + timedelta(hours=1))  # bob reaches 30 at +1h: first
    await earn(store, cat, 50, t + timedelta(hours=5))
    await earn(store, dan, 30, t + timedelta(hours=2))
    board = await leaderboard(store, viewer=ann, period="week", now=NOW)
    assert ranks(board) == [(1, "cat", 50), (2, "bob", 30), (3, "dan", 30), (4, "ann", 30)]
    assert board.me.rank == 4 and board.me.points == 30 and board.ranked == 4
    assert [e.me for e in board.entries] == [False, False, False, True]
    # A reversal lowers the total and moves "when it got there" to the reversal.
    first = await earn(store, dan, 5, t + timedelta(hours=4))
    await reverse(store, dan, first, t + timedelta(hours=6))
    board = await leaderboard(store, viewer=ann, period="week", now=NOW)
    assert ranks(board) == [(1, "cat", 50), (2, "bob", 30), (3, "ann", 30), (4, "dan", 30)]


async def test_an_event_last_week_is_not_in_this_weeks_board(store: Store) -> None:
    ann, bob = await make_user(store, "ann"), await make_user(store, "bob")
    await earn(store, ann, 40, LAST_WEEK)
    await earn(store, bob, 10, THIS_WEEK)
    await earn(store, bob, 5, LAST_MONTH)
    week = await leaderboard(store, viewer=ann, period="week", now=NOW)
    assert ranks(week) == [(1, "bob", 10)]
    assert week.me.rank is None and week.me.points == 0
    month = await leaderboard(store, viewer=ann, period="month", now=NOW)
    assert ranks(month) == [(1, "ann", 40), (2, "bob", 10)]
    ever = await leaderboard(store, viewer=ann, period="all", now=NOW)
    assert ranks(ever) == [(1, "ann", 40), (2, "bob", 15)]
    last = await leaderboard(store, viewer=ann, period="week", at=LAST_WEEK, now=NOW)
    assert ranks(last) == [(1, "ann", 40)] and last.frozen


async def test_neighbours_around_the_viewer(store: Store) -> None:
    users = [await make_user(store, f"p{n:02d}") for n in range(40)]
    for n, user in enumerate(users):  # p00 has the most points
        await earn(store, user, 400 - 5 * n, THIS_WEEK)
    me = users[24]
    board = await leaderboard(store, viewer=me, period="week", now=NOW)
    assert [e.rank for e in board.entries] == [*range(1, 11), *range(20, 31)]
    assert [e.username for e in board.entries][10:] == [f"p{n:02d}" for n in range(19, 30)]
    assert board.me.rank == 25 and [e.me for e in board.entries].count(True) == 1
    top = await leaderboard(store, viewer=me, period="week", now=NOW, around="top", limit=3)
    assert [e.rank for e in top.entries] == [1, 2, 3, 25]  # their own line is always there
    near_top = await leaderboard(store, viewer=users[2], period="week", now=NOW)
    assert [e.rank for e in near_top.entries] == list(range(1, 11))
    cohort_free = await leaderboard(store, viewer=users[39], period="week", now=NOW, limit=2)
    assert [e.rank for e in cohort_free.entries] == [1, 2, *range(35, 41)]


async def test_hidden_people_see_themselves_and_nobody_else_sees_them(store: Store) -> None:
    ann, bob, cat = [await make_user(store, n) for n in ("ann", "bob", "cat")]
    await earn(store, ann, 30, THIS_WEEK)
    await earn(store, bob, 20, THIS_WEEK)
    await earn(store, cat, 10, THIS_WEEK)
    assert await set_visible(store, ann, False) is False
    for viewer in (bob, cat):
        board = await leaderboard(store, viewer=viewer, period="week", now=NOW)
        assert ranks(board) == [(1, "bob", 20), (2, "cat", 10)]
        assert board.ranked == 2  # the hidden are not ranked, so not counted
    own = await leaderboard(store, viewer=ann, period="week", now=NOW)
    assert own.me.rank == 1 and own.me.visible is False and own.ranked == 2
    assert ranks(own) == [(1, "ann", 30), (1, "bob", 20), (2, "cat", 10)]
    assert await set_visible(store, ann, True) is True
    board = await leaderboard(store, viewer=cat, period="week", now=NOW)
    assert ranks(board) == [(1, "ann", 30), (2, "bob", 20), (3, "cat", 10)]
    assert board.ranked == 3


async def test_minors_are_private_by_default_and_may_opt_in(store: Store) -> None:
    await set_cohort_minors(store, "kids", True)
    kid = await make_user(store, "kid", cohort="kids")
    pal = await make_user(store, "pal", cohort="kids")
    adult = await make_user(store, "adult", cohort="grown")
    await earn(store, kid, 50, THIS_WEEK)
    await earn(store, pal, 40, THIS_WEEK)
    await earn(store, adult, 10, THIS_WEEK)
    board = await leaderboard(store, viewer=adult, period="week", now=NOW)
    assert ranks(board) == [(1, "adult", 10)]
    mine = await leaderboard(store, viewer=kid, scope="cohort", cohort="kids", now=NOW)
    assert ranks(mine) == [(1, "kid", 50)] and mine.me.visible is False
    await set_visible(store, pal, True)
    board = await leaderboard(store, viewer=adult, period="week", now=NOW)
    assert ranks(board) == [(1, "pal", 40), (2, "adult", 10)]
    await set_cohort_minors(store, "kids", False)
    board = await leaderboard(store, viewer=adult, period="week", now=NOW)
    assert ranks(board) == [(1, "kid", 50), (2, "pal", 40), (3, "adult", 10)]


async def test_cohort_scope_ranks_members_only(store: Store) -> None:
    a1, a2 = await make_user(store, "a1", "red"), await make_user(store, "a2", "red")
    b1 = await make_user(store, "b1", "blue")
    await earn(store, a1, 10, THIS_WEEK)
    await earn(store, a2, 20, THIS_WEEK)
    await earn(store, b1, 99, THIS_WEEK)
    red = await leaderboard(store, viewer=a1, scope="cohort", cohort="red", now=NOW)
    assert ranks(red) == [(1, "a2", 20), (2, "a1", 10)] and red.me.rank == 2
    assert red.cohort == "red" and red.ranked == 2
    everyone = await leaderboard(store, viewer=a1, now=NOW)
    assert everyone.me.rank == 3


async def test_a_closed_window_is_frozen_against_later_reversals(store: Store) -> None:
    ann, bob = await make_user(store, "ann"), await make_user(store, "bob")
    ann_big = await earn(store, ann, 50, LAST_WEEK)
    await earn(store, bob, 30, LAST_WEEK)
    before = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert before.frozen and ranks(before) == [(1, "ann", 50), (2, "bob", 30)]
    # A reversal dated inside the closed week, and a late backfill there.
    await reverse(store, ann, ann_big, LAST_WEEK + timedelta(hours=1))
    await earn(store, bob, 100, LAST_WEEK + timedelta(hours=2))
    after = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert ranks(after) == ranks(before) and after.me.rank == 2
    assert before.ranked == after.ranked == 2
    # The live totals did change: all time knows about both.
    ever = await leaderboard(store, viewer=bob, period="all", now=NOW)
    assert ranks(ever) == [(1, "bob", 130)]
    # The open week is not frozen.
    live = await leaderboard(store, viewer=bob, period="week", now=NOW)
    assert not live.frozen


async def test_concurrent_freezes_write_once(store: Store) -> None:
    users = [await make_user(store, f"f{n}") for n in range(5)]
    for n, user in enumerate(users):
        await earn(store, user, 10 + n, LAST_WEEK)
    window = window_of("week", LAST_WEEK)

    async def one() -> bool:
        async with store.connection("test freeze") as conn:
            return await freeze(conn, window)

    results = await asyncio.gather(*(one() for _ in range(8)))
    assert results.count(True) == 1
    async with store.connection("test check") as conn:
        assert await conn.fetchval("SELECT count(*) FROM leaderboard_snapshots") == 5
        assert await conn.fetchval("SELECT entries FROM leaderboard_frozen") == 5
    boards = await asyncio.gather(
        *(
            leaderboard(store, viewer=users[0], period="month", at=LAST_MONTH, now=NOW)
            for _ in range(4)
        )
    )
    assert all(b.frozen for b in boards)
    async with store.connection("test check") as conn:
        assert await conn.fetchval("SELECT count(*) FROM leaderboard_frozen") == 2


async def test_totals_match_the_ledger(store: Store) -> None:
    users = [await make_user(store, f"t{n}") for n in range(4)]
    done = []
    for n, user in enumerate(users):
        done.append(await earn(store, user, 7 * (n + 1), THIS_WEEK - timedelta(days=n * 5)))
        await earn(store, user, 3, LAST_MONTH)
    await reverse(store, users[1], done[1], THIS_WEEK)
    async with store.connection("test totals") as conn:
        kept = await conn.fetch("SELECT * FROM leaderboard_totals ORDER BY 1, 2, 3")
        await conn.fetchval("SELECT leaderboard_rebuild()")
        rebuilt = await conn.fetch("SELECT * FROM leaderboard_totals ORDER BY 1, 2, 3")
        ledger = await conn.fetchval("SELECT sum(points) FROM user_points")
        total = await conn.fetchval(
            "SELECT sum(points) FROM leaderboard_totals WHERE period = 'all'"
        )
    assert [tuple(r) for r in kept] == [tuple(r) for r in rebuilt]
    assert ledger == total


async def test_hiding_follows_moves_between_cohorts_and_reaches_frozen_boards(
    store: Store,
) -> None:
    await set_cohort_minors(store, "kids", True)
    ann, bob = await make_user(store, "ann", "grown"), await make_user(store, "bob", "grown")
    await earn(store, ann, 20, LAST_WEEK)
    await earn(store, bob, 10, LAST_WEEK)
    await earn(store, ann, 5, THIS_WEEK)
    frozen = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert ranks(frozen) == [(1, "ann", 20), (2, "bob", 10)]
    async with store.connection("test move") as conn:
        await conn.execute("UPDATE users SET cohort = 'kids' WHERE id = $1", ann)
    frozen = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert ranks(frozen) == [(1, "bob", 10)] and frozen.ranked == 1
    live = await leaderboard(store, viewer=bob, period="week", now=NOW)
    assert ranks(live) == [] and live.me.rank is None and live.ranked == 0
    own = await leaderboard(store, viewer=ann, period="week", at=LAST_WEEK, now=NOW)
    assert own.me == type(own.me)(1, 20, own.me.reached_at, False)
    async with store.connection("test move") as conn:
        await conn.execute("UPDATE users SET cohort = NULL WHERE id = $1", ann)
    frozen = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert ranks(frozen) == [(1, "ann", 20), (2, "bob", 10)]


async def test_a_person_erased_leaves_every_board(store: Store) -> None:
    ann, bob = await make_user(store, "ann"), await make_user(store, "bob")
    await earn(store, ann, 20, LAST_WEEK)
    await earn(store, bob, 10, LAST_WEEK)
    await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    async with store.connection("test erase") as conn:
        await conn.execute("DELETE FROM users WHERE id = $1", ann)
    frozen = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert ranks(frozen) == [(1, "bob", 10)] and frozen.ranked == 1


async def counts(store: Store) -> dict[tuple[str, str, date], int]:
    """The running counts, summed over their writers."""
    async with store.connection("test counts") as conn:
        rows = await conn.fetch(
            "SELECT source, period, start, sum(ranked)::bigint AS n FROM leaderboard_counts "
            "GROUP BY 1, 2, 3 HAVING sum(ranked) <> 0"
        )
    return {(r["source"], r["period"], r["start"]): r["n"] for r in rows}


async def recounted(store: Store) -> dict[tuple[str, str, date], int]:
    """The same counts computed from scratch (what the running counts must equal)."""
    async with store.connection("test recount") as conn:
        rows = await conn.fetch(
            """
            SELECT 'totals' AS source, period, start, count(*) AS n FROM leaderboard_totals
            WHERE points > 0 AND NOT hidden GROUP BY 1, 2, 3
            UNION ALL
            SELECT 'snapshots', period, start, count(*) FROM leaderboard_snapshots
            WHERE points > 0 AND NOT hidden GROUP BY 1, 2, 3
            """
        )
    return {(r["source"], r["period"], r["start"]): r["n"] for r in rows}


async def test_ranked_counts_follow_every_change(store: Store) -> None:
    """The global board's ``ranked`` is a running count: it must equal a fresh count
    after first points, more points, a reversal to zero, hiding, a cohort turned
    minors, a freeze, a rebuild and an erasure."""
    week = window_of("week", NOW)
    ann, bob, cat = [await make_user(store, n, "grown") for n in ("ann", "bob", "cat")]
    kid = await make_user(store, "kid", "kids")

    async def ranked() -> int:
        board = await leaderboard(store, viewer=ann, period="week", now=NOW)
        assert await counts(store) == await recounted(store)
        return board.ranked

    assert await ranked() == 0
    await earn(store, ann, 10, THIS_WEEK)
    await earn(store, ann, 10, THIS_WEEK + timedelta(hours=1))  # already counted
    bobs = await earn(store, bob, 10, THIS_WEEK)
    await earn(store, kid, 10, THIS_WEEK)
    assert await ranked() == 3
    await reverse(store, bob, bobs, THIS_WEEK + timedelta(hours=2))  # back to 0: off
    assert await ranked() == 2
    await set_visible(store, kid, False)
    assert await ranked() == 1
    await set_visible(store, kid, True)
    await earn(store, cat, 5, THIS_WEEK)
    assert await ranked() == 3
    await set_cohort_minors(store, "kids", True)  # kid chose to show: stays
    await set_cohort_minors(store, "grown", True)  # ann and cat had no say: hidden
    assert await ranked() == 1
    await set_cohort_minors(store, "grown", False)
    assert await ranked() == 3
    # a frozen window has its own count
    await earn(store, ann, 7, LAST_WEEK)
    await earn(store, cat, 7, LAST_WEEK)
    last = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert last.frozen and last.ranked == 2
    await set_visible(store, cat, False)  # hiding reaches old boards, and their count
    last = await leaderboard(store, viewer=bob, period="week", at=LAST_WEEK, now=NOW)
    assert last.ranked == 1 and await counts(store) == await recounted(store)
    async with store.connection("test rebuild") as conn:
        await conn.fetchval("SELECT leaderboard_rebuild()")
    assert await ranked() == 2  # ann and kid (cat is hidden now)
    async with store.connection("test erase") as conn:
        await conn.execute("DELETE FROM users WHERE id = $1", ann)
    assert await counts(store) == await recounted(store)
    board = await leaderboard(store, viewer=bob, period="week", now=NOW)
    assert board.ranked == 1 and [e.username for e in board.entries] == ["kid"]
    assert await counts(store) == {
        ("totals", "week", week.start): 1,
        ("totals", "month", window_of("month", NOW).start): 1,
        ("totals", "all", date(1970, 1, 1)): 1,
    }


async def test_the_freezer_freezes_the_last_closed_windows(store: Store) -> None:
    """``freeze_closed`` (what the server's periodic task runs) freezes the week and
    the month that closed, once, without any board being asked for."""
    ann = await make_user(store, "ann")
    await earn(store, ann, 40, LAST_WEEK)
    await earn(store, ann, 5, LAST_MONTH)
    # Next Monday 00:00:30 UTC: this week closed 30 s ago, within the grace: not
    # yet due, the newest closed one is still the week before.
    monday = datetime.combine(window_of("week", NOW).end, datetime.min.time(), UTC)
    still_newest = window_of("week", NOW - timedelta(days=7))
    assert last_closed("week", monday + timedelta(seconds=30)) == still_newest
    frozen = await freeze_closed(store, now=NOW)
    assert frozen == [window_of("week", LAST_WEEK), window_of("month", LAST_MONTH)]
    assert await freeze_closed(store, now=NOW) == []  # once
    async with store.connection("test check") as conn:
        rows = await conn.fetch("SELECT period, start, entries FROM leaderboard_frozen ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("month", window_of("month", LAST_MONTH).start, 1),
        ("week", window_of("week", LAST_WEEK).start, 1),
    ]
    # A late event in the frozen week changes the live totals but not its board.
    await earn(store, ann, 100, LAST_WEEK + timedelta(hours=1))
    board = await leaderboard(store, viewer=ann, period="week", at=LAST_WEEK, now=NOW)
    assert board.frozen and ranks(board) == [(1, "ann", 40)]
    # When the next week is due: its end plus the grace.
    assert next_freeze(NOW) == monday + FREEZE_GRACE
    assert next_freeze(monday + timedelta(seconds=30)) == monday + FREEZE_GRACE
    assert next_freeze(monday + FREEZE_GRACE) == monday + timedelta(days=7) + FREEZE_GRACE
    month_end = datetime(2026, 2, 1, tzinfo=UTC)
    assert next_freeze(datetime(2026, 1, 30, tzinfo=UTC)) == month_end + FREEZE_GRACE


async def test_counts_of_ended_sessions_are_folded_without_changing_them(
    store: Store, dsn: str
) -> None:
    """Each database session counts in rows of its own (none waits on another's);
    when sessions end, their rows fold into one, and every count stays right."""
    people = [await make_user(store, f"p{n}", "grown") for n in range(6)]
    for n, person in enumerate(people):
        other = await Store.open(dsn, min_size=1, max_size=1, migrate=False)
        try:
            await earn(other, person, 10 + n, THIS_WEEK + timedelta(minutes=n))
        finally:
            await other.close()  # that session has ended: its rows are to fold
    before = await counts(store)
    assert before == await recounted(store)
    assert before[("totals", "week", window_of("week", NOW).start)] == 6
    async with store.connection("test") as conn:
        writers = await conn.fetchval("SELECT count(DISTINCT writer) FROM leaderboard_counts")
        assert writers >= 6  # a session each (and the migration's recount, writer 0)
        # a closed session's backend may take a moment to leave pg_stat_activity
        folded, deadline = 0, asyncio.get_running_loop().time() + 10
        while True:
            folded += await conn.fetchval("SELECT leaderboard_counts_fold()")
            left = await conn.fetchval("SELECT count(*) FROM leaderboard_counts WHERE writer <> 0")
            if left == 0 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (folded, left) == (6 * 3, 0)  # week, month and all of six sessions
        assert await conn.fetchval("SELECT leaderboard_counts_fold()") == 0  # nothing left
    assert await counts(store) == before
    board = await leaderboard(store, viewer=people[0], period="week", now=NOW)
    assert board.ranked == 6
