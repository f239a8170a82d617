"""Progress and leaderboards (issue 8): events applied per second, and board queries at scale.

    python bench/progress.py [--dsn DSN] [--workers 4,16,32] [--feed-workers 4,8]
        [--events 8000] [--users 100000] [--rows 5000000] [--queries 200] [--json FILE]

(a) Events applied per second (target > 2,000/s) over ``--event-people``
    people (a person's k-th event on their k-th day, so daily caps do not bite
    and every event moves a streak on), two ways: ``progress.apply_event`` from N
    concurrent workers (one transaction per event), and ``progress.apply_events``
    from N workers taking up to BATCH events each (what the server's progress
    feed does with what rooms observed: one statement and one commit for many).
    With the CPU of Postgres (this database's backends plus the server's
    background writers) and of this process (asyncpg, msgspec, the rules).
(b) ``progress.leaderboard.leaderboard`` (the code the API calls) over
    ``--users`` users and ``--rows`` ledger rows: p50/p99 of ``--queries``
    sequential queries each for the global and cohort boards, weekly and all
    time, each by a random viewer (top 10 + 5 neighbours each side), with 5 %
    of people hidden (minors' cohorts, own choice). Target p99 < 50 ms.

The rows are generated in SQL (generate_series) into a scratch database on
the server of ``--dsn`` (default DATABASE_URL) that this script creates and
drops: never the database the DSN names. The ledger is loaded with triggers
off and its secondary indexes dropped and rebuilt afterwards (what a restore
does), then ``leaderboard_rebuild()`` computes the running totals that the
trigger keeps during normal operation. Every loop is bounded; the whole run
takes about 3 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from common import Results, own_cpu_seconds, proc_cpu_seconds, table, wait_quiet

from progress import (
    BATCH,
    Applied,
    PairingMinutes,
    QuestionAnswered,
    QuestionAsked,
    RunFinished,
    apply_event,
    apply_events,
)
from progress.leaderboard import leaderboard
from store import Store, with_database

COHORTS = 200
MINOR_COHORTS = 5  # of COHORTS: 2.5 % of people hidden by default
HIDDEN_BY_CHOICE = 0.025
DAYS = 182
TARGET_EVENTS = 2000.0
TARGET_P99_MS = 50.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


class PgCpu:
    """CPU seconds of this database's backends plus the server's shared writers
    (read from /proc: the server must run on this machine, else it shows '-')."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self._now()

    @classmethod
    async def of(cls, conn: asyncpg.Connection, database: str) -> PgCpu:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type IN "
            "('walwriter', 'checkpointer', 'background writer', 'autovacuum launcher')",
            database,
        )
        return cls([r["pid"] for r in rows])

    def _now(self) -> float | None:
        try:
            return sum(proc_cpu_seconds(pid) for pid in self.pids)
        except OSError:
            return None

    def pct(self, seconds: float) -> float | None:
        now = self._now()
        if now is None or self.start is None:
            return None
        return 100.0 * (now - self.start) / seconds


async def part_a(
    dsn: str, database: str, workers: int, events: int, people: int, tag: str, feed: bool
) -> dict:
    """Events through apply_event from ``workers`` tasks, each on its own pooled
    connection; with ``feed``, through apply_events, BATCH at a time, as the
    server's progress feed applies what rooms observed."""
    store = await Store.open(dsn, min_size=workers, max_size=workers, migrate=False)
    try:
        async with store.connection("bench users") as conn:
            users = [
                r["id"]
                for r in await conn.fetch(
                    "INSERT INTO users (email, username) "
                    "SELECT $2 || i || '@bench', $2 || i FROM generate_series(1, $1) i "
                    "RETURNING id",
                    people,
                    tag,
                )
            ]
        base = datetime.now(UTC) - timedelta(days=DAYS)
        rng = random.Random(1)

        def make(n: int) -> Any:
            user = users[n % people]
            # a person's k-th event on their k-th day: daily caps do not bite
            at = base + timedelta(days=n // people, minutes=n % 1440)
            kind = n % 4
            key = f"{tag}:{n}"
            if kind == 0:
                return RunFinished(key=key, user_id=user, occurred_at=at, exit_code=0)
            if kind == 1:
                return QuestionAsked(key=key, user_id=user, occurred_at=at, question_id=n)
            if kind == 2:
                return QuestionAnswered(key=key, user_id=user, occurred_at=at, question_id=n)
            partner = users[rng.randrange(people)]
            if partner == user:
                partner = users[(n + 1) % people]
            return PairingMinutes(
                key=key, user_id=user, occurred_at=at, partner_id=partner, minutes=5
            )

        # warm-up first, in time order: the timed events then move every streak on
        # (no event is "late"), as a class's steady stream does
        warm_up = workers * 5
        todo = iter(range(warm_up, warm_up + events))
        warm = [make(n) for n in range(warm_up)]
        for e in warm:
            await apply_event(store, e)
        async with store.connection("bench cpu") as conn:
            cpu = await PgCpu.of(conn, database)
        points = 0

        async def worker() -> None:
            nonlocal points
            for n in todo:
                applied = await apply_event(store, make(n))
                points += applied.points

        async def feed_worker() -> None:
            # as the server's feed: what is queued, up to BATCH events, per call
            nonlocal points
            while batch := [make(n) for n in itertools.islice(todo, BATCH)]:
                for outcome in await apply_events(store, batch):
                    assert isinstance(outcome, Applied), outcome
                    points += outcome.points

        g0, t0 = own_cpu_seconds(), time.monotonic()
        cpu.start = cpu._now()
        await asyncio.gather(*((feed_worker if feed else worker)() for _ in range(workers)))
        elapsed = time.monotonic() - t0
        pg = cpu.pct(elapsed)
        gen = 100.0 * (own_cpu_seconds() - g0) / elapsed
        async with store.connection("bench check") as conn:
            ledger = await conn.fetchval(
                "SELECT sum(points) FROM user_points u JOIN progress_events e ON e.id = u.event_id "
                "WHERE e.idempotency_key LIKE $3 || ':%' AND e.idempotency_key NOT IN "
                "(SELECT $3 || ':' || g FROM generate_series($1::int, $2::int) g)",
                0,
                warm_up - 1,
                tag,
            )
    finally:
        await store.close()
    return {
        "path": "feed (apply_events)" if feed else "apply_event",
        "workers": workers,
        "events": events,
        "people": people,
        "seconds": elapsed,
        "events_per_second": events / elapsed,
        "points": points,
        "ledger_points": ledger,
        "pg_cpu_pct": pg,
        "gen_cpu_pct": gen,
    }


async def load(conn: asyncpg.Connection, users: int, rows: int) -> dict[str, float]:
    """``users`` people in COHORTS cohorts and ``rows`` ledger rows over DAYS days, in SQL."""
    took: dict[str, float] = {}
    t = time.monotonic()
    await conn.execute("SET synchronous_commit = off")
    await conn.execute(
        """
        INSERT INTO users (email, username, display_name, cohort)
        SELECT 'u' || i || '@bench', 'u' || i, 'User ' || i, 'c' || (i % $2)
        FROM generate_series(1, $1) i
        """,
        users,
        COHORTS,
    )
    await conn.execute(
        "INSERT INTO cohorts (id, minors) "
        "SELECT 'c' || i, i < $1 FROM generate_series(0, $2 - 1) i",
        MINOR_COHORTS,
        COHORTS,
    )
    await conn.execute(
        "INSERT INTO leaderboard_prefs (user_id, visible) "
        "SELECT id, false FROM users WHERE username LIKE 'u%' AND random() < $1",
        HIDDEN_BY_CHOICE,
    )
    await conn.execute(
        """
        CREATE TEMP TABLE people AS
        SELECT row_number() OVER () - 1 AS n, id FROM users WHERE username LIKE 'u%'
        """
    )
    await conn.execute(
        "INSERT INTO progress_events (idempotency_key, user_id, type, occurred_at) "
        "SELECT 'load:' || n, id, 'question.answered', now() FROM people"
    )
    await conn.execute(
        "CREATE TEMP TABLE people_events AS SELECT p.n, p.id, e.id AS event_id FROM people p "
        "JOIN progress_events e ON e.idempotency_key = 'load:' || p.n"
    )
    await conn.execute("CREATE INDEX ON people_events (n)")
    await conn.execute("ANALYZE people_events")
    took["users"] = time.monotonic() - t
    t = time.monotonic()
    indexes = await _secondary_indexes(conn, "user_points")
    # Triggers off (totals, append-only guard, foreign keys): a bulk load, as a restore.
    await conn.execute("SET session_replication_role = replica")
    # Activity is skewed (a few people earn most), 3 % of rows are reversals.
    await conn.execute(
        """
        INSERT INTO user_points (user_id, type, points, wanted, event_id, day, created_at)
        SELECT pe.id, 'exercise', g.points, g.points, pe.event_id, g.at::date, g.at
        FROM (
            SELECT (floor(power(random(), 1.6) * $2))::bigint AS n,
                   CASE WHEN random() < 0.03 THEN -5 ELSE 1 + (random() * 30)::int END AS points,
                   now() - random() * make_interval(days => $3) AS at
            FROM generate_series(1, $1)
        ) g
        JOIN people_events pe ON pe.n = g.n
        """,
        rows,
        users,
        DAYS,
    )
    await conn.execute("SET session_replication_role = origin")
    took["ledger"] = time.monotonic() - t
    t = time.monotonic()
    for ix in indexes:
        await conn.execute(ix["indexdef"])
    took["indexes"] = time.monotonic() - t
    t = time.monotonic()
    await conn.execute("SET work_mem = '512MB'")  # one hash aggregate in memory
    indexes = await _secondary_indexes(conn, "leaderboard_totals")
    took["totals_rows"] = await conn.fetchval("SELECT leaderboard_rebuild()")
    for ix in indexes:
        await conn.execute(ix["indexdef"])
    await conn.execute("RESET work_mem")
    took["totals"] = time.monotonic() - t
    t = time.monotonic()
    await conn.execute("VACUUM ANALYZE")
    took["vacuum"] = time.monotonic() - t
    return took


async def _secondary_indexes(conn: asyncpg.Connection, table: str) -> list[asyncpg.Record]:
    """Drop ``table``'s indexes that back no constraint; returns their definitions."""
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = indexname)",
        table,
    )
    for ix in indexes:
        await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
    return list(indexes)


async def part_b(dsn: str, users: int, rows: int, queries: int) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        took = await load(conn, users, rows)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM people")]
        counts = dict(
            await conn.fetchrow(
                "SELECT (SELECT count(*) FROM user_points) AS ledger, "
                "(SELECT count(*) FROM leaderboard_totals WHERE period = 'week' "
                " AND start = leaderboard_start('week', now())) AS week_people, "
                "(SELECT count(*) FROM leaderboard_totals WHERE period = 'all') AS all_people"
            )
        )
    finally:
        await conn.close()
    store = await Store.open(dsn, min_size=1, max_size=2, migrate=False)
    rng = random.Random(2)
    figures: list[dict[str, Any]] = []
    try:
        # Freezing last week: once, on the first query for it.
        t = time.monotonic()
        await leaderboard(
            store, viewer=ids[0], period="week", at=datetime.now(UTC) - timedelta(days=7)
        )
        freeze_ms = (time.monotonic() - t) * 1000
        cases = [
            ("global", "week"),
            ("cohort", "week"),
            ("global", "all"),
            ("cohort", "all"),
            ("global", "last week (frozen)"),
        ]
        for scope, window in cases:
            for _ in range(5):  # warm the cache for this shape
                await _one(store, rng.choice(ids), scope, window)
            times: list[float] = []
            shown = 0
            for _ in range(queries):
                viewer = rng.choice(ids)
                t = time.perf_counter()
                board = await _one(store, viewer, scope, window)
                times.append((time.perf_counter() - t) * 1000)
                shown += len(board.entries)
            figures.append(
                {
                    "scope": scope,
                    "window": window,
                    "queries": queries,
                    "p50_ms": pct(times, 0.5),
                    "p99_ms": pct(times, 0.99),
                    "max_ms": max(times),
                    "entries": shown / queries,
                }
            )
    finally:
        await store.close()
    return {"load": took, "counts": counts, "freeze_ms": freeze_ms, "queries": figures}


async def _one(store: Store, viewer: uuid.UUID, scope: str, window: str) -> Any:
    cohort = None
    if scope == "cohort":
        async with store.connection("bench cohort") as conn:
            cohort = await conn.fetchval("SELECT cohort FROM users WHERE id = $1", viewer)
    at = datetime.now(UTC) - timedelta(days=7) if window.startswith("last") else None
    period = "all" if window == "all" else "week"
    return await leaderboard(
        store,
        viewer=viewer,
        scope="cohort" if scope == "cohort" else "global",
        cohort=cohort,
        period=period,
        at=at,
    )


async def main(args: argparse.Namespace) -> dict:
    name = f"bench_progress_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = with_database(args.dsn, name)
    started = time.monotonic()
    try:
        await (await Store.open(dsn, min_size=1, max_size=1)).close()  # migrate
        if args.keep:
            print(f"keeping the scratch database {name} (drop it yourself)", flush=True)
        runs = []
        for workers in args.workers:
            runs.append(
                await part_a(
                    dsn, name, workers, args.events, args.event_people, f"ev{workers}w", False
                )
            )
        for workers in args.feed_workers:
            runs.append(
                await part_a(
                    dsn, name, workers, args.events, args.event_people, f"feed{workers}w", True
                )
            )
        print(
            table(
                [
                    "path",
                    "workers",
                    "people",
                    "events",
                    "seconds",
                    "events/s",
                    "pg CPU%",
                    "gen CPU%",
                    "points ok",
                    "target",
                    "met",
                ],
                [
                    [
                        a["path"],
                        a["workers"],
                        a["people"],
                        a["events"],
                        f"{a['seconds']:.1f}",
                        f"{a['events_per_second']:.0f}",
                        "-" if a["pg_cpu_pct"] is None else f"{a['pg_cpu_pct']:.0f}",
                        f"{a['gen_cpu_pct']:.0f}",
                        "yes" if a["points"] == a["ledger_points"] else "NO",
                        f"> {TARGET_EVENTS:.0f}/s",
                        "yes" if a["events_per_second"] > TARGET_EVENTS else "NO",
                    ]
                    for a in runs
                ],
                "(a) events applied: run.finished / question.asked / question.answered / "
                "pairing.minutes in turn; apply_event: one transaction each; feed: "
                f"apply_events, up to {BATCH} per statement; a fresh set of people per row "
                f"(CPU% of one core; {os.cpu_count()} cores; points ok: granted = ledger)",
            ),
            flush=True,
        )
        b = await part_b(dsn, args.users, args.rows, args.queries)
        ld, c = b["load"], b["counts"]
        print(
            f"(b) load: {args.users:,} users, {c['ledger']:,} ledger rows over {DAYS} days: "
            f"users {ld['users']:.1f} s, ledger {ld['ledger']:.1f} s, indexes "
            f"{ld['indexes']:.1f} s, totals {ld['totals']:.1f} s ({ld['totals_rows']:,} rows), "
            f"vacuum {ld['vacuum']:.1f} s; this week {c['week_people']:,} people, all time "
            f"{c['all_people']:,}; first query of last week (freezes it): {b['freeze_ms']:.0f} ms",
            flush=True,
        )
        print(
            table(
                [
                    "scope",
                    "window",
                    "queries",
                    "entries",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "target",
                    "met",
                ],
                [
                    [
                        q["scope"],
                        q["window"],
                        q["queries"],
                        f"{q['entries']:.1f}",
                        f"{q['p50_ms']:.1f}",
                        f"{q['p99_ms']:.1f}",
                        f"{q['max_ms']:.1f}",
                        f"p99 < {TARGET_P99_MS:.0f}",
                        "yes" if q["p99_ms"] < TARGET_P99_MS else "NO",
                    ]
                    for q in b["queries"]
                ],
                "(b) leaderboard(): top 10 + 5 each side of a random viewer, sequential, "
                "one connection",
            ),
            flush=True,
        )
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"\n{time.monotonic() - started:.0f} s in all")
    return {"a": runs, "b": b}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument(
        "--workers",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[4, 16, 32],
        help="comma-separated worker counts, one run each (default 4,16,32)",
    )
    p.add_argument(
        "--feed-workers",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[4, 8],
        help="worker counts for the feed path (apply_events, BATCH at a time; the "
        "server's feed runs 4); default 4,8",
    )
    p.add_argument("--events", type=int, default=8_000, help="events per run")
    p.add_argument(
        "--event-people",
        type=int,
        default=1_000,
        help="people the events of a run are spread over (default 1,000: 8 events each)",
    )
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--keep", action="store_true", help="keep the scratch database (to explore)")
    p.add_argument("--json", help="also write the figures to this file (run_all.py reads it)")
    # Accepted for run_all.py; this benchmark starts no server.
    p.add_argument("--server", default="ours")
    p.add_argument("--ours-args", default="")
    p.add_argument("--wait-quiet", type=float, default=30.0)
    args = p.parse_args()
    if not args.dsn:
        p.error("set DATABASE_URL or pass --dsn (a server where databases may be created)")
    return args


if __name__ == "__main__":
    args = parse()
    wait_quiet(max_wait=args.wait_quiet)
    figures = asyncio.run(main(args))
    Results("progress", {"results": {"ours": figures}}).save(args.json)
    sys.exit(0)
