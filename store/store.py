"""The Store: an asyncpg pool and the room queries, behind plain Python values."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Literal

import asyncpg

from . import sql
from .errors import RoomNotFound, StoreUnavailable
from .migrate import Migration, apply_migrations, load_migrations
from .records import (
    DemoInfo,
    DemoProgress,
    Member,
    Question,
    QuizCount,
    RoomInfo,
    RoomRecord,
    RoomStanding,
    Version,
    VersionInfo,
    VoteResult,
)

log = logging.getLogger("opencode_live.store")


class _PooledConnection(asyncpg.Connection):
    """A pooled connection handed back without asyncpg's reset query.

    The default reset (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL``) is one more round trip on every release: a tenth of a short
    transaction's cost. Nothing run on the pool keeps session state (no SET, no
    LISTEN, no session advisory lock, no cursor outside a transaction; the
    migration lock and the benchmarks' SETs use connections of their own), and
    asyncpg still rolls back a transaction left open before the reset query.
    """

    def get_reset_query(self) -> str:
        return ""


#: What "the database is not there" looks like from asyncpg: refused or broken
#: sockets, timeouts, a server shutting down or starting up, a closed pool, a
#: server that cannot take more connections or writes (full disk, read-only
#: standby after a failover).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
    # What asyncpg raises on the next use of a connection whose backend was
    # terminated under it (MagicStack/asyncpg#1069): an outage, not our bug.
    asyncpg.InternalClientError,
)

MAX_VERSION_NAME = 200


@contextlib.contextmanager
def _unavailable_on_outage(what: str) -> Iterator[None]:
    """Turn every flavour of outage into StoreUnavailable, naming the operation."""
    try:
        yield
    except _UNAVAILABLE as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise StoreUnavailable(f"{what}: database unavailable ({reason})") from exc


class Store:
    """Durable rooms in Postgres. Create with :meth:`open`, finish with :meth:`close`.

    Every method is safe to call from many tasks at once and from several
    processes sharing the database. Outages raise :class:`StoreUnavailable`.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Use :meth:`open`; this only wraps a pool that is ready and migrated."""
        self._pool = pool
        self._closed = False

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 30.0,
        migrate: bool = True,
        migrations: Sequence[Migration] | None = None,
    ) -> Store:
        """Apply pending migrations (unless ``migrate`` is false), then open the pool.

        Migrations run on a connection of their own, without a command timeout,
        because a second process may legitimately wait for the first one's.
        """
        with _unavailable_on_outage("opening the store"):
            if migrate:
                conn = await asyncpg.connect(dsn, timeout=connect_timeout)
                try:
                    await apply_migrations(
                        conn, migrations if migrations is not None else load_migrations()
                    )
                finally:
                    await conn.close()
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                server_settings={"application_name": "opencode-live"},
                connection_class=_PooledConnection,
            )
        return cls(pool)

    async def close(self, timeout: float = 10.0) -> None:
        """Close the pool, letting running queries finish for up to ``timeout`` seconds."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), timeout)
        except TimeoutError:
            log.warning("store close timed out; terminating connections")
            self._pool.terminate()

    @property
    def closed(self) -> bool:
        return self._closed

    def connection(self, what: str) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection for a domain package's own queries (``progress``), with the
        same outage handling as the store's: ``what`` names the work in the error."""
        return self._connection(what)

    @contextlib.asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an outage becomes StoreUnavailable and drops the connection.

        Dropping (terminate) matters: a connection that failed mid-protocol can
        be left in a state where every later query on it fails, and the pool
        would otherwise hand it out again. A terminated one is replaced.
        """
        if self._closed:
            raise StoreUnavailable(f"{what}: the store is closed")
        with _unavailable_on_outage(what):
            async with self._pool.acquire() as conn:
                try:
                    yield conn
                except _UNAVAILABLE:
                    conn.terminate()
                    raise

    async def ping(self, timeout: float = 5.0) -> None:
        """Raise StoreUnavailable unless the database answers within ``timeout`` (for /readyz)."""
        async with self._connection("ping") as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)

    async def append_updates(
        self,
        batch: Sequence[tuple[str, bytes]],
        *,
        authors: Sequence[uuid.UUID | None] | None = None,
    ) -> list[int]:
        """Commit many updates of many rooms at once; return each one's sequence number.

        This is the group-commit primitive: one statement, one round trip, one
        transaction for the whole batch, whatever the number of rooms. Missing
        rooms are created. The returned list is in batch order; within a room,
        entries get consecutive numbers in batch order. ``authors``, when given,
        is parallel to ``batch``.
        """
        if not batch:
            return []
        if authors is not None and len(authors) != len(batch):
            raise ValueError(f"{len(authors)} authors for {len(batch)} updates")
        room_ids = [room_id for room_id, _ in batch]
        updates = [update for _, update in batch]
        async with self._connection("append") as conn:
            rows = await conn.fetch(
                sql.APPEND_UPDATES,
                room_ids,
                updates,
                list(authors) if authors is not None else [None] * len(batch),
            )
        return [row["seq"] for row in rows]

    async def load_room(self, room_id: str) -> RoomRecord:
        """The room's latest snapshot and the log after it (empty for an unknown room)."""
        async with self._connection("load") as conn:
            rows = await conn.fetch(sql.LOAD_ROOM, room_id)
        if rows and rows[0]["is_snapshot"]:
            snapshot, snapshot_seq, tail = rows[0]["data"], rows[0]["seq"], rows[1:]
        else:
            snapshot, snapshot_seq, tail = None, 0, rows
        return RoomRecord(snapshot, snapshot_seq, [(row["seq"], row["data"]) for row in tail])

    async def room_log_after(self, room_id: str, after_seq: int) -> RoomRecord:
        """What a node holding the room up to ``after_seq`` lacks, in order.

        The updates with seq > ``after_seq``; when compaction folded some of
        them, the latest snapshot (``snapshot_seq`` > ``after_seq``) and the
        updates after it. Without a snapshot, ``snapshot_seq`` is ``after_seq``.
        """
        async with self._connection("catch up") as conn:
            rows = await conn.fetch(sql.ROOM_LOG_AFTER, room_id, after_seq)
        if rows and rows[0]["is_snapshot"]:
            snapshot, snapshot_seq, tail = rows[0]["data"], rows[0]["seq"], rows[1:]
        else:
            snapshot, snapshot_seq, tail = None, after_seq, rows
        return RoomRecord(snapshot, snapshot_seq, [(row["seq"], row["data"]) for row in tail])

    async def room_heads(self, room_ids: list[str]) -> dict[str, int]:
        """The last seq of each room's log (rooms never stored are left out)."""
        async with self._connection("room heads") as conn:
            rows = await conn.fetch(sql.ROOM_HEADS, room_ids)
        return {row["id"]: row["last_seq"] for row in rows}

    async def compact(self, room_id: str, upto_seq: int, state: bytes) -> bool:
        """Replace the log up to ``upto_seq`` with ``state``; False if that was stale.

        ``state`` must be a Yjs update containing every update with seq <=
        ``upto_seq`` (extra content is harmless: re-applying the tail is
        idempotent). The usual way to get one is :meth:`load_room`, apply, and
        pass the record's ``last_seq``. Updates appended meanwhile keep their log
        rows. A compaction no newer than the latest snapshot changes nothing.
        Compactions of one room take turns (advisory lock); appends never wait.
        """
        if upto_seq < 0:
            raise ValueError(f"upto_seq must be >= 0, got {upto_seq}")
        async with self._connection("compact") as conn, conn.transaction():
            await conn.execute(sql.COMPACT_LOCK, sql.COMPACT_LOCK_CLASS, room_id)
            last_seq = await conn.fetchval(sql.ROOM_LAST_SEQ, room_id)
            if last_seq is None:
                raise RoomNotFound(room_id)
            if upto_seq > last_seq:
                raise ValueError(
                    f"cannot compact room {room_id!r} up to {upto_seq}: its log ends at {last_seq}"
                )
            stored = await conn.fetchval(sql.COMPACT, room_id, upto_seq, state)
        return bool(stored)

    async def log_size(self, room_id: str) -> tuple[int, int]:
        """(rows, bytes) of the log after the latest snapshot: the compaction trigger."""
        async with self._connection("log size") as conn:
            row = await conn.fetchrow(sql.LOG_SIZE, room_id)
        return row["rows"], row["bytes"]

    async def create_version(
        self,
        room_id: str,
        name: str,
        state: bytes,
        upto_seq: int,
        created_by: uuid.UUID | None = None,
    ) -> Version:
        """Save a named version (the room row is created if it is not stored yet)."""
        name = name.strip()
        if not 1 <= len(name) <= MAX_VERSION_NAME:
            raise ValueError(f"a version name has 1 to {MAX_VERSION_NAME} characters")
        if upto_seq < 0:
            raise ValueError(f"upto_seq must be >= 0, got {upto_seq}")
        async with self._connection("create version") as conn:
            row = await conn.fetchrow(
                sql.CREATE_VERSION, room_id, name, upto_seq, state, created_by
            )
        return Version(**dict(row))

    async def list_versions(self, room_id: str) -> list[VersionInfo]:
        """The room's versions, newest first, without their (possibly large) states."""
        async with self._connection("list versions") as conn:
            rows = await conn.fetch(sql.LIST_VERSIONS, room_id)
        return [VersionInfo(**dict(row)) for row in rows]

    async def get_version(self, room_id: str, version_id: int) -> Version | None:
        """One version with its state; None if it does not exist in this room."""
        async with self._connection("get version") as conn:
            row = await conn.fetchrow(sql.GET_VERSION, room_id, version_id)
        return Version(**dict(row)) if row is not None else None

    async def room_exists(self, room_id: str) -> bool:
        """Whether the room has ever been stored (appended to or versioned)."""
        async with self._connection("room exists") as conn:
            return bool(await conn.fetchval(sql.ROOM_EXISTS, room_id))

    async def upsert_user(
        self,
        user_id: uuid.UUID,
        username: str,
        display_name: str,
        role: str,
        cohort: str | None = None,
    ) -> uuid.UUID:
        """Create or update the user a token speaks for (on sign-in)."""
        async with self._connection("upsert user") as conn:
            return await conn.fetchval(
                sql.UPSERT_USER, user_id, username, display_name, role, cohort
            )

    async def consume_signin_token(self, jti: str, user_id: uuid.UUID | None) -> bool:
        """Record a sign-in token as used; False when it was used before."""
        async with self._connection("consume sign-in token") as conn:
            return await conn.fetchval(sql.CONSUME_SIGNIN_TOKEN, jti, user_id) is not None

    # -- room access ---------------------------------------------------------

    async def room_standing(self, room_id: str, user_id: uuid.UUID) -> RoomStanding | None:
        """The room's rules and the person's member role; None for a room never created."""
        async with self._connection("room access") as conn:
            row = await conn.fetchrow(sql.ROOM_ACCESS, room_id, user_id)
        return RoomStanding(**dict(row)) if row is not None else None

    async def create_room(
        self,
        room_id: str,
        owner: uuid.UUID,
        *,
        title: str = "",
        visibility: str = "private",
        cohort: str | None = None,
    ) -> RoomInfo | None:
        """A new room owned by ``owner``; None when the id is taken already."""
        async with self._connection("create room") as conn:
            row = await conn.fetchrow(sql.CREATE_ROOM, room_id, title, owner, visibility, cohort)
        return RoomInfo(**dict(row)) if row is not None else None

    async def get_room(self, room_id: str) -> RoomInfo | None:
        async with self._connection("get room") as conn:
            row = await conn.fetchrow(sql.GET_ROOM, room_id)
        return RoomInfo(**dict(row)) if row is not None else None

    async def update_room(
        self,
        room_id: str,
        *,
        title: str | None = None,
        visibility: str | None = None,
        cohort: str | None = None,
        set_cohort: bool = False,
    ) -> RoomInfo | None:
        """Change what is given (``set_cohort`` to change the cohort); None for no such room."""
        async with self._connection("update room") as conn:
            row = await conn.fetchrow(
                sql.UPDATE_ROOM, room_id, title, visibility, cohort, set_cohort
            )
        return RoomInfo(**dict(row)) if row is not None else None

    async def rooms_for(
        self, user_id: uuid.UUID, *, staff: bool, cohort: str | None, limit: int = 500
    ) -> list[tuple[RoomInfo, str | None]]:
        """Rooms the person can enter, newest first, each with their member role."""
        async with self._connection("rooms for") as conn:
            rows = await conn.fetch(sql.ROOMS_FOR, user_id, staff, cohort, limit)
        result = []
        for row in rows:
            values = dict(row)
            member_role = values.pop("member_role")
            result.append((RoomInfo(**values), member_role))
        return result

    async def members(self, room_id: str) -> list[Member]:
        async with self._connection("room members") as conn:
            rows = await conn.fetch(sql.ROOM_MEMBERS, room_id)
        return [Member(**dict(row)) for row in rows]

    async def set_member(
        self,
        room_id: str,
        user_id: uuid.UUID,
        role: str,
        *,
        username: str,
        added_by: uuid.UUID | None,
    ) -> None:
        """Add or change a member; a user never seen before gets a placeholder row."""
        async with self._connection("set member") as conn, conn.transaction():
            await conn.execute(sql.ENSURE_USER, user_id, username, "")
            await conn.execute(sql.SET_MEMBER, room_id, user_id, role, added_by)

    async def remove_member(self, room_id: str, user_id: uuid.UUID) -> bool:
        async with self._connection("remove member") as conn:
            return await conn.fetchval(sql.REMOVE_MEMBER, room_id, user_id) is not None

    # -- demo library ------------------------------------------------------------

    async def put_demo(
        self, demo_id: str, title: str, kind: str, document: str, by: uuid.UUID | None
    ) -> bool:
        """Store a validated demo document; True when it is new, False when replaced."""
        async with self._connection("put demo") as conn:
            return bool(await conn.fetchval(sql.PUT_DEMO, demo_id, title, kind, document, by))

    async def get_demo(self, demo_id: str) -> str | None:
        """The demo's JSON document, or None."""
        async with self._connection("get demo") as conn:
            return await conn.fetchval(sql.GET_DEMO, demo_id)

    async def list_demos(self, limit: int = 500) -> list[DemoInfo]:
        async with self._connection("list demos") as conn:
            rows = await conn.fetch(sql.LIST_DEMOS, limit)
        return [DemoInfo(**dict(row)) for row in rows]

    async def delete_demo(self, demo_id: str) -> bool:
        async with self._connection("delete demo") as conn:
            return await conn.fetchval(sql.DELETE_DEMO, demo_id) is not None

    # -- questions, quiz answers and demo progress (issue 7) ---------------------

    async def ask_question(
        self,
        room_id: str,
        demo_id: str,
        step_id: str | None,
        at: float | None,
        text: str,
        asked_by: uuid.UUID,
    ) -> Question:
        """Store a question (text already checked: 1 to 2,000 characters)."""
        async with self._connection("ask question") as conn:
            row = await conn.fetchrow(
                sql.ASK_QUESTION, room_id, demo_id, step_id, at, text, asked_by
            )
        return Question(**dict(row))

    async def vote_question(
        self, room_id: str, question_id: int, user_id: uuid.UUID, up: bool
    ) -> VoteResult:
        """Add (``up``) or withdraw a person's vote on a question of this room.

        One transaction with the question's row locked: the vote row and the
        count change together or not at all, and concurrent votes take turns.
        """
        async with self._connection("vote") as conn, conn.transaction():
            asker = await conn.fetchval(sql.LOCK_QUESTION, question_id, room_id)
            if asker is None:
                return VoteResult("missing")
            if asker == user_id:
                return VoteResult("own")
            if up:
                changed = await conn.fetchval(sql.ADD_VOTE, question_id, user_id) is not None
            else:
                changed = await conn.fetchval(sql.REMOVE_VOTE, question_id, user_id) is not None
            if changed:
                await conn.execute(sql.COUNT_VOTE, question_id, 1 if up else -1)
            row = await conn.fetchrow(sql.GET_QUESTION, question_id, room_id)
        status: Literal["voted", "withdrawn", "unchanged"] = (
            ("voted" if up else "withdrawn") if changed else "unchanged"
        )
        return VoteResult(status, Question(**dict(row)))

    async def mark_answered(
        self, room_id: str, question_id: int, answered: bool
    ) -> Question | None:
        """Mark a question of this room answered (or not); None if it has no such question."""
        async with self._connection("mark answered") as conn:
            row = await conn.fetchrow(sql.MARK_ANSWERED, question_id, room_id, answered)
        return Question(**dict(row)) if row is not None else None

    async def list_questions(self, room_id: str, demo_id: str, limit: int = 500) -> list[Question]:
        """A room's questions about a demo: unanswered first, most voted, oldest first."""
        async with self._connection("list questions") as conn:
            rows = await conn.fetch(sql.LIST_QUESTIONS, room_id, demo_id, limit)
        return [Question(**dict(row)) for row in rows]

    async def votes_of(
        self, room_id: str, demo_id: str, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[int]]:
        """The question ids (ascending) each of these people upvoted in the room's demo."""
        result: dict[uuid.UUID, list[int]] = {user: [] for user in user_ids}
        if not user_ids:
            return result
        async with self._connection("votes of") as conn:
            rows = await conn.fetch(sql.VOTES_OF, room_id, demo_id, list(set(user_ids)))
        for row in rows:
            result[row["user_id"]].append(row["question_id"])
        return result

    async def put_quiz_answer(
        self,
        room_id: str,
        demo_id: str,
        step_id: str,
        user_id: uuid.UUID,
        *,
        choice: int | None,
        text: str | None,
        correct: bool | None,
    ) -> list[QuizCount]:
        """Store (or replace) a person's answer; the step's tally after it, read in the
        same transaction so that it includes this answer and no half of another."""
        async with self._connection("quiz answer") as conn, conn.transaction():
            await conn.execute(
                sql.PUT_QUIZ_ANSWER, room_id, demo_id, step_id, user_id, choice, text, correct
            )
            rows = await conn.fetch(sql.QUIZ_COUNTS, room_id, demo_id, step_id)
        return [QuizCount(**dict(row)) for row in rows]

    async def quiz_counts(
        self, room_id: str, demo_id: str, step_id: str | None = None
    ) -> list[QuizCount]:
        """Answers per step and choice for a room's demo (one step, or all of them)."""
        async with self._connection("quiz tally") as conn:
            rows = await conn.fetch(sql.QUIZ_COUNTS, room_id, demo_id, step_id)
        return [QuizCount(**dict(row)) for row in rows]

    async def get_progress(self, user_id: uuid.UUID, demo_id: str) -> DemoProgress | None:
        async with self._connection("get progress") as conn:
            row = await conn.fetchrow(sql.GET_PROGRESS, user_id, demo_id)
        return DemoProgress(**dict(row)) if row is not None else None

    async def put_progress(
        self,
        user_id: uuid.UUID,
        demo_id: str,
        *,
        position: float,
        step_id: str | None,
        fraction: float,
        completed: bool,
    ) -> DemoProgress:
        """Record where a person is; the fraction kept is the furthest, completed sticks."""
        async with self._connection("put progress") as conn:
            row = await conn.fetchrow(
                sql.PUT_PROGRESS, user_id, demo_id, position, step_id, fraction, completed
            )
        return DemoProgress(**dict(row))

    async def list_progress(self, demo_id: str, limit: int = 1000) -> list[DemoProgress]:
        """Everyone's progress in a demo, most recently active first."""
        async with self._connection("list progress") as conn:
            rows = await conn.fetch(sql.LIST_PROGRESS, demo_id, limit)
        return [DemoProgress(**dict(row)) for row in rows]
