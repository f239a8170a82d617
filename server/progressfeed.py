"""Progress events the server observed in rooms, applied off the hot path.

Rooms see things worth progress (a run finished, a question asked or its
answer accepted, minutes of pairing, a demo watched) in the middle of a frame
handler or a room job, where waiting on the database would stall everyone in
the room. They hand the event to :meth:`ProgressFeed.submit`, which never
blocks and never raises: the event goes on one bounded queue per application
and a few background workers apply it with ``progress.apply_event``.

Why retries are safe: every event carries an idempotency key made from what
was observed (``run:<id>``, ``question:<id>:asked``...), so after
``StoreUnavailable`` the same event is applied again with the same key and
lands exactly once however often it is retried. Retries back off and are
bounded (``retry_for_seconds``); an event still failing then is logged and
counted, not held forever. ``EventRejected`` (an unknown person, a key reused
for another event) is logged and dropped: retrying cannot fix it.

When an applied event earned achievements and the person is connected to the
room it came from, the room is told with ``progress.award`` (as graded
submissions do). At shutdown the queue is drained for a bounded time.

A worker takes what is queued, up to ``progress.BATCH`` events, and applies them
with ``progress.apply_events``: events of fixed points go to the database in one
statement (one commit for many), each still all or nothing and applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from progress import BATCH, Applied, Event, EventRejected, apply_events
from rooms import Room
from rooms.extension import ProgressAward
from store import Store, StoreUnavailable

log = logging.getLogger("opencode_live.server")

EVENTS = Counter(
    "opencode_live_progress_events_total",
    "Progress events the server observed, by outcome "
    "(applied, duplicate, rejected, failed: gave up after retries, dropped: queue full)",
    ["outcome"],
)
RETRIES = Counter(
    "opencode_live_progress_event_retries_total",
    "Progress event applications retried after the database was unavailable",
)
PENDING = Gauge("opencode_live_progress_events_pending", "Progress events queued or being applied")


def key_part(text: str, limit: int = 64) -> str:
    """``text`` for an idempotency key (at most 200 characters in all): as it is when
    short, else a digest of it, so that the same observation always gets the same key."""
    if len(text) <= limit:
        return text
    return "sha256-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Item:
    event: Event
    #: The room the event was observed in, told of achievements it earns.
    room_id: str | None


class ProgressFeed:
    """One per application: ``start`` with the app, ``close`` at shutdown."""

    def __init__(
        self,
        store: Store,
        room: Callable[[str], Room | None] = lambda _room_id: None,
        *,
        max_queued: int = 10_000,
        workers: int = 4,
        retry_for_seconds: float = 120.0,
        first_delay: float = 0.1,
        max_delay: float = 5.0,
    ) -> None:
        self.store = store
        #: The loaded room by id (the registry's), or None: who to tell of achievements.
        self.room = room
        self.workers = workers
        self.retry_for_seconds = retry_for_seconds
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_queued)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def submit(self, event: Event, *, room_id: str | None = None) -> bool:
        """Queue ``event``; False (logged and counted) when the queue is full or closed."""
        if self._closing:
            EVENTS.labels(outcome="dropped").inc()
            log.warning("progress event dropped: shutting down", extra={"key": event.key})
            return False
        try:
            self._queue.put_nowait(_Item(event, room_id))
        except asyncio.QueueFull:
            EVENTS.labels(outcome="dropped").inc()
            log.warning("progress event dropped: queue full", extra={"key": event.key})
            return False
        PENDING.inc()
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]

    async def close(self, timeout: float) -> None:
        """Stop taking events, apply what is queued for up to ``timeout`` seconds, then stop."""
        self._closing = True
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
        left = self._queue.qsize()
        if left:
            EVENTS.labels(outcome="failed").inc(left)
            PENDING.dec(left)
            log.warning("progress events not applied at shutdown", extra={"queued": left})
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # what else is queued goes along: one statement and one commit for many
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._apply(batch)
            except Exception:  # a bug of ours: never let it end the worker
                EVENTS.labels(outcome="failed").inc(len(batch))
                log.exception("progress events failed", extra={"events": len(batch)})
            finally:
                PENDING.dec(len(batch))
                for _ in batch:
                    self._queue.task_done()

    async def _apply(self, batch: list[_Item]) -> None:
        deadline = time.monotonic() + self.retry_for_seconds
        delay = self.first_delay
        while True:
            try:
                outcomes = await apply_events(self.store, [item.event for item in batch])
                break
            except StoreUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    EVENTS.labels(outcome="failed").inc(len(batch))
                    log.error(
                        "progress events not applied: database unavailable",
                        extra={"keys": [item.event.key for item in batch], "error": str(exc)},
                    )
                    return
                RETRIES.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, EventRejected):
                EVENTS.labels(outcome="rejected").inc()
                log.warning(
                    "progress event rejected", extra={"key": item.event.key, "error": str(outcome)}
                )
                continue
            EVENTS.labels(outcome="duplicate" if outcome.duplicate else "applied").inc()
            if outcome.achievements and not outcome.duplicate and item.room_id is not None:
                await self._announce(item.room_id, item.event.user_id, outcome)

    async def _announce(self, room_id: str, user_id: uuid.UUID, applied: Applied) -> None:
        """``progress.award`` per achievement to the room, if the person is connected to it."""
        room = self.room(room_id)
        if room is None:
            return
        person = next((c.person for c in room.connections if c.person.user_id == user_id), None)
        if person is None:
            return
        try:
            async with self.store.connection("achievement names") as conn:
                rows = await conn.fetch(
                    "SELECT id, name FROM achievements WHERE id = ANY($1::text[])",
                    list(applied.achievements),
                )
        except StoreUnavailable:
            rows = []
        names = {r["id"]: r["name"] for r in rows}
        for achievement in applied.achievements:
            xp = sum(
                a.points
                for a in applied.awards
                if a.type == "achievement" and a.reason == f"achievement {achievement}"
            )
            room.broadcast_room(
                ProgressAward(
                    user=str(user_id),
                    name=person.name,
                    kind="achievement",
                    title=names.get(achievement, achievement),
                    xp=xp,
                )
            )


#: The application's feed (``request.app[FEED]``).
FEED = web.AppKey("progress_feed", ProgressFeed)
