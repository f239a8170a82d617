"""Leaderboards: capped XP ranked within a UTC window, frozen once the window closes.

What is ranked is the points ledger after daily caps, reversals included,
read from ``leaderboard_totals`` (running totals per person and window that a
trigger on ``user_points`` keeps in the ledger's own transaction: migration
0009). Summing the ledger per query cannot stay fast at millions of rows; a
running total is one index range.

- **Windows** are in UTC for everyone (a shared ranking needs one edge):
  ``week`` = ISO week (Monday 00:00 UTC to the next), ``month`` = calendar
  month, ``all`` = since the start. A ledger row counts in the windows holding
  its ``created_at`` (its event's ``occurred_at``; a reversal's own).
- **Order**: more points first; on equal points, whoever got there first
  (``reached_at``: when the total last changed in the window) ranks higher; the
  user id settles exact-instant ties so that ranks are always distinct.
- **Hiding**: a person shows on boards unless they chose not to, and people in
  a cohort marked ``minors`` are hidden unless they chose to show. Hidden people
  are left out of everyone else's board and ranks; they still see their own
  rank (where they would stand among the visible people) and the neighbours
  around it, with those neighbours' public ranks.
- **Freezing**: a closed week or month has its totals copied into
  ``leaderboard_snapshots`` once, whoever races (the ``leaderboard_frozen``
  row's primary key makes a concurrent second freeze wait and then do
  nothing); every later query reads the snapshot, so reversals or backfills
  that land in a closed window never rewrite its standings. The server's
  :func:`run_freezer` task freezes each window ``FREEZE_GRACE`` after it
  closes (the grace lets events that happened before the edge, still being
  graded or committed, land in it); the first query for a closed window that
  is still live (a server that was down at the time, an older window) freezes
  it as a fallback.
- **Ranked**: how many visible people have points in the window, on every
  board: a running count per window (``leaderboard_counts``, kept by triggers
  in rows of each database session, summed when read, and folded by
  :func:`run_freezer` when sessions end: migration 0012) for the global board,
  the length of the ranked list for a cohort's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import asyncpg

from store import Store, StoreUnavailable

from .ledger import lock_person

log = logging.getLogger("opencode_live.progress")

Period = Literal["all", "week", "month"]
Scope = Literal["global", "cohort"]
PERIODS: tuple[Period, ...] = ("all", "week", "month")
#: The start of the ``all`` window (matches leaderboard_start() in migration 0009).
ALL_START = date(1970, 1, 1)
#: Entries of the top list and neighbours each side, by default and at most.
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
NEIGHBOURS = 5
#: How long after a window closes the freezer freezes it.
FREEZE_GRACE = timedelta(minutes=1)
#: The freezer wakes at least this often (a clock that jumped, a database that was away).
FREEZER_MAX_SLEEP = 600.0


@dataclass(frozen=True, slots=True)
class Window:
    """A ranking window: [start, end) in UTC days; ``end`` None for all time."""

    period: Period
    start: date
    end: date | None

    def closed(self, now: datetime) -> bool:
        """Whether the window is over (only weeks and months close)."""
        return self.end is not None and now.astimezone(UTC).date() >= self.end


def window_of(period: Period, at: datetime | date) -> Window:
    """The window of ``period`` that holds ``at`` (a UTC instant or a UTC day)."""
    day = at.astimezone(UTC).date() if isinstance(at, datetime) else at
    if period == "all":
        return Window("all", ALL_START, None)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return Window("week", start, start + timedelta(days=7))
    if period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return Window("month", start, end)
    raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a board. ``rank`` is the public rank, except on the viewer's own
    line when they are hidden: there it is where they would stand."""

    rank: int
    user_id: uuid.UUID
    username: str
    display_name: str
    points: int
    reached_at: datetime
    me: bool = False


@dataclass(frozen=True, slots=True)
class Me:
    """The viewer's own standing: ``rank`` None when they have no points in the window."""

    rank: int | None
    points: int
    reached_at: datetime | None
    visible: bool


@dataclass(frozen=True, slots=True)
class Board:
    """A board as one viewer sees it: ``entries`` in rank order (the top, then the
    viewer's neighbours; a gap in ranks between them), ``ranked`` how many visible
    people have points in the window (the board's length)."""

    scope: Scope
    cohort: str | None
    window: Window
    frozen: bool
    entries: tuple[Entry, ...]
    me: Me
    ranked: int


# Rows a board shows: repeated literally in every query so that the planner
# can use the partial rank index (migration 0009), whose predicate this is.
_SHOWN = "t.period = $1 AND t.start = $2 AND t.points > 0 AND NOT t.hidden"

_TABLES = ("leaderboard_totals", "leaderboard_snapshots")


async def is_visible(conn: asyncpg.Connection, user_id: uuid.UUID) -> bool:
    """Whether the person shows on other people's boards now."""
    return not await conn.fetchval("SELECT leaderboard_hidden($1)", user_id)


async def set_visible(store: Store, user_id: uuid.UUID, visible: bool) -> bool:
    """Record the person's choice (it outranks their cohort's default); returns it."""
    async with store.connection("leaderboard visibility") as conn, conn.transaction():
        # The person's lock first, as apply_event takes it: the trigger that copies
        # the choice into their totals then never waits in a cycle with an event
        # of theirs writing those rows (no deadlock, no retry).
        await lock_person(conn, user_id)
        await conn.execute(
            """
            INSERT INTO leaderboard_prefs (user_id, visible) VALUES ($1, $2)
            ON CONFLICT (user_id) DO UPDATE SET visible = EXCLUDED.visible, updated_at = now()
            """,
            user_id,
            visible,
        )
        return await is_visible(conn, user_id)


async def visibility(store: Store, user_id: uuid.UUID) -> tuple[bool, bool | None]:
    """(shown now, own choice or None when the cohort's default applies)."""
    async with store.connection("leaderboard visibility") as conn:
        choice = await conn.fetchval(
            "SELECT visible FROM leaderboard_prefs WHERE user_id = $1", user_id
        )
        return await is_visible(conn, user_id), choice


async def set_cohort_minors(store: Store, cohort: str, minors: bool) -> None:
    """Mark a cohort as minors (members hidden by default) or not."""
    async with store.connection("cohort minors") as conn:
        await conn.execute(
            "INSERT INTO cohorts (id, minors) VALUES ($1, $2) "
            "ON CONFLICT (id) DO UPDATE SET minors = EXCLUDED.minors",
            cohort,
            minors,
        )


async def freeze(conn: asyncpg.Connection, window: Window) -> bool:
    """Write a closed window's final standings once; True when this call wrote them.

    The INSERT into leaderboard_frozen is the lock: a concurrent freeze of the
    same window blocks on the uncommitted key, then finds it taken and does
    nothing (or, if the first rolled back, writes it itself).
    """
    if window.end is None:
        raise ValueError("the all-time board never closes")
    async with conn.transaction():
        wrote = await conn.fetchval(
            "INSERT INTO leaderboard_frozen (period, start, entries) VALUES ($1, $2, 0) "
            "ON CONFLICT (period, start) DO NOTHING RETURNING true",
            window.period,
            window.start,
        )
        if not wrote:
            return False
        status = await conn.execute(
            """
            INSERT INTO leaderboard_snapshots (period, start, user_id, points, reached_at, hidden)
            SELECT period, start, user_id, points, reached_at, hidden FROM leaderboard_totals
            WHERE period = $1 AND start = $2 AND points > 0
            """,
            window.period,
            window.start,
        )
        await conn.execute(
            "UPDATE leaderboard_frozen SET entries = $3 WHERE period = $1 AND start = $2",
            window.period,
            window.start,
            int(status.split()[-1]),
        )
    return True


async def freeze_once(conn: asyncpg.Connection, window: Window) -> bool:
    """Freeze a closed window unless it is frozen already; True when this call did."""
    frozen = await conn.fetchval(
        "SELECT true FROM leaderboard_frozen WHERE period = $1 AND start = $2",
        window.period,
        window.start,
    )
    if frozen or not await freeze(conn, window):
        return False
    # Mark the new pages all-visible and give the planner statistics now, so
    # that rank counts over the snapshot are index-only from the next query
    # on (rather than after autovacuum comes by). Best effort: a role that
    # may not vacuum still gets correct, if slower, boards.
    try:
        await conn.execute("VACUUM (ANALYZE) leaderboard_snapshots")
    except asyncpg.PostgresError as exc:
        log.warning("leaderboard snapshot not vacuumed", extra={"error": str(exc)})
    return True


async def _source(conn: asyncpg.Connection, window: Window, now: datetime) -> str:
    """The table to read: the snapshot of a closed window (frozen here if the freezer
    has not yet), else live."""
    if not window.closed(now):
        return "leaderboard_totals"
    await freeze_once(conn, window)
    return "leaderboard_snapshots"


def last_closed(period: Period, now: datetime, grace: timedelta = FREEZE_GRACE) -> Window:
    """The newest window of ``period`` that closed at least ``grace`` before ``now``."""
    if period == "all":
        raise ValueError("the all-time board never closes")
    current = window_of(period, now - grace)
    return window_of(period, current.start - timedelta(days=1))


def next_freeze(now: datetime, grace: timedelta = FREEZE_GRACE) -> datetime:
    """When the next window (week or month) becomes due for freezing."""
    ends = []
    for period in ("week", "month"):
        end = window_of(period, now - grace).end
        assert end is not None
        ends.append(datetime.combine(end, datetime.min.time(), UTC) + grace)
    return min(ends)


async def freeze_closed(
    store: Store, now: datetime | None = None, grace: timedelta = FREEZE_GRACE
) -> list[Window]:
    """Freeze the newest closed week and month (those not frozen yet); returns the
    windows this call froze. Older windows never frozen are left to the first query."""
    now = now or datetime.now(UTC)
    frozen = []
    for period in ("week", "month"):
        window = last_closed(period, now, grace)
        async with store.connection("freeze leaderboard") as conn:
            if await freeze_once(conn, window):
                frozen.append(window)
    for window in frozen:
        log.info(
            "leaderboard frozen",
            extra={"period": window.period, "start": window.start.isoformat()},
        )
    return frozen


async def run_freezer(
    store: Store,
    *,
    grace: timedelta = FREEZE_GRACE,
    max_sleep: float = FREEZER_MAX_SLEEP,
) -> None:
    """Freeze windows shortly after they close, for as long as the server runs.

    At start it catches up (the last closed week and month), then sleeps until
    the next edge plus ``grace`` (waking at least every ``max_sleep`` seconds).
    Each time it also folds the count rows of database sessions that ended.
    An unreachable database or a failed freeze is logged and retried later:
    the board's own first-query freeze stays the fallback meanwhile.
    """
    while True:
        try:
            await freeze_closed(store, grace=grace)
            async with store.connection("fold leaderboard counts") as conn:
                await conn.fetchval("SELECT leaderboard_counts_fold()")
        except StoreUnavailable as exc:
            log.warning("leaderboard freeze postponed: %s", exc)
        except Exception:
            log.exception("leaderboard freeze failed")
        now = datetime.now(UTC)
        wait = (next_freeze(now, grace) - now).total_seconds()
        await asyncio.sleep(min(max(wait, 1.0), max_sleep))


async def leaderboard(
    store: Store,
    *,
    viewer: uuid.UUID,
    scope: Scope = "global",
    cohort: str | None = None,
    period: Period = "week",
    at: datetime | date | None = None,
    now: datetime | None = None,
    around: Literal["me", "top"] = "me",
    limit: int = DEFAULT_LIMIT,
    neighbours: int = NEIGHBOURS,
) -> Board:
    """The board of ``period`` holding ``at`` (default: now) as ``viewer`` sees it.

    ``scope="cohort"`` ranks the members of ``cohort`` only (the caller decides
    who may ask for which cohort). ``around="me"`` adds ``neighbours`` people
    each side of the viewer to the top ``limit``.
    """
    now = now or datetime.now(UTC)
    window = window_of(period, at if at is not None else now)
    limit = max(1, min(limit, MAX_LIMIT))
    neighbours = max(0, min(neighbours, MAX_LIMIT)) if around == "me" else 0
    if scope == "cohort" and not cohort:
        raise ValueError("a cohort board needs a cohort")
    async with store.connection("leaderboard") as conn:
        table = await _source(conn, window, now)
        assert table in _TABLES
        if scope == "cohort":
            assert cohort is not None
            picked, me, ranked = await _cohort(
                conn, table, window, viewer, cohort, limit, neighbours
            )
        else:
            picked, me, ranked = await _global(conn, table, window, viewer, limit, neighbours)
        names = {
            r["id"]: (r["username"], r["display_name"])
            for r in await conn.fetch(
                "SELECT id, username, display_name FROM users WHERE id = ANY($1::uuid[])",
                [user for _, user, _, _ in picked],
            )
        }
    entries = tuple(
        Entry(
            rank=rank,
            user_id=user,
            username=names.get(user, ("", ""))[0],
            display_name=names.get(user, ("", ""))[1],
            points=points,
            reached_at=reached,
            me=user == viewer,
        )
        for rank, user, points, reached in sorted(picked, key=lambda e: (e[0], not e[1] == viewer))
    )
    return Board(
        scope=scope,
        cohort=cohort if scope == "cohort" else None,
        window=window,
        frozen=table == "leaderboard_snapshots",
        entries=entries,
        me=me,
        ranked=ranked,
    )


Picked = list[tuple[int, uuid.UUID, int, datetime]]


async def _global(
    conn: asyncpg.Connection,
    table: str,
    window: Window,
    viewer: uuid.UUID,
    limit: int,
    neighbours: int,
) -> tuple[Picked, Me, int]:
    """Everyone: each part is a range of the partial index on (period, start,
    points DESC, reached_at, user_id) over the people shown, so the cost follows
    the rows returned and the number of people ahead of the viewer (counted in
    the index alone), not the size of the window. How many are ranked in all is
    the window's running count (a row per session writing, by primary key), not
    a count of people."""
    key = (window.period, window.start)
    ranked = await conn.fetchval(
        "SELECT COALESCE(sum(ranked), 0)::bigint FROM leaderboard_counts "
        "WHERE source = $1 AND period = $2 AND start = $3",
        "snapshots" if table == "leaderboard_snapshots" else "totals",
        *key,
    )
    top = await conn.fetch(
        f"""
        SELECT t.user_id, t.points, t.reached_at FROM {table} t
        WHERE {_SHOWN}
        ORDER BY t.points DESC, t.reached_at, t.user_id
        LIMIT $3
        """,
        *key,
        limit,
    )
    picked: Picked = [
        (n, r["user_id"], r["points"], r["reached_at"]) for n, r in enumerate(top, start=1)
    ]
    mine = await conn.fetchrow(
        f"SELECT points, reached_at FROM {table} WHERE period = $1 AND start = $2 AND user_id = $3",
        *key,
        viewer,
    )
    visible = await is_visible(conn, viewer)
    if mine is None or mine["points"] <= 0:
        return picked, Me(None, mine["points"] if mine else 0, None, visible), ranked
    p, r = mine["points"], mine["reached_at"]
    ahead = await conn.fetchval(
        f"""
        SELECT (SELECT count(*) FROM {table} t WHERE {_SHOWN} AND t.points > $3)
             + (SELECT count(*) FROM {table} t
                WHERE {_SHOWN} AND t.points = $3 AND (t.reached_at, t.user_id) < ($4, $5))
        """,
        *key,
        p,
        r,
        viewer,
    )
    rank = ahead + 1
    me = Me(rank, p, r, visible)
    if all(user != viewer for _, user, _, _ in picked):
        # Hidden viewers see their own line too, where they would stand.
        picked.append((rank, viewer, p, r))
    if not neighbours:
        return picked, me, ranked
    above = await conn.fetch(
        f"""
        SELECT * FROM (
            (SELECT t.user_id, t.points, t.reached_at FROM {table} t
             WHERE {_SHOWN} AND t.points = $3 AND (t.reached_at, t.user_id) < ($4, $5)
             ORDER BY t.points DESC, t.reached_at DESC, t.user_id DESC LIMIT $6)
            UNION ALL
            (SELECT t.user_id, t.points, t.reached_at FROM {table} t
             WHERE {_SHOWN} AND t.points > $3
             ORDER BY t.points, t.reached_at DESC, t.user_id DESC LIMIT $6)
        ) s ORDER BY points, reached_at DESC, user_id DESC LIMIT $6
        """,
        *key,
        p,
        r,
        viewer,
        neighbours,
    )
    below = await conn.fetch(
        f"""
        SELECT * FROM (
            (SELECT t.user_id, t.points, t.reached_at FROM {table} t
             WHERE {_SHOWN} AND t.points = $3 AND (t.reached_at, t.user_id) > ($4, $5)
             ORDER BY t.points DESC, t.reached_at, t.user_id LIMIT $6)
            UNION ALL
            (SELECT t.user_id, t.points, t.reached_at FROM {table} t
             WHERE {_SHOWN} AND t.points < $3
             ORDER BY t.points DESC, t.reached_at, t.user_id LIMIT $6)
        ) s ORDER BY points DESC, reached_at, user_id LIMIT $6
        """,
        *key,
        p,
        r,
        viewer,
        neighbours,
    )
    seen = {e[1] for e in picked}
    shift = 0 if visible else 1  # a hidden viewer takes no public rank
    for n, row in enumerate(above, start=1):
        if row["user_id"] not in seen:
            picked.append((rank - n, row["user_id"], row["points"], row["reached_at"]))
    for n, row in enumerate(below, start=1):
        if row["user_id"] not in seen:
            picked.append((rank + n - shift, row["user_id"], row["points"], row["reached_at"]))
    return picked, me, ranked


async def _cohort(
    conn: asyncpg.Connection,
    table: str,
    window: Window,
    viewer: uuid.UUID,
    cohort: str,
    limit: int,
    neighbours: int,
) -> tuple[Picked, Me, int]:
    """A cohort's members (users_cohort_idx, then each one's total by primary key):
    a class is small enough to rank whole, in one query."""
    rows = await conn.fetch(
        f"""
        SELECT t.user_id, t.points, t.reached_at, NOT t.hidden AS visible
        FROM users u
        JOIN {table} t ON t.period = $1 AND t.start = $2 AND t.user_id = u.id
        WHERE u.cohort = $3 AND t.points > 0
        ORDER BY t.points DESC, t.reached_at, t.user_id
        """,
        window.period,
        window.start,
        cohort,
    )
    visible_me = await is_visible(conn, viewer)
    return _pick(rows, viewer, visible_me, limit, neighbours)


def _pick(
    rows: Sequence[asyncpg.Record],
    viewer: uuid.UUID,
    visible_me: bool,
    limit: int,
    neighbours: int,
) -> tuple[Picked, Me, int]:
    """Top ``limit`` and ``neighbours`` each side of the viewer from a whole ranked list."""
    board: Picked = []
    me = Me(None, 0, None, visible_me)
    mine_at: int | None = None
    for row in rows:
        if row["user_id"] == viewer:
            me = Me(len(board) + 1, row["points"], row["reached_at"], visible_me)
            mine_at = len(board)
            if row["visible"]:
                board.append((len(board) + 1, viewer, row["points"], row["reached_at"]))
        elif row["visible"]:
            board.append((len(board) + 1, row["user_id"], row["points"], row["reached_at"]))
    picked = {e[1]: e for e in board[:limit]}
    if mine_at is not None and me.rank is not None:
        assert me.reached_at is not None
        if not visible_me:
            picked[viewer] = (me.rank, viewer, me.points, me.reached_at)
            window_rows = board[max(0, mine_at - neighbours) : mine_at + neighbours]
        else:
            window_rows = board[max(0, mine_at - neighbours) : mine_at + neighbours + 1]
        if neighbours:
            for e in window_rows:
                picked.setdefault(e[1], e)
    return list(picked.values()), me, len(board)
